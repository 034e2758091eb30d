//! Convergence (SPEC.md, LRP and task convergence), under paused tokio time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use std::sync::Arc;
use std::time::Duration;

use common::{ik, key, lrp, net, task_request};
use diego_core::bbs::auctioneer_client::RecordingAuctioneer;
use diego_core::bbs::completion_callback::RecordingCallback;
use diego_core::bbs::rep_client::{RecordingRepClient, RepCall};
use diego_core::convergence::{
    ConvergenceConfig, Converger, CELL_DISAPPEARED, NOT_STARTED_IN_TIME,
};
use diego_core::store::{ActualLrpFilter, Precondition, Record, WriteBatch};
use diego_core::*;
use tokio::time::advance;
use tokio_util::sync::CancellationToken;

struct World {
    bbs: Bbs,
    converger: Arc<Converger>,
    auctioneer: Arc<RecordingAuctioneer>,
    reps: Arc<RecordingRepClient>,
    callback: Arc<RecordingCallback>,
}

fn world() -> World {
    let auctioneer = Arc::new(RecordingAuctioneer::new());
    let reps = Arc::new(RecordingRepClient::new());
    let callback = Arc::new(RecordingCallback::new());
    let bbs = Bbs::builder()
        .clock(Arc::new(TokioClock::new()))
        .auctioneer(auctioneer.clone())
        .rep_client(reps.clone())
        .completion_callback(callback.clone())
        .build();
    let converger = Arc::new(Converger::builder(bbs.clone()).build());
    World {
        bbs,
        converger,
        auctioneer,
        reps,
        callback,
    }
}

impl World {
    async fn cell(&self, id: &str) {
        self.bbs
            .register_cell(&CellPresence {
                cell_id: CellId::new(id),
                rep_address: format!("{id}:1800"),
                capacity: CellCapacity {
                    memory_mb: 4096,
                    disk_mb: 4096,
                    containers: 100,
                },
                ..Default::default()
            })
            .await
            .unwrap();
    }

    async fn rows(&self) -> Vec<Arc<ActualLrp>> {
        self.bbs
            .actual_lrps(&ActualLrpFilter::default())
            .await
            .unwrap()
    }

    async fn row(&self, pg: &str, index: i32, presence: Presence) -> Option<Arc<ActualLrp>> {
        self.rows()
            .await
            .into_iter()
            .find(|r| r.key.process_guid == pg && r.key.index == index && r.presence == presence)
    }

    async fn running(
        &self,
        pg: &str,
        index: i32,
        instance: &str,
        cell: &str,
    ) -> ActualLrpInstanceKey {
        let a = ik(instance, cell);
        self.bbs
            .claim_actual_lrp(&key(pg, index), &a)
            .await
            .unwrap();
        self.bbs
            .start_actual_lrp(&key(pg, index), &a, &net(61000), true)
            .await
            .unwrap();
        a
    }

    async fn converge(&self) -> ConvergenceReport {
        self.converger.converge_once().await.unwrap()
    }

    fn auctioned(&self) -> Vec<(ProcessGuid, i32)> {
        let mut v: Vec<_> = self
            .auctioneer
            .take_lrp_requests()
            .into_iter()
            .flat_map(|r| {
                r.indices
                    .into_iter()
                    .map(move |i| (r.process_guid.clone(), i))
            })
            .collect();
        v.sort();
        v
    }

    async fn put(&self, row: ActualLrp) {
        let mut b = WriteBatch::new();
        b.put(Record::actual_lrp(row), Precondition::Absent);
        self.bbs.store().write(b).await.unwrap();
    }
}

fn pg(s: &str) -> ProcessGuid {
    ProcessGuid::new(s)
}

#[tokio::test(start_paused = true)]
async fn missing_instances_are_created_and_auctioned_fresh_domain_or_not() {
    let w = world();
    w.bbs.desire_lrp(lrp("web", 3)).await.unwrap();
    w.auctioned();
    let row = w.row("web", 1, Presence::Ordinary).await.unwrap();
    w.bbs.delete_actual_lrp_row(&row).await.unwrap();
    let report = w.converge().await;
    assert_eq!(report.missing, 1);
    assert!(w.row("web", 1, Presence::Ordinary).await.is_some());
    assert_eq!(w.auctioned(), [(pg("web"), 1)]);
    let report = w.converge().await;
    assert_eq!(report.missing, 0, "nothing left to do");
}

