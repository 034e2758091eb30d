//! Running a scenario against strategies: build the cells, submit the work in rounds
//! (fetch every cell's state, ask the strategy, `perform` on the winners), and measure
//! the outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diego_core::{
    ActualLrpKey, CellCapacity, CellState, LrpStartRequest, PlacementConstraint, ProcessGuid,
    Resource, RootfsProviders, TaskStartRequest,
};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::sim::cell::SimulatedCell;
use crate::sim::scenario::{Order, Scenario};
use crate::strategy::PlacementStrategy;
use crate::work::AuctionBatch;

/// The domain of the work the simulator submits (instances placed during the run).
pub const SIM_DOMAIN: &str = "sim";
/// The domain of instances already running before the run.
pub const PREPLACED_DOMAIN: &str = "preplaced";

fn padded(prefix: &str, k: usize, count: usize) -> String {
    let width = count.saturating_sub(1).to_string().len().max(4);
    format!("{prefix}{k:0width$}")
}

/// The scenario's cells, with the instances already running on them.
pub fn build_cells(scenario: &Scenario) -> Vec<SimulatedCell> {
    let total = scenario.cell_count();
    let mut cells = Vec::with_capacity(total);
    let mut n = 0;
    for g in &scenario.cells {
        let cap = CellCapacity {
            memory_mb: g.memory_mb,
            disk_mb: g.disk_mb,
            containers: g.containers,
        };
        let stacks: Vec<&str> = g.stacks.iter().map(String::as_str).collect();
        for _ in 0..g.count {
            let zone = if g.zones.is_empty() {
                String::new()
            } else {
                g.zones[n % g.zones.len()].clone()
            };
            cells.push(SimulatedCell::new(CellState {
                cell_id: padded(&g.id_prefix, n, total).into(),
                zone,
                available_resources: cap,
                total_resources: cap,
                rootfs_providers: RootfsProviders::preloaded_and_docker(&stacks),
                placement_tags: g.placement_tags.clone(),
                optional_placement_tags: g.optional_placement_tags.clone(),
                volume_drivers: g.volume_drivers.clone(),
                proxy_memory_allocation_mb: g.proxy_memory_mb,
                ..Default::default()
            }));
            n += 1;
        }
    }
    let mut rng = SmallRng::seed_from_u64(scenario.seed);
    for p in &scenario.preplaced {
        let to = p.to_cell.unwrap_or(total).min(total);
        let shared = p.process.as_ref().map(ProcessGuid::new);
        let resource = Resource {
            memory_mb: p.memory_mb,
            disk_mb: p.disk_mb,
            max_pids: 0,
        };
        for (c, cell) in cells.iter_mut().enumerate().take(to).skip(p.from_cell) {
            let k = if p.jitter == 0 {
                p.per_cell
            } else {
                rng.random_range(p.per_cell - p.jitter..=p.per_cell + p.jitter)
            };
            let id = cell.state().cell_id.clone();
            for j in 0..k {
                let guid = match &shared {
                    Some(g) => g.clone(),
                    None => ProcessGuid::new(format!("pre-{id}-{j}")),
                };
                let index = if shared.is_some() {
                    (c * k + j) as i32
                } else {
                    0
                };
                cell.preplace(ActualLrpKey::new(guid, index, PREPLACED_DOMAIN), resource);
            }
        }
    }
    cells
}

#[derive(Clone, Copy)]
enum Unit {
    Lrp { app: usize, index: i32 },
    Task { task: usize },
}

