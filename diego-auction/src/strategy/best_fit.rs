//! Best-fit bin packing (Kubernetes' `MostAllocated`): each piece of work goes to the
//! compatible cell that will be the most allocated once it is placed — the mean
//! fraction of memory, disk and containers used. Packs work tightly, leaving whole
//! cells free for large work.

use std::sync::Arc;

use diego_core::CellState;

use super::round::{run_round, Chooser, Job, Round};
use super::{PlacementOptions, PlacementStrategy};
use crate::results::AuctionResults;
use crate::work::AuctionBatch;

/// Best-fit bin packing (most allocated wins).
#[derive(Clone, Debug, Default)]
pub struct BestFitStrategy {
    options: PlacementOptions,
}

impl BestFitStrategy {
    /// Best fit with these shared options.
    pub fn new(options: PlacementOptions) -> Self {
        BestFitStrategy { options }
    }
}

/// Picks the feasible cell with the highest (`most = true`) or lowest used fraction
/// after placement; ties go to the cell given first.
pub(crate) struct ByAllocation {
    pub most: bool,
}

impl ByAllocation {
    fn pick(&self, round: &Round<'_>, job: &Job, feasible: &[u32], lrp: bool) -> Option<u32> {
        let mut best: Option<(f64, u32)> = None;
        for &c in feasible {
            let s = &round.slots[c as usize];
            let memory = i64::from(job.resource.memory_mb) + if lrp { s.proxy } else { 0 };
            let used = s.used_fraction_after(memory, job.resource.disk_mb.into());
            let better = match best {
                None => true,
                Some((b, _)) if self.most => used > b,
                Some((b, _)) => used < b,
            };
            if better {
                best = Some((used, c));
            }
        }
        best.map(|(_, c)| c)
    }
}

impl Chooser for ByAllocation {
    fn choose_lrp(&mut self, round: &Round<'_>, job: &Job, feasible: &[u32]) -> Option<u32> {
        self.pick(round, job, feasible, true)
    }

    fn choose_task(&mut self, round: &Round<'_>, job: &Job, feasible: &[u32]) -> Option<u32> {
        self.pick(round, job, feasible, false)
    }
}

impl PlacementStrategy for BestFitStrategy {
    fn name(&self) -> &str {
        "best-fit"
    }

    fn place(&mut self, cells: &[Arc<CellState>], batch: &AuctionBatch) -> AuctionResults {
        run_round(
            cells,
            batch,
            &self.options,
            &mut ByAllocation { most: true },
        )
    }
}
