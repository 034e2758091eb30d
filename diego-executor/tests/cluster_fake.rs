//! A whole cluster in one process on FakeBackend cells, under paused tokio time:
//! desire → RUNNING → crash → RUNNING, tasks, scaling, a killed cell, evacuation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use diego_core::store::ActualLrpFilter;
use diego_core::*;
use diego_executor::cluster::BackendFactory;
use diego_executor::Cluster;
use diego_garden::{ContainerBackend, FakeBackend, FakeScript, FakeStep};

fn fake_backends() -> (BackendFactory, Arc<parking_lot::Mutex<Vec<FakeBackend>>>) {
    let all = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let seen = all.clone();
    let factory: BackendFactory = Arc::new(move |_id| {
        let b = FakeBackend::new();
        b.set_program("/app/server", |_| {
            FakeScript::new()
                .then(FakeStep::Listen(0))
                .then(FakeStep::Forever)
        });
        b.set_program("/bin/task", |_| {
            FakeScript::new()
                .then(FakeStep::WriteFile(
                    "/tmp/result".into(),
                    bytes::Bytes::from_static(b"42"),
                ))
                .then(FakeStep::Exit(0))
        });
        b.set_program("/bin/fail", |_| FakeScript::new().then(FakeStep::Exit(7)));
        b.set_program("/app/crashy", |_| {
            FakeScript::new()
                .then(FakeStep::Listen(0))
                .then(FakeStep::Sleep(Duration::from_secs(60)))
                .then(FakeStep::Exit(1))
        });
        seen.lock().push(b.clone());
        Arc::new(b) as Arc<dyn ContainerBackend>
    });
    (factory, all)
}

async fn cluster(cells: usize) -> (Cluster, Arc<parking_lot::Mutex<Vec<FakeBackend>>>) {
    let (factory, backends) = fake_backends();
    let c = Cluster::builder(factory)
        .cells(cells)
        .clock(Arc::new(TokioClock::new()))
        .start()
        .await
        .unwrap();
    (c, backends)
}

fn web(instances: i32) -> DesiredLrp {
    let mut d = DesiredLrp::new(
        "web",
        "apps",
        "preloaded:cflinuxfs4",
        instances,
        RunAction::new("/app/server", "vcap"),
    );
    d.scheduling_info.memory_mb = 256;
    d.scheduling_info.disk_mb = 256;
    d.run_info.ports = vec![8080];
    d
}

async fn rows(c: &Cluster) -> Vec<Arc<ActualLrp>> {
    c.bbs()
        .actual_lrps(&ActualLrpFilter::default())
        .await
        .unwrap()
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..3000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn running(c: &Cluster, n: usize) -> bool {
    rows(c)
        .await
        .iter()
        .filter(|r| r.presence == Presence::Ordinary && r.state == ActualLrpState::Running)
        .count()
        == n
}

#[tokio::test(start_paused = true)]
async fn desire_reaches_running_on_every_cell() {
    let (c, _backends) = cluster(2).await;
    c.bbs().desire_lrp(web(3)).await.unwrap();
    wait_for("3 RUNNING", || running(&c, 3)).await;
    let rows_now = rows(&c).await;
    let cells: std::collections::HashSet<_> = rows_now
        .iter()
        .filter_map(|r| r.cell_id().cloned())
        .collect();
    assert_eq!(cells.len(), 2, "spread over both cells");
    assert!(rows_now.iter().all(|r| r.routable && r.net_info.is_some()));

    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_restarts_at_once_with_a_new_instance_guid() {
    let (c, _backends) = cluster(1).await;
    let mut d = web(1);
    d.run_info.action = Some(RunAction::new("/app/crashy", "vcap").into());
    c.bbs().desire_lrp(d).await.unwrap();
    wait_for("RUNNING", || running(&c, 1)).await;
    let first = rows(&c).await[0].instance_guid().unwrap().clone();
    wait_for("restarted after its first crash", || async {
        rows(&c).await.iter().any(|r| {
            r.state == ActualLrpState::Running
                && r.crash_count == 1
                && r.instance_guid() != Some(&first)
        })
    })
    .await;
    let row = rows(&c).await.remove(0);
    assert!(
        row.crash_reason.contains("Exited with status 1"),
        "{}",
        row.crash_reason
    );
    c.shutdown().await;
}
