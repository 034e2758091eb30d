//! `Cluster`: a whole Diego in one process — a BBS on a given store, the auction
//! runner, the converger and N cells (rep + executor) on a given container backend —
//! composed by one builder and stopped by one `CancellationToken`. Cells can be added
//! and killed while it runs (tests and simulations).

use std::collections::HashMap;
use std::sync::Arc;

use diego_auction::{AuctionRunner, CellClientFactory, RunnerConfig};
use diego_core::Lock;
use diego_core::LogSink;
use diego_core::{
    Bbs, BbsApi, BbsConfig, CellId, Clock, MemoryStore, RepClient, Store, SystemClock,
};
use diego_core::{ConvergenceConfig, Converger};
use diego_garden::ContainerBackend;
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::rep::{LocalReps, Rep, RepConfig};
use crate::{CheckProber, Executor, ExecutorConfig, Resources};

/// Makes the container backend of a new cell (an error stops the cell from starting).
pub type BackendFactory =
    Arc<dyn Fn(&CellId) -> diego_garden::Result<Arc<dyn ContainerBackend>> + Send + Sync>;
/// Makes the health-check prober of a new cell (default: the network prober).
pub type ProberFactory =
    Arc<dyn Fn(&CellId, &Arc<dyn ContainerBackend>) -> Arc<dyn CheckProber> + Send + Sync>;

/// How the auctioneer and the BBS reach the cells of a [`Cluster`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RepTransport {
    /// Direct calls to the reps in this process ([`LocalReps`]).
    #[default]
    InProcess,
    /// Over HTTP (feature `http`): each cell serves its rep's API on `127.0.0.1` (a free
    /// port, registered in its presence) and the auctioneer and the BBS use
    /// [`HttpCellClientFactory`](crate::http::HttpCellClientFactory) and
    /// [`HttpRepClient`](crate::http::HttpRepClient), as they would for cells in other
    /// processes.
    #[cfg(feature = "http")]
    Http,
}

/// Builds a [`Cluster`].
pub struct ClusterBuilder {
    transport: RepTransport,
    store: Arc<dyn Store>,
    lock: Option<Arc<dyn Lock>>,
    clock: Arc<dyn Clock>,
    backend: BackendFactory,
    prober: Option<ProberFactory>,
    log_sink: Option<Arc<dyn LogSink>>,
    callback: Option<Arc<dyn diego_core::CompletionCallback>>,
    cells: usize,
    cell_resources: Resources,
    bbs: BbsConfig,
    convergence: ConvergenceConfig,
    runner: RunnerConfig,
    rep: Arc<dyn Fn(RepConfig) -> RepConfig + Send + Sync>,
    executor: Arc<dyn Fn(ExecutorConfig) -> ExecutorConfig + Send + Sync>,
}

impl std::fmt::Debug for ClusterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterBuilder")
            .field("cells", &self.cells)
            .finish()
    }
}

