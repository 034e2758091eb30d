//! In-process simulated cells: a cell state and a `perform` that takes work the way a
//! rep does, with no containers behind it.
//!
//! Fetching the state is cheap (the cell hands out its current snapshot, an
//! `Arc<CellState>`); `perform` makes a new snapshot when it takes work, appending the
//! new instances to the cell's LRP list.

use std::sync::Arc;

use diego_core::models::cell::{LrpFingerprints, LrpLineage};
use diego_core::{ActualLrpKey, CellState, LrpSummary, Resource, TaskSummary};

use crate::results::CellWork;
use crate::work::AuctionBatch;

/// A simulated cell.
#[derive(Clone, Debug)]
pub struct SimulatedCell {
    state: Arc<CellState>,
}

impl SimulatedCell {
    /// A cell in this state. Its LRP list only ever grows (instances are appended), which
    /// its snapshots promise through one [`LrpLineage`] so a strategy keeping state across
    /// rounds need not re-read the instances it already knows; it keeps the list's
    /// [`LrpFingerprints`] as it appends.
    pub fn new(mut state: CellState) -> Self {
        state.lrp_lineage = LrpLineage::new();
        state.lrp_fingerprints = LrpFingerprints::of_lrps(&state.lrps);
        SimulatedCell {
            state: Arc::new(state),
        }
    }

    /// The cell's current state (what the auction fetches).
    pub fn state(&self) -> Arc<CellState> {
        self.state.clone()
    }

    /// Puts a running (not starting) instance on the cell, taking its resources.
    pub fn preplace(&mut self, key: ActualLrpKey, resource: Resource) {
        let s = Arc::make_mut(&mut self.state);
        s.available_resources.memory_mb -= resource.memory_mb;
        s.available_resources.disk_mb -= resource.disk_mb;
        s.available_resources.containers -= 1;
        s.push_lrp(LrpSummary { key, resource });
    }

    /// Every starting container is now running.
    pub fn settle(&mut self) {
        if self.state.starting_container_count != 0 {
            Arc::make_mut(&mut self.state).starting_container_count = 0;
        }
    }

    /// Takes the work the auction gave this cell, as a rep does: nothing while
    /// evacuating; LRPs largest memory first, each needing its memory plus the proxy
    /// memory, its disk, a container and a supported rootfs; then Tasks likewise
    /// (without proxy memory). Returns what it did not take.
    pub fn perform(&mut self, batch: &AuctionBatch, work: &CellWork) -> CellWork {
        let mut refused = CellWork {
            cell: work.cell,
            ..CellWork::default()
        };
        if self.state.evacuating {
            refused.lrps = work.lrps.clone();
            refused.tasks = work.tasks.clone();
            return refused;
        }
        let mut lrps = work.lrps.clone();
        lrps.sort_by(|a, b| {
            batch.lrps[b.0]
                .resource
                .memory_mb
                .cmp(&batch.lrps[a.0].resource.memory_mb)
        });
        let s = Arc::make_mut(&mut self.state);
        let proxy = s.proxy_memory_allocation_mb;
        for (request, index) in lrps {
            let r = &batch.lrps[request];
            let memory = r.resource.memory_mb + proxy;
            if !fits(
                s,
                memory,
                r.resource.disk_mb,
                &r.placement_constraint.rootfs,
            ) {
                refused.lrps.push((request, index));
                continue;
            }
            take(s, memory, r.resource.disk_mb);
            s.push_lrp(LrpSummary {
                key: ActualLrpKey {
                    process_guid: r.process_guid.clone(),
                    index,
                    domain: r.domain.clone(),
                },
                resource: r.resource,
            });
        }
        for &request in &work.tasks {
            let t = &batch.tasks[request];
            let r = &t.resource;
            if !fits(s, r.memory_mb, r.disk_mb, &t.placement_constraint.rootfs) {
                refused.tasks.push(request);
                continue;
            }
            take(s, r.memory_mb, r.disk_mb);
            s.tasks.push(TaskSummary {
                task_guid: t.task_guid.clone(),
                domain: t.domain.clone(),
                resource: t.resource,
            });
        }
        refused
    }
}

fn fits(s: &CellState, memory: i32, disk: i32, rootfs: &str) -> bool {
    let a = &s.available_resources;
    a.memory_mb >= memory
        && a.disk_mb >= disk
        && a.containers >= 1
        && s.rootfs_providers.supports(rootfs)
}

fn take(s: &mut CellState, memory: i32, disk: i32) {
    s.available_resources.memory_mb -= memory;
    s.available_resources.disk_mb -= disk;
    s.available_resources.containers -= 1;
    s.starting_container_count += 1;
}
