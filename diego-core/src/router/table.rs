//! [`TableRouter`]: the default [`Router`] — an in-memory routing table that the
//! proxies read without locks.
//!
//! Writers (the route emitter) serialise on a mutex and publish a new read-only
//! snapshot through `arc-swap`; a request loads the current snapshot in a few
//! nanoseconds and never waits for a writer. A snapshot a request already holds stays
//! valid after a change, so removing an endpoint never disturbs a request in flight.
//! This module knows endpoints and routes, not LRPs or sockets.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use hyper::header::HeaderValue;
use hyper::http::uri::Authority;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tokio::sync::watch;

use crate::error::Result;
use crate::routing::{normalize_host, Endpoint, RouteChange, RouteKey, Router, RoutingTable};

/// The default [`Router`]: an in-memory table, swapped lock-free for the request path.
///
/// Cheap to clone (a handle); give one clone to the [`RouteEmitter`](crate::routing::RouteEmitter)
/// and others to the [`HttpProxy`](super::HttpProxy) and [`TcpProxy`](super::TcpProxy).
#[derive(Clone, Debug)]
pub struct TableRouter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The table as written; held only by writers.
    writer: Mutex<RoutingTable>,
    /// What readers see.
    live: ArcSwap<LiveTable>,
    /// Bumped after every published change.
    version: watch::Sender<u64>,
}

/// A read-only snapshot of the table, ready for the request path. Its maps use the Fx
/// hash, not a keyed one: their keys come from the routing table, never from requests
/// (a request's host is only looked up), so no client can fill them with collisions.
#[derive(Debug, Default)]
pub(crate) struct LiveTable {
    pub(crate) http: FxHashMap<String, Arc<Pool>>,
    pub(crate) tcp: FxHashMap<u16, Arc<Pool>>,
}

/// The endpoints of one route and its round-robin position.
#[derive(Debug)]
pub(crate) struct Pool {
    pub(crate) targets: Vec<Target>,
    next: AtomicUsize,
}

impl Pool {
    fn new(endpoints: &[Endpoint], next: usize) -> Self {
        Pool {
            targets: endpoints.iter().filter_map(Target::new).collect(),
            next: AtomicUsize::new(next),
        }
    }

    /// Where the next request starts its round (round robin).
    pub(crate) fn start(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The targets in round-robin order for one request (each at most once).
    pub(crate) fn round(&self) -> impl Iterator<Item = &Target> + '_ {
        let n = self.targets.len();
        let start = if n == 0 { 0 } else { self.start() % n };
        (0..n).map(move |i| &self.targets[(start + i) % n])
    }
}

/// One endpoint with what the proxy needs pre-built.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) endpoint: Endpoint,
    pub(crate) authority: Authority,
    /// `X-Cf-App-Instance`: `<process_guid>:<index>`.
    pub(crate) instance_header: Option<HeaderValue>,
}

impl Target {
    fn new(endpoint: &Endpoint) -> Option<Self> {
        let authority = match Authority::try_from(endpoint.authority()) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(endpoint = %endpoint.authority(), error = %e,
                    "endpoint address is not a valid authority; not routed");
                return None;
            }
        };
        let instance_header =
            HeaderValue::try_from(format!("{}:{}", endpoint.process_guid, endpoint.index)).ok();
        Some(Target {
            endpoint: endpoint.clone(),
            authority,
            instance_header,
        })
    }
}

impl Default for TableRouter {
    fn default() -> Self {
        Self::new()
    }
}

impl TableRouter {
    /// An empty table.
    pub fn new() -> Self {
        TableRouter {
            inner: Arc::new(Inner {
                writer: Mutex::new(RoutingTable::new()),
                live: ArcSwap::from_pointee(LiveTable::default()),
                version: watch::channel(0).0,
            }),
        }
    }

    /// A copy of the current table.
    pub fn table(&self) -> RoutingTable {
        self.inner.writer.lock().clone()
    }

    /// How many changes were published so far.
    pub fn version(&self) -> u64 {
        *self.inner.version.borrow()
    }

