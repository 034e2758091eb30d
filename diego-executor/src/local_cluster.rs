//! The local cluster: the README's main job as a library call. BBS + auctioneer +
//! converger + cells on the [`ProcessBackend`] + the BBS HTTP API on localhost, on
//! embedded defaults (memory store), with a demo app deployed: the fixture app, 3
//! instances behind an HTTP health check and the route `demo.localhost`.
//!
//! `cargo run --release --example local_cluster` wraps this with Ctrl-C handling.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diego_core::log_sink::{FanOutLogSink, LogSink, RingBufferLogSink, StdoutLogSink};
use diego_core::prelude::*;
use diego_core::router::{HttpProxy, TableRouter};
use diego_core::routing::RouteEmitter;
use diego_core::store::ActualLrpFilter;
use diego_core::{
    ActualLrpState, Check, CheckDefinition, DesiredLrp, EnvironmentVariable, Presence, Routes,
    RunAction,
};
use diego_garden::{ContainerBackend, ProcessBackend};
use tokio_util::sync::CancellationToken;

use crate::cluster::BackendFactory;
use crate::{Cluster, ExecutorConfig};

/// The demo app's process guid.
pub const DEMO_PROCESS_GUID: &str = "demo";
/// The demo app's route.
pub const DEMO_HOSTNAME: &str = "demo.localhost";

/// How to start a local cluster.
#[derive(Clone, Debug)]
pub struct LocalClusterOptions {
    /// Cells to start (2).
    pub cells: usize,
    /// Where the BBS HTTP API listens (`127.0.0.1:8889`; port 0 picks a free one).
    pub api_addr: SocketAddr,
    /// Where the router's HTTP proxy listens (`127.0.0.1:8888`; port 0 picks one).
    pub router_addr: SocketAddr,
    /// Where containers live (a fresh directory under the temp dir by default).
    pub work_dir: PathBuf,
    /// The demo app's executable (the fixture app).
    pub app_path: PathBuf,
    /// Extra environment for the demo app (e.g. telling a re-executed binary to act
    /// as the fixture app).
    pub app_env: Vec<EnvironmentVariable>,
    /// Demo instances (3).
    pub instances: i32,
    /// Print app logs with `[APP/PROC/WEB/i]` prefixes.
    pub print_logs: bool,
}

impl LocalClusterOptions {
    /// Defaults running `app_path` as the demo app.
    pub fn new(app_path: impl Into<PathBuf>) -> Self {
        LocalClusterOptions {
            cells: 2,
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8889)),
            router_addr: SocketAddr::from(([127, 0, 0, 1], 8888)),
            work_dir: std::env::temp_dir().join(format!("diego-local-{}", std::process::id())),
            app_path: app_path.into(),
            app_env: Vec::new(),
            instances: 3,
            print_logs: true,
        }
    }
}

/// A running local cluster.
pub struct LocalCluster {
    cluster: Cluster,
    api_url: String,
    router_url: String,
    logs: Arc<RingBufferLogSink>,
    cancel: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    routing: Vec<tokio::task::JoinHandle<diego_core::Result<()>>>,
    work_dir: PathBuf,
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("api_url", &self.api_url)
            .finish()
    }
}

/// Errors of starting the local cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalClusterError {
    /// The API address is taken or the work directory cannot be made.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A part of the cluster failed to start or refused the demo app.
    #[error("{0}")]
    Start(String),
}

