//! Shared helpers of the benchmarks and of the `headline` binary.
//!
//! Every headline group prints one line per figure, `name value unit`, or
//! `# skipped NAME: why` when something it needs is absent. `../shared/tools/targets`
//! reads exactly this format.

use std::io::Write;

/// Prints one figure line: `name value unit`.
///
/// Values at or above 100 are printed without decimals, smaller ones with up to three.
pub fn print_figure(name: &str, value: f64, unit: &str) {
    if value.abs() >= 100.0 {
        line(format_args!("{name} {value:.0} {unit}"));
    } else {
        line(format_args!("{name} {value:.3} {unit}"));
    }
}

/// Prints that a figure was skipped and why (`# skipped NAME: why`).
pub fn print_skipped(name: &str, why: &str) {
    line(format_args!("# skipped {name}: {why}"));
}

/// Writes one line to standard output. A reader that went away (`headline ... | head`)
/// is no reason to panic: the line is dropped, and the group still runs to its end and
/// cleans up what it started.
fn line(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stdout().lock(), "{args}");
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
