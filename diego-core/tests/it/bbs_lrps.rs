//! The BBS's LRP rules (SPEC.md, LRPs, crash restart policy, events).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use diego_core::bbs::rep_client::RepCall;
use diego_core::events::ActualLrpCrashed;
use diego_core::store::{ActualLrpFilter, Precondition, Record, WriteBatch};
use diego_core::*;

fn pg(s: &str) -> ProcessGuid {
    ProcessGuid::new(s)
}

#[tokio::test]
async fn desire_creates_the_lrp_and_its_unclaimed_instances() {
    let h = harness();
    let mut events = h.bbs.events().subscribe_lrp(None);
    h.bbs.desire_lrp(lrp("web", 3)).await.unwrap();
    let rows = h
        .bbs
        .actual_lrps(&ActualLrpFilter::process(&pg("web")))
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows
        .iter()
        .all(|r| r.state == ActualLrpState::Unclaimed && r.presence == Presence::Ordinary));
    assert_eq!(
        drain_names(&mut events, lrp_name),
        [
            "desired_lrp_created",
            "actual_lrp_instance_created",
            "actual_lrp_instance_created",
            "actual_lrp_instance_created"
        ]
    );
    let reqs = h.auctioneer.take_lrp_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].indices, [0, 1, 2]);
    let d = h.bbs.desired_lrp_by_process_guid(&pg("web")).await.unwrap();
    assert_eq!(d.run_info.created_at, T0);
    let e = h.bbs.desire_lrp(lrp("web", 1)).await.unwrap_err();
    assert!(
        matches!(e, Error::ResourceExists),
        "an existing guid is not an update"
    );
}

#[tokio::test]
async fn invalid_lrps_are_refused_whole() {
    let h = harness();
    let mut bad = lrp("web", -1);
    bad.scheduling_info.domain.clear();
    let e = h.bbs.desire_lrp(bad).await.unwrap_err();
    let v = e.validation_errors().unwrap();
    assert!(v.has_field("instances") && v.has_field("domain"));
    assert!(h
        .bbs
        .desired_lrps(&Default::default())
        .await
        .unwrap()
        .is_empty());
    let e = h
        .bbs
        .claim_actual_lrp(&key("", -1), &ik("", ""))
        .await
        .unwrap_err();
    let v = e.validation_errors().unwrap();
    assert!(v.has_field("actual_lrp_key.process_guid"));
    assert!(v.has_field("actual_lrp_key.index"));
    assert!(v.has_field("actual_lrp_instance_key.cell_id"));
}

#[tokio::test]
async fn claim_follows_the_transition_table() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    let mut events = h.bbs.events().subscribe_lrp(None);
    let a = ik("a", "c1");
    h.bbs.claim_actual_lrp(&key("web", 0), &a).await.unwrap();
    let row = h.ordinary("web", 0).await;
    assert_eq!(
        (row.state, row.instance_key.clone()),
        (ActualLrpState::Claimed, Some(a.clone()))
    );
    assert_eq!(
        drain_names(&mut events, lrp_name),
        ["actual_lrp_instance_changed"]
    );
    // Claiming again with the same instance: no write, no event.
    h.bbs.claim_actual_lrp(&key("web", 0), &a).await.unwrap();
    assert_eq!(
        h.ordinary("web", 0).await.modification_tag,
        row.modification_tag
    );
    assert!(drain_names(&mut events, lrp_name).is_empty());
    // Another instance cannot claim it.
    let e = h
        .bbs
        .claim_actual_lrp(&key("web", 0), &ik("b", "c2"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ActualLrpCannotBeClaimed));
    assert_eq!(e.to_string(), "cannot claim actual LRP");
    // RUNNING → CLAIMED only by the same instance.
    h.bbs
        .start_actual_lrp(&key("web", 0), &a, &net(61000), true)
        .await
        .unwrap();
    h.bbs.claim_actual_lrp(&key("web", 0), &a).await.unwrap();
    let row = h.ordinary("web", 0).await;
    assert_eq!(row.state, ActualLrpState::Claimed);
    assert!(row.net_info.is_none());
    // A wrong domain in the key cannot claim.
    let e = h
        .bbs
        .claim_actual_lrp(&ActualLrpKey::new("web", 0, "other"), &a)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ActualLrpCannotBeClaimed));
    // Missing rows.
    let e = h
        .bbs
        .claim_actual_lrp(&key("web", 5), &a)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ResourceNotFound));
}

