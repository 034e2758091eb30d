//! Convergence: the BBS heals itself.
//!
//! Planning is pure ([`plan_lrp_convergence`], [`plan_task_convergence`]): a snapshot in,
//! every repair out, each with its reason. Applying goes through the BBS's operations
//! with compare-and-swap on the rows as read, so a plan made on a stale snapshot never
//! overwrites newer state: such repairs are skipped and picked up by the next pass.
//!
//! The [`Converger`] runs a pass every `convergence_interval` (30 s) and at once when a
//! cell's presence expires; never two passes at a time.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use diego_core::bbs::auctioneer_client::RecordingAuctioneer;
//! use diego_core::prelude::*;
//! use diego_core::{Bbs, DesiredLrp, RunAction};
//! use diego_core::convergence::Converger;
//!
//! let auctioneer = Arc::new(RecordingAuctioneer::new());
//! let bbs = Bbs::builder().auctioneer(auctioneer.clone()).build();
//! bbs.desire_lrp(DesiredLrp::new("web", "apps", "preloaded:cflinuxfs4", 2,
//!     RunAction::new("/app", "vcap"))).await?;
//! // An instance row goes missing; one pass puts it back and asks for its placement.
//! let row = bbs.actual_lrps(&Default::default()).await?.remove(0);
//! bbs.delete_actual_lrp_row(&row).await?;
//! let report = Converger::builder(bbs.clone()).build().converge_once().await?;
//! assert_eq!(report.missing, 1);
//! assert_eq!(bbs.actual_lrps(&Default::default()).await?.len(), 2);
//! # Ok::<(), diego_core::Error>(())
//! # }).unwrap();
//! ```

mod lrp;
mod task;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

pub use lrp::{
    plan_lrp_convergence, LrpAction, LrpConvergenceConfig, LrpConvergencePlan, LrpCounts,
    LrpSnapshot,
};
pub use task::{
    plan_task_convergence, TaskAction, TaskConvergenceConfig, TaskConvergencePlan,
    CELL_DISAPPEARED, NOT_STARTED_IN_TIME,
};

use crate::bbs::auctioneer_client::{LrpStartRequest, TaskStartRequest};
use crate::bbs::Bbs;
use crate::error::{Error, Result};
use crate::models::actual_lrp::{ActualLrp, Presence};
use crate::models::desired_lrp::SchedulingInfo;
use crate::models::guid::{CellId, ProcessGuid};
use crate::prelude::*;
use crate::store::{ActualLrpFilter, DesiredLrpFilter, TaskFilter};

/// The converger's settings; every number is Diego's default. Start from
/// [`ConvergenceConfig::default`] and change what differs with the `with_*` setters.
///
/// ```
/// use std::time::Duration;
/// use diego_core::convergence::ConvergenceConfig;
/// let config = ConvergenceConfig::default().with_convergence_interval(Duration::from_secs(5));
/// assert_eq!(config.concurrency, 16);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConvergenceConfig {
    /// Time between passes (30 s).
    pub convergence_interval: Duration,
    /// How often expired cell presences are looked for (a pass runs at once when one
    /// expired) (1 s).
    pub cell_check_interval: Duration,
    /// Repairs applied at once (16).
    pub concurrency: usize,
    /// LRP planning settings.
    pub lrp: LrpConvergenceConfig,
    /// Task planning settings.
    pub task: TaskConvergenceConfig,
}

impl Default for ConvergenceConfig {
    fn default() -> Self {
        ConvergenceConfig {
            convergence_interval: Duration::from_secs(30),
            cell_check_interval: Duration::from_secs(1),
            concurrency: 16,
            lrp: LrpConvergenceConfig::default(),
            task: TaskConvergenceConfig::default(),
        }
    }
}

impl ConvergenceConfig {
    /// With `convergence_interval`: time between passes.
    #[must_use]
    pub fn with_convergence_interval(mut self, convergence_interval: Duration) -> Self {
        self.convergence_interval = convergence_interval;
        self
    }

