//! LRP convergence planning: pure, deterministic, no I/O. Given a snapshot of the
//! DesiredLRPs, the ActualLRP rows, the domains and the live cells at `now`, list every
//! repair SPEC.md's LRP convergence calls for, each with its reason.

use std::collections::HashSet;

use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::models::actual_lrp::{ActualLrp, ActualLrpState, Presence};
use crate::models::desired_lrp::SchedulingInfo;
use crate::models::domain::Domain;
use crate::models::guid::CellId;
use crate::models::restart_policy::RestartCalculator;
use crate::time::Timestamp;

/// What LRP convergence reads.
#[derive(Clone, Debug, Default)]
pub struct LrpSnapshot {
    /// Every DesiredLRP's scheduling half.
    pub desired: Vec<SchedulingInfo>,
    /// Every ActualLRP row, all presences.
    pub actual: Vec<Arc<ActualLrp>>,
    /// Every stored domain (expired ones too).
    pub domains: Vec<Domain>,
}

/// The settings LRP planning uses: [`LrpConvergenceConfig::default`], changed with the
/// `with_*` setters.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LrpConvergenceConfig {
    /// UNCLAIMED for longer than this → auctioned again (30 s).
    pub stale_unclaimed_duration: Duration,
    /// The crash restart policy.
    pub restart: RestartCalculator,
}

impl Default for LrpConvergenceConfig {
    fn default() -> Self {
        LrpConvergenceConfig {
            stale_unclaimed_duration: Duration::from_secs(30),
            restart: RestartCalculator::default(),
        }
    }
}

impl LrpConvergenceConfig {
    /// With `stale_unclaimed_duration`: UNCLAIMED for longer than this is auctioned again.
    #[must_use]
    pub fn with_stale_unclaimed_duration(mut self, stale_unclaimed_duration: Duration) -> Self {
        self.stale_unclaimed_duration = stale_unclaimed_duration;
        self
    }

    /// With `restart`: the crash restart policy.
    #[must_use]
    pub fn with_restart(mut self, restart: RestartCalculator) -> Self {
        self.restart = restart;
        self
    }
}

/// One repair, named by its reason.
#[derive(Clone, Debug, PartialEq)]
pub enum LrpAction {
    /// "missing": indices of a DesiredLRP with no ORDINARY row → create UNCLAIMED + auction.
    CreateMissing {
        /// The LRP.
        info: Box<SchedulingInfo>,
        /// The indices to create.
        indices: Vec<i32>,
    },
    /// "extra": a row at or above the desired count, in a fresh domain → retire.
    RetireExtra(Arc<ActualLrp>),
    /// "stale unclaimed": UNCLAIMED for too long → auction again.
    AuctionStaleUnclaimed(Arc<ActualLrp>),
    /// "crashed": CRASHED and its backoff has passed → unclaim + auction.
    RestartCrashed(Arc<ActualLrp>),
    /// "lost cell": CLAIMED/RUNNING on a vanished cell → SUSPECT + UNCLAIMED replacement.
    SuspectAndReplace(Arc<ActualLrp>),
    /// "lost cell, suspect exists": the index already has a SUSPECT row → unclaim.
    UnclaimOnLostCell(Arc<ActualLrp>),
    /// "suspect replaced": an ORDINARY RUNNING row exists for the suspect's index → remove it.
    RemoveSuspect(Arc<ActualLrp>),
    /// "suspect's cell is back": promote the suspect, drop the (not running) replacement.
    PromoteSuspect {
        /// The SUSPECT row.
        suspect: Arc<ActualLrp>,
        /// The ORDINARY replacement, if any.
        replacement: Option<Arc<ActualLrp>>,
    },
    /// "orphan": a row with no DesiredLRP, in a fresh domain → retire (suspects deleted).
    RetireOrphan(Arc<ActualLrp>),
    /// "evacuating on a lost cell": an EVACUATING row whose cell vanished → delete.
    RemoveEvacuating(Arc<ActualLrp>),
}

impl LrpAction {
    /// A short reason, for logs and reports.
    pub fn reason(&self) -> &'static str {
        match self {
            LrpAction::CreateMissing { .. } => "missing",
            LrpAction::RetireExtra(_) => "extra",
            LrpAction::AuctionStaleUnclaimed(_) => "stale unclaimed",
            LrpAction::RestartCrashed(_) => "crashed past backoff",
            LrpAction::SuspectAndReplace(_) => "on a lost cell",
            LrpAction::UnclaimOnLostCell(_) => "on a lost cell with a suspect",
            LrpAction::RemoveSuspect(_) => "suspect replaced",
            LrpAction::PromoteSuspect { .. } => "suspect's cell returned",
            LrpAction::RetireOrphan(_) => "not desired",
            LrpAction::RemoveEvacuating(_) => "evacuating on a lost cell",
        }
    }
}

