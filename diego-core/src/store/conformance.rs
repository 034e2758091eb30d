//! The Store conformance suite: `async fn` scenarios every [`Store`] must pass.
//!
//! Run them all against a fresh store each with [`run_all`], or call scenarios one by
//! one. Every store in this repository runs the suite; a user's own store can too:
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use diego_core::store::{conformance, MemoryStore, Store};
//! conformance::run_all(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> }).await;
//! # });
//! ```
//!
//! Scenarios panic (with a message naming what broke) when the store misbehaves.

// Scenarios are tests: they panic on purpose when the store misbehaves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;

use super::{
    ActualLrpFilter, ActualLrpRowKey, CellPresenceRecord, DesiredLrpFilter, Precondition, Record,
    RecordKey, Store, TaskFilter, WriteBatch,
};
use crate::error::Error;
use crate::models::action::RunAction;
use crate::models::actual_lrp::{
    ActualLrp, ActualLrpInstanceKey, ActualLrpKey, ActualLrpState, Presence,
};
use crate::models::cell::{CellCapacity, CellPresence};
use crate::models::desired_lrp::DesiredLrp;
use crate::models::domain::Domain;
use crate::models::guid::{CellId, ProcessGuid, TaskGuid};
use crate::models::modification_tag::ModificationTag;
use crate::models::routes::Routes;
use crate::models::task::{DesireTaskRequest, Task, TaskDefinition};
use crate::time::Timestamp;

/// Runs every scenario, each on a store from `new_store` (which must start empty).
pub async fn run_all<F, Fut>(new_store: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    put_absent_then_exists(&*new_store().await).await;
    compare_and_swap(&*new_store().await).await;
    batch_is_atomic(&*new_store().await).await;
    delete_preconditions(&*new_store().await).await;
    duplicate_keys_in_a_batch_are_refused(&*new_store().await).await;
    listings(&*new_store().await).await;
    actual_rows_of_one_index(&*new_store().await).await;
    cell_index_follows_updates(&*new_store().await).await;
    domains_and_cells(&*new_store().await).await;
    large_values(&*new_store().await).await;
    concurrent_writers_on_one_row(new_store().await).await;
}

/// A Task in domain `domain`, optionally on `cell`.
pub fn sample_task(guid: &str, domain: &str, cell: Option<&str>) -> Task {
    let mut t = Task::from_request(
        DesireTaskRequest {
            task_guid: TaskGuid::new(guid),
            domain: domain.into(),
            task_definition: TaskDefinition::new(
                "preloaded:cflinuxfs4",
                RunAction::new("/bin/true", "vcap"),
            ),
        },
        Timestamp(1),
    );
    t.cell_id = cell.map(CellId::new);
    t
}

/// A DesiredLRP `guid` in `domain`.
pub fn sample_desired(guid: &str, domain: &str) -> DesiredLrp {
    let mut d = DesiredLrp::new(
        guid,
        domain,
        "preloaded:cflinuxfs4",
        2,
        RunAction::new("/bin/app", "vcap"),
    );
    d.scheduling_info.modification_tag = ModificationTag::fresh();
    d
}

/// An ActualLRP row, on `cell` when given.
pub fn sample_actual(guid: &str, index: i32, presence: Presence, cell: Option<&str>) -> ActualLrp {
    let mut a = ActualLrp::unclaimed(ActualLrpKey::new(guid, index, "apps"), Timestamp(1));
    a.presence = presence;
    if let Some(c) = cell {
        a.instance_key = Some(ActualLrpInstanceKey::new(format!("ig-{guid}-{index}"), c));
        a.state = ActualLrpState::Claimed;
    }
    a
}

async fn put(store: &dyn Store, record: Record, pre: Precondition) -> Result<(), Error> {
    let mut b = WriteBatch::new();
    b.put(record, pre);
    store.write(b).await
}

