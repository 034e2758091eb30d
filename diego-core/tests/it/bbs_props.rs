//! Property test: random sequences of rep calls never produce a transition outside
//! SPEC.md's table, never leave a row in an impossible shape, never return an error of
//! another operation, and never lose an instance (only removals delete an ORDINARY row).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use diego_core::store::ActualLrpFilter;
use diego_core::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Claim(i32, u8, u8),
    Start(i32, u8, u8, bool),
    Crash(i32, u8, u8),
    Remove(i32, u8, u8),
    Fail(i32),
    EvacRunning(i32, u8, u8),
    EvacClaimed(i32, u8, u8),
    EvacStopped(i32, u8, u8),
    EvacCrashed(i32, u8, u8),
    RemoveEvacuating(i32, u8, u8),
    Unclaim(i32),
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let idx = 0i32..2;
    let inst = 0u8..3;
    let cell = 0u8..3;
    prop_oneof![
        4 => (idx.clone(), inst.clone(), cell.clone()).prop_map(|(i, g, c)| Op::Claim(i, g, c)),
        4 => (idx.clone(), inst.clone(), cell.clone(), any::<bool>()).prop_map(|(i, g, c, r)| Op::Start(i, g, c, r)),
        3 => (idx.clone(), inst.clone(), cell.clone()).prop_map(|(i, g, c)| Op::Crash(i, g, c)),
        1 => (idx.clone(), inst.clone(), cell.clone()).prop_map(|(i, g, c)| Op::Remove(i, g, c)),
        1 => idx.clone().prop_map(Op::Fail),
        2 => (idx.clone(), inst.clone(), cell.clone()).prop_map(|(i, g, c)| Op::EvacRunning(i, g, c)),
        1 => (idx.clone(), inst.clone(), cell.clone()).prop_map(|(i, g, c)| Op::EvacClaimed(i, g, c)),
        1 => (idx.clone(), inst.clone(), cell.clone()).prop_map(|(i, g, c)| Op::EvacStopped(i, g, c)),
        1 => (idx.clone(), inst.clone(), cell.clone()).prop_map(|(i, g, c)| Op::EvacCrashed(i, g, c)),
        1 => (idx.clone(), inst, cell).prop_map(|(i, g, c)| Op::RemoveEvacuating(i, g, c)),
        1 => idx.prop_map(Op::Unclaim),
        1 => (1u16..400).prop_map(Op::Advance),
    ]
}

fn instance(g: u8, c: u8) -> ActualLrpInstanceKey {
    ik(&format!("g{g}"), &format!("c{c}"))
}

/// Whether `before → after` is in SPEC.md's table (same row, or the evacuation copy).
fn allowed(before: &ActualLrp, after: &ActualLrp) -> bool {
    use ActualLrpState::*;
    let same = before.instance_key.is_some() && before.instance_key == after.instance_key;
    if before.presence != after.presence {
        // The evacuation hand-off: a RUNNING ORDINARY row lives on as the EVACUATING copy.
        return before.presence == Presence::Ordinary
            && after.presence == Presence::Evacuating
            && before.state == Running
            && after.state == Running
            && same;
    }
    match after.state {
        Unclaimed => true,
        Claimed => before.state == Unclaimed || (matches!(before.state, Claimed | Running) && same),
        Running => matches!(before.state, Unclaimed | Claimed) || (before.state == Running && same),
        // A crash past the restart policy's immediate restarts: `Crashed`, then `Changed`
        // from the instance that held the row (CRASHED clears the instance key).
        Crashed => matches!(before.state, Claimed | Running) && before.instance_key.is_some(),
    }
}

fn well_formed(row: &ActualLrp) -> Result<(), String> {
    use ActualLrpState::*;
    let ok = match row.state {
        Unclaimed | Crashed => row.instance_key.is_none() && row.net_info.is_none(),
        Claimed => row.instance_key.is_some() && row.net_info.is_none(),
        Running => row.instance_key.is_some() && row.net_info.is_some(),
    };
    let presence_ok = row.presence != Presence::Evacuating || row.state == Running;
    if ok && presence_ok {
        Ok(())
    } else {
        Err(format!("malformed row {row:?}"))
    }
}