/// Counts of what the snapshot holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LrpCounts {
    /// DesiredLRPs.
    pub desired: usize,
    /// Desired instances summed.
    pub desired_instances: usize,
    /// ORDINARY rows by state.
    pub unclaimed: usize,
    /// ORDINARY CLAIMED rows.
    pub claimed: usize,
    /// ORDINARY RUNNING rows.
    pub running: usize,
    /// ORDINARY CRASHED rows.
    pub crashed: usize,
    /// SUSPECT rows that are RUNNING.
    pub suspect_running: usize,
    /// SUSPECT rows that are CLAIMED.
    pub suspect_claimed: usize,
    /// EVACUATING rows.
    pub evacuating: usize,
    /// Live cells.
    pub present_cells: usize,
    /// Cells named by rows but without presence.
    pub missing_cells: usize,
}

/// Everything one LRP pass decided.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LrpConvergencePlan {
    /// Expired domains to delete first.
    pub pruned_domains: Vec<String>,
    /// The repairs, in the order to apply them.
    pub actions: Vec<LrpAction>,
    /// Counts of the snapshot.
    pub counts: LrpCounts,
}

impl LrpConvergencePlan {
    /// How many actions have `reason`.
    pub fn count(&self, reason: &str) -> usize {
        self.actions.iter().filter(|a| a.reason() == reason).count()
    }

    /// Instances found missing (summed over LRPs).
    pub fn missing_instances(&self) -> usize {
        self.actions
            .iter()
            .map(|a| match a {
                LrpAction::CreateMissing { indices, .. } => indices.len(),
                _ => 0,
            })
            .sum()
    }
}

/// The rows of one index.
#[derive(Default)]
struct IndexRows<'a> {
    ordinary: Option<&'a Arc<ActualLrp>>,
    evacuating: Option<&'a Arc<ActualLrp>>,
    suspect: Option<&'a Arc<ActualLrp>>,
}

/// Plans one LRP convergence pass (SPEC.md, LRP convergence).
pub fn plan_lrp_convergence(
    snapshot: &LrpSnapshot,
    now: Timestamp,
    live_cells: &HashSet<CellId>,
    config: &LrpConvergenceConfig,
) -> LrpConvergencePlan {
    let mut plan = LrpConvergencePlan::default();
    // Expired domains are pruned first; freshness is judged on what remains.
    let mut fresh: FxHashSet<&str> = FxHashSet::default();
    for d in &snapshot.domains {
        if d.is_fresh(now) {
            fresh.insert(d.name.as_str());
        } else {
            plan.pruned_domains.push(d.name.clone());
        }
    }

    let live: FxHashSet<&str> = live_cells.iter().map(CellId::as_str).collect();
    let on_lost_cell = |row: &ActualLrp| row.cell_id().is_some_and(|c| !live.contains(c.as_str()));
    let mut by_process: FxHashMap<&str, Vec<&Arc<ActualLrp>>> =
        FxHashMap::with_capacity_and_hasher(snapshot.desired.len(), Default::default());
    let mut missing_cells: FxHashSet<&str> = FxHashSet::default();
    for row in &snapshot.actual {
        by_process
            .entry(row.key.process_guid.as_str())
            .or_default()
            .push(row);
        if on_lost_cell(row) {
            if let Some(cell) = row.cell_id() {
                missing_cells.insert(cell.as_str());
            }
        }
        count_row(&mut plan.counts, row);
    }
    plan.counts.present_cells = live_cells.len();
    plan.counts.missing_cells = missing_cells.len();
    plan.counts.desired = snapshot.desired.len();

    let stale_before = now - config.stale_unclaimed_duration;
    let mut desired_guids: FxHashSet<&str> =
        FxHashSet::with_capacity_and_hasher(snapshot.desired.len(), Default::default());
    for info in &snapshot.desired {
        desired_guids.insert(info.process_guid.as_str());
        let instances = info.instances.max(0);
        plan.counts.desired_instances += instances as usize;
        let domain_fresh = fresh.contains(info.domain.as_str());
        let rows: &mut [&Arc<ActualLrp>] = match by_process.get_mut(info.process_guid.as_str()) {
            Some(rows) => rows,
            None => &mut [],
        };
        rows.sort_unstable_by_key(|r| (r.key.index, r.presence));
        // Rows are sorted by index: indices in 0..instances with no ORDINARY row between
        // two that have one are missing.
        let mut missing = Vec::new();
        let mut next = 0;
        let mut i = 0;
        while i < rows.len() {
            let index = rows[i].key.index;
            let len = rows[i..]
                .iter()
                .take_while(|r| r.key.index == index)
                .count();
            let mut slot = IndexRows::default();
            for row in &rows[i..i + len] {
                match row.presence {
                    Presence::Ordinary => slot.ordinary = Some(*row),
                    Presence::Evacuating => slot.evacuating = Some(*row),
                    Presence::Suspect => slot.suspect = Some(*row),
                }
            }
            if slot.ordinary.is_some() && (0..instances).contains(&index) {
                missing.extend(next..index);
                next = index + 1;
            }
            plan_index(
                &mut plan,
                &slot,
                index < instances,
                domain_fresh,
                now,
                stale_before,
                &on_lost_cell,
                config,
            );
            i += len;
        }
        missing.extend(next..instances);
        if !missing.is_empty() {
            plan.actions.push(LrpAction::CreateMissing {
                info: Box::new(info.clone()),
                indices: missing,
            });
        }
    }

    // Rows whose process is not desired: orphans (fresh domains only), and EVACUATING
    // rows on lost cells.
    let mut orphans: Vec<&&Arc<ActualLrp>> = by_process
        .iter()
        .filter(|(pg, _)| !desired_guids.contains(*pg))
        .flat_map(|(_, rows)| rows.iter())
        .collect();
    orphans.sort_unstable_by(|a, b| {
        (&a.key.process_guid, a.key.index, a.presence).cmp(&(
            &b.key.process_guid,
            b.key.index,
            b.presence,
        ))
    });
    for row in orphans {
        match row.presence {
            Presence::Ordinary | Presence::Suspect => {
                if fresh.contains(row.key.domain.as_str()) {
                    plan.actions.push(LrpAction::RetireOrphan((*row).clone()));
                }
            }
            Presence::Evacuating => {
                if on_lost_cell(row) {
                    plan.actions
                        .push(LrpAction::RemoveEvacuating((*row).clone()));
                }
            }
        }
    }
    plan
}

