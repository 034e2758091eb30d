//! First-fit bin packing: each piece of work goes to the first compatible cell (in the
//! order the cells are given) that has room. Fills cells one after the other.

use std::sync::Arc;

use diego_core::CellState;

use super::round::{run_round, Chooser, Job, Round};
use super::{PlacementOptions, PlacementStrategy};
use crate::results::AuctionResults;
use crate::work::AuctionBatch;

/// First-fit bin packing.
#[derive(Clone, Debug, Default)]
pub struct FirstFitStrategy {
    options: PlacementOptions,
}

impl FirstFitStrategy {
    /// First fit with these shared options.
    pub fn new(options: PlacementOptions) -> Self {
        FirstFitStrategy { options }
    }
}

struct FirstFit;

impl Chooser for FirstFit {
    fn choose_lrp(&mut self, _: &Round<'_>, _: &Job, feasible: &[u32]) -> Option<u32> {
        feasible.first().copied()
    }

    fn choose_task(&mut self, _: &Round<'_>, _: &Job, feasible: &[u32]) -> Option<u32> {
        feasible.first().copied()
    }
}

impl PlacementStrategy for FirstFitStrategy {
    fn name(&self) -> &str {
        "first-fit"
    }

    fn place(&mut self, cells: &[Arc<CellState>], batch: &AuctionBatch) -> AuctionResults {
        run_round(cells, batch, &self.options, &mut FirstFit)
    }
}
