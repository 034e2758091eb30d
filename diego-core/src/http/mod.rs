//! The BBS over HTTP (feature `http`): the [`server`] (axum) that serves any
//! [`BbsApi`](crate::BbsApi), and [`BbsClient`] that implements `BbsApi` against it.
//! Both share one set of request/response [`types`].

mod callback;
mod client;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;
pub mod types;

pub use callback::HttpCompletionCallback;
pub use client::BbsClient;
pub use server::{router, serve};
