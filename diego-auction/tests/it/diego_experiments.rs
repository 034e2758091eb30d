//! Diego's own simulation experiments (cloudfoundry/auction `simulation_test.go`), run
//! against `DiegoStrategy`: cells of 100 MB / 100 MB disk / 100 containers in two zones.

use crate::common;
use common::*;
use diego_auction::{AuctionBatch, DiegoConfig, DiegoStrategy};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

fn unique_apps(prefix: &str, n: usize, memory_mb: i32) -> Vec<diego_core::LrpStartRequest> {
    // Diego's generateUniqueLRPStartAuctions: distinct guids, index i.
    (0..n)
        .map(|i| lrp(&format!("{prefix}-{i}"), vec![i as i32], memory_mb))
        .collect()
}

fn batch_of(lrps: Vec<diego_core::LrpStartRequest>) -> AuctionBatch {
    AuctionBatch {
        lrps,
        tasks: Vec::new(),
    }
}

#[test]
fn small_cold_starts_are_even_within_one() {
    for (apps, cells) in [(8, 4), (40, 10), (200, 20), (800, 40)] {
        let mut cluster = diego_sim_cells(cells);
        let batch = batch_of(unique_apps("app", apps, 1));
        let r = cluster.run(&mut DiegoStrategy::default(), &batch);
        assert_eq!(r.lrps.len(), apps);
        assert_within(
            &cluster.placed_per_cell(&r),
            1.0,
            &format!("{apps} on {cells}"),
        );
    }
}

fn large_cold_start(cells: usize, scale: usize, seed: u64) -> (Cluster, usize, Vec<usize>) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let colors = [
        "purple",
        "red",
        "orange",
        "teal",
        "gray",
        "blue",
        "pink",
        "green",
        "lime",
        "cyan",
        "lightseagreen",
        "brown",
    ];
    let mut lrps = Vec::new();
    let mut colored = |n: usize, mem: i32, palette: &[&str], lrps: &mut Vec<_>| {
        for i in 0..n {
            let c = palette[rng.random_range(0..palette.len())];
            lrps.push(lrp(c, vec![i as i32], mem));
        }
    };
    let (n1, n2, n4) = (1800 * scale, 200 * scale, 50 * scale);
    lrps.extend(unique_apps("one", n1 / 2, 1));
    colored(n1 / 2, 1, &colors[..4], &mut lrps);
    lrps.extend(unique_apps("two", n2 / 2, 2));
    colored(n2 / 2, 2, &colors[4..8], &mut lrps);
    lrps.extend(unique_apps("four", n4 / 2, 4));
    colored(n4 / 2, 4, &colors[8..], &mut lrps);
    let mut rng = SmallRng::seed_from_u64(seed + 1);
    lrps.shuffle(&mut rng);
    let total = lrps.len();
    let batch = batch_of(lrps);
    let mut cluster = diego_sim_cells(cells);
    let r = cluster.run(&mut DiegoStrategy::default(), &batch);
    let per_cell = cluster.placed_per_cell(&r);
    assert_eq!(r.placed() + r.failed(), total);
    (cluster, r.placed(), per_cell)
}

#[test]
fn large_cold_starts_are_balanced() {
    for (cells, scale) in [(25, 1), (100, 4)] {
        let (_, placed, per_cell) = large_cold_start(cells, scale, 7);
        let mean = placed as f64 / cells as f64;
        // Diego asserts ±10 instances; we also hold ±10% of the mean.
        assert_within(
            &per_cell,
            10.0_f64.min(mean * 0.1).max(1.0),
            "large cold start",
        );
        // Memory is nearly full (2400 of 2500 MB per 25 cells): almost everything fits.
        assert!(
            placed as f64 >= 0.97 * (2050 * scale) as f64,
            "placed {placed}"
        );
    }
}

#[test]
fn imbalanced_deploy_fills_empty_cells_without_overfilling_them() {
    for (empty, apps) in [(5usize, 500usize), (1, 100)] {
        let mut cluster = diego_sim_cells(100);
        for c in 0..100 - empty {
            for j in 0..50 {
                cluster.preplace(c, &format!("old-{c}-{j}"), 0, 1);
            }
        }
        let batch = batch_of(unique_apps("new", apps, 1));
        let r = cluster.run(&mut DiegoStrategy::default(), &batch);
        assert_eq!(r.lrps.len(), apps);
        let per_cell = cluster.placed_per_cell(&r);
        let (loaded, fresh) = per_cell.split_at(100 - empty);
        let max_loaded = *loaded.iter().max().unwrap();
        let min_loaded = *loaded.iter().min().unwrap();
        for &f in fresh {
            // The empty cells win more than any loaded cell...
            assert!(
                f > max_loaded,
                "empty cell got {f}, loaded ones up to {max_loaded}"
            );
            // ...but the starting-container weight stops them being flooded.
            assert!(
                f <= max_loaded + 3,
                "empty cell overfilled: {f} vs {max_loaded}"
            );
        }
        assert!(
            max_loaded - min_loaded <= 1,
            "loaded cells uneven: {loaded:?}"
        );
    }
}

