//! The auction runner: the async loop around a [`PlacementStrategy`] that turns the
//! BBS's placement requests into work on cells.
//!
//! [`AuctionRunner`] is core's [`AuctioneerClient`]: the BBS hands it LRP instances and
//! Tasks, which are queued (de-duplicated by process guid + index and by task guid), not
//! placed inline. [`AuctionRunnerBuilder::run`] drives the rounds: once work is queued
//! it waits the batching window, drains the queue, lists the cells from the BBS's live
//! cell presences, fetches every cell's [`CellState`] concurrently (each with a timeout
//! and a few tries; a cell that does not answer, answers with another cell's id, or is
//! evacuating is left out of the round), asks the strategy, and calls
//! [`CellClient::perform`] on the winners concurrently. Work a winner refused is placed
//! again on the other cells of the round, up to [`RunnerConfig::max_retries`] times
//! (ours: Diego leaves it to convergence); what still cannot be placed is reported
//! through [`BbsApi`] (`fail_actual_lrp` / `reject_task`) with its placement error —
//! never an empty reason.
//!
//! Request ids ([`diego_core::request_id`]) follow the work through the batches: the id
//! under which each piece was asked for is kept with it in the queue, recorded on the
//! round's `auction_round` span (`request_ids`), and made current again for the calls
//! made on its behalf — a cell's `perform` carries the ids of the work it is given
//! (comma-separated when the work came from several requests), a failure report the id
//! of the work it is about — so an HTTP cell or BBS client forwards them as
//! `X-Vcap-Request-Id`.
//!
//! The runner knows cells only through [`CellClient`]s found by a
//! [`CellClientFactory`]; it never knows how a cell runs its work.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use diego_auction::{AuctionRunner, CellRegistry, DiegoStrategy};
//! use diego_core::Bbs;
//! use tokio_util::sync::CancellationToken;
//!
//! let runner = AuctionRunner::new();
//! let bbs = Arc::new(Bbs::builder().auctioneer(Arc::new(runner.clone())).build());
//! let cells = Arc::new(CellRegistry::new()); // register in-process cells here
//! let cancel = CancellationToken::new();
//! let task = tokio::spawn(
//!     runner
//!         .builder(bbs, cells)
//!         .strategy(DiegoStrategy::default())
//!         .run(cancel.clone()),
//! );
//! cancel.cancel();
//! task.await.unwrap();
//! # });
//! ```

mod cell_client;
mod queue;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use diego_core::{
    request_id, ActualLrpKey, AuctioneerClient, BbsApi, CellId, CellState, LrpStartRequest,
    ProcessGuid, TaskGuid, TaskStartRequest,
};
use futures::future::join_all;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

pub use cell_client::{CellClient, CellClientFactory, CellRegistry, Work};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::error::Error;
use crate::results::CellWork;
use crate::strategy::diego::DiegoStrategy;
use crate::strategy::PlacementStrategy;
use crate::work::AuctionBatch;
use diego_core::setter;
use queue::{Origins, Queue, WorkKey};

/// How many BBS reports (`fail_actual_lrp` / `reject_task`) are in flight at once.
const REPORT_CONCURRENCY: usize = 64;

/// The auction runner's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunnerConfig {
    /// How long to gather requests once the first one arrives before running a round
    /// (default 50 ms; zero runs a round as soon as work is queued).
    pub batch_window: Duration,
    /// Time allowed for one state fetch from a cell (default 1 s, Diego's
    /// `cell_state_timeout`).
    pub cell_state_timeout: Duration,
    /// Tries of a cell's state fetch per round before the cell is left out (default 4,
    /// as Diego). At least one try is always made.
    pub cell_state_attempts: u32,
    /// Time allowed for a cell's `perform` (default 10 s); a cell that does not answer
    /// in time is taken to have refused the work.
    pub perform_timeout: Duration,
    /// How many times work refused by the cell that won it is placed again on the
    /// other cells within the round (default 2; 0 = report it at once, as Diego).
    pub max_retries: u32,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            batch_window: Duration::from_millis(50),
            cell_state_timeout: Duration::from_secs(1),
            cell_state_attempts: 4,
            perform_timeout: Duration::from_secs(10),
            max_retries: 2,
        }
    }
}

impl RunnerConfig {
    setter!(with_batch_window => batch_window: Duration);
    setter!(with_cell_state_timeout => cell_state_timeout: Duration);
    setter!(with_cell_state_attempts => cell_state_attempts: u32);
    setter!(with_perform_timeout => perform_timeout: Duration);
    setter!(with_max_retries => max_retries: u32);
}

