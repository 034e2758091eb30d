//! Bring your own placement algorithm: `LeastLoaded` implements `PlacementStrategy`
//! (each instance goes to the compatible cell holding the fewest instances of its app,
//! then the one with the most free memory) and runs in the simulator next to Diego's own
//! auction scoring, on one of the shipped scenarios. It prints both summaries and writes
//! the simulator's SVG charts (instances per cell, same-app spread, memory, ...).
//!
//! Run: `cargo run --release --example custom_strategy [SCENARIO] [OUT_DIR]`
//! (default: `large-cold-start`, `custom-strategy-results/`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use diego_auction::error::Shortfall;
use diego_auction::filter::{filter_error, filter_reach, FilterReach};
use diego_auction::sim::{self, Scenario};
use diego_auction::{
    AuctionBatch, AuctionResults, Error, FailedLrp, FailedTask, LrpPlacement, PlacementStrategy,
    TaskPlacement,
};
use diego_core::{CellState, PlacementConstraint, Resource};

/// What a cell has left during one round, and how many instances of each app it holds.
struct Room {
    memory: i64,
    disk: i64,
    containers: i64,
    apps: HashMap<String, u32>,
}

impl Room {
    fn take(&mut self, r: &Resource, app: Option<&str>) {
        self.memory -= i64::from(r.memory_mb);
        self.disk -= i64::from(r.disk_mb);
        self.containers -= 1;
        if let Some(app) = app {
            *self.apps.entry(app.to_owned()).or_insert(0) += 1;
        }
    }
}

/// Fewest instances of the same app first, then the most free memory.
#[derive(Debug, Default)]
struct LeastLoaded;

impl LeastLoaded {
    /// The best cell for one piece of work, or why there is none.
    fn choose(
        cells: &[Arc<CellState>],
        rooms: &[Room],
        constraint: &PlacementConstraint,
        resource: &Resource,
        app: Option<&str>,
    ) -> Result<usize, Error> {
        let (memory, disk) = (i64::from(resource.memory_mb), i64::from(resource.disk_mb));
        let mut furthest = FilterReach::Rootfs;
        let mut short = Shortfall::ALL;
        let mut best: Option<(u32, i64, usize)> = None;
        for (i, (cell, room)) in cells.iter().zip(rooms).enumerate() {
            let reach = filter_reach(cell, constraint);
            furthest = furthest.max(reach);
            if cell.evacuating || reach != FilterReach::Pass {
                continue;
            }
            let missing = Shortfall {
                containers: room.containers < 1,
                disk: room.disk < disk,
                memory: room.memory < memory,
            };
            if !missing.is_empty() {
                short = short.intersect(missing);
                continue;
            }
            let same = app.map_or(0, |a| room.apps.get(a).copied().unwrap_or(0));
            let key = (same, -room.memory, i);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        match best {
            Some((_, _, i)) => Ok(i),
            None => {
                Err(filter_error(furthest, constraint)
                    .unwrap_or(Error::InsufficientResources(short)))
            }
        }
    }
}

impl PlacementStrategy for LeastLoaded {
    fn name(&self) -> &str {
        "least-loaded"
    }

    fn place(&mut self, cells: &[Arc<CellState>], batch: &AuctionBatch) -> AuctionResults {
        let mut rooms: Vec<Room> = cells
            .iter()
            .map(|c| {
                let mut apps = HashMap::new();
                for lrp in &c.lrps {
                    *apps.entry(lrp.key.process_guid.to_string()).or_insert(0) += 1;
                }
                Room {
                    memory: c.available_resources.memory_mb.into(),
                    disk: c.available_resources.disk_mb.into(),
                    containers: c.available_resources.containers.into(),
                    apps,
                }
            })
            .collect();
        let mut out = AuctionResults::default();
        let mut seen = HashSet::new();
        for (request, lrp) in batch.lrps.iter().enumerate() {
            let app = lrp.process_guid.to_string();
            for &index in &lrp.indices {
                if !seen.insert((app.clone(), index)) {
                    continue; // the same instance twice in a batch is placed once
                }
                let c = &lrp.placement_constraint;
                match Self::choose(cells, &rooms, c, &lrp.resource, Some(&app)) {
                    Ok(cell) => {
                        rooms[cell].take(&lrp.resource, Some(&app));
                        out.lrps.push(LrpPlacement {
                            request,
                            index,
                            cell,
                            cell_id: cells[cell].cell_id.clone(),
                        });
                    }
                    Err(error) => out.failed_lrps.push(FailedLrp {
                        request,
                        index,
                        error,
                    }),
                }
            }
        }
        let mut tasks_seen = HashSet::new();
        for (request, task) in batch.tasks.iter().enumerate() {
            if !tasks_seen.insert(task.task_guid.clone()) {
                continue;
            }
            let c = &task.placement_constraint;
            match Self::choose(cells, &rooms, c, &task.resource, None) {
                Ok(cell) => {
                    rooms[cell].take(&task.resource, None);
                    out.tasks.push(TaskPlacement {
                        request,
                        cell,
                        cell_id: cells[cell].cell_id.clone(),
                    });
                }
                Err(error) => out.failed_tasks.push(FailedTask { request, error }),
            }
        }
        out
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "large-cold-start".into());
    let out = std::path::PathBuf::from(
        args.next()
            .unwrap_or_else(|| "custom-strategy-results".into()),
    );
    let scenario = Scenario::builtin(&name).ok_or_else(|| {
        let known: Vec<&str> = sim::builtin_names().collect();
        anyhow::anyhow!("unknown scenario {name:?}; known: {}", known.join(", "))
    })?;

    let mut strategies = sim::strategies(&["diego"], scenario.seed)?;
    strategies.push(Box::new(LeastLoaded));
    let report = sim::run(&scenario, &mut strategies, &mut |_| {});

    println!("scenario {}: {}", scenario.name, scenario.description);
    println!(
        "{:<14} {:>7} {:>7} {:>13} {:>13} {:>16} {:>10}",
        "strategy", "placed", "failed", "min per cell", "max per cell", "max app / cell", "µs each"
    );
    for s in &report.strategies {
        println!(
            "{:<14} {:>7} {:>7} {:>13} {:>13} {:>16} {:>10.2}",
            s.strategy,
            s.placed,
            s.failed,
            s.min_per_cell,
            s.max_per_cell,
            s.max_same_app_per_cell,
            s.strategy_us_per_placement
        );
    }
    std::fs::create_dir_all(&out)?;
    for chart in sim::write_charts(&report, &out)? {
        println!("wrote {}", chart.display());
    }
    Ok(())
}
