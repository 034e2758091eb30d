//! Random placement: each piece of work goes to a compatible cell with room chosen
//! uniformly at random (from a seeded generator). The baseline every scheduler should
//! beat.

use std::sync::Arc;

use diego_core::CellState;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::round::{run_round, Chooser, Job, Round};
use super::{PlacementOptions, PlacementStrategy};
use crate::results::AuctionResults;
use crate::work::AuctionBatch;

/// Uniformly random placement.
#[derive(Clone, Debug)]
pub struct RandomStrategy {
    options: PlacementOptions,
    rng: SmallRng,
}

impl RandomStrategy {
    /// Random placement seeded with `seed`.
    pub fn new(options: PlacementOptions, seed: u64) -> Self {
        RandomStrategy {
            options,
            rng: SmallRng::seed_from_u64(seed),
        }
    }
}

struct Uniform<'r>(&'r mut SmallRng);

impl Chooser for Uniform<'_> {
    fn choose_lrp(&mut self, _: &Round<'_>, _: &Job, feasible: &[u32]) -> Option<u32> {
        (!feasible.is_empty()).then(|| feasible[self.0.random_range(0..feasible.len())])
    }

    fn choose_task(&mut self, r: &Round<'_>, j: &Job, feasible: &[u32]) -> Option<u32> {
        self.choose_lrp(r, j, feasible)
    }
}

impl PlacementStrategy for RandomStrategy {
    fn name(&self) -> &str {
        "random"
    }

    fn place(&mut self, cells: &[Arc<CellState>], batch: &AuctionBatch) -> AuctionResults {
        run_round(cells, batch, &self.options, &mut Uniform(&mut self.rng))
    }
}