/// The auctioneer: a cheap handle (clone it freely) that queues the BBS's placement
/// requests for the rounds run by [`AuctionRunnerBuilder::run`].
///
/// Requests made after the runner stopped fail with
/// [`diego_core::Error::Unavailable`]; the BBS's convergence asks again later.
#[derive(Clone, Debug, Default)]
pub struct AuctionRunner {
    queue: Arc<Queue>,
}

impl AuctionRunner {
    /// A runner with an empty queue. Hand a clone to the BBS as its auctioneer, then
    /// start the rounds with [`AuctionRunner::builder`] once the BBS exists.
    pub fn new() -> Self {
        Self::default()
    }

    /// The loop that places what this runner queues: cells are listed from `bbs`'s
    /// cell presences and reached through `cells`; failures are reported to `bbs`.
    /// Defaults: [`DiegoStrategy::default`] and [`RunnerConfig::default`].
    pub fn builder(
        &self,
        bbs: Arc<dyn BbsApi>,
        cells: Arc<dyn CellClientFactory>,
    ) -> AuctionRunnerBuilder {
        AuctionRunnerBuilder {
            queue: self.queue.clone(),
            bbs,
            cells,
            strategy: Box::new(DiegoStrategy::default()),
            config: RunnerConfig::default(),
        }
    }
}

fn stopped() -> diego_core::Error {
    diego_core::Error::unavailable("auction runner stopped")
}

#[async_trait]
impl AuctioneerClient for AuctionRunner {
    async fn request_lrp_auctions(&self, requests: Vec<LrpStartRequest>) -> diego_core::Result<()> {
        if self.queue.push_lrps(requests) {
            Ok(())
        } else {
            Err(stopped())
        }
    }

    async fn request_task_auctions(
        &self,
        requests: Vec<TaskStartRequest>,
    ) -> diego_core::Result<()> {
        if self.queue.push_tasks(requests) {
            Ok(())
        } else {
            Err(stopped())
        }
    }
}

/// Sets up and runs the auction rounds of an [`AuctionRunner`].
pub struct AuctionRunnerBuilder {
    queue: Arc<Queue>,
    bbs: Arc<dyn BbsApi>,
    cells: Arc<dyn CellClientFactory>,
    strategy: Box<dyn PlacementStrategy + Send>,
    config: RunnerConfig,
}

impl fmt::Debug for AuctionRunnerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuctionRunnerBuilder")
            .field("strategy", &self.strategy.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AuctionRunnerBuilder {
    /// The placement strategy (default: [`DiegoStrategy::default`]).
    #[must_use]
    pub fn strategy(mut self, strategy: impl PlacementStrategy + Send + 'static) -> Self {
        self.strategy = Box::new(strategy);
        self
    }

    /// All settings at once.
    #[must_use]
    pub fn config(mut self, config: RunnerConfig) -> Self {
        self.config = config;
        self
    }

    /// The batching window (see [`RunnerConfig::batch_window`]).
    #[must_use]
    pub fn batch_window(mut self, window: Duration) -> Self {
        self.config.batch_window = window;
        self
    }

    /// The retry limit for refused work (see [`RunnerConfig::max_retries`]).
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.config.max_retries = retries;
        self
    }

    /// The per-try state fetch timeout (see [`RunnerConfig::cell_state_timeout`]).
    #[must_use]
    pub fn cell_state_timeout(mut self, timeout: Duration) -> Self {
        self.config.cell_state_timeout = timeout;
        self
    }

    /// Runs rounds until `cancel` fires. A round already under way finishes (its work
    /// is performed and its failures reported); requests still waiting in the queue
    /// are dropped (convergence asks for them again) and later requests fail.
    pub async fn run(self, cancel: CancellationToken) {
        let worker = Worker {
            queue: self.queue,
            bbs: self.bbs,
            cells: self.cells,
            strategy: std::sync::Mutex::new(self.strategy),
            config: self.config,
        };
        let name = worker.strategy().name().to_owned();
        let span = info_span!("auction_runner", strategy = name);
        async move {
            info!("started");
            loop {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => break,
                    _ = worker.queue.wait_for_work() => {}
                }
                if !worker.config.batch_window.is_zero() {
                    tokio::select! {
                        biased;
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(worker.config.batch_window) => {}
                    }
                }
                let (batch, origins) = worker.queue.drain();
                if batch.is_empty() {
                    continue;
                }
                // Not raced against `cancel`: a round under way finishes.
                worker.round(batch, &origins).await;
            }
            let dropped = worker.queue.stop();
            info!(dropped, "stopped");
        }
        .instrument(span)
        .await;
    }
}

