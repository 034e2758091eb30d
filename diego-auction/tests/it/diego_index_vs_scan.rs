//! The indexed `DiegoStrategy` always picks a cell whose full Diego score is the minimum
//! a plain scan of every cell finds, across rounds (its index survives between rounds
//! and must follow cells that changed, grew, or lost instances), with some cells
//! promising append-only LRP lists through their `LrpLineage` (except when they lose an
//! instance) and some not, and some carrying `LrpFingerprints` of their instances and
//! some not.

use crate::common;
use std::sync::Arc;

use common::*;
use diego_auction::strategy::diego::lrp_score;
use diego_auction::{AuctionBatch, AuctionResults, DiegoConfig, DiegoStrategy, PlacementStrategy};
use diego_core::models::cell::{LrpFingerprints, LrpLineage};
use diego_core::{CellState, LrpStartRequest};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct CellSpec {
    zone: u8,
    class: u8,
    used_memory: i32,
    starting: i32,
    tagged: bool,
    lrps: Vec<(u8, u8)>,
    /// Whether the cell promises an append-only list (`LrpLineage`).
    lineage: bool,
    /// Whether the cell's states carry `LrpFingerprints`.
    fingerprints: bool,
}

fn cell_spec() -> impl Strategy<Value = CellSpec> {
    (
        0u8..3,
        0u8..2,
        0i32..200,
        0i32..4,
        prop::bool::weighted(0.2),
        prop::collection::vec((0u8..6, 0u8..6), 0..5),
        prop::bool::weighted(0.7),
        prop::bool::weighted(0.5),
    )
        .prop_map(
            |(zone, class, used_memory, starting, tagged, lrps, lineage, fingerprints)| CellSpec {
                zone,
                class,
                used_memory,
                starting,
                tagged,
                lrps,
                lineage,
                fingerprints,
            },
        )
}

#[derive(Clone, Debug)]
struct RequestSpec {
    process: u8,
    indices: Vec<i32>,
    memory: i32,
    tagged: bool,
}

fn request_spec() -> impl Strategy<Value = RequestSpec> {
    (
        0u8..8,
        prop::collection::btree_set(0i32..6, 1..4),
        prop::sample::select(vec![1, 8, 32, 64, 128]),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(process, indices, memory, tagged)| RequestSpec {
            process,
            indices: indices.into_iter().collect(),
            memory,
            tagged,
        })
}

fn build_cells(specs: &[CellSpec]) -> Cluster {
    let cells = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (mem, containers, proxy) = if s.class == 0 {
                (256, 8, 0)
            } else {
                (512, 6, 16)
            };
            let mut c = cell(
                &format!("cell-{i}"),
                &format!("z{}", s.zone),
                mem,
                1024,
                containers,
            );
            c.proxy_memory_allocation_mb = proxy;
            c.available_resources.memory_mb -= s.used_memory.min(mem);
            c.starting_container_count = s.starting;
            if s.tagged {
                c.placement_tags = vec!["gpu".into()];
            }
            // The cells' lists only grow by appending (below, `apply`), except where a
            // removal starts a new lineage.
            if s.lineage {
                c.lrp_lineage = LrpLineage::new();
            }
            c
        })
        .collect();
    let mut cluster = Cluster::from_cells(cells);
    for (i, s) in specs.iter().enumerate() {
        for &(p, idx) in &s.lrps {
            cluster.preplace(i, &format!("p{p}"), idx.into(), 4);
        }
    }
    fingerprint(&mut cluster, specs);
    cluster
}

/// Gives the cells that carry fingerprints those of their current lists.
fn fingerprint(cluster: &mut Cluster, specs: &[CellSpec]) {
    for (c, s) in cluster.cells.iter_mut().zip(specs) {
        if s.fingerprints {
            let c = Arc::make_mut(c);
            c.lrp_fingerprints = LrpFingerprints::of_lrps(&c.lrps);
        }
    }
}

fn build_batch(specs: &[RequestSpec]) -> AuctionBatch {
    AuctionBatch {
        lrps: specs
            .iter()
            .map(|r| {
                let mut l = lrp(&format!("p{}", r.process), r.indices.clone(), r.memory);
                if r.tagged {
                    l.placement_constraint.placement_tags = vec!["gpu".into()];
                }
                l
            })
            .collect(),
        tasks: Vec::new(),
    }
}

