//! The scan-based auction round shared by the strategies that look at every compatible
//! cell for every piece of work (the rivals, and Diego's own scoring done Go's way).
//!
//! It applies what every strategy shares — batch order, de-duplication, the filters,
//! capacity checks, the in-flight limit, the error texts, and the bookkeeping of what
//! was placed — and asks a [`Chooser`] to pick one cell among the feasible ones.

use std::sync::Arc;

use diego_core::{CellCapacity, CellState, PlacementConstraint, Resource};
use rustc_hash::FxHashMap;

use super::PlacementOptions;
use crate::error::{Error, Shortfall};
use crate::filter::{filter_error, filter_reach, signature_id, FilterReach};
use crate::results::{AuctionResults, FailedLrp, FailedTask, LrpPlacement, TaskPlacement};
use crate::work::{ordered_items, AuctionBatch, WorkItem};

/// What a round knows of one cell, kept up to date as work is placed.
#[derive(Clone, Debug)]
pub(crate) struct CellSlot {
    /// Not evacuating: may take work.
    pub live: bool,
    /// Zone number (see [`Round::zones`]).
    pub zone: u32,
    /// Filter signature number.
    pub sig: u32,
    /// Position among the live cells of its zone (Diego's zone-normalised index).
    pub zone_index: u32,
    /// Free memory (MB).
    pub avail_memory: i64,
    /// Free disk (MB).
    pub avail_disk: i64,
    /// Free containers.
    pub avail_containers: i64,
    /// Total resources.
    pub total: CellCapacity,
    /// Proxy memory per LRP container (MB).
    pub proxy: i64,
    /// Containers starting.
    pub starting: i64,
    /// Tasks on the cell.
    pub tasks: u32,
    /// LRP instances on the cell.
    pub lrps: u32,
}

impl CellSlot {
    fn new(state: &CellState, zone: u32, sig: u32, zone_index: u32) -> Self {
        CellSlot {
            live: !state.evacuating,
            zone,
            sig,
            zone_index,
            avail_memory: state.available_resources.memory_mb.into(),
            avail_disk: state.available_resources.disk_mb.into(),
            avail_containers: state.available_resources.containers.into(),
            total: state.total_resources,
            proxy: state.proxy_memory_allocation_mb.into(),
            starting: state.starting_container_count.into(),
            tasks: state.tasks.len() as u32,
            lrps: state.lrps.len() as u32,
        }
    }

    /// The resources this cell lacks for `memory`/`disk` and one container.
    pub fn shortfall(&self, memory: i64, disk: i64) -> Shortfall {
        Shortfall {
            containers: self.avail_containers < 1,
            disk: self.avail_disk < disk,
            memory: self.avail_memory < memory,
        }
    }

    /// Mean fraction of memory, disk and containers used once `memory`/`disk` and one
    /// container are taken (Kubernetes' "allocated" ratio over the three resources).
    pub fn used_fraction_after(&self, memory: i64, disk: i64) -> f64 {
        let f = |avail: i64, need: i64, total: i32| {
            if total <= 0 {
                0.0
            } else {
                1.0 - (avail - need) as f64 / f64::from(total)
            }
        };
        (f(self.avail_memory, memory, self.total.memory_mb)
            + f(self.avail_disk, disk, self.total.disk_mb)
            + f(self.avail_containers, 1, self.total.containers))
            / 3.0
    }
}

/// The piece of work a [`Chooser`] is asked about.
pub(crate) struct Job {
    /// Its resources.
    pub resource: Resource,
}

