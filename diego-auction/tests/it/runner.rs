//! The auction runner against fake in-memory cells and a real BBS on `MemoryStore`,
//! with paused tokio time.

// Test helpers outside `#[test]` functions: a poisoned lock or a failed BBS call is a
// test failure.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use diego_auction::{AuctionRunner, CellClient, CellRegistry, Error, RunnerConfig, Work};
use diego_core::prelude::*;
use diego_core::{
    ActualLrp, AuctioneerClient, Bbs, CellCapacity, CellPresence, CellState, DesireTaskRequest,
    DesiredLrp, LrpStartRequest, LrpSummary, PlacementConstraint, Resource, RootfsProviders,
    RunAction, TaskDefinition, TaskSummary,
};
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;

const ROOTFS: &str = "preloaded:cflinuxfs4";

/// How a fake cell behaves.
#[derive(Clone, Debug, Default)]
struct Behaviour {
    /// Time to answer a state fetch.
    state_delay: Duration,
    /// Time to perform work.
    perform_delay: Duration,
    /// Refuse every piece of work.
    refuse_all: bool,
    /// Answer state fetches with this cell id instead of its own.
    impostor: Option<String>,
    evacuating: bool,
}

/// A performed call: when it finished and what the cell was given.
#[derive(Clone, Debug)]
struct Performed {
    at: Instant,
    work: Work,
    /// The request id current in the perform call.
    request_id: Option<String>,
}

#[derive(Debug)]
struct FakeCell {
    id: String,
    state: Mutex<Arc<CellState>>,
    behaviour: Behaviour,
    performed: Mutex<Vec<Performed>>,
    state_calls: AtomicUsize,
}

impl FakeCell {
    fn new(id: &str, memory_mb: i32, behaviour: Behaviour) -> Arc<Self> {
        let cap = CellCapacity {
            memory_mb,
            disk_mb: 100_000,
            containers: 100,
        };
        Arc::new(FakeCell {
            id: id.into(),
            state: Mutex::new(Arc::new(CellState {
                cell_id: id.into(),
                zone: "z1".into(),
                available_resources: cap,
                total_resources: cap,
                rootfs_providers: RootfsProviders::preloaded_and_docker(&["cflinuxfs4"]),
                evacuating: behaviour.evacuating,
                ..Default::default()
            })),
            behaviour,
            performed: Mutex::new(Vec::new()),
            state_calls: AtomicUsize::new(0),
        })
    }

    fn presence(&self) -> CellPresence {
        let s = self.state.lock().unwrap();
        CellPresence {
            cell_id: self.id.as_str().into(),
            rep_address: format!("in-process:{}", self.id),
            zone: s.zone.clone(),
            capacity: s.total_resources,
            rootfs_providers: s.rootfs_providers.clone(),
            ..Default::default()
        }
    }

    fn performed(&self) -> Vec<Performed> {
        self.performed.lock().unwrap().clone()
    }

    /// `(process_guid, index)` of every LRP instance this cell was asked to start.
    fn offered_lrps(&self) -> Vec<(String, i32)> {
        let mut v: Vec<(String, i32)> = self
            .performed()
            .iter()
            .flat_map(|p| p.work.lrps.clone())
            .flat_map(|r| {
                r.indices
                    .iter()
                    .map(|&i| (r.process_guid.to_string(), i))
                    .collect::<Vec<_>>()
            })
            .collect();
        v.sort();
        v
    }

    /// LRP instances the cell runs.
    fn running(&self) -> usize {
        self.state.lock().unwrap().lrps.len()
    }

    fn offered_tasks(&self) -> Vec<String> {
        self.performed()
            .iter()
            .flat_map(|p| p.work.tasks.iter().map(|t| t.task_guid.to_string()))
            .collect()
    }
}

#[async_trait]
impl CellClient for FakeCell {
    async fn state(&self) -> diego_auction::Result<Arc<CellState>> {
        self.state_calls.fetch_add(1, Ordering::SeqCst);
        if !self.behaviour.state_delay.is_zero() {
            sleep(self.behaviour.state_delay).await;
        }
        let s = self.state.lock().unwrap().clone();
        Ok(match &self.behaviour.impostor {
            Some(id) => Arc::new(CellState {
                cell_id: id.as_str().into(),
                ..CellState::clone(&s)
            }),
            None => s,
        })
    }

