//! Request ids: the `X-Vcap-Request-Id` header Diego uses to follow one request through
//! the BBS, the auctioneer and the cells.
//!
//! On the server side, [`traced`] wraps an axum router (the BBS's or a rep's) so every
//! request has an id (the caller's, or a fresh UUID when it sent none), runs in a
//! `tracing` span recording it, answers with it in the same header, and is handled
//! inside a task-local scope. On the client side, [`forward`] adds the id of the
//! request being handled (or of an explicit [`scope`]) to an outgoing call, so calls
//! made on a request's behalf carry its id. The task-local part ([`current`], [`scope`])
//! lives in [`crate::request_id`] (no HTTP needed), re-exported here; work that leaves
//! the request's task (the auction's batched rounds) carries the id explicitly.
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

pub use crate::request_id::{current, scope, within};

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
        Some(id) => scope(id, next.run(request)).await,
        None => next.run(request).await,
    }
}
