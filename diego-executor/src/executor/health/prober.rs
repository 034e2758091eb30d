//! [`CheckProber`]: how a declarative check reaches a container (TCP connect, HTTP GET),
//! and [`NetworkProber`], the default that does it over the network from the cell.
//!
//! It knows addresses and HTTP; it must not know Tasks, LRPs or actions.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

/// Where a check goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The container's backend handle.
    pub handle: String,
    /// The container's address.
    pub ip: String,
    /// The port the process listens on.
    pub port: u16,
}

/// Why a probe did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeFailure {
    /// No connection (or a request error that is not a timeout); for TCP the text is
    /// the dial error (`dial tcp 10.0.0.1:8080: connect: connection refused`).
    Connection(String),
    /// The server answered with a status other than 200, after `elapsed`.
    Status {
        /// The status code.
        code: u16,
        /// How long the answer took.
        elapsed: Duration,
    },
    /// No connection or answer within the timeout.
    TimedOut,
}

/// Runs one TCP or HTTP probe against a container.
#[async_trait]
pub trait CheckProber: Send + Sync + fmt::Debug {
    /// Passes when a TCP connection to the target succeeds within `timeout`.
    async fn tcp(&self, target: &ProbeTarget, timeout: Duration) -> Result<(), ProbeFailure>;

    /// Passes when `GET <path>` on the target answers 200 within `timeout`.
    async fn http(
        &self,
        target: &ProbeTarget,
        path: &str,
        timeout: Duration,
    ) -> Result<(), ProbeFailure>;
}

/// Probes over the network from the cell, against the container's address
/// (`User-Agent: diego-healthcheck`, only status 200 passes).
#[derive(Debug, Clone)]
pub struct NetworkProber {
    client: reqwest::Client,
}

impl NetworkProber {
    /// A prober with its own HTTP client (no proxy, no redirects).
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("diego-healthcheck")
            .build()
            .unwrap_or_default();
        NetworkProber { client }
    }
}

impl Default for NetworkProber {
    fn default() -> Self {
        NetworkProber::new()
    }
}

#[async_trait]
impl CheckProber for NetworkProber {
    async fn tcp(&self, target: &ProbeTarget, timeout: Duration) -> Result<(), ProbeFailure> {
        let addr = format!("{}:{}", target.ip, target.port);
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
            Ok(Ok(_stream)) => Ok(()),
            Ok(Err(err)) => Err(ProbeFailure::Connection(format!(
                "dial tcp {addr}: {}",
                dial_error(&err)
            ))),
            Err(_) => Err(ProbeFailure::TimedOut),
        }
    }

    async fn http(
        &self,
        target: &ProbeTarget,
        path: &str,
        timeout: Duration,
    ) -> Result<(), ProbeFailure> {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let url = format!("http://{}:{}{path}", target.ip, target.port);
        let started = tokio::time::Instant::now();
        let response = self.client.get(&url).timeout(timeout).send().await;
        match response {
            Ok(response) if response.status().as_u16() == 200 => Ok(()),
            Ok(response) => Err(ProbeFailure::Status {
                code: response.status().as_u16(),
                elapsed: started.elapsed(),
            }),
            Err(err) if err.is_timeout() => Err(ProbeFailure::TimedOut),
            Err(err) => Err(ProbeFailure::Connection(err.to_string())),
        }
    }
}

/// A connect error as Go's dialer words it.
fn dial_error(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "i/o timeout".to_string(),
        _ => format!("connect: {err}"),
    }
}
