//! The BBS HTTP API server (axum): every [`BbsApi`] operation under `/v1/...`, named
//! after Diego's routes, JSON in and out, server-sent events for the two event streams.
//!
//! Errors answer with a status by meaning and the body `{"type": ..., "message": ...}`
//! (`InvalidRequest` also lists every violated field). Bodies over the limit get 413;
//! malformed or unknown-field bodies get 400, both in the same JSON form.
//!
//! With a log sink ([`BbsServer::log_sink`]) it also serves the logs of each log guid:
//! `GET /v1/logs/{log_guid}` (recent lines) and `?follow=true` (server-sent events).
//! Every request carries an `X-Vcap-Request-Id` ([`request_id`](crate::request_id)).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::types::*;
use crate::bbs::BbsApi;
use crate::error::Error;
use crate::events::{EventItem, EventStream};
use crate::log_sink::RingBufferLogSink;
use crate::models::cell::CellPresence;
use crate::models::desired_lrp::DesiredLrp;
use crate::models::guid::CellId;
use crate::models::task::DesireTaskRequest;

/// Largest request body accepted by default (4 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;

type Api = Arc<dyn BbsApi>;

/// An error answered as `{"type", "message"}` with a status by meaning.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// The HTTP status of an error kind.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::ResourceNotFound => StatusCode::NOT_FOUND,
        Error::InvalidRequest(_) | Error::BadRequest => StatusCode::BAD_REQUEST,
        Error::Unavailable { .. } | Error::FenceLost { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::InvalidRecord { .. } | Error::InvalidConfig { .. } => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::CONFLICT,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (status_of(&self.0), Json(ErrorBody::of(&self.0))).into_response()
    }
}

/// A JSON body whose rejections (malformed, unknown fields, too large) answer in the
/// API's error form.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(rejection_response(rejection)),
        }
    }
}

fn rejection_response(r: JsonRejection) -> Response {
    let (status, message) = if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        (r.status(), "the request body is too large".to_owned())
    } else {
        let why = r.body_text();
        (
            StatusCode::BAD_REQUEST,
            format!("the request received is invalid: {why}"),
        )
    };
    let body = ErrorBody {
        kind: "InvalidRequest".into(),
        message,
        errors: Vec::new(),
    };
    (status, Json(body)).into_response()
}

/// The empty JSON object answered by operations without a value.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Empty {}

type ApiResult<T> = Result<Json<T>, ApiError>;

fn done(r: Result<(), Error>) -> ApiResult<Empty> {
    r.map(|()| Json(Empty {})).map_err(ApiError)
}

/// The BBS API's routes over `bbs` (an axum `Router`), with the default body limit and
/// no logs.
pub fn bbs_routes(bbs: Arc<dyn BbsApi>) -> Router {
    BbsServer::new(bbs).router()
}

/// The BBS API's routes over `bbs`, refusing bodies over `body_limit` bytes with 413.
pub fn bbs_routes_with_limit(bbs: Arc<dyn BbsApi>, body_limit: usize) -> Router {
    BbsServer::new(bbs).body_limit(body_limit).router()
}

/// Serves the API over `bbs` on `listener` until `cancel` fires (in-flight requests
/// finish). No logs are served; use [`BbsServer`] for them.
pub async fn serve(
    listener: tokio::net::TcpListener,
    bbs: Arc<dyn BbsApi>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    BbsServer::new(bbs).serve(listener, cancel).await
}

/// The BBS HTTP API, configured: the operations of a [`BbsApi`], and (when given a
/// [`RingBufferLogSink`]) the logs of each log guid at `GET /v1/logs/{log_guid}`.
///
/// Every request gets an `X-Vcap-Request-Id` (see [`request_id`](crate::request_id)).
///
/// ```
/// use std::sync::Arc;
/// use diego_core::http::BbsServer;
/// use diego_core::log_sink::RingBufferLogSink;
/// use diego_core::{Bbs, BbsApi};
///
/// let bbs: Arc<dyn BbsApi> = Arc::new(Bbs::builder().build());
/// let logs = Arc::new(RingBufferLogSink::new(1_000));
/// let app: axum::Router = BbsServer::new(bbs).log_sink(logs).router();
/// # drop(app);
/// ```
#[derive(Clone)]
pub struct BbsServer {
    bbs: Arc<dyn BbsApi>,
    body_limit: usize,
    logs: Option<Arc<RingBufferLogSink>>,
    /// Ends the open event and log streams (so a graceful shutdown can finish).
    shutdown: CancellationToken,
}

