//! `headline GROUP`: measures one group of the issues' headline figures and prints
//! `name value unit` per figure (or `# skipped NAME: why`).
//!
//! Build with `cargo build --release --workspace --bins`, then run
//! `target/release/headline models`. `../shared/tools/targets` runs every group and holds
//! each figure against its target.

use std::process::ExitCode;

type Group = (&'static str, &'static str, fn() -> anyhow::Result<()>);

/// Every known group: name, what it measures, and its runner.
const GROUPS: &[Group] = &[
    (
        "models",
        "JSON round trip of a full DesiredLRP",
        diego_benches::models::run,
    ),
    (
        "bbs",
        "claim+start, listing and memory at 250,000 ActualLRPs (MemoryStore)",
        diego_benches::bbs::run,
    ),
    (
        "convergence",
        "one convergence pass over 250,000 ActualLRPs, with and without repairs",
        diego_benches::convergence::run,
    ),
    (
        "e2e",
        "whole clusters: 100,000 fake instances, 200 real ones, a crash and restart",
        diego_benches::e2e::run,
    ),
    (
        "http",
        "BBS HTTP API throughput (desire task, 16 keep-alive clients)",
        diego_benches::http::run,
    ),
    (
        "garden",
        "container throughput of the process, fake and Linux backends (and runc)",
        diego_benches::garden::run,
    ),
    (
        "auction",
        "placement speed and quality of DiegoStrategy and its rivals",
        diego_benches::auction::run,
    ),
    (
        "executor",
        "container throughput and action-step overhead through the executor",
        diego_benches::executor::run,
    ),
    (
        "sql",
        "claim+start of 10,000 ActualLRPs from 16 writers on SQLite and PostgreSQL; BBS failover",
        diego_benches::sql::run,
    ),
    (
        "router",
        "requests/s through the router's HTTP proxy to 3 instances of the demo app; ratio to nginx",
        diego_benches::router::run,
    ),
];

fn usage() -> String {
    let mut s = String::from("usage: headline GROUP...\nknown groups:\n");
    for (name, what, _) in GROUPS {
        s.push_str(&format!("  {name:<12} {what}\n"));
    }
    s
}

fn main() -> ExitCode {
    if let Some(code) = diego_benches::failover::serve_bbs_if_asked() {
        return code;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        eprint!("{}", usage());
        return if args.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let mut chosen = Vec::new();
    for arg in &args {
        match GROUPS.iter().find(|(name, _, _)| name == arg) {
            Some(group) => chosen.push(group),
            None => {
                eprint!("headline: unknown group `{arg}`\n{}", usage());
                return ExitCode::from(2);
            }
        }
    }
    if chosen.len() > 1 {
        // Each group in a fresh process, so figures such as resident memory are the
        // group's own.
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => {
                eprintln!("headline: cannot find its own executable: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut ok = true;
        for (name, _, _) in chosen {
            match std::process::Command::new(&exe).arg(name).status() {
                Ok(status) if status.success() => {}
                Ok(status) => {
                    eprintln!("headline: group {name} failed ({status})");
                    ok = false;
                }
                Err(e) => {
                    eprintln!("headline: cannot run group {name}: {e}");
                    ok = false;
                }
            }
        }
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    for (name, _, run) in chosen {
        if let Err(e) = run() {
            eprintln!("headline: group {name} failed: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
