//! The simulator: run a scenario of in-process simulated cells against one or more
//! strategies, side by side, deterministically by seed, and write the results as JSON,
//! CSV and SVG charts. The `diego-sim` binary is a thin command line over this module.
//!
//! ```
//! use diego_auction::sim::{self, Scenario};
//!
//! let scenario = Scenario::builtin("zone-balance").unwrap();
//! let mut strategies = sim::strategies(&["diego", "spread"], scenario.seed).unwrap();
//! let report = sim::run(&scenario, &mut strategies, &mut |_| {});
//! let diego = &report.strategies[0];
//! assert_eq!(diego.placed, 40);
//! // Zones first: the lone, loaded Z1 cell still gets half.
//! assert_eq!(diego.per_zone["Z0"], 20);
//! assert_eq!(diego.per_zone["Z1"], 20);
//! ```

mod cell;
mod chart;
mod error;
mod output;
mod run;
mod scenario;

pub use cell::SimulatedCell;
pub use chart::write_charts;
pub use error::SimError;
pub use output::{cells_csv, summary_csv, to_json, write_all};
pub use run::{
    build_batches, build_cells, run, run_strategy, CellReport, Progress, SimulationReport,
    StrategyReport, PREPLACED_DOMAIN, SIM_DOMAIN,
};
pub use scenario::{
    builtin_names, AppGroup, CellGroup, Cycle, Order, Preplaced, Scenario, TaskGroup,
};

use crate::{
    BestFitStrategy, DiegoConfig, DiegoStrategy, FirstFitStrategy, KubernetesConfig,
    KubernetesStrategy, PlacementOptions, PlacementStrategy, PowerOfTwoStrategy, RandomStrategy,
    SpreadStrategy,
};

/// Names of the strategies [`strategy`] knows.
pub const STRATEGY_NAMES: &[&str] = &[
    "diego",
    "diego-scan",
    "first-fit",
    "best-fit",
    "spread",
    "power-of-two",
    "random",
    "kubernetes",
];

/// A strategy by name, with default parameters, seeded with `seed`.
pub fn strategy(name: &str, seed: u64) -> Option<Box<dyn PlacementStrategy>> {
    let o = PlacementOptions::default();
    let diego = DiegoConfig {
        seed,
        ..DiegoConfig::default()
    };
    Some(match name {
        "diego" => Box::new(DiegoStrategy::new(diego)),
        "diego-scan" => Box::new(DiegoStrategy::plain_scan(diego)),
        "first-fit" => Box::new(FirstFitStrategy::new(o)),
        "best-fit" => Box::new(BestFitStrategy::new(o)),
        "spread" => Box::new(SpreadStrategy::new(o)),
        "power-of-two" => Box::new(PowerOfTwoStrategy::new(o, seed)),
        "random" => Box::new(RandomStrategy::new(o, seed)),
        "kubernetes" => Box::new(KubernetesStrategy::new(
            o,
            KubernetesConfig {
                seed,
                ..KubernetesConfig::default()
            },
        )),
        _ => return None,
    })
}

/// Strategies by name; an unknown name is an error listing the known ones.
pub fn strategies(names: &[&str], seed: u64) -> Result<Vec<Box<dyn PlacementStrategy>>, SimError> {
    names
        .iter()
        .map(|n| {
            strategy(n, seed).ok_or_else(|| SimError::InvalidScenario {
                scenario: (*n).to_owned(),
                reason: format!("unknown strategy; known: {}", STRATEGY_NAMES.join(", ")),
            })
        })
        .collect()
}
