//! Writes convergence makes on rows it read in its snapshot. Each is a compare-and-swap
//! on the row as read: when the row changed since, the write is refused with
//! `ResourceConflict` and the converger leaves it to the next pass. None of them asks for
//! placement; the converger batches its auction requests.

use std::sync::Arc;

use super::actual_lrps::{delete_row, put_update, unclaim};
use super::{Bbs, Change, PROCESS_STRIPE, TASK_STRIPE};
use crate::error::{Error, Result};
use crate::events::LrpEvent;
use crate::models::actual_lrp::{ActualLrp, ActualLrpKey, Presence};
use crate::models::desired_lrp::SchedulingInfo;
use crate::models::modification_tag::ModificationTag;
use crate::models::task::{Task, TaskState};
use crate::store::{Precondition, Record};

impl Bbs {
    /// Creates UNCLAIMED rows for `indices` of `info` (each only if still absent);
    /// returns the indices created.
    pub async fn create_unclaimed_actual_lrps(
        &self,
        info: &SchedulingInfo,
        indices: &[i32],
    ) -> Result<Vec<i32>> {
        let _g = self
            .inner
            .stripes
            .lock(PROCESS_STRIPE, info.process_guid.as_str())
            .await;
        let now = self.inner.clock.now();
        let mut created = Vec::with_capacity(indices.len());
        for &index in indices {
            let row = Arc::new(ActualLrp::unclaimed(
                ActualLrpKey::new(info.process_guid.clone(), index, info.domain.clone()),
                now,
            ));
            let mut change = Change::none(());
            change
                .batch
                .put(Record::ActualLrp(row.clone()), Precondition::Absent);
            change
                .lrp_events
                .push(LrpEvent::ActualLrpInstanceCreated(row));
            match self.commit(change).await {
                Ok(()) => created.push(index),
                Err(Error::ResourceExists) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(created)
    }

    /// Unclaims `row` (as read) in place.
    pub async fn unclaim_actual_lrp_row(&self, row: &Arc<ActualLrp>) -> Result<()> {
        let _g = self
            .inner
            .stripes
            .lock(PROCESS_STRIPE, row.key.process_guid.as_str())
            .await;
        let mut change = Change::none(());
        change.lrp_events = unclaim(&mut change.batch, row, self.inner.clock.now());
        self.commit(change).await
    }

    /// Deletes `row` (as read).
    pub async fn delete_actual_lrp_row(&self, row: &Arc<ActualLrp>) -> Result<()> {
        self.delete_row_as_read(row).await
    }

    /// Retires `row` (as read): deleted when UNCLAIMED/CRASHED or its cell is gone, else
    /// its cell is asked to stop it.
    pub async fn retire_actual_lrp_row(&self, row: &Arc<ActualLrp>) -> Result<()> {
        self.retire_row(row).await
    }

    /// An ORDINARY row on a lost cell becomes SUSPECT, and an UNCLAIMED replacement (a
    /// fresh epoch) takes its place as the ORDINARY row.
    pub async fn suspect_actual_lrp_row(&self, row: &Arc<ActualLrp>) -> Result<()> {
        let _g = self
            .inner
            .stripes
            .lock(PROCESS_STRIPE, row.key.process_guid.as_str())
            .await;
        let now = self.inner.clock.now();
        let mut suspect = ActualLrp::clone(row);
        suspect.presence = Presence::Suspect;
        suspect.modification_tag = ModificationTag::fresh();
        let suspect = Arc::new(suspect);
        let mut replacement = ActualLrp::unclaimed(row.key.clone(), now);
        replacement.crash_count = row.crash_count;
        let replacement = Arc::new(replacement);
        let mut change = Change::none(());
        change
            .batch
            .put(Record::ActualLrp(suspect.clone()), Precondition::Absent);
        change.batch.put(
            Record::ActualLrp(replacement.clone()),
            Precondition::Tag(row.modification_tag.clone()),
        );
        change.lrp_events.push(LrpEvent::ActualLrpInstanceChanged {
            before: row.clone(),
            after: suspect,
        });
        change
            .lrp_events
            .push(LrpEvent::ActualLrpInstanceCreated(replacement));
        self.commit(change).await
    }

    /// A SUSPECT row whose cell came back becomes ORDINARY again; the replacement that
    /// was made for it (`replacement`, as read, not RUNNING) is dropped.
    pub async fn promote_suspect_actual_lrp_row(
        &self,
        suspect: &Arc<ActualLrp>,
        replacement: Option<&Arc<ActualLrp>>,
    ) -> Result<()> {
        if suspect.presence != Presence::Suspect {
            return Err(Error::BadRequest);
        }
        let _g = self
            .inner
            .stripes
            .lock(PROCESS_STRIPE, suspect.key.process_guid.as_str())
            .await;
        let mut promoted = ActualLrp::clone(suspect);
        promoted.presence = Presence::Ordinary;
        let mut change = Change::none(());
        delete_row(&mut change.batch, suspect);
        let promoted = match replacement {
            Some(r) => {
                change
                    .lrp_events
                    .push(LrpEvent::ActualLrpInstanceRemoved(r.clone()));
                put_update(&mut change.batch, r, promoted)
            }
            None => {
                promoted.modification_tag = ModificationTag::fresh();
                let promoted = Arc::new(promoted);
                change
                    .batch
                    .put(Record::ActualLrp(promoted.clone()), Precondition::Absent);
                promoted
            }
        };
        change.lrp_events.insert(
            0,
            LrpEvent::ActualLrpInstanceChanged {
                before: suspect.clone(),
                after: promoted,
            },
        );
        self.commit(change).await
    }

    /// Fails `task` (as read, Pending or Running) with `reason`.
    pub async fn fail_task_as_read(&self, task: &Task, reason: &str) -> Result<()> {
        if !matches!(task.state, TaskState::Pending | TaskState::Running) {
            return Err(Error::InvalidStateTransition {
                from: task.state.as_str().to_owned(),
                to: TaskState::Completed.as_str().to_owned(),
            });
        }
        let guard = self
            .inner
            .stripes
            .lock(TASK_STRIPE, task.task_guid.as_str())
            .await;
        let after = self.completed(task, true, reason, "");
        self.commit(self.task_update(task.clone(), after.clone(), ()))
            .await?;
        drop(guard);
        self.after_completion(&after);
        Ok(())
    }

    /// Starts delivering a Completed task's callback again (convergence's resend).
    pub fn resend_task_callback(&self, task: &Task) {
        self.after_completion(task);
    }
}
