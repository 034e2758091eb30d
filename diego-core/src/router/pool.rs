//! Keep-alive HTTP/1 connections to endpoints, pooled per endpoint address (private to
//! the HTTP proxy).
//!
//! A connection is used by the task of the request using it (no task per backend
//! connection, no hop between tasks per request; see [`super::http1`]). It goes back to
//! its pool when the response body it carried has been read to the end; one whose body
//! was abandoned is closed. Idle connections expire after the idle timeout; one the
//! backend closed while idle is noticed when next taken. This module knows addresses and
//! connections, not routes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::http::uri::Authority;
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use tokio::net::TcpStream;

use super::http1::BackendConn;
use super::table::Target;

/// Idle connections kept per endpoint at most.
const MAX_IDLE_PER_ENDPOINT: usize = 512;

/// Every endpoint's pool.
#[derive(Debug)]
pub(crate) struct ConnectionPools {
    pools: RwLock<FxHashMap<Authority, Arc<EndpointPool>>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
}

/// The idle connections of one endpoint.
#[derive(Debug, Default)]
pub(crate) struct EndpointPool {
    idle: Mutex<Vec<Idle>>,
}

#[derive(Debug)]
struct Idle {
    conn: BackendConn,
    since: Instant,
}

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("cannot connect: {0}")]
    Io(#[from] std::io::Error),
    #[error("connecting timed out")]
    Timeout,
}

impl ConnectionPools {
    pub(crate) fn new(connect_timeout: Duration, idle_timeout: Duration) -> Self {
        ConnectionPools {
            pools: RwLock::new(FxHashMap::default()),
            connect_timeout,
            idle_timeout,
        }
    }

    /// How long an idle connection is kept.
    pub(crate) fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// The pool of `target`'s address.
    pub(crate) fn pool(&self, target: &Target) -> Arc<EndpointPool> {
        if let Some(p) = self.pools.read().get(&target.authority) {
            return p.clone();
        }
        self.pools
            .write()
            .entry(target.authority.clone())
            .or_default()
            .clone()
    }

    /// A new connection to `target`.
    pub(crate) async fn connect(&self, target: &Target) -> Result<BackendConn, ConnectError> {
        let addr = (target.endpoint.address.as_str(), target.endpoint.port);
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnectError::Timeout)??;
        stream.set_nodelay(true)?;
        Ok(BackendConn::new(stream))
    }

    /// Drops expired idle connections, and the pools left empty.
    pub(crate) fn reap(&self) {
        let now = Instant::now();
        let mut pools = self.pools.write();
        pools.retain(|_, pool| {
            let mut idle = pool.idle.lock();
            idle.retain(|i| now.duration_since(i.since) < self.idle_timeout && !i.conn.is_closed());
            !idle.is_empty() || Arc::strong_count(pool) > 1
        });
    }
}

impl EndpointPool {
    /// The most recently used idle connection that is still open and fresh.
    pub(crate) fn take(&self, idle_timeout: Duration) -> Option<BackendConn> {
        let mut idle = self.idle.lock();
        while let Some(i) = idle.pop() {
            if !i.conn.is_closed() && i.since.elapsed() < idle_timeout {
                return Some(i.conn);
            }
        }
        None
    }

    /// Keeps `conn` for a later request.
    pub(crate) fn put(&self, conn: BackendConn) {
        if conn.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < MAX_IDLE_PER_ENDPOINT {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }
}
