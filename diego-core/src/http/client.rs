//! `BbsClient`: the BBS over HTTP, implementing the BBS's traits (and so
//! [`BbsApi`](crate::BbsApi)) so reps, auctioneers and convergers run unchanged in other
//! processes.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::server::{Empty, LAGGED_EVENT, LOG_EVENT};
use super::types::*;
use crate::bbs::{
    ActualLrpApi, CellApi, DesiredLrpApi, DomainApi, EvacuationApi, EventApi, TaskApi,
};
use crate::error::{Error, Result};
use crate::events::{EventItem, EventStream, LrpEvent, Sequenced, TaskEvent};
use crate::models::actual_lrp::{ActualLrp, ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo};
use crate::models::cell::CellPresence;
use crate::models::desired_lrp::{DesiredLrp, DesiredLrpUpdate, SchedulingInfo};
use crate::models::guid::{CellId, ProcessGuid, TaskGuid};
use crate::models::task::{DesireTaskRequest, Task};
use crate::request_id::forward;
use crate::store::{ActualLrpFilter, DesiredLrpFilter, TaskFilter};

/// A followed log stream ([`BbsClient::follow_logs`]).
pub type LogRecordStream = Pin<Box<dyn Stream<Item = Result<LogRecord>> + Send + 'static>>;

/// A BBS reached over HTTP. Every call carries the current request id
/// ([`request_id::current`](crate::request_id::current)) when there is one.
///
/// Given several URLs ([`BbsClient::with_urls`]), the client fails over: a BBS that
/// cannot be connected to, or that answers it is [not the active BBS](NOT_ACTIVE_BBS),
/// is skipped and the next URL is tried; the client then stays with the one that
/// answered. A request that reached a BBS and failed there is never re-sent elsewhere.
#[derive(Clone, Debug)]
pub struct BbsClient {
    bases: Arc<[String]>,
    current: Arc<AtomicUsize>,
    http: reqwest::Client,
}

/// The start of the message a standby BBS answers every call with (503, kind
/// `Unavailable`); clients with several BBS URLs move on to the next.
pub const NOT_ACTIVE_BBS: &str = "not the active BBS";

impl BbsClient {
    /// A client of the BBS at `base_url` (e.g. `http://127.0.0.1:8889`).
    ///
    /// # Errors
    /// The HTTP client could not be built (TLS back end unavailable).
    pub fn new(base_url: impl Into<String>) -> Result<Self> {
        Ok(Self::with_client(base_url, default_http()?))
    }

    /// A client of the BBS processes at `urls`, tried in order (see the type's docs).
    ///
    /// # Errors
    /// `InvalidConfig` when `urls` is empty or one is not an `http(s)://` URL; the HTTP
    /// client could not be built.
    pub fn with_urls<S: Into<String>>(urls: impl IntoIterator<Item = S>) -> Result<Self> {
        Self::with_client_urls(urls, default_http()?)
    }

    /// A client of the BBS processes at `urls` using `http` (TLS, timeouts).
    ///
    /// # Errors
    /// `InvalidConfig` when `urls` is empty or one is not an `http(s)://` URL.
    pub fn with_client_urls<S: Into<String>>(
        urls: impl IntoIterator<Item = S>,
        http: reqwest::Client,
    ) -> Result<Self> {
        let bases: Vec<String> = urls
            .into_iter()
            .map(|u| u.into().trim_end_matches('/').to_owned())
            .collect();
        check_bbs_urls(&bases)?;
        Ok(BbsClient {
            bases: bases.into(),
            current: Arc::new(AtomicUsize::new(0)),
            http,
        })
    }

    /// A client using `http` (for TLS or timeout settings of the caller's choosing).
    pub fn with_client(base_url: impl Into<String>, http: reqwest::Client) -> Self {
        BbsClient {
            bases: vec![base_url.into().trim_end_matches('/').to_owned()].into(),
            current: Arc::new(AtomicUsize::new(0)),
            http,
        }
    }

    /// The URL of the BBS the client talks to now.
    pub fn base_url(&self) -> &str {
        let i = self.current.load(Ordering::Relaxed) % self.bases.len();
        &self.bases[i]
    }

