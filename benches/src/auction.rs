//! `headline auction`: the figures of issue 6 on the scenario fixed in
//! `../shared/benchmarks/auction-headline.md`.
//!
//! - `auction_placements_per_sec`: 10,000 instances onto 1,000 in-process simulated cells
//!   in rounds of 500 with `DiegoStrategy`; each round timed whole (cell state fetch,
//!   placement, `perform` on the winners). Median of 5 runs.
//! - `auction_preplaced_cost_ratio`: strategy time per placement with 100 instances
//!   already on every cell ÷ with empty cells (states fetched outside the timer).
//! - `auction_cells_cost_ratio`: strategy time per placement at 5,000 cells ÷ at 100.
//! - `auction_<strategy>_placements_per_sec` for every other strategy, and distribution
//!   quality per strategy: `auction_<strategy>_max_per_cell`, `_min_per_cell`,
//!   `_max_same_app_per_cell`.

use diego_auction::sim::{self, Preplaced, Scenario, StrategyReport};

use crate::print_figure;

const RUNS: usize = 5;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn headline() -> anyhow::Result<Scenario> {
    Scenario::builtin("headline").ok_or_else(|| anyhow::anyhow!("headline scenario missing"))
}

/// The headline scenario at `cells` cells and as many apps (10 instances each).
fn at_cells(cells: usize) -> anyhow::Result<Scenario> {
    let mut s = headline()?;
    s.name = format!("headline-{cells}");
    s.cells[0].count = cells;
    s.apps[0].count = cells;
    Ok(s)
}

fn with_preplaced() -> anyhow::Result<Scenario> {
    let mut s = headline()?;
    s.name = "headline-preplaced".into();
    s.preplaced.push(Preplaced {
        per_cell: 100,
        jitter: 0,
        from_cell: 0,
        to_cell: None,
        memory_mb: 64,
        disk_mb: 1,
        process: None,
    });
    Ok(s)
}

fn run_once(scenario: &Scenario, strategy: &str) -> anyhow::Result<StrategyReport> {
    let mut s = sim::strategy(strategy, scenario.seed)
        .ok_or_else(|| anyhow::anyhow!("unknown strategy {strategy}"))?;
    let report = sim::run_strategy(scenario, s.as_mut(), &mut |_| {});
    anyhow::ensure!(
        report.failed == 0 && report.refused == 0,
        "{strategy} on {}: {} failed, {} refused",
        scenario.name,
        report.failed,
        report.refused
    );
    Ok(report)
}

/// Median of `RUNS` runs of the strategy-only time per placement (µs).
fn strategy_us(scenario: &Scenario, strategy: &str) -> anyhow::Result<f64> {
    let mut v = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        v.push(run_once(scenario, strategy)?.strategy_us_per_placement);
    }
    Ok(median(v))
}

/// Prints the auction headline figures.
pub fn run() -> anyhow::Result<()> {
    let scenario = headline()?;

    // Whole rounds with Diego's strategy.
    let mut rates = Vec::with_capacity(RUNS);
    let mut diego = None;
    for _ in 0..RUNS {
        let r = run_once(&scenario, "diego")?;
        rates.push(r.placements_per_sec);
        diego = Some(r);
    }
    print_figure("auction_placements_per_sec", median(rates), "placements/s");

    let empty = strategy_us(&scenario, "diego")?;
    let preplaced = strategy_us(&with_preplaced()?, "diego")?;
    print_figure("auction_preplaced_cost_ratio", preplaced / empty, "x");

    let small = strategy_us(&at_cells(100)?, "diego")?;
    let large = strategy_us(&at_cells(5000)?, "diego")?;
    print_figure("auction_cells_cost_ratio", large / small, "x");

    let mut reports = Vec::new();
    if let Some(d) = diego {
        reports.push(d);
    }
    for name in sim::STRATEGY_NAMES.iter().filter(|n| **n != "diego") {
        let mut rates = Vec::with_capacity(3);
        let mut last = None;
        for _ in 0..3 {
            let r = run_once(&scenario, name)?;
            rates.push(r.placements_per_sec);
            last = Some(r);
        }
        let key = name.replace('-', "_");
        print_figure(
            &format!("auction_{key}_placements_per_sec"),
            median(rates),
            "placements/s",
        );
        if let Some(r) = last {
            reports.push(r);
        }
    }
    for r in &reports {
        let key = r.strategy.replace('-', "_");
        print_figure(
            &format!("auction_{key}_max_per_cell"),
            r.max_per_cell as f64,
            "instances",
        );
        print_figure(
            &format!("auction_{key}_min_per_cell"),
            r.min_per_cell as f64,
            "instances",
        );
        print_figure(
            &format!("auction_{key}_max_same_app_per_cell"),
            r.max_same_app_per_cell as f64,
            "instances",
        );
    }
    Ok(())
}
