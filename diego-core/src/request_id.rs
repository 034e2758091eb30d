//! The request id of the work a task is doing: Diego's `X-Vcap-Request-Id`, followed
//! from the BBS's API through the auctioneer to the cells.
//!
//! The id lives in a task-local scope: the HTTP servers (with the `http` feature, see
//! `diego_core::http::request_id`) run each request's handler inside [`scope`], and the
//! HTTP clients add [`current`] to the calls they make. Work that leaves the request's
//! task carries the id explicitly: the auctioneer keeps the id of each piece of work it
//! queues and runs the cell calls and BBS reports of its batched rounds inside a
//! [`within`] scope again.
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

use std::future::Future;

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