/// The server's shutdown signal, seen by the streaming handlers.
#[derive(Clone, Debug)]
struct Shutdown(CancellationToken);

impl std::fmt::Debug for BbsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BbsServer")
            .field("body_limit", &self.body_limit)
            .field("logs", &self.logs.is_some())
            .finish()
    }
}

impl BbsServer {
    /// The API over `bbs`: default body limit ([`DEFAULT_BODY_LIMIT`]), no logs.
    pub fn new(bbs: Arc<dyn BbsApi>) -> Self {
        BbsServer {
            bbs,
            body_limit: DEFAULT_BODY_LIMIT,
            logs: None,
            shutdown: CancellationToken::new(),
        }
    }

    /// Refuses request bodies over `bytes` with 413.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Serves the lines kept by `logs` (recent and live). Without it the log route
    /// answers 501 with an `Unavailable` error.
    #[must_use]
    pub fn log_sink(mut self, logs: Arc<RingBufferLogSink>) -> Self {
        self.logs = Some(logs);
        self
    }

    /// Ends the open event and log streams when `token` is cancelled ([`serve`](Self::serve)
    /// does this with its own token), so that a graceful shutdown is not held up by them.
    #[must_use]
    pub fn shutdown_signal(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }

    /// The axum router of the API.
    pub fn router(self) -> Router {
        let logs = Router::new()
            .route("/v1/logs/{log_guid}", get(log_lines))
            .with_state(self.logs);
        let api = operations(self.bbs, self.body_limit)
            .merge(logs)
            .layer(Extension(Shutdown(self.shutdown)));
        crate::request_id::traced(api)
    }

    /// Serves the API on `listener` until `cancel` fires: in-flight requests finish,
    /// open event and log streams end.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        cancel: CancellationToken,
    ) -> std::io::Result<()> {
        let router = self.shutdown_signal(cancel.clone()).router();
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await
    }
}

fn operations(bbs: Arc<dyn BbsApi>, body_limit: usize) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/v1/ping", post(ping))
        .route("/v1/tasks/desire", post(desire_task))
        .route("/v1/tasks/list", post(tasks))
        .route("/v1/tasks/get_by_task_guid", post(task_by_guid))
        .route("/v1/tasks/start", post(start_task))
        .route("/v1/tasks/cancel", post(cancel_task))
        .route("/v1/tasks/fail", post(fail_task))
        .route("/v1/tasks/reject", post(reject_task))
        .route("/v1/tasks/complete", post(complete_task))
        .route("/v1/tasks/resolving", post(resolving_task))
        .route("/v1/tasks/delete", post(delete_task))
        .route("/v1/desired_lrp/desire", post(desire_lrp))
        .route("/v1/desired_lrp/update", post(update_desired_lrp))
        .route("/v1/desired_lrp/remove", post(remove_desired_lrp))
        .route(
            "/v1/desired_lrps/get_by_process_guid",
            post(desired_lrp_by_guid),
        )
        .route("/v1/desired_lrps/list", post(desired_lrps))
        .route(
            "/v1/desired_lrp_scheduling_infos/list",
            post(scheduling_infos),
        )
        .route("/v1/actual_lrps/list", post(actual_lrps))
        .route("/v1/actual_lrps/claim", post(claim_actual_lrp))
        .route("/v1/actual_lrps/start", post(start_actual_lrp))
        .route("/v1/actual_lrps/crash", post(crash_actual_lrp))
        .route("/v1/actual_lrps/fail", post(fail_actual_lrp))
        .route("/v1/actual_lrps/remove", post(remove_actual_lrp))
        .route("/v1/actual_lrps/retire", post(retire_actual_lrp))
        .route("/v1/actual_lrps/evacuate_claimed", post(evacuate_claimed))
        .route("/v1/actual_lrps/evacuate_running", post(evacuate_running))
        .route("/v1/actual_lrps/evacuate_stopped", post(evacuate_stopped))
        .route("/v1/actual_lrps/evacuate_crashed", post(evacuate_crashed))
        .route("/v1/actual_lrps/remove_evacuating", post(remove_evacuating))
        .route("/v1/domains/upsert", post(upsert_domain))
        .route("/v1/domains/list", post(domains))
        .route("/v1/cells/register", post(register_cell))
        .route("/v1/cells/remove", post(remove_cell))
        .route("/v1/cells/list", post(cells))
        .route("/v1/cells/get", post(cell_by_id))
        .route("/v1/events/lrp_instances", get(lrp_events))
        .route("/v1/events/tasks", get(task_events))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(bbs)
}

