//! Diego's auction: the scoring of Cloud Foundry's auctioneer, kept in an incremental
//! index so one placement costs about the same whatever the number of cells and of
//! instances already running.
//!
//! For each LRP instance, Diego looks first at the zones holding the fewest instances
//! of the process and picks, among their compatible cells with room, the one with the
//! lowest score (see [`score`](self) below); Tasks are scored over every compatible cell
//! with a penalty per Task already on the cell and no zone balancing. The Go scheduler
//! scores every cell for every placement and rescans every cell's instances; this
//! strategy keeps cells ordered by the part of the score that does not depend on the
//! work and keeps per-process counts up to date, and always picks a cell whose full
//! Diego score is the minimum (checked against [`DiegoStrategy::plain_scan`]).
//!
//! Score (lower wins): mean fraction of memory, disk and containers used after placement
//! (memory including the cell's proxy memory) + `starting_container_weight` × starting
//! containers + 1000 × instances of the same process on the cell +
//! `bin_pack_first_fit_weight` × the cell's index among the cells of its zone (in the
//! order the cells are given).

mod index;
mod scan;
pub(crate) mod score;

use std::sync::Arc;

use diego_core::CellState;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::results::{AuctionResults, FailedLrp, FailedTask, LrpPlacement, TaskPlacement};
use crate::strategy::round::{fail_all, run_round};
use crate::strategy::{PlacementOptions, PlacementStrategy};
use crate::work::{ordered_items, AuctionBatch, WorkItem};
use diego_core::setter;

pub use score::LOCALITY_OFFSET;

use index::{Compatible, DiegoIndex};
use scan::DiegoScan;

/// How Diego chooses among cells with the same score.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TieBreak {
    /// The cell given first wins (deterministic; the default).
    #[default]
    FirstCell,
    /// A random one of them wins, from the strategy's seeded generator — Diego's
    /// behaviour, whose scan order over zones and cells is random.
    Random,
}

/// Diego's auction parameters (defaults: Diego's).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DiegoConfig {
    /// Score per container starting on the cell (Diego: 0.25).
    pub starting_container_weight: f64,
    /// Score per position of the cell in its zone; above 0 it packs cells in order
    /// (Diego: 0).
    pub bin_pack_first_fit_weight: f64,
    /// Rules shared with every strategy (in-flight limit, Go quirks).
    pub options: PlacementOptions,
    /// Choice among equal scores.
    pub tie_break: TieBreak,
    /// Seed of the generator used for random tie-breaks.
    pub seed: u64,
}

impl Default for DiegoConfig {
    fn default() -> Self {
        DiegoConfig {
            starting_container_weight: 0.25,
            bin_pack_first_fit_weight: 0.0,
            options: PlacementOptions::default(),
            tie_break: TieBreak::FirstCell,
            seed: 0,
        }
    }
}

impl DiegoConfig {
    setter!(with_starting_container_weight => starting_container_weight: f64);
    setter!(with_bin_pack_first_fit_weight => bin_pack_first_fit_weight: f64);
    setter!(with_options => options: PlacementOptions);
    setter!(with_tie_break => tie_break: TieBreak);
    setter!(with_seed => seed: u64);
}

#[derive(Debug)]
enum Mode {
    Indexed(Box<DiegoIndex>),
    Scan,
}

/// Diego's auction as a [`PlacementStrategy`].
///
/// ```
/// use std::sync::Arc;
/// use diego_auction::{AuctionBatch, DiegoStrategy, PlacementStrategy};
/// use diego_core::{CellCapacity, CellState, LrpStartRequest, PlacementConstraint, Resource,
///     RootfsProviders};
///
/// let cell = |id: &str, zone: &str| Arc::new(CellState {
///     cell_id: id.into(),
///     zone: zone.into(),
///     available_resources: CellCapacity { memory_mb: 1024, disk_mb: 1024, containers: 10 },
///     total_resources: CellCapacity { memory_mb: 1024, disk_mb: 1024, containers: 10 },
///     rootfs_providers: RootfsProviders::preloaded_and_docker(&["cflinuxfs4"]),
///     ..Default::default()
/// });
/// let cells = vec![cell("a", "z1"), cell("b", "z2")];
/// let batch = AuctionBatch::new().with_lrp(LrpStartRequest {
///     process_guid: "web".into(),
///     domain: "apps".into(),
///     indices: vec![0, 1],
///     resource: Resource { memory_mb: 256, disk_mb: 256, max_pids: 0 },
///     placement_constraint: PlacementConstraint {
///         rootfs: "preloaded:cflinuxfs4".into(),
///         ..Default::default()
///     },
/// });
/// let results = DiegoStrategy::default().place(&cells, &batch);
/// // One instance per zone.
/// let mut winners: Vec<_> = results.lrps.iter().map(|p| p.cell_id.to_string()).collect();
/// winners.sort();
/// assert_eq!(winners, ["a", "b"]);
/// ```
#[derive(Debug)]
pub struct DiegoStrategy {
    config: DiegoConfig,
    rng: SmallRng,
    mode: Mode,
}

impl Default for DiegoStrategy {
    fn default() -> Self {
        DiegoStrategy::new(DiegoConfig::default())
    }
}