#[allow(clippy::too_many_arguments)]
fn plan_index(
    plan: &mut LrpConvergencePlan,
    rows: &IndexRows<'_>,
    desired_index: bool,
    domain_fresh: bool,
    now: Timestamp,
    stale_before: Timestamp,
    on_lost_cell: &dyn Fn(&ActualLrp) -> bool,
    config: &LrpConvergenceConfig,
) {
    if let Some(evac) = rows.evacuating {
        if on_lost_cell(evac) {
            plan.actions.push(LrpAction::RemoveEvacuating(evac.clone()));
        }
    }
    if let Some(suspect) = rows.suspect {
        let replacement_running = rows
            .ordinary
            .is_some_and(|o| o.state == ActualLrpState::Running);
        if replacement_running {
            plan.actions.push(LrpAction::RemoveSuspect(suspect.clone()));
        } else if !on_lost_cell(suspect) {
            plan.actions.push(LrpAction::PromoteSuspect {
                suspect: suspect.clone(),
                replacement: rows.ordinary.cloned(),
            });
            return;
        } else if !desired_index && domain_fresh {
            plan.actions.push(LrpAction::RetireExtra(suspect.clone()));
        }
    }
    let Some(row) = rows.ordinary else {
        return;
    };
    if !desired_index {
        if domain_fresh {
            plan.actions.push(LrpAction::RetireExtra(row.clone()));
        }
        return;
    }
    match row.state {
        ActualLrpState::Unclaimed if row.since < stale_before => plan
            .actions
            .push(LrpAction::AuctionStaleUnclaimed(row.clone())),
        ActualLrpState::Crashed
            if config
                .restart
                .should_restart(row.crash_count, row.since, now) =>
        {
            plan.actions.push(LrpAction::RestartCrashed(row.clone()))
        }
        ActualLrpState::Claimed | ActualLrpState::Running if on_lost_cell(row) => {
            if rows.suspect.is_some() {
                plan.actions.push(LrpAction::UnclaimOnLostCell(row.clone()));
            } else {
                plan.actions.push(LrpAction::SuspectAndReplace(row.clone()));
            }
        }
        _ => {}
    }
}

fn count_row(c: &mut LrpCounts, row: &ActualLrp) {
    match (row.presence, row.state) {
        (Presence::Ordinary, ActualLrpState::Unclaimed) => c.unclaimed += 1,
        (Presence::Ordinary, ActualLrpState::Claimed) => c.claimed += 1,
        (Presence::Ordinary, ActualLrpState::Running) => c.running += 1,
        (Presence::Ordinary, ActualLrpState::Crashed) => c.crashed += 1,
        (Presence::Suspect, ActualLrpState::Running) => c.suspect_running += 1,
        (Presence::Suspect, ActualLrpState::Claimed) => c.suspect_claimed += 1,
        (Presence::Evacuating, _) => c.evacuating += 1,
        _ => {}
    }
}
