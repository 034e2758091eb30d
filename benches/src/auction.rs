//! `headline auction`: the figures of issue 6 on the scenario fixed in
//! `../shared/benchmarks/auction-headline.md`.
//!
//! - `auction_placements_per_sec`: 10,000 instances onto 1,000 in-process simulated cells
//!   in rounds of 500 with `DiegoStrategy`; each round timed whole (cell state fetch,
//!   placement, `perform` on the winners). Median of 5 runs.
//! - `auction_preplaced_cost_ratio`: strategy time per placement with 100 instances
//!   already on every cell ÷ with empty cells (states fetched outside the timer).
//! - `auction_cells_cost_ratio`: strategy time per placement at 5,000 cells ÷ at 100.
//!
//! The two ratios time each round's `place` call alone. A scenario's runs are identical
//! (same seed, same cells, same batches, a deterministic strategy), so round *k* does
//! the same work in every run; its time is the least over `RATIO_RUNS` runs, and the
//! scenario's time is the sum over its rounds. A round the machine's other work
//! interrupted (a preemption costs milliseconds, more than a whole round) is thereby
//! left out, and the runs of the two scenarios of a ratio alternate, so both see the
//! machine alike: the ratios measure the strategy, not the machine's load.
//! - `auction_<strategy>_placements_per_sec` for every other strategy, and distribution
//!   quality per strategy: `auction_<strategy>_max_per_cell`, `_min_per_cell`,
//!   `_max_same_app_per_cell`.

use std::time::Instant;

use diego_auction::sim::{self, Preplaced, Scenario, StrategyReport};
use diego_auction::PlacementStrategy;

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

/// Runs of each scenario behind a ratio, the two scenarios' runs interleaved.
const RATIO_RUNS: usize = 15;

/// The least strategy-only time of each round of one scenario over the runs so far.
struct RoundMinima<'s> {
    scenario: &'s Scenario,
    strategy: &'s str,
    batches: Vec<diego_auction::AuctionBatch>,
    best: Vec<f64>,
    placed: usize,
}

impl<'s> RoundMinima<'s> {
    fn new(scenario: &'s Scenario, strategy: &'s str) -> Self {
        let batches = sim::build_batches(scenario);
        RoundMinima {
            scenario,
            strategy,
            best: vec![f64::INFINITY; batches.len()],
            batches,
            placed: 0,
        }
    }

    /// One run on fresh cells with a fresh strategy; each round's `place` timed alone.
    fn run(&mut self) -> anyhow::Result<()> {
        let (name, strategy) = (&self.scenario.name, self.strategy);
        let mut s = sim::strategy(strategy, self.scenario.seed)
            .ok_or_else(|| anyhow::anyhow!("unknown strategy {strategy}"))?;
        let mut cells = sim::build_cells(self.scenario);
        let mut states = Vec::with_capacity(cells.len());
        self.placed = 0;
        for (round, batch) in self.batches.iter().enumerate() {
            states.clear();
            states.extend(cells.iter().map(sim::SimulatedCell::state));
            let t = Instant::now();
            let results = s.place(&states, batch);
            let took = t.elapsed().as_secs_f64() * 1e6;
            self.best[round] = self.best[round].min(took);
            states.clear();
            anyhow::ensure!(
                results.failed() == 0,
                "{strategy} on {name}: {} failed",
                results.failed()
            );
            for work in results.work_by_cell() {
                let refused = cells[work.cell].perform(batch, &work);
                anyhow::ensure!(
                    refused.lrps.is_empty() && refused.tasks.is_empty(),
                    "{strategy} on {name}: a cell refused work"
                );
            }
            self.placed += results.placed();
            if self.scenario.settle_between_rounds {
                cells.iter_mut().for_each(sim::SimulatedCell::settle);
            }
        }
        Ok(())
    }

    /// Strategy-only time per placement (µs): the rounds' least times summed, divided
    /// by the instances placed.
    fn us_per_placement(&self) -> f64 {
        self.best.iter().sum::<f64>() / self.placed.max(1) as f64
    }
}

/// `numerator`'s strategy time per placement ÷ `denominator`'s, their runs interleaved
/// so both see the machine in the same state.
fn cost_ratio(numerator: &Scenario, denominator: &Scenario, strategy: &str) -> anyhow::Result<f64> {
    let mut n = RoundMinima::new(numerator, strategy);
    let mut d = RoundMinima::new(denominator, strategy);
    for _ in 0..RATIO_RUNS {
        d.run()?;
        n.run()?;
    }
    Ok(n.us_per_placement() / d.us_per_placement())
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

    let preplaced = cost_ratio(&with_preplaced()?, &scenario, "diego")?;
    print_figure("auction_preplaced_cost_ratio", preplaced, "x");

    let cells = cost_ratio(&at_cells(5000)?, &at_cells(100)?, "diego")?;
    print_figure("auction_cells_cost_ratio", cells, "x");

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
