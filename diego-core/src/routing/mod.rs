//! Routing, the plug-in point of a load balancer: the [`Router`] trait — the sink the
//! route emitter writes the routing table to — the [`RoutingTable`] it writes, and the
//! [`RouteEmitter`] that builds the table from the BBS's LRP events.
//!
//! Always compiled and free of any HTTP stack: a host that runs its own load balancer
//! implements [`Router`] and hands it to the emitter. The default router — an in-memory
//! table served by an HTTP and a TCP proxy — is [`crate::router`] (feature `router`).
//! Nothing here knows how containers run, where work is placed, or how traffic reaches
//! an endpoint: no proxy, no socket.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use diego_core::routing::{RouteChange, RouteEmitter, Router, RoutingTable};
//! use diego_core::prelude::*;
//! use diego_core::{Bbs, DesiredLrp, Routes, RunAction};
//! use tokio::sync::watch;
//! use tokio_util::sync::CancellationToken;
//!
//! /// A load balancer of one's own, here only its view of the routes.
//! #[derive(Debug)]
//! struct MyBalancer(watch::Sender<RoutingTable>);
//!
//! #[async_trait]
//! impl Router for MyBalancer {
//!     async fn apply(&self, changes: &[RouteChange]) -> diego_core::Result<()> {
//!         self.0.send_modify(|table| table.apply(changes));
//!         Ok(())
//!     }
//!     async fn replace(&self, table: RoutingTable) -> diego_core::Result<()> {
//!         self.0.send_replace(table);
//!         Ok(())
//!     }
//! }
//!
//! let bbs = Arc::new(Bbs::builder().build());
//! let (balancer, mut routes) = watch::channel(RoutingTable::new());
//! let cancel = CancellationToken::new();
//! let emitter = RouteEmitter::builder(bbs.clone(), Arc::new(MyBalancer(balancer))).build();
//! let running = tokio::spawn(emitter.run(cancel.clone()));
//!
//! // "web" is routed at demo.localhost; no instance runs yet, so the route is known
//! // with no endpoint.
//! let mut lrp = DesiredLrp::new("web", "apps", "preloaded:cflinuxfs4", 1,
//!     RunAction::new("/app/server", "vcap"));
//! lrp.scheduling_info.routes = Routes::http(&["demo.localhost"], 8080);
//! bbs.desire_lrp(lrp).await?;
//! let table = routes.wait_for(|t| t.http_endpoints("demo.localhost").is_some()).await.unwrap();
//! assert_eq!(table.http_endpoints("demo.localhost"), Some(&[][..]));
//! drop(table);
//!
//! cancel.cancel();
//! running.await.unwrap()?;
//! # Ok::<(), diego_core::Error>(())
//! # }).unwrap();
//! ```

mod route_emitter;
mod routing_table;

use async_trait::async_trait;

use crate::error::Result;

pub use route_emitter::{EmitterStats, RouteEmitter, RouteEmitterBuilder};
pub(crate) use routing_table::normalize_host;
pub use routing_table::{Endpoint, RouteChange, RouteKey, RoutingTable};

/// The routing-table sink: what the route emitter writes to.
///
/// Implement it to feed a load balancer of your own; the default, with feature `router`,
/// is [`TableRouter`](crate::router::TableRouter), which the proxies serve. Both
/// operations are idempotent: applying the same changes twice, or replacing the table
/// with the one already there, changes nothing.
#[async_trait]
pub trait Router: Send + Sync + std::fmt::Debug {
    /// Applies `changes` in order.
    async fn apply(&self, changes: &[RouteChange]) -> Result<()>;

    /// Replaces the whole table (after a start or a resynchronisation).
    async fn replace(&self, table: RoutingTable) -> Result<()>;
}
