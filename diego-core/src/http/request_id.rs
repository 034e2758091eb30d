//! Request ids: the `X-Vcap-Request-Id` header Diego uses to follow one request through
//! the BBS, the auctioneer and the cells.
//!
//! On the server side, [`traced`] wraps an axum router (the BBS's or a rep's) so every
//! request has an id (the caller's, or a fresh UUID when it sent none), runs in a
//! `tracing` span recording it, answers with it in the same header, and is handled
//! inside a task-local scope. On the client side, [`forward`] adds the id of the
//! request being handled (or of an explicit [`scope`]) to an outgoing call, so calls
//! made on a request's behalf carry its id. Work that leaves the request's task (a
//! spawned task, the auction's batches) does not carry it.
//!
//! ```
//! use diego_core::http::request_id;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! assert_eq!(request_id::current(), None);
//! let seen = request_id::scope("req-1", async { request_id::current() }).await;
//! assert_eq!(seen.as_deref(), Some("req-1"));
//! # });
//! ```

use std::future::Future;

use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// The header carrying the request id (Diego's `X-Vcap-Request-Id`, lower-cased as HTTP/2
/// and `http` spell header names).
pub const REQUEST_ID_HEADER: &str = "x-vcap-request-id";

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request this task is handling, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `f` with `id` as the current request id: calls made by `f` through
/// [`BbsClient`](super::BbsClient) or the executor's HTTP clients carry it.
pub async fn scope<F: Future>(id: impl Into<String>, f: F) -> F::Output {
    CURRENT.scope(id.into(), f).await
}

/// Adds the current request id (if any) to an outgoing request.
pub fn forward(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match current() {
        Some(id) => request.header(REQUEST_ID_HEADER, id),
        None => request,
    }
}

/// The id a request carries in [`REQUEST_ID_HEADER`], when it is readable text.
pub fn of_request<B>(request: &axum::http::Request<B>) -> Option<&str> {
    request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
}

/// Wraps `router` so that every request has an id (the caller's `X-Vcap-Request-Id`, or
/// a fresh UUID), is handled in a `tracing` span named `request` recording `method`,
/// `path` and `request_id`, runs with that id as [`current`], and answers with it in
/// the same header.
pub fn traced<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let header = HeaderName::from_static(REQUEST_ID_HEADER);
    // The last layer added is the outermost: the id is set first, then the span opens,
    // then the answer gets the id, then the handler runs inside the scope.
    router
        .layer(axum::middleware::from_fn(enter))
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(span))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
}

fn span(request: &axum::http::Request<Body>) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = of_request(request).unwrap_or_default(),
    )
}

async fn enter(request: Request, next: Next) -> Response {
    match of_request(&request).map(str::to_owned) {
        Some(id) => CURRENT.scope(id, next.run(request)).await,
        None => next.run(request).await,
    }
}
