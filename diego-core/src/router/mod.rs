//! Routing (feature `router`): the [`Router`] trait — the routing-table sink the route
//! emitter writes to — its types, the [`RouteEmitter`] that builds the table from the
//! BBS's LRP events, and the default router: an in-memory [`TableRouter`] served by an
//! [`HttpProxy`] (by `Host` header) and a [`TcpProxy`] (by external port).
//!
//! A host that runs its own load balancer implements [`Router`] and hands it to the
//! emitter; nothing here knows how containers run or where work is placed, and the
//! proxies know nothing of LRPs (only endpoints).
//!
//! The table has two halves: HTTP (host name → endpoints, from the `cf-router` routes)
//! and TCP (external port → endpoints, from the `tcp-router` routes). A route with an
//! empty endpoint list is known but has no routable instance (the proxy answers 503); a
//! route absent from the table is unknown (404).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use diego_core::router::{RouteEmitter, Router, TableRouter};
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

mod emitter;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http1;
mod pool;
mod proxy;
mod table;
mod tcp;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::guid::{InstanceGuid, ProcessGuid};
use crate::modification_tag::ModificationTag;

pub use emitter::{EmitterStats, RouteEmitter, RouteEmitterBuilder};
pub use proxy::{HttpProxy, HttpProxyBuilder};
pub use table::TableRouter;
pub use tcp::{TcpProxy, TcpProxyBuilder};

/// The routing-table sink: what the route emitter writes to.
///
/// Implement it to feed a load balancer of your own; the default is [`TableRouter`].
/// Both operations are idempotent: applying the same changes twice, or replacing the
/// table with the one already there, changes nothing.
#[async_trait]
pub trait Router: Send + Sync + std::fmt::Debug {
    /// Applies `changes` in order.
    async fn apply(&self, changes: &[RouteChange]) -> Result<()>;

    /// Replaces the whole table (after a start or a resynchronisation).
    async fn replace(&self, table: RoutingTable) -> Result<()>;
}

/// One instance reachable for a route: where to send traffic, and which instance it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    /// Host name or IP address to connect to.
    pub address: String,
    /// Port to connect to.
    pub port: u16,
    /// The LRP the instance belongs to.
    pub process_guid: ProcessGuid,
    /// The attempt (instance guid) serving.
    pub instance_guid: InstanceGuid,
    /// The instance index.
    pub index: i32,
    /// The modification tag of the ActualLRP row the endpoint came from.
    #[serde(default)]
    pub modification_tag: ModificationTag,
}

impl Endpoint {
    /// An endpoint at `address:port` for instance `index` of `process_guid`, with an
    /// empty modification tag.
    pub fn new(
        address: impl Into<String>,
        port: u16,
        process_guid: impl Into<ProcessGuid>,
        instance_guid: impl Into<InstanceGuid>,
        index: i32,
    ) -> Self {
        Endpoint {
            address: address.into(),
            port,
            process_guid: process_guid.into(),
            instance_guid: instance_guid.into(),
            index,
            modification_tag: ModificationTag::default(),
        }
    }

    /// `address:port`, with an IPv6 address in brackets.
    pub fn authority(&self) -> String {
        if self.address.contains(':') && !self.address.starts_with('[') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

/// Which route: an HTTP host name or a TCP external port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteKey {
    /// An HTTP host name (lower case, without port).
    Http(String),
    /// A TCP port on the router.
    Tcp(u16),
}

impl RouteKey {
    /// The HTTP route of `hostname`, normalised (lower case, trailing dot removed).
    pub fn http(hostname: &str) -> Self {
        RouteKey::Http(normalize_host(hostname))
    }

    /// The TCP route of external port `port`.
    pub fn tcp(port: u16) -> Self {
        RouteKey::Tcp(port)
    }
}

/// Lower case, without a trailing dot.
pub(crate) fn normalize_host(hostname: &str) -> String {
    hostname.trim_end_matches('.').to_ascii_lowercase()
}

/// One change of the routing table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RouteChange {
    /// The route now has exactly these endpoints (empty: known, but nothing routable).
    Set {
        /// The route.
        route: RouteKey,
        /// Its endpoints, in a stable order.
        endpoints: Vec<Endpoint>,
    },
    /// The route is gone.
    Remove {
        /// The route.
        route: RouteKey,
    },
}

/// The whole routing table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingTable {
    /// HTTP: host name (lower case) → endpoints.
    pub http: BTreeMap<String, Vec<Endpoint>>,
    /// TCP: external port → endpoints.
    pub tcp: BTreeMap<u16, Vec<Endpoint>>,
}

