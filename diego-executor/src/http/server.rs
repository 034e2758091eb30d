//! [`RepServer`]: a [`Rep`]'s HTTP API (axum), Diego's rep routes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use diego_auction::Work;
use diego_core::http::server::{ApiError, Body, Empty, DEFAULT_BODY_LIMIT};
use diego_core::request_id;
use diego_core::ValidationErrors;
use diego_core::{ActualLrpInstanceKey, ActualLrpKey, CellState, Error, TaskGuid};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::types::{EvacuateResponse, LrpInstanceRequest, UpdateLrpInstanceRequest};
use crate::rep::Rep;

/// A [`Rep`]'s HTTP API. See the [module docs](super) for the routes.
///
/// `POST /evacuate` starts [`Rep::evacuate`] in the background (once; later calls, or a
/// call while the host already evacuates the rep, answer the same without starting
/// another) and answers at once, as Diego's rep does; the token given to
/// [`RepServer::on_evacuated`] is cancelled when the evacuation it started is over, so
/// the host can stop the cell.
#[derive(Clone, Debug)]
pub struct RepServer {
    rep: Rep,
    body_limit: usize,
    on_evacuated: Option<CancellationToken>,
}

#[derive(Debug)]
struct Shared {
    rep: Rep,
    evacuation_started: AtomicBool,
    on_evacuated: Option<CancellationToken>,
}

type St = Arc<Shared>;

impl RepServer {
    /// The API of `rep`, refusing bodies over
    /// [`DEFAULT_BODY_LIMIT`] bytes.
    pub fn new(rep: Rep) -> Self {
        RepServer {
            rep,
            body_limit: DEFAULT_BODY_LIMIT,
            on_evacuated: None,
        }
    }

    /// Refuses request bodies over `bytes` with 413.
    #[must_use]
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Cancels `token` when an evacuation requested through `POST /evacuate` is over.
    #[must_use]
    pub fn on_evacuated(mut self, token: CancellationToken) -> Self {
        self.on_evacuated = Some(token);
        self
    }

    /// The axum router of the API.
    pub fn router(self) -> Router {
        let shared = Arc::new(Shared {
            rep: self.rep,
            evacuation_started: AtomicBool::new(false),
            on_evacuated: self.on_evacuated,
        });
        let router = Router::new()
            .route("/ping", get(ping))
            .route("/state", get(state))
            .route("/work", post(perform))
            .route(
                "/v1/lrps/{process_guid}/instances/{instance_guid}/stop",
                post(stop_lrp_instance),
            )
            .route(
                "/v1/lrps/{process_guid}/instances/{instance_guid}",
                axum::routing::put(update_lrp_instance),
            )
            .route("/v1/tasks/{task_guid}/cancel", post(cancel_task))
            .route("/evacuate", post(evacuate))
            .layer(DefaultBodyLimit::max(self.body_limit))
            .with_state(shared);
        request_id::traced(router)
    }

    /// Serves the API on `listener` until `cancel` fires (in-flight requests finish).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        cancel: CancellationToken,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await
    }
}

async fn ping() -> Json<Empty> {
    Json(Empty {})
}

async fn state(State(s): State<St>) -> Json<Arc<CellState>> {
    Json(s.rep.state())
}

async fn perform(State(s): State<St>, Body(work): Body<Work>) -> Json<Work> {
    Json(s.rep.perform(work).await)
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, Json(Empty {})).into_response()
}

/// The path's guids must name the body's instance, and the instance must be this cell's.
fn check_instance(
    rep: &Rep,
    process_guid: &str,
    instance_guid: &str,
    key: &ActualLrpKey,
    ik: &ActualLrpInstanceKey,
) -> Result<(), ApiError> {
    let mut v = ValidationErrors::new();
    if key.process_guid.as_str() != process_guid {
        v.add(
            "actual_lrp_key.process_guid",
            format!("does not match the path's process guid {process_guid:?}"),
        );
    }
    if ik.instance_guid.as_str() != instance_guid {
        v.add(
            "actual_lrp_instance_key.instance_guid",
            format!("does not match the path's instance guid {instance_guid:?}"),
        );
    }
    if &ik.cell_id != rep.cell_id() {
        v.add(
            "actual_lrp_instance_key.cell_id",
            format!("names another cell than this one ({})", rep.cell_id()),
        );
    }
    if v.is_empty() {
        Ok(())
    } else {
        Err(ApiError(Error::InvalidRequest(v)))
    }
}

async fn stop_lrp_instance(
    State(s): State<St>,
    Path((process_guid, instance_guid)): Path<(String, String)>,
    Body(r): Body<LrpInstanceRequest>,
) -> Result<Response, ApiError> {
    check_instance(
        &s.rep,
        &process_guid,
        &instance_guid,
        &r.actual_lrp_key,
        &r.actual_lrp_instance_key,
    )?;
    s.rep
        .stop_lrp_instance(&r.actual_lrp_key, &r.actual_lrp_instance_key)
        .await?;
    Ok(accepted())
}

async fn update_lrp_instance(
    State(s): State<St>,
    Path((process_guid, instance_guid)): Path<(String, String)>,
    Body(r): Body<UpdateLrpInstanceRequest>,
) -> Result<Response, ApiError> {
    check_instance(
        &s.rep,
        &process_guid,
        &instance_guid,
        &r.actual_lrp_key,
        &r.actual_lrp_instance_key,
    )?;
    s.rep
        .update_lrp_instance(
            &r.actual_lrp_key,
            &r.actual_lrp_instance_key,
            &r.metric_tags,
        )
        .await?;
    Ok(accepted())
}

async fn cancel_task(
    State(s): State<St>,
    Path(task_guid): Path<String>,
) -> Result<Response, ApiError> {
    s.rep.cancel_task(&TaskGuid::new(task_guid)).await?;
    Ok(accepted())
}

async fn evacuate(State(s): State<St>) -> Response {
    // Started once: not again on a later request, nor when the host already evacuates
    // the rep itself.
    let already = s.rep.is_evacuating();
    if !s.evacuation_started.swap(true, Ordering::SeqCst) && !already {
        let shared = s.clone();
        let id = request_id::current().unwrap_or_default();
        let work = async move {
            shared.rep.evacuate().await;
            if let Some(token) = &shared.on_evacuated {
                token.cancel();
            }
        };
        // The evacuation keeps the request's span and id: its BBS calls carry it.
        tokio::spawn(request_id::scope(id, work).instrument(tracing::Span::current()));
    }
    let body = EvacuateResponse {
        ping_path: "/ping".into(),
    };
    (StatusCode::ACCEPTED, Json(body)).into_response()
}
