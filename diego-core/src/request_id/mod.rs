//! The request id of the work a task is doing: Diego's `X-Vcap-Request-Id`, followed
//! from the BBS's API through the auctioneer to the cells.
//!
//! The id lives in a task-local scope ([`current`], [`scope`], [`within`]), which needs no
//! HTTP. Work that leaves the request's task carries the id explicitly: the auctioneer
//! keeps the id of each piece of work it queues and runs the cell calls and BBS reports
//! of its batched rounds inside a [`within`] scope again.
//!
//! With feature `http`, the header's plumbing: on the server side, [`traced`] wraps an
//! axum router (the BBS's or a rep's) so every request has an id (the caller's, or a
//! fresh UUID when it sent none), runs in a `tracing` span recording it, answers with it
//! in the same header, and is handled inside the task-local scope. On the client side,
//! [`forward`] adds the current id to an outgoing call, so calls made on a request's
//! behalf carry its id.
//!
//! ```
//! use diego_core::request_id;
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! assert_eq!(request_id::current(), None);
//! let seen = request_id::scope("req-1", async { request_id::current() }).await;
//! assert_eq!(seen.as_deref(), Some("req-1"));
//! // `within` with no id leaves the current scope as it is.
//! assert_eq!(request_id::within(None, async { request_id::current() }).await, None);
//! # });
//! ```

#[cfg(feature = "http")]
mod http;

use std::future::Future;

#[cfg(feature = "http")]
pub use http::{forward, of_request, traced};

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

/// Runs `f` with `id` as the current request id: calls made by `f` through the HTTP
/// clients (`BbsClient`, the executor's rep and cell clients) carry it.
pub async fn scope<F: Future>(id: impl Into<String>, f: F) -> F::Output {
    CURRENT.scope(id.into(), f).await
}

/// Runs `f` inside [`scope`] when `id` is given, as it is otherwise.
pub async fn within<F: Future>(id: Option<String>, f: F) -> F::Output {
    match id {
        Some(id) => scope(id, f).await,
        None => f.await,
    }
}
