//! SVG charts of a simulation (plotters): instances per cell, same-app spread, memory
//! utilisation per cell, placement failures, and time per placement, one series or bar
//! per strategy.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::sim::error::SimError;
use crate::sim::run::SimulationReport;

const SIZE: (u32, u32) = (1000, 560);

fn colour(i: usize) -> RGBColor {
    const P: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    P[i % P.len()]
}

fn chart_error(path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> SimError {
    SimError::Chart {
        path: path.display().to_string(),
        source: Box::new(e),
    }
}

/// One line per strategy of a per-cell value.
fn per_cell_lines(
    report: &SimulationReport,
    path: &Path,
    title: &str,
    y_label: &str,
    value: impl Fn(&crate::sim::run::CellReport) -> f64,
) -> Result<(), SimError> {
    let cells = report
        .strategies
        .first()
        .map_or(0, |s| s.cells.len())
        .max(1);
    let y_max = report
        .strategies
        .iter()
        .flat_map(|s| s.cells.iter().map(&value))
        .fold(0.0f64, f64::max)
        .max(1.0)
        * 1.1;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| chart_error(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..cells as f64, 0f64..y_max)
        .map_err(|e| chart_error(path, e))?;
    chart
        .configure_mesh()
        .x_desc("cell")
        .y_desc(y_label)
        .draw()
        .map_err(|e| chart_error(path, e))?;
    for (i, s) in report.strategies.iter().enumerate() {
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(
                s.cells
                    .iter()
                    .enumerate()
                    .map(|(x, cell)| (x as f64, value(cell))),
                c.stroke_width(2),
            ))
            .map_err(|e| chart_error(path, e))?
            .label(s.strategy.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| chart_error(path, e))?;
    root.present().map_err(|e| chart_error(path, e))
}

/// One bar per strategy.
fn bars(
    report: &SimulationReport,
    path: &Path,
    title: &str,
    y_label: &str,
    value: impl Fn(&crate::sim::run::StrategyReport) -> f64,
) -> Result<(), SimError> {
    let n = report.strategies.len().max(1);
    let y_max = report
        .strategies
        .iter()
        .map(&value)
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.15;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| chart_error(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n as f64, 0f64..y_max)
        .map_err(|e| chart_error(path, e))?;
    let names: Vec<String> = report
        .strategies
        .iter()
        .map(|s| s.strategy.clone())
        .collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.26 {
                names.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .draw()
        .map_err(|e| chart_error(path, e))?;
    for (i, s) in report.strategies.iter().enumerate() {
        let v = value(s);
        let x = i as f64;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x + 0.15, 0.0), (x + 0.85, v)],
                colour(i).filled(),
            )))
            .map_err(|e| chart_error(path, e))?;
    }
    root.present().map_err(|e| chart_error(path, e))
}

/// Writes the five charts into `dir`; returns their paths.
pub fn write_charts(report: &SimulationReport, dir: &Path) -> Result<Vec<PathBuf>, SimError> {
    let name = &report.scenario.name;
    let file = |chart: &str| dir.join(format!("{name}-{chart}.svg"));
    let mut files = Vec::new();

    let p = file("instances-per-cell");
    per_cell_lines(report, &p, "Instances placed per cell", "instances", |c| {
        c.placed as f64
    })?;
    files.push(p);

    let p = file("same-app-spread");
    per_cell_lines(
        report,
        &p,
        "Most instances of one app on a cell",
        "instances of one app",
        |c| c.max_same_app as f64,
    )?;
    files.push(p);

    let p = file("memory-utilisation");
    per_cell_lines(report, &p, "Memory used per cell", "% memory used", |c| {
        if c.memory_total_mb > 0 {
            100.0 * c.memory_used_mb as f64 / c.memory_total_mb as f64
        } else {
            0.0
        }
    })?;
    files.push(p);

    let p = file("failures");
    bars(report, &p, "Placement failures", "work not placed", |s| {
        (s.failed + s.refused) as f64
    })?;
    files.push(p);

    let p = file("time-per-placement");
    bars(
        report,
        &p,
        "Time per placement (strategy only)",
        "µs",
        |s| s.strategy_us_per_placement,
    )?;
    files.push(p);
    Ok(files)
}
