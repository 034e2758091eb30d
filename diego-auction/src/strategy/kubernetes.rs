//! Kubernetes-style filter and score over a sample of cells.
//!
//! As kube-scheduler does: filtering stops once enough feasible cells are found
//! (`percentage_of_nodes_to_score`, adaptive by default: 50% − 1% per 125 cells, at least
//! 5% and at least 100 cells), the search starts where the previous one stopped, and the
//! sampled cells are scored by three plugins of the default profile, each 0..=100, higher
//! better: `LeastAllocated` (free memory and disk after placement), `BalancedAllocation`
//! (memory and disk used in the same proportion) and selector spread (fewer instances of
//! the same app on the cell and in its zone; zone weighted 2/3). Ties are broken at random
//! (seeded), like kube-scheduler's `selectHost`.

use std::sync::Arc;

use diego_core::CellState;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::round::{run_round, Chooser, Job, Round};
use super::{PlacementOptions, PlacementStrategy};
use crate::results::AuctionResults;
use crate::work::AuctionBatch;
use diego_core::setter;

/// Parameters of [`KubernetesStrategy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct KubernetesConfig {
    /// Percentage of cells to find feasible before scoring (0 = kube-scheduler's adaptive
    /// default).
    pub percentage_of_nodes_to_score: u32,
    /// Below this many cells every cell is considered (kube-scheduler: 100).
    pub min_feasible_nodes_to_find: u32,
    /// Seed of the tie-breaking generator.
    pub seed: u64,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        KubernetesConfig {
            percentage_of_nodes_to_score: 0,
            min_feasible_nodes_to_find: 100,
            seed: 0,
        }
    }
}

impl KubernetesConfig {
    setter!(with_percentage_of_nodes_to_score => percentage_of_nodes_to_score: u32);
    setter!(with_min_feasible_nodes_to_find => min_feasible_nodes_to_find: u32);
    setter!(with_seed => seed: u64);

    /// How many feasible cells to find among `cells` before scoring.
    pub fn feasible_to_find(&self, cells: usize) -> usize {
        let min = self.min_feasible_nodes_to_find as usize;
        if cells < min || self.percentage_of_nodes_to_score >= 100 {
            return cells;
        }
        let pct = match self.percentage_of_nodes_to_score {
            0 => 50usize.saturating_sub(cells / 125).max(5),
            p => p as usize,
        };
        (cells * pct / 100).max(min)
    }
}

/// Kubernetes-style filter + score over a sample of cells.
#[derive(Clone, Debug)]
pub struct KubernetesStrategy {
    options: PlacementOptions,
    config: KubernetesConfig,
    rng: SmallRng,
    next_start: u32,
}

impl KubernetesStrategy {
    /// The strategy with these parameters.
    pub fn new(options: PlacementOptions, config: KubernetesConfig) -> Self {
        KubernetesStrategy {
            options,
            config,
            rng: SmallRng::seed_from_u64(config.seed),
            next_start: 0,
        }
    }
}

struct Sampler<'s> {
    config: &'s KubernetesConfig,
    rng: &'s mut SmallRng,
    next_start: &'s mut u32,
    sample: Vec<u32>,
}

impl Sampler<'_> {
    fn pick(&mut self, round: &Round<'_>, job: &Job, feasible: &[u32], lrp: bool) -> Option<u32> {
        if feasible.is_empty() {
            return None;
        }
        let want = self
            .config
            .feasible_to_find(round.slots.len())
            .min(feasible.len());
        let start = feasible.partition_point(|&c| c < *self.next_start);
        self.sample.clear();
        self.sample.extend(
            feasible[start..]
                .iter()
                .chain(&feasible[..start])
                .take(want)
                .copied(),
        );
        if let Some(&last) = self.sample.last() {
            *self.next_start = (last + 1) % round.slots.len().max(1) as u32;
        }
        let max_node = self
            .sample
            .iter()
            .map(|&c| round.same[c as usize])
            .max()
            .unwrap_or(0);
        let max_zone = self
            .sample
            .iter()
            .map(|&c| {
                round
                    .zone_counts
                    .get(round.slots[c as usize].zone as usize)
                    .copied()
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0);
        let mut best: Option<f64> = None;
        let mut ties: Vec<u32> = Vec::new();
        for &c in &self.sample {
            let s = &round.slots[c as usize];
            let memory = i64::from(job.resource.memory_mb) + if lrp { s.proxy } else { 0 };
            let frac = |avail: i64, need: i64, total: i32| {
                if total <= 0 {
                    0.0
                } else {
                    (1.0 - (avail - need) as f64 / f64::from(total)).clamp(0.0, 1.0)
                }
            };
            let mem = frac(s.avail_memory, memory, s.total.memory_mb);
            let disk = frac(s.avail_disk, job.resource.disk_mb.into(), s.total.disk_mb);
            let least = ((1.0 - mem) + (1.0 - disk)) / 2.0 * 100.0;
            let balanced = (1.0 - (mem - disk).abs() / 2.0) * 100.0;
            let spread = if lrp {
                let node = if max_node == 0 {
                    100.0
                } else {
                    100.0 * f64::from(max_node - round.same[c as usize]) / f64::from(max_node)
                };
                let zc = round.zone_counts.get(s.zone as usize).copied().unwrap_or(0);
                let zone = if max_zone == 0 {
                    100.0
                } else {
                    100.0 * f64::from(max_zone - zc) / f64::from(max_zone)
                };
                node / 3.0 + zone * 2.0 / 3.0
            } else {
                100.0
            };
            let score = least + balanced + spread;
            match best {
                Some(b) if score < b => {}
                Some(b) if score == b => ties.push(c),
                _ => {
                    best = Some(score);
                    ties.clear();
                    ties.push(c);
                }
            }
        }
        (!ties.is_empty()).then(|| ties[self.rng.random_range(0..ties.len())])
    }
}

impl Chooser for Sampler<'_> {
    fn choose_lrp(&mut self, round: &Round<'_>, job: &Job, feasible: &[u32]) -> Option<u32> {
        self.pick(round, job, feasible, true)
    }

    fn choose_task(&mut self, round: &Round<'_>, job: &Job, feasible: &[u32]) -> Option<u32> {
        self.pick(round, job, feasible, false)
    }
}

impl PlacementStrategy for KubernetesStrategy {
    fn name(&self) -> &str {
        "kubernetes"
    }

    fn place(&mut self, cells: &[Arc<CellState>], batch: &AuctionBatch) -> AuctionResults {
        let mut sampler = Sampler {
            config: &self.config,
            rng: &mut self.rng,
            next_start: &mut self.next_start,
            sample: Vec::new(),
        };
        run_round(cells, batch, &self.options, &mut sampler)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feasible_to_find_follows_kube_scheduler() {
        let c = KubernetesConfig::default();
        assert_eq!(c.feasible_to_find(50), 50);
        assert_eq!(c.feasible_to_find(1000), 420); // 50 - 8 = 42%
        assert_eq!(c.feasible_to_find(5000), 500); // 50 - 40 = 10%
        assert_eq!(c.feasible_to_find(100_000), 5000); // floor 5%
        let fixed = KubernetesConfig {
            percentage_of_nodes_to_score: 10,
            ..c
        };
        assert_eq!(fixed.feasible_to_find(500), 100); // at least 100
    }
}
