//! ActualLRP operations: claim, start, crash (with the restart policy), fail, remove,
//! retire, unclaim — SPEC.md's transition table, checked on every call.

use std::sync::Arc;

use async_trait::async_trait;
use tracing::instrument;

use super::{with_cas_retry, ActualLrpApi, Bbs, CellApi, Change, PROCESS_STRIPE};
use crate::bbs::auctioneer_client::LrpStartRequest;
use crate::bbs::truncate::truncate_cell_string;
use crate::error::{Error, Result};
use crate::events::{ActualLrpCrashed, LrpEvent};
use crate::models::actual_lrp::{
    ActualLrp, ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo, ActualLrpState, Presence,
};
use crate::models::modification_tag::ModificationTag;
use crate::models::restart_policy::RestartDecision;
use crate::models::validation::{FieldPath, Validate, Validator};
use crate::store::{ActualLrpFilter, ActualLrpRowKey, Precondition, Record, RecordKey, WriteBatch};
use crate::time::Timestamp;

/// The row of `rows` with `presence`.
pub(super) fn find(rows: &[Arc<ActualLrp>], presence: Presence) -> Option<&Arc<ActualLrp>> {
    rows.iter().find(|r| r.presence == presence)
}

/// The row of `rows` held by `instance_key`, any presence.
pub(super) fn held_by<'a>(
    rows: &'a [Arc<ActualLrp>],
    ik: &ActualLrpInstanceKey,
) -> Option<&'a Arc<ActualLrp>> {
    rows.iter().find(|r| r.instance_key.as_ref() == Some(ik))
}

/// Adds "replace `before` by `after`" to `batch` (compare-and-swap on `before`'s tag),
/// bumping `after`'s tag; returns the stored row.
pub(super) fn put_update(
    batch: &mut WriteBatch,
    before: &ActualLrp,
    mut after: ActualLrp,
) -> Arc<ActualLrp> {
    after.modification_tag = before.modification_tag.incremented();
    let after = Arc::new(after);
    batch.put(
        Record::ActualLrp(after.clone()),
        Precondition::Tag(before.modification_tag.clone()),
    );
    after
}

/// Adds "delete `row`" to `batch` (compare-and-swap on its tag).
pub(super) fn delete_row(batch: &mut WriteBatch, row: &ActualLrp) {
    batch.delete(
        RecordKey::ActualLrp(ActualLrpRowKey::of(row)),
        Precondition::Tag(row.modification_tag.clone()),
    );
}

/// `before` as an UNCLAIMED row (its tag not yet bumped).
pub(super) fn unclaimed_row(before: &ActualLrp, now: Timestamp) -> ActualLrp {
    let mut after = before.clone();
    after.state = ActualLrpState::Unclaimed;
    after.instance_key = None;
    after.net_info = None;
    after.routable = false;
    after.since = now;
    after
}

/// Adds "unclaim `before` in place" to `batch`; returns the events that says (Created+Removed
/// for a new UNCLAIMED instance, Changed when it already was UNCLAIMED).
pub(super) fn unclaim(
    batch: &mut WriteBatch,
    before: &Arc<ActualLrp>,
    now: Timestamp,
) -> Vec<LrpEvent> {
    let after = put_update(batch, before, unclaimed_row(before, now));
    if before.state == ActualLrpState::Unclaimed {
        vec![LrpEvent::ActualLrpInstanceChanged {
            before: before.clone(),
            after,
        }]
    } else {
        vec![
            LrpEvent::ActualLrpInstanceCreated(after),
            LrpEvent::ActualLrpInstanceRemoved(before.clone()),
        ]
    }
}

fn validate_keys(key: &ActualLrpKey, ik: Option<&ActualLrpInstanceKey>) -> Result<()> {
    let mut v = Validator::new();
    v.nested(key, &FieldPath::ROOT.field("actual_lrp_key"));
    if let Some(ik) = ik {
        v.nested(ik, &FieldPath::ROOT.field("actual_lrp_instance_key"));
    }
    Ok(v.finish()?)
}

impl Bbs {
    pub(super) async fn instance_rows(&self, key: &ActualLrpKey) -> Result<Vec<Arc<ActualLrp>>> {
        self.inner
            .store
            .actual_lrps(&ActualLrpFilter::instance(&key.process_guid, key.index))
            .await
    }

