//! Keep-alive HTTP/1 connections to endpoints, pooled per endpoint address (private to
//! the HTTP proxy).
//!
//! A connection is driven by the task of the request using it (no task per backend
//! connection, no hop between tasks per request). It goes back to its pool when the
//! response body it carried has been read to the end; one whose body was abandoned is
//! closed. Idle connections expire after the idle timeout; one the backend closed while
//! idle is noticed when next taken. This module knows addresses and connections, not
//! routes.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper::client::conn::TrySendError;
use hyper::http::uri::Authority;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpStream;

use super::table::Target;

/// The connection half of a [`BackendConn`].
type Conn = Connection<TokioIo<TcpStream>, Incoming>;

/// One keep-alive HTTP/1 connection to a backend: the handle that sends requests, and
/// the connection itself, polled by whoever uses the handle.
pub(crate) struct BackendConn {
    sender: SendRequest<Incoming>,
    /// `None` once the connection ended.
    conn: Option<Pin<Box<Conn>>>,
}

impl std::fmt::Debug for BackendConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendConn")
            .field("open", &self.conn.is_some())
            .finish()
    }
}

impl BackendConn {
    /// Drives the connection; notes when it ended.
    pub(crate) fn poll_conn(&mut self, cx: &mut Context<'_>) {
        if let Some(conn) = self.conn.as_mut() {
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "router: backend connection ended with an error");
                }
                // Dropping it cancels whatever still waits on it.
                self.conn = None;
            }
        }
    }

    /// Whether the connection is gone.
    pub(crate) fn is_closed(&self) -> bool {
        self.conn.is_none() || self.sender.is_closed()
    }

    /// Waits until a request can be sent; `Err` when the connection is gone.
    pub(crate) async fn ready(&mut self) -> Result<(), ()> {
        std::future::poll_fn(|cx| {
            self.poll_conn(cx);
            match self.sender.poll_ready(cx) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
                Poll::Ready(Err(_)) => Poll::Ready(Err(())),
                Poll::Pending if self.conn.is_none() => Poll::Ready(Err(())),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Sends `req` and waits for the response head, driving the connection meanwhile.
    /// The error gives the request back when it was not sent.
    pub(crate) async fn send(
        &mut self,
        req: Request<Incoming>,
    ) -> Result<Response<Incoming>, TrySendError<Request<Incoming>>> {
        let mut response = std::pin::pin!(self.sender.try_send_request(req));
        let conn = &mut self.conn;
        std::future::poll_fn(|cx| {
            if let Some(c) = conn.as_mut() {
                if let Poll::Ready(result) = c.as_mut().poll(cx) {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "router: backend connection failed");
                    }
                    *conn = None;
                }
            }
            response.as_mut().poll(cx)
        })
        .await
    }
}

/// Idle connections kept per endpoint at most.
const MAX_IDLE_PER_ENDPOINT: usize = 512;

/// Every endpoint's pool.
#[derive(Debug)]
pub(crate) struct ConnectionPools {
    pools: RwLock<HashMap<Authority, Arc<EndpointPool>>>,
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
    #[error("HTTP handshake failed: {0}")]
    Handshake(#[from] hyper::Error),
}

impl ConnectionPools {
    pub(crate) fn new(connect_timeout: Duration, idle_timeout: Duration) -> Self {
        ConnectionPools {
            pools: RwLock::new(HashMap::new()),
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
        // One flat buffer per write (head and body copied together) rather than a
        // vectored write: proxied requests are mostly small, and the copy is cheaper than
        // the kernel's walk over several buffers (see `serve_connection`).
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .writev(false)
            .handshake(TokioIo::new(stream))
            .await?;
        Ok(BackendConn {
            sender,
            conn: Some(Box::pin(conn)),
        })
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