impl RoutingTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether no route is known.
    pub fn is_empty(&self) -> bool {
        self.http.is_empty() && self.tcp.is_empty()
    }

    /// The endpoints of `route`, if the route is known.
    pub fn endpoints(&self, route: &RouteKey) -> Option<&[Endpoint]> {
        match route {
            RouteKey::Http(host) => self.http.get(host).map(Vec::as_slice),
            RouteKey::Tcp(port) => self.tcp.get(port).map(Vec::as_slice),
        }
    }

    /// The endpoints of host name `hostname` (matched case-insensitively).
    pub fn http_endpoints(&self, hostname: &str) -> Option<&[Endpoint]> {
        self.http
            .get(normalize_host(hostname).as_str())
            .map(Vec::as_slice)
    }

    /// Sets the endpoints of `route` (creating it).
    pub fn set(&mut self, route: RouteKey, endpoints: Vec<Endpoint>) {
        match route {
            RouteKey::Http(host) => {
                self.http.insert(normalize_host(&host), endpoints);
            }
            RouteKey::Tcp(port) => {
                self.tcp.insert(port, endpoints);
            }
        }
    }

    /// Removes `route`; returns whether it was there.
    pub fn remove(&mut self, route: &RouteKey) -> bool {
        match route {
            RouteKey::Http(host) => self.http.remove(host).is_some(),
            RouteKey::Tcp(port) => self.tcp.remove(port).is_some(),
        }
    }

    /// Applies `changes` in order.
    pub fn apply(&mut self, changes: &[RouteChange]) {
        for change in changes {
            match change {
                RouteChange::Set { route, endpoints } => self.set(route.clone(), endpoints.clone()),
                RouteChange::Remove { route } => {
                    self.remove(route);
                }
            }
        }
    }

    /// The changes that turn `self` into `target`.
    pub fn diff(&self, target: &RoutingTable) -> Vec<RouteChange> {
        let mut changes = Vec::new();
        diff_half(&self.http, &target.http, RouteKey::Http, &mut changes);
        diff_half(&self.tcp, &target.tcp, RouteKey::Tcp, &mut changes);
        changes
    }
}

fn diff_half<K: Ord + Clone>(
    from: &BTreeMap<K, Vec<Endpoint>>,
    to: &BTreeMap<K, Vec<Endpoint>>,
    key: impl Fn(K) -> RouteKey,
    changes: &mut Vec<RouteChange>,
) {
    for k in from.keys().filter(|k| !to.contains_key(*k)) {
        changes.push(RouteChange::Remove {
            route: key(k.clone()),
        });
    }
    for (k, endpoints) in to {
        if from.get(k) != Some(endpoints) {
            changes.push(RouteChange::Set {
                route: key(k.clone()),
                endpoints: endpoints.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(port: u16) -> Endpoint {
        Endpoint::new("10.0.0.1", port, "web", format!("i-{port}"), 0)
    }

    #[test]
    fn diff_then_apply_reaches_the_target() {
        let mut a = RoutingTable::new();
        a.set(RouteKey::http("Old.Example"), vec![ep(1)]);
        a.set(RouteKey::http("same.example"), vec![ep(2)]);
        a.set(RouteKey::tcp(6000), vec![ep(3)]);
        let mut b = RoutingTable::new();
        b.set(RouteKey::http("same.example"), vec![ep(2)]);
        b.set(RouteKey::http("new.example"), vec![]);
        b.set(RouteKey::tcp(6000), vec![ep(3), ep(4)]);
        let changes = a.diff(&b);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert!(changes.contains(&RouteChange::Remove {
            route: RouteKey::Http("old.example".into())
        }));
        a.apply(&changes);
        assert_eq!(a, b);
        assert!(a.diff(&b).is_empty());
    }

    #[test]
    fn host_names_are_case_insensitive() {
        let mut t = RoutingTable::new();
        t.set(RouteKey::Http("Demo.LOCALHOST.".into()), vec![ep(1)]);
        assert_eq!(t.http_endpoints("demo.localhost").map(<[_]>::len), Some(1));
        assert_eq!(t.http_endpoints("DEMO.localhost").map(<[_]>::len), Some(1));
        assert!(t.http_endpoints("other").is_none());
    }

    #[test]
    fn authority_brackets_ipv6() {
        assert_eq!(ep(80).authority(), "10.0.0.1:80");
        let v6 = Endpoint::new("::1", 8080, "web", "i", 0);
        assert_eq!(v6.authority(), "[::1]:8080");
    }

    #[test]
    fn changes_have_a_stable_json_shape() {
        let c = RouteChange::Remove {
            route: RouteKey::tcp(6000),
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"type":"remove","route":{"tcp":6000}}"#
        );
    }
}
