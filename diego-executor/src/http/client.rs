//! Clients of a rep's HTTP API: [`HttpCellClient`] (one rep; the auction's
//! [`CellClient`]), [`HttpCellClientFactory`] (finds it from a cell presence) and
//! [`HttpRepClient`] (the BBS's [`RepClient`]). Every call has a timeout, so a dead or
//! hung rep gives an error, never a hang; every call forwards the current request id.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use diego_auction::{CellClient, CellClientFactory, Work};
use diego_core::http::types::ErrorBody;
use diego_core::request_id;
use diego_core::MetricTags;
use diego_core::{
    ActualLrpInstanceKey, ActualLrpKey, CellId, CellPresence, CellState, Error, RepClient, TaskGuid,
};
use serde::de::DeserializeOwned;

use diego_core::setter;

use super::types::{EvacuateResponse, LrpInstanceRequest, UpdateLrpInstanceRequest};

/// Timeouts of the HTTP clients of reps (Diego's defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpClientConfig {
    /// Time allowed to open a connection (default 2 s).
    pub connect_timeout: Duration,
    /// Time allowed for a `GET /state` (default 1 s, Diego's `cell_state_timeout`).
    pub state_timeout: Duration,
    /// Time allowed for any other call (default 10 s, Diego's communication timeout).
    pub request_timeout: Duration,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            connect_timeout: Duration::from_secs(2),
            state_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl HttpClientConfig {
    setter!(with_connect_timeout => connect_timeout: Duration);
    setter!(with_state_timeout => state_timeout: Duration);
    setter!(with_request_timeout => request_timeout: Duration);

    /// An HTTP client with these settings (kept-alive connections are shared by every
    /// rep client made from it).
    ///
    /// # Errors
    /// `Unavailable` when the client cannot be built (TLS back end unavailable).
    pub fn http_client(&self) -> diego_core::Result<reqwest::Client> {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| Error::unavailable_from("cannot build the HTTP client", e))
    }
}

/// The URL of a cell's rep from its presence: `rep_url` when set, else `http://` +
/// `rep_address` when that is a `host:port`. `None` for an in-process cell
/// (`in-process:cell-1`) or an address that is not one.
///
/// ```
/// use diego_core::CellPresence;
/// use diego_executor::http::rep_url_of;
///
/// let mut p = CellPresence { rep_address: "10.0.0.5:1800".into(), ..Default::default() };
/// assert_eq!(rep_url_of(&p).as_deref(), Some("http://10.0.0.5:1800"));
/// p.rep_url = "https://cell-1.example:1801/".into();
/// assert_eq!(rep_url_of(&p).as_deref(), Some("https://cell-1.example:1801"));
/// let p = CellPresence { rep_address: "in-process:cell-1".into(), ..Default::default() };
/// assert_eq!(rep_url_of(&p), None);
/// ```
pub fn rep_url_of(presence: &CellPresence) -> Option<String> {
    let (candidate, need_port) = if !presence.rep_url.is_empty() {
        (presence.rep_url.clone(), false)
    } else if presence.rep_address.contains("://") {
        (presence.rep_address.clone(), false)
    } else {
        (format!("http://{}", presence.rep_address), true)
    };
    let url = reqwest::Url::parse(&candidate).ok()?;
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|h| !h.is_empty())
        && (!need_port || url.port().is_some());
    usable.then(|| candidate.trim_end_matches('/').to_owned())
}

/// A cell's rep reached over HTTP: the auction's [`CellClient`] (`state`, `perform`),
/// and the rep's other routes (ping, stop, cancel, update, evacuate).
#[derive(Clone, Debug)]
pub struct HttpCellClient {
    cell_id: CellId,
    base: String,
    http: reqwest::Client,
    config: HttpClientConfig,
}

impl HttpCellClient {
    /// A client of the rep of `cell_id` at `base_url` (e.g. `http://127.0.0.1:1800`),
    /// with an HTTP client of its own.
    ///
    /// # Errors
    /// `Unavailable` when the HTTP client cannot be built.
    pub fn new(
        cell_id: impl Into<CellId>,
        base_url: &str,
        config: &HttpClientConfig,
    ) -> diego_core::Result<Self> {
        Ok(Self::with_client(
            cell_id,
            base_url,
            config.http_client()?,
            config.clone(),
        ))
    }

    /// A client sharing `http` (and its kept-alive connections).
    pub fn with_client(
        cell_id: impl Into<CellId>,
        base_url: &str,
        http: reqwest::Client,
        config: HttpClientConfig,
    ) -> Self {
        HttpCellClient {
            cell_id: cell_id.into(),
            base: base_url.trim_end_matches('/').to_owned(),
            http,
            config,
        }
    }

    /// The cell this client reaches.
    pub fn cell_id(&self) -> &CellId {
        &self.cell_id
    }

