//! The simulator: shipped scenarios parse and run, results are written as JSON, CSV and
//! SVG, simulated cells refuse what does not fit.
#![cfg(feature = "sim")]

use diego_auction::sim::{self, Scenario, SimulatedCell};
use diego_auction::{AuctionBatch, CellWork};

#[test]
fn shipped_scenarios_parse_and_match_their_files() {
    let names: Vec<&str> = sim::builtin_names().collect();
    assert!(names.len() >= 7);
    for n in names {
        let s = Scenario::builtin(n).unwrap_or_else(|| panic!("{n} does not parse"));
        assert_eq!(s.name, n);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(format!("{n}.toml"));
        assert_eq!(Scenario::from_file(&path).unwrap(), s);
    }
}

#[test]
fn diego_passes_the_shipped_experiments() {
    let run = |name: &str| {
        let s = Scenario::builtin(name).unwrap();
        let mut st = sim::strategies(&["diego"], s.seed).unwrap();
        sim::run(&s, &mut st, &mut |_| {}).strategies.remove(0)
    };
    let small = run("small-cold-start");
    assert_eq!((small.min_per_cell, small.max_per_cell), (4, 4));

    let burst = run("one-app-burst");
    assert_eq!(burst.placed, 400);
    assert!(
        burst.max_same_app_per_cell <= 5,
        "{}",
        burst.max_same_app_per_cell
    );

    let zones = run("zone-balance");
    assert_eq!(zones.per_zone["Z0"], 20);
    assert_eq!(zones.per_zone["Z1"], 20);

    let large = run("large-cold-start");
    assert_eq!(large.failed + large.refused, 0);
    let mean = large.placed as f64 / 100.0;
    assert!((large.max_per_cell as f64 - mean).abs() <= mean * 0.1);
    assert!((large.min_per_cell as f64 - mean).abs() <= mean * 0.1);

    let c = run("constrained");
    assert_eq!(
        c.failures["found no compatible cell for required rootfs"],
        5
    );
    assert_eq!(c.failures["insufficient resources: memory"], 3);
    assert_eq!(c.refused, 0);
}

#[test]
fn results_are_written_as_json_csv_and_svg() {
    let s = Scenario::builtin("small-cold-start").unwrap();
    let mut st = sim::strategies(&["diego", "first-fit", "kubernetes"], 3).unwrap();
    let mut rounds = 0;
    let report = sim::run(&s, &mut st, &mut |p| {
        rounds += 1;
        assert!(p.round <= p.rounds);
    });
    assert_eq!(rounds, 3);
    let dir = std::env::temp_dir().join(format!("diego-sim-test-{}", std::process::id()));
    let files = sim::write_all(&report, &dir).unwrap();
    assert_eq!(files.len(), 8);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("small-cold-start.json")).unwrap())
            .unwrap();
    assert_eq!(json["strategies"][1]["strategy"], "first-fit");
    assert_eq!(json["strategies"][1]["max_per_cell"], 40);
    let cells = std::fs::read_to_string(dir.join("small-cold-start-cells.csv")).unwrap();
    assert_eq!(cells.lines().count(), 1 + 3 * 10);
    let summary = std::fs::read_to_string(dir.join("small-cold-start-summary.csv")).unwrap();
    assert!(summary
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("small-cold-start,diego,1,40,0,0,4,4,1,"));
    let svg = std::fs::read_to_string(dir.join("small-cold-start-instances-per-cell.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("kubernetes"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_scenarios_and_strategies_are_errors() {
    let e = Scenario::from_toml("name = \"x\"\ncells = []\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid scenario x: at least one cell is needed"
    );
    assert!(Scenario::from_toml("nonsense = 1").is_err());
    let e = sim::strategies(&["diego", "nope"], 0).err().unwrap();
    assert!(e.to_string().contains("unknown strategy"));
    let json = r#"{"name": "j", "cells": [{"count": 2, "memory_mb": 10, "disk_mb": 10, "containers": 5}],
        "apps": [{"count": 1, "instances": 5, "memory_mb": 4}]}"#;
    let s = Scenario::from_json(json).unwrap();
    let mut st = sim::strategies(&["diego"], 0).unwrap();
    let r = sim::run(&s, &mut st, &mut |_| {});
    assert_eq!(r.strategies[0].placed, 4);
    assert_eq!(
        r.strategies[0].failures["insufficient resources: memory"],
        1
    );
}

#[test]
fn simulated_cells_refuse_what_does_not_fit() {
    let s = Scenario::from_toml(
        "name = \"c\"\n[[cells]]\ncount = 1\nmemory_mb = 100\ndisk_mb = 100\ncontainers = 5\nproxy_memory_mb = 10\n\
         [[apps]]\ncount = 2\ninstances = 1\nmemory_mb = [60, 30]\n",
    )
    .unwrap();
    let mut cells = sim::build_cells(&s);
    let batch: AuctionBatch = sim::build_batches(&s).remove(0);
    let work = CellWork {
        cell: 0,
        lrps: vec![(1, 0), (0, 0)],
        tasks: vec![],
    };
    let refused = cells[0].perform(&batch, &work);
    // Largest first: 60 + 10 proxy fits, then 30 + 10 does not (30 left).
    assert_eq!(refused.lrps, vec![(1, 0)]);
    let state = cells[0].state();
    assert_eq!(state.available_resources.memory_mb, 30);
    assert_eq!(state.starting_container_count, 1);
    let mut evac = SimulatedCell::new(diego_core::CellState {
        evacuating: true,
        ..(*state).clone()
    });
    assert_eq!(evac.perform(&batch, &work).lrps.len(), 2);
}

/// The `diego-sim` program: a shipped scenario and a scenario file side by side, results
/// written where `--out` says; an unknown scenario is an error naming the shipped ones.
#[test]
fn the_diego_sim_program_runs_scenarios_and_writes_results() {
    let exe = env!("CARGO_BIN_EXE_diego-sim");
    let dir = std::env::temp_dir().join(format!("diego-sim-cli-{}", std::process::id()));
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/zone-balance.toml");
    let out = std::process::Command::new(exe)
        .args(["small-cold-start", file.to_str().unwrap(), "--quiet"])
        .args([
            "--strategies",
            "diego,spread",
            "--out",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["small-cold-start", "zone-balance"] {
        let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(json["strategies"][0]["strategy"], "diego");
        assert_eq!(json["strategies"][1]["strategy"], "spread");
        assert!(dir.join(format!("{name}-summary.csv")).exists());
        assert!(dir.join(format!("{name}-instances-per-cell.svg")).exists());
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let out = std::process::Command::new(exe)
        .args(["no-such-scenario", "--quiet"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no scenario \"no-such-scenario\"") && err.contains("headline"),
        "{err}"
    );
}