    /// Every BBS URL the client knows, in the order given.
    pub fn urls(&self) -> &[String] {
        &self.bases
    }

    /// Sends the request `make` builds for a BBS URL, failing over across the URLs, and
    /// returns the first successful answer.
    async fn send(
        &self,
        make: impl Fn(&str) -> Result<reqwest::RequestBuilder>,
    ) -> Result<reqwest::Response> {
        let n = self.bases.len();
        let first = self.current.load(Ordering::Relaxed) % n;
        let mut last = None;
        for step in 0..n {
            let i = (first + step) % n;
            let resp = match forward(make(&self.bases[i])?).send().await {
                Ok(resp) => resp,
                // Not connected: the request never reached that BBS; try the next.
                Err(e) if e.is_connect() && n > 1 => {
                    last = Some(unavailable(e));
                    continue;
                }
                Err(e) => return Err(unavailable(e)),
            };
            match check(resp).await {
                Ok(resp) => {
                    if i != first {
                        self.current.store(i, Ordering::Relaxed);
                        tracing::info!(url = %self.bases[i], "talking to another BBS");
                    }
                    return Ok(resp);
                }
                Err(e @ Error::Unavailable { .. }) if n > 1 && is_not_active(&e) => {
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::unavailable("no BBS URL")))
    }

    /// `GET /ping`: whether the BBS answers.
    pub async fn ping(&self) -> Result<()> {
        self.send(|base| Ok(self.http.get(format!("{base}/ping"))))
            .await
            .map(|_| ())
    }

    async fn post<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        path: &str,
        body: &Req,
    ) -> Result<Resp> {
        let resp = self
            .send(|base| Ok(self.http.post(format!("{base}{path}")).json(body)))
            .await?;
        resp.json::<Resp>()
            .await
            .map_err(|e| Error::unavailable_from("unreadable answer from the BBS", e))
    }

    fn logs_url(base: &str, log_guid: &str) -> Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(base)
            .map_err(|e| Error::unavailable_from(format!("invalid BBS URL {base}"), e))?;
        url.path_segments_mut()
            .map_err(|()| Error::unavailable(format!("invalid BBS URL {base}")))?
            .pop_if_empty()
            .extend(["v1", "logs", log_guid]);
        Ok(url)
    }

    /// `GET /v1/logs/{log_guid}`: the lines the BBS keeps for `log_guid`, oldest first.
    ///
    /// # Errors
    /// `Unavailable` when the BBS is unreachable or serves no logs.
    pub async fn recent_logs(&self, log_guid: &str) -> Result<Vec<LogRecord>> {
        self.send(|base| Ok(self.http.get(Self::logs_url(base, log_guid)?)))
            .await?
            .json()
            .await
            .map_err(|e| Error::unavailable_from("unreadable answer from the BBS", e))
    }

    /// `GET /v1/logs/{log_guid}?follow=true`: the lines kept for `log_guid`, then new
    /// ones as they come. The stream ends when the connection does (after an `Err` item
    /// saying why, unless the server closed it cleanly).
    ///
    /// # Errors
    /// `Unavailable` when the BBS is unreachable or serves no logs.
    pub async fn follow_logs(&self, log_guid: &str) -> Result<LogRecordStream> {
        let resp = self
            .send(|base| {
                let mut url = Self::logs_url(base, log_guid)?;
                url.set_query(Some("follow=true"));
                Ok(self.http.get(url))
            })
            .await?;
        let stream = resp
            .bytes_stream()
            .eventsource()
            .filter_map(|item| async move {
                match item {
                    Ok(ev) if ev.event == LOG_EVENT => {
                        Some(serde_json::from_str::<LogRecord>(&ev.data).map_err(|e| {
                            Error::unavailable_from("unreadable log line from the BBS", e)
                        }))
                    }
                    Ok(_) => None,
                    Err(e) => Some(Err(Error::unavailable_from(
                        "log stream from the BBS broke",
                        e,
                    ))),
                }
            });
        Ok(Box::pin(stream))
    }

    /// An evacuation call: whether the rep keeps the container.
    async fn keep_container(&self, path: &str, body: &ActualLrpRequest) -> Result<bool> {
        let r: EvacuationResponse = self.post(path, body).await?;
        Ok(r.keep_container)
    }

    async fn call<Req: Serialize + ?Sized>(&self, path: &str, body: &Req) -> Result<()> {
        self.post::<Req, Empty>(path, body).await.map(|_| ())
    }

    async fn events<E>(&self, path: String) -> Result<EventStream<E>>
    where
        E: DeserializeOwned + Send + Sync + 'static,
    {
        let resp = self
            .send(|base| Ok(self.http.get(format!("{base}{path}"))))
            .await?;
        let stream = resp.bytes_stream().eventsource().filter_map(|item| async move {
            let ev = match item {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!(error = %e, "event stream from the BBS broke");
                    return None;
                }
            };
            if ev.event == LAGGED_EVENT {
                let missed = serde_json::from_str::<serde_json::Value>(&ev.data)
                    .ok()
                    .and_then(|v| v.get("missed").and_then(|m| m.as_u64()))
                    .unwrap_or(0);
                return Some(EventItem::Lagged { missed });
            }
            match serde_json::from_str::<E>(&ev.data) {
                Ok(event) => Some(EventItem::Event(Arc::new(Sequenced {
                    seq: ev.id.parse().unwrap_or(0),
                    event,
                }))),
                Err(e) => {
                    tracing::warn!(error = %e, name = %ev.event, "unreadable event from the BBS");
                    None
                }
            }
        });
        Ok(Box::pin(stream))
    }
}

