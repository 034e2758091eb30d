//! Diego's scoring done the way Go's auctionrunner does it: every compatible cell is
//! scored for every piece of work. The reference the indexed strategy is checked
//! against, and a baseline in the simulator.

use rand::rngs::SmallRng;
use rand::Rng;

use super::score::{lrp_base, lrp_score, resource_base, task_base, task_score, work_term};
use super::{DiegoConfig, TieBreak};
use crate::strategy::round::{CellSlot, Chooser, Job, Round};

/// Chooses as Diego's scheduler does, scanning every feasible cell.
pub(crate) struct DiegoScan<'c> {
    pub config: &'c DiegoConfig,
    pub rng: &'c mut SmallRng,
    pub ties: Vec<u32>,
}

impl DiegoScan<'_> {
    fn lrp_score_of(&self, s: &CellSlot, job: &Job, same: u32) -> f64 {
        let base = lrp_base(
            resource_base(s.avail_memory, s.avail_disk, s.avail_containers, &s.total),
            s.starting,
            s.zone_index,
            self.config.starting_container_weight,
            self.config.bin_pack_first_fit_weight,
        );
        let wt = work_term(
            i64::from(job.resource.memory_mb) + s.proxy,
            job.resource.disk_mb.into(),
            &s.total,
        );
        lrp_score(base, wt, same)
    }

    fn pick(&mut self, candidates: impl Iterator<Item = (u32, f64)>) -> Option<u32> {
        let mut best: Option<(f64, u32)> = None;
        self.ties.clear();
        for (cell, score) in candidates {
            match best {
                Some((b, _)) if score > b => {}
                Some((b, _)) if score == b => self.ties.push(cell),
                _ => {
                    best = Some((score, cell));
                    self.ties.clear();
                    self.ties.push(cell);
                }
            }
        }
        let (_, first) = best?;
        match self.config.tie_break {
            TieBreak::FirstCell => Some(first),
            TieBreak::Random => Some(self.ties[self.rng.random_range(0..self.ties.len())]),
        }
    }
}

impl Chooser for DiegoScan<'_> {
    fn choose_lrp(&mut self, round: &Round<'_>, job: &Job, feasible: &[u32]) -> Option<u32> {
        // Zones with fewer instances of the process first: only the least-loaded zones
        // that have a feasible cell compete.
        let min_zone = feasible
            .iter()
            .map(|&c| round.zone_counts[round.slots[c as usize].zone as usize])
            .min()?;
        let scored: Vec<(u32, f64)> = feasible
            .iter()
            .filter(|&&c| round.zone_counts[round.slots[c as usize].zone as usize] == min_zone)
            .map(|&c| {
                let s = &round.slots[c as usize];
                (c, self.lrp_score_of(s, job, round.same[c as usize]))
            })
            .collect();
        self.pick(scored.into_iter())
    }

    fn choose_task(&mut self, round: &Round<'_>, job: &Job, feasible: &[u32]) -> Option<u32> {
        let w = self.config.starting_container_weight;
        let scored: Vec<(u32, f64)> = feasible
            .iter()
            .map(|&c| {
                let s = &round.slots[c as usize];
                let base = task_base(
                    resource_base(s.avail_memory, s.avail_disk, s.avail_containers, &s.total),
                    s.starting,
                    w,
                );
                let wt = work_term(
                    job.resource.memory_mb.into(),
                    job.resource.disk_mb.into(),
                    &s.total,
                );
                (c, task_score(base, wt, s.tasks))
            })
            .collect();
        self.pick(scored.into_iter())
    }
}