/// The scenario's work split into the batches of its rounds.
pub fn build_batches(scenario: &Scenario) -> Vec<AuctionBatch> {
    let mut apps: Vec<LrpStartRequest> = Vec::new();
    for (gi, g) in scenario.apps.iter().enumerate() {
        let prefix = g.name_prefix.clone().unwrap_or_else(|| format!("app{gi}-"));
        for k in 0..g.count {
            apps.push(LrpStartRequest {
                process_guid: padded(&prefix, k, g.count).into(),
                domain: SIM_DOMAIN.into(),
                indices: Vec::new(),
                resource: Resource {
                    memory_mb: g.memory_mb.at(k),
                    disk_mb: g.disk_mb.at(k),
                    max_pids: 0,
                },
                placement_constraint: PlacementConstraint {
                    rootfs: g.rootfs.clone(),
                    placement_tags: g.placement_tags.clone(),
                    volume_drivers: g.volume_drivers.clone(),
                },
            });
        }
    }
    let mut tasks: Vec<TaskStartRequest> = Vec::new();
    for (gi, g) in scenario.tasks.iter().enumerate() {
        let prefix = g
            .name_prefix
            .clone()
            .unwrap_or_else(|| format!("task{gi}-"));
        for k in 0..g.count {
            tasks.push(TaskStartRequest {
                task_guid: padded(&prefix, k, g.count).into(),
                domain: SIM_DOMAIN.into(),
                resource: Resource {
                    memory_mb: g.memory_mb.at(k),
                    disk_mb: g.disk_mb.at(k),
                    max_pids: 0,
                },
                placement_constraint: PlacementConstraint {
                    rootfs: g.rootfs.clone(),
                    ..Default::default()
                },
            });
        }
    }
    let mut units: Vec<Unit> = Vec::with_capacity(scenario.work_count());
    let mut app = 0;
    for g in &scenario.apps {
        for _ in 0..g.count {
            units.extend((0..g.instances as i32).map(|index| Unit::Lrp { app, index }));
            app += 1;
        }
    }
    units.extend((0..tasks.len()).map(|task| Unit::Task { task }));
    if scenario.order == Order::Shuffled {
        units.shuffle(&mut SmallRng::seed_from_u64(scenario.seed ^ 0x5eed));
    }
    units
        .chunks(scenario.batch_size)
        .map(|chunk| {
            let mut batch = AuctionBatch::new();
            let mut slot: BTreeMap<usize, usize> = BTreeMap::new();
            for u in chunk {
                match *u {
                    Unit::Lrp { app, index } => {
                        let s = *slot.entry(app).or_insert_with(|| {
                            let mut r = apps[app].clone();
                            r.indices.clear();
                            batch.lrps.push(r);
                            batch.lrps.len() - 1
                        });
                        batch.lrps[s].indices.push(index);
                    }
                    Unit::Task { task } => batch.tasks.push(tasks[task].clone()),
                }
            }
            batch
        })
        .collect()
}

/// Where a simulation run is.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// The strategy running.
    pub strategy: &'a str,
    /// Rounds done.
    pub round: usize,
    /// Rounds in all.
    pub rounds: usize,
}

/// One cell at the end of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellReport {
    /// The cell.
    pub cell_id: String,
    /// Its zone.
    pub zone: String,
    /// Instances placed on it during the run.
    pub placed: usize,
    /// Instances on it in all (preplaced included).
    pub instances: usize,
    /// Most instances of one app placed on it during the run.
    pub max_same_app: usize,
    /// Memory in use (MB).
    pub memory_used_mb: i64,
    /// Its memory (MB).
    pub memory_total_mb: i64,
}

/// One strategy's outcome on a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategyReport {
    /// The strategy.
    pub strategy: String,
    /// Auction rounds.
    pub rounds: usize,
    /// Pieces of work placed (and taken by their cell).
    pub placed: usize,
    /// Pieces of work the strategy could not place.
    pub failed: usize,
    /// Pieces of work a winning cell refused in `perform`.
    pub refused: usize,
    /// Failures by placement error text.
    pub failures: BTreeMap<String, usize>,
    /// Time in the strategy alone, per piece of work (µs).
    pub strategy_us_per_placement: f64,
    /// Time of whole rounds (fetch, strategy, perform), per piece of work (µs).
    pub round_us_per_placement: f64,
    /// Pieces of work per second over whole rounds.
    pub placements_per_sec: f64,
    /// Fewest instances placed on a cell.
    pub min_per_cell: usize,
    /// Most instances placed on a cell.
    pub max_per_cell: usize,
    /// Most instances of one app placed on one cell.
    pub max_same_app_per_cell: usize,
    /// Instances placed per zone.
    pub per_zone: BTreeMap<String, usize>,
    /// Every cell.
    pub cells: Vec<CellReport>,
}

/// A scenario's outcome for every strategy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulationReport {
    /// The scenario.
    pub scenario: Scenario,
    /// One report per strategy, in the order run.
    pub strategies: Vec<StrategyReport>,
}