/// Checks a list of BBS URLs as [`BbsClient::with_urls`] does: at least one, each an
/// `http://` or `https://` URL.
///
/// # Errors
/// `InvalidConfig` naming `bbs_urls[i]` and why.
pub fn check_bbs_urls<S: AsRef<str>>(urls: &[S]) -> Result<()> {
    if urls.is_empty() {
        return Err(Error::invalid_config("bbs_urls: needs at least one URL"));
    }
    for (i, url) in urls.iter().map(AsRef::as_ref).enumerate() {
        if reqwest::Url::parse(url).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
            return Err(Error::invalid_config(format!(
                "bbs_urls[{i}]: {url:?} is not an http:// or https:// URL"
            )));
        }
    }
    Ok(())
}

fn default_http() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| Error::unavailable_from("cannot build the HTTP client", e))
}

fn unavailable(e: reqwest::Error) -> Error {
    Error::unavailable_from("BBS unreachable", e)
}

/// Whether `e` is a standby BBS's answer (the next URL may be the active one).
fn is_not_active(e: &Error) -> bool {
    matches!(e, Error::Unavailable { message, .. } if message.starts_with(NOT_ACTIVE_BBS))
}

async fn check(resp: reqwest::Response) -> Result<reqwest::Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => Err(body.into_error()),
        Err(_) => Err(Error::unavailable(format!("BBS answered {status}: {text}"))),
    }
}

fn actual(key: &ActualLrpKey, ik: Option<&ActualLrpInstanceKey>) -> ActualLrpRequest {
    ActualLrpRequest {
        actual_lrp_key: key.clone(),
        actual_lrp_instance_key: ik.cloned(),
        actual_lrp_net_info: None,
        routable: false,
        reason: String::new(),
    }
}

