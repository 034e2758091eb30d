//! Evacuation: a draining cell hands its instances over. Each call answers "keep the
//! container?" (SPEC.md, Evacuation).

use std::sync::Arc;

use async_trait::async_trait;
use tracing::instrument;

use super::actual_lrps::{delete_row, find, fresh_tag, put_update, unclaim, unclaimed_row};
use super::{with_cas_retry, Bbs, Change, EvacuationApi, PROCESS_STRIPE};
use crate::error::{Error, Result};
use crate::events::LrpEvent;
use crate::models::actual_lrp::{
    ActualLrp, ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo, ActualLrpState, Presence,
};
use crate::models::desired_lrp::{SchedulingInfo, UpdateStrategy};
use crate::models::validation::{FieldPath, Validate, Validator};
use crate::store::{ActualLrpFilter, Precondition, Record};

/// What one evacuation call decided besides its writes.
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    keep_container: bool,
    auction: bool,
}

fn validate_keys(key: &ActualLrpKey, ik: &ActualLrpInstanceKey) -> Result<()> {
    let mut v = Validator::new();
    v.nested(key, &FieldPath::ROOT.field("actual_lrp_key"));
    v.nested(ik, &FieldPath::ROOT.field("actual_lrp_instance_key"));
    Ok(v.finish()?)
}

/// Deletes the EVACUATING row of `rows` when `ik` holds it.
fn drop_own_evacuating(
    change: &mut Change<Outcome>,
    rows: &[Arc<ActualLrp>],
    ik: &ActualLrpInstanceKey,
) {
    if let Some(evac) = find(rows, Presence::Evacuating) {
        if evac.instance_key.as_ref() == Some(ik) {
            delete_row(&mut change.batch, evac);
            change
                .lrp_events
                .push(LrpEvent::ActualLrpInstanceRemoved(evac.clone()));
        }
    }
}

impl Bbs {
    async fn evacuate<F>(
        &self,
        key: &ActualLrpKey,
        ik: &ActualLrpInstanceKey,
        plan: F,
    ) -> Result<bool>
    where
        F: Fn(
            &Bbs,
            &[Arc<ActualLrp>],
            Option<&SchedulingInfo>,
            &[Arc<ActualLrp>],
        ) -> Result<Change<Outcome>>,
    {
        validate_keys(key, ik)?;
        let guard = self
            .inner
            .stripes
            .lock(PROCESS_STRIPE, key.process_guid.as_str())
            .await;
        let outcome = with_cas_retry!(self, {
            let rows = self.instance_rows(key).await?;
            let desired = self.inner.store.desired_lrp(&key.process_guid).await?;
            let all_rows = match &desired {
                Some(d) if d.scheduling_info.update_strategy == UpdateStrategy::Recreate => {
                    self.inner
                        .store
                        .actual_lrps(&ActualLrpFilter::process(&key.process_guid))
                        .await?
                }
                _ => Vec::new(),
            };
            plan(
                self,
                &rows,
                desired.as_ref().map(|d| &d.scheduling_info),
                &all_rows,
            )
        })?;
        drop(guard);
        if outcome.auction {
            self.auction_indices(key, vec![key.index]).await;
        }
        Ok(outcome.keep_container)
    }

    /// Unclaims the ORDINARY row held by `ik`, if any, in `change` (and marks an auction).
    fn unclaim_own(
        &self,
        change: &mut Change<Outcome>,
        rows: &[Arc<ActualLrp>],
        ik: &ActualLrpInstanceKey,
    ) {
        if let Some(ord) = find(rows, Presence::Ordinary) {
            if ord.instance_key.as_ref() == Some(ik) {
                let events = unclaim(&mut change.batch, ord, self.inner.clock.now());
                change.lrp_events.extend(events);
                change.value.auction = true;
            }
        }
    }
}

#[async_trait]
impl EvacuationApi for Bbs {
    #[instrument(skip_all, fields(process_guid = %key.process_guid, index = key.index, cell_id = %ik.cell_id))]
    async fn evacuate_claimed_actual_lrp(
        &self,
        key: &ActualLrpKey,
        ik: &ActualLrpInstanceKey,
    ) -> Result<bool> {
        self.evacuate(key, ik, |bbs, rows, _, _| {
            let mut change = Change::none(Outcome::default());
            drop_own_evacuating(&mut change, rows, ik);
            bbs.unclaim_own(&mut change, rows, ik);
            Ok(change)
        })
        .await
    }

