//! A BBS fenced by its lease on the leader lock stops writing once another process has
//! taken the lock over; reads and the new holder's writes go on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use std::sync::Arc;
use std::time::Duration;

use common::cell_presence;
use diego_core::lock::Lock;
use diego_core::store::{ActualLrpFilter, Fence, FencedStore, MemoryStore, Store};
use diego_core::*;

/// A BBS whose every write carries `fence` (what `diego bbs` builds while it holds
/// the lock).
fn bbs_on(store: Arc<MemoryStore>, clock: Arc<ManualClock>, fence: Fence) -> Bbs {
    let fenced: Arc<dyn Store> = Arc::new(FencedStore::new(store, fence));
    Bbs::builder().store(fenced).clock(clock).build()
}

#[tokio::test]
async fn a_fenced_bbs_cannot_write_after_a_takeover() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000_000)));
    let ttl = Duration::from_secs(15);

    let lease = store
        .acquire("bbs", "old", ttl, clock.now())
        .await
        .unwrap()
        .unwrap();
    let old = bbs_on(store.clone(), clock.clone(), lease.fence());
    old.desire_lrp(DesiredLrp::new(
        "web",
        "apps",
        "preloaded:cflinuxfs4",
        2,
        RunAction::new("/bin/app", "vcap"),
    ))
    .await
    .expect("the holder writes");
    old.upsert_domain("apps", Duration::ZERO).await.unwrap();

    // The old BBS pauses past its lease; the standby takes over.
    clock.advance(ttl + Duration::from_secs(1));
    let taken = store
        .acquire("bbs", "new", ttl, clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.token, lease.token + 1);
    let new = bbs_on(store.clone(), clock.clone(), taken.fence());

    let err = old
        .desire_lrp(DesiredLrp::new(
            "worker",
            "apps",
            "preloaded:cflinuxfs4",
            3,
            RunAction::new("/bin/worker", "vcap"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "FenceLost", "{err}");
    let err = old.upsert_domain("jobs", Duration::ZERO).await.unwrap_err();
    assert_eq!(err.kind(), "FenceLost", "{err}");
    assert!(old
        .desired_lrp_by_process_guid(&ProcessGuid::new("worker"))
        .await
        .is_err());
    assert_eq!(
        old.actual_lrps(&ActualLrpFilter::default())
            .await
            .unwrap()
            .len(),
        2,
        "reads go on; the refused write left nothing"
    );

    new.remove_desired_lrp(&ProcessGuid::new("web"))
        .await
        .expect("the new holder writes");
    // An unfenced BBS on the same store (a single-process host) writes as before.
    let plain = Bbs::builder()
        .store(store.clone())
        .clock(clock.clone())
        .build();
    plain.upsert_domain("jobs", Duration::ZERO).await.unwrap();
}

#[tokio::test]
async fn a_fenced_bbs_keeps_cell_presences_on_the_inner_stores_lock() {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000_000)));
    let lease = store
        .acquire("bbs", "a", Duration::from_secs(15), clock.now())
        .await
        .unwrap()
        .unwrap();
    let bbs = bbs_on(store.clone(), clock, lease.fence());
    bbs.register_cell(&cell_presence("c1", "10.0.0.1:1800"))
        .await
        .unwrap();
    let held = store.holder("cells/c1").await.unwrap().expect("a lease");
    assert_eq!(held.owner, "10.0.0.1:1800");
    assert_eq!(bbs.cells().await.unwrap().len(), 1);
}