    /// With `cell_check_interval`: how often expired cell presences are looked for.
    #[must_use]
    pub fn with_cell_check_interval(mut self, cell_check_interval: Duration) -> Self {
        self.cell_check_interval = cell_check_interval;
        self
    }

    /// With `concurrency`: repairs applied at once.
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// With `lrp`: the LRP planning settings.
    #[must_use]
    pub fn with_lrp(mut self, lrp: LrpConvergenceConfig) -> Self {
        self.lrp = lrp;
        self
    }

    /// With `task`: the task planning settings.
    #[must_use]
    pub fn with_task(mut self, task: TaskConvergenceConfig) -> Self {
        self.task = task;
        self
    }
}

/// What one pass saw and did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConvergenceReport {
    /// DesiredLRPs.
    pub desired: usize,
    /// Desired instances summed.
    pub desired_instances: usize,
    /// ORDINARY UNCLAIMED rows.
    pub unclaimed: usize,
    /// ORDINARY CLAIMED rows.
    pub claimed: usize,
    /// ORDINARY RUNNING rows.
    pub running: usize,
    /// ORDINARY CRASHED rows.
    pub crashed: usize,
    /// Instances created because they were missing.
    pub missing: usize,
    /// Rows retired because their index is above the desired count.
    pub extra: usize,
    /// UNCLAIMED rows auctioned again.
    pub stale_unclaimed: usize,
    /// CRASHED rows restarted.
    pub crashed_restarted: usize,
    /// Rows made SUSPECT (their cell vanished).
    pub suspected: usize,
    /// SUSPECT rows that are RUNNING.
    pub suspect_running: usize,
    /// SUSPECT rows that are CLAIMED.
    pub suspect_claimed: usize,
    /// SUSPECT rows removed (replacement running).
    pub suspect_removed: usize,
    /// SUSPECT rows promoted (cell returned).
    pub suspect_promoted: usize,
    /// Rows retired because nothing desires them.
    pub orphans: usize,
    /// EVACUATING rows.
    pub evacuating: usize,
    /// EVACUATING rows deleted (cell vanished).
    pub evacuating_removed: usize,
    /// Live cells.
    pub present_cells: usize,
    /// Cells named by rows but without presence.
    pub missing_cells: usize,
    /// Pending tasks.
    pub tasks_pending: usize,
    /// Running tasks.
    pub tasks_running: usize,
    /// Completed tasks.
    pub tasks_completed: usize,
    /// Resolving tasks.
    pub tasks_resolving: usize,
    /// Tasks failed (expired pending, or cell vanished).
    pub tasks_failed: usize,
    /// Tasks kicked (resolving demoted, callbacks resent).
    pub tasks_kicked: usize,
    /// Completed tasks deleted.
    pub tasks_deleted: usize,
    /// Tasks auctioned again.
    pub tasks_auctioned: usize,
    /// Expired domains deleted.
    pub pruned_domains: usize,
    /// Repairs applied.
    pub actions_taken: usize,
    /// Repairs skipped because the row changed since the snapshot.
    pub actions_skipped: usize,
    /// Repairs that failed (logged; retried next pass).
    pub actions_failed: usize,
    /// How long the pass took.
    pub duration: Duration,
}

/// Builds a [`Converger`].
#[derive(Debug)]
pub struct ConvergerBuilder {
    bbs: Bbs,
    config: ConvergenceConfig,
}

impl ConvergerBuilder {
    /// The settings.
    #[must_use]
    pub fn config(mut self, config: ConvergenceConfig) -> Self {
        self.config = config;
        self
    }

    /// The converger.
    pub fn build(self) -> Converger {
        Converger {
            bbs: self.bbs,
            config: self.config,
            pass: tokio::sync::Mutex::new(()),
        }
    }
}

/// Runs convergence passes over a BBS.
#[derive(Debug)]
pub struct Converger {
    bbs: Bbs,
    config: ConvergenceConfig,
    pass: tokio::sync::Mutex<()>,
}

/// Indices of one process to send to the auction.
type Auction = (ProcessGuid, Vec<i32>);