#[tokio::test]
async fn start_is_also_the_heartbeat() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    let a = ik("a", "c1");
    h.bbs.claim_actual_lrp(&key("web", 0), &a).await.unwrap();
    h.advance(Duration::from_secs(1));
    let mut events = h.bbs.events().subscribe_lrp(None);
    h.bbs
        .start_actual_lrp(&key("web", 0), &a, &net(61000), false)
        .await
        .unwrap();
    let row = h.ordinary("web", 0).await;
    assert_eq!(row.state, ActualLrpState::Running);
    assert_eq!(row.net_info, Some(net(61000)));
    assert!(!row.routable);
    assert_eq!(row.since, T0 + Duration::from_secs(1));
    assert_eq!(
        drain_names(&mut events, lrp_name),
        ["actual_lrp_instance_changed"]
    );
    // Nothing changed: no write, no event.
    h.advance(Duration::from_secs(30));
    h.bbs
        .start_actual_lrp(&key("web", 0), &a, &net(61000), false)
        .await
        .unwrap();
    let same = h.ordinary("web", 0).await;
    assert_eq!(same.modification_tag, row.modification_tag);
    assert!(drain_names(&mut events, lrp_name).is_empty());
    // A readiness flip is a change: it writes and resets `since`.
    h.bbs
        .start_actual_lrp(&key("web", 0), &a, &net(61000), true)
        .await
        .unwrap();
    let flipped = h.ordinary("web", 0).await;
    assert!(flipped.routable);
    assert!(flipped.modification_tag.succeeds(&row.modification_tag));
    assert_eq!(flipped.since, T0 + Duration::from_secs(31));
    // Another instance cannot start a RUNNING row.
    let e = h
        .bbs
        .start_actual_lrp(&key("web", 0), &ik("b", "c2"), &net(1), true)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ActualLrpCannotBeStarted));
    assert_eq!(e.to_string(), "cannot start actual LRP");
}

#[tokio::test]
async fn start_from_unclaimed_with_any_instance_and_on_a_missing_index() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    h.bbs
        .start_actual_lrp(&key("web", 0), &ik("x", "c9"), &net(1), true)
        .await
        .unwrap();
    assert_eq!(h.ordinary("web", 0).await.state, ActualLrpState::Running);
    let mut events = h.bbs.events().subscribe_lrp(None);
    h.bbs
        .start_actual_lrp(&key("web", 3), &ik("y", "c9"), &net(2), true)
        .await
        .unwrap();
    let row = h.ordinary("web", 3).await;
    assert_eq!(row.state, ActualLrpState::Running);
    assert_eq!(
        drain_names(&mut events, lrp_name),
        ["actual_lrp_instance_created"]
    );
}

async fn running(h: &Harness, index: i32, instance: &str) -> ActualLrpInstanceKey {
    let a = ik(instance, "c1");
    h.bbs
        .claim_actual_lrp(&key("web", index), &a)
        .await
        .unwrap();
    h.bbs
        .start_actual_lrp(&key("web", index), &a, &net(61000), true)
        .await
        .unwrap();
    a
}