/// Picks one cell for a piece of work among the feasible ones.
pub(crate) trait Chooser {
    /// Picks a cell for an LRP instance; `feasible` (cell positions, ascending) pass the
    /// filters and have room. `None` leaves the instance unplaced.
    fn choose_lrp(&mut self, round: &Round<'_>, job: &Job, feasible: &[u32]) -> Option<u32>;

    /// Picks a cell for a Task, likewise.
    fn choose_task(&mut self, round: &Round<'_>, job: &Job, feasible: &[u32]) -> Option<u32>;
}

/// One auction round over every cell.
pub(crate) struct Round<'a> {
    /// What the round knows of each cell (same positions).
    pub slots: Vec<CellSlot>,
    /// Zone names by number.
    pub zones: Vec<&'a str>,
    sigs: Vec<&'a CellState>,
    pids: FxHashMap<&'a str, u32>,
    holders: Vec<Vec<(u32, u32)>>,
    /// Instances of the current LRP's process per cell (valid inside `choose_lrp`).
    pub same: Vec<u32>,
    /// Instances of the current LRP's process per zone (valid inside `choose_lrp`).
    pub zone_counts: Vec<u32>,
    in_flight: i64,
}

impl<'a> Round<'a> {
    fn new(cells: &'a [Arc<CellState>], batch: &'a AuctionBatch) -> Self {
        let mut zones: Vec<&'a str> = Vec::new();
        let mut zone_sizes: Vec<u32> = Vec::new();
        let mut sigs: Vec<&'a CellState> = Vec::new();
        let mut slots = Vec::with_capacity(cells.len());
        for c in cells {
            let c: &'a CellState = c;
            let zone = match zones.iter().position(|z| *z == c.zone) {
                Some(z) => z,
                None => {
                    zones.push(&c.zone);
                    zone_sizes.push(0);
                    zones.len() - 1
                }
            };
            let sig = signature_id(&mut sigs, c, || c);
            let zone_index = zone_sizes[zone];
            if !c.evacuating {
                zone_sizes[zone] += 1;
            }
            slots.push(CellSlot::new(c, zone as u32, sig, zone_index));
        }
        let mut pids: FxHashMap<&'a str, u32> = FxHashMap::default();
        for r in &batch.lrps {
            let n = pids.len() as u32;
            pids.entry(r.process_guid.as_str()).or_insert(n);
        }
        let mut holders = vec![Vec::new(); pids.len()];
        let mut in_flight = 0;
        for (i, c) in cells.iter().enumerate() {
            if c.evacuating {
                continue;
            }
            in_flight += i64::from(c.starting_container_count);
            for l in &c.lrps {
                if let Some(&pid) = pids.get(l.key.process_guid.as_str()) {
                    add_holder(&mut holders[pid as usize], i as u32);
                }
            }
        }
        Round {
            zones,
            sigs,
            pids,
            holders,
            same: vec![0; cells.len()],
            zone_counts: Vec::new(),
            in_flight,
            slots,
        }
    }

    fn reaches(&self, constraint: &PlacementConstraint) -> Vec<FilterReach> {
        self.sigs
            .iter()
            .map(|s| filter_reach(s, constraint))
            .collect()
    }

    /// Feasible cells for the work, or its placement error.
    fn feasible(
        &self,
        reaches: &[FilterReach],
        constraint: &PlacementConstraint,
        resource: &Resource,
        lrp: bool,
        out: &mut Vec<u32>,
    ) -> Result<(), Error> {
        out.clear();
        let mut furthest = FilterReach::Rootfs;
        let mut shortfall = Shortfall::ALL;
        let mut compatible = false;
        for (i, s) in self.slots.iter().enumerate() {
            if !s.live {
                continue;
            }
            let reach = reaches[s.sig as usize];
            if reach != FilterReach::Pass {
                furthest = furthest.max(reach);
                continue;
            }
            compatible = true;
            let memory = i64::from(resource.memory_mb) + if lrp { s.proxy } else { 0 };
            let short = s.shortfall(memory, resource.disk_mb.into());
            if short.is_empty() {
                out.push(i as u32);
            } else {
                shortfall = shortfall.intersect(short);
            }
        }
        if !compatible {
            return Err(filter_error(furthest, constraint).unwrap_or(Error::NoCompatibleRootfs));
        }
        if out.is_empty() {
            return Err(Error::InsufficientResources(shortfall));
        }
        Ok(())
    }