#[test]
fn one_app_burst_spreads_over_loaded_cells() {
    let mut rng = SmallRng::seed_from_u64(3);
    for (cells, n) in [(4usize, 20usize), (10, 80), (30, 200), (100, 400)] {
        let mut cluster = diego_sim_cells(cells);
        for c in 0..cells {
            for j in 0..rng.random_range(78..=80) {
                cluster.preplace(c, &format!("bg-{c}-{j}"), 0, 1);
            }
        }
        let batch = batch_of(vec![lrp("red", (0..n as i32).collect(), 1)]);
        let r = cluster.run(&mut DiegoStrategy::default(), &batch);
        assert_eq!(r.lrps.len(), n);
        let red = cluster.of_process("red");
        let cap = n.div_ceil(cells) + 1;
        assert!(
            red.iter().all(|&k| k <= cap),
            "{cells} cells: {red:?} > {cap}"
        );
        assert_within(&red, 1.0, "one-app burst");
    }
}

#[test]
fn zones_are_balanced_before_load() {
    // Diego's AZ experiment: Z0 = cells 0 and 2, Z1 = cell 1 alone and heavily loaded.
    let mut cluster = Cluster::from_cells(vec![
        cell("REP-1", "Z0", 100, 100, 100),
        cell("REP-2", "Z1", 100, 100, 100),
        cell("REP-3", "Z0", 100, 100, 100),
    ]);
    for j in 0..50 {
        cluster.preplace(1, &format!("bg-{j}"), 0, 1);
    }
    let batch = batch_of(vec![lrp("red", (0..40).collect(), 1)]);
    let r = cluster.run(&mut DiegoStrategy::default(), &batch);
    let per_cell = cluster.placed_per_cell(&r);
    assert_eq!(per_cell[0] + per_cell[2], 20);
    assert_eq!(per_cell[1], 20);
}

#[test]
fn boulders_before_pebbles_when_memory_is_low() {
    // One cell; 80 one-MB apps and two 50 MB instances of "red": red-0 (index 0, larger
    // memory first) wins, red-1 does not fit after the pebbles of index 0.
    let mut cluster = diego_sim_cells(1);
    let mut lrps: Vec<_> = (0..80)
        .map(|i| lrp(&format!("pebble-{i}"), vec![0], 1))
        .collect();
    lrps.push(lrp("red", vec![0, 1], 50));
    let batch = batch_of(lrps);
    let r = cluster.run(&mut DiegoStrategy::default(), &batch);
    let won: Vec<String> = r
        .lrps
        .iter()
        .map(|p| format!("{}-{}", batch.lrps[p.request].process_guid, p.index))
        .collect();
    assert_eq!(r.lrps.len(), 51);
    assert_eq!(r.failed_lrps.len(), 31);
    assert!(won.contains(&"red-0".to_string()));
    let lost: Vec<String> = r
        .failed_lrps
        .iter()
        .map(|p| format!("{}-{}", batch.lrps[p.request].process_guid, p.index))
        .collect();
    assert!(lost.contains(&"red-1".to_string()));
    assert!(r
        .failed_lrps
        .iter()
        .all(|f| f.error.to_string() == "insufficient resources: memory"));
}

#[test]
fn bin_pack_first_fit_favours_lower_cells_and_balances_zones() {
    for w in [0.25, 0.5, 0.75] {
        let cfg = DiegoConfig::default()
            .with_bin_pack_first_fit_weight(w)
            .with_starting_container_weight(0.5);
        let mut cluster = diego_sim_cells(20);
        let batch = batch_of(unique_apps("app", 200, 1));
        let r = cluster.run(&mut DiegoStrategy::new(cfg), &batch);
        let per_cell = cluster.placed_per_cell(&r);
        for zone in 0..2 {
            let z: Vec<usize> = (zone..20).step_by(2).map(|c| per_cell[c]).collect();
            assert!(
                z.windows(2).all(|p| p[0] >= p[1]),
                "weight {w} zone {zone}: {z:?}"
            );
        }
        let z0: usize = (0..20).step_by(2).map(|c| per_cell[c]).sum();
        let z1: usize = (1..20).step_by(2).map(|c| per_cell[c]).sum();
        assert!(z0.abs_diff(z1) <= 1, "weight {w}: zones {z0}/{z1}");
    }
}

#[test]
fn plain_scan_agrees_on_every_experiment_shape() {
    // Same decisions as Go's way of computing them, on a mixed workload.
    let mut lrps = Vec::new();
    for i in 0..300 {
        lrps.push(lrp(&format!("a{}", i % 37), vec![i / 37], 1 + (i % 3) * 2));
    }
    let batch = batch_of(lrps);
    let mut a = diego_sim_cells(25);
    let mut b = diego_sim_cells(25);
    let ra = a.run(&mut DiegoStrategy::default(), &batch);
    let rb = b.run(
        &mut DiegoStrategy::plain_scan(DiegoConfig::default()),
        &batch,
    );
    assert_eq!(ra.lrps.len(), 300);
    assert_eq!(a.placed_per_cell(&ra), b.placed_per_cell(&rb));
}
