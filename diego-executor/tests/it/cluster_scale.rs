//! Issue #8's large run on FakeBackend: 1,000 cells, 100,000 instances (1,000 LRPs × 100),
//! every instance RUNNING, each index of each LRP exactly once, nothing lost or duplicated
//! in the BBS or on the cells, while the converger runs passes throughout.
//!
//! Paused tokio time: time moves only while every task waits, so a cell's 15 s presence
//! never lapses because the machine is busy, and the run is the same on a loaded laptop
//! and in CI. The converger runs a pass every 5 s of that time. `DIEGO_SCALE_CELLS` / `DIEGO_SCALE_LRPS` shrink
//! the run for a quick local try; CI runs the full scale. Speed is not asserted here: it is
//! `headline e2e`'s `e2e_fake_instances_per_sec`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use diego_core::convergence::ConvergenceConfig;
use diego_core::prelude::*;
use diego_core::store::ActualLrpFilter;
use diego_core::{ActualLrpState, DesiredLrp, Presence, RunAction, TokioClock};
use diego_executor::cluster::BackendFactory;
use diego_executor::{Cluster, ContainerState, Resources};
use diego_garden::{ContainerBackend, FakeBackend, FakeScript, FakeStep};
use metrics::{Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};

/// Counts the converger's completed passes (`diego_convergence_passes`).
#[derive(Debug, Default)]
struct Passes(AtomicU64);

impl CounterFn for Passes {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::SeqCst);
    }
}

/// A recorder that hands out the pass counter and drops every other metric.
#[derive(Debug)]
struct PassRecorder(Arc<Passes>);

impl metrics::Recorder for PassRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        if key.name() == "diego_convergence_passes" {
            Counter::from_arc(self.0.clone())
        } else {
            Counter::noop()
        }
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const INSTANCES_PER_LRP: i32 = 100;

/// The run on a current-thread runtime with paused time (what `#[tokio::test(start_paused
/// = true)]` builds), under a recorder local to this thread: every task of the cluster runs
/// on it, so the pass counter sees this cluster's converger and no other test's.
#[test]
fn a_thousand_cells_run_a_hundred_thousand_instances_with_convergence_running() {
    let passes = Arc::new(Passes::default());
    let recorder = PassRecorder(passes.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || runtime.block_on(run(passes)));
}