fn expected_error(op: &Op, e: &Error) -> bool {
    matches!(e, Error::ResourceNotFound)
        || match op {
            Op::Claim(..) => matches!(e, Error::ActualLrpCannotBeClaimed),
            Op::Start(..) => matches!(e, Error::ActualLrpCannotBeStarted),
            Op::Crash(..) | Op::EvacCrashed(..) => matches!(e, Error::ActualLrpCannotBeCrashed),
            Op::Remove(..) | Op::RemoveEvacuating(..) => {
                matches!(e, Error::ActualLrpCannotBeRemoved)
            }
            Op::Fail(_) => matches!(e, Error::ActualLrpCannotBeFailed),
            _ => false,
        }
}

async fn ordinary_indices(h: &Harness) -> BTreeSet<i32> {
    h.bbs
        .actual_lrps(&ActualLrpFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.presence == Presence::Ordinary)
        .map(|r| r.key.index)
        .collect()
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let h = harness();
    h.bbs.desire_lrp(lrp("web", 2)).await.unwrap();
    let mut events = h.bbs.events().subscribe_lrp(None);
    for op in ops {
        let before = ordinary_indices(&h).await;
        let k = |i: i32| key("web", i);
        let result: Result<(), Error> = match &op {
            Op::Claim(i, g, c) => h.bbs.claim_actual_lrp(&k(*i), &instance(*g, *c)).await,
            Op::Start(i, g, c, r) => {
                h.bbs
                    .start_actual_lrp(&k(*i), &instance(*g, *c), &net(61000 + u32::from(*c)), *r)
                    .await
            }
            Op::Crash(i, g, c) => {
                h.bbs
                    .crash_actual_lrp(&k(*i), &instance(*g, *c), "boom")
                    .await
            }
            Op::Remove(i, g, c) => {
                h.bbs
                    .remove_actual_lrp(&k(*i), Some(&instance(*g, *c)))
                    .await
            }
            Op::Fail(i) => {
                h.bbs
                    .fail_actual_lrp(&k(*i), "insufficient resources")
                    .await
            }
            Op::EvacRunning(i, g, c) => h
                .bbs
                .evacuate_running_actual_lrp(&k(*i), &instance(*g, *c), &net(1))
                .await
                .map(|_| ()),
            Op::EvacClaimed(i, g, c) => h
                .bbs
                .evacuate_claimed_actual_lrp(&k(*i), &instance(*g, *c))
                .await
                .map(|_| ()),
            Op::EvacStopped(i, g, c) => h
                .bbs
                .evacuate_stopped_actual_lrp(&k(*i), &instance(*g, *c))
                .await
                .map(|_| ()),
            Op::EvacCrashed(i, g, c) => h
                .bbs
                .evacuate_crashed_actual_lrp(&k(*i), &instance(*g, *c), "boom")
                .await
                .map(|_| ()),
            Op::RemoveEvacuating(i, g, c) => {
                h.bbs
                    .remove_evacuating_actual_lrp(&k(*i), &instance(*g, *c))
                    .await
            }
            Op::Unclaim(i) => h.bbs.unclaim_actual_lrp(&k(*i)).await,
            Op::Advance(s) => {
                h.advance(Duration::from_secs(u64::from(*s)));
                Ok(())
            }
        };
        if let Err(e) = &result {
            prop_assert!(expected_error(&op, e), "{op:?} returned {e:?}");
        }
        for e in drain(&mut events) {
            if let LrpEvent::ActualLrpInstanceChanged { before, after } = &e {
                prop_assert!(
                    allowed(before, after),
                    "{op:?} made {:?} → {:?}",
                    before,
                    after
                );
            }
        }
        for row in h
            .bbs
            .actual_lrps(&ActualLrpFilter::default())
            .await
            .unwrap()
        {
            well_formed(&row).map_err(TestCaseError::fail)?;
        }
        let after = ordinary_indices(&h).await;
        let may_remove = matches!(op, Op::Remove(..) | Op::EvacStopped(..));
        if !may_remove {
            prop_assert!(
                before.is_subset(&after),
                "{op:?} lost an instance: {before:?} → {after:?}"
            );
        }
    }
    Ok(())
}

/// The third crash of an index leaves it CRASHED (SPEC: `Crashed` then `Changed`); that
/// `Changed` is in the table. Found by CI: random sequences reach it only now and then.
#[test]
fn a_third_crash_is_a_change_to_crashed() {
    let mut ops = Vec::new();
    for g in 0..3 {
        ops.push(Op::Claim(1, g, 1));
        ops.push(Op::Start(1, g, 1, false));
        ops.push(Op::Crash(1, g, 1));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(run(ops)).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_rep_calls_respect_the_transition_table(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(run(ops))?;
    }
}