impl LocalCluster {
    /// Starts everything and deploys the demo app (not waiting for it to run).
    pub async fn start(opts: LocalClusterOptions) -> Result<Self, LocalClusterError> {
        std::fs::create_dir_all(&opts.work_dir).map_err(|source| LocalClusterError::Io {
            context: format!("creating {}", opts.work_dir.display()),
            source,
        })?;
        let base = opts.work_dir.clone();
        let factory: BackendFactory = Arc::new(move |id| {
            Ok(Arc::new(ProcessBackend::new(base.join(id.as_str()))?) as Arc<dyn ContainerBackend>)
        });
        let logs = Arc::new(RingBufferLogSink::new(1_000));
        let mut sinks: Vec<Arc<dyn LogSink>> = vec![logs.clone()];
        if opts.print_logs {
            sinks.push(Arc::new(StdoutLogSink::new()));
        }
        let cluster = Cluster::builder(factory)
            .cells(opts.cells)
            .log_sink(Arc::new(FanOutLogSink::new(sinks)))
            .executor_config(|c| ExecutorConfig {
                apply_action_user: false,
                ..c
            })
            .start()
            .await
            .map_err(|e| LocalClusterError::Start(format!("starting the cluster: {e}")))?;
        let listener = tokio::net::TcpListener::bind(opts.api_addr)
            .await
            .map_err(|source| LocalClusterError::Io {
                context: format!("listening on {}", opts.api_addr),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| LocalClusterError::Io {
                context: "reading the API address".into(),
                source,
            })?;
        let cancel = CancellationToken::new();
        // The API serves the logs kept in the ring buffer too (`diego logs demo`).
        let server = tokio::spawn(
            diego_core::http::BbsServer::new(cluster.api())
                .log_sink(logs.clone())
                .serve(listener, cancel.clone()),
        );
        // The router: the emitter follows LRP events into the table the proxy serves.
        let table = TableRouter::new();
        let emitter = RouteEmitter::builder(cluster.api(), Arc::new(table.clone())).build();
        let proxy = HttpProxy::builder(table)
            .bind(opts.router_addr)
            .await
            .map_err(|e| {
                LocalClusterError::Start(format!(
                    "starting the router on {}: {e}",
                    opts.router_addr
                ))
            })?;
        let router_url = format!("http://{}", proxy.local_addr());
        let routing = vec![
            tokio::spawn(emitter.run(cancel.clone())),
            tokio::spawn(proxy.run(cancel.clone())),
        ];
        let mut demo = DesiredLrp::new(
            DEMO_PROCESS_GUID,
            "demo",
            "preloaded:cflinuxfs4",
            opts.instances,
            RunAction::new(opts.app_path.to_string_lossy(), "vcap"),
        );
        demo.scheduling_info.memory_mb = 64;
        demo.scheduling_info.routes = Routes::http(&[DEMO_HOSTNAME], 8080);
        demo.run_info.env = opts.app_env.clone();
        demo.run_info.ports = vec![8080];
        demo.run_info.check_definition = Some(CheckDefinition {
            checks: vec![Check::http(8080, "/ping")],
            ..Default::default()
        });
        cluster
            .bbs()
            .desire_lrp(demo)
            .await
            .map_err(|e| LocalClusterError::Start(format!("deploying the demo app: {e}")))?;
        Ok(LocalCluster {
            cluster,
            api_url: format!("http://{addr}"),
            router_url,
            logs,
            cancel,
            server,
            routing,
            work_dir: opts.work_dir,
        })
    }

    /// The BBS HTTP API's URL.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The router's URL (send `Host: demo.localhost`).
    pub fn router_url(&self) -> &str {
        &self.router_url
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The recent log lines kept for every source.
    pub fn logs(&self) -> &Arc<RingBufferLogSink> {
        &self.logs
    }

    /// The URLs of the demo's RUNNING instances (`http://host:port`), by index.
    pub async fn demo_urls(&self) -> diego_core::Result<Vec<(i32, String)>> {
        let rows = self
            .cluster
            .bbs()
            .actual_lrps(&ActualLrpFilter::process(&DEMO_PROCESS_GUID.into()))
            .await?;
        let mut urls: Vec<(i32, String)> = rows
            .iter()
            .filter(|r| r.presence == Presence::Ordinary && r.state == ActualLrpState::Running)
            .filter_map(|r| {
                let net = r.net_info.as_ref()?;
                let port = net.ports.first()?.host_port;
                Some((r.key.index, format!("http://{}:{port}", net.address)))
            })
            .collect();
        urls.sort();
        Ok(urls)
    }

    /// Waits until every demo instance is RUNNING, up to `limit`.
    pub async fn wait_until_ready(
        &self,
        instances: usize,
        limit: Duration,
    ) -> diego_core::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if self.demo_urls().await?.len() >= instances {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(diego_core::Error::unavailable(format!(
                    "the demo app did not reach {instances} RUNNING instances within {limit:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops everything: containers destroyed, the work directory removed.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.cluster.shutdown().await;
        let _ = self.server.await;
        for h in self.routing {
            let _ = h.await;
        }
        let _ = std::fs::remove_dir_all(&self.work_dir);
    }
}
