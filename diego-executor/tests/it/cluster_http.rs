//! A whole cluster whose auctioneer and BBS reach the cells only over HTTP
//! ([`RepTransport::Http`]): FakeBackend cells, each serving its rep's API on
//! 127.0.0.1. Real sockets, so real time (with generous limits).
#![cfg(feature = "http")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::wait_for;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use diego_core::store::ActualLrpFilter;
use diego_core::*;
use diego_executor::cluster::BackendFactory;
use diego_executor::{Cluster, RepTransport};
use diego_garden::{ContainerBackend, FakeBackend, FakeScript, FakeStep};

const LIMIT: Duration = Duration::from_secs(30);

fn fake_backends() -> BackendFactory {
    Arc::new(move |_id| {
        let b = FakeBackend::new();
        common::cluster::app_and_task_programs(&b);
        b.set_program("/bin/forever", |_| {
            FakeScript::new().then(FakeStep::Forever)
        });
        Ok(Arc::new(b) as Arc<dyn ContainerBackend>)
    })
}

fn lrp(guid: &str, instances: i32) -> DesiredLrp {
    let mut d = DesiredLrp::new(
        guid,
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

async fn running(c: &Cluster, guid: &str) -> Vec<Arc<ActualLrp>> {
    c.bbs()
        .actual_lrps(&ActualLrpFilter::process(&ProcessGuid::new(guid)))
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.presence == Presence::Ordinary && r.state == ActualLrpState::Running)
        .collect()
}

fn containers(c: &Cluster) -> usize {
    c.cell_ids()
        .iter()
        .filter_map(|id| c.reps().get(id))
        .map(|rep| rep.executor().list().len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auctioneer_and_the_bbs_reach_cells_only_over_http() {
    let c = Cluster::builder(fake_backends())
        .cells(2)
        .rep_transport(RepTransport::Http)
        .start()
        .await
        .unwrap();
    let cells = c.bbs().cells().await.unwrap();
    assert_eq!(cells.len(), 2);
    for p in &cells {
        assert!(p.rep_url.starts_with("http://127.0.0.1:"), "{p:?}");
        assert_eq!(format!("http://{}", p.rep_address), p.rep_url);
    }
    // Keep handles on the reps to look at their containers, then make them unreachable
    // in-process: from now on only HTTP reaches them.
    let reps: Vec<_> = c
        .cell_ids()
        .iter()
        .filter_map(|id| c.reps().get(id))
        .collect();
    assert_eq!(reps.len(), 2);
    for id in c.cell_ids() {
        c.reps().remove(&id);
    }
    let containers = || {
        reps.iter()
            .map(|r| r.executor().list().len())
            .sum::<usize>()
    };

    c.bbs().desire_lrp(lrp("web", 4)).await.unwrap();
    wait_for("4 RUNNING", LIMIT, || async {
        running(&c, "web").await.len() == 4
    })
    .await;
    let on: HashSet<_> = running(&c, "web")
        .await
        .iter()
        .filter_map(|r| r.cell_id().cloned())
        .collect();
    assert_eq!(on.len(), 2, "spread over both cells");

    // Tasks: one completes with its result; one is cancelled through the rep's API.
    c.bbs().desire_task(task("ok", "/bin/task")).await.unwrap();
    c.bbs()
        .desire_task(task("long", "/bin/forever"))
        .await
        .unwrap();
    wait_for("the task completed", LIMIT, || async {
        c.bbs()
            .task_by_guid(&TaskGuid::new("ok"))
            .await
            .is_ok_and(|t| t.state == TaskState::Completed && t.result == "42" && !t.failed)
    })
    .await;
    wait_for("the long task running", LIMIT, || async {
        c.bbs()
            .task_by_guid(&TaskGuid::new("long"))
            .await
            .is_ok_and(|t| t.state == TaskState::Running)
    })
    .await;
    c.bbs().cancel_task(&TaskGuid::new("long")).await.unwrap();
    wait_for("only the 4 instances left", LIMIT, || async {
        containers() == 4
    })
    .await;

    // Removing the LRP stops every instance through the reps' APIs.
    c.bbs()
        .remove_desired_lrp(&ProcessGuid::new("web"))
        .await
        .unwrap();
    wait_for("every container gone", LIMIT, || async {
        containers() == 0
    })
    .await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_cell_is_left_out_of_the_auction() {
    let c = Cluster::builder(fake_backends())
        .cells(2)
        .rep_transport(RepTransport::Http)
        .start()
        .await
        .unwrap();
    let ids = c.cell_ids();
    // Its server is gone but its presence lives on (until its TTL): the auction fails
    // to reach it and places everything on the other cell.
    c.kill_cell(&ids[0]).await.unwrap();
    assert_eq!(c.bbs().cells().await.unwrap().len(), 2);
    c.bbs().desire_lrp(lrp("api", 3)).await.unwrap();
    wait_for("3 RUNNING on the live cell", LIMIT, || async {
        let rows = running(&c, "api").await;
        rows.len() == 3 && rows.iter().all(|r| r.cell_id() == Some(&ids[1]))
    })
    .await;
    assert_eq!(containers(&c), 3);
    c.shutdown().await;
}