    async fn perform(&self, work: Work) -> diego_auction::Result<Work> {
        if !self.behaviour.perform_delay.is_zero() {
            sleep(self.behaviour.perform_delay).await;
        }
        let mut refused = Work::new(work.cell_id.clone());
        if self.behaviour.refuse_all || work.cell_id.as_str() != self.id {
            refused.lrps = work.lrps.clone();
            refused.tasks = work.tasks.clone();
        } else {
            let mut guard = self.state.lock().unwrap();
            let s = Arc::make_mut(&mut guard);
            for r in &work.lrps {
                let mut no = LrpStartRequest {
                    indices: Vec::new(),
                    ..r.clone()
                };
                for &i in &r.indices {
                    if s.available_resources.memory_mb < r.resource.memory_mb {
                        no.indices.push(i);
                        continue;
                    }
                    s.available_resources.memory_mb -= r.resource.memory_mb;
                    s.available_resources.containers -= 1;
                    s.starting_container_count += 1;
                    s.lrps.push(LrpSummary {
                        key: diego_core::ActualLrpKey::new(r.process_guid.clone(), i, "apps"),
                        resource: r.resource,
                    });
                }
                if !no.indices.is_empty() {
                    refused.lrps.push(no);
                }
            }
            for t in &work.tasks {
                s.available_resources.memory_mb -= t.resource.memory_mb;
                s.available_resources.containers -= 1;
                s.tasks.push(TaskSummary {
                    task_guid: t.task_guid.clone(),
                    domain: t.domain.clone(),
                    resource: t.resource,
                });
            }
        }
        self.performed.lock().unwrap().push(Performed {
            at: Instant::now(),
            work,
            request_id: diego_core::request_id::current(),
        });
        Ok(refused)
    }
}

struct Harness {
    bbs: Arc<Bbs>,
    runner: AuctionRunner,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

fn config() -> RunnerConfig {
    RunnerConfig::default()
        .with_batch_window(Duration::from_millis(100))
        .with_cell_state_timeout(Duration::from_secs(1))
        .with_cell_state_attempts(4)
        .with_perform_timeout(Duration::from_secs(10))
        .with_max_retries(2)
}

async fn start(cells: &[Arc<FakeCell>], config: RunnerConfig) -> Harness {
    let runner = AuctionRunner::new();
    let bbs = Arc::new(Bbs::builder().auctioneer(Arc::new(runner.clone())).build());
    let registry = Arc::new(CellRegistry::new());
    for c in cells {
        bbs.register_cell(&c.presence()).await.unwrap();
        registry.register(c.id.as_str(), c.clone() as Arc<dyn CellClient>);
    }
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(
        runner
            .builder(bbs.clone(), registry)
            .config(config)
            .run(cancel.clone()),
    );
    Harness {
        bbs,
        runner,
        cancel,
        handle,
    }
}

impl Harness {
    async fn desire_lrp(&self, guid: &str, instances: i32, memory_mb: i32, rootfs: &str) {
        let mut d = DesiredLrp::new(
            guid,
            "apps",
            rootfs,
            instances,
            RunAction::new("/run", "vcap"),
        );
        d.scheduling_info.memory_mb = memory_mb;
        d.scheduling_info.disk_mb = 10;
        self.bbs.desire_lrp(d).await.unwrap();
    }

    async fn desire_task(&self, guid: &str, memory_mb: i32) {
        let mut def = TaskDefinition::new(ROOTFS, RunAction::new("/run", "vcap"));
        def.memory_mb = memory_mb;
        def.disk_mb = 10;
        self.bbs
            .desire_task(DesireTaskRequest {
                task_guid: guid.into(),
                domain: "tasks".into(),
                task_definition: def,
            })
            .await
            .unwrap();
    }