/// Creating with `Absent` works once; the second create is `ResourceExists`.
pub async fn put_absent_then_exists(store: &dyn Store) {
    let t = sample_task("t1", "d", None);
    put(store, Record::task(t.clone()), Precondition::Absent)
        .await
        .expect("create of a new task must succeed");
    let again = put(store, Record::task(t.clone()), Precondition::Absent).await;
    assert!(
        matches!(again, Err(Error::ResourceExists)),
        "second create: {again:?}"
    );
    assert_eq!(store.task(&t.task_guid).await.expect("read"), Some(t));
}

/// A write with the current tag applies; with a stale or missing tag it is
/// `ResourceConflict` and changes nothing.
pub async fn compare_and_swap(store: &dyn Store) {
    let t = sample_task("t1", "d", None);
    put(store, Record::task(t.clone()), Precondition::Absent)
        .await
        .expect("create");
    let mut v2 = t.clone();
    v2.modification_tag = t.modification_tag.incremented();
    v2.failure_reason = "v2".into();
    put(
        store,
        Record::task(v2.clone()),
        Precondition::Tag(t.modification_tag.clone()),
    )
    .await
    .expect("CAS with the current tag must apply");
    let mut stale = t.clone();
    stale.failure_reason = "stale".into();
    let r = put(
        store,
        Record::task(stale),
        Precondition::Tag(t.modification_tag.clone()),
    )
    .await;
    assert!(
        matches!(r, Err(Error::ResourceConflict)),
        "stale CAS: {r:?}"
    );
    assert_eq!(store.task(&t.task_guid).await.expect("read"), Some(v2));
    let missing = sample_task("nope", "d", None);
    let r = put(
        store,
        Record::task(missing.clone()),
        Precondition::Tag(missing.modification_tag),
    )
    .await;
    assert!(
        matches!(r, Err(Error::ResourceConflict)),
        "CAS on a missing row: {r:?}"
    );
    assert_eq!(
        store.task(&TaskGuid::new("nope")).await.expect("read"),
        None
    );
}

/// One failed precondition leaves nothing of the batch written.
pub async fn batch_is_atomic(store: &dyn Store) {
    let existing = sample_task("exists", "d", None);
    put(store, Record::task(existing.clone()), Precondition::Absent)
        .await
        .expect("create");
    let mut b = WriteBatch::new();
    b.put(
        Record::desired_lrp(sample_desired("web", "apps")),
        Precondition::Absent,
    );
    b.put(
        Record::actual_lrp(sample_actual("web", 0, Presence::Ordinary, None)),
        Precondition::Absent,
    );
    b.put(Record::task(existing.clone()), Precondition::Absent);
    let r = store.write(b).await;
    assert!(
        matches!(r, Err(Error::ResourceExists)),
        "batch with a failing op: {r:?}"
    );
    assert_eq!(
        store
            .desired_lrp(&ProcessGuid::new("web"))
            .await
            .expect("read"),
        None
    );
    assert!(store
        .actual_lrps(&ActualLrpFilter::default())
        .await
        .expect("list")
        .is_empty());

    let mut b = WriteBatch::new();
    b.put(
        Record::desired_lrp(sample_desired("web", "apps")),
        Precondition::Absent,
    );
    b.put(
        Record::actual_lrp(sample_actual("web", 0, Presence::Ordinary, None)),
        Precondition::Absent,
    );
    b.delete(
        RecordKey::Task(existing.task_guid.clone()),
        Precondition::Tag(existing.modification_tag),
    );
    store
        .write(b)
        .await
        .expect("a batch whose preconditions hold applies");
    assert!(store
        .desired_lrp(&ProcessGuid::new("web"))
        .await
        .expect("read")
        .is_some());
    assert_eq!(
        store
            .actual_lrps(&ActualLrpFilter::default())
            .await
            .expect("list")
            .len(),
        1
    );
    assert_eq!(
        store.task(&TaskGuid::new("exists")).await.expect("read"),
        None
    );
}

