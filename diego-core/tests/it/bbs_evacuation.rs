//! The BBS's evacuation calls (SPEC.md, Evacuation).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::*;
use diego_core::*;

async fn running_on(
    h: &Harness,
    pg: &str,
    index: i32,
    instance: &str,
    cell: &str,
) -> ActualLrpInstanceKey {
    let a = ik(instance, cell);
    h.bbs.claim_actual_lrp(&key(pg, index), &a).await.unwrap();
    h.bbs
        .start_actual_lrp(&key(pg, index), &a, &net(61000), true)
        .await
        .unwrap();
    a
}

#[tokio::test]
async fn running_hand_off_keeps_the_container_until_the_replacement_runs() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    let old = running_on(&h, "web", 0, "old", "c1").await;
    h.auctioneer.take_lrp_requests();
    let mut events = h.bbs.events().subscribe_lrp(None);

    let keep = h
        .bbs
        .evacuate_running_actual_lrp(&key("web", 0), &old, &net(61000))
        .await
        .unwrap();
    assert!(keep, "first call: keep the container");
    let evac = h
        .row("web", 0, Presence::Evacuating)
        .await
        .expect("an EVACUATING copy");
    assert_eq!(evac.state, ActualLrpState::Running);
    assert_eq!(evac.instance_key, Some(old.clone()));
    assert!(evac.routable, "the copy is still routed");
    let ord = h.ordinary("web", 0).await;
    assert_eq!(ord.state, ActualLrpState::Unclaimed);
    assert_eq!(
        drain_names(&mut events, lrp_name),
        ["actual_lrp_instance_changed", "actual_lrp_instance_created"]
    );
    assert_eq!(h.auctioneer.take_lrp_requests()[0].indices, [0]);

    // While the replacement is pending: keep.
    assert!(h
        .bbs
        .evacuate_running_actual_lrp(&key("web", 0), &old, &net(61000))
        .await
        .unwrap());
    let new = ik("new", "c2");
    h.bbs.claim_actual_lrp(&key("web", 0), &new).await.unwrap();
    assert!(h
        .bbs
        .evacuate_running_actual_lrp(&key("web", 0), &old, &net(61000))
        .await
        .unwrap());
    // The replacement runs: its start removes the copy; the old cell may let go.
    h.bbs
        .start_actual_lrp(&key("web", 0), &new, &net(61001), true)
        .await
        .unwrap();
    assert!(h.row("web", 0, Presence::Evacuating).await.is_none());
    assert!(!h
        .bbs
        .evacuate_running_actual_lrp(&key("web", 0), &old, &net(61000))
        .await
        .unwrap());
    assert_eq!(h.ordinary("web", 0).await.instance_key, Some(new));
}

#[tokio::test]
async fn a_crashed_replacement_also_ends_the_copy() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    let old = running_on(&h, "web", 0, "old", "c1").await;
    assert!(h
        .bbs
        .evacuate_running_actual_lrp(&key("web", 0), &old, &net(1))
        .await
        .unwrap());
    // The replacement crashes while starting, three times (the third keeps it CRASHED).
    for n in 0..3 {
        let r = ik(&format!("r{n}"), "c2");
        h.bbs.claim_actual_lrp(&key("web", 0), &r).await.unwrap();
        h.bbs
            .crash_actual_lrp(&key("web", 0), &r, "boom")
            .await
            .unwrap();
        if n < 2 {
            assert!(h
                .bbs
                .evacuate_running_actual_lrp(&key("web", 0), &old, &net(1))
                .await
                .unwrap());
        }
    }
    assert_eq!(h.ordinary("web", 0).await.state, ActualLrpState::Crashed);
    assert!(h.row("web", 0, Presence::Evacuating).await.is_some());
    assert!(!h
        .bbs
        .evacuate_running_actual_lrp(&key("web", 0), &old, &net(1))
        .await
        .unwrap());
    assert!(h.row("web", 0, Presence::Evacuating).await.is_none());
}