    #[instrument(skip_all, fields(process_guid = %key.process_guid, index = key.index, cell_id = %ik.cell_id))]
    async fn evacuate_running_actual_lrp(
        &self,
        key: &ActualLrpKey,
        ik: &ActualLrpInstanceKey,
        net_info: &ActualLrpNetInfo,
    ) -> Result<bool> {
        net_info.validate()?;
        self.evacuate(key, ik, |bbs, rows, desired, all_rows| {
            let mut change = Change::none(Outcome::default());
            let Some(desired) = desired else {
                // No longer desired: drop our rows, do not keep the container.
                drop_own_evacuating(&mut change, rows, ik);
                if let Some(ord) =
                    find(rows, Presence::Ordinary).filter(|o| o.instance_key.as_ref() == Some(ik))
                {
                    delete_row(&mut change.batch, ord);
                    change
                        .lrp_events
                        .push(LrpEvent::ActualLrpInstanceRemoved(ord.clone()));
                }
                return Ok(change);
            };
            let ord = find(rows, Presence::Ordinary);
            if let Some(evac) = find(rows, Presence::Evacuating) {
                if evac.instance_key.as_ref() != Some(ik) {
                    return Ok(change); // another cell holds the EVACUATING row
                }
                let replaced = match ord {
                    None => true,
                    Some(o) => {
                        o.state == ActualLrpState::Crashed
                            || (o.state == ActualLrpState::Running
                                && o.instance_key.as_ref() != Some(ik))
                    }
                };
                if replaced {
                    drop_own_evacuating(&mut change, rows, ik);
                } else {
                    change.value.keep_container = true;
                }
                return Ok(change);
            }
            let Some(ord) = ord.filter(|o| o.instance_key.as_ref() == Some(ik)) else {
                return Ok(change); // not ours any more
            };
            match ord.state {
                ActualLrpState::Claimed => bbs.unclaim_own(&mut change, rows, ik),
                ActualLrpState::Running if desired.update_strategy == UpdateStrategy::Recreate => {
                    let running = all_rows
                        .iter()
                        .filter(|r| {
                            r.presence == Presence::Ordinary
                                && r.key.index < desired.instances
                                && r.state == ActualLrpState::Running
                        })
                        .count();
                    let all_running =
                        i64::try_from(running).unwrap_or(i64::MAX) >= i64::from(desired.instances);
                    if all_running {
                        bbs.unclaim_own(&mut change, rows, ik);
                    } else {
                        change.value.keep_container = true;
                    }
                }
                ActualLrpState::Running => {
                    let mut copy = ActualLrp::clone(ord);
                    copy.presence = Presence::Evacuating;
                    copy.net_info = Some(net_info.clone());
                    copy.modification_tag = fresh_tag();
                    let copy = Arc::new(copy);
                    change
                        .batch
                        .put(Record::ActualLrp(copy.clone()), Precondition::Absent);
                    let replacement = put_update(
                        &mut change.batch,
                        ord,
                        unclaimed_row(ord, bbs.inner.clock.now()),
                    );
                    change.lrp_events.push(LrpEvent::ActualLrpInstanceChanged {
                        before: ord.clone(),
                        after: copy,
                    });
                    change
                        .lrp_events
                        .push(LrpEvent::ActualLrpInstanceCreated(replacement));
                    change.value = Outcome {
                        keep_container: true,
                        auction: true,
                    };
                }
                _ => {}
            }
            Ok(change)
        })
        .await
    }

    #[instrument(skip_all, fields(process_guid = %key.process_guid, index = key.index, cell_id = %ik.cell_id))]
    async fn evacuate_stopped_actual_lrp(
        &self,
        key: &ActualLrpKey,
        ik: &ActualLrpInstanceKey,
    ) -> Result<bool> {
        self.evacuate(key, ik, |_, rows, _, _| {
            let mut change = Change::none(Outcome::default());
            drop_own_evacuating(&mut change, rows, ik);
            if let Some(ord) =
                find(rows, Presence::Ordinary).filter(|o| o.instance_key.as_ref() == Some(ik))
            {
                delete_row(&mut change.batch, ord);
                change
                    .lrp_events
                    .push(LrpEvent::ActualLrpInstanceRemoved(ord.clone()));
            }
            Ok(change)
        })
        .await
    }

    #[instrument(skip_all, fields(process_guid = %key.process_guid, index = key.index, cell_id = %ik.cell_id))]
    async fn evacuate_crashed_actual_lrp(
        &self,
        key: &ActualLrpKey,
        ik: &ActualLrpInstanceKey,
        crash_reason: &str,
    ) -> Result<bool> {
        self.evacuate(key, ik, |bbs, rows, _, _| {
            let mut change = Change::none(Outcome::default());
            drop_own_evacuating(&mut change, rows, ik);
            let ours =
                find(rows, Presence::Ordinary).is_some_and(|o| o.instance_key.as_ref() == Some(ik));
            if ours {
                let crash = bbs.plan_crash(rows, key, ik, crash_reason)?;
                change.batch.ops.extend(crash.batch.ops);
                change.lrp_events.extend(crash.lrp_events);
            }
            Ok(change)
        })
        .await
    }

    #[instrument(skip_all, fields(process_guid = %key.process_guid, index = key.index, cell_id = %ik.cell_id))]
    async fn remove_evacuating_actual_lrp(
        &self,
        key: &ActualLrpKey,
        ik: &ActualLrpInstanceKey,
    ) -> Result<()> {
        self.evacuate(key, ik, |_, rows, _, _| {
            match find(rows, Presence::Evacuating) {
                None => Ok(Change::none(Outcome::default())),
                Some(evac) if evac.instance_key.as_ref() != Some(ik) => {
                    Err(Error::ActualLrpCannotBeRemoved)
                }
                Some(_) => {
                    let mut change = Change::none(Outcome::default());
                    drop_own_evacuating(&mut change, rows, ik);
                    Ok(change)
                }
            }
        })
        .await
        .map(|_| ())
    }
}
