//! Shared helpers of the BBS tests: a BBS on a memory store with recording doubles and
//! a manual clock.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use diego_core::bbs::auctioneer_client::RecordingAuctioneer;
use diego_core::bbs::completion_callback::RecordingCallback;
use diego_core::bbs::rep_client::RecordingRepClient;
use diego_core::events::{EventItem, EventStream};
use diego_core::*;
use futures::StreamExt;

pub struct Harness {
    pub bbs: Bbs,
    pub auctioneer: Arc<RecordingAuctioneer>,
    pub reps: Arc<RecordingRepClient>,
    pub callback: Arc<RecordingCallback>,
    pub clock: Arc<ManualClock>,
}

pub const T0: Timestamp = Timestamp(1_767_225_600_000_000_000);

/// The presence of cell `id` at `rep_address`, with room for a little work.
pub fn cell_presence(id: &str, rep_address: &str) -> CellPresence {
    CellPresence {
        cell_id: CellId::new(id),
        rep_address: rep_address.into(),
        capacity: CellCapacity {
            memory_mb: 1024,
            disk_mb: 1024,
            containers: 10,
        },
        ..Default::default()
    }
}

pub fn harness() -> Harness {
    harness_with(BbsConfig::default())
}

pub fn harness_with(config: BbsConfig) -> Harness {
    let auctioneer = Arc::new(RecordingAuctioneer::new());
    let reps = Arc::new(RecordingRepClient::new());
    let callback = Arc::new(RecordingCallback::new());
    let clock = Arc::new(ManualClock::new(T0));
    let bbs = Bbs::builder()
        .auctioneer(auctioneer.clone())
        .rep_client(reps.clone())
        .completion_callback(callback.clone())
        .clock(clock.clone())
        .config(config)
        .build();
    Harness {
        bbs,
        auctioneer,
        reps,
        callback,
        clock,
    }
}

impl Harness {
    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    pub async fn register_cell(&self, id: &str) {
        self.bbs
            .register_cell(&cell_presence(id, &format!("{id}.local:1800")))
            .await
            .unwrap();
    }

    pub async fn row(&self, pg: &str, index: i32, presence: Presence) -> Option<ActualLrp> {
        self.bbs
            .actual_lrps(&store::ActualLrpFilter::instance(
                &ProcessGuid::new(pg),
                index,
            ))
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.presence == presence)
            .map(|r| ActualLrp::clone(&r))
    }

    pub async fn ordinary(&self, pg: &str, index: i32) -> ActualLrp {
        self.row(pg, index, Presence::Ordinary)
            .await
            .expect("an ORDINARY row")
    }
}

pub fn lrp(pg: &str, instances: i32) -> DesiredLrp {
    DesiredLrp::new(
        pg,
        "apps",
        "preloaded:cflinuxfs4",
        instances,
        RunAction::new("/app", "vcap"),
    )
}

pub fn key(pg: &str, index: i32) -> ActualLrpKey {
    ActualLrpKey::new(pg, index, "apps")
}

pub fn ik(instance: &str, cell: &str) -> ActualLrpInstanceKey {
    ActualLrpInstanceKey::new(instance, cell)
}

pub fn net(port: u32) -> ActualLrpNetInfo {
    ActualLrpNetInfo {
        address: "10.0.0.1".into(),
        ports: vec![PortMapping {
            container_port: 8080,
            host_port: port,
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub fn task_request(guid: &str) -> DesireTaskRequest {
    DesireTaskRequest {
        task_guid: TaskGuid::new(guid),
        domain: "tasks".into(),
        task_definition: TaskDefinition::new(
            "preloaded:cflinuxfs4",
            RunAction::new("/bin/true", "vcap"),
        ),
    }
}

/// The names of the events already in the stream (without waiting for more).
pub fn drain_names<E: std::fmt::Debug>(
    stream: &mut EventStream<E>,
    name: fn(&E) -> &'static str,
) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(Some(item)) = stream.next().now_or_never() {
        match item {
            EventItem::Event(e) => out.push(name(&e.event).to_owned()),
            EventItem::Lagged { missed } => out.push(format!("lagged:{missed}")),
        }
    }
    out
}

/// The events already in the stream.
pub fn drain<E: Clone>(stream: &mut EventStream<E>) -> Vec<E> {
    let mut out = Vec::new();
    while let Some(Some(EventItem::Event(e))) = stream.next().now_or_never() {
        out.push(e.event.clone());
    }
    out
}

pub fn lrp_name(e: &LrpEvent) -> &'static str {
    e.name()
}

pub fn task_name(e: &TaskEvent) -> &'static str {
    e.name()
}

use futures::FutureExt;