    fn reserve(&mut self, cell: u32, resource: &Resource, lrp: bool, opts: &PlacementOptions) {
        let s = &mut self.slots[cell as usize];
        let proxy = if lrp && opts.reserve_proxy_memory {
            s.proxy
        } else {
            0
        };
        s.avail_memory -= i64::from(resource.memory_mb) + proxy;
        s.avail_disk -= i64::from(resource.disk_mb);
        s.avail_containers -= 1;
        s.starting += 1;
        if lrp {
            s.lrps += 1;
        } else {
            s.tasks += 1;
        }
        self.in_flight += 1;
    }
}

fn add_holder(holders: &mut Vec<(u32, u32)>, cell: u32) {
    match holders.iter_mut().find(|h| h.0 == cell) {
        Some(h) => h.1 += 1,
        None => holders.push((cell, 1)),
    }
}

/// Runs one round: every piece of work of `batch`, in Diego's order, through the
/// filters, the capacity checks and `chooser`.
pub(crate) fn run_round(
    cells: &[Arc<CellState>],
    batch: &AuctionBatch,
    opts: &PlacementOptions,
    chooser: &mut impl Chooser,
) -> AuctionResults {
    let items = ordered_items(batch, opts.index0_after_tasks_quirk);
    let mut results = AuctionResults::default();
    if cells.iter().all(|c| c.evacuating) {
        fail_all(&items, Error::CellCommunication, &mut results);
        return results;
    }
    let mut round = Round::new(cells, batch);
    let mut lrp_reaches: Vec<Option<Vec<FilterReach>>> = vec![None; batch.lrps.len()];
    let mut feasible = Vec::with_capacity(cells.len());
    let limit = i64::from(opts.starting_container_count_maximum);
    for item in items {
        let over_limit = limit > 0 && round.in_flight >= limit;
        match item {
            WorkItem::Lrp { request, index } => {
                if over_limit {
                    results.failed_lrps.push(FailedLrp {
                        request,
                        index,
                        error: Error::InFlightLimit,
                    });
                    continue;
                }
                let r = &batch.lrps[request];
                let reaches = lrp_reaches[request]
                    .get_or_insert_with(|| round.reaches(&r.placement_constraint));
                if let Err(error) = round.feasible(
                    reaches,
                    &r.placement_constraint,
                    &r.resource,
                    true,
                    &mut feasible,
                ) {
                    results.failed_lrps.push(FailedLrp {
                        request,
                        index,
                        error,
                    });
                    continue;
                }
                let pid = round.pids.get(r.process_guid.as_str()).copied();
                round.zone_counts.clear();
                round.zone_counts.resize(round.zones.len(), 0);
                if let Some(pid) = pid {
                    for &(c, n) in &round.holders[pid as usize] {
                        round.same[c as usize] = n;
                        let z = round.slots[c as usize].zone as usize;
                        round.zone_counts[z] += n;
                    }
                }
                let job = Job {
                    resource: r.resource,
                };
                let choice = chooser.choose_lrp(&round, &job, &feasible);
                if let Some(pid) = pid {
                    for &(c, _) in &round.holders[pid as usize] {
                        round.same[c as usize] = 0;
                    }
                }
                match choice {
                    Some(cell) => {
                        round.reserve(cell, &r.resource, true, opts);
                        if let Some(pid) = pid {
                            add_holder(&mut round.holders[pid as usize], cell);
                        }
                        results.lrps.push(LrpPlacement {
                            request,
                            index,
                            cell: cell as usize,
                            cell_id: cells[cell as usize].cell_id.clone(),
                        });
                    }
                    None => results.failed_lrps.push(FailedLrp {
                        request,
                        index,
                        error: Error::InsufficientResources(Shortfall::default()),
                    }),
                }
            }
            WorkItem::Task { request } => {
                if over_limit {
                    results.failed_tasks.push(FailedTask {
                        request,
                        error: Error::InFlightLimit,
                    });
                    continue;
                }
                let t = &batch.tasks[request];
                let reaches = round.reaches(&t.placement_constraint);
                if let Err(error) = round.feasible(
                    &reaches,
                    &t.placement_constraint,
                    &t.resource,
                    false,
                    &mut feasible,
                ) {
                    results.failed_tasks.push(FailedTask { request, error });
                    continue;
                }
                let job = Job {
                    resource: t.resource,
                };
                match chooser.choose_task(&round, &job, &feasible) {
                    Some(cell) => {
                        round.reserve(cell, &t.resource, false, opts);
                        results.tasks.push(TaskPlacement {
                            request,
                            cell: cell as usize,
                            cell_id: cells[cell as usize].cell_id.clone(),
                        });
                    }
                    None => results.failed_tasks.push(FailedTask {
                        request,
                        error: Error::InsufficientResources(Shortfall::default()),
                    }),
                }
            }
        }
    }
    results
}

/// Fails every item with `error`.
pub(crate) fn fail_all(items: &[WorkItem], error: Error, results: &mut AuctionResults) {
    for item in items {
        match *item {
            WorkItem::Lrp { request, index } => results.failed_lrps.push(FailedLrp {
                request,
                index,
                error: error.clone(),
            }),
            WorkItem::Task { request } => results.failed_tasks.push(FailedTask {
                request,
                error: error.clone(),
            }),
        }
    }
}
