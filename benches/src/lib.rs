//! Shared helpers of the benchmarks and of the `headline` binary.
//!
//! Every headline group prints one line per figure, `name value unit`, or
//! `# skipped NAME: why` when something it needs is absent. `../shared/tools/targets`
//! reads exactly this format.

/// Prints one figure line: `name value unit`.
///
/// Values at or above 100 are printed without decimals, smaller ones with up to three.
pub fn print_figure(name: &str, value: f64, unit: &str) {
    if value.abs() >= 100.0 {
        println!("{name} {value:.0} {unit}");
    } else {
        println!("{name} {value:.3} {unit}");
    }
}

/// Prints that a figure was skipped and why (`# skipped NAME: why`).
pub fn print_skipped(name: &str, why: &str) {
    println!("# skipped {name}: {why}");
}

pub mod auction;
pub mod bbs;
pub mod convergence;
pub mod e2e;
pub mod executor;
pub mod failover;
pub mod garden;
pub mod http;
pub mod models;
pub mod router;
pub mod sql;
