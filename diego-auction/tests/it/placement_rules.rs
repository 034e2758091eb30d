//! Rules every strategy shares: filters, capacity, in-flight limit, evacuating cells,
//! batch order and de-duplication, and Diego's exact error texts.

use crate::common;
use common::*;
use diego_auction::{
    AuctionBatch, BestFitStrategy, DiegoConfig, DiegoStrategy, FirstFitStrategy, KubernetesConfig,
    KubernetesStrategy, PlacementOptions, PlacementStrategy, PowerOfTwoStrategy, RandomStrategy,
    SpreadStrategy,
};

fn all(options: PlacementOptions) -> Vec<Box<dyn PlacementStrategy>> {
    let diego = DiegoConfig::default().with_options(options);
    vec![
        Box::new(DiegoStrategy::new(diego)),
        Box::new(DiegoStrategy::plain_scan(diego)),
        Box::new(FirstFitStrategy::new(options)),
        Box::new(BestFitStrategy::new(options)),
        Box::new(SpreadStrategy::new(options)),
        Box::new(PowerOfTwoStrategy::new(options, 1)),
        Box::new(RandomStrategy::new(options, 1)),
        Box::new(KubernetesStrategy::new(
            options,
            KubernetesConfig::default(),
        )),
    ]
}

fn errors(s: &mut dyn PlacementStrategy, cluster: &Cluster, batch: &AuctionBatch) -> Vec<String> {
    let r = s.place(&cluster.cells, batch);
    let mut e: Vec<String> = r.failed_lrps.iter().map(|f| f.error.to_string()).collect();
    e.extend(r.failed_tasks.iter().map(|f| f.error.to_string()));
    e
}

fn one(guid: &str, memory: i32) -> AuctionBatch {
    AuctionBatch::new().with_lrp(lrp(guid, vec![0], memory))
}

#[test]
fn filter_errors_name_the_furthest_filter() {
    let mut plain = cell("a", "z1", 100, 100, 10);
    plain.volume_drivers = vec!["nfs".into()];
    let mut tagged = cell("b", "z2", 100, 100, 10);
    tagged.placement_tags = vec!["gpu".into()];
    tagged.volume_drivers = vec!["nfs".into()];
    let cluster = Cluster::from_cells(vec![plain, tagged]);
    for mut s in all(PlacementOptions::default()) {
        let name = s.name().to_owned();
        let mut b = one("x", 1);
        b.lrps[0].placement_constraint.rootfs = "preloaded:windows".into();
        assert_eq!(
            errors(s.as_mut(), &cluster, &b),
            ["found no compatible cell for required rootfs"],
            "{name}"
        );
        let mut b = one("x", 1);
        b.lrps[0].placement_constraint.volume_drivers = vec!["smb".into()];
        assert_eq!(
            errors(s.as_mut(), &cluster, &b),
            ["found no compatible cell with required volume drivers"],
            "{name}"
        );
        let mut b = one("x", 1);
        b.lrps[0].placement_constraint.placement_tags = vec!["ssd".into(), "fast".into()];
        assert_eq!(
            errors(s.as_mut(), &cluster, &b),
            ["found no compatible cell with placement tags \"ssd\" and \"fast\""],
            "{name}"
        );
        // Tags are reached in zone z2 while zone z1's cell fails on drivers: tags win.
        let mut b = one("x", 1);
        b.lrps[0].placement_constraint.placement_tags = vec!["ssd".into()];
        b.lrps[0].placement_constraint.volume_drivers = vec!["nfs".into()];
        assert_eq!(
            errors(s.as_mut(), &cluster, &b),
            ["found no compatible cell with placement tag \"ssd\""],
            "{name}"
        );
        // The tagged cell only takes work asking for its tag.
        let mut b = one("x", 1);
        b.lrps[0].placement_constraint.placement_tags = vec!["gpu".into()];
        let r = s.place(&cluster.cells, &b);
        assert_eq!(r.lrps[0].cell_id, "b", "{name}");
        let r = s.place(&cluster.cells, &one("y", 1));
        assert_eq!(r.lrps[0].cell_id, "a", "{name}");
    }
}