fn one_instance(r: &LrpStartRequest, index: i32) -> AuctionBatch {
    let mut r = r.clone();
    r.indices = vec![index];
    AuctionBatch {
        lrps: vec![r],
        tasks: Vec::new(),
    }
}

/// Replays the indexed strategy's placements one at a time, checking each against a
/// plain scan of the state at that moment.
fn check_round(
    cells: &[Arc<CellState>],
    batch: &AuctionBatch,
    results: &AuctionResults,
    config: &DiegoConfig,
) -> Result<(), TestCaseError> {
    let mut replay = Cluster {
        cells: cells.to_vec(),
    };
    for p in &results.lrps {
        let r = &batch.lrps[p.request];
        let single = one_instance(r, p.index);
        let reference = DiegoStrategy::plain_scan(*config).place(&replay.cells, &single);
        prop_assert_eq!(
            reference.lrps.len(),
            1,
            "the scan finds no cell for {:?}",
            p
        );
        let want = lrp_score(&replay.cells, reference.lrps[0].cell, r, config);
        let got = lrp_score(&replay.cells, p.cell, r, config);
        prop_assert_eq!(
            got,
            want,
            "{}/{} went to {} (score {}); the scan's best is {} (score {})",
            r.process_guid,
            p.index,
            p.cell,
            got,
            reference.lrps[0].cell,
            want
        );
        let placed = AuctionResults {
            lrps: vec![diego_auction::LrpPlacement {
                request: 0,
                ..p.clone()
            }],
            ..Default::default()
        };
        replay.apply(&single, &placed);
    }
    // Whatever failed cannot fit anywhere even now (cells only filled up since).
    for f in &results.failed_lrps {
        let r = &batch.lrps[f.request];
        let reference =
            DiegoStrategy::plain_scan(*config).place(&replay.cells, &one_instance(r, f.index));
        prop_assert_eq!(reference.lrps.len(), 0, "index failed {:?} but it fits", f);
        // Cells only filled up since, so what blocked every cell then still does.
        let now = reference.failed_lrps[0].error.to_string();
        let then = f.error.to_string();
        match (
            then.strip_prefix("insufficient resources"),
            now.strip_prefix("insufficient resources"),
        ) {
            (Some(then_list), Some(now_list)) => {
                for r in then_list
                    .trim_start_matches(": ")
                    .split(", ")
                    .filter(|r| !r.is_empty())
                {
                    prop_assert!(now_list.contains(r), "{} then, {} now", then, now);
                }
            }
            _ => prop_assert_eq!(now, then),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn indexed_choice_has_the_minimum_score(
        specs in prop::collection::vec(cell_spec(), 1..24),
        first in prop::collection::vec(request_spec(), 1..6),
        second in prop::collection::vec(request_spec(), 1..6),
        removals in prop::collection::vec(0usize..24, 0..3),
        starting_weight in prop::sample::select(vec![0.0, 0.25, 1.0]),
        bin_pack in prop::sample::select(vec![0.0, 0.0, 0.1]),
    ) {
        let config = DiegoConfig::default()
            .with_starting_container_weight(starting_weight)
            .with_bin_pack_first_fit_weight(bin_pack);
        let mut cluster = build_cells(&specs);
        let mut diego = DiegoStrategy::new(config);

        let b1 = build_batch(&first);
        let before = cluster.cells.clone();
        let r1 = diego.place(&cluster.cells, &b1);
        check_round(&before, &b1, &r1, &config)?;
        cluster.apply(&b1, &r1);
        fingerprint(&mut cluster, &specs);

        // Between rounds some cells lose their first instance (not an append).
        for &c in &removals {
            if let Some(cell) = cluster.cells.get_mut(c) {
                let cell = Arc::make_mut(cell);
                if !cell.lrps.is_empty() {
                    let l = cell.lrps.remove(0);
                    if specs[c].lineage {
                        cell.lrp_lineage = LrpLineage::new();
                    }
                    cell.available_resources.memory_mb += l.resource.memory_mb;
                    cell.available_resources.disk_mb += l.resource.disk_mb;
                    cell.available_resources.containers += 1;
                }
            }
        }

        fingerprint(&mut cluster, &specs);

        let b2 = build_batch(&second);
        let before = cluster.cells.clone();
        let r2 = diego.place(&cluster.cells, &b2);
        check_round(&before, &b2, &r2, &config)?;
    }
}