async fn run(passes: Arc<Passes>) {
    let cells = env_or("DIEGO_SCALE_CELLS", 1_000);
    let lrps = env_or("DIEGO_SCALE_LRPS", 1_000);
    let total = lrps * INSTANCES_PER_LRP as usize;

    let factory: BackendFactory = Arc::new(|_| {
        let b = FakeBackend::new();
        b.set_program("/app/server", |_| FakeScript::new().then(FakeStep::Forever));
        Ok(Arc::new(b) as Arc<dyn ContainerBackend>)
    });
    let started = std::time::Instant::now();
    let c = Cluster::builder(factory)
        .cells(cells)
        .cell_resources(Resources {
            memory_mb: 65_536,
            disk_mb: 131_072,
            containers: 500,
        })
        .clock(Arc::new(TokioClock::new()))
        .convergence_config(
            ConvergenceConfig::default().with_convergence_interval(Duration::from_secs(5)),
        )
        .start()
        .await
        .unwrap();
    let cells_up = started.elapsed();

    // Convergence passes all along, from before the first desire until everything runs:
    // the background converger's (every 5 s) and one every 500 ms from this checker. No
    // pass may find a cell gone, an instance suspect or an instance extra.
    let passes_at_desire = passes.0.load(Ordering::SeqCst);
    let stop = Arc::new(AtomicBool::new(false));
    let checker = tokio::spawn({
        let converger = c.converger().clone();
        let stop = stop.clone();
        async move {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                let r = converger.converge_once().await.map_err(|e| e.to_string())?;
                n += 1;
                if (r.missing_cells, r.suspected, r.extra) != (0, 0, 0) {
                    return Err(format!("pass {n}: {r:?}"));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Ok::<usize, String>(n)
        }
    });

    let desired_at = std::time::Instant::now();
    for i in 0..lrps {
        let mut d = DesiredLrp::new(
            format!("app-{i:04}").as_str(),
            "scale",
            "preloaded:cflinuxfs4",
            INSTANCES_PER_LRP,
            RunAction::new("/app/server", "vcap"),
        );
        d.scheduling_info.memory_mb = 64;
        d.scheduling_info.disk_mb = 64;
        c.bbs().desire_lrp(d).await.unwrap();
    }

    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let rows = c
            .bbs()
            .actual_lrps(&ActualLrpFilter::default())
            .await
            .unwrap();
        let running = rows
            .iter()
            .filter(|r| r.presence == Presence::Ordinary && r.state == ActualLrpState::Running)
            .count();
        if running >= total {
            break;
        }
        assert!(!checker.is_finished(), "{:?}", checker.await);
        assert!(
            Instant::now() < deadline,
            "only {running} of {total} instances RUNNING after 600 s (tokio time)"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let all_running = desired_at.elapsed();
    let passes_while_placing = passes.0.load(Ordering::SeqCst) - passes_at_desire;
    stop.store(true, Ordering::SeqCst);
    let checker_passes = checker.await.unwrap().unwrap();
    eprintln!(
        "{cells} cells up in {cells_up:?}; {total} instances RUNNING {all_running:?} (wall \
         time) after desire; {passes_while_placing} convergence passes meanwhile \
         ({checker_passes} by the checker)"
    );
    assert!(
        passes_while_placing >= 2,
        "convergence ran {passes_while_placing} passes while the work was placed"
    );

    // Let the background converger run more passes over the settled cluster: it must
    // change nothing.
    let passes_settled = passes.0.load(Ordering::SeqCst);
    let settle_deadline = Instant::now() + Duration::from_secs(120);
    while passes.0.load(Ordering::SeqCst) < passes_settled + 2 {
        assert!(
            Instant::now() < settle_deadline,
            "the converger stopped running passes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // BBS: exactly one ordinary RUNNING row per index of each LRP, nothing else.
    let rows = c
        .bbs()
        .actual_lrps(&ActualLrpFilter::default())
        .await
        .unwrap();
    assert_eq!(rows.len(), total, "ActualLRP rows: none lost, none extra");
    let mut indices: HashMap<String, HashSet<i32>> = HashMap::new();
    let mut by_instance = HashMap::new();
    for r in &rows {
        assert_eq!(r.presence, Presence::Ordinary, "{r:?}");
        assert_eq!(r.state, ActualLrpState::Running, "{r:?}");
        assert!(
            indices
                .entry(r.key.process_guid.to_string())
                .or_default()
                .insert(r.key.index),
            "index {} of {} twice",
            r.key.index,
            r.key.process_guid
        );
        assert!(
            by_instance
                .insert(r.instance_guid().unwrap().to_string(), r)
                .is_none(),
            "instance guid twice: {r:?}"
        );
    }
    assert_eq!(indices.len(), lrps);
    let every_index: HashSet<i32> = (0..INSTANCES_PER_LRP).collect();
    for (guid, seen) in &indices {
        assert_eq!(seen, &every_index, "indices of {guid}");
    }

    // Cells: one running container per RUNNING instance, on the cell the BBS names, and
    // no other. A container placed twice (an auction retried while the first placement
    // was still starting) loses its claim and is deleted by its rep; wait for that.
    let cells_deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut containers = 0;
        let mut strays = Vec::new();
        for rep in c.reps().all() {
            for container in rep.executor().list() {
                let guid = container.tags.get("instance-guid").unwrap();
                match by_instance.get(guid) {
                    Some(row) => {
                        assert_eq!(row.cell_id(), Some(rep.cell_id()), "{}", container.guid);
                        assert_eq!(
                            container.state,
                            ContainerState::Running,
                            "{}",
                            container.guid
                        );
                        containers += 1;
                    }
                    None => strays.push((container.guid.clone(), container.state)),
                }
            }
        }
        assert_eq!(containers, total, "containers of the RUNNING instances");
        if strays.is_empty() {
            break;
        }
        assert!(
            Instant::now() < cells_deadline,
            "containers no ActualLRP names, still there after 120 s: {strays:?}"
        );
        eprintln!(
            "{} stray containers being removed: {strays:?}",
            strays.len()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // A last pass sees the desired state reached.
    let report = c.converger().converge_once().await.unwrap();
    assert_eq!(report.running, total, "{report:?}");
    assert_eq!(report.missing, 0);
    assert_eq!(report.extra, 0);
    assert_eq!(report.suspected, 0);

    c.shutdown().await;
}
