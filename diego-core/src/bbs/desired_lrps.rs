//! DesiredLRP operations: desire (with its instances), update (instances, routes,
//! annotation, metric tags, image credentials), remove.

use std::collections::BTreeSet;

use std::sync::Arc;

use async_trait::async_trait;
use tracing::instrument;

use super::{with_cas_retry, Bbs, CellApi, Change, DesiredLrpApi, PROCESS_STRIPE};
use crate::bbs::auctioneer_client::LrpStartRequest;
use crate::error::{Error, Result};
use crate::events::LrpEvent;
use crate::models::actual_lrp::{ActualLrp, ActualLrpKey, ActualLrpState, Presence};
use crate::models::desired_lrp::{DesiredLrp, DesiredLrpUpdate, SchedulingInfo};
use crate::models::guid::ProcessGuid;
use crate::models::modification_tag::ModificationTag;
use crate::models::validation::{FieldPath, Validate, Validator};
use crate::models::volume_mount::VolumePlacement;
use crate::store::{
    ActualLrpFilter, DesiredLrpFilter, Precondition, Record, RecordKey, WriteBatch,
};

fn require_guid(pg: &ProcessGuid) -> Result<()> {
    let mut v = Validator::new();
    v.guid(pg.as_str(), &FieldPath::ROOT.field("process_guid"));
    Ok(v.finish()?)
}

impl Bbs {
    async fn read_desired(&self, pg: &ProcessGuid) -> Result<DesiredLrp> {
        self.inner
            .store
            .desired_lrp(pg)
            .await?
            .ok_or(Error::ResourceNotFound)
    }

    /// Adds UNCLAIMED rows for the indices in `wanted` that have no ORDINARY row.
    /// Returns the indices created.
    fn create_missing(
        &self,
        change: &mut Change<()>,
        info: &SchedulingInfo,
        rows: &[Arc<ActualLrp>],
        wanted: std::ops::Range<i32>,
    ) -> Vec<i32> {
        let have: BTreeSet<i32> = rows
            .iter()
            .filter(|r| r.presence == Presence::Ordinary)
            .map(|r| r.key.index)
            .collect();
        let now = self.inner.clock.now();
        let mut created = Vec::new();
        for index in wanted.filter(|i| !have.contains(i)) {
            let row = ActualLrp::unclaimed(
                ActualLrpKey::new(info.process_guid.clone(), index, info.domain.clone()),
                now,
            );
            let row = Arc::new(row);
            change
                .batch
                .put(Record::ActualLrp(row.clone()), Precondition::Absent);
            change
                .lrp_events
                .push(LrpEvent::ActualLrpInstanceCreated(row));
            created.push(index);
        }
        created
    }

    async fn push_metric_tags(&self, desired: &DesiredLrp, rows: &[Arc<ActualLrp>]) {
        for row in rows.iter().filter(|r| r.state == ActualLrpState::Running) {
            let Some(ik) = &row.instance_key else {
                continue;
            };
            let cell = match self.cell_by_id(&ik.cell_id).await {
                Ok(cell) => cell,
                Err(_) => continue,
            };
            if let Err(e) = self
                .inner
                .rep_client
                .update_lrp_instance(&cell, &row.key, ik, &desired.run_info.metric_tags)
                .await
            {
                tracing::warn!(error = %e, cell_id = %ik.cell_id, "failed to update metric tags of a running instance");
            }
        }
    }
}

#[async_trait]
impl DesiredLrpApi for Bbs {
    #[instrument(skip_all, fields(process_guid = %desired.scheduling_info.process_guid))]
    async fn desire_lrp(&self, mut desired: DesiredLrp) -> Result<()> {
        desired.validate()?;
        let now = self.inner.clock.now();
        desired.run_info.created_at = now;
        desired.scheduling_info.modification_tag = ModificationTag::fresh();
        desired.scheduling_info.volume_placement =
            VolumePlacement::from_mounts(&desired.run_info.volume_mounts);
        let pg = desired.process_guid().clone();
        let guard = self.inner.stripes.lock(PROCESS_STRIPE, pg.as_str()).await;
        let indices = with_cas_retry!(self, {
            let rows = self
                .inner
                .store
                .actual_lrps(&ActualLrpFilter::process(&pg))
                .await?;
            let mut change = Change::none(());
            change
                .batch
                .put(Record::desired_lrp(desired.clone()), Precondition::Absent);
            change
                .lrp_events
                .push(LrpEvent::DesiredLrpCreated(desired.clone()));
            let created = self.create_missing(
                &mut change,
                &desired.scheduling_info,
                &rows,
                0..desired.scheduling_info.instances,
            );
            Ok::<_, Error>(Change {
                batch: change.batch,
                lrp_events: change.lrp_events,
                task_events: Vec::new(),
                value: created,
            })
        })?;
        drop(guard);
        if !indices.is_empty() {
            self.request_lrp_auctions(vec![LrpStartRequest::new(
                &desired.scheduling_info,
                indices,
            )])
            .await;
        }
        Ok(())
    }

