//! Spread (Kubernetes' default `LeastAllocated` scoring): each piece of work goes to the
//! compatible cell that will be the least allocated once it is placed. Balances load
//! but, unlike Diego, knows nothing of zones or of instances of the same app.

use std::sync::Arc;

use diego_core::CellState;

use super::best_fit::ByAllocation;
use super::round::run_round;
use super::{PlacementOptions, PlacementStrategy};
use crate::results::AuctionResults;
use crate::work::AuctionBatch;

/// Spread (least allocated wins).
#[derive(Clone, Debug, Default)]
pub struct SpreadStrategy {
    options: PlacementOptions,
}

impl SpreadStrategy {
    /// Spread with these shared options.
    pub fn new(options: PlacementOptions) -> Self {
        SpreadStrategy { options }
    }
}

impl PlacementStrategy for SpreadStrategy {
    fn name(&self) -> &str {
        "spread"
    }

    fn place(&mut self, cells: &[Arc<CellState>], batch: &AuctionBatch) -> AuctionResults {
        run_round(
            cells,
            batch,
            &self.options,
            &mut ByAllocation { most: false },
        )
    }
}