/// The outcome of one repair.
enum Outcome {
    Taken,
    Skipped,
    Failed,
}

fn outcome(what: &str, r: Result<()>) -> Outcome {
    match r {
        Ok(()) => Outcome::Taken,
        Err(Error::ResourceConflict | Error::ResourceExists | Error::ResourceNotFound) => {
            Outcome::Skipped
        }
        Err(e) => {
            tracing::warn!(error = %e, repair = what, "convergence repair failed; next pass retries");
            Outcome::Failed
        }
    }
}

impl Converger {
    /// A builder for a converger of `bbs` with default settings.
    pub fn builder(bbs: Bbs) -> ConvergerBuilder {
        ConvergerBuilder {
            bbs,
            config: ConvergenceConfig::default(),
        }
    }

    /// Runs passes until `cancel` fires: every `convergence_interval`, and at once when a
    /// cell presence expires. A failed pass is logged and retried at the next interval.
    pub async fn run(&self, cancel: CancellationToken) {
        let mut interval = tokio::time::interval(self.config.convergence_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cells = tokio::time::interval(self.config.cell_check_interval);
        cells.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let run_now = tokio::select! {
                _ = cancel.cancelled() => return,
                _ = interval.tick() => true,
                _ = cells.tick() => match self.bbs.expire_cells().await {
                    Ok(expired) if !expired.is_empty() => {
                        let ids: Vec<&str> = expired.iter().map(|c| c.cell_id.as_str()).collect();
                        tracing::info!(cells = ?ids, "cell presences expired; converging now");
                        true
                    }
                    Ok(_) => false,
                    Err(e) => {
                        tracing::warn!(error = %e, "failed to look for expired cell presences");
                        false
                    }
                },
            };
            if run_now {
                if let Err(e) = self.converge_once().await {
                    tracing::error!(error = %e, "convergence pass failed; retrying next interval");
                }
            }
        }
    }

    /// Runs one pass now (waiting for a running pass to finish first).
    #[tracing::instrument(skip_all)]
    pub async fn converge_once(&self) -> Result<ConvergenceReport> {
        let _one_at_a_time = self.pass.lock().await;
        let started = Instant::now();
        let bbs = &self.bbs;
        let now = bbs.clock().now();
        let live: HashSet<CellId> = bbs.cells().await?.into_iter().map(|c| c.cell_id).collect();

        let snapshot = LrpSnapshot {
            desired: bbs
                .store()
                .scheduling_infos(&DesiredLrpFilter::default())
                .await?,
            actual: bbs.store().actual_lrps(&ActualLrpFilter::default()).await?,
            domains: bbs.store().domains().await?,
        };
        let lrp_plan = plan_lrp_convergence(&snapshot, now, &live, &self.config.lrp);
        let tasks = bbs.store().tasks(&TaskFilter::default()).await?;
        let task_plan = plan_task_convergence(&tasks, now, &live, &self.config.task);

        let mut report = report_of(&lrp_plan, &task_plan);
        if !lrp_plan.pruned_domains.is_empty() {
            report.pruned_domains = bbs.prune_expired_domains().await?.len();
        }
        self.apply_lrp_plan(&snapshot, lrp_plan, &mut report).await;
        self.apply_task_plan(task_plan, &mut report).await;
        report.duration = started.elapsed();
        record_metrics(&report);
        tracing::info!(
            desired = report.desired,
            running = report.running,
            missing = report.missing,
            extra = report.extra,
            suspected = report.suspected,
            actions = report.actions_taken,
            skipped = report.actions_skipped,
            failed = report.actions_failed,
            duration_ms = report.duration.as_millis() as u64,
            "convergence pass done"
        );
        Ok(report)
    }