/// Runs `scenario` with one strategy.
pub fn run_strategy(
    scenario: &Scenario,
    strategy: &mut dyn PlacementStrategy,
    progress: &mut dyn FnMut(Progress<'_>),
) -> StrategyReport {
    let mut cells = build_cells(scenario);
    let batches = build_batches(scenario);
    let name = strategy.name().to_owned();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let (mut placed, mut failed, mut refused) = (0usize, 0usize, 0usize);
    let (mut in_strategy, mut in_rounds) = (Duration::ZERO, Duration::ZERO);
    let mut states: Vec<Arc<CellState>> = Vec::with_capacity(cells.len());
    for (round, batch) in batches.iter().enumerate() {
        let start = Instant::now();
        states.clear();
        states.extend(cells.iter().map(SimulatedCell::state));
        let t = Instant::now();
        let results = strategy.place(&states, batch);
        in_strategy += t.elapsed();
        // Let go of the fetched snapshots so cells update their state in place.
        states.clear();
        for work in results.work_by_cell() {
            let no = cells[work.cell].perform(batch, &work);
            refused += no.lrps.len() + no.tasks.len();
        }
        in_rounds += start.elapsed();
        placed += results.placed();
        failed += results.failed();
        for e in results
            .failed_lrps
            .iter()
            .map(|f| &f.error)
            .chain(results.failed_tasks.iter().map(|f| &f.error))
        {
            *failures.entry(e.to_string()).or_default() += 1;
        }
        if scenario.settle_between_rounds {
            cells.iter_mut().for_each(SimulatedCell::settle);
        }
        progress(Progress {
            strategy: &name,
            round: round + 1,
            rounds: batches.len(),
        });
    }
    placed -= refused;
    let work = (placed + failed + refused).max(1) as f64;
    let cell_reports: Vec<CellReport> = cells.iter().map(|c| cell_report(&c.state())).collect();
    let mut per_zone = BTreeMap::new();
    for c in &cell_reports {
        *per_zone.entry(c.zone.clone()).or_default() += c.placed;
    }
    StrategyReport {
        strategy: name,
        rounds: batches.len(),
        placed,
        failed,
        refused,
        failures,
        strategy_us_per_placement: in_strategy.as_secs_f64() * 1e6 / work,
        round_us_per_placement: in_rounds.as_secs_f64() * 1e6 / work,
        placements_per_sec: work / in_rounds.as_secs_f64().max(1e-9),
        min_per_cell: cell_reports.iter().map(|c| c.placed).min().unwrap_or(0),
        max_per_cell: cell_reports.iter().map(|c| c.placed).max().unwrap_or(0),
        max_same_app_per_cell: cell_reports
            .iter()
            .map(|c| c.max_same_app)
            .max()
            .unwrap_or(0),
        per_zone,
        cells: cell_reports,
    }
}

fn cell_report(s: &CellState) -> CellReport {
    let mut per_app: BTreeMap<&str, usize> = BTreeMap::new();
    for l in s.lrps.iter().filter(|l| l.key.domain == SIM_DOMAIN) {
        *per_app.entry(l.key.process_guid.as_str()).or_default() += 1;
    }
    let placed_tasks = s.tasks.iter().filter(|t| t.domain == SIM_DOMAIN).count();
    CellReport {
        cell_id: s.cell_id.to_string(),
        zone: s.zone.clone(),
        placed: per_app.values().sum::<usize>() + placed_tasks,
        instances: s.lrps.len(),
        max_same_app: per_app.values().copied().max().unwrap_or(0),
        memory_used_mb: i64::from(s.total_resources.memory_mb)
            - i64::from(s.available_resources.memory_mb),
        memory_total_mb: s.total_resources.memory_mb.into(),
    }
}

/// Runs `scenario` with every strategy, one after the other, each on fresh cells.
pub fn run(
    scenario: &Scenario,
    strategies: &mut [Box<dyn PlacementStrategy>],
    progress: &mut dyn FnMut(Progress<'_>),
) -> SimulationReport {
    SimulationReport {
        scenario: scenario.clone(),
        strategies: strategies
            .iter_mut()
            .map(|s| run_strategy(scenario, s.as_mut(), progress))
            .collect(),
    }
}