    async fn actual(&self, guid: &str) -> Vec<Arc<ActualLrp>> {
        let mut v = self
            .bbs
            .actual_lrps(&diego_core::store::ActualLrpFilter {
                process_guid: Some(guid.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        v.sort_by_key(|a| a.key.index);
        v
    }

    async fn placement_errors(&self, guid: &str) -> Vec<String> {
        self.actual(guid)
            .await
            .iter()
            .map(|a| a.placement_error.clone())
            .collect()
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.handle.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn placement_reaches_perform() {
    let cells = [
        FakeCell::new("cell-a", 4096, Behaviour::default()),
        FakeCell::new("cell-b", 4096, Behaviour::default()),
    ];
    let h = start(&cells, config()).await;
    h.desire_lrp("web", 2, 256, ROOTFS).await;
    h.desire_task("t1", 128).await;
    sleep(Duration::from_secs(1)).await;

    // One instance per cell (the same-process penalty), the task somewhere.
    assert_eq!(cells[0].offered_lrps().len(), 1);
    assert_eq!(cells[1].offered_lrps().len(), 1);
    let mut all: Vec<_> = cells.iter().flat_map(|c| c.offered_lrps()).collect();
    all.sort();
    assert_eq!(all, [("web".to_owned(), 0), ("web".to_owned(), 1)]);
    let tasks: Vec<_> = cells.iter().flat_map(|c| c.offered_tasks()).collect();
    assert_eq!(tasks, ["t1"]);
    // Each winner got work naming it, in one perform call (one round).
    for c in &cells {
        let p = c.performed();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].work.cell_id.as_str(), c.id);
    }
    assert_eq!(h.placement_errors("web").await, ["", ""]);
    let t = h.bbs.task_by_guid(&"t1".into()).await.unwrap();
    assert_eq!((t.rejection_count, t.rejection_reason.as_str()), (0, ""));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn request_ids_follow_the_work_into_the_batched_round() {
    use diego_core::request_id;
    let cells = [
        FakeCell::new("cell-a", 4096, Behaviour::default()),
        FakeCell::new("cell-b", 4096, Behaviour::default()),
        FakeCell::new("cell-c", 4096, Behaviour::default()),
    ];
    let h = start(&cells, config()).await;
    // Three requests land in one round (the 100 ms window): two under their own ids,
    // one (a task) asked for outside any request.
    request_id::scope("req-web", h.desire_lrp("web", 3, 256, ROOTFS)).await;
    request_id::scope("req-api", h.desire_lrp("api", 3, 256, ROOTFS)).await;
    h.desire_task("t1", 128).await;
    sleep(Duration::from_secs(1)).await;

    let mut calls = 0;
    for c in &cells {
        for p in c.performed() {
            calls += 1;
            let mut expected: Vec<&str> = p
                .work
                .lrps
                .iter()
                .map(|r| match r.process_guid.as_str() {
                    "web" => "req-web",
                    _ => "req-api",
                })
                .collect();
            expected.sort();
            expected.dedup();
            let expected = (!expected.is_empty()).then(|| expected.join(","));
            assert_eq!(p.request_id, expected, "{}: {:?}", c.id, p.work);
        }
    }
    assert_eq!(calls, 3, "one round, every cell a winner");
    // Each cell got instances of both apps (the same-process penalty spreads them), so
    // its call carries both requests' ids.
    assert!(cells
        .iter()
        .flat_map(|c| c.performed())
        .any(|p| p.request_id.as_deref() == Some("req-api,req-web")));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn unplaceable_work_is_reported_with_spec_errors() {
    let cells = [FakeCell::new("cell-a", 1024, Behaviour::default())];
    let h = start(&cells, config()).await;
    h.desire_lrp("huge", 1, 4096, ROOTFS).await;
    h.desire_lrp("other-stack", 1, 64, "preloaded:windows")
        .await;
    h.desire_task("huge-task", 8192).await;
    sleep(Duration::from_secs(1)).await;

    assert_eq!(
        h.placement_errors("huge").await,
        ["insufficient resources: memory"]
    );
    assert_eq!(
        h.placement_errors("other-stack").await,
        ["found no compatible cell for required rootfs"]
    );
    let t = h.bbs.task_by_guid(&"huge-task".into()).await.unwrap();
    assert_eq!(t.rejection_count, 1);
    assert_eq!(t.rejection_reason, "insufficient resources: memory");
    assert!(cells[0].performed().is_empty());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn no_answering_cell_is_unable_to_communicate() {
    let cells = [FakeCell::new(
        "cell-a",
        4096,
        Behaviour {
            state_delay: Duration::from_secs(3600),
            ..Default::default()
        },
    )];
    let h = start(&cells, config()).await;
    h.desire_lrp("web", 2, 64, ROOTFS).await;
    h.desire_task("t", 64).await;
    sleep(Duration::from_secs(10)).await;
    assert_eq!(
        h.placement_errors("web").await,
        [
            "unable to communicate to compatible cells",
            "unable to communicate to compatible cells"
        ]
    );
    let t = h.bbs.task_by_guid(&"t".into()).await.unwrap();
    assert_eq!(
        t.rejection_reason,
        "unable to communicate to compatible cells"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn refused_work_is_retried_on_other_cells() {
    let refuser = Behaviour {
        refuse_all: true,
        ..Default::default()
    };
    // cell-a wins the tie (first cell) and refuses; cell-b takes it.
    let cells = [
        FakeCell::new("cell-a", 4096, refuser),
        FakeCell::new("cell-b", 4096, Behaviour::default()),
    ];
    let h = start(&cells, config()).await;
    h.desire_lrp("web", 1, 256, ROOTFS).await;
    sleep(Duration::from_secs(1)).await;
    assert_eq!(cells[0].offered_lrps(), [("web".to_owned(), 0)]);
    assert_eq!(cells[1].offered_lrps(), [("web".to_owned(), 0)]);
    assert_eq!(cells[1].running(), 1);
    assert_eq!(h.placement_errors("web").await, [""]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn work_refused_up_to_the_limit_is_reported_with_the_refusing_cells() {
    let refuser = || Behaviour {
        refuse_all: true,
        ..Default::default()
    };
    // One retry: cell-a wins (first of equals) and refuses, then cell-b (first of the
    // rest) and refuses; cell-c is never asked.
    let cells = [
        FakeCell::new("cell-a", 4096, refuser()),
        FakeCell::new("cell-b", 4096, refuser()),
        FakeCell::new("cell-c", 4096, Behaviour::default()),
    ];
    let h = start(&cells, config().with_max_retries(1)).await;
    h.desire_lrp("web", 1, 256, ROOTFS).await;
    sleep(Duration::from_secs(1)).await;
    let expected = Error::RefusedByCells {
        cells: vec!["cell-a".into(), "cell-b".into()],
    }
    .to_string();
    assert_eq!(expected, "refused by the cells that won it: cell-a, cell-b");
    assert_eq!(h.placement_errors("web").await, [expected]);
    assert!(cells[2].performed().is_empty());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn work_refused_by_every_cell_is_reported_with_them() {
    let refuser = || Behaviour {
        refuse_all: true,
        ..Default::default()
    };
    let cells = [
        FakeCell::new("cell-a", 4096, refuser()),
        FakeCell::new("cell-b", 4096, refuser()),
    ];
    let h = start(&cells, config()).await;
    h.desire_task("t", 64).await;
    sleep(Duration::from_secs(1)).await;
    let t = h.bbs.task_by_guid(&"t".into()).await.unwrap();
    assert_eq!(t.rejection_count, 1);
    assert_eq!(
        t.rejection_reason,
        "refused by the cells that won it: cell-a, cell-b"
    );
    assert_eq!(cells[0].offered_tasks(), ["t"]);
    assert_eq!(cells[1].offered_tasks(), ["t"]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn retry_limit_zero_reports_the_first_refusal() {
    let cells = [
        FakeCell::new(
            "cell-a",
            4096,
            Behaviour {
                refuse_all: true,
                ..Default::default()
            },
        ),
        FakeCell::new("cell-b", 4096, Behaviour::default()),
    ];
    let h = start(&cells, config().with_max_retries(0)).await;
    h.desire_lrp("web", 1, 256, ROOTFS).await;
    sleep(Duration::from_secs(1)).await;
    assert!(cells[1].performed().is_empty());
    assert_eq!(
        h.placement_errors("web").await,
        ["refused by the cells that won it: cell-a"]
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn slow_cells_are_timed_out() {
    let cells = [
        FakeCell::new(
            "cell-a",
            4096,
            Behaviour {
                state_delay: Duration::from_secs(3600),
                ..Default::default()
            },
        ),
        FakeCell::new("cell-b", 4096, Behaviour::default()),
    ];
    let h = start(&cells, config()).await;
    let t0 = Instant::now();
    h.desire_lrp("web", 2, 256, ROOTFS).await;
    sleep(Duration::from_secs(30)).await;
    assert!(cells[0].performed().is_empty());
    assert_eq!(cells[1].running(), 2);
    // Four tries of one second each, then the round went on without cell-a.
    assert_eq!(cells[0].state_calls.load(Ordering::SeqCst), 4);
    let at = cells[1].performed()[0].at - t0;
    assert!(at >= Duration::from_millis(4100), "{at:?}");
    assert!(at < Duration::from_secs(5), "{at:?}");
    assert_eq!(h.placement_errors("web").await, ["", ""]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn evacuating_and_impostor_cells_are_left_out() {
    let cells = [
        FakeCell::new(
            "cell-a",
            4096,
            Behaviour {
                evacuating: true,
                ..Default::default()
            },
        ),
        FakeCell::new(
            "cell-b",
            4096,
            Behaviour {
                impostor: Some("cell-z".into()),
                ..Default::default()
            },
        ),
        FakeCell::new("cell-c", 4096, Behaviour::default()),
    ];
    let h = start(&cells, config()).await;
    h.desire_lrp("web", 3, 256, ROOTFS).await;
    sleep(Duration::from_secs(1)).await;
    assert!(cells[0].performed().is_empty());
    assert!(cells[1].performed().is_empty());
    assert_eq!(cells[2].running(), 3);
    assert_eq!(h.placement_errors("web").await, ["", "", ""]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn batching_window_is_respected_and_requests_deduplicated() {
    let cells = [FakeCell::new("cell-a", 100_000, Behaviour::default())];
    let h = start(&cells, config().with_batch_window(Duration::from_secs(1))).await;
    let t0 = Instant::now();
    h.desire_lrp("web", 1, 64, ROOTFS).await;
    sleep(Duration::from_millis(500)).await;
    h.desire_task("t", 64).await;
    // The same instance asked for again inside the window is placed once.
    let again = LrpStartRequest {
        process_guid: "web".into(),
        domain: "apps".into(),
        indices: vec![0, 0],
        resource: Resource {
            memory_mb: 64,
            disk_mb: 10,
            max_pids: 0,
        },
        placement_constraint: PlacementConstraint {
            rootfs: ROOTFS.into(),
            ..Default::default()
        },
    };
    h.runner
        .request_lrp_auctions(vec![again.clone()])
        .await
        .unwrap();
    sleep(Duration::from_millis(400)).await;
    assert!(
        cells[0].performed().is_empty(),
        "round ran before the window"
    );
    sleep(Duration::from_millis(200)).await;
    let p = cells[0].performed();
    assert_eq!(p.len(), 1, "one round for everything in the window");
    assert!(p[0].at - t0 >= Duration::from_secs(1));
    assert_eq!(cells[0].offered_lrps(), [("web".to_owned(), 0)]);
    assert_eq!(cells[0].offered_tasks(), ["t"]);

    // Work asked for later goes in a round of its own, one window later.
    let t1 = Instant::now();
    h.desire_lrp("api", 1, 64, ROOTFS).await;
    sleep(Duration::from_secs(3)).await;
    let p = cells[0].performed();
    assert_eq!(p.len(), 2);
    assert!(p[1].at - t1 >= Duration::from_secs(1));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn cancellation_stops_the_idle_runner_and_refuses_later_requests() {
    let cells = [FakeCell::new("cell-a", 4096, Behaviour::default())];
    let h = start(&cells, config()).await;
    let runner = h.runner.clone();
    h.stop().await;
    let r = runner.request_task_auctions(Vec::new()).await;
    assert!(
        matches!(r, Err(diego_core::Error::Unavailable { .. })),
        "{r:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn cancellation_lets_the_round_in_flight_finish() {
    let cells = [FakeCell::new(
        "cell-a",
        4096,
        Behaviour {
            perform_delay: Duration::from_secs(5),
            ..Default::default()
        },
    )];
    let h = start(&cells, config()).await;
    h.desire_lrp("web", 1, 64, ROOTFS).await;
    // The round is now waiting on perform.
    sleep(Duration::from_secs(1)).await;
    assert!(cells[0].performed().is_empty());
    h.cancel.cancel();
    let stopped = tokio::spawn(async move {
        h.handle.await.unwrap();
        Instant::now()
    });
    let stopped_at = stopped.await.unwrap();
    let p = cells[0].performed();
    assert_eq!(p.len(), 1, "the round in flight finished");
    assert!(stopped_at >= p[0].at);
    assert_eq!(cells[0].running(), 1);
}

#[tokio::test(start_paused = true)]
async fn cancellation_during_the_window_drops_queued_work() {
    let cells = [FakeCell::new("cell-a", 4096, Behaviour::default())];
    let h = start(&cells, config().with_batch_window(Duration::from_secs(10))).await;
    h.desire_lrp("web", 1, 64, ROOTFS).await;
    sleep(Duration::from_secs(1)).await;
    let runner = h.runner.clone();
    h.stop().await;
    sleep(Duration::from_secs(20)).await;
    assert!(cells[0].performed().is_empty());
    assert!(runner.request_lrp_auctions(Vec::new()).await.is_err());
}