async fn ping() -> Json<Empty> {
    Json(Empty {})
}

async fn desire_task(
    State(bbs): State<Api>,
    Body(req): Body<DesireTaskRequest>,
) -> ApiResult<Empty> {
    done(bbs.desire_task(req).await)
}

async fn tasks(
    State(bbs): State<Api>,
    Body(req): Body<TasksRequest>,
) -> ApiResult<Vec<crate::models::task::Task>> {
    Ok(Json(bbs.tasks(&req.into()).await?))
}

async fn task_by_guid(
    State(bbs): State<Api>,
    Body(req): Body<TaskGuidRequest>,
) -> ApiResult<crate::models::task::Task> {
    Ok(Json(bbs.task_by_guid(&req.task_guid).await?))
}

async fn start_task(
    State(bbs): State<Api>,
    Body(req): Body<StartTaskRequest>,
) -> ApiResult<StartTaskResponse> {
    let should_start = bbs.start_task(&req.task_guid, &req.cell_id).await?;
    Ok(Json(StartTaskResponse { should_start }))
}

async fn cancel_task(State(bbs): State<Api>, Body(req): Body<TaskGuidRequest>) -> ApiResult<Empty> {
    done(bbs.cancel_task(&req.task_guid).await)
}

async fn fail_task(State(bbs): State<Api>, Body(req): Body<FailTaskRequest>) -> ApiResult<Empty> {
    done(bbs.fail_task(&req.task_guid, &req.failure_reason).await)
}

async fn reject_task(
    State(bbs): State<Api>,
    Body(req): Body<RejectTaskRequest>,
) -> ApiResult<Empty> {
    done(bbs.reject_task(&req.task_guid, &req.rejection_reason).await)
}

async fn complete_task(
    State(bbs): State<Api>,
    Body(r): Body<CompleteTaskRequest>,
) -> ApiResult<Empty> {
    done(
        bbs.complete_task(
            &r.task_guid,
            &r.cell_id,
            r.failed,
            &r.failure_reason,
            &r.result,
        )
        .await,
    )
}

async fn resolving_task(
    State(bbs): State<Api>,
    Body(req): Body<TaskGuidRequest>,
) -> ApiResult<Empty> {
    done(bbs.resolving_task(&req.task_guid).await)
}

async fn delete_task(State(bbs): State<Api>, Body(req): Body<TaskGuidRequest>) -> ApiResult<Empty> {
    done(bbs.delete_task(&req.task_guid).await)
}

async fn desire_lrp(State(bbs): State<Api>, Body(req): Body<DesiredLrp>) -> ApiResult<Empty> {
    done(bbs.desire_lrp(req).await)
}

async fn update_desired_lrp(
    State(bbs): State<Api>,
    Body(req): Body<UpdateDesiredLrpRequest>,
) -> ApiResult<Empty> {
    done(bbs.update_desired_lrp(&req.process_guid, req.update).await)
}

async fn remove_desired_lrp(
    State(bbs): State<Api>,
    Body(req): Body<ProcessGuidRequest>,
) -> ApiResult<Empty> {
    done(bbs.remove_desired_lrp(&req.process_guid).await)
}

async fn desired_lrp_by_guid(
    State(bbs): State<Api>,
    Body(req): Body<ProcessGuidRequest>,
) -> ApiResult<DesiredLrp> {
    Ok(Json(
        bbs.desired_lrp_by_process_guid(&req.process_guid).await?,
    ))
}

async fn desired_lrps(
    State(bbs): State<Api>,
    Body(req): Body<DesiredLrpsRequest>,
) -> ApiResult<Vec<DesiredLrp>> {
    Ok(Json(bbs.desired_lrps(&req.into()).await?))
}

async fn scheduling_infos(
    State(bbs): State<Api>,
    Body(req): Body<DesiredLrpsRequest>,
) -> ApiResult<Vec<crate::models::desired_lrp::SchedulingInfo>> {
    Ok(Json(bbs.desired_lrp_scheduling_infos(&req.into()).await?))
}

async fn actual_lrps(
    State(bbs): State<Api>,
    Body(req): Body<ActualLrpsRequest>,
) -> ApiResult<Vec<Arc<crate::models::actual_lrp::ActualLrp>>> {
    Ok(Json(bbs.actual_lrps(&req.into()).await?))
}

fn instance_key(
    r: &ActualLrpRequest,
) -> Result<&crate::models::actual_lrp::ActualLrpInstanceKey, ApiError> {
    r.actual_lrp_instance_key
        .as_ref()
        .ok_or_else(|| ApiError(missing("actual_lrp_instance_key")))
}

