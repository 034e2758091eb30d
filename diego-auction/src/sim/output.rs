//! Writing a simulation's results: JSON (everything), CSV (one row per strategy, one row
//! per strategy and cell) and SVG charts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::sim::chart;
use crate::sim::error::SimError;
use crate::sim::run::SimulationReport;

fn write(path: &Path, text: &str) -> Result<(), SimError> {
    std::fs::write(path, text).map_err(|source| SimError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The report as pretty JSON.
pub fn to_json(report: &SimulationReport) -> String {
    // Serialising plain data with string keys cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_default()
}

/// One row per strategy: the summary figures.
pub fn summary_csv(report: &SimulationReport) -> String {
    let mut out = String::from(
        "scenario,strategy,rounds,placed,failed,refused,min_per_cell,max_per_cell,\
         max_same_app_per_cell,strategy_us_per_placement,round_us_per_placement,placements_per_sec\n",
    );
    for s in &report.strategies {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{:.3},{:.3},{:.0}",
            report.scenario.name,
            s.strategy,
            s.rounds,
            s.placed,
            s.failed,
            s.refused,
            s.min_per_cell,
            s.max_per_cell,
            s.max_same_app_per_cell,
            s.strategy_us_per_placement,
            s.round_us_per_placement,
            s.placements_per_sec
        );
    }
    out
}

/// One row per strategy and cell.
pub fn cells_csv(report: &SimulationReport) -> String {
    let mut out = String::from(
        "scenario,strategy,cell_id,zone,placed,instances,max_same_app,memory_used_mb,memory_total_mb\n",
    );
    for s in &report.strategies {
        for c in &s.cells {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{}",
                report.scenario.name,
                s.strategy,
                c.cell_id,
                c.zone,
                c.placed,
                c.instances,
                c.max_same_app,
                c.memory_used_mb,
                c.memory_total_mb
            );
        }
    }
    out
}

/// Writes `<name>.json`, `<name>-summary.csv`, `<name>-cells.csv` and the charts
/// (`<name>-<chart>.svg`) into `dir`; returns the files written.
pub fn write_all(report: &SimulationReport, dir: &Path) -> Result<Vec<PathBuf>, SimError> {
    std::fs::create_dir_all(dir).map_err(|source| SimError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let name = &report.scenario.name;
    let mut files = Vec::new();
    for (file, text) in [
        (format!("{name}.json"), to_json(report)),
        (format!("{name}-summary.csv"), summary_csv(report)),
        (format!("{name}-cells.csv"), cells_csv(report)),
    ] {
        let path = dir.join(file);
        write(&path, &text)?;
        files.push(path);
    }
    files.extend(chart::write_charts(report, dir)?);
    Ok(files)
}