#[async_trait]
impl TaskApi for BbsClient {
    async fn desire_task(&self, request: DesireTaskRequest) -> Result<()> {
        self.call("/v1/tasks/desire", &request).await
    }
    async fn task_by_guid(&self, task_guid: &TaskGuid) -> Result<Task> {
        self.post(
            "/v1/tasks/get_by_task_guid",
            &TaskGuidRequest {
                task_guid: task_guid.clone(),
            },
        )
        .await
    }
    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        self.post("/v1/tasks/list", &TasksRequest::from(filter))
            .await
    }
    async fn start_task(&self, task_guid: &TaskGuid, cell_id: &CellId) -> Result<bool> {
        let r: StartTaskResponse = self
            .post(
                "/v1/tasks/start",
                &StartTaskRequest {
                    task_guid: task_guid.clone(),
                    cell_id: cell_id.clone(),
                },
            )
            .await?;
        Ok(r.should_start)
    }
    async fn cancel_task(&self, task_guid: &TaskGuid) -> Result<()> {
        self.call(
            "/v1/tasks/cancel",
            &TaskGuidRequest {
                task_guid: task_guid.clone(),
            },
        )
        .await
    }
    async fn fail_task(&self, task_guid: &TaskGuid, failure_reason: &str) -> Result<()> {
        let body = FailTaskRequest {
            task_guid: task_guid.clone(),
            failure_reason: failure_reason.to_owned(),
        };
        self.call("/v1/tasks/fail", &body).await
    }
    async fn reject_task(&self, task_guid: &TaskGuid, rejection_reason: &str) -> Result<()> {
        let body = RejectTaskRequest {
            task_guid: task_guid.clone(),
            rejection_reason: rejection_reason.to_owned(),
        };
        self.call("/v1/tasks/reject", &body).await
    }
    async fn complete_task(
        &self,
        task_guid: &TaskGuid,
        cell_id: &CellId,
        failed: bool,
        failure_reason: &str,
        result: &str,
    ) -> Result<()> {
        let body = CompleteTaskRequest {
            task_guid: task_guid.clone(),
            cell_id: cell_id.clone(),
            failed,
            failure_reason: failure_reason.to_owned(),
            result: result.to_owned(),
        };
        self.call("/v1/tasks/complete", &body).await
    }
    async fn resolving_task(&self, task_guid: &TaskGuid) -> Result<()> {
        self.call(
            "/v1/tasks/resolving",
            &TaskGuidRequest {
                task_guid: task_guid.clone(),
            },
        )
        .await
    }
    async fn delete_task(&self, task_guid: &TaskGuid) -> Result<()> {
        self.call(
            "/v1/tasks/delete",
            &TaskGuidRequest {
                task_guid: task_guid.clone(),
            },
        )
        .await
    }
}

#[async_trait]
impl DesiredLrpApi for BbsClient {
    async fn desire_lrp(&self, desired: DesiredLrp) -> Result<()> {
        self.call("/v1/desired_lrp/desire", &desired).await
    }
    async fn update_desired_lrp(
        &self,
        process_guid: &ProcessGuid,
        update: DesiredLrpUpdate,
    ) -> Result<()> {
        let body = UpdateDesiredLrpRequest {
            process_guid: process_guid.clone(),
            update,
        };
        self.call("/v1/desired_lrp/update", &body).await
    }
    async fn remove_desired_lrp(&self, process_guid: &ProcessGuid) -> Result<()> {
        let body = ProcessGuidRequest {
            process_guid: process_guid.clone(),
        };
        self.call("/v1/desired_lrp/remove", &body).await
    }
    async fn desired_lrp_by_process_guid(&self, process_guid: &ProcessGuid) -> Result<DesiredLrp> {
        let body = ProcessGuidRequest {
            process_guid: process_guid.clone(),
        };
        self.post("/v1/desired_lrps/get_by_process_guid", &body)
            .await
    }
    async fn desired_lrps(&self, filter: &DesiredLrpFilter) -> Result<Vec<DesiredLrp>> {
        self.post("/v1/desired_lrps/list", &DesiredLrpsRequest::from(filter))
            .await
    }
    async fn desired_lrp_scheduling_infos(
        &self,
        filter: &DesiredLrpFilter,
    ) -> Result<Vec<SchedulingInfo>> {
        self.post(
            "/v1/desired_lrp_scheduling_infos/list",
            &DesiredLrpsRequest::from(filter),
        )
        .await
    }
}