    /// The rep's URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `/v1/lrps/{process_guid}/instances/{instance_guid}[/{action}]` on this rep.
    fn instance_url(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        action: Option<&str>,
    ) -> diego_core::Result<reqwest::Url> {
        let path = [
            "v1",
            "lrps",
            key.process_guid.as_str(),
            "instances",
            instance_key.instance_guid.as_str(),
        ];
        match action {
            Some(action) => self.url(&[&path[..], &[action]].concat()),
            None => self.url(&path),
        }
    }

    /// The URL of the route made of `segments` (each escaped as one path segment).
    fn url(&self, segments: &[&str]) -> diego_core::Result<reqwest::Url> {
        let invalid = || {
            Error::unavailable(format!(
                "invalid URL {:?} of the rep of cell {}",
                self.base, self.cell_id
            ))
        };
        let mut url = reqwest::Url::parse(&self.base).map_err(|_| invalid())?;
        url.path_segments_mut()
            .map_err(|()| invalid())?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends `request` (with the current request id and `timeout`) and reads the JSON
    /// answer; error answers become the error they describe.
    async fn call<T: DeserializeOwned>(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> diego_core::Result<T> {
        let response = request_id::forward(request)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| self.unreachable(what, e))?;
        let status = response.status();
        if status.is_success() {
            return response.json::<T>().await.map_err(|e| Error::Unavailable {
                message: format!(
                    "unreadable answer of the rep of cell {} to {what}: {}",
                    self.cell_id,
                    describe(&e)
                ),
                source: Some(Box::new(e)),
            });
        }
        let text = response.text().await.unwrap_or_default();
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => Err(body.into_error()),
            Err(_) => Err(Error::unavailable(format!(
                "the rep of cell {} answered {status} to {what}: {text}",
                self.cell_id
            ))),
        }
    }

    fn unreachable(&self, what: &str, e: reqwest::Error) -> Error {
        let why = if e.is_timeout() {
            format!("no answer in time ({})", describe(&e))
        } else {
            describe(&e)
        };
        // The text names every cause in the chain; the error itself is kept too.
        Error::Unavailable {
            message: format!(
                "rep of cell {} at {} unreachable ({what}): {why}",
                self.cell_id, self.base
            ),
            source: Some(Box::new(e)),
        }
    }

    /// `GET /ping`: whether the rep answers.
    ///
    /// # Errors
    /// `Unavailable` when it does not.
    pub async fn ping(&self) -> diego_core::Result<()> {
        let req = self.http.get(self.url(&["ping"])?);
        self.call::<serde_json::Value>("ping", req, self.config.request_timeout)
            .await
            .map(|_| ())
    }

    /// `POST /v1/lrps/{process_guid}/instances/{instance_guid}/stop`.
    ///
    /// # Errors
    /// `Unavailable` when the rep cannot be reached; `InvalidRequest` when it refuses
    /// the instance (another cell's).
    pub async fn stop_lrp_instance(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> diego_core::Result<()> {
        let url = self.instance_url(key, instance_key, Some("stop"))?;
        let body = LrpInstanceRequest {
            actual_lrp_key: key.clone(),
            actual_lrp_instance_key: instance_key.clone(),
        };
        let req = self.http.post(url).json(&body);
        self.call::<serde_json::Value>("stop LRP instance", req, self.config.request_timeout)
            .await
            .map(|_| ())
    }

    /// `PUT /v1/lrps/{process_guid}/instances/{instance_guid}`: new metric tags.
    ///
    /// # Errors
    /// As [`HttpCellClient::stop_lrp_instance`].
    pub async fn update_lrp_instance(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        metric_tags: &MetricTags,
    ) -> diego_core::Result<()> {
        let url = self.instance_url(key, instance_key, None)?;
        let body = UpdateLrpInstanceRequest {
            actual_lrp_key: key.clone(),
            actual_lrp_instance_key: instance_key.clone(),
            metric_tags: metric_tags.clone(),
        };
        let req = self.http.put(url).json(&body);
        self.call::<serde_json::Value>("update LRP instance", req, self.config.request_timeout)
            .await
            .map(|_| ())
    }

    /// `POST /v1/tasks/{task_guid}/cancel`.
    ///
    /// # Errors
    /// `Unavailable` when the rep cannot be reached.
    pub async fn cancel_task(&self, task_guid: &TaskGuid) -> diego_core::Result<()> {
        let url = self.url(&["v1", "tasks", task_guid.as_str(), "cancel"])?;
        let req = self.http.post(url);
        self.call::<serde_json::Value>("cancel task", req, self.config.request_timeout)
            .await
            .map(|_| ())
    }

    /// `POST /evacuate`: the cell starts evacuating (it answers at once; poll
    /// [`HttpCellClient::ping`] until it is gone).
    ///
    /// # Errors
    /// `Unavailable` when the rep cannot be reached.
    pub async fn evacuate(&self) -> diego_core::Result<EvacuateResponse> {
        let req = self.http.post(self.url(&["evacuate"])?);
        self.call("evacuate", req, self.config.request_timeout)
            .await
    }

    fn auction_error(&self, e: Error) -> diego_auction::Error {
        diego_auction::Error::CellUnreachable {
            cell_id: self.cell_id.to_string(),
            reason: e.to_string(),
        }
    }
}

#[async_trait]
impl CellClient for HttpCellClient {
    async fn state(&self) -> diego_auction::Result<Arc<CellState>> {
        let url = self.url(&["state"]).map_err(|e| self.auction_error(e))?;
        let req = self.http.get(url);
        self.call::<CellState>("state", req, self.config.state_timeout)
            .await
            .map(|mut s| {
                // Fingerprints do not travel in JSON: the client adds them as the rep's
                // own states carry them.
                s.lrp_fingerprints = diego_core::models::cell::LrpFingerprints::of_lrps(&s.lrps);
                Arc::new(s)
            })
            .map_err(|e| self.auction_error(e))
    }

