//! Test harness: cells as shared snapshots, and a `perform` that applies placements the
//! way Diego's simulation reps do.
#![allow(dead_code)]

use std::sync::Arc;

use diego_auction::{AuctionBatch, AuctionResults, PlacementStrategy};
use diego_core::{
    ActualLrpKey, CellCapacity, CellState, LrpStartRequest, LrpSummary, PlacementConstraint,
    Resource, RootfsProviders, TaskStartRequest, TaskSummary,
};

pub const ROOTFS: &str = "preloaded:linux";

pub fn cell(id: &str, zone: &str, memory_mb: i32, disk_mb: i32, containers: i32) -> CellState {
    let cap = CellCapacity {
        memory_mb,
        disk_mb,
        containers,
    };
    CellState {
        cell_id: id.into(),
        zone: zone.into(),
        available_resources: cap,
        total_resources: cap,
        rootfs_providers: RootfsProviders::preloaded_and_docker(&["linux"]),
        ..Default::default()
    }
}

/// Diego's simulation cells: 100 MB, 100 MB disk, 100 containers, zones Z0/Z1 alternating.
pub fn diego_sim_cells(n: usize) -> Cluster {
    Cluster {
        cells: (0..n)
            .map(|i| {
                Arc::new(cell(
                    &format!("REP-{}", i + 1),
                    &format!("Z{}", i % 2),
                    100,
                    100,
                    100,
                ))
            })
            .collect(),
    }
}

pub fn lrp(guid: &str, indices: Vec<i32>, memory_mb: i32) -> LrpStartRequest {
    LrpStartRequest {
        process_guid: guid.into(),
        domain: "auction".into(),
        indices,
        resource: Resource {
            memory_mb,
            disk_mb: 1,
            max_pids: 0,
        },
        placement_constraint: PlacementConstraint {
            rootfs: ROOTFS.into(),
            ..Default::default()
        },
    }
}

pub fn task(guid: &str, memory_mb: i32) -> TaskStartRequest {
    TaskStartRequest {
        task_guid: guid.into(),
        domain: "auction".into(),
        resource: Resource {
            memory_mb,
            disk_mb: 1,
            max_pids: 0,
        },
        placement_constraint: PlacementConstraint {
            rootfs: ROOTFS.into(),
            ..Default::default()
        },
    }
}

pub struct Cluster {
    pub cells: Vec<Arc<CellState>>,
}

impl Cluster {
    pub fn from_cells(cells: Vec<CellState>) -> Self {
        Cluster {
            cells: cells.into_iter().map(Arc::new).collect(),
        }
    }

    /// Puts an instance on a cell that is already running (not starting).
    pub fn preplace(&mut self, cell: usize, guid: &str, index: i32, memory_mb: i32) {
        let c = Arc::make_mut(&mut self.cells[cell]);
        c.lrps.push(LrpSummary {
            key: ActualLrpKey::new(guid, index, "domain"),
            resource: Resource {
                memory_mb,
                disk_mb: 1,
                max_pids: 0,
            },
        });
        c.available_resources.memory_mb -= memory_mb;
        c.available_resources.disk_mb -= 1;
        c.available_resources.containers -= 1;
    }

    /// Applies placements: resources taken, one more starting container each.
    pub fn apply(&mut self, batch: &AuctionBatch, results: &AuctionResults) {
        for p in &results.lrps {
            let r = &batch.lrps[p.request];
            let c = Arc::make_mut(&mut self.cells[p.cell]);
            c.lrps.push(LrpSummary {
                key: ActualLrpKey::new(r.process_guid.clone(), p.index, r.domain.clone()),
                resource: r.resource,
            });
            c.available_resources.memory_mb -= r.resource.memory_mb + c.proxy_memory_allocation_mb;
            c.available_resources.disk_mb -= r.resource.disk_mb;
            c.available_resources.containers -= 1;
            c.starting_container_count += 1;
        }
        for p in &results.tasks {
            let t = &batch.tasks[p.request];
            let c = Arc::make_mut(&mut self.cells[p.cell]);
            c.tasks.push(TaskSummary {
                task_guid: t.task_guid.clone(),
                domain: t.domain.clone(),
                resource: t.resource,
            });
            c.available_resources.memory_mb -= t.resource.memory_mb;
            c.available_resources.disk_mb -= t.resource.disk_mb;
            c.available_resources.containers -= 1;
            c.starting_container_count += 1;
        }
    }

    pub fn run(&mut self, s: &mut dyn PlacementStrategy, batch: &AuctionBatch) -> AuctionResults {
        let r = s.place(&self.cells, batch);
        self.apply(batch, &r);
        r
    }

    /// Instances placed by `results` per cell.
    pub fn placed_per_cell(&self, results: &AuctionResults) -> Vec<usize> {
        let mut v = vec![0; self.cells.len()];
        for p in &results.lrps {
            v[p.cell] += 1;
        }
        v
    }

    /// Instances of `guid` per cell (all of them, preplaced included).
    pub fn of_process(&self, guid: &str) -> Vec<usize> {
        self.cells
            .iter()
            .map(|c| c.lrps.iter().filter(|l| l.key.process_guid == guid).count())
            .collect()
    }
}

/// Asserts every value is within `tolerance` of the mean.
pub fn assert_within(values: &[usize], tolerance: f64, what: &str) {
    let mean = values.iter().sum::<usize>() as f64 / values.len() as f64;
    for (i, &v) in values.iter().enumerate() {
        assert!(
            (v as f64 - mean).abs() <= tolerance,
            "{what}: cell {i} has {v}, mean {mean:.2}, tolerance {tolerance}: {values:?}"
        );
    }
}