    async fn apply_lrp_plan(
        &self,
        snapshot: &LrpSnapshot,
        plan: LrpConvergencePlan,
        report: &mut ConvergenceReport,
    ) {
        let infos: BTreeMap<&ProcessGuid, &SchedulingInfo> = snapshot
            .desired
            .iter()
            .map(|d| (&d.process_guid, d))
            .collect();
        let bbs = &self.bbs;
        let results: Vec<(Outcome, Option<Auction>)> = futures::stream::iter(plan.actions)
            .map(|action| async move {
                let auction_row = |row: &Arc<ActualLrp>| {
                    Some((row.key.process_guid.clone(), vec![row.key.index]))
                };
                match action {
                    LrpAction::CreateMissing { info, indices } => {
                        match bbs.create_unclaimed_actual_lrps(&info, &indices).await {
                            Ok(created) if created.is_empty() => (Outcome::Skipped, None),
                            Ok(created) => {
                                (Outcome::Taken, Some((info.process_guid.clone(), created)))
                            }
                            Err(e) => (outcome("missing", Err(e)), None),
                        }
                    }
                    LrpAction::RetireExtra(row) | LrpAction::RetireOrphan(row) => {
                        let r = if row.presence == Presence::Suspect {
                            bbs.delete_actual_lrp_row(&row).await
                        } else {
                            bbs.retire_actual_lrp_row(&row).await
                        };
                        (outcome("retire", r), None)
                    }
                    LrpAction::AuctionStaleUnclaimed(row) => (Outcome::Taken, auction_row(&row)),
                    LrpAction::RestartCrashed(row) | LrpAction::UnclaimOnLostCell(row) => {
                        match outcome("unclaim", bbs.unclaim_actual_lrp_row(&row).await) {
                            Outcome::Taken => (Outcome::Taken, auction_row(&row)),
                            o => (o, None),
                        }
                    }
                    LrpAction::SuspectAndReplace(row) => {
                        match outcome("suspect", bbs.suspect_actual_lrp_row(&row).await) {
                            Outcome::Taken => (Outcome::Taken, auction_row(&row)),
                            o => (o, None),
                        }
                    }
                    LrpAction::RemoveSuspect(row) | LrpAction::RemoveEvacuating(row) => (
                        outcome("remove", bbs.delete_actual_lrp_row(&row).await),
                        None,
                    ),
                    LrpAction::PromoteSuspect {
                        suspect,
                        replacement,
                    } => (
                        outcome(
                            "promote",
                            bbs.promote_suspect_actual_lrp_row(&suspect, replacement.as_ref())
                                .await,
                        ),
                        None,
                    ),
                }
            })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;

        let mut auctions: BTreeMap<ProcessGuid, Vec<i32>> = BTreeMap::new();
        for (o, auction) in results {
            tally(report, o);
            if let Some((pg, indices)) = auction {
                auctions.entry(pg).or_default().extend(indices);
            }
        }
        let requests: Vec<LrpStartRequest> = auctions
            .into_iter()
            .filter_map(|(pg, mut indices)| {
                indices.sort_unstable();
                indices.dedup();
                infos
                    .get(&pg)
                    .map(|info| LrpStartRequest::new(info, indices))
            })
            .collect();
        if !requests.is_empty() {
            if let Err(e) = bbs.auctioneer().request_lrp_auctions(requests).await {
                tracing::warn!(error = %e, "convergence could not request LRP auctions");
            }
        }
    }

    async fn apply_task_plan(&self, plan: TaskConvergencePlan, report: &mut ConvergenceReport) {
        let bbs = &self.bbs;
        let mut auctions = Vec::new();
        for action in plan.actions {
            let o = match action {
                TaskAction::ExpirePending(t) => outcome(
                    "expire task",
                    bbs.fail_task_as_read(&t, NOT_STARTED_IN_TIME).await,
                ),
                TaskAction::FailOnLostCell(t) => outcome(
                    "fail task",
                    bbs.fail_task_as_read(&t, CELL_DISAPPEARED).await,
                ),
                TaskAction::DemoteResolving(t) => {
                    let o = outcome("kick task", bbs.demote_resolving_task(&t).await);
                    if matches!(o, Outcome::Taken) {
                        bbs.resend_task_callback(&t);
                    }
                    o
                }
                TaskAction::DeleteCompleted(t) => {
                    outcome("delete task", bbs.delete_completed_task(&t).await)
                }
                TaskAction::ResendCallback(t) => {
                    bbs.resend_task_callback(&t);
                    Outcome::Taken
                }
                TaskAction::Auction(t) => {
                    auctions.push(TaskStartRequest::new(&t));
                    Outcome::Taken
                }
            };
            tally(report, o);
        }
        if !auctions.is_empty() {
            if let Err(e) = bbs.auctioneer().request_task_auctions(auctions).await {
                tracing::warn!(error = %e, "convergence could not request task auctions");
            }
        }
    }
}