impl DiegoStrategy {
    /// Diego's auction with its incremental index.
    pub fn new(config: DiegoConfig) -> Self {
        DiegoStrategy {
            rng: SmallRng::seed_from_u64(config.seed),
            config,
            mode: Mode::Indexed(Box::default()),
        }
    }

    /// Diego's auction done Go's way: every compatible cell scored for every piece of
    /// work, cell states read afresh each round. Same decisions (equal scores) as
    /// [`DiegoStrategy::new`], at Go's cost.
    pub fn plain_scan(config: DiegoConfig) -> Self {
        DiegoStrategy {
            rng: SmallRng::seed_from_u64(config.seed),
            config,
            mode: Mode::Scan,
        }
    }

    /// The parameters.
    pub fn config(&self) -> &DiegoConfig {
        &self.config
    }
}

impl PlacementStrategy for DiegoStrategy {
    fn name(&self) -> &str {
        match self.mode {
            Mode::Indexed(_) => "diego",
            Mode::Scan => "diego-scan",
        }
    }

    fn place(&mut self, cells: &[Arc<CellState>], batch: &AuctionBatch) -> AuctionResults {
        match &mut self.mode {
            Mode::Scan => {
                let mut chooser = DiegoScan {
                    config: &self.config,
                    rng: &mut self.rng,
                    ties: Vec::new(),
                };
                run_round(cells, batch, &self.config.options, &mut chooser)
            }
            Mode::Indexed(index) => place_indexed(index, &self.config, &mut self.rng, cells, batch),
        }
    }
}

/// Diego's score (lower wins) of one instance of `request` on `cells[cell]`, exactly as
/// [`DiegoStrategy`] computes it: the cell's proxy memory counts, every instance of the
/// process listed on the cell counts, and the zone-normalised index is the cell's
/// position among the non-evacuating cells of its zone. Says nothing of whether the
/// instance fits or passes the filters.
pub fn lrp_score(
    cells: &[Arc<CellState>],
    cell: usize,
    request: &diego_core::LrpStartRequest,
    config: &DiegoConfig,
) -> f64 {
    let c = &cells[cell];
    let zone_index = cells[..cell]
        .iter()
        .filter(|o| !o.evacuating && o.zone == c.zone)
        .count() as u32;
    let same = c
        .lrps
        .iter()
        .filter(|l| l.key.process_guid == request.process_guid)
        .count() as u32;
    let a = &c.available_resources;
    let base = score::lrp_base(
        score::resource_base(
            a.memory_mb.into(),
            a.disk_mb.into(),
            a.containers.into(),
            &c.total_resources,
        ),
        c.starting_container_count.into(),
        zone_index,
        config.starting_container_weight,
        config.bin_pack_first_fit_weight,
    );
    let wt = score::work_term(
        i64::from(request.resource.memory_mb) + i64::from(c.proxy_memory_allocation_mb),
        request.resource.disk_mb.into(),
        &c.total_resources,
    );
    score::lrp_score(base, wt, same)
}

fn place_indexed(
    index: &mut DiegoIndex,
    config: &DiegoConfig,
    rng: &mut SmallRng,
    cells: &[Arc<CellState>],
    batch: &AuctionBatch,
) -> AuctionResults {
    let items = ordered_items(batch, config.options.index0_after_tasks_quirk);
    let mut results = AuctionResults::default();
    index.sync(cells, config);
    if !index.any_live() {
        fail_all(&items, Error::CellCommunication, &mut results);
        return results;
    }
    debug_assert_eq!(index.len(), cells.len());
    let limit = i64::from(config.options.starting_container_count_maximum);
    let mut compat: Vec<Option<Result<Compatible, Error>>> = Vec::new();
    compat.resize_with(batch.lrps.len(), || None);
    // Per request, the id its process is counted under (found once per round).
    let mut pids: Vec<Option<u32>> = vec![None; batch.lrps.len()];
    for item in items {
        let over_limit = limit > 0 && index.in_flight() >= limit;
        match item {
            WorkItem::Lrp { request, index: i } => {
                let r = &batch.lrps[request];
                let outcome = if over_limit {
                    Err(Error::InFlightLimit)
                } else {
                    match compat[request]
                        .get_or_insert_with(|| index.compatible(&r.placement_constraint))
                    {
                        Ok(c) => {
                            let pid = *pids[request]
                                .get_or_insert_with(|| index.track(&r.process_guid, cells));
                            index.choose_lrp(r, pid, c, config, rng)
                        }
                        Err(e) => Err(e.clone()),
                    }
                };
                match outcome {
                    Ok(cell) => results.lrps.push(LrpPlacement {
                        request,
                        index: i,
                        cell: cell as usize,
                        cell_id: index.cell_id(cell),
                    }),
                    Err(error) => results.failed_lrps.push(FailedLrp {
                        request,
                        index: i,
                        error,
                    }),
                }
            }
            WorkItem::Task { request } => {
                let t = &batch.tasks[request];
                let outcome = if over_limit {
                    Err(Error::InFlightLimit)
                } else {
                    index
                        .compatible(&t.placement_constraint)
                        .and_then(|c| index.choose_task(&t.resource, &c, config, rng))
                };
                match outcome {
                    Ok(cell) => results.tasks.push(TaskPlacement {
                        request,
                        cell: cell as usize,
                        cell_id: index.cell_id(cell),
                    }),
                    Err(error) => results.failed_tasks.push(FailedTask { request, error }),
                }
            }
        }
    }
    results
}