/// Deletes check their preconditions too; an unconditional delete of nothing is a no-op.
pub async fn delete_preconditions(store: &dyn Store) {
    let d = sample_desired("web", "apps");
    put(store, Record::desired_lrp(d.clone()), Precondition::Absent)
        .await
        .expect("create");
    let key = RecordKey::DesiredLrp(ProcessGuid::new("web"));
    let mut b = WriteBatch::new();
    b.delete(key.clone(), Precondition::Tag(ModificationTag::fresh()));
    assert!(matches!(store.write(b).await, Err(Error::ResourceConflict)));
    assert!(store
        .desired_lrp(&ProcessGuid::new("web"))
        .await
        .expect("read")
        .is_some());
    let mut b = WriteBatch::new();
    b.delete(
        key.clone(),
        Precondition::Tag(d.scheduling_info.modification_tag.clone()),
    );
    store.write(b).await.expect("delete with the current tag");
    assert!(store
        .desired_lrp(&ProcessGuid::new("web"))
        .await
        .expect("read")
        .is_none());
    let mut b = WriteBatch::new();
    b.delete(key, Precondition::None);
    store
        .write(b)
        .await
        .expect("unconditional delete of a missing record is a no-op");
}

/// A batch naming one key twice is refused as a whole.
pub async fn duplicate_keys_in_a_batch_are_refused(store: &dyn Store) {
    let t = sample_task("t1", "d", None);
    let mut b = WriteBatch::new();
    b.put(Record::task(t.clone()), Precondition::Absent);
    b.put(Record::task(t.clone()), Precondition::None);
    assert!(
        store.write(b).await.is_err(),
        "a batch with a repeated key must fail"
    );
    assert_eq!(store.task(&t.task_guid).await.expect("read"), None);
}

