//! The Lock conformance suite: `async fn` scenarios every [`Lock`] must pass, together
//! with the [`Store`] that honours its fences (the same object, seen through both traits).
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use diego_core::lock::{conformance, Lock};
//! use diego_core::store::{MemoryStore, Store};
//! conformance::run_all(|| async {
//!     let s = Arc::new(MemoryStore::new());
//!     (s.clone() as Arc<dyn Store>, s as Arc<dyn Lock>)
//! })
//! .await;
//! # });
//! ```
//!
//! Scenarios panic (with a message naming what broke) when the lock misbehaves.

// Scenarios are tests: they panic on purpose when the lock misbehaves.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::Lock;
use crate::error::Error;
use crate::models::guid::TaskGuid;
use crate::store::conformance::sample_task;
use crate::store::{Fence, Precondition, Record, Store, WriteBatch};
use crate::time::Timestamp;

const TTL: Duration = Duration::from_secs(15);
const T0: Timestamp = Timestamp(1_767_225_600_000_000_000);

/// Runs every scenario, each on a fresh `(store, lock)` pair from `new` (both views of one
/// empty backend).
pub async fn run_all<F, Fut>(new: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (Arc<dyn Store>, Arc<dyn Lock>)>,
{
    let (s, l) = new().await;
    first_acquire_and_contender(&*l).await;
    drop(s);
    let (s, l) = new().await;
    renew_keeps_the_token(&*l).await;
    drop(s);
    let (s, l) = new().await;
    takeover_after_expiry_fences_out_the_old_holder(&*s, &*l).await;
    let (s, l) = new().await;
    fence_mismatch_rejects_the_whole_batch(&*s, &*l).await;
    let (s, l) = new().await;
    release_hands_over(&*s, &*l).await;
    let (s, l) = new().await;
    bad_arguments_are_refused(&*l).await;
    drop(s);
    let (s, l) = new().await;
    contenders_get_exactly_one_holder(l).await;
    drop(s);
    let (s, l) = new().await;
    leases_lists_the_held_leases_under_a_prefix(&*l).await;
    drop(s);
}

async fn task_write(store: &dyn Store, guid: &str, fence: Option<Fence>) -> Result<(), Error> {
    let mut b = WriteBatch::new();
    b.put(
        Record::task(sample_task(guid, "d", None)),
        Precondition::Absent,
    );
    if let Some(f) = fence {
        b.fenced(f);
    }
    store.write(b).await
}

/// The first acquisition gets token 1; a contender gets nothing while the lease is live;
/// locks of other names are independent.
pub async fn first_acquire_and_contender(lock: &dyn Lock) {
    assert_eq!(lock.holder("bbs").await.expect("holder"), None);
    let a = lock
        .acquire("bbs", "a", TTL, T0)
        .await
        .expect("acquire")
        .expect("a free lock is granted");
    assert_eq!(
        (a.name.as_str(), a.owner.as_str(), a.token, a.expires_at),
        ("bbs", "a", 1, T0 + TTL)
    );
    assert_eq!(lock.holder("bbs").await.expect("holder"), Some(a.clone()));
    let b = lock
        .acquire("bbs", "b", TTL, T0 + Duration::from_secs(14))
        .await
        .expect("acquire");
    assert_eq!(b, None, "a contender must not get a live lease");
    let other = lock
        .acquire("auctioneer", "b", TTL, T0)
        .await
        .expect("acquire")
        .expect("another lock name is independent");
    assert_eq!(other.token, 1);
    assert_eq!(lock.holder("bbs").await.expect("holder"), Some(a));
}

/// A renewal by the holder extends the lease and keeps the token, even after expiry when
/// nobody took the lock over.
pub async fn renew_keeps_the_token(lock: &dyn Lock) {
    let a = lock.acquire("bbs", "a", TTL, T0).await.unwrap().unwrap();
    let t1 = T0 + Duration::from_secs(10);
    let renewed = lock.acquire("bbs", "a", TTL, t1).await.unwrap().unwrap();
    assert_eq!(renewed.token, a.token, "renewal keeps the token");
    assert_eq!(renewed.expires_at, t1 + TTL, "renewal extends the lease");
    let late = T0 + Duration::from_secs(60);
    let again = lock.acquire("bbs", "a", TTL, late).await.unwrap().unwrap();
    assert_eq!(
        again.token, a.token,
        "a late renewal nobody raced keeps the token"
    );
    assert!(
        lock.acquire("bbs", "b", TTL, late + Duration::from_secs(1))
            .await
            .unwrap()
            .is_none(),
        "the renewed lease is live again"
    );
}

/// After the lease expires a contender takes over with the next token; the old holder's
/// fenced writes then fail and write nothing, the new holder's apply.
pub async fn takeover_after_expiry_fences_out_the_old_holder(store: &dyn Store, lock: &dyn Lock) {
    let a = lock.acquire("bbs", "a", TTL, T0).await.unwrap().unwrap();
    task_write(store, "by-a-1", Some(a.fence()))
        .await
        .expect("the holder's fenced write applies");
    assert!(
        lock.acquire("bbs", "b", TTL, T0 + TTL - Duration::from_nanos(1))
            .await
            .unwrap()
            .is_none(),
        "no takeover before expiry"
    );
    let b = lock
        .acquire("bbs", "b", TTL, T0 + TTL)
        .await
        .unwrap()
        .expect("takeover once the lease has expired");
    assert_eq!(b.token, a.token + 1, "takeover increments the token");
    assert_eq!(b.owner, "b");
    let r = task_write(store, "by-a-2", Some(a.fence())).await;
    match r {
        Err(Error::FenceLost { lock, token }) => {
            assert_eq!((lock.as_str(), token), ("bbs", a.token));
        }
        other => panic!("the old holder's fenced write must be FenceLost, got {other:?}"),
    }
    assert_eq!(
        store.task(&TaskGuid::new("by-a-2")).await.expect("read"),
        None,
        "a fenced-out write leaves nothing"
    );
    task_write(store, "by-b", Some(b.fence()))
        .await
        .expect("the new holder's fenced write applies");
    let back = lock
        .acquire("bbs", "a", TTL, T0 + TTL + Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(back, None, "the old holder cannot renew a lease it lost");
    task_write(store, "unfenced", None)
        .await
        .expect("unfenced writes are not affected by locks");
}

/// A batch whose fence names a wrong token or an unknown lock fails as a whole, before
/// any of its preconditions matter.
pub async fn fence_mismatch_rejects_the_whole_batch(store: &dyn Store, lock: &dyn Lock) {
    let a = lock.acquire("bbs", "a", TTL, T0).await.unwrap().unwrap();
    let mut b = WriteBatch::new();
    b.put(
        Record::task(sample_task("t1", "d", None)),
        Precondition::Absent,
    );
    b.put(
        Record::task(sample_task("t2", "d", None)),
        Precondition::Absent,
    );
    b.fenced(Fence::new("bbs", a.token + 1));
    let r = store.write(b.clone()).await;
    assert!(
        matches!(&r, Err(Error::FenceLost { lock, token }) if lock == "bbs" && *token == a.token + 1),
        "wrong token: {r:?}"
    );
    b.fenced(Fence::new("no-such-lock", 1));
    let r = store.write(b.clone()).await;
    assert!(
        matches!(&r, Err(Error::FenceLost { lock, .. }) if lock == "no-such-lock"),
        "unknown lock: {r:?}"
    );
    for guid in ["t1", "t2"] {
        assert_eq!(
            store.task(&TaskGuid::new(guid)).await.expect("read"),
            None,
            "nothing of a fenced-out batch is written"
        );
    }
    b.fenced(a.fence());
    store.write(b).await.expect("the right fence applies");
    assert!(store.task(&TaskGuid::new("t2")).await.unwrap().is_some());
}

/// Release lets a contender in at once with the next token; releasing someone else's lock
/// does nothing.
pub async fn release_hands_over(store: &dyn Store, lock: &dyn Lock) {
    let a = lock.acquire("bbs", "a", TTL, T0).await.unwrap().unwrap();
    assert!(
        !lock.release("bbs", "b").await.expect("release"),
        "b does not hold the lock"
    );
    assert_eq!(lock.holder("bbs").await.unwrap(), Some(a.clone()));
    assert!(lock.release("bbs", "a").await.expect("release"));
    assert_eq!(lock.holder("bbs").await.unwrap(), None);
    assert!(!lock.release("bbs", "a").await.expect("release twice"));
    let b = lock
        .acquire("bbs", "b", TTL, T0 + Duration::from_secs(1))
        .await
        .unwrap()
        .expect("a released lock is free");
    assert_eq!(b.token, a.token + 1);
    assert!(matches!(
        task_write(store, "t", Some(a.fence())).await,
        Err(Error::FenceLost { .. })
    ));
    let a2 = lock
        .acquire("bbs", "a", TTL, T0 + Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(a2, None);
    assert!(!lock.release("missing", "a").await.expect("release"));
}

/// `leases` lists the held leases under a prefix, in name order, expired ones too but
/// not released ones; a prefix is matched literally (`_` and `%` are no wildcards).
pub async fn leases_lists_the_held_leases_under_a_prefix(lock: &dyn Lock) {
    assert!(lock.leases("cells/").await.expect("list").is_empty());
    let short = Duration::from_secs(1);
    lock.acquire("cells/b", "rep-b", TTL, T0)
        .await
        .unwrap()
        .unwrap();
    lock.acquire("cells/a", "rep-a", short, T0)
        .await
        .unwrap()
        .unwrap();
    lock.acquire("cells/c", "rep-c", TTL, T0)
        .await
        .unwrap()
        .unwrap();
    lock.acquire("cellsXd", "rep-d", TTL, T0)
        .await
        .unwrap()
        .unwrap();
    lock.acquire("bbs", "bbs-1", TTL, T0)
        .await
        .unwrap()
        .unwrap();
    assert!(lock.release("cells/c", "rep-c").await.unwrap());
    let leases = lock.leases("cells/").await.expect("list");
    let names: Vec<(&str, &str)> = leases
        .iter()
        .map(|l| (l.name.as_str(), l.owner.as_str()))
        .collect();
    assert_eq!(names, [("cells/a", "rep-a"), ("cells/b", "rep-b")]);
    assert!(
        leases[0].is_expired(T0 + short),
        "expired leases are listed too"
    );
    assert_eq!(leases[1], lock.holder("cells/b").await.unwrap().unwrap());
    assert!(
        lock.leases("cells_").await.unwrap().is_empty(),
        "`_` is literal"
    );
    assert!(
        lock.leases("cells%").await.unwrap().is_empty(),
        "`%` is literal"
    );
    assert_eq!(lock.leases("").await.unwrap().len(), 4, "every held lease");
}

/// Empty names and owners and a zero TTL are refused with the field named.
pub async fn bad_arguments_are_refused(lock: &dyn Lock) {
    for (name, owner, ttl, field) in [
        ("", "a", TTL, "name"),
        ("bbs", "", TTL, "owner"),
        ("bbs", "a", Duration::ZERO, "ttl"),
    ] {
        let r = lock.acquire(name, owner, ttl, T0).await;
        match r {
            Err(e) => assert!(
                e.validation_errors().is_some_and(|v| v.has_field(field)),
                "expected an invalid {field}, got {e:?}"
            ),
            Ok(l) => panic!("bad {field} accepted: {l:?}"),
        }
    }
    assert_eq!(lock.holder("bbs").await.unwrap(), None);
}

/// Sixteen contenders race for a free lock (and then for the expired lease): exactly one
/// holds it each time.
pub async fn contenders_get_exactly_one_holder(lock: Arc<dyn Lock>) {
    for (round, now) in [(1u64, T0), (2, T0 + TTL + Duration::from_secs(1))] {
        let mut handles = Vec::new();
        for i in 0..16 {
            let lock = lock.clone();
            handles.push(tokio::spawn(async move {
                lock.acquire("bbs", &format!("r{round}-c{i}"), TTL, now)
                    .await
            }));
        }
        let mut winners = Vec::new();
        for h in handles {
            if let Some(lease) = h.await.expect("contender task").expect("acquire") {
                winners.push(lease);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(winners[0].token, round, "round {round}");
        assert_eq!(lock.holder("bbs").await.unwrap(), Some(winners[0].clone()));
    }
}
