//! A whole cluster on ProcessBackend cells, with real processes: tasks with a result
//! file, a failing task, the fixture app as an LRP behind an HTTP health check, and a
//! crash that restarts.
#![cfg(feature = "fixture-app")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::wait_for;
use std::sync::Arc;
use std::time::Duration;

use diego_core::store::ActualLrpFilter;
use diego_core::*;
use diego_executor::cluster::BackendFactory;
use diego_executor::Cluster;
use diego_garden::{ContainerBackend, ProcessBackend};

/// How long a test waits for what it expects.
const LIMIT: Duration = Duration::from_secs(90);

async fn cluster(name: &str) -> (Cluster, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("diego-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let base = dir.clone();
    let factory: BackendFactory = Arc::new(move |id| {
        Ok(Arc::new(ProcessBackend::new(base.join(id.as_str()))?) as Arc<dyn ContainerBackend>)
    });
    let c = Cluster::builder(factory)
        .cells(2)
        .executor_config(|c| c.with_apply_action_user(false))
        .start()
        .await
        .unwrap();
    (c, dir)
}

fn shell_task(guid: &str, script: &str) -> DesireTaskRequest {
    let mut run = RunAction::new("/bin/sh", "vcap").with_args(["-c", script]);
    run.dir = "/".into();
    let mut def = TaskDefinition::new("preloaded:cflinuxfs4", run);
    def.result_file = "/result.txt".into();
    DesireTaskRequest {
        task_guid: TaskGuid::new(guid),
        domain: "tasks".into(),
        task_definition: def,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_with_a_result_file_and_a_failure() {
    let (c, dir) = cluster("tasks").await;
    c.bbs()
        .desire_task(shell_task("writes", "printf 42 > result.txt"))
        .await
        .unwrap();
    c.bbs()
        .desire_task(shell_task("fails", "exit 3"))
        .await
        .unwrap();
    for g in ["writes", "fails"] {
        wait_for(g, LIMIT, || async {
            c.bbs()
                .task_by_guid(&TaskGuid::new(g))
                .await
                .map(|t| t.state == TaskState::Completed)
                .unwrap_or(false)
        })
        .await;
    }
    let ok = c
        .bbs()
        .task_by_guid(&TaskGuid::new("writes"))
        .await
        .unwrap();
    assert!(!ok.failed, "{}", ok.failure_reason);
    assert_eq!(ok.result, "42");
    let bad = c.bbs().task_by_guid(&TaskGuid::new("fails")).await.unwrap();
    assert!(bad.failed);
    assert_eq!(bad.failure_reason, "TASK: Exited with status 3");
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

fn fixture_lrp(instances: i32) -> DesiredLrp {
    let mut d = DesiredLrp::new(
        "fixture",
        "apps",
        "preloaded:cflinuxfs4",
        instances,
        RunAction::new(env!("CARGO_BIN_EXE_diego-fixture-app"), "vcap"),
    );
    d.scheduling_info.memory_mb = 64;
    d.run_info.ports = vec![8080];
    d.run_info.check_definition = Some(CheckDefinition {
        checks: vec![Check::http(8080, "/ping")],
        ..Default::default()
    });
    d
}

async fn running(c: &Cluster) -> Vec<Arc<ActualLrp>> {
    c.bbs()
        .actual_lrps(&ActualLrpFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.state == ActualLrpState::Running && r.presence == Presence::Ordinary)
        .collect()
}

fn url_of(row: &ActualLrp, path: &str) -> String {
    let net = row.net_info.as_ref().unwrap();
    format!("http://{}:{}{path}", net.address, net.ports[0].host_port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_app_runs_behind_its_health_check_and_comes_back_after_a_crash() {
    let (c, dir) = cluster("lrp").await;
    c.bbs().desire_lrp(fixture_lrp(3)).await.unwrap();
    wait_for("3 RUNNING", LIMIT, || async {
        running(&c).await.len() == 3
    })
    .await;
    let http = reqwest::Client::new();
    let rows = running(&c).await;
    let mut indices = Vec::new();
    for row in &rows {
        let body = http
            .get(url_of(row, "/index"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        indices.push(body.parse::<i32>().unwrap());
    }
    indices.sort();
    assert_eq!(indices, [0, 1, 2], "each instance knows its index");

    // Instance 0 exits 1: it is restarted at once, with a new instance guid.
    let victim = rows.iter().find(|r| r.key.index == 0).unwrap().clone();
    let _ = http.post(url_of(&victim, "/exit/1")).send().await;
    wait_for("instance 0 back", LIMIT, || async {
        running(&c).await.iter().any(|r| {
            r.key.index == 0 && r.crash_count == 1 && r.instance_guid() != victim.instance_guid()
        })
    })
    .await;
    let row = running(&c)
        .await
        .into_iter()
        .find(|r| r.key.index == 0)
        .unwrap();
    assert!(
        row.crash_reason.contains("Exited with status 1"),
        "{}",
        row.crash_reason
    );
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A cluster with short timings, so lost cells and evacuation play out in seconds.
async fn quick_cluster(name: &str, cells: usize) -> (Cluster, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("diego-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let base = dir.clone();
    let factory: BackendFactory = Arc::new(move |id| {
        Ok(Arc::new(ProcessBackend::new(base.join(id.as_str()))?) as Arc<dyn ContainerBackend>)
    });
    let c = Cluster::builder(factory)
        .cells(cells)
        .executor_config(|c| c.with_apply_action_user(false))
        .bbs_config(BbsConfig::default().with_cell_presence_ttl(Duration::from_secs(3)))
        .convergence_config(
            diego_core::ConvergenceConfig::default()
                .with_convergence_interval(Duration::from_secs(2)),
        )
        .rep_config(|r| {
            r.with_presence_renew_interval(Duration::from_secs(1))
                .with_evacuation_polling_interval(Duration::from_millis(200))
        })
        .start()
        .await
        .unwrap();
    (c, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_a_killed_cell_and_evacuation_with_real_processes() {
    let (c, dir) = quick_cluster("ops", 2).await;
    c.bbs().desire_lrp(fixture_lrp(3)).await.unwrap();
    wait_for("3 RUNNING", LIMIT, || async {
        running(&c).await.len() == 3
    })
    .await;

    // Scale 3 → 5 → 1.
    let scale = |n| DesiredLrpUpdate {
        instances: Some(n),
        ..Default::default()
    };
    c.bbs()
        .update_desired_lrp(&ProcessGuid::new("fixture"), scale(5))
        .await
        .unwrap();
    wait_for("5 RUNNING", LIMIT, || async {
        running(&c).await.len() == 5
    })
    .await;
    c.bbs()
        .update_desired_lrp(&ProcessGuid::new("fixture"), scale(1))
        .await
        .unwrap();
    wait_for("1 row left", LIMIT, || async {
        c.bbs()
            .actual_lrps(&ActualLrpFilter::default())
            .await
            .unwrap()
            .len()
            == 1
    })
    .await;
    c.bbs()
        .update_desired_lrp(&ProcessGuid::new("fixture"), scale(3))
        .await
        .unwrap();
    wait_for("3 RUNNING again", LIMIT, || async {
        running(&c).await.len() == 3
    })
    .await;

    // Evacuate a cell that runs something: every index stays served throughout.
    let rows = running(&c).await;
    let leaving = rows[0].cell_id().unwrap().clone();
    let watcher = common::cluster::fewest_served(c.bbs().clone(), 3, 100);
    c.evacuate_cell(&leaving).await.unwrap();
    wait_for("all RUNNING off the evacuated cell", LIMIT, || async {
        let rows = running(&c).await;
        rows.len() == 3 && rows.iter().all(|r| r.cell_id() != Some(&leaving))
    })
    .await;
    assert_eq!(
        watcher.await.unwrap(),
        3,
        "an index went without a RUNNING instance"
    );

    // Add a cell, then kill the one running everything: instances move to the new one.
    c.add_cell().await.unwrap();
    let victim = running(&c).await[0].cell_id().unwrap().clone();
    c.kill_cell(&victim).await.unwrap();
    wait_for("3 RUNNING on the surviving cell", LIMIT, || async {
        let rows = running(&c).await;
        rows.len() == 3 && rows.iter().all(|r| r.cell_id() != Some(&victim))
    })
    .await;
    c.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