/// Listings by domain, cell, process guid and index.
pub async fn listings(store: &dyn Store) {
    let mut b = WriteBatch::new();
    b.put(
        Record::task(sample_task("t1", "a", Some("cell-1"))),
        Precondition::Absent,
    );
    b.put(
        Record::task(sample_task("t2", "a", None)),
        Precondition::Absent,
    );
    b.put(
        Record::task(sample_task("t3", "b", Some("cell-1"))),
        Precondition::Absent,
    );
    b.put(
        Record::desired_lrp(sample_desired("web", "apps")),
        Precondition::Absent,
    );
    b.put(
        Record::desired_lrp(sample_desired("worker", "jobs")),
        Precondition::Absent,
    );
    for i in 0..3 {
        let cell = if i == 1 {
            Some("cell-2")
        } else {
            Some("cell-1")
        };
        b.put(
            Record::actual_lrp(sample_actual("web", i, Presence::Ordinary, cell)),
            Precondition::Absent,
        );
    }
    b.put(
        Record::actual_lrp(sample_actual("worker", 0, Presence::Ordinary, None)),
        Precondition::Absent,
    );
    store.write(b).await.expect("write the fixtures");

    let names = |ts: Vec<Task>| {
        let mut v: Vec<String> = ts.into_iter().map(|t| t.task_guid.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(
        names(store.tasks(&TaskFilter::default()).await.expect("list")),
        ["t1", "t2", "t3"]
    );
    let by_domain = TaskFilter {
        domain: Some("a".into()),
        ..Default::default()
    };
    assert_eq!(
        names(store.tasks(&by_domain).await.expect("list")),
        ["t1", "t2"]
    );
    let by_cell = TaskFilter {
        cell_id: Some(CellId::new("cell-1")),
        ..Default::default()
    };
    assert_eq!(
        names(store.tasks(&by_cell).await.expect("list")),
        ["t1", "t3"]
    );

    let all = store
        .desired_lrps(&DesiredLrpFilter::default())
        .await
        .expect("list");
    assert_eq!(all.len(), 2);
    let apps = DesiredLrpFilter {
        domain: Some("apps".into()),
        ..Default::default()
    };
    let infos = store.scheduling_infos(&apps).await.expect("list");
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].process_guid, "web");
    let by_guid = DesiredLrpFilter {
        process_guids: vec![ProcessGuid::new("worker")],
        ..Default::default()
    };
    assert_eq!(store.desired_lrps(&by_guid).await.expect("list").len(), 1);

    let count =
        |f: ActualLrpFilter| async move { store.actual_lrps(&f).await.expect("list").len() };
    assert_eq!(count(ActualLrpFilter::default()).await, 4);
    assert_eq!(
        count(ActualLrpFilter::process(&ProcessGuid::new("web"))).await,
        3
    );
    assert_eq!(
        count(ActualLrpFilter::instance(&ProcessGuid::new("web"), 1)).await,
        1
    );
    assert_eq!(
        count(ActualLrpFilter {
            cell_id: Some(CellId::new("cell-1")),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(ActualLrpFilter {
            domain: Some("apps".into()),
            ..Default::default()
        })
        .await,
        4
    );
    assert_eq!(
        count(ActualLrpFilter {
            index: Some(0),
            ..Default::default()
        })
        .await,
        2
    );
}

/// An index holds ORDINARY, EVACUATING and SUSPECT rows side by side.
pub async fn actual_rows_of_one_index(store: &dyn Store) {
    let mut b = WriteBatch::new();
    for p in [Presence::Ordinary, Presence::Evacuating, Presence::Suspect] {
        b.put(
            Record::actual_lrp(sample_actual("web", 0, p, Some("cell-1"))),
            Precondition::Absent,
        );
    }
    store.write(b).await.expect("three presences of one index");
    let rows = store
        .actual_lrps(&ActualLrpFilter::instance(&ProcessGuid::new("web"), 0))
        .await
        .expect("list");
    let mut presences: Vec<Presence> = rows.iter().map(|r| r.presence).collect();
    presences.sort();
    assert_eq!(
        presences,
        [Presence::Ordinary, Presence::Evacuating, Presence::Suspect]
    );
    let mut b = WriteBatch::new();
    b.delete(
        RecordKey::ActualLrp(ActualLrpRowKey {
            process_guid: ProcessGuid::new("web"),
            index: 0,
            presence: Presence::Evacuating,
        }),
        Precondition::None,
    );
    store.write(b).await.expect("delete the evacuating row");
    assert_eq!(
        store
            .actual_lrps(&ActualLrpFilter::instance(&ProcessGuid::new("web"), 0))
            .await
            .expect("list")
            .len(),
        2
    );
}

/// Listing by cell follows rows that move between cells or leave them.
pub async fn cell_index_follows_updates(store: &dyn Store) {
    let a = sample_actual("web", 0, Presence::Ordinary, Some("cell-1"));
    put(store, Record::actual_lrp(a.clone()), Precondition::Absent)
        .await
        .expect("create");
    let on = |c: &str| ActualLrpFilter {
        cell_id: Some(CellId::new(c)),
        ..Default::default()
    };
    assert_eq!(
        store.actual_lrps(&on("cell-1")).await.expect("list").len(),
        1
    );
    let mut moved = a.clone();
    moved.instance_key = Some(ActualLrpInstanceKey::new("other", "cell-2"));
    moved.modification_tag = a.modification_tag.incremented();
    put(
        store,
        Record::actual_lrp(moved.clone()),
        Precondition::Tag(a.modification_tag.clone()),
    )
    .await
    .expect("move");
    assert!(store
        .actual_lrps(&on("cell-1"))
        .await
        .expect("list")
        .is_empty());
    assert_eq!(
        store.actual_lrps(&on("cell-2")).await.expect("list"),
        vec![Arc::new(moved.clone())]
    );
    let mut unclaimed = moved.clone();
    unclaimed.instance_key = None;
    unclaimed.modification_tag = moved.modification_tag.incremented();
    put(
        store,
        Record::actual_lrp(unclaimed),
        Precondition::Tag(moved.modification_tag),
    )
    .await
    .expect("unclaim");
    assert!(store
        .actual_lrps(&on("cell-2"))
        .await
        .expect("list")
        .is_empty());
}

/// Domains and cell presences are upserted and listed.
pub async fn domains_and_cells(store: &dyn Store) {
    let d = Domain {
        name: "apps".into(),
        expires_at: Some(Timestamp(10)),
    };
    put(store, Record::Domain(d), Precondition::None)
        .await
        .expect("domain");
    let d2 = Domain {
        name: "apps".into(),
        expires_at: None,
    };
    put(store, Record::Domain(d2.clone()), Precondition::None)
        .await
        .expect("domain upsert");
    assert_eq!(store.domains().await.expect("list"), vec![d2]);
    let cell = CellPresenceRecord {
        presence: CellPresence {
            cell_id: CellId::new("cell-1"),
            rep_address: "127.0.0.1:1800".into(),
            capacity: CellCapacity {
                memory_mb: 1024,
                disk_mb: 1024,
                containers: 10,
            },
            ..Default::default()
        },
        expires_at: Timestamp(100),
    };
    put(
        store,
        Record::CellPresence(cell.clone()),
        Precondition::Absent,
    )
    .await
    .expect("cell");
    let r = put(
        store,
        Record::CellPresence(cell.clone()),
        Precondition::Absent,
    )
    .await;
    assert!(matches!(r, Err(Error::ResourceExists)), "{r:?}");
    let mut renewed = cell.clone();
    renewed.expires_at = Timestamp(200);
    put(
        store,
        Record::CellPresence(renewed.clone()),
        Precondition::None,
    )
    .await
    .expect("renew");
    assert_eq!(
        store.cell_presences().await.expect("list"),
        vec![renewed.clone()]
    );
    assert_eq!(
        store
            .cell_presence(&CellId::new("cell-1"))
            .await
            .expect("read"),
        Some(renewed)
    );
    assert_eq!(
        store
            .cell_presence(&CellId::new("cell-2"))
            .await
            .expect("read"),
        None
    );
    let mut b = WriteBatch::new();
    b.delete(
        RecordKey::CellPresence(CellId::new("cell-1")),
        Precondition::None,
    );
    store.write(b).await.expect("delete cell");
    assert!(store.cell_presences().await.expect("list").is_empty());
}

/// Large values survive unchanged.
pub async fn large_values(store: &dyn Store) {
    let mut d = sample_desired("big", "apps");
    d.scheduling_info.annotation = "a".repeat(10_240);
    d.scheduling_info.routes = Routes::new();
    d.scheduling_info.routes.0.insert(
        "cf-router".into(),
        serde_json::Value::String("r".repeat(131_072)),
    );
    d.run_info.env = (0..500)
        .map(|i| {
            crate::models::action::EnvironmentVariable::new(format!("VAR_{i}"), "v".repeat(100))
        })
        .collect();
    put(store, Record::desired_lrp(d.clone()), Precondition::Absent)
        .await
        .expect("large desired LRP");
    assert_eq!(
        store
            .desired_lrp(&ProcessGuid::new("big"))
            .await
            .expect("read"),
        Some(d)
    );
}

/// Many writers CAS the same row from the same version: exactly one wins.
pub async fn concurrent_writers_on_one_row(store: Arc<dyn Store>) {
    let a = sample_actual("web", 0, Presence::Ordinary, None);
    put(&*store, Record::actual_lrp(a.clone()), Precondition::Absent)
        .await
        .expect("create");
    let mut handles = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let a = a.clone();
        handles.push(tokio::spawn(async move {
            let mut next = a.clone();
            next.instance_key = Some(ActualLrpInstanceKey::new(
                format!("ig-{i}"),
                format!("cell-{i}"),
            ));
            next.state = ActualLrpState::Claimed;
            next.modification_tag = a.modification_tag.incremented();
            let mut b = WriteBatch::new();
            b.put(
                Record::actual_lrp(next),
                Precondition::Tag(a.modification_tag.clone()),
            );
            store.write(b).await
        }));
    }
    let mut wins = 0;
    for h in handles {
        match h.await.expect("writer task") {
            Ok(()) => wins += 1,
            Err(Error::ResourceConflict) => {}
            Err(e) => panic!("a losing writer must see ResourceConflict, got {e:?}"),
        }
    }
    assert_eq!(wins, 1, "exactly one concurrent writer must win");
    let rows = store
        .actual_lrps(&ActualLrpFilter::default())
        .await
        .expect("list");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, ActualLrpState::Claimed);
}