#[async_trait]
impl ActualLrpApi for BbsClient {
    async fn actual_lrps(&self, filter: &ActualLrpFilter) -> Result<Vec<Arc<ActualLrp>>> {
        self.post("/v1/actual_lrps/list", &ActualLrpsRequest::from(filter))
            .await
    }
    async fn claim_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<()> {
        self.call("/v1/actual_lrps/claim", &actual(key, Some(instance_key)))
            .await
    }
    async fn start_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        net_info: &ActualLrpNetInfo,
        routable: bool,
    ) -> Result<()> {
        let mut body = actual(key, Some(instance_key));
        body.actual_lrp_net_info = Some(net_info.clone());
        body.routable = routable;
        self.call("/v1/actual_lrps/start", &body).await
    }
    async fn crash_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        crash_reason: &str,
    ) -> Result<()> {
        let mut body = actual(key, Some(instance_key));
        body.reason = crash_reason.to_owned();
        self.call("/v1/actual_lrps/crash", &body).await
    }
    async fn fail_actual_lrp(&self, key: &ActualLrpKey, placement_error: &str) -> Result<()> {
        let mut body = actual(key, None);
        body.reason = placement_error.to_owned();
        self.call("/v1/actual_lrps/fail", &body).await
    }
    async fn remove_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: Option<&ActualLrpInstanceKey>,
    ) -> Result<()> {
        self.call("/v1/actual_lrps/remove", &actual(key, instance_key))
            .await
    }
    async fn retire_actual_lrp(&self, key: &ActualLrpKey) -> Result<()> {
        self.call("/v1/actual_lrps/retire", &actual(key, None))
            .await
    }
}

#[async_trait]
impl EvacuationApi for BbsClient {
    async fn evacuate_claimed_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<bool> {
        self.keep_container(
            "/v1/actual_lrps/evacuate_claimed",
            &actual(key, Some(instance_key)),
        )
        .await
    }
    async fn evacuate_running_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        net_info: &ActualLrpNetInfo,
    ) -> Result<bool> {
        let mut body = actual(key, Some(instance_key));
        body.actual_lrp_net_info = Some(net_info.clone());
        self.keep_container("/v1/actual_lrps/evacuate_running", &body)
            .await
    }
    async fn evacuate_stopped_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<bool> {
        self.keep_container(
            "/v1/actual_lrps/evacuate_stopped",
            &actual(key, Some(instance_key)),
        )
        .await
    }
    async fn evacuate_crashed_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        crash_reason: &str,
    ) -> Result<bool> {
        let mut body = actual(key, Some(instance_key));
        body.reason = crash_reason.to_owned();
        self.keep_container("/v1/actual_lrps/evacuate_crashed", &body)
            .await
    }
    async fn remove_evacuating_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<()> {
        self.call(
            "/v1/actual_lrps/remove_evacuating",
            &actual(key, Some(instance_key)),
        )
        .await
    }
}

#[async_trait]
impl DomainApi for BbsClient {
    async fn upsert_domain(&self, domain: &str, ttl: Duration) -> Result<()> {
        let body = UpsertDomainRequest {
            domain: domain.to_owned(),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
        };
        self.call("/v1/domains/upsert", &body).await
    }
    async fn domains(&self) -> Result<Vec<String>> {
        self.post("/v1/domains/list", &Empty {}).await
    }
}

#[async_trait]
impl CellApi for BbsClient {
    async fn register_cell(&self, presence: &CellPresence) -> Result<()> {
        self.call("/v1/cells/register", presence).await
    }
    async fn remove_cell(&self, cell_id: &CellId) -> Result<()> {
        self.call(
            "/v1/cells/remove",
            &CellIdRequest {
                cell_id: cell_id.clone(),
            },
        )
        .await
    }
    async fn cells(&self) -> Result<Vec<CellPresence>> {
        self.post("/v1/cells/list", &Empty {}).await
    }
    async fn cell_by_id(&self, cell_id: &CellId) -> Result<CellPresence> {
        self.post(
            "/v1/cells/get",
            &CellIdRequest {
                cell_id: cell_id.clone(),
            },
        )
        .await
    }
}

#[async_trait]
impl EventApi for BbsClient {
    async fn subscribe_lrp_events(&self, cell_id: Option<CellId>) -> Result<EventStream<LrpEvent>> {
        let mut url = "/v1/events/lrp_instances".to_owned();
        if let Some(c) = cell_id {
            url.push_str("?cell_id=");
            url.push_str(c.as_str());
        }
        self.events(url).await
    }
    async fn subscribe_task_events(&self) -> Result<EventStream<TaskEvent>> {
        self.events("/v1/events/tasks".to_owned()).await
    }
}
