//! A whole cluster in one process on FakeBackend cells, under paused tokio time:
//! desire → RUNNING → crash → RUNNING, tasks, scaling, a killed cell, evacuation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::wait_for;
use std::sync::Arc;
use std::time::Duration;

use diego_core::store::ActualLrpFilter;
use diego_core::*;
use diego_executor::cluster::BackendFactory;
use diego_executor::Cluster;
use diego_garden::{ContainerBackend, FakeBackend, FakeScript, FakeStep};

/// How long a test waits for what it expects.
const LIMIT: Duration = Duration::from_secs(300);

fn fake_backends() -> (BackendFactory, Arc<parking_lot::Mutex<Vec<FakeBackend>>>) {
    let all = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let seen = all.clone();
    let factory: BackendFactory = Arc::new(move |_id| {
        let b = FakeBackend::new();
        common::cluster::app_and_task_programs(&b);
        b.set_program("/bin/fail", |_| FakeScript::new().then(FakeStep::Exit(7)));
        let checks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        b.set_program("/bin/check", move |_| {
            // Healthy for the first two checks, then unhealthy for good.
            let n = checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            FakeScript::new().then(FakeStep::Exit(if n < 2 { 0 } else { 1 }))
        });
        b.set_program("/app/crashy", |_| {
            FakeScript::new()
                .then(FakeStep::Listen(0))
                .then(FakeStep::Sleep(Duration::from_secs(60)))
                .then(FakeStep::Exit(1))
        });
        b.set_program("/bin/forever", |_| {
            FakeScript::new().then(FakeStep::Forever)
        });
        seen.lock().push(b.clone());
        Ok(Arc::new(b) as Arc<dyn ContainerBackend>)
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
    wait_for("3 RUNNING", LIMIT, || running(&c, 3)).await;
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
    wait_for("RUNNING", LIMIT, || running(&c, 1)).await;
    let first = rows(&c).await[0].instance_guid().unwrap().clone();
    wait_for("restarted after its first crash", LIMIT, || async {
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

fn task(guid: &str, path: &str) -> DesireTaskRequest {
    let mut def = TaskDefinition::new("preloaded:cflinuxfs4", RunAction::new(path, "vcap"));
    def.result_file = "/tmp/result".into();
    def.memory_mb = 128;
    DesireTaskRequest {
        task_guid: TaskGuid::new(guid),
        domain: "tasks".into(),
        task_definition: def,
    }
}

#[tokio::test(start_paused = true)]
async fn tasks_complete_with_their_result_or_failure() {
    let (c, _b) = cluster(2).await;
    c.bbs().desire_task(task("ok", "/bin/task")).await.unwrap();
    c.bbs().desire_task(task("bad", "/bin/fail")).await.unwrap();
    let done = |g: &'static str| {
        let bbs = c.bbs().clone();
        async move {
            bbs.task_by_guid(&TaskGuid::new(g))
                .await
                .map(|t| t.state == TaskState::Completed)
                .unwrap_or(false)
        }
    };
    wait_for("task ok completed", LIMIT, || done("ok")).await;
    wait_for("task bad completed", LIMIT, || done("bad")).await;
    let ok = c.bbs().task_by_guid(&TaskGuid::new("ok")).await.unwrap();
    assert!(!ok.failed, "{}", ok.failure_reason);
    assert_eq!(ok.result, "42");
    let bad = c.bbs().task_by_guid(&TaskGuid::new("bad")).await.unwrap();
    assert!(bad.failed);
    assert_eq!(bad.failure_reason, "TASK: Exited with status 7");
    // Their containers are gone.
    for id in c.cell_ids() {
        assert!(c.reps().get(&id).unwrap().executor().list().is_empty());
    }
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn scaling_up_and_down() {
    let (c, _b) = cluster(2).await;
    c.bbs().desire_lrp(web(3)).await.unwrap();
    wait_for("3 RUNNING", LIMIT, || running(&c, 3)).await;
    let update = |n| DesiredLrpUpdate {
        instances: Some(n),
        ..Default::default()
    };
    c.bbs()
        .update_desired_lrp(&ProcessGuid::new("web"), update(5))
        .await
        .unwrap();
    wait_for("5 RUNNING", LIMIT, || running(&c, 5)).await;
    c.bbs()
        .update_desired_lrp(&ProcessGuid::new("web"), update(1))
        .await
        .unwrap();
    wait_for("1 row left", LIMIT, || async { rows(&c).await.len() == 1 }).await;
    assert!(running(&c, 1).await);
    let containers: usize = c
        .cell_ids()
        .iter()
        .map(|id| c.reps().get(id).unwrap().executor().list().len())
        .sum();
    assert_eq!(containers, 1, "stopped instances' containers are deleted");
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn placement_errors_surface_on_the_actual_lrp() {
    let (c, _b) = cluster(1).await;
    let mut d = web(1);
    d.scheduling_info.memory_mb = 1_000_000;
    c.bbs().desire_lrp(d).await.unwrap();
    wait_for("a placement error", LIMIT, || async {
        rows(&c)
            .await
            .iter()
            .any(|r| r.placement_error == "insufficient resources: memory")
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_killed_cell_s_instances_run_elsewhere() {
    let (c, _b) = cluster(2).await;
    c.bbs().desire_lrp(web(4)).await.unwrap();
    wait_for("4 RUNNING", LIMIT, || running(&c, 4)).await;
    let victim = c.cell_ids()[0].clone();
    let on_victim = rows(&c)
        .await
        .iter()
        .filter(|r| r.cell_id() == Some(&victim))
        .count();
    assert!(on_victim > 0);
    c.kill_cell(&victim).await.unwrap();
    // Its presence expires (15 s), convergence makes the instances SUSPECT and
    // auctions replacements, which start on the surviving cell; the suspects go.
    wait_for("4 RUNNING elsewhere, no suspect left", LIMIT, || async {
        let rows = rows(&c).await;
        rows.iter()
            .filter(|r| r.presence == Presence::Ordinary && r.state == ActualLrpState::Running)
            .all(|r| r.cell_id() != Some(&victim))
            && running(&c, 4).await
            && rows.iter().all(|r| r.presence == Presence::Ordinary)
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn evacuation_keeps_every_index_running() {
    let (c, _b) = cluster(2).await;
    c.bbs().desire_lrp(web(3)).await.unwrap();
    wait_for("3 RUNNING", LIMIT, || running(&c, 3)).await;
    let leaving = c.cell_ids()[0].clone();
    // Watch: at every moment, every index has a RUNNING row (ordinary or evacuating).
    let watcher = common::cluster::fewest_served(c.bbs().clone(), 3, 400);
    c.evacuate_cell(&leaving).await.unwrap();
    wait_for("3 RUNNING off the evacuated cell", LIMIT, || async {
        running(&c, 3).await
            && rows(&c)
                .await
                .iter()
                .all(|r| r.cell_id() != Some(&leaving) && r.presence == Presence::Ordinary)
    })
    .await;
    assert_eq!(
        watcher.await.unwrap(),
        3,
        "an index went without a RUNNING instance"
    );
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_third_crash_waits_for_convergence() {
    let (c, _b) = cluster(1).await;
    let mut d = web(1);
    d.run_info.action = Some(RunAction::new("/app/crashy", "vcap").into());
    c.bbs().desire_lrp(d).await.unwrap();
    wait_for("the third crash", LIMIT, || async {
        rows(&c)
            .await
            .iter()
            .any(|r| r.crash_count == 3 && r.state == ActualLrpState::Crashed)
    })
    .await;
    // It stays CRASHED for its 30 s backoff...
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(rows(&c)
        .await
        .iter()
        .all(|r| r.state == ActualLrpState::Crashed));
    // ...then a convergence pass restarts it.
    wait_for("restarted after its backoff", LIMIT, || async {
        rows(&c)
            .await
            .iter()
            .any(|r| r.crash_count == 3 && r.state == ActualLrpState::Running)
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_health_check_crashes_the_instance() {
    let (c, _b) = cluster(1).await;
    let mut d = web(1);
    d.run_info.monitor = Some(RunAction::new("/bin/check", "vcap").into());
    c.bbs().desire_lrp(d).await.unwrap();
    wait_for("RUNNING", LIMIT, || running(&c, 1)).await;
    wait_for("a crash for unhealthiness", LIMIT, || async {
        rows(&c).await.iter().any(|r| r.crash_count >= 1)
    })
    .await;
    let row = rows(&c).await.remove(0);
    assert!(
        row.crash_reason.starts_with("Instance became unhealthy"),
        "{}",
        row.crash_reason
    );
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn updating_routes_does_not_restart_instances() {
    let (c, _b) = cluster(1).await;
    c.bbs().desire_lrp(web(2)).await.unwrap();
    wait_for("2 RUNNING", LIMIT, || running(&c, 2)).await;
    let before: Vec<_> = rows(&c)
        .await
        .iter()
        .map(|r| r.instance_guid().cloned())
        .collect();
    c.bbs()
        .update_desired_lrp(
            &ProcessGuid::new("web"),
            DesiredLrpUpdate {
                routes: Some(Routes::http(&["web.example"], 8080)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after: Vec<_> = rows(&c)
        .await
        .iter()
        .map(|r| r.instance_guid().cloned())
        .collect();
    assert_eq!(before, after, "same instances, no restart");
    assert!(running(&c, 2).await);
    let d = c
        .bbs()
        .desired_lrp_by_process_guid(&ProcessGuid::new("web"))
        .await
        .unwrap();
    assert_eq!(
        d.scheduling_info.routes.http_routes().unwrap()[0].hostnames,
        ["web.example"]
    );
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_restarted_rep_loses_nothing() {
    let (c, _b) = cluster(1).await;
    c.bbs().desire_lrp(web(2)).await.unwrap();
    wait_for("2 RUNNING", LIMIT, || running(&c, 2)).await;
    let id = c.cell_ids()[0].clone();
    let rep = c.reps().get(&id).unwrap();
    // A RUNNING row whose container vanished is removed by the next reconciliation;
    // convergence then recreates and places the instance.
    let victim = rows(&c)
        .await
        .into_iter()
        .find(|r| r.key.index == 1)
        .unwrap();
    let guid = diego_executor::rep::container_guid(
        &victim.key.process_guid,
        victim.instance_guid().unwrap(),
    );
    rep.executor().delete(&guid).await.unwrap();
    rep.reconcile().await;
    wait_for("the instance back", LIMIT, || running(&c, 2)).await;
    let back = rows(&c)
        .await
        .into_iter()
        .find(|r| r.key.index == 1)
        .unwrap();
    assert_ne!(back.instance_guid(), victim.instance_guid());
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_setup_failure_rejects_the_task_which_runs_on_a_later_try() {
    let (c, backends) = cluster(1).await;
    backends.lock()[0].fail_next(diego_garden::FakeOperation::Create, 1);
    c.bbs()
        .desire_task(task("retry", "/bin/task"))
        .await
        .unwrap();
    wait_for("a rejection", LIMIT, || async {
        c.bbs()
            .task_by_guid(&TaskGuid::new("retry"))
            .await
            .map(|t| t.rejection_count == 1)
            .unwrap_or(false)
    })
    .await;
    let t = c.bbs().task_by_guid(&TaskGuid::new("retry")).await.unwrap();
    assert!(
        t.rejection_reason.starts_with("failed to create container"),
        "{}",
        t.rejection_reason
    );
    // Convergence auctions it again; this time it runs.
    wait_for("completed", LIMIT, || async {
        c.bbs()
            .task_by_guid(&TaskGuid::new("retry"))
            .await
            .map(|t| t.state == TaskState::Completed && !t.failed)
            .unwrap_or(false)
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_running_task_deletes_its_container() {
    let (c, _b) = cluster(1).await;
    c.bbs()
        .desire_task(task("long", "/bin/forever"))
        .await
        .unwrap();
    wait_for("running", LIMIT, || async {
        c.bbs()
            .task_by_guid(&TaskGuid::new("long"))
            .await
            .map(|t| t.state == TaskState::Running)
            .unwrap_or(false)
    })
    .await;
    let rep = c.reps().get(&c.cell_ids()[0]).unwrap();
    wait_for("the container running", LIMIT, || async {
        !rep.executor().list().is_empty()
    })
    .await;
    c.bbs().cancel_task(&TaskGuid::new("long")).await.unwrap();
    wait_for("the container gone", LIMIT, || async {
        rep.executor().list().is_empty()
    })
    .await;
    let t = c.bbs().task_by_guid(&TaskGuid::new("long")).await.unwrap();
    assert_eq!(
        (t.state, t.failure_reason.as_str()),
        (TaskState::Completed, "task was cancelled")
    );
    c.shutdown().await;
}