fn net_info(
    r: &ActualLrpRequest,
) -> Result<&crate::models::actual_lrp::ActualLrpNetInfo, ApiError> {
    r.actual_lrp_net_info
        .as_ref()
        .ok_or_else(|| ApiError(missing("actual_lrp_net_info")))
}

fn missing(field: &str) -> Error {
    let mut v = crate::models::validation::ValidationErrors::new();
    v.add(field, "is required");
    Error::InvalidRequest(v)
}

async fn claim_actual_lrp(
    State(bbs): State<Api>,
    Body(r): Body<ActualLrpRequest>,
) -> ApiResult<Empty> {
    done(
        bbs.claim_actual_lrp(&r.actual_lrp_key, instance_key(&r)?)
            .await,
    )
}

async fn start_actual_lrp(
    State(bbs): State<Api>,
    Body(r): Body<ActualLrpRequest>,
) -> ApiResult<Empty> {
    done(
        bbs.start_actual_lrp(
            &r.actual_lrp_key,
            instance_key(&r)?,
            net_info(&r)?,
            r.routable,
        )
        .await,
    )
}

async fn crash_actual_lrp(
    State(bbs): State<Api>,
    Body(r): Body<ActualLrpRequest>,
) -> ApiResult<Empty> {
    done(
        bbs.crash_actual_lrp(&r.actual_lrp_key, instance_key(&r)?, &r.reason)
            .await,
    )
}

async fn fail_actual_lrp(
    State(bbs): State<Api>,
    Body(r): Body<ActualLrpRequest>,
) -> ApiResult<Empty> {
    done(bbs.fail_actual_lrp(&r.actual_lrp_key, &r.reason).await)
}

async fn remove_actual_lrp(
    State(bbs): State<Api>,
    Body(r): Body<ActualLrpRequest>,
) -> ApiResult<Empty> {
    done(
        bbs.remove_actual_lrp(&r.actual_lrp_key, r.actual_lrp_instance_key.as_ref())
            .await,
    )
}

async fn retire_actual_lrp(
    State(bbs): State<Api>,
    Body(r): Body<ActualLrpRequest>,
) -> ApiResult<Empty> {
    done(bbs.retire_actual_lrp(&r.actual_lrp_key).await)
}

fn keep(r: Result<bool, Error>) -> ApiResult<EvacuationResponse> {
    r.map(|keep_container| Json(EvacuationResponse { keep_container }))
        .map_err(ApiError)
}

async fn evacuate_claimed(
    State(bbs): State<Api>,
    Body(r): Body<ActualLrpRequest>,
) -> ApiResult<EvacuationResponse> {
    keep(
        bbs.evacuate_claimed_actual_lrp(&r.actual_lrp_key, instance_key(&r)?)
            .await,
    )
}

async fn evacuate_running(
    State(bbs): State<Api>,
    Body(r): Body<ActualLrpRequest>,
) -> ApiResult<EvacuationResponse> {
    keep(
        bbs.evacuate_running_actual_lrp(&r.actual_lrp_key, instance_key(&r)?, net_info(&r)?)
            .await,
    )
}

async fn evacuate_stopped(
    State(bbs): State<Api>,
    Body(r): Body<ActualLrpRequest>,
) -> ApiResult<EvacuationResponse> {
    keep(
        bbs.evacuate_stopped_actual_lrp(&r.actual_lrp_key, instance_key(&r)?)
            .await,
    )
}

async fn evacuate_crashed(
    State(bbs): State<Api>,
    Body(r): Body<ActualLrpRequest>,
) -> ApiResult<EvacuationResponse> {
    keep(
        bbs.evacuate_crashed_actual_lrp(&r.actual_lrp_key, instance_key(&r)?, &r.reason)
            .await,
    )
}

async fn remove_evacuating(
    State(bbs): State<Api>,
    Body(r): Body<ActualLrpRequest>,
) -> ApiResult<Empty> {
    done(
        bbs.remove_evacuating_actual_lrp(&r.actual_lrp_key, instance_key(&r)?)
            .await,
    )
}

async fn upsert_domain(
    State(bbs): State<Api>,
    Body(r): Body<UpsertDomainRequest>,
) -> ApiResult<Empty> {
    done(
        bbs.upsert_domain(&r.domain, Duration::from_millis(r.ttl_ms))
            .await,
    )
}

async fn domains(State(bbs): State<Api>) -> ApiResult<Vec<String>> {
    Ok(Json(bbs.domains().await?))
}

