//! The BBS over HTTP (feature `http`): the [`server`] (axum) that serves any
//! [`BbsApi`](crate::BbsApi), and [`BbsClient`] that implements `BbsApi` against it.
//! Both share one set of request/response [`types`]. The server can also serve the
//! lines of a [`RingBufferLogSink`](crate::log_sink::RingBufferLogSink) by log guid,
//! and every request carries an `X-Vcap-Request-Id` ([`request_id`](crate::request_id)).

mod callback;
mod client;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;
pub mod types;

pub use callback::HttpCompletionCallback;
pub use client::LogRecordStream;
pub use client::{check_bbs_urls, BbsClient, NOT_ACTIVE_BBS};
pub use server::{bbs_routes, serve, BbsServer};
pub use types::LogRecord;