#[tokio::test]
async fn crash_restart_policy_through_the_bbs() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    h.auctioneer.take_lrp_requests();
    let mut events = h.bbs.events().subscribe_lrp(None);
    for n in 1..=2 {
        let a = running(&h, 0, &format!("i{n}")).await;
        drain_names(&mut events, lrp_name);
        h.bbs
            .crash_actual_lrp(&key("web", 0), &a, "boom")
            .await
            .unwrap();
        let row = h.ordinary("web", 0).await;
        assert_eq!(
            row.state,
            ActualLrpState::Unclaimed,
            "crash {n} restarts at once"
        );
        assert_eq!(row.crash_count, n);
        assert_eq!(row.crash_reason, "boom");
        assert!(row.instance_key.is_none());
        assert_eq!(
            drain_names(&mut events, lrp_name),
            [
                "actual_lrp_crashed",
                "actual_lrp_instance_created",
                "actual_lrp_instance_removed"
            ]
        );
        assert_eq!(
            h.auctioneer.take_lrp_requests().len(),
            1,
            "an immediate restart is auctioned"
        );
    }
    let a = running(&h, 0, "i3").await;
    drain_names(&mut events, lrp_name);
    h.bbs
        .crash_actual_lrp(&key("web", 0), &a, "boom")
        .await
        .unwrap();
    let row = h.ordinary("web", 0).await;
    assert_eq!(row.state, ActualLrpState::Crashed);
    assert_eq!(row.crash_count, 3);
    assert_eq!(
        drain_names(&mut events, lrp_name),
        ["actual_lrp_crashed", "actual_lrp_instance_changed"]
    );
    assert!(
        h.auctioneer.take_lrp_requests().is_empty(),
        "a delayed restart waits for convergence"
    );
    // A CRASHED row cannot be claimed, started or crashed.
    assert!(matches!(
        h.bbs.claim_actual_lrp(&key("web", 0), &a).await,
        Err(Error::ActualLrpCannotBeClaimed)
    ));
    assert!(matches!(
        h.bbs
            .start_actual_lrp(&key("web", 0), &a, &net(1), true)
            .await,
        Err(Error::ActualLrpCannotBeStarted)
    ));
    assert!(matches!(
        h.bbs.crash_actual_lrp(&key("web", 0), &a, "x").await,
        Err(Error::ActualLrpCannotBeCrashed)
    ));
}

#[tokio::test]
async fn crash_count_resets_after_five_minutes_running_and_reasons_are_truncated() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    for n in 1..=2 {
        let a = running(&h, 0, &format!("i{n}")).await;
        h.bbs
            .crash_actual_lrp(&key("web", 0), &a, "boom")
            .await
            .unwrap();
    }
    let a = running(&h, 0, "i3").await;
    h.advance(Duration::from_secs(5 * 60 + 1));
    let mut events = h.bbs.events().subscribe_lrp(None);
    let long = "y".repeat(3_000);
    h.bbs
        .crash_actual_lrp(&key("web", 0), &a, &long)
        .await
        .unwrap();
    let row = h.ordinary("web", 0).await;
    assert_eq!(
        row.crash_count, 1,
        "a crash after 5 minutes RUNNING resets the count"
    );
    assert_eq!(row.state, ActualLrpState::Unclaimed);
    assert!(row.crash_reason.ends_with("(truncated)"));
    assert_eq!(row.crash_reason.len(), 1_024);
    let crashed = drain(&mut events)
        .into_iter()
        .find_map(|e| match e {
            LrpEvent::ActualLrpCrashed(c) => Some(c),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        crashed,
        ActualLrpCrashed {
            key: key("web", 0),
            instance_key: a,
            crash_count: 1,
            crash_reason: long,
            since: h.clock.now(),
        },
        "the crash event carries the untruncated reason"
    );
}

#[tokio::test]
async fn crash_200_is_never_restarted() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    // Put the row at 199 crashes, CLAIMED.
    let mut row = h.ordinary("web", 0).await;
    let before = row.clone();
    row.crash_count = 199;
    row.state = ActualLrpState::Claimed;
    row.instance_key = Some(ik("a", "c1"));
    row.modification_tag = before.modification_tag.incremented();
    let mut b = WriteBatch::new();
    b.put(
        Record::actual_lrp(row),
        Precondition::Tag(before.modification_tag),
    );
    h.bbs.store().write(b).await.unwrap();
    h.bbs
        .crash_actual_lrp(&key("web", 0), &ik("a", "c1"), "boom")
        .await
        .unwrap();
    let row = h.ordinary("web", 0).await;
    assert_eq!((row.state, row.crash_count), (ActualLrpState::Crashed, 200));
    assert!(!h.bbs.config().restart.should_restart(
        200,
        row.since,
        row.since + Duration::from_secs(86_400)
    ));
}

