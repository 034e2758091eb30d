//! The default [`Router`](crate::routing::Router) (feature `router`): an in-memory
//! [`TableRouter`] served by an [`HttpProxy`] (by `Host` header) and a [`TcpProxy`] (by
//! external port). The route emitter that keeps the table up to date, and the table's
//! types, are in [`crate::routing`], which needs no HTTP stack.
//!
//! The proxies know nothing of LRPs or of the BBS, only the endpoints of the table:
//! a known route with no endpoint answers 503, an unknown one 404.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use diego_core::prelude::*;
//! use diego_core::router::TableRouter;
//! use diego_core::routing::RouteEmitter;
//! use diego_core::{ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo, Bbs, BbsApi,
//!     DesiredLrp, PortMapping, Routes, RunAction};
//! use tokio_util::sync::CancellationToken;
//!
//! let bbs = Arc::new(Bbs::builder().build());
//! let table = TableRouter::new();
//! let cancel = CancellationToken::new();
//! let emitter = RouteEmitter::builder(bbs.clone(), Arc::new(table.clone())).build();
//! let running = tokio::spawn(emitter.run(cancel.clone()));
//!
//! // One instance of "web", routed at demo.localhost → container port 8080.
//! let mut lrp = DesiredLrp::new("web", "apps", "preloaded:cflinuxfs4", 1,
//!     RunAction::new("/app/server", "vcap"));
//! lrp.scheduling_info.routes = Routes::http(&["demo.localhost"], 8080);
//! bbs.desire_lrp(lrp).await?;
//! let key = ActualLrpKey::new("web", 0, "apps");
//! let instance = ActualLrpInstanceKey::new("instance-0", "cell-1");
//! bbs.claim_actual_lrp(&key, &instance).await?;
//! let net_info = ActualLrpNetInfo {
//!     address: "10.0.0.5".into(),
//!     ports: vec![PortMapping { container_port: 8080, host_port: 61001, ..Default::default() }],
//!     ..Default::default()
//! };
//! bbs.start_actual_lrp(&key, &instance, &net_info, true).await?;
//!
//! // The emitter follows the events; the table learns the endpoint.
//! let mut changes = table.subscribe();
//! while table.table().http_endpoints("Demo.Localhost").is_none_or(|e| e.is_empty()) {
//!     changes.changed().await.unwrap();
//! }
//! let endpoints = table.table().http_endpoints("demo.localhost").unwrap().to_vec();
//! assert_eq!(endpoints[0].authority(), "10.0.0.5:61001");
//! assert_eq!(endpoints[0].index, 0);
//!
//! cancel.cancel();
//! running.await.unwrap()?;
//! # Ok::<(), diego_core::Error>(())
//! # }).unwrap();
//! ```

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http1;
mod pool;
mod proxy;
mod table;
mod tcp;

// For the proxies (`super::normalize_host`): a request's host is looked up as the
// routing table stores host names.
use crate::routing::normalize_host;

pub use proxy::{HttpProxy, HttpProxyBuilder};
pub use table::TableRouter;
pub use tcp::{TcpProxy, TcpProxyBuilder};
