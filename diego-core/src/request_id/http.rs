//! The request id's HTTP plumbing (feature `http`): the `X-Vcap-Request-Id` header on
//! the servers' requests and answers and on the clients' calls. The id itself lives in
//! the task-local scope of the parent module; this part knows axum and reqwest.

use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use super::{current, scope, REQUEST_ID_HEADER};

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