#[tokio::test]
async fn fail_actual_lrp_only_from_unclaimed() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 2)).await.unwrap();
    h.bbs
        .fail_actual_lrp(&key("web", 0), "insufficient resources: memory")
        .await
        .unwrap();
    assert_eq!(
        h.ordinary("web", 0).await.placement_error,
        "insufficient resources: memory"
    );
    running(&h, 1, "a").await;
    let e = h
        .bbs
        .fail_actual_lrp(&key("web", 1), "x")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ActualLrpCannotBeFailed));
    h.bbs.fail_actual_lrp(&key("web", 7), "x").await.unwrap();
    // A claim clears the placement error.
    h.bbs
        .claim_actual_lrp(&key("web", 0), &ik("b", "c1"))
        .await
        .unwrap();
    assert_eq!(h.ordinary("web", 0).await.placement_error, "");
}

#[tokio::test]
async fn remove_and_retire() {
    let h = harness();
    h.register_cell("c1").await;
    h.bbs.desire_lrp(lrp("web", 3)).await.unwrap();
    let a = running(&h, 0, "a").await;
    let e = h
        .bbs
        .remove_actual_lrp(&key("web", 0), Some(&ik("z", "c1")))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ActualLrpCannotBeRemoved));
    let mut events = h.bbs.events().subscribe_lrp(None);
    h.bbs
        .remove_actual_lrp(&key("web", 0), Some(&a))
        .await
        .unwrap();
    assert!(h.row("web", 0, Presence::Ordinary).await.is_none());
    assert_eq!(
        drain_names(&mut events, lrp_name),
        ["actual_lrp_instance_removed"]
    );
    assert!(matches!(
        h.bbs.remove_actual_lrp(&key("web", 0), None).await,
        Err(Error::ResourceNotFound)
    ));

    // Retire: unclaimed rows are deleted.
    h.bbs.retire_actual_lrp(&key("web", 1)).await.unwrap();
    assert!(h.row("web", 1, Presence::Ordinary).await.is_none());
    // Running on a live cell: the cell is asked to stop it.
    let b = running(&h, 2, "b").await;
    h.bbs.retire_actual_lrp(&key("web", 2)).await.unwrap();
    assert_eq!(
        h.reps.take_calls(),
        [RepCall::StopLrpInstance {
            cell_id: CellId::new("c1"),
            key: key("web", 2),
            instance_key: b.clone()
        }]
    );
    assert!(
        h.row("web", 2, Presence::Ordinary).await.is_some(),
        "the cell removes it when stopped"
    );
    // An unreachable cell: five attempts, then the error.
    h.reps.set_failing(true);
    assert!(h.bbs.retire_actual_lrp(&key("web", 2)).await.is_err());
    assert_eq!(h.reps.take_calls().len(), 5);
    // The cell is gone: the row is deleted.
    h.bbs.remove_cell(&CellId::new("c1")).await.unwrap();
    h.bbs.retire_actual_lrp(&key("web", 2)).await.unwrap();
    assert!(h.row("web", 2, Presence::Ordinary).await.is_none());
}