    #[instrument(skip_all, fields(process_guid = %pg))]
    async fn update_desired_lrp(&self, pg: &ProcessGuid, update: DesiredLrpUpdate) -> Result<()> {
        require_guid(pg)?;
        update.validate()?;
        let guard = self.inner.stripes.lock(PROCESS_STRIPE, pg.as_str()).await;
        let (before, after, rows, created) = with_cas_retry!(self, {
            let before = self.read_desired(pg).await?;
            let rows = self
                .inner
                .store
                .actual_lrps(&ActualLrpFilter::process(pg))
                .await?;
            let mut after = before.clone();
            after.apply_update(&update);
            after.scheduling_info.modification_tag =
                before.scheduling_info.modification_tag.incremented();
            let mut change = Change::none(());
            change.batch.put(
                Record::desired_lrp(after.clone()),
                Precondition::Tag(before.scheduling_info.modification_tag.clone()),
            );
            change.lrp_events.push(LrpEvent::DesiredLrpChanged {
                before: before.clone(),
                after: after.clone(),
            });
            let (old_n, new_n) = (
                before.scheduling_info.instances,
                after.scheduling_info.instances,
            );
            let created = if new_n > old_n {
                self.create_missing(&mut change, &after.scheduling_info, &rows, old_n..new_n)
            } else {
                Vec::new()
            };
            Ok::<_, Error>(Change {
                batch: change.batch,
                lrp_events: change.lrp_events,
                task_events: Vec::new(),
                value: (before, after, rows, created),
            })
        })?;
        drop(guard);
        if !created.is_empty() {
            self.request_lrp_auctions(vec![LrpStartRequest::new(&after.scheduling_info, created)])
                .await;
        }
        let new_n = after.scheduling_info.instances;
        if new_n < before.scheduling_info.instances {
            for row in rows
                .iter()
                .filter(|r| r.presence == Presence::Ordinary && r.key.index >= new_n)
            {
                if let Err(e) = self.retire_row(row).await {
                    tracing::warn!(index = row.key.index, error = %e, "failed to stop an instance when scaling down; convergence will retry");
                }
            }
        }
        if before.run_info.metric_tags != after.run_info.metric_tags {
            self.push_metric_tags(&after, &rows).await;
        }
        Ok(())
    }

    #[instrument(skip_all, fields(process_guid = %pg))]
    async fn remove_desired_lrp(&self, pg: &ProcessGuid) -> Result<()> {
        require_guid(pg)?;
        let guard = self.inner.stripes.lock(PROCESS_STRIPE, pg.as_str()).await;
        with_cas_retry!(self, {
            let before = self.read_desired(pg).await?;
            let mut batch = WriteBatch::new();
            batch.delete(
                RecordKey::DesiredLrp(pg.clone()),
                Precondition::Tag(before.scheduling_info.modification_tag.clone()),
            );
            Ok::<_, Error>(Change {
                batch,
                lrp_events: vec![LrpEvent::DesiredLrpRemoved(before)],
                task_events: Vec::new(),
                value: (),
            })
        })?;
        drop(guard);
        let rows = self
            .inner
            .store
            .actual_lrps(&ActualLrpFilter::process(pg))
            .await?;
        for row in rows.iter().filter(|r| r.presence == Presence::Ordinary) {
            if let Err(e) = self.retire_row(row).await {
                tracing::warn!(index = row.key.index, error = %e, "failed to stop an instance of a removed LRP; convergence will retry");
            }
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(process_guid = %pg))]
    async fn desired_lrp_by_process_guid(&self, pg: &ProcessGuid) -> Result<DesiredLrp> {
        self.read_desired(pg).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(?filter))]
    async fn desired_lrps(&self, filter: &DesiredLrpFilter) -> Result<Vec<DesiredLrp>> {
        self.inner.store.desired_lrps(filter).await
    }

    async fn desired_lrp_scheduling_infos(
        &self,
        filter: &DesiredLrpFilter,
    ) -> Result<Vec<SchedulingInfo>> {
        self.inner.store.scheduling_infos(filter).await
    }
}
