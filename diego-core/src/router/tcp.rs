//! [`TcpProxy`]: the TCP half of the default router.
//!
//! For every external port in the [`TableRouter`]'s TCP table it listens on that port
//! and forwards each connection's raw bytes to one of the port's endpoints, round robin
//! (a refused connection moves on to the next endpoint). Listeners open and close as the
//! table changes; closing a listener leaves connections already forwarded alone. This
//! module knows endpoints and ports, not LRPs.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::table::TableRouter;
use crate::error::Result;

/// Builds a [`TcpProxy`].
#[derive(Debug)]
pub struct TcpProxyBuilder {
    table: TableRouter,
    bind_ip: IpAddr,
    connect_timeout: Duration,
}

impl TcpProxyBuilder {
    /// The address the external ports are opened on (`0.0.0.0`).
    #[must_use]
    pub fn bind_ip(mut self, ip: IpAddr) -> Self {
        self.bind_ip = ip;
        self
    }

    /// How long connecting to an endpoint may take before the next one is tried (5 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The proxy (it listens once [`TcpProxy::run`] runs).
    pub fn build(self) -> TcpProxy {
        TcpProxy {
            table: self.table,
            bind_ip: self.bind_ip,
            connect_timeout: self.connect_timeout,
            listening: watch::channel(BTreeSet::new()).0,
        }
    }
}

/// Forwards raw TCP from external ports to the endpoints of the TCP routes.
#[derive(Debug)]
pub struct TcpProxy {
    table: TableRouter,
    bind_ip: IpAddr,
    connect_timeout: Duration,
    listening: watch::Sender<BTreeSet<u16>>,
}

impl TcpProxy {
    /// A builder serving `table`'s TCP routes.
    pub fn builder(table: TableRouter) -> TcpProxyBuilder {
        TcpProxyBuilder {
            table,
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The external ports listened on, as they change.
    pub fn listening(&self) -> watch::Receiver<BTreeSet<u16>> {
        self.listening.subscribe()
    }

    /// Follows the table until `cancel`: opens a listener for each new external port,
    /// closes those whose route went. A port that cannot be bound is logged and tried
    /// again at the next change of the table. On cancellation the listeners close and
    /// forwarded connections are left to finish.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for fatal errors.
    pub async fn run(self, cancel: CancellationToken) -> Result<()> {
        let mut changes = self.table.subscribe();
        // Each open port's accept loop: its stop token and its task (which owns the
        // listening socket, closed when the task returns).
        let mut listeners: HashMap<u16, (CancellationToken, tokio::task::JoinHandle<()>)> =
            HashMap::new();
        let connections = TaskTracker::new();
        loop {
            changes.mark_unchanged();
            let wanted: BTreeSet<u16> = self.table.live().tcp.keys().copied().collect();
            let closing: Vec<u16> = listeners
                .keys()
                .filter(|port| !wanted.contains(port))
                .copied()
                .collect();
            for port in closing {
                if let Some((stop, task)) = listeners.remove(&port) {
                    stop.cancel();
                    // Announce the port closed only once its socket is.
                    let _ = task.await;
                }
            }
            for &port in &wanted {
                if listeners.contains_key(&port) {
                    continue;
                }
                let addr = SocketAddr::new(self.bind_ip, port);
                match TcpListener::bind(addr).await {
                    Ok(listener) => {
                        let stop = cancel.child_token();
                        let task = tokio::spawn(accept_loop(
                            listener,
                            port,
                            self.table.clone(),
                            self.connect_timeout,
                            stop.clone(),
                            connections.clone(),
                        ));
                        listeners.insert(port, (stop, task));
                    }
                    Err(e) => {
                        tracing::warn!(%addr, error = %e, "router: cannot open TCP route port");
                    }
                }
            }
            self.listening.send_if_modified(|ports| {
                let now: BTreeSet<u16> = listeners.keys().copied().collect();
                let changed = *ports != now;
                *ports = now;
                changed
            });
            tokio::select! {
                () = cancel.cancelled() => break,
                r = changes.changed() => {
                    if r.is_err() {
                        break; // the table is gone
                    }
                }
            }
        }
        for (_, (stop, task)) in listeners.drain() {
            stop.cancel();
            let _ = task.await;
        }
        self.listening.send_replace(BTreeSet::new());
        Ok(())
    }
}

async fn accept_loop(
    listener: TcpListener,
    port: u16,
    table: TableRouter,
    connect_timeout: Duration,
    stop: CancellationToken,
    connections: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((client, peer)) => {
                let table = table.clone();
                connections.spawn(async move {
                    if let Err(e) = forward(client, port, &table, connect_timeout).await {
                        tracing::debug!(port, %peer, error = %e, "router: TCP connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(port, error = %e, "router: TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn forward(
    mut client: TcpStream,
    port: u16,
    table: &TableRouter,
    connect_timeout: Duration,
) -> std::io::Result<()> {
    let Some(pool) = table.tcp_pool(port) else {
        return Ok(()); // the route went meanwhile: close
    };
    let mut backend = None;
    for target in pool.round() {
        let addr = (target.endpoint.address.as_str(), target.endpoint.port);
        match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                backend = Some(stream);
                break;
            }
            Ok(Err(e)) => {
                tracing::debug!(port, endpoint = %target.authority, error = %e,
                    "router: TCP endpoint refused; trying the next");
            }
            Err(_) => {
                tracing::debug!(port, endpoint = %target.authority,
                    "router: TCP endpoint timed out; trying the next");
            }
        }
    }
    let Some(mut backend) = backend else {
        return Ok(()); // nothing reachable: close the client's connection
    };
    let _ = client.set_nodelay(true);
    let _ = backend.set_nodelay(true);
    tokio::io::copy_bidirectional(&mut client, &mut backend).await?;
    Ok(())
}
