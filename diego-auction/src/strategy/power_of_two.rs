//! Power of two choices: for each piece of work, two compatible cells with room are
//! drawn at random and the less allocated of the two wins. Nearly as balanced as
//! looking at every cell, at the cost of looking at two.

use std::sync::Arc;

use diego_core::CellState;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::round::{run_round, Chooser, Job, Round};
use super::{PlacementOptions, PlacementStrategy};
use crate::results::AuctionResults;
use crate::work::AuctionBatch;

/// Power of two (random) choices, least allocated of the two wins.
#[derive(Clone, Debug)]
pub struct PowerOfTwoStrategy {
    options: PlacementOptions,
    rng: SmallRng,
}

impl PowerOfTwoStrategy {
    /// Power of two choices seeded with `seed`.
    pub fn new(options: PlacementOptions, seed: u64) -> Self {
        PowerOfTwoStrategy {
            options,
            rng: SmallRng::seed_from_u64(seed),
        }
    }
}

struct TwoChoices<'r>(&'r mut SmallRng);

impl TwoChoices<'_> {
    fn pick(&mut self, round: &Round<'_>, job: &Job, feasible: &[u32], lrp: bool) -> Option<u32> {
        match feasible.len() {
            0 => None,
            1 => Some(feasible[0]),
            n => {
                let a = self.0.random_range(0..n);
                let mut b = self.0.random_range(0..n - 1);
                if b >= a {
                    b += 1;
                }
                let used = |c: u32| {
                    let s = &round.slots[c as usize];
                    let memory = i64::from(job.resource.memory_mb) + if lrp { s.proxy } else { 0 };
                    s.used_fraction_after(memory, job.resource.disk_mb.into())
                };
                let (ca, cb) = (feasible[a], feasible[b]);
                Some(if used(cb) < used(ca) { cb } else { ca })
            }
        }
    }
}

impl Chooser for TwoChoices<'_> {
    fn choose_lrp(&mut self, round: &Round<'_>, job: &Job, feasible: &[u32]) -> Option<u32> {
        self.pick(round, job, feasible, true)
    }

    fn choose_task(&mut self, round: &Round<'_>, job: &Job, feasible: &[u32]) -> Option<u32> {
        self.pick(round, job, feasible, false)
    }
}

impl PlacementStrategy for PowerOfTwoStrategy {
    fn name(&self) -> &str {
        "power-of-two"
    }

    fn place(&mut self, cells: &[Arc<CellState>], batch: &AuctionBatch) -> AuctionResults {
        run_round(cells, batch, &self.options, &mut TwoChoices(&mut self.rng))
    }
}