    /// A receiver that sees every published change (the value is [`version`](Self::version)).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.version.subscribe()
    }

    /// The snapshot the request path reads.
    pub(crate) fn live(&self) -> Arc<LiveTable> {
        self.inner.live.load_full()
    }

    /// The pool of host `host` (already lower case, no port), without cloning the snapshot.
    pub(crate) fn http_pool(&self, host: &str) -> Option<Arc<Pool>> {
        self.inner.live.load().http.get(host).cloned()
    }

    /// The pool of TCP port `port`.
    pub(crate) fn tcp_pool(&self, port: u16) -> Option<Arc<Pool>> {
        self.inner.live.load().tcp.get(&port).cloned()
    }

    /// Applies changes to the written table and publishes a new snapshot, touching only
    /// the changed routes (round-robin positions of the others carry over).
    fn publish(&self, changes: &[RouteChange]) {
        let mut table = self.inner.writer.lock();
        table.apply(changes);
        let old = self.inner.live.load();
        let mut http = old.http.clone();
        let mut tcp = old.tcp.clone();
        for change in changes {
            match change {
                RouteChange::Set { route, endpoints } => match route {
                    RouteKey::Http(host) => {
                        let host = normalize_host(host);
                        let next = http
                            .get(&host)
                            .map_or(0, |p| p.next.load(Ordering::Relaxed));
                        http.insert(host, Arc::new(Pool::new(endpoints, next)));
                    }
                    RouteKey::Tcp(port) => {
                        let next = tcp.get(port).map_or(0, |p| p.next.load(Ordering::Relaxed));
                        tcp.insert(*port, Arc::new(Pool::new(endpoints, next)));
                    }
                },
                RouteChange::Remove { route } => match route {
                    RouteKey::Http(host) => {
                        http.remove(&normalize_host(host));
                    }
                    RouteKey::Tcp(port) => {
                        tcp.remove(port);
                    }
                },
            }
        }
        self.inner.live.store(Arc::new(LiveTable { http, tcp }));
        drop(table);
        self.inner.version.send_modify(|v| *v += 1);
    }
}

#[async_trait]
impl Router for TableRouter {
    async fn apply(&self, changes: &[RouteChange]) -> Result<()> {
        if !changes.is_empty() {
            self.publish(changes);
        }
        Ok(())
    }

    async fn replace(&self, table: RoutingTable) -> Result<()> {
        let changes = self.inner.writer.lock().diff(&table);
        if !changes.is_empty() {
            self.publish(&changes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(port: u16) -> Endpoint {
        Endpoint::new(
            "127.0.0.1",
            port,
            "web",
            format!("i-{port}"),
            i32::from(port % 10),
        )
    }

    #[tokio::test]
    async fn apply_and_replace_publish_snapshots() {
        let r = TableRouter::new();
        let mut rx = r.subscribe();
        r.apply(&[RouteChange::Set {
            route: RouteKey::http("A.example"),
            endpoints: vec![ep(1), ep(2)],
        }])
        .await
        .unwrap();
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        let pool = r.http_pool("a.example").unwrap();
        assert_eq!(pool.targets.len(), 2);
        assert_eq!(pool.targets[0].instance_header.as_ref().unwrap(), "web:1");

        // A snapshot held by a reader survives the change.
        let mut t = RoutingTable::new();
        t.set(RouteKey::tcp(7000), vec![ep(3)]);
        r.replace(t.clone()).await.unwrap();
        assert!(rx.has_changed().unwrap());
        assert_eq!(pool.targets.len(), 2);
        assert!(r.http_pool("a.example").is_none());
        assert_eq!(r.tcp_pool(7000).unwrap().targets.len(), 1);
        assert_eq!(r.table(), t);

        // Replacing with the same table publishes nothing.
        let v = r.version();
        r.replace(t).await.unwrap();
        assert_eq!(r.version(), v);
    }

    #[tokio::test]
    async fn round_robin_visits_every_target_once_per_round() {
        let r = TableRouter::new();
        r.apply(&[RouteChange::Set {
            route: RouteKey::http("a"),
            endpoints: vec![ep(1), ep(2), ep(3)],
        }])
        .await
        .unwrap();
        let pool = r.http_pool("a").unwrap();
        let firsts: Vec<u16> = (0..6)
            .map(|_| pool.round().next().unwrap().endpoint.port)
            .collect();
        assert_eq!(firsts, [1, 2, 3, 1, 2, 3]);
        let round: Vec<u16> = pool.round().map(|t| t.endpoint.port).collect();
        assert_eq!(round, [1, 2, 3]);
        // The position carries over when the route changes.
        r.apply(&[RouteChange::Set {
            route: RouteKey::http("a"),
            endpoints: vec![ep(1), ep(2), ep(3), ep(4)],
        }])
        .await
        .unwrap();
        let pool = r.http_pool("a").unwrap();
        assert_eq!(pool.round().next().unwrap().endpoint.port, 4);
    }
}
