//! Criterion benchmarks of placement: one whole headline run (10,000 instances onto
//! 1,000 simulated cells in rounds of 500) per strategy, and Diego's strategy at 100 and
//! 5,000 cells and with 100 instances already on every cell.

// `criterion_group!` generates undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use diego_auction::sim::{self, Preplaced, Scenario};

fn headline() -> Scenario {
    Scenario::builtin("headline").unwrap_or_else(|| panic!("headline scenario missing"))
}

fn run(scenario: &Scenario, strategy: &str) -> usize {
    let mut s = sim::strategy(strategy, scenario.seed)
        .unwrap_or_else(|| panic!("unknown strategy {strategy}"));
    sim::run_strategy(scenario, s.as_mut(), &mut |_| {}).placed
}

fn strategies(c: &mut Criterion) {
    let scenario = headline();
    let mut g = c.benchmark_group("auction_headline");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for name in sim::STRATEGY_NAMES {
        g.bench_function(*name, |b| b.iter(|| black_box(run(&scenario, name))));
    }
    g.finish();
}

fn diego_scaling(c: &mut Criterion) {
    let mut g = c.benchmark_group("auction_diego");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for cells in [100usize, 5000] {
        let mut s = headline();
        s.cells[0].count = cells;
        s.apps[0].count = cells;
        g.bench_function(format!("cells_{cells}"), |b| {
            b.iter(|| black_box(run(&s, "diego")))
        });
    }
    let mut s = headline();
    s.preplaced.push(Preplaced {
        per_cell: 100,
        jitter: 0,
        from_cell: 0,
        to_cell: None,
        memory_mb: 64,
        disk_mb: 1,
        process: None,
    });
    g.bench_function("preplaced_100_per_cell", |b| {
        b.iter(|| black_box(run(&s, "diego")))
    });
    g.finish();
}

criterion_group!(benches, strategies, diego_scaling);
criterion_main!(benches);