async fn register_cell(State(bbs): State<Api>, Body(p): Body<CellPresence>) -> ApiResult<Empty> {
    done(bbs.register_cell(&p).await)
}

async fn remove_cell(State(bbs): State<Api>, Body(r): Body<CellIdRequest>) -> ApiResult<Empty> {
    done(bbs.remove_cell(&r.cell_id).await)
}

async fn cells(State(bbs): State<Api>) -> ApiResult<Vec<CellPresence>> {
    Ok(Json(bbs.cells().await?))
}

async fn cell_by_id(
    State(bbs): State<Api>,
    Body(r): Body<CellIdRequest>,
) -> ApiResult<CellPresence> {
    Ok(Json(bbs.cell_by_id(&r.cell_id).await?))
}

/// Query of the LRP event stream.
#[derive(Debug, Deserialize)]
struct LrpEventsQuery {
    cell_id: Option<String>,
}

async fn lrp_events(
    State(bbs): State<Api>,
    Extension(Shutdown(stop)): Extension<Shutdown>,
    Query(q): Query<LrpEventsQuery>,
) -> Result<Response, ApiError> {
    let cell = q.cell_id.filter(|c| !c.is_empty()).map(CellId::from);
    let stream = bbs.subscribe_lrp_events(cell).await?;
    Ok(sse(stream, |e| e.name(), stop).into_response())
}

async fn task_events(
    State(bbs): State<Api>,
    Extension(Shutdown(stop)): Extension<Shutdown>,
) -> Result<Response, ApiError> {
    let stream = bbs.subscribe_task_events().await?;
    Ok(sse(stream, |e| e.name(), stop).into_response())
}

/// The event name of a lag notice.
pub const LAGGED_EVENT: &str = "lagged";

/// Server-sent events: `event:` the wire name, `id:` the sequence number, `data:` the
/// event's JSON; a lag notice is `event: lagged` with `{"missed": n}`. The stream ends
/// when `stop` is cancelled.
fn sse<E>(
    stream: EventStream<E>,
    name: fn(&E) -> &'static str,
    stop: CancellationToken,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    E: Serialize + Send + Sync + 'static,
{
    let events = stream.map(move |item| {
        let event = match item {
            EventItem::Event(e) => Event::default()
                .event(name(&e.event))
                .id(e.seq.to_string())
                .json_data(&e.event)
                .unwrap_or_else(|_| Event::default().event("error")),
            EventItem::Lagged { missed } => Event::default()
                .event(LAGGED_EVENT)
                .data(format!("{{\"missed\":{missed}}}")),
        };
        Ok(event)
    });
    Sse::new(events.take_until(stop.cancelled_owned())).keep_alive(KeepAlive::default())
}

/// The event name of each line of a followed log stream.
pub const LOG_EVENT: &str = "log";

/// Query of the log route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    /// Follow new lines (server-sent events) instead of answering the recent ones.
    #[serde(default)]
    follow: bool,
}

/// `GET /v1/logs/{log_guid}`: the lines kept for `log_guid` (a JSON list of
/// [`LogRecord`]s, oldest first); with `?follow=true`, server-sent events: the lines kept,
/// then new ones as they come, each as `event: log` with a [`LogRecord`] as data.
async fn log_lines(
    State(logs): State<Option<Arc<RingBufferLogSink>>>,
    Extension(Shutdown(stop)): Extension<Shutdown>,
    Path(log_guid): Path<String>,
    query: Result<Query<LogsQuery>, QueryRejection>,
) -> Response {
    let Some(logs) = logs else {
        let e = Error::unavailable("this BBS serves no logs: it was started without a log sink");
        return (StatusCode::NOT_IMPLEMENTED, Json(ErrorBody::of(&e))).into_response();
    };
    let follow = match query {
        Ok(Query(q)) => q.follow,
        Err(rejection) => {
            let mut v = crate::models::validation::ValidationErrors::new();
            v.add("follow", rejection.body_text());
            return ApiError(Error::InvalidRequest(v)).into_response();
        }
    };
    if !follow {
        let lines: Vec<LogRecord> = logs.lines(&log_guid).iter().map(LogRecord::from).collect();
        return Json(lines).into_response();
    }
    let events = logs.subscribe(&log_guid).map(|line| {
        let event = Event::default()
            .event(LOG_EVENT)
            .json_data(LogRecord::from(&line))
            .unwrap_or_else(|_| Event::default().event("error"));
        Ok::<_, Infallible>(event)
    });
    Sse::new(events.take_until(stop.cancelled_owned()))
        .keep_alive(KeepAlive::default())
        .into_response()
}