/// A cell that answered this round.
struct LiveCell {
    client: Arc<dyn CellClient>,
    state: Arc<CellState>,
}

/// What goes back to the BBS at the end of a round.
#[derive(Default)]
struct Failures {
    lrps: Vec<(ActualLrpKey, String)>,
    tasks: Vec<(TaskGuid, String)>,
}

impl Failures {
    fn lrp(&mut self, r: &LrpStartRequest, index: i32, reason: String) {
        let key = ActualLrpKey {
            process_guid: r.process_guid.clone(),
            index,
            domain: r.domain.clone(),
        };
        self.lrps.push((key, reason));
    }

    fn task(&mut self, t: &TaskStartRequest, reason: String) {
        self.tasks.push((t.task_guid.clone(), reason));
    }
}

struct Worker {
    queue: Arc<Queue>,
    bbs: Arc<dyn BbsApi>,
    cells: Arc<dyn CellClientFactory>,
    /// Locked only while placing (never across an await); the mutex makes the worker
    /// `Sync`, so the run future is `Send` for any `Send` strategy.
    strategy: std::sync::Mutex<Box<dyn PlacementStrategy + Send>>,
    config: RunnerConfig,
}

impl Worker {
    fn strategy(&self) -> std::sync::MutexGuard<'_, Box<dyn PlacementStrategy + Send>> {
        self.strategy.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn round(&self, batch: AuctionBatch, origins: &Origins) {
        let span = info_span!(
            "auction_round",
            lrps = batch.lrps.iter().map(|r| r.indices.len()).sum::<usize>(),
            tasks = batch.tasks.len(),
            request_ids = tracing::field::Empty,
        );
        if let Some(ids) = origins.all() {
            span.record("request_ids", ids);
        }
        async move {
            let clients = self.clients().await;
            let mut cells = self.fetch_states(clients).await;
            let mut failures = Failures::default();
            let mut refused_by: FxHashMap<WorkKey, Vec<String>> = FxHashMap::default();
            let mut pending = batch;
            let mut attempt = 0;
            loop {
                if cells.is_empty() {
                    fail_unplaceable(&pending, &refused_by, &mut failures);
                    break;
                }
                let retry = self
                    .place_and_perform(&cells, &pending, origins, &mut failures, &mut refused_by)
                    .await;
                let Some((retry, refusing)) = retry else {
                    break;
                };
                if attempt >= self.config.max_retries {
                    fail_unplaceable(&retry, &refused_by, &mut failures);
                    break;
                }
                attempt += 1;
                debug!(attempt, work = retry.len(), "placing refused work again");
                // The cells that refused are out; the others are asked for their state
                // again, as they now run what they took.
                let remaining = cells
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| !refusing.contains(i))
                    .map(|(_, c)| (c.state.cell_id.clone(), c.client))
                    .collect();
                cells = self.fetch_states(remaining).await;
                pending = retry;
            }
            self.report(failures, origins).await;
        }
        .instrument(span)
        .await;
    }

    /// The clients of the BBS's live cells, by cell id.
    async fn clients(&self) -> Vec<(CellId, Arc<dyn CellClient>)> {
        let presences = match self.bbs.cells().await {
            Ok(p) => p,
            Err(error) => {
                warn!(%error, "cannot list cells");
                Vec::new()
            }
        };
        let mut clients: Vec<(CellId, Arc<dyn CellClient>)> = presences
            .iter()
            .filter_map(|p| match self.cells.client(p) {
                Some(c) => Some((p.cell_id.clone(), c)),
                None => {
                    warn!(cell_id = %p.cell_id, "no client for cell");
                    None
                }
            })
            .collect();
        clients.sort_by(|a, b| a.0.cmp(&b.0));
        clients
    }

    /// Fetches every cell's state concurrently; keeps the cells that answered in time,
    /// as themselves, and are not evacuating (in the given order).
    async fn fetch_states(&self, clients: Vec<(CellId, Arc<dyn CellClient>)>) -> Vec<LiveCell> {
        let timeout = self.config.cell_state_timeout;
        let attempts = self.config.cell_state_attempts.max(1);
        let asked = clients.len();
        let fetches = clients.into_iter().map(move |(cell_id, client)| async move {
            for attempt in 1..=attempts {
                match tokio::time::timeout(timeout, client.state()).await {
                    Ok(Ok(state)) if state.cell_id != cell_id => {
                        warn!(%cell_id, reported = %state.cell_id, "cell answered with another id");
                        return None;
                    }
                    Ok(Ok(state)) if state.evacuating => {
                        debug!(%cell_id, "cell evacuating");
                        return None;
                    }
                    Ok(Ok(state)) => return Some(LiveCell { client, state }),
                    Ok(Err(error)) => debug!(%cell_id, attempt, %error, "state fetch failed"),
                    Err(_) => debug!(%cell_id, attempt, "state fetch timed out"),
                }
            }
            warn!(%cell_id, attempts, "cell left out of the round");
            None
        });
        let cells: Vec<LiveCell> = join_all(fetches)
            .instrument(info_span!("fetch_cell_states", asked))
            .await
            .into_iter()
            .flatten()
            .collect();
        debug!(asked, answered = cells.len(), "fetched cell states");
        cells
    }

    /// Places `pending` on `cells` and asks the winners to perform it. Placement errors
    /// go to `failures`; returns the work refused (with the positions of the cells that
    /// refused), or `None` when every winner took its work.
    async fn place_and_perform(
        &self,
        cells: &[LiveCell],
        pending: &AuctionBatch,
        origins: &Origins,
        failures: &mut Failures,
        refused_by: &mut FxHashMap<WorkKey, Vec<String>>,
    ) -> Option<(AuctionBatch, FxHashSet<usize>)> {
        let states: Vec<Arc<CellState>> = cells.iter().map(|c| c.state.clone()).collect();
        let results = self.strategy().place(&states, pending);
        drop(states);
        for f in &results.failed_lrps {
            failures.lrp(&pending.lrps[f.request], f.index, f.error.to_string());
        }
        for f in &results.failed_tasks {
            failures.task(&pending.tasks[f.request], f.error.to_string());
        }
        let timeout = self.config.perform_timeout;
        let by_cell = results.work_by_cell();
        let winners = by_cell.len();
        let performs = by_cell.into_iter().map(move |cw| {
            let cell = &cells[cw.cell];
            let work = build_work(pending, cell.state.cell_id.clone(), &cw);
            let client = cell.client.clone();
            let ids = origins.of_work(&work);
            async move {
                let sent = work.clone();
                let perform = request_id::within(ids, client.perform(work));
                let refused = match tokio::time::timeout(timeout, perform).await {
                    Ok(Ok(refused)) => only_sent(&sent, refused),
                    Ok(Err(error)) => {
                        warn!(cell_id = %sent.cell_id, %error, "perform failed");
                        sent
                    }
                    Err(_) => {
                        warn!(cell_id = %sent.cell_id, "perform timed out");
                        sent
                    }
                };
                (cw.cell, refused)
            }
        });
        let outcomes = join_all(performs)
            .instrument(info_span!("perform", winners))
            .await;
        let mut retry = AuctionBatch::new();
        let mut refusing = FxHashSet::default();
        for (cell, refused) in outcomes {
            if refused.is_empty() {
                continue;
            }
            debug!(cell_id = %refused.cell_id, refused = refused.len(), "cell refused work");
            refusing.insert(cell);
            let id = refused.cell_id.to_string();
            for r in &refused.lrps {
                for &i in &r.indices {
                    let key = WorkKey::Lrp(r.process_guid.clone(), i);
                    refused_by.entry(key).or_default().push(id.clone());
                }
            }
            for t in &refused.tasks {
                let key = WorkKey::Task(t.task_guid.clone());
                refused_by.entry(key).or_default().push(id.clone());
            }
            retry.lrps.extend(refused.lrps);
            retry.tasks.extend(refused.tasks);
        }
        if retry.is_empty() {
            None
        } else {
            Some((retry, refusing))
        }
    }

    /// Tells the BBS what could not be placed.
    async fn report(&self, failures: Failures, origins: &Origins) {
        if failures.lrps.is_empty() && failures.tasks.is_empty() {
            return;
        }
        let (n_lrps, n_tasks) = (failures.lrps.len(), failures.tasks.len());
        let bbs = self.bbs.clone();
        let lrps = futures::stream::iter(failures.lrps.into_iter().map(|(key, reason)| {
            let bbs = bbs.clone();
            let id = origins.of(WorkKey::Lrp(key.process_guid.clone(), key.index));
            async move {
                debug!(process_guid = %key.process_guid, index = key.index, %reason, "LRP not placed");
                let fail = request_id::within(id, bbs.fail_actual_lrp(&key, &reason));
                if let Err(error) = fail.await {
                    warn!(process_guid = %key.process_guid, index = key.index, %error,
                        "cannot report placement failure");
                }
            }
        }))
        .buffer_unordered(REPORT_CONCURRENCY)
        .collect::<Vec<()>>();
        let bbs = self.bbs.clone();
        let tasks = futures::stream::iter(failures.tasks.into_iter().map(|(guid, reason)| {
            let bbs = bbs.clone();
            let id = origins.of(WorkKey::Task(guid.clone()));
            async move {
                debug!(task_guid = %guid, %reason, "Task not placed");
                let reject = request_id::within(id, bbs.reject_task(&guid, &reason));
                if let Err(error) = reject.await {
                    warn!(task_guid = %guid, %error, "cannot report task rejection");
                }
            }
        }))
        .buffer_unordered(REPORT_CONCURRENCY)
        .collect::<Vec<()>>();
        futures::future::join(lrps, tasks)
            .instrument(info_span!(
                "report_failures",
                lrps = n_lrps,
                tasks = n_tasks
            ))
            .await;
    }
}