    async fn perform(&self, work: Work) -> diego_auction::Result<Work> {
        let url = self.url(&["work"]).map_err(|e| self.auction_error(e))?;
        let req = self.http.post(url).json(&work);
        self.call::<Work>("perform", req, self.config.request_timeout)
            .await
            .map_err(|e| self.auction_error(e))
    }
}

/// Finds the [`HttpCellClient`] of a cell from its presence ([`rep_url_of`]); every
/// client shares one HTTP connection pool. Cells without an HTTP address are left out
/// (`None`).
#[derive(Clone, Debug)]
pub struct HttpCellClientFactory {
    http: reqwest::Client,
    config: HttpClientConfig,
}

impl HttpCellClientFactory {
    /// A factory with `config`'s timeouts.
    ///
    /// # Errors
    /// `Unavailable` when the HTTP client cannot be built.
    pub fn new(config: HttpClientConfig) -> diego_core::Result<Self> {
        Ok(HttpCellClientFactory {
            http: config.http_client()?,
            config,
        })
    }

    /// A factory whose clients use `http` (e.g. one built for TLS by
    /// [`ClientTlsConfig`](diego_core::http::tls::ClientTlsConfig), feature `tls`), with
    /// `config`'s per-call timeouts.
    pub fn with_client(config: HttpClientConfig, http: reqwest::Client) -> Self {
        HttpCellClientFactory { http, config }
    }

    /// The client of the cell that registered `presence`.
    ///
    /// # Errors
    /// `Unavailable` naming the cell when its presence has no HTTP address.
    pub fn client_of(&self, presence: &CellPresence) -> diego_core::Result<HttpCellClient> {
        let url = rep_url_of(presence).ok_or_else(|| {
            Error::unavailable(format!(
                "cell {} has no HTTP address (rep_address {:?}, rep_url {:?})",
                presence.cell_id, presence.rep_address, presence.rep_url
            ))
        })?;
        Ok(HttpCellClient::with_client(
            presence.cell_id.clone(),
            &url,
            self.http.clone(),
            self.config.clone(),
        ))
    }
}

impl CellClientFactory for HttpCellClientFactory {
    fn client(&self, presence: &CellPresence) -> Option<Arc<dyn CellClient>> {
        match self.client_of(presence) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                tracing::debug!(error = %e, "cell left out of the auction");
                None
            }
        }
    }
}

/// The BBS's [`RepClient`] over HTTP: each call goes to the rep named by the cell's
/// presence ([`rep_url_of`]).
#[derive(Clone, Debug)]
pub struct HttpRepClient {
    cells: HttpCellClientFactory,
}

impl HttpRepClient {
    /// A client with `config`'s timeouts.
    ///
    /// # Errors
    /// `Unavailable` when the HTTP client cannot be built.
    pub fn new(config: HttpClientConfig) -> diego_core::Result<Self> {
        Ok(HttpRepClient {
            cells: HttpCellClientFactory::new(config)?,
        })
    }
}

impl From<HttpCellClientFactory> for HttpRepClient {
    fn from(cells: HttpCellClientFactory) -> Self {
        HttpRepClient { cells }
    }
}

#[async_trait]
impl RepClient for HttpRepClient {
    async fn stop_lrp_instance(
        &self,
        cell: &CellPresence,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> diego_core::Result<()> {
        self.cells
            .client_of(cell)?
            .stop_lrp_instance(key, instance_key)
            .await
    }

    async fn cancel_task(
        &self,
        cell: &CellPresence,
        task_guid: &TaskGuid,
    ) -> diego_core::Result<()> {
        self.cells.client_of(cell)?.cancel_task(task_guid).await
    }

    async fn update_lrp_instance(
        &self,
        cell: &CellPresence,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        metric_tags: &MetricTags,
    ) -> diego_core::Result<()> {
        self.cells
            .client_of(cell)?
            .update_lrp_instance(key, instance_key, metric_tags)
            .await
    }
}

/// An error and its causes, `": "`-joined (reqwest's own message hides the cause, such
/// as "connection refused").
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