#[test]
fn insufficient_resources_name_what_blocked_every_cell() {
    let mut low_mem = cell("a", "z1", 100, 100, 10);
    low_mem.available_resources.memory_mb = 10;
    let mut low_both = cell("b", "z1", 100, 100, 10);
    low_both.available_resources.memory_mb = 10;
    low_both.available_resources.disk_mb = 0;
    let mut full = cell("c", "z2", 100, 100, 10);
    full.available_resources.containers = 0;
    full.available_resources.memory_mb = 0;
    let cases = [
        (
            vec![low_mem.clone(), low_both.clone()],
            "insufficient resources: memory",
        ),
        (
            vec![low_both.clone()],
            "insufficient resources: disk, memory",
        ),
        (
            vec![full.clone()],
            "insufficient resources: containers, memory",
        ),
        (
            vec![low_both.clone(), {
                let mut c = cell("d", "z1", 100, 100, 10);
                c.available_resources.containers = 0;
                c
            }],
            "insufficient resources",
        ),
    ];
    for (cells, text) in cases {
        let cluster = Cluster::from_cells(cells);
        for mut s in all(PlacementOptions::default()) {
            assert_eq!(
                errors(s.as_mut(), &cluster, &one("x", 50)),
                [text],
                "{}",
                s.name()
            );
        }
    }
}

#[test]
fn proxy_memory_counts_for_lrps_not_tasks() {
    let mut c = cell("a", "z1", 100, 100, 10);
    c.proxy_memory_allocation_mb = 32;
    let cluster = Cluster::from_cells(vec![c]);
    for mut s in all(PlacementOptions::default()) {
        assert_eq!(
            errors(s.as_mut(), &cluster, &one("x", 80)),
            ["insufficient resources: memory"]
        );
        let b = AuctionBatch::new().with_task(task("t", 80));
        assert_eq!(s.place(&cluster.cells, &b).tasks.len(), 1, "{}", s.name());
    }
}

#[test]
fn proxy_memory_is_reserved_unless_the_go_quirk_is_asked_for() {
    let mut c = cell("a", "z1", 100, 100, 10);
    c.proxy_memory_allocation_mb = 20;
    let cluster = Cluster::from_cells(vec![c]);
    let batch = AuctionBatch::new()
        .with_lrp(lrp("x", vec![0], 40))
        .with_lrp(lrp("y", vec![0], 40));
    for mut s in all(PlacementOptions::default()) {
        assert_eq!(
            s.place(&cluster.cells, &batch).lrps.len(),
            1,
            "{}",
            s.name()
        );
    }
    let quirk = PlacementOptions::default().with_reserve_proxy_memory(false);
    for mut s in all(quirk) {
        assert_eq!(
            s.place(&cluster.cells, &batch).lrps.len(),
            2,
            "{}",
            s.name()
        );
    }
}

#[test]
fn in_flight_limit_counts_starting_containers_and_placements() {
    let mut a = cell("a", "z1", 1000, 1000, 100);
    a.starting_container_count = 2;
    let cluster = Cluster::from_cells(vec![a, cell("b", "z2", 1000, 1000, 100)]);
    let options = PlacementOptions::default().with_starting_container_count_maximum(5);
    let batch = AuctionBatch::new()
        .with_lrp(lrp("x", (0..4).collect(), 1))
        .with_task(task("t", 1));
    for mut s in all(options) {
        let r = s.place(&cluster.cells, &batch);
        assert_eq!(r.placed(), 3, "{}", s.name());
        assert_eq!(r.failed(), 2, "{}", s.name());
        let texts: Vec<String> = r
            .failed_lrps
            .iter()
            .map(|f| f.error.to_string())
            .chain(r.failed_tasks.iter().map(|f| f.error.to_string()))
            .collect();
        assert!(texts
            .iter()
            .all(|t| t == "waiting to start instance: reached in-flight start limit"));
        // Index 0 first, then the task, then the rest: the task got in.
        assert_eq!(r.tasks.len(), 1, "{}", s.name());
    }
}

#[test]
fn evacuating_cells_take_nothing_and_no_cells_means_no_communication() {
    let mut evac = cell("a", "z1", 1000, 1000, 100);
    evac.evacuating = true;
    let cluster = Cluster::from_cells(vec![evac.clone(), cell("b", "z1", 1000, 1000, 100)]);
    let only_evac = Cluster::from_cells(vec![evac]);
    let none = Cluster { cells: Vec::new() };
    let batch = AuctionBatch::new()
        .with_lrp(lrp("x", (0..5).collect(), 1))
        .with_task(task("t", 1));
    for mut s in all(PlacementOptions::default()) {
        let r = s.place(&cluster.cells, &batch);
        assert_eq!(r.placed(), 6);
        assert!(r.lrps.iter().all(|p| p.cell_id == "b"), "{}", s.name());
        for c in [&only_evac, &none] {
            let e = errors(s.as_mut(), c, &batch);
            assert_eq!(e.len(), 6);
            assert!(e
                .iter()
                .all(|t| t == "unable to communicate to compatible cells"));
        }
    }
}