#[tokio::test]
async fn the_copy_goes_when_the_desired_lrp_is_gone_or_another_cell_holds_it() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    let old = running_on(&h, "web", 0, "old", "c1").await;
    assert!(h
        .bbs
        .evacuate_running_actual_lrp(&key("web", 0), &old, &net(1))
        .await
        .unwrap());
    // Another cell asking about the same index is told to let go, and writes nothing.
    let other = ik("other", "c3");
    assert!(!h
        .bbs
        .evacuate_running_actual_lrp(&key("web", 0), &other, &net(2))
        .await
        .unwrap());
    assert_eq!(
        h.row("web", 0, Presence::Evacuating)
            .await
            .unwrap()
            .instance_key,
        Some(old.clone())
    );
    // The DesiredLRP is removed: the copy is dropped.
    h.bbs
        .remove_desired_lrp(&ProcessGuid::new("web"))
        .await
        .unwrap();
    assert!(!h
        .bbs
        .evacuate_running_actual_lrp(&key("web", 0), &old, &net(1))
        .await
        .unwrap());
    assert!(h.row("web", 0, Presence::Evacuating).await.is_none());
}

#[tokio::test]
async fn claimed_stopped_and_crashed_instances() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 3)).await.unwrap();
    h.auctioneer.take_lrp_requests();
    // CLAIMED: unclaimed and auctioned, container not kept.
    let c = ik("c", "c1");
    h.bbs.claim_actual_lrp(&key("web", 0), &c).await.unwrap();
    assert!(!h
        .bbs
        .evacuate_claimed_actual_lrp(&key("web", 0), &c)
        .await
        .unwrap());
    assert_eq!(h.ordinary("web", 0).await.state, ActualLrpState::Unclaimed);
    assert_eq!(h.auctioneer.take_lrp_requests()[0].indices, [0]);
    // Stopped: the row goes.
    let s = running_on(&h, "web", 1, "s", "c1").await;
    assert!(!h
        .bbs
        .evacuate_stopped_actual_lrp(&key("web", 1), &s)
        .await
        .unwrap());
    assert!(h.row("web", 1, Presence::Ordinary).await.is_none());
    // Crashed: recorded, not auctioned at once (stale-unclaimed convergence picks it up).
    let x = running_on(&h, "web", 2, "x", "c1").await;
    h.auctioneer.take_lrp_requests();
    assert!(!h
        .bbs
        .evacuate_crashed_actual_lrp(&key("web", 2), &x, "oom")
        .await
        .unwrap());
    let row = h.ordinary("web", 2).await;
    assert_eq!((row.state, row.crash_count), (ActualLrpState::Unclaimed, 1));
    assert_eq!(row.crash_reason, "oom");
    assert!(h.auctioneer.take_lrp_requests().is_empty());
}

#[tokio::test]
async fn recreate_unclaims_one_at_a_time_only_while_all_run() {
    let h = harness();
    let mut d = lrp("web", 2);
    d.scheduling_info.update_strategy = UpdateStrategy::Recreate;
    h.bbs.desire_lrp(d).await.unwrap();
    let a = running_on(&h, "web", 0, "a", "c1").await;
    // Index 1 is not running yet: keep, nothing written.
    let before = h.ordinary("web", 0).await;
    assert!(h
        .bbs
        .evacuate_running_actual_lrp(&key("web", 0), &a, &net(1))
        .await
        .unwrap());
    assert_eq!(
        h.ordinary("web", 0).await.modification_tag,
        before.modification_tag
    );
    let b = running_on(&h, "web", 1, "b", "c1").await;
    // All running: the first is unclaimed in place, no EVACUATING copy.
    assert!(!h
        .bbs
        .evacuate_running_actual_lrp(&key("web", 0), &a, &net(1))
        .await
        .unwrap());
    assert_eq!(h.ordinary("web", 0).await.state, ActualLrpState::Unclaimed);
    assert!(h.row("web", 0, Presence::Evacuating).await.is_none());
    // Now not all are running: the second waits.
    assert!(h
        .bbs
        .evacuate_running_actual_lrp(&key("web", 1), &b, &net(1))
        .await
        .unwrap());
    assert_eq!(h.ordinary("web", 1).await.state, ActualLrpState::Running);
}

#[tokio::test]
async fn remove_evacuating() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    let old = running_on(&h, "web", 0, "old", "c1").await;
    assert!(h
        .bbs
        .evacuate_running_actual_lrp(&key("web", 0), &old, &net(1))
        .await
        .unwrap());
    let e = h
        .bbs
        .remove_evacuating_actual_lrp(&key("web", 0), &ik("z", "c9"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ActualLrpCannotBeRemoved));
    h.bbs
        .remove_evacuating_actual_lrp(&key("web", 0), &old)
        .await
        .unwrap();
    assert!(h.row("web", 0, Presence::Evacuating).await.is_none());
    h.bbs
        .remove_evacuating_actual_lrp(&key("web", 0), &old)
        .await
        .unwrap();
}
