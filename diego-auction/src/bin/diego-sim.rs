//! `diego-sim`: run placement scenarios against strategies side by side and write JSON,
//! CSV and SVG results.
//!
//! ```text
//! diego-sim --list
//! diego-sim headline one-app-burst --strategies diego,spread,kubernetes --out sim-results
//! diego-sim ./my-scenario.toml --seed 7
//! ```

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use diego_auction::sim::{self, Scenario};
use indicatif::{ProgressBar, ProgressStyle};

/// Run placement scenarios against strategies and write JSON, CSV and SVG results.
#[derive(Parser, Debug)]
#[command(name = "diego-sim", version)]
struct Args {
    /// Scenarios: names of shipped ones (see --list) or paths to .toml/.json files.
    scenarios: Vec<String>,
    /// Strategies to compare, comma-separated (see --list).
    #[arg(
        long,
        short,
        value_delimiter = ',',
        default_value = "diego,first-fit,best-fit,spread,power-of-two,random,kubernetes"
    )]
    strategies: Vec<String>,
    /// Directory for the results.
    #[arg(long, short, default_value = "sim-results")]
    out: PathBuf,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// List the shipped scenarios and the strategies, then exit.
    #[arg(long)]
    list: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
}

fn load(name: &str) -> anyhow::Result<Scenario> {
    if let Some(s) = Scenario::builtin(name) {
        return Ok(s);
    }
    let path = PathBuf::from(name);
    if !path.exists() {
        bail!(
            "no scenario {name:?}: not a shipped one ({}) nor a file",
            sim::builtin_names().collect::<Vec<_>>().join(", ")
        );
    }
    Scenario::from_file(&path).with_context(|| format!("reading {name}"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.list {
        println!("scenarios:");
        for n in sim::builtin_names() {
            let s = Scenario::builtin(n).context("a shipped scenario does not parse")?;
            println!("  {n:<20} {}", s.description);
        }
        println!("strategies: {}", sim::STRATEGY_NAMES.join(", "));
        return Ok(());
    }
    if args.scenarios.is_empty() {
        bail!("name at least one scenario (or --list)");
    }
    let names: Vec<&str> = args.strategies.iter().map(String::as_str).collect();
    for name in &args.scenarios {
        let mut scenario = load(name)?;
        if let Some(seed) = args.seed {
            scenario.seed = seed;
        }
        let mut strategies = sim::strategies(&names, scenario.seed)?;
        let rounds = sim::build_batches(&scenario).len() as u64;
        let bar = if args.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(rounds * strategies.len() as u64)
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix:>20} [{bar:40}] {pos}/{len} rounds {msg}")?
                .progress_chars("=> "),
        );
        bar.set_prefix(scenario.name.clone());
        let report = sim::run(&scenario, &mut strategies, &mut |p| {
            bar.set_message(p.strategy.to_owned());
            bar.inc(1);
        });
        bar.finish_and_clear();
        println!(
            "{:<20} {:<14} {:>8} {:>7} {:>9} {:>9} {:>10} {:>12}",
            scenario.name,
            "strategy",
            "placed",
            "failed",
            "per cell",
            "same app",
            "µs/place",
            "placements/s"
        );
        for s in &report.strategies {
            println!(
                "{:<20} {:<14} {:>8} {:>7} {:>9} {:>9} {:>10.2} {:>12.0}",
                "",
                s.strategy,
                s.placed,
                s.failed + s.refused,
                format!("{}-{}", s.min_per_cell, s.max_per_cell),
                s.max_same_app_per_cell,
                s.strategy_us_per_placement,
                s.placements_per_sec
            );
        }
        let files = sim::write_all(&report, &args.out)?;
        println!("wrote {} files to {}", files.len(), args.out.display());
    }
    Ok(())
}