    fn plan_claim(
        &self,
        rows: &[Arc<ActualLrp>],
        key: &ActualLrpKey,
        ik: &ActualLrpInstanceKey,
    ) -> Result<Change<()>> {
        if held_by(rows, ik).is_some_and(|r| r.presence == Presence::Suspect) {
            tracing::info!("ignored claim from a suspect instance");
            return Ok(Change::none(()));
        }
        let before = find(rows, Presence::Ordinary).ok_or(Error::ResourceNotFound)?;
        if &before.key != key {
            return Err(Error::ActualLrpCannotBeClaimed);
        }
        let same = before.instance_key.as_ref() == Some(ik);
        let allowed = match before.state {
            ActualLrpState::Unclaimed => true,
            ActualLrpState::Claimed | ActualLrpState::Running => same,
            ActualLrpState::Crashed => false,
        };
        if !allowed {
            return Err(Error::ActualLrpCannotBeClaimed);
        }
        if before.state == ActualLrpState::Claimed && same {
            return Ok(Change::none(()));
        }
        let mut after = ActualLrp::clone(before);
        after.state = ActualLrpState::Claimed;
        after.instance_key = Some(ik.clone());
        after.net_info = None;
        after.routable = false;
        after.placement_error.clear();
        after.since = self.inner.clock.now();
        let mut change = Change::none(());
        let after = put_update(&mut change.batch, before, after);
        change.lrp_events.push(LrpEvent::ActualLrpInstanceChanged {
            before: before.clone(),
            after,
        });
        Ok(change)
    }

    fn plan_start(
        &self,
        rows: &[Arc<ActualLrp>],
        key: &ActualLrpKey,
        ik: &ActualLrpInstanceKey,
        net_info: &ActualLrpNetInfo,
        routable: bool,
    ) -> Result<Change<()>> {
        if held_by(rows, ik).is_some_and(|r| r.presence == Presence::Suspect) {
            tracing::info!("ignored start from a suspect instance");
            return Ok(Change::none(()));
        }
        let now = self.inner.clock.now();
        let mut change = Change::none(());
        match find(rows, Presence::Ordinary) {
            None => {
                let mut row = ActualLrp::unclaimed(key.clone(), now);
                row.state = ActualLrpState::Running;
                row.instance_key = Some(ik.clone());
                row.net_info = Some(net_info.clone());
                row.routable = routable;
                let row = Arc::new(row);
                change
                    .batch
                    .put(Record::ActualLrp(row.clone()), Precondition::Absent);
                change
                    .lrp_events
                    .push(LrpEvent::ActualLrpInstanceCreated(row));
            }
            Some(before) => {
                if &before.key != key {
                    return Err(Error::ActualLrpCannotBeStarted);
                }
                let same = before.instance_key.as_ref() == Some(ik);
                let unchanged = before.state == ActualLrpState::Running
                    && same
                    && before.net_info.as_ref() == Some(net_info)
                    && before.routable == routable;
                if !unchanged {
                    let allowed = match before.state {
                        ActualLrpState::Unclaimed | ActualLrpState::Claimed => true,
                        ActualLrpState::Running => same,
                        ActualLrpState::Crashed => false,
                    };
                    if !allowed {
                        return Err(Error::ActualLrpCannotBeStarted);
                    }
                    let mut after = ActualLrp::clone(before);
                    after.state = ActualLrpState::Running;
                    after.instance_key = Some(ik.clone());
                    after.net_info = Some(net_info.clone());
                    after.routable = routable;
                    after.placement_error.clear();
                    after.since = now;
                    let after = put_update(&mut change.batch, before, after);
                    change.lrp_events.push(LrpEvent::ActualLrpInstanceChanged {
                        before: before.clone(),
                        after,
                    });
                }
            }
        }
        // A running replacement ends the EVACUATING and SUSPECT copies of the index.
        for row in rows {
            let other = row.instance_key.as_ref() != Some(ik);
            if row.presence != Presence::Ordinary && other {
                delete_row(&mut change.batch, row);
                change
                    .lrp_events
                    .push(LrpEvent::ActualLrpInstanceRemoved(row.clone()));
            }
        }
        Ok(change)
    }