impl ClusterBuilder {
    /// The store (default: a new [`MemoryStore`]).
    #[must_use]
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = store;
        self
    }

    /// The lock the cells' presences are leases on (default: the store's own; see
    /// [`BbsBuilder::lock`](diego_core::BbsBuilder::lock)).
    pub fn lock(mut self, lock: Arc<dyn Lock>) -> Self {
        self.lock = Some(lock);
        self
    }

    /// The clock (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How the auctioneer and the BBS reach the cells (default: in-process calls).
    #[must_use]
    pub fn rep_transport(mut self, transport: RepTransport) -> Self {
        self.transport = transport;
        self
    }

    /// How many cells start with the cluster (default 2).
    #[must_use]
    pub fn cells(mut self, n: usize) -> Self {
        self.cells = n;
        self
    }

    /// Each cell's resources (default 16 GiB memory, 64 GiB disk, 256 containers).
    #[must_use]
    pub fn cell_resources(mut self, r: Resources) -> Self {
        self.cell_resources = r;
        self
    }

    /// How health checks are probed on each cell.
    #[must_use]
    pub fn prober(mut self, prober: ProberFactory) -> Self {
        self.prober = Some(prober);
        self
    }

    /// How task completion callbacks are delivered (default: HTTP with a 10 s timeout).
    #[must_use]
    pub fn completion_callback(mut self, cb: Arc<dyn diego_core::CompletionCallback>) -> Self {
        self.callback = Some(cb);
        self
    }

    /// Where container logs go.
    #[must_use]
    pub fn log_sink(mut self, sink: Arc<dyn LogSink>) -> Self {
        self.log_sink = Some(sink);
        self
    }

    /// BBS settings.
    #[must_use]
    pub fn bbs_config(mut self, c: BbsConfig) -> Self {
        self.bbs = c;
        self
    }

    /// Convergence settings.
    #[must_use]
    pub fn convergence_config(mut self, c: ConvergenceConfig) -> Self {
        self.convergence = c;
        self
    }

    /// Auction runner settings.
    #[must_use]
    pub fn runner_config(mut self, c: RunnerConfig) -> Self {
        self.runner = c;
        self
    }

    /// Adjusts each cell's rep settings (its defaults come from [`RepConfig::new`]).
    #[must_use]
    pub fn rep_config(
        mut self,
        f: impl Fn(RepConfig) -> RepConfig + Send + Sync + 'static,
    ) -> Self {
        self.rep = Arc::new(f);
        self
    }

    /// Adjusts each cell's executor settings.
    #[must_use]
    pub fn executor_config(
        mut self,
        f: impl Fn(ExecutorConfig) -> ExecutorConfig + Send + Sync + 'static,
    ) -> Self {
        self.executor = Arc::new(f);
        self
    }

    /// Starts everything: BBS, auction runner, converger, and the cells.
    pub async fn start(self) -> crate::Result<Cluster> {
        let reps = Arc::new(LocalReps::new());
        let runner = AuctionRunner::new();
        let callback: Arc<dyn diego_core::CompletionCallback> = match &self.callback {
            Some(cb) => cb.clone(),
            None => Arc::new(diego_core::http::HttpCompletionCallback::new(
                std::time::Duration::from_secs(10),
            )?),
        };
        let (cell_clients, rep_client): (Arc<dyn CellClientFactory>, Arc<dyn RepClient>) =
            match self.transport {
                RepTransport::InProcess => (reps.clone(), reps.clone()),
                #[cfg(feature = "http")]
                RepTransport::Http => {
                    let factory = crate::http::HttpCellClientFactory::new(Default::default())?;
                    (
                        Arc::new(factory.clone()),
                        Arc::new(crate::http::HttpRepClient::from(factory)),
                    )
                }
            };
        let mut bbs = Bbs::builder()
            .completion_callback(callback)
            .store(self.store.clone())
            .clock(self.clock.clone())
            .auctioneer(Arc::new(runner.clone()))
            .rep_client(rep_client)
            .config(self.bbs.clone());
        if let Some(lock) = &self.lock {
            bbs = bbs.lock(lock.clone());
        }
        let bbs = bbs.build();
        let api: Arc<dyn BbsApi> = Arc::new(bbs.clone());
        let cancel = CancellationToken::new();
        let mut background = Vec::new();
        background.push(tokio::spawn({
            let builder = runner
                .builder(api.clone(), cell_clients)
                .config(self.runner.clone());
            let cancel = cancel.clone();
            async move { builder.run(cancel).await }
        }));
        let converger = Arc::new(
            Converger::builder(bbs.clone())
                .config(self.convergence.clone())
                .build(),
        );
        background.push(tokio::spawn({
            let converger = converger.clone();
            let cancel = cancel.clone();
            async move { converger.run(cancel).await }
        }));
        let cluster = Cluster {
            bbs,
            api,
            converger,
            reps,
            cancel,
            background: Mutex::new(background),
            cells: Mutex::new(HashMap::new()),
            next_cell: Mutex::new(0),
            builder: self,
        };
        for _ in 0..cluster.builder.cells {
            cluster.add_cell().await?;
        }
        Ok(cluster)
    }
}

struct CellRun {
    rep: Rep,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
    /// The rep's HTTP server (with [`RepTransport::Http`]).
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl CellRun {
    /// Stops the rep and its server at once (no graceful end for open connections).
    async fn stop(self) -> Rep {
        self.cancel.cancel();
        if let Some(server) = self.server {
            server.abort();
            let _ = server.await;
        }
        let _ = self.handle.await;
        self.rep
    }
}

/// A running Diego in one process.
pub struct Cluster {
    bbs: Bbs,
    api: Arc<dyn BbsApi>,
    converger: Arc<Converger>,
    reps: Arc<LocalReps>,
    cancel: CancellationToken,
    background: Mutex<Vec<JoinHandle<()>>>,
    cells: Mutex<HashMap<CellId, CellRun>>,
    next_cell: Mutex<usize>,
    builder: ClusterBuilder,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("cells", &self.cells.lock().len())
            .finish()
    }
}

impl Cluster {
    /// A builder with `backend` making each cell's container backend.
    pub fn builder(backend: BackendFactory) -> ClusterBuilder {
        ClusterBuilder {
            transport: RepTransport::InProcess,
            store: Arc::new(MemoryStore::new()),
            lock: None,
            clock: Arc::new(SystemClock),
            backend,
            prober: None,
            log_sink: None,
            callback: None,
            cells: 2,
            cell_resources: Resources {
                memory_mb: 16 * 1024,
                disk_mb: 64 * 1024,
                containers: 256,
            },
            bbs: BbsConfig::default(),
            convergence: ConvergenceConfig::default(),
            runner: RunnerConfig::default(),
            rep: Arc::new(|c| c),
            executor: Arc::new(|c| c),
        }
    }