/// Fails every piece of `work`: refused by the cells named in `refused_by`, or, for
/// work no cell was asked about, because no cell answered.
fn fail_unplaceable(
    work: &AuctionBatch,
    refused_by: &FxHashMap<WorkKey, Vec<String>>,
    failures: &mut Failures,
) {
    let reason = |key: WorkKey| match refused_by.get(&key) {
        Some(cells) => Error::RefusedByCells {
            cells: cells.clone(),
        }
        .to_string(),
        None => Error::CellCommunication.to_string(),
    };
    let mut seen = FxHashSet::default();
    for r in &work.lrps {
        for &i in &r.indices {
            if seen.insert(WorkKey::Lrp(r.process_guid.clone(), i)) {
                failures.lrp(r, i, reason(WorkKey::Lrp(r.process_guid.clone(), i)));
            }
        }
    }
    for t in &work.tasks {
        if seen.insert(WorkKey::Task(t.task_guid.clone())) {
            failures.task(t, reason(WorkKey::Task(t.task_guid.clone())));
        }
    }
}

/// The work of one winner, LRP instances grouped by request.
fn build_work(batch: &AuctionBatch, cell_id: CellId, cw: &CellWork) -> Work {
    let mut work = Work::new(cell_id);
    let mut slot: FxHashMap<usize, usize> = FxHashMap::default();
    for &(request, index) in &cw.lrps {
        let s = *slot.entry(request).or_insert_with(|| {
            let r = &batch.lrps[request];
            work.lrps.push(LrpStartRequest {
                process_guid: r.process_guid.clone(),
                domain: r.domain.clone(),
                indices: Vec::new(),
                resource: r.resource,
                placement_constraint: r.placement_constraint.clone(),
            });
            work.lrps.len() - 1
        });
        work.lrps[s].indices.push(index);
    }
    work.tasks
        .extend(cw.tasks.iter().map(|&t| batch.tasks[t].clone()));
    work
}

/// Keeps of what a cell says it refused only what it was sent (a cell cannot hand
/// back work it was never given).
fn only_sent(sent: &Work, mut refused: Work) -> Work {
    let lrps: FxHashSet<(&str, i32)> = sent
        .lrps
        .iter()
        .flat_map(|r| r.indices.iter().map(move |&i| (r.process_guid.as_str(), i)))
        .collect();
    let tasks: FxHashSet<&str> = sent.tasks.iter().map(|t| t.task_guid.as_str()).collect();
    let mut seen: FxHashSet<(ProcessGuid, i32)> = FxHashSet::default();
    for r in &mut refused.lrps {
        r.indices.retain(|&i| {
            lrps.contains(&(r.process_guid.as_str(), i)) && seen.insert((r.process_guid.clone(), i))
        });
    }
    refused.lrps.retain(|r| !r.indices.is_empty());
    let mut seen_tasks: FxHashSet<TaskGuid> = FxHashSet::default();
    refused
        .tasks
        .retain(|t| tasks.contains(t.task_guid.as_str()) && seen_tasks.insert(t.task_guid.clone()));
    refused.cell_id = sent.cell_id.clone();
    refused
}