#[test]
fn duplicates_are_placed_once_and_every_item_is_answered() {
    let cluster = Cluster::from_cells(vec![cell("a", "z1", 100, 100, 3)]);
    let batch = AuctionBatch::new()
        .with_lrp(lrp("x", vec![0, 1, 0], 1))
        .with_lrp(lrp("x", vec![1, 2], 1))
        .with_task(task("t", 1))
        .with_task(task("t", 1));
    for mut s in all(PlacementOptions::default()) {
        let r = s.place(&cluster.cells, &batch);
        // x/0, x/1, x/2 and t: four items, three containers.
        assert_eq!(r.placed() + r.failed(), 4, "{}", s.name());
        assert_eq!(r.placed(), 3, "{}", s.name());
        assert_eq!(
            r.failed_lrps[0].error.to_string(),
            "insufficient resources: containers"
        );
        // The largest index went last and failed.
        assert_eq!(r.failed_lrps[0].index, 2);
    }
}

#[test]
fn diego_spreads_tasks_by_task_count() {
    let mut busy = cell("a", "z1", 1000, 1000, 100);
    busy.tasks.push(diego_core::TaskSummary {
        task_guid: "old".into(),
        domain: "d".into(),
        resource: diego_core::Resource::default(),
    });
    let mut cluster = Cluster::from_cells(vec![busy, cell("b", "z1", 1000, 1000, 100)]);
    let mut s = DiegoStrategy::default();
    let batch = AuctionBatch::new()
        .with_task(task("t1", 1))
        .with_task(task("t2", 1));
    let r = cluster.run(&mut s, &batch);
    assert_eq!(r.tasks.len(), 2);
    // The idle cell takes the first; then both hold one task and the second goes to the
    // cell with fewer starting containers: the busy one.
    assert_eq!(r.tasks[0].cell_id, "b");
    assert_eq!(r.tasks[1].cell_id, "a");
}

#[test]
fn random_tie_break_is_seeded() {
    let cluster = Cluster::from_cells(
        (0..10)
            .map(|i| cell(&format!("c{i}"), "z", 100, 100, 10))
            .collect(),
    );
    let batch = AuctionBatch::new().with_lrp(lrp("x", vec![0], 1));
    let pick = |seed| {
        let cfg = DiegoConfig::default()
            .with_tie_break(diego_auction::TieBreak::Random)
            .with_seed(seed);
        DiegoStrategy::new(cfg).place(&cluster.cells, &batch).lrps[0].cell
    };
    assert_eq!(pick(5), pick(5));
    let seen: std::collections::BTreeSet<usize> = (0..40).map(pick).collect();
    assert!(
        seen.len() > 3,
        "random ties should reach several cells: {seen:?}"
    );
    // Deterministic default: the first cell.
    let first = DiegoStrategy::default().place(&cluster.cells, &batch).lrps[0].cell;
    assert_eq!(first, 0);
}

#[test]
fn rivals_behave_as_named() {
    let cells: Vec<_> = (0..4)
        .map(|i| cell(&format!("c{i}"), "z", 100, 100, 10))
        .collect();
    let batch = AuctionBatch::new().with_lrp(lrp("x", (0..8).collect(), 10));
    let per_cell = |s: &mut dyn PlacementStrategy| {
        let mut c = Cluster::from_cells(cells.clone());
        let r = c.run(s, &batch);
        c.placed_per_cell(&r)
    };
    let o = PlacementOptions::default();
    assert_eq!(per_cell(&mut FirstFitStrategy::new(o)), [8, 0, 0, 0]);
    assert_eq!(per_cell(&mut BestFitStrategy::new(o)), [8, 0, 0, 0]);
    assert_eq!(per_cell(&mut SpreadStrategy::new(o)), [2, 2, 2, 2]);
    assert_eq!(per_cell(&mut DiegoStrategy::default()), [2, 2, 2, 2]);
    let p2 = per_cell(&mut PowerOfTwoStrategy::new(o, 9));
    assert!(p2.iter().all(|&n| n <= 3), "{p2:?}");
    let k8s = per_cell(&mut KubernetesStrategy::new(o, KubernetesConfig::default()));
    assert_eq!(k8s, [2, 2, 2, 2]);
    let rnd = per_cell(&mut RandomStrategy::new(o, 4));
    assert_eq!(rnd.iter().sum::<usize>(), 8);
}