#[tokio::test]
async fn scaling_up_and_down() {
    let h = harness();
    h.register_cell("c1").await;
    h.bbs.desire_lrp(lrp("web", 2)).await.unwrap();
    h.auctioneer.take_lrp_requests();
    h.bbs
        .update_desired_lrp(
            &pg("web"),
            DesiredLrpUpdate {
                instances: Some(5),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        h.bbs
            .actual_lrps(&ActualLrpFilter::process(&pg("web")))
            .await
            .unwrap()
            .len(),
        5
    );
    assert_eq!(h.auctioneer.take_lrp_requests()[0].indices, [2, 3, 4]);
    let running3 = running(&h, 3, "r3").await;
    let running4 = running(&h, 4, "r4").await;
    // An evacuating copy at index 4 is left alone by a scale-down.
    let mut evac = h.ordinary("web", 4).await;
    evac.presence = Presence::Evacuating;
    evac.modification_tag = ModificationTag::fresh();
    let mut b = WriteBatch::new();
    b.put(Record::actual_lrp(evac), Precondition::Absent);
    h.bbs.store().write(b).await.unwrap();

    let before = h.bbs.desired_lrp_by_process_guid(&pg("web")).await.unwrap();
    h.bbs
        .update_desired_lrp(
            &pg("web"),
            DesiredLrpUpdate {
                instances: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let after = h.bbs.desired_lrp_by_process_guid(&pg("web")).await.unwrap();
    assert_eq!(after.scheduling_info.instances, 1);
    assert!(after
        .scheduling_info
        .modification_tag
        .succeeds(&before.scheduling_info.modification_tag));
    // UNCLAIMED rows at or above the count are deleted; running ones are stopped by their cell.
    assert!(h.row("web", 1, Presence::Ordinary).await.is_none());
    assert!(h.row("web", 2, Presence::Ordinary).await.is_none());
    let mut stopped: Vec<_> = h
        .reps
        .take_calls()
        .into_iter()
        .map(|c| match c {
            RepCall::StopLrpInstance { instance_key, .. } => instance_key,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    stopped.sort_by(|a, b| a.instance_guid.cmp(&b.instance_guid));
    assert_eq!(stopped, [running3, running4]);
    assert!(h.row("web", 4, Presence::Evacuating).await.is_some());
}

#[tokio::test]
async fn updates_change_only_their_fields_and_push_metric_tags() {
    let h = harness();
    h.register_cell("c1").await;
    h.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    running(&h, 0, "a").await;
    let before = h.bbs.desired_lrp_by_process_guid(&pg("web")).await.unwrap();
    let mut events = h.bbs.events().subscribe_lrp(None);
    let mut tags = MetricTags::new();
    tags.insert("team".into(), MetricTagValue::fixed("blue"));
    h.bbs
        .update_desired_lrp(
            &pg("web"),
            DesiredLrpUpdate {
                routes: Some(Routes::http(&["web.example"], 8080)),
                annotation: Some("v2".into()),
                metric_tags: Some(tags.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let after = h.bbs.desired_lrp_by_process_guid(&pg("web")).await.unwrap();
    assert_eq!(
        after.scheduling_info.routes.http_routes().unwrap()[0].hostnames,
        ["web.example"]
    );
    assert_eq!(after.scheduling_info.annotation, "v2");
    assert_eq!(after.run_info.metric_tags, tags);
    assert_eq!(after.run_info.action, before.run_info.action);
    assert_eq!(after.scheduling_info.instances, 1);
    assert_eq!(drain_names(&mut events, lrp_name), ["desired_lrp_changed"]);
    assert_eq!(
        h.ordinary("web", 0).await.state,
        ActualLrpState::Running,
        "no restart"
    );
    assert!(matches!(
        &h.reps.take_calls()[..],
        [RepCall::UpdateLrpInstance { metric_tags, .. }] if metric_tags == &tags
    ));
    let e = h
        .bbs
        .update_desired_lrp(&pg("nope"), DesiredLrpUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::ResourceNotFound));
    let e = h
        .bbs
        .update_desired_lrp(
            &pg("web"),
            DesiredLrpUpdate {
                instances: Some(-2),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(e.validation_errors().unwrap().has_field("instances"));
}

#[tokio::test]
async fn remove_desired_lrp_retires_its_instances() {
    let h = harness();
    h.register_cell("c1").await;
    h.bbs.desire_lrp(lrp("web", 2)).await.unwrap();
    let a = running(&h, 0, "a").await;
    let mut events = h.bbs.events().subscribe_lrp(None);
    h.bbs.remove_desired_lrp(&pg("web")).await.unwrap();
    assert!(matches!(
        h.bbs.desired_lrp_by_process_guid(&pg("web")).await,
        Err(Error::ResourceNotFound)
    ));
    assert!(h.row("web", 1, Presence::Ordinary).await.is_none());
    assert_eq!(
        h.reps.take_calls(),
        [RepCall::StopLrpInstance {
            cell_id: CellId::new("c1"),
            key: key("web", 0),
            instance_key: a
        }]
    );
    assert_eq!(
        drain_names(&mut events, lrp_name),
        ["desired_lrp_removed", "actual_lrp_instance_removed"],
        "one Removed per instance (not Diego's double)"
    );
}

async fn put_row(h: &Harness, row: ActualLrp) {
    let mut b = WriteBatch::new();
    b.put(Record::actual_lrp(row), Precondition::Absent);
    h.bbs.store().write(b).await.unwrap();
}

#[tokio::test]
async fn suspect_instances() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    let old = running(&h, 0, "old").await;
    // Convergence made the old instance SUSPECT and unclaimed the ordinary row.
    let mut suspect = h.ordinary("web", 0).await;
    suspect.presence = Presence::Suspect;
    suspect.modification_tag = ModificationTag::fresh();
    put_row(&h, suspect).await;
    h.bbs.unclaim_actual_lrp(&key("web", 0)).await.unwrap();

    // Claim and start from the suspect instance are ignored, answered as success.
    h.bbs.claim_actual_lrp(&key("web", 0), &old).await.unwrap();
    h.bbs
        .start_actual_lrp(&key("web", 0), &old, &net(1), true)
        .await
        .unwrap();
    assert_eq!(h.ordinary("web", 0).await.state, ActualLrpState::Unclaimed);
    // A crash from the suspect instance deletes the suspect row.
    h.bbs
        .crash_actual_lrp(&key("web", 0), &old, "gone")
        .await
        .unwrap();
    assert!(h.row("web", 0, Presence::Suspect).await.is_none());
    assert_eq!(h.ordinary("web", 0).await.crash_count, 0);
}

#[tokio::test]
async fn a_running_replacement_ends_the_suspect_and_evacuating_rows() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 1)).await.unwrap();
    running(&h, 0, "old").await;
    let mut suspect = h.ordinary("web", 0).await;
    suspect.presence = Presence::Suspect;
    suspect.modification_tag = ModificationTag::fresh();
    put_row(&h, suspect).await;
    h.bbs.unclaim_actual_lrp(&key("web", 0)).await.unwrap();
    let mut events = h.bbs.events().subscribe_lrp(None);
    let new = ik("new", "c2");
    h.bbs.claim_actual_lrp(&key("web", 0), &new).await.unwrap();
    assert!(
        h.row("web", 0, Presence::Suspect).await.is_some(),
        "kept until the replacement runs"
    );
    h.bbs
        .start_actual_lrp(&key("web", 0), &new, &net(2), true)
        .await
        .unwrap();
    assert!(h.row("web", 0, Presence::Suspect).await.is_none());
    assert_eq!(
        drain_names(&mut events, lrp_name),
        [
            "actual_lrp_instance_changed",
            "actual_lrp_instance_changed",
            "actual_lrp_instance_removed"
        ],
        "events of the running instance come first"
    );
}

#[tokio::test]
async fn the_cell_filter_and_per_instance_order() {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 2)).await.unwrap();
    let mut c1 = h.bbs.events().subscribe_lrp(Some(CellId::new("c1")));
    let mut all = h.bbs.events().subscribe_lrp(None);
    let a = ik("a", "c1");
    h.bbs.claim_actual_lrp(&key("web", 0), &a).await.unwrap();
    h.bbs
        .claim_actual_lrp(&key("web", 1), &ik("b", "c2"))
        .await
        .unwrap();
    h.bbs
        .start_actual_lrp(&key("web", 0), &a, &net(1), true)
        .await
        .unwrap();
    h.bbs
        .update_desired_lrp(
            &pg("web"),
            DesiredLrpUpdate {
                annotation: Some("x".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mine = drain(&mut c1);
    assert_eq!(mine.len(), 2, "only c1's actual-LRP events: {mine:?}");
    let states: Vec<_> = mine
        .iter()
        .map(|e| match e {
            LrpEvent::ActualLrpInstanceChanged { after, .. } => after.state,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(states, [ActualLrpState::Claimed, ActualLrpState::Running]);
    assert_eq!(drain(&mut all).len(), 4);
}

#[tokio::test]
async fn domains_and_cell_presences_expire() {
    let h = harness();
    h.bbs
        .upsert_domain("apps", Duration::from_secs(120))
        .await
        .unwrap();
    h.bbs
        .upsert_domain("forever", Duration::ZERO)
        .await
        .unwrap();
    assert!(h.bbs.upsert_domain("", Duration::ZERO).await.is_err());
    h.register_cell("c1").await;
    assert_eq!(h.bbs.cells().await.unwrap().len(), 1);
    h.advance(Duration::from_secs(10));
    h.register_cell("c1").await; // renewed
    h.advance(Duration::from_secs(10));
    assert_eq!(
        h.bbs.cell_by_id(&CellId::new("c1")).await.unwrap().cell_id,
        "c1"
    );
    h.advance(Duration::from_secs(6));
    assert!(
        h.bbs.cells().await.unwrap().is_empty(),
        "15 s after the last renewal the lease is over"
    );
    assert!(matches!(
        h.bbs.cell_by_id(&CellId::new("c1")).await,
        Err(Error::ResourceNotFound)
    ));
    let expired = h.bbs.expire_cells().await.unwrap();
    assert_eq!(expired.len(), 1);
    let mut fresh = h.bbs.domains().await.unwrap();
    fresh.sort();
    assert_eq!(fresh, ["apps", "forever"]);
    h.advance(Duration::from_secs(120));
    assert_eq!(h.bbs.domains().await.unwrap(), ["forever"]);
    assert_eq!(h.bbs.prune_expired_domains().await.unwrap(), ["apps"]);
    let bad = CellPresence::default();
    assert!(h
        .bbs
        .register_cell(&bad)
        .await
        .unwrap_err()
        .validation_errors()
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_claimers_exactly_one_wins_even_across_bbs_processes() {
    // Four BBS handles on one store stand for four BBS processes: only the store's
    // compare-and-swap keeps them from losing each other's writes.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let bbss: Vec<Bbs> = (0..4)
        .map(|_| Bbs::builder().store(store.clone()).build())
        .collect();
    for round in 0..10 {
        let p = format!("web{round}");
        bbss[0].desire_lrp(lrp(&p, 1)).await.unwrap();
        let mut handles = Vec::new();
        for i in 0..16 {
            let bbs = bbss[i % 4].clone();
            let p = p.clone();
            handles.push(tokio::spawn(async move {
                bbs.claim_actual_lrp(&key(&p, 0), &ik(&format!("i{i}"), &format!("c{i}")))
                    .await
            }));
        }
        let mut wins = 0;
        for handle in handles {
            match handle.await.unwrap() {
                Ok(()) => wins += 1,
                Err(Error::ActualLrpCannotBeClaimed) => {}
                Err(e) => panic!("a losing claim must be refused by the rules, not {e:?}"),
            }
        }
        assert_eq!(wins, 1, "round {round}");
    }
}

#[tokio::test]
async fn cell_presences_are_leases_on_the_store_lock() {
    use diego_core::lock::Lock;
    use diego_core::store::MemoryStore;
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let bbs = Bbs::builder()
        .store(store.clone())
        .clock(clock.clone())
        .build();
    let presence = |address: &str| CellPresence {
        cell_id: CellId::new("c1"),
        rep_address: address.into(),
        capacity: CellCapacity {
            memory_mb: 1024,
            disk_mb: 1024,
            containers: 10,
        },
        ..Default::default()
    };
    bbs.register_cell(&presence("10.0.0.1:1800")).await.unwrap();
    let lease = store.holder("cells/c1").await.unwrap().expect("a lease");
    assert_eq!(lease.owner, "10.0.0.1:1800");
    assert_eq!(lease.expires_at, T0 + Duration::from_secs(15));

    // A second rep claiming the same cell id while the lease lives is refused.
    clock.advance(Duration::from_secs(5));
    let err = bbs
        .register_cell(&presence("10.0.0.2:1800"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "LockCollision", "{err}");
    assert!(err.to_string().contains("10.0.0.1:1800"), "{err}");
    let cells = bbs.cells().await.unwrap();
    assert_eq!(cells.len(), 1);
    assert_eq!(cells[0].rep_address, "10.0.0.1:1800");

    // The holder renews: same token, later expiry.
    bbs.register_cell(&presence("10.0.0.1:1800")).await.unwrap();
    let renewed = store.holder("cells/c1").await.unwrap().unwrap();
    assert_eq!(renewed.token, lease.token);
    assert_eq!(renewed.expires_at, T0 + Duration::from_secs(20));

    // Once the lease ends the cell is gone, whatever its record says; a newcomer takes
    // the lease over.
    clock.advance(Duration::from_secs(15));
    assert!(bbs.cells().await.unwrap().is_empty());
    bbs.register_cell(&presence("10.0.0.2:1800")).await.unwrap();
    let taken = store.holder("cells/c1").await.unwrap().unwrap();
    assert_eq!(taken.token, lease.token + 1);
    let cells = bbs.cells().await.unwrap();
    assert_eq!(cells.len(), 1);
    assert_eq!(cells[0].rep_address, "10.0.0.2:1800");
    assert!(bbs.expire_cells().await.unwrap().is_empty());

    // Removing a cell releases its lease at once.
    bbs.remove_cell(&CellId::new("c1")).await.unwrap();
    assert_eq!(store.holder("cells/c1").await.unwrap(), None);
    assert!(bbs.cells().await.unwrap().is_empty());
    bbs.register_cell(&presence("10.0.0.1:1800")).await.unwrap();
    assert_eq!(bbs.cells().await.unwrap().len(), 1);
}

#[tokio::test]
async fn cell_presences_live_on_the_lock_the_bbs_is_given() {
    use diego_core::lock::Lock;
    use diego_core::store::MemoryStore;
    let store = Arc::new(MemoryStore::new());
    // Another lock than the store's own: a MemoryStore seen only as a Lock.
    let lock = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let bbs = Bbs::builder()
        .store(store.clone())
        .lock(lock.clone())
        .clock(clock.clone())
        .build();
    let presence = cell_presence("c1", "10.0.0.1:1800");
    bbs.register_cell(&presence).await.unwrap();
    let lease = lock.holder("cells/c1").await.unwrap().expect("a lease");
    assert_eq!(lease.owner, "10.0.0.1:1800");
    assert_eq!(
        store.holder("cells/c1").await.unwrap(),
        None,
        "the store's own lock is not used"
    );
    // The record is the store's; the lease decides whether the cell is live.
    assert_eq!(store.cell_presences().await.unwrap().len(), 1);
    assert_eq!(bbs.cells().await.unwrap().len(), 1);
    assert_eq!(
        bbs.cell_by_id(&CellId::new("c1"))
            .await
            .unwrap()
            .rep_address,
        "10.0.0.1:1800"
    );
    lock.release("cells/c1", "10.0.0.1:1800").await.unwrap();
    assert!(bbs.cells().await.unwrap().is_empty());
    bbs.register_cell(&presence).await.unwrap();
    bbs.remove_cell(&CellId::new("c1")).await.unwrap();
    assert_eq!(lock.holder("cells/c1").await.unwrap(), None);
    assert!(store.cell_presences().await.unwrap().is_empty());
}