    /// The BBS.
    pub fn bbs(&self) -> &Bbs {
        &self.bbs
    }

    /// The BBS as the trait object reps and clients use.
    pub fn api(&self) -> Arc<dyn BbsApi> {
        self.api.clone()
    }

    /// The converger (to run a pass on demand).
    pub fn converger(&self) -> &Arc<Converger> {
        &self.converger
    }

    /// The reps, by cell id.
    pub fn reps(&self) -> &Arc<LocalReps> {
        &self.reps
    }

    /// The ids of the running cells.
    pub fn cell_ids(&self) -> Vec<CellId> {
        let mut ids: Vec<CellId> = self.cells.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Starts one more cell (`cell-N`) and registers its presence.
    pub async fn add_cell(&self) -> crate::Result<Rep> {
        let id = {
            let mut n = self.next_cell.lock();
            *n += 1;
            CellId::new(format!("cell-{}", *n))
        };
        let b = &self.builder;
        let backend = (b.backend)(&id)?;
        let config = (b.executor)(ExecutorConfig {
            cell_id: id.to_string(),
            owner_name: format!("executor-{id}"),
            total_resources: Some(b.cell_resources),
            ..ExecutorConfig::default()
        });
        let mut ex = Executor::builder(backend.clone())
            .config(config)
            .clock(b.clock.clone());
        if let Some(sink) = &b.log_sink {
            ex = ex.log_sink(sink.clone());
        }
        if let Some(prober) = &b.prober {
            ex = ex.prober(prober(&id, &backend));
        }
        let executor = ex.build().await?;
        #[cfg_attr(not(feature = "http"), allow(unused_mut))]
        let mut rep_config = (b.rep)(RepConfig::new(id.clone()));
        #[cfg(feature = "http")]
        let listener = http_listener(b.transport, &mut rep_config).await?;
        let rep = Rep::new(self.api.clone(), executor, rep_config);
        let cancel = self.cancel.child_token();
        #[cfg(feature = "http")]
        let server = listener.map(|listener| {
            tokio::spawn(crate::http::RepServer::new(rep.clone()).serve(listener, cancel.clone()))
        });
        #[cfg(not(feature = "http"))]
        let server = None;
        rep.register().await?;
        self.reps.insert(rep.clone());
        let handle = tokio::spawn({
            let rep = rep.clone();
            let cancel = cancel.clone();
            async move { rep.run(cancel).await }
        });
        self.cells.lock().insert(
            id,
            CellRun {
                rep: rep.clone(),
                cancel,
                handle,
                server,
            },
        );
        Ok(rep)
    }

    /// Kills a cell as if its machine vanished: its rep stops at once (no evacuation,
    /// no goodbye), so its presence expires and convergence replaces its instances.
    /// Its containers are destroyed.
    pub async fn kill_cell(&self, id: &CellId) -> Option<()> {
        let run = self.cells.lock().remove(id)?;
        self.reps.remove(id);
        let rep = run.stop().await;
        for c in rep.executor().list() {
            let _ = rep.executor().delete(&c.guid).await;
        }
        Some(())
    }

    /// Evacuates a cell (its instances move elsewhere first), then stops it.
    pub async fn evacuate_cell(&self, id: &CellId) -> Option<()> {
        let rep = self.cells.lock().get(id).map(|r| r.rep.clone())?;
        rep.evacuate().await;
        let run = self.cells.lock().remove(id)?;
        self.reps.remove(id);
        run.stop().await;
        Some(())
    }

    /// Stops everything and destroys every container.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let cells: Vec<CellRun> = self.cells.lock().drain().map(|(_, r)| r).collect();
        for run in cells {
            let rep = run.stop().await;
            for c in rep.executor().list() {
                let _ = rep.executor().delete(&c.guid).await;
            }
        }
        let background: Vec<JoinHandle<()>> = self.background.lock().drain(..).collect();
        for h in background {
            let _ = h.await;
        }
    }
}

/// With [`RepTransport::Http`]: a listener on a free port of `127.0.0.1` for the rep,
/// whose address goes into its presence.
#[cfg(feature = "http")]
async fn http_listener(
    transport: RepTransport,
    config: &mut RepConfig,
) -> crate::Result<Option<tokio::net::TcpListener>> {
    if transport != RepTransport::Http {
        return Ok(None);
    }
    let id = &config.cell_id;
    let unavailable = |e: std::io::Error| {
        diego_core::Error::unavailable_from(format_args!("the rep of {id} cannot listen"), e)
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(unavailable)?;
    let addr = listener.local_addr().map_err(unavailable)?;
    config.rep_address = addr.to_string();
    config.rep_url = format!("http://{addr}");
    Ok(Some(listener))
}