    /// The crash of the ORDINARY row held by `ik`; `value` says whether to auction now.
    pub(super) fn plan_crash(
        &self,
        rows: &[Arc<ActualLrp>],
        key: &ActualLrpKey,
        ik: &ActualLrpInstanceKey,
        reason: &str,
    ) -> Result<Change<bool>> {
        if let Some(suspect) = held_by(rows, ik).filter(|r| r.presence == Presence::Suspect) {
            let mut change = Change::none(false);
            delete_row(&mut change.batch, suspect);
            change
                .lrp_events
                .push(LrpEvent::ActualLrpInstanceRemoved(suspect.clone()));
            return Ok(change);
        }
        let before = find(rows, Presence::Ordinary).ok_or(Error::ResourceNotFound)?;
        let same = before.instance_key.as_ref() == Some(ik);
        let allowed = &before.key == key
            && same
            && matches!(
                before.state,
                ActualLrpState::Claimed | ActualLrpState::Running
            );
        if !allowed {
            return Err(Error::ActualLrpCannotBeCrashed);
        }
        let now = self.inner.clock.now();
        let policy = &self.inner.config.restart;
        let count = policy.next_crash_count(
            before.crash_count,
            before.state == ActualLrpState::Running,
            before.since,
            now,
        );
        let mut after = ActualLrp::clone(before);
        after.state = ActualLrpState::Crashed;
        after.instance_key = None;
        after.net_info = None;
        after.routable = false;
        after.crash_count = count;
        after.crash_reason = truncate_cell_string(reason);
        after.since = now;
        let restart = policy.decide(count, now) == RestartDecision::Immediately;
        if restart {
            after.state = ActualLrpState::Unclaimed;
        }
        let mut change = Change::none(restart);
        let after = put_update(&mut change.batch, before, after);
        change
            .lrp_events
            .push(LrpEvent::ActualLrpCrashed(ActualLrpCrashed {
                key: before.key.clone(),
                instance_key: ik.clone(),
                crash_count: count,
                crash_reason: reason.to_owned(),
                since: now,
            }));
        if restart {
            change
                .lrp_events
                .push(LrpEvent::ActualLrpInstanceCreated(after));
            change
                .lrp_events
                .push(LrpEvent::ActualLrpInstanceRemoved(before.clone()));
        } else {
            change.lrp_events.push(LrpEvent::ActualLrpInstanceChanged {
                before: before.clone(),
                after,
            });
        }
        Ok(change)
    }

    /// One attempt to retire `row` as read.
    pub(super) async fn retire_row(&self, row: &Arc<ActualLrp>) -> Result<()> {
        match (row.state, &row.instance_key) {
            (ActualLrpState::Claimed | ActualLrpState::Running, Some(ik)) => {
                match self.cell_by_id(&ik.cell_id).await {
                    Ok(cell) => {
                        self.inner
                            .rep_client
                            .stop_lrp_instance(&cell, &row.key, ik)
                            .await
                    }
                    Err(Error::ResourceNotFound) => self.delete_row_as_read(row).await,
                    Err(e) => Err(e),
                }
            }
            _ => self.delete_row_as_read(row).await,
        }
    }

    /// Deletes `row` if it has not changed since it was read.
    pub(super) async fn delete_row_as_read(&self, row: &Arc<ActualLrp>) -> Result<()> {
        let _g = self
            .inner
            .stripes
            .lock(PROCESS_STRIPE, row.key.process_guid.as_str())
            .await;
        let mut change = Change::none(());
        delete_row(&mut change.batch, row);
        change
            .lrp_events
            .push(LrpEvent::ActualLrpInstanceRemoved(row.clone()));
        self.commit(change).await
    }

    /// Unclaims the ORDINARY row of `key` in place (convergence and evacuation) and
    /// asks for its placement.
    #[instrument(skip_all, fields(process_guid = %key.process_guid, index = key.index))]
    pub async fn unclaim_actual_lrp(&self, key: &ActualLrpKey) -> Result<()> {
        validate_keys(key, None)?;
        let guard = self
            .inner
            .stripes
            .lock(PROCESS_STRIPE, key.process_guid.as_str())
            .await;
        with_cas_retry!(self, {
            let rows = self.instance_rows(key).await?;
            let before = find(&rows, Presence::Ordinary).ok_or(Error::ResourceNotFound)?;
            let mut change = Change::none(());
            change.lrp_events = unclaim(&mut change.batch, before, self.inner.clock.now());
            Ok::<_, Error>(change)
        })?;
        drop(guard);
        self.auction_indices(key, vec![key.index]).await;
        Ok(())
    }

    /// Asks for placement of `indices` of `key`'s process (nothing when it is no longer
    /// desired).
    pub(super) async fn auction_indices(&self, key: &ActualLrpKey, indices: Vec<i32>) {
        match self.inner.store.desired_lrp(&key.process_guid).await {
            Ok(Some(d)) => {
                self.request_lrp_auctions(vec![LrpStartRequest::new(&d.scheduling_info, indices)])
                    .await
            }
            Ok(None) => tracing::info!("not auctioning instances of a process no longer desired"),
            Err(e) => tracing::warn!(error = %e, "failed to read the desired LRP to auction it"),
        }
    }
}

#[async_trait]
impl ActualLrpApi for Bbs {
    #[tracing::instrument(level = "debug", skip_all, fields(?filter))]
    async fn actual_lrps(&self, filter: &ActualLrpFilter) -> Result<Vec<Arc<ActualLrp>>> {
        self.inner.store.actual_lrps(filter).await
    }

    #[instrument(skip_all, fields(process_guid = %key.process_guid, index = key.index, cell_id = %ik.cell_id))]
    async fn claim_actual_lrp(&self, key: &ActualLrpKey, ik: &ActualLrpInstanceKey) -> Result<()> {
        validate_keys(key, Some(ik))?;
        let _g = self
            .inner
            .stripes
            .lock(PROCESS_STRIPE, key.process_guid.as_str())
            .await;
        with_cas_retry!(self, {
            let rows = self.instance_rows(key).await?;
            self.plan_claim(&rows, key, ik)
        })
    }