#[tokio::test(start_paused = true)]
async fn extra_instances_are_retired_only_while_the_domain_is_fresh() {
    let w = world();
    w.cell("c1").await;
    w.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    // A cell reports an instance at index 3 (no row there): the start creates it.
    let extra = ik("x", "c1");
    w.bbs
        .start_actual_lrp(&key("web", 3), &extra, &net(1), true)
        .await
        .unwrap();
    let report = w.converge().await;
    assert_eq!(report.extra, 0, "not while the domain is not fresh");
    assert!(w.reps.take_calls().is_empty());
    w.bbs
        .upsert_domain("apps", Duration::from_secs(120))
        .await
        .unwrap();
    let report = w.converge().await;
    assert_eq!(report.extra, 1);
    assert_eq!(
        w.reps.take_calls(),
        [RepCall::StopLrpInstance {
            cell_id: CellId::new("c1"),
            key: key("web", 3),
            instance_key: extra
        }]
    );
    // The domain expires: it is pruned first, and extras are left alone again.
    advance(Duration::from_secs(121)).await;
    w.cell("c1").await;
    let report = w.converge().await;
    assert_eq!(report.pruned_domains, 1);
    assert_eq!(report.extra, 0);
    assert!(w.bbs.all_domains().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn stale_unclaimed_instances_are_auctioned_again_after_30s() {
    let w = world();
    w.bbs.desire_lrp(lrp("web", 2)).await.unwrap();
    w.auctioned();
    advance(Duration::from_secs(30)).await;
    assert_eq!(w.converge().await.stale_unclaimed, 0);
    advance(Duration::from_secs(1)).await;
    assert_eq!(w.converge().await.stale_unclaimed, 2);
    assert_eq!(w.auctioned(), [(pg("web"), 0), (pg("web"), 1)]);
}

#[tokio::test(start_paused = true)]
async fn the_full_crash_schedule() {
    let w = world();
    w.cell("c1").await;
    w.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    let mut n = 0;
    // Crashes 1 and 2 restart at once.
    for _ in 0..2 {
        n += 1;
        let a = w.running("web", 0, &format!("i{n}"), "c1").await;
        w.bbs
            .crash_actual_lrp(&key("web", 0), &a, "boom")
            .await
            .unwrap();
        assert_eq!(
            w.row("web", 0, Presence::Ordinary).await.unwrap().state,
            ActualLrpState::Unclaimed
        );
    }
    let schedule = [30u64, 60, 120, 240, 480, 960, 960, 960];
    for wait in schedule {
        n += 1;
        let a = w.running("web", 0, &format!("i{n}"), "c1").await;
        w.bbs
            .crash_actual_lrp(&key("web", 0), &a, "boom")
            .await
            .unwrap();
        let row = w.row("web", 0, Presence::Ordinary).await.unwrap();
        assert_eq!((row.state, row.crash_count), (ActualLrpState::Crashed, n));
        w.auctioned();
        advance(Duration::from_secs(wait - 1)).await;
        w.cell("c1").await;
        let report = w.converge().await;
        assert_eq!(report.crashed_restarted, 0, "crash {n} must wait {wait}s");
        advance(Duration::from_secs(1)).await;
        let report = w.converge().await;
        assert_eq!(
            report.crashed_restarted, 1,
            "crash {n} restarts after {wait}s"
        );
        assert_eq!(
            w.row("web", 0, Presence::Ordinary).await.unwrap().state,
            ActualLrpState::Unclaimed
        );
        assert_eq!(w.auctioned(), [(pg("web"), 0)]);
    }
    // Crash 200 is never restarted.
    let row = w.row("web", 0, Presence::Ordinary).await.unwrap();
    let mut at_199 = ActualLrp::clone(&row);
    at_199.crash_count = 199;
    at_199.state = ActualLrpState::Claimed;
    at_199.instance_key = Some(ik("last", "c1"));
    at_199.modification_tag = row.modification_tag.incremented();
    let mut b = WriteBatch::new();
    b.put(
        Record::actual_lrp(at_199),
        Precondition::Tag(row.modification_tag.clone()),
    );
    w.bbs.store().write(b).await.unwrap();
    w.bbs
        .crash_actual_lrp(&key("web", 0), &ik("last", "c1"), "boom")
        .await
        .unwrap();
    advance(Duration::from_secs(7 * 24 * 3600)).await;
    w.cell("c1").await;
    assert_eq!(w.converge().await.crashed_restarted, 0);
    let row = w.row("web", 0, Presence::Ordinary).await.unwrap();
    assert_eq!((row.state, row.crash_count), (ActualLrpState::Crashed, 200));
}

#[tokio::test(start_paused = true)]
async fn a_lost_cell_makes_suspects_and_replacements_which_end_them() {
    let w = world();
    w.cell("c1").await;
    w.cell("c2").await;
    w.bbs.desire_lrp(lrp("web", 2)).await.unwrap();
    let a0 = w.running("web", 0, "a0", "c1").await;
    let a1 = w.running("web", 1, "a1", "c1").await;
    w.auctioned();
    // c1 stops renewing; c2 goes on.
    advance(Duration::from_secs(16)).await;
    w.cell("c2").await;
    let report = w.converge().await;
    assert_eq!(report.suspected, 2);
    assert_eq!(report.missing_cells, 1);
    for (i, a) in [(0, &a0), (1, &a1)] {
        let suspect = w
            .row("web", i, Presence::Suspect)
            .await
            .expect("a SUSPECT row");
        assert_eq!(suspect.instance_key.as_ref(), Some(a));
        assert_eq!(suspect.state, ActualLrpState::Running);
        let ord = w.row("web", i, Presence::Ordinary).await.unwrap();
        assert_eq!(ord.state, ActualLrpState::Unclaimed);
        assert_ne!(ord.modification_tag.epoch, suspect.modification_tag.epoch);
    }
    assert_eq!(w.auctioned(), [(pg("web"), 0), (pg("web"), 1)]);
    // A second pass changes nothing: the suspects wait for their replacements.
    let report = w.converge().await;
    assert_eq!(report.suspected, 0);
    assert_eq!(report.suspect_running, 2);
    // A replacement runs: the suspect of its index goes.
    w.running("web", 0, "b0", "c2").await;
    assert!(w.row("web", 0, Presence::Suspect).await.is_none());
    // Convergence removes a suspect whose index has a RUNNING row (a start missed it).
    let mut stray = ActualLrp::clone(&w.row("web", 1, Presence::Suspect).await.unwrap());
    stray.key.index = 0;
    stray.modification_tag = ModificationTag::fresh();
    w.put(stray).await;
    let report = w.converge().await;
    assert_eq!(report.suspect_removed, 1);
    assert!(w.row("web", 0, Presence::Suspect).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_returning_cell_gets_its_suspect_back_and_the_replacement_is_dropped() {
    let w = world();
    w.cell("c1").await;
    w.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    let a = w.running("web", 0, "a", "c1").await;
    advance(Duration::from_secs(16)).await;
    assert_eq!(w.converge().await.suspected, 1);
    // The replacement got claimed elsewhere but is not running yet; c1 comes back.
    w.bbs
        .claim_actual_lrp(&key("web", 0), &ik("b", "c2"))
        .await
        .unwrap();
    w.cell("c1").await;
    let report = w.converge().await;
    assert_eq!(report.suspect_promoted, 1);
    assert!(w.row("web", 0, Presence::Suspect).await.is_none());
    let ord = w.row("web", 0, Presence::Ordinary).await.unwrap();
    assert_eq!(
        (ord.state, ord.instance_key.as_ref()),
        (ActualLrpState::Running, Some(&a))
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_cell_with_an_existing_suspect_is_simply_unclaimed() {
    let w = world();
    w.cell("c1").await;
    w.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    w.running("web", 0, "a", "c1").await;
    advance(Duration::from_secs(16)).await;
    w.cell("c2").await;
    assert_eq!(w.converge().await.suspected, 1);
    // The replacement lands on c2, which is then lost before it runs.
    w.bbs
        .claim_actual_lrp(&key("web", 0), &ik("b", "c2"))
        .await
        .unwrap();
    advance(Duration::from_secs(16)).await;
    let report = w.converge().await;
    assert_eq!(report.suspected, 1);
    let ord = w.row("web", 0, Presence::Ordinary).await.unwrap();
    assert_eq!(ord.state, ActualLrpState::Unclaimed);
    assert!(
        w.row("web", 0, Presence::Suspect).await.is_some(),
        "the first suspect stays"
    );
}

#[tokio::test(start_paused = true)]
async fn orphans_are_retired_only_in_fresh_domains_and_lost_evacuating_rows_go() {
    let w = world();
    w.cell("c1").await;
    w.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    w.running("web", 0, "a", "c1").await;
    // Remove the DesiredLRP's record only (as if its client deleted it while the cell was away).
    let mut b = WriteBatch::new();
    b.delete(store::RecordKey::DesiredLrp(pg("web")), Precondition::None);
    w.bbs.store().write(b).await.unwrap();
    assert_eq!(w.converge().await.orphans, 0);
    w.bbs.upsert_domain("apps", Duration::ZERO).await.unwrap();
    assert_eq!(w.converge().await.orphans, 1);
    assert!(matches!(
        &w.reps.take_calls()[..],
        [RepCall::StopLrpInstance { .. }]
    ));

    // An EVACUATING row whose cell vanished is deleted.
    let w = world();
    w.cell("c9").await;
    w.bbs.desire_lrp(lrp("api", 1)).await.unwrap();
    let old = w.running("api", 0, "old", "c9").await;
    assert!(w
        .bbs
        .evacuate_running_actual_lrp(&key("api", 0), &old, &net(1))
        .await
        .unwrap());
    advance(Duration::from_secs(16)).await;
    let report = w.converge().await;
    assert_eq!(report.evacuating_removed, 1);
    assert!(w.row("api", 0, Presence::Evacuating).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn every_task_rule() {
    let w = world();
    w.cell("c1").await;
    let with_cb = |g: &str| {
        let mut r = task_request(g);
        r.task_definition.completion_callback_url = "http://cc/done".into();
        r
    };
    // Old pending task.
    w.bbs
        .desire_task(task_request("old-pending"))
        .await
        .unwrap();
    advance(Duration::from_secs(29 * 60)).await;
    w.cell("c1").await;
    // Young pending task, a running task on c1, one on a lost cell.
    w.bbs.desire_task(task_request("pending")).await.unwrap();
    w.bbs.desire_task(task_request("on-c1")).await.unwrap();
    w.bbs
        .start_task(&TaskGuid::new("on-c1"), &CellId::new("c1"))
        .await
        .unwrap();
    w.bbs.desire_task(task_request("on-lost")).await.unwrap();
    w.bbs
        .start_task(&TaskGuid::new("on-lost"), &CellId::new("gone"))
        .await
        .unwrap();
    // A completed task to expire and one whose callback must be resent.
    w.bbs
        .desire_task(task_request("done-long-ago"))
        .await
        .unwrap();
    w.bbs
        .fail_task(&TaskGuid::new("done-long-ago"), "x")
        .await
        .unwrap();
    w.bbs
        .desire_task(task_request("stuck-resolving"))
        .await
        .unwrap();
    w.bbs
        .fail_task(&TaskGuid::new("stuck-resolving"), "x")
        .await
        .unwrap();
    w.bbs
        .resolving_task(&TaskGuid::new("stuck-resolving"))
        .await
        .unwrap();
    advance(Duration::from_secs(91)).await;
    w.cell("c1").await;
    w.callback.script(vec![
        diego_core::bbs::completion_callback::Delivery::GiveUp("down".into()),
    ]);
    w.bbs.desire_task(with_cb("cb")).await.unwrap();
    w.bbs.fail_task(&TaskGuid::new("cb"), "x").await.unwrap();
    tokio::task::yield_now().await;
    // The callback gave up: the task sits in Resolving. Let time pass.
    advance(Duration::from_secs(31)).await;
    w.cell("c1").await;
    w.auctioneer.take_task_requests();

    let report = w.converge().await;
    let t = |g: &str| {
        let bbs = w.bbs.clone();
        let g = TaskGuid::new(g);
        async move { bbs.task_by_guid(&g).await }
    };
    let expired = t("old-pending").await.unwrap();
    assert_eq!(
        (expired.state, expired.failure_reason.as_str()),
        (TaskState::Completed, NOT_STARTED_IN_TIME)
    );
    let lost = t("on-lost").await.unwrap();
    assert_eq!(
        (lost.state, lost.failure_reason.as_str()),
        (TaskState::Completed, CELL_DISAPPEARED)
    );
    assert_eq!(t("on-c1").await.unwrap().state, TaskState::Running);
    assert!(
        t("done-long-ago").await.is_err(),
        "completed for over 120 s: deleted"
    );
    assert_eq!(
        t("stuck-resolving").await.unwrap().state,
        TaskState::Completed,
        "kicked back to Completed"
    );
    let auctioned: Vec<_> = w
        .auctioneer
        .take_task_requests()
        .into_iter()
        .map(|r| r.task_guid.to_string())
        .collect();
    assert_eq!(auctioned, ["pending"]);
    assert_eq!(report.tasks_failed, 2);
    assert_eq!(report.tasks_deleted, 1);
    assert!(report.tasks_kicked >= 2, "{report:?}");
    // The kicked callback task was resent and delivered: it is gone.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(
        t("cb").await.is_err(),
        "the resent callback was delivered and the task deleted"
    );
    assert_eq!(w.callback.attempts().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_converger_runs_every_interval_and_at_once_when_a_cell_expires() {
    let w = world();
    w.cell("c1").await;
    w.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    w.running("web", 0, "a", "c1").await;
    let cancel = CancellationToken::new();
    let converger = w.converger.clone();
    let handle = tokio::spawn({
        let cancel = cancel.clone();
        async move { converger.run(cancel).await }
    });
    // Delete the row: the next pass (at the 30 s tick) puts it back.
    tokio::task::yield_now().await;
    let row = w.row("web", 0, Presence::Ordinary).await.unwrap();
    w.bbs.delete_actual_lrp_row(&row).await.unwrap();
    w.cell("c1").await;
    advance(Duration::from_secs(10)).await;
    w.cell("c1").await;
    assert!(
        w.row("web", 0, Presence::Ordinary).await.is_none(),
        "no pass before the interval"
    );
    advance(Duration::from_secs(10)).await;
    w.cell("c1").await;
    advance(Duration::from_secs(11)).await;
    w.cell("c1").await;
    tokio::task::yield_now().await;
    assert!(
        w.row("web", 0, Presence::Ordinary).await.is_some(),
        "the 30 s pass repaired it"
    );

    // The instance runs on c1; c1 stops renewing: within a couple of seconds of its
    // expiry a pass makes it SUSPECT, long before the next 30 s tick.
    w.running("web", 0, "b", "c1").await;
    advance(Duration::from_secs(17)).await;
    tokio::task::yield_now().await;
    assert!(
        w.row("web", 0, Presence::Suspect).await.is_some(),
        "converged when the cell expired"
    );

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn repairs_planned_on_a_stale_snapshot_are_skipped() {
    let w = world();
    w.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    let stale = w.row("web", 0, Presence::Ordinary).await.unwrap();
    w.bbs
        .claim_actual_lrp(&key("web", 0), &ik("a", "c1"))
        .await
        .unwrap();
    assert!(matches!(
        w.bbs.unclaim_actual_lrp_row(&stale).await,
        Err(Error::ResourceConflict)
    ));
    assert!(matches!(
        w.bbs.suspect_actual_lrp_row(&stale).await,
        Err(Error::ResourceConflict)
    ));
    assert_eq!(
        w.row("web", 0, Presence::Ordinary).await.unwrap().state,
        ActualLrpState::Claimed
    );
    assert!(
        w.row("web", 0, Presence::Suspect).await.is_none(),
        "nothing half-written"
    );
}

#[test]
fn default_settings_are_diegos() {
    let c = ConvergenceConfig::default();
    assert_eq!(c.convergence_interval, Duration::from_secs(30));
    assert_eq!(c.lrp.stale_unclaimed_duration, Duration::from_secs(30));
    assert_eq!(
        c.task.expire_pending_task_duration,
        Duration::from_secs(1800)
    );
    assert_eq!(c.task.kick_task_duration, Duration::from_secs(30));
    assert_eq!(
        c.task.expire_completed_task_duration,
        Duration::from_secs(120)
    );
}

#[test]
fn planning_is_pure_and_names_each_repair() {
    use diego_core::convergence::{plan_lrp_convergence, LrpConvergenceConfig, LrpSnapshot};
    use std::collections::HashSet;

    let now = Timestamp(10_000_000_000_000);
    let info = {
        let mut d = lrp("web", 3).scheduling_info;
        d.domain = "apps".into();
        d
    };
    let row = |index: i32, state: ActualLrpState, presence: Presence, cell: Option<&str>| {
        let mut a = ActualLrp::unclaimed(key("web", index), now);
        a.state = state;
        a.presence = presence;
        a.instance_key = cell.map(|c| ik(&format!("i{index}{presence}"), c));
        if state == ActualLrpState::Running {
            a.net_info = Some(net(1));
        }
        Arc::new(a)
    };
    let snapshot = LrpSnapshot {
        desired: vec![info],
        actual: vec![
            // index 0 missing; index 1 running on a lost cell; index 2 fine; index 4 extra.
            row(1, ActualLrpState::Running, Presence::Ordinary, Some("lost")),
            row(2, ActualLrpState::Running, Presence::Ordinary, Some("live")),
            row(4, ActualLrpState::Running, Presence::Ordinary, Some("live")),
        ],
        domains: vec![Domain {
            name: "apps".into(),
            expires_at: None,
        }],
    };
    let live: HashSet<CellId> = [CellId::new("live")].into_iter().collect();
    let config = LrpConvergenceConfig::default();
    let plan = plan_lrp_convergence(&snapshot, now, &live, &config);
    let reasons: Vec<_> = plan.actions.iter().map(|a| a.reason()).collect();
    assert_eq!(reasons, ["on a lost cell", "extra", "missing"]);
    assert_eq!(plan.missing_instances(), 1);
    assert_eq!(plan.counts.running, 3);
    assert_eq!(plan.counts.missing_cells, 1);
    assert_eq!(
        plan,
        plan_lrp_convergence(&snapshot, now, &live, &config),
        "deterministic"
    );
}

/// A store that notes how many convergence snapshots are being read at once (each read
/// of the scheduling infos takes a while). It has no lock of its own: the BBS's cell
/// presences then live on an in-process lock.
#[derive(Debug, Default)]
struct SlowSnapshotStore {
    inner: MemoryStore,
    reading: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl diego_core::store::Store for SlowSnapshotStore {
    async fn task(&self, guid: &TaskGuid) -> Result<Option<Task>> {
        self.inner.task(guid).await
    }
    async fn tasks(&self, f: &diego_core::store::TaskFilter) -> Result<Vec<Task>> {
        self.inner.tasks(f).await
    }
    async fn desired_lrp(&self, guid: &ProcessGuid) -> Result<Option<DesiredLrp>> {
        self.inner.desired_lrp(guid).await
    }
    async fn desired_lrps(
        &self,
        f: &diego_core::store::DesiredLrpFilter,
    ) -> Result<Vec<DesiredLrp>> {
        self.inner.desired_lrps(f).await
    }
    async fn scheduling_infos(
        &self,
        f: &diego_core::store::DesiredLrpFilter,
    ) -> Result<Vec<SchedulingInfo>> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.reading.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.reading.fetch_sub(1, SeqCst);
        self.inner.scheduling_infos(f).await
    }
    async fn actual_lrps(&self, f: &ActualLrpFilter) -> Result<Vec<Arc<ActualLrp>>> {
        self.inner.actual_lrps(f).await
    }
    async fn domains(&self) -> Result<Vec<Domain>> {
        self.inner.domains().await
    }
    async fn cell_presences(&self) -> Result<Vec<diego_core::store::CellPresenceRecord>> {
        self.inner.cell_presences().await
    }
    async fn write(&self, batch: WriteBatch) -> Result<()> {
        self.inner.write(batch).await
    }
}

#[tokio::test(start_paused = true)]
async fn never_two_passes_at_a_time() {
    let store = Arc::new(SlowSnapshotStore::default());
    let bbs = Bbs::builder()
        .store(store.clone())
        .clock(Arc::new(TokioClock::new()))
        .build();
    let converger = Arc::new(Converger::builder(bbs).build());
    // Four passes asked for at once (the interval, a lost cell, two callers).
    let passes = (0..4).map(|_| {
        let c = converger.clone();
        tokio::spawn(async move { c.converge_once().await })
    });
    for pass in futures::future::join_all(passes).await {
        pass.unwrap().unwrap();
    }
    assert_eq!(
        store.most.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "two convergence passes read their snapshots at the same time"
    );
}