fn tally(report: &mut ConvergenceReport, o: Outcome) {
    match o {
        Outcome::Taken => report.actions_taken += 1,
        Outcome::Skipped => report.actions_skipped += 1,
        Outcome::Failed => report.actions_failed += 1,
    }
}

fn report_of(lrp: &LrpConvergencePlan, task: &TaskConvergencePlan) -> ConvergenceReport {
    let c = &lrp.counts;
    ConvergenceReport {
        desired: c.desired,
        desired_instances: c.desired_instances,
        unclaimed: c.unclaimed,
        claimed: c.claimed,
        running: c.running,
        crashed: c.crashed,
        missing: lrp.missing_instances(),
        extra: lrp.count("extra"),
        stale_unclaimed: lrp.count("stale unclaimed"),
        crashed_restarted: lrp.count("crashed past backoff"),
        suspected: lrp.count("on a lost cell") + lrp.count("on a lost cell with a suspect"),
        suspect_running: c.suspect_running,
        suspect_claimed: c.suspect_claimed,
        suspect_removed: lrp.count("suspect replaced"),
        suspect_promoted: lrp.count("suspect's cell returned"),
        orphans: lrp.count("not desired"),
        evacuating: c.evacuating,
        evacuating_removed: lrp.count("evacuating on a lost cell"),
        present_cells: c.present_cells,
        missing_cells: c.missing_cells,
        tasks_pending: task.pending,
        tasks_running: task.running,
        tasks_completed: task.completed,
        tasks_resolving: task.resolving,
        tasks_failed: task.count("pending too long") + task.count("cell disappeared"),
        tasks_kicked: task.count("resolving too long") + task.count("callback not delivered"),
        tasks_deleted: task.count("completed expired"),
        tasks_auctioned: task.count("pending"),
        pruned_domains: 0,
        actions_taken: 0,
        actions_skipped: 0,
        actions_failed: 0,
        duration: Duration::ZERO,
    }
}

fn record_metrics(r: &ConvergenceReport) {
    let gauges: [(&'static str, usize); 16] = [
        ("diego_convergence_lrps_desired", r.desired_instances),
        ("diego_convergence_lrps_unclaimed", r.unclaimed),
        ("diego_convergence_lrps_claimed", r.claimed),
        ("diego_convergence_lrps_running", r.running),
        ("diego_convergence_lrps_crashed", r.crashed),
        ("diego_convergence_lrps_missing", r.missing),
        ("diego_convergence_lrps_extra", r.extra),
        ("diego_convergence_lrps_suspect_running", r.suspect_running),
        ("diego_convergence_lrps_suspect_claimed", r.suspect_claimed),
        ("diego_convergence_lrps_evacuating", r.evacuating),
        ("diego_convergence_cells_present", r.present_cells),
        ("diego_convergence_cells_missing", r.missing_cells),
        ("diego_convergence_tasks_pending", r.tasks_pending),
        ("diego_convergence_tasks_running", r.tasks_running),
        ("diego_convergence_tasks_completed", r.tasks_completed),
        ("diego_convergence_tasks_resolving", r.tasks_resolving),
    ];
    for (name, value) in gauges {
        metrics::gauge!(name).set(value as f64);
    }
    metrics::counter!("diego_convergence_tasks_kicked").increment(r.tasks_kicked as u64);
    metrics::counter!("diego_convergence_domains_pruned").increment(r.pruned_domains as u64);
    metrics::counter!("diego_convergence_passes").increment(1);
    metrics::histogram!("diego_convergence_duration_seconds").record(r.duration.as_secs_f64());
}
