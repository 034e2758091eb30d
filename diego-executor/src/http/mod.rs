//! The rep over HTTP (feature `http`): the rep's API ([`RepServer`], axum) and its
//! clients ([`HttpCellClient`] for the auction, [`HttpRepClient`] for the BBS,
//! [`HttpCellClientFactory`] finding a cell's client from its presence), so the BBS,
//! the auctioneer and the cells can live in different processes.
//!
//! Routes are Diego's rep routes:
//!
//! | method | path | what |
//! |---|---|---|
//! | `GET` | `/ping` | the rep answers |
//! | `GET` | `/state` | the cell's [`CellState`](diego_core::CellState) |
//! | `POST` | `/work` | perform a [`Work`](diego_auction::Work); answers the work not taken |
//! | `POST` | `/v1/lrps/{process_guid}/instances/{instance_guid}/stop` | stop an LRP instance (202) |
//! | `PUT` | `/v1/lrps/{process_guid}/instances/{instance_guid}` | new metric tags of an instance (202) |
//! | `POST` | `/v1/tasks/{task_guid}/cancel` | cancel a task (202) |
//! | `POST` | `/evacuate` | start evacuating the cell (202, `{"ping_path": "/ping"}`) |
//!
//! Errors answer `{"type", "message"}` as the BBS API does
//! ([`ErrorBody`](diego_core::http::types::ErrorBody)). Every request carries an
//! `X-Vcap-Request-Id` ([`request_id`](diego_core::request_id)), and the clients
//! forward the one of the request they are called for.
//!
//! ```
//! use std::sync::Arc;
//! use diego_auction::{CellClient, Work};
//! use diego_core::{Bbs, BbsApi};
//! use diego_executor::http::{HttpCellClient, HttpClientConfig, RepServer};
//! use diego_executor::{Executor, Rep, RepConfig};
//! use diego_garden::FakeBackend;
//! use tokio_util::sync::CancellationToken;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bbs: Arc<dyn BbsApi> = Arc::new(Bbs::builder().build());
//! let executor = Executor::builder(Arc::new(FakeBackend::new())).build().await?;
//! let rep = Rep::new(bbs, executor, RepConfig::new("cell-1"));
//!
//! // Serve the rep on a free port...
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let url = format!("http://{}", listener.local_addr()?);
//! let cancel = CancellationToken::new();
//! tokio::spawn(RepServer::new(rep).serve(listener, cancel.clone()));
//!
//! // ...and reach it as the auction does.
//! let cell = HttpCellClient::new("cell-1", &url, &HttpClientConfig::default())?;
//! cell.ping().await?;
//! let state = cell.state().await?;
//! assert_eq!(state.cell_id.as_str(), "cell-1");
//! let not_taken = cell.perform(Work::new("cell-1")).await?;
//! assert!(not_taken.is_empty());
//! cancel.cancel();
//! # Ok(()) }
//! ```

mod client;
mod server;
mod types;

pub use client::{
    rep_url_of, HttpCellClient, HttpCellClientFactory, HttpClientConfig, HttpRepClient,
};
pub use server::RepServer;
pub use types::{EvacuateResponse, LrpInstanceRequest, UpdateLrpInstanceRequest};