    #[instrument(skip_all, fields(process_guid = %key.process_guid, index = key.index, cell_id = %ik.cell_id))]
    async fn start_actual_lrp(
        &self,
        key: &ActualLrpKey,
        ik: &ActualLrpInstanceKey,
        net_info: &ActualLrpNetInfo,
        routable: bool,
    ) -> Result<()> {
        validate_keys(key, Some(ik))?;
        net_info.validate()?;
        let _g = self
            .inner
            .stripes
            .lock(PROCESS_STRIPE, key.process_guid.as_str())
            .await;
        with_cas_retry!(self, {
            let rows = self.instance_rows(key).await?;
            self.plan_start(&rows, key, ik, net_info, routable)
        })
    }

    #[instrument(skip_all, fields(process_guid = %key.process_guid, index = key.index, cell_id = %ik.cell_id))]
    async fn crash_actual_lrp(
        &self,
        key: &ActualLrpKey,
        ik: &ActualLrpInstanceKey,
        crash_reason: &str,
    ) -> Result<()> {
        validate_keys(key, Some(ik))?;
        let guard = self
            .inner
            .stripes
            .lock(PROCESS_STRIPE, key.process_guid.as_str())
            .await;
        let restart = with_cas_retry!(self, {
            let rows = self.instance_rows(key).await?;
            self.plan_crash(&rows, key, ik, crash_reason)
        })?;
        drop(guard);
        if restart {
            self.auction_indices(key, vec![key.index]).await;
        }
        Ok(())
    }

    #[instrument(skip_all, fields(process_guid = %key.process_guid, index = key.index))]
    async fn fail_actual_lrp(&self, key: &ActualLrpKey, placement_error: &str) -> Result<()> {
        validate_keys(key, None)?;
        let _g = self
            .inner
            .stripes
            .lock(PROCESS_STRIPE, key.process_guid.as_str())
            .await;
        with_cas_retry!(self, {
            let rows = self.instance_rows(key).await?;
            match find(&rows, Presence::Ordinary) {
                None => Ok(Change::none(())),
                Some(before) if before.state != ActualLrpState::Unclaimed => {
                    Err(Error::ActualLrpCannotBeFailed)
                }
                Some(before) => {
                    let mut after = ActualLrp::clone(before);
                    after.placement_error = truncate_cell_string(placement_error);
                    after.since = self.inner.clock.now();
                    let mut change = Change::none(());
                    let after = put_update(&mut change.batch, before, after);
                    change.lrp_events.push(LrpEvent::ActualLrpInstanceChanged {
                        before: before.clone(),
                        after,
                    });
                    Ok(change)
                }
            }
        })
    }

    #[instrument(skip_all, fields(process_guid = %key.process_guid, index = key.index))]
    async fn remove_actual_lrp(
        &self,
        key: &ActualLrpKey,
        ik: Option<&ActualLrpInstanceKey>,
    ) -> Result<()> {
        validate_keys(key, ik)?;
        let _g = self
            .inner
            .stripes
            .lock(PROCESS_STRIPE, key.process_guid.as_str())
            .await;
        with_cas_retry!(self, {
            let rows = self.instance_rows(key).await?;
            let row = find(&rows, Presence::Ordinary).ok_or(Error::ResourceNotFound)?;
            if ik.is_some_and(|ik| row.instance_key.as_ref() != Some(ik)) {
                return Err(Error::ActualLrpCannotBeRemoved);
            }
            let mut change = Change::none(());
            delete_row(&mut change.batch, row);
            change
                .lrp_events
                .push(LrpEvent::ActualLrpInstanceRemoved(row.clone()));
            Ok::<_, Error>(change)
        })
    }

    #[instrument(skip_all, fields(process_guid = %key.process_guid, index = key.index))]
    async fn retire_actual_lrp(&self, key: &ActualLrpKey) -> Result<()> {
        validate_keys(key, None)?;
        let attempts = self.inner.config.retire_attempts.max(1);
        let mut last = Error::ResourceNotFound;
        for attempt in 1..=attempts {
            let rows = self.instance_rows(key).await?;
            let Some(row) = find(&rows, Presence::Ordinary).cloned() else {
                return Err(Error::ResourceNotFound);
            };
            match self.retire_row(&row).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "retire of actual LRP failed; retrying");
                    last = e;
                }
            }
        }
        Err(last)
    }
}

/// A fresh tag for a newly created row (used where a row is created beside another).
pub(super) fn fresh_tag() -> ModificationTag {
    ModificationTag::fresh()
}
