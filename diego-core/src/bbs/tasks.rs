//! Task operations: `Pending → Running → Completed → Resolving → deleted`, rejections
//! with `max_task_retries`, and completion callbacks.

use async_trait::async_trait;
use tracing::instrument;

use super::{with_cas_retry, Bbs, CellApi, Change, TaskApi, TASK_STRIPE};
use crate::bbs::auctioneer_client::TaskStartRequest;
use crate::bbs::completion_callback::{Delivery, TaskCallbackResponse, CALLBACK_ATTEMPTS};
use crate::bbs::truncate::truncate_cell_string;
use crate::error::{Error, Result};
use crate::events::TaskEvent;
use crate::models::guid::{CellId, TaskGuid};
use crate::models::task::{DesireTaskRequest, Task, TaskState};
use crate::models::validation::{FieldPath, Validate, Validator};
use crate::store::{Precondition, Record, RecordKey, TaskFilter, WriteBatch};

/// The failure reason of a cancelled task (Diego's text).
pub const TASK_CANCELLED: &str = "task was cancelled";

fn transition(from: TaskState, to: TaskState) -> Error {
    Error::InvalidStateTransition {
        from: from.as_str().to_owned(),
        to: to.as_str().to_owned(),
    }
}

fn require_guid(guid: &TaskGuid) -> Result<()> {
    let mut v = Validator::new();
    v.guid(guid.as_str(), &FieldPath::ROOT.field("task_guid"));
    Ok(v.finish()?)
}

fn require_cell(cell_id: &CellId) -> Result<()> {
    let mut v = Validator::new();
    v.non_empty(cell_id.as_str(), &FieldPath::ROOT.field("cell_id"));
    Ok(v.finish()?)
}

impl Bbs {
    async fn read_task(&self, guid: &TaskGuid) -> Result<Task> {
        self.inner
            .store
            .task(guid)
            .await?
            .ok_or(Error::ResourceNotFound)
    }

    /// A change replacing `before` with `after` (tag bumped, updated_at set here).
    pub(super) fn task_update<T>(&self, before: Task, mut after: Task, value: T) -> Change<T> {
        after.modification_tag = before.modification_tag.incremented();
        after.updated_at = self.inner.clock.now();
        let mut batch = WriteBatch::new();
        batch.put(
            Record::task(after.clone()),
            Precondition::Tag(before.modification_tag.clone()),
        );
        Change {
            batch,
            lrp_events: Vec::new(),
            task_events: vec![TaskEvent::TaskChanged { before, after }],
            value,
        }
    }

    /// `before` completed: failed or not, with its reason and result.
    pub(super) fn completed(
        &self,
        before: &Task,
        failed: bool,
        reason: &str,
        result: &str,
    ) -> Task {
        let now = self.inner.clock.now();
        let mut t = before.clone();
        t.state = TaskState::Completed;
        t.cell_id = None;
        t.failed = failed;
        t.failure_reason = truncate_cell_string(reason);
        t.result = result.to_owned();
        if t.first_completed_at.is_zero() {
            t.first_completed_at = now;
        }
        t
    }

    /// A change deleting `task` (used by delete and by convergence's expiry).
    fn task_removal(&self, task: Task) -> Change<()> {
        let mut batch = WriteBatch::new();
        batch.delete(
            RecordKey::Task(task.task_guid.clone()),
            Precondition::Tag(task.modification_tag.clone()),
        );
        Change {
            batch,
            lrp_events: Vec::new(),
            task_events: vec![TaskEvent::TaskRemoved(task)],
            value: (),
        }
    }

    /// Deletes a Completed task whose time is up (convergence), if unchanged since read.
    pub async fn delete_completed_task(&self, task: &Task) -> Result<()> {
        let _g = self
            .inner
            .stripes
            .lock(TASK_STRIPE, task.task_guid.as_str())
            .await;
        if task.state != TaskState::Completed {
            return Err(transition(task.state, TaskState::Resolving));
        }
        self.commit(self.task_removal(task.clone())).await
    }

    /// Starts delivering the completion callback of `task` in the background, when it
    /// has a callback URL.
    pub(super) fn after_completion(&self, task: &Task) {
        if task.task_definition.completion_callback_url.is_empty() {
            return;
        }
        let bbs = self.clone();
        let guid = task.task_guid.clone();
        tokio::spawn(async move {
            if let Err(e) = bbs.resolve_task(&guid).await {
                tracing::info!(error = %e, task_guid = %guid, "task callback not delivered; convergence will retry");
            }
        });
    }

    /// Delivers a Completed task's callback: moves it to Resolving, POSTs up to
    /// [`CALLBACK_ATTEMPTS`] times (retrying only retryable failures) and deletes it
    /// once delivered. After giving up the task stays Resolving.
    #[instrument(skip_all, fields(task_guid = %task_guid))]
    pub async fn resolve_task(&self, task_guid: &TaskGuid) -> Result<()> {
        self.resolving_task(task_guid).await?;
        let task = self.read_task(task_guid).await?;
        let url = task.task_definition.completion_callback_url.clone();
        let body = TaskCallbackResponse::of(&task);
        for attempt in 1..=CALLBACK_ATTEMPTS {
            match self.inner.callback.deliver(&url, &body).await {
                Delivery::Delivered => return self.delete_task(task_guid).await,
                Delivery::Retry(why) => {
                    tracing::info!(attempt, %why, "task callback failed; retrying");
                }
                Delivery::GiveUp(why) => {
                    return Err(Error::unavailable(format!("task callback failed: {why}")));
                }
            }
        }
        Err(Error::unavailable(format!(
            "task callback failed {CALLBACK_ATTEMPTS} times"
        )))
    }

    /// Resolving → back to Completed (convergence's "kick"), if unchanged since read.
    pub async fn demote_resolving_task(&self, task: &Task) -> Result<()> {
        let _g = self
            .inner
            .stripes
            .lock(TASK_STRIPE, task.task_guid.as_str())
            .await;
        if task.state != TaskState::Resolving {
            return Err(transition(task.state, TaskState::Completed));
        }
        let mut after = task.clone();
        after.state = TaskState::Completed;
        self.commit(self.task_update(task.clone(), after, ())).await
    }
}

#[async_trait]
impl TaskApi for Bbs {
    #[instrument(skip_all, fields(task_guid = %request.task_guid))]
    async fn desire_task(&self, request: DesireTaskRequest) -> Result<()> {
        request.validate()?;
        let _g = self
            .inner
            .stripes
            .lock(TASK_STRIPE, request.task_guid.as_str())
            .await;
        let task = Task::from_request(request, self.inner.clock.now());
        let start = TaskStartRequest::new(&task);
        let mut batch = WriteBatch::new();
        batch.put(Record::task(task.clone()), Precondition::Absent);
        self.commit(Change {
            batch,
            lrp_events: Vec::new(),
            task_events: vec![TaskEvent::TaskCreated(task)],
            value: (),
        })
        .await?;
        drop(_g);
        self.request_task_auctions(vec![start]).await;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(task_guid = %task_guid))]
    async fn task_by_guid(&self, task_guid: &TaskGuid) -> Result<Task> {
        self.read_task(task_guid).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(?filter))]
    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        self.inner.store.tasks(filter).await
    }

    #[instrument(skip_all, fields(task_guid = %task_guid, cell_id = %cell_id))]
    async fn start_task(&self, task_guid: &TaskGuid, cell_id: &CellId) -> Result<bool> {
        require_guid(task_guid)?;
        require_cell(cell_id)?;
        let _g = self
            .inner
            .stripes
            .lock(TASK_STRIPE, task_guid.as_str())
            .await;
        with_cas_retry!(self, {
            let before = self.read_task(task_guid).await?;
            match before.state {
                TaskState::Pending => {
                    let mut after = before.clone();
                    after.state = TaskState::Running;
                    after.cell_id = Some(cell_id.clone());
                    Ok(self.task_update(before, after, true))
                }
                TaskState::Running if before.cell_id.as_ref() == Some(cell_id) => {
                    Ok(Change::none(false))
                }
                from => Err(transition(from, TaskState::Running)),
            }
        })
    }

    #[instrument(skip_all, fields(task_guid = %task_guid))]
    async fn cancel_task(&self, task_guid: &TaskGuid) -> Result<()> {
        require_guid(task_guid)?;
        let guard = self
            .inner
            .stripes
            .lock(TASK_STRIPE, task_guid.as_str())
            .await;
        let (cell, task) = with_cas_retry!(self, {
            let before = self.read_task(task_guid).await?;
            match before.state {
                TaskState::Pending | TaskState::Running => {
                    let mut after = self.completed(&before, true, TASK_CANCELLED, "");
                    after.result.clear();
                    let cell = before
                        .cell_id
                        .clone()
                        .filter(|_| before.state == TaskState::Running);
                    let value = (cell, after.clone());
                    Ok(self.task_update(before, after, value))
                }
                from => Err(transition(from, TaskState::Completed)),
            }
        })?;
        drop(guard);
        if let Some(cell_id) = cell {
            match self.cell_by_id(&cell_id).await {
                Ok(cell) => {
                    if let Err(e) = self.inner.rep_client.cancel_task(&cell, task_guid).await {
                        tracing::warn!(error = %e, %cell_id, "failed to tell the cell to cancel the task");
                    }
                }
                Err(e) => {
                    tracing::info!(error = %e, %cell_id, "cell of the cancelled task is gone")
                }
            }
        }
        self.after_completion(&task);
        Ok(())
    }

    #[instrument(skip_all, fields(task_guid = %task_guid))]
    async fn fail_task(&self, task_guid: &TaskGuid, failure_reason: &str) -> Result<()> {
        require_guid(task_guid)?;
        let guard = self
            .inner
            .stripes
            .lock(TASK_STRIPE, task_guid.as_str())
            .await;
        let task = with_cas_retry!(self, {
            let before = self.read_task(task_guid).await?;
            match before.state {
                TaskState::Pending | TaskState::Running => {
                    let after = self.completed(&before, true, failure_reason, "");
                    Ok(self.task_update(before, after.clone(), after))
                }
                from => Err(transition(from, TaskState::Completed)),
            }
        })?;
        drop(guard);
        self.after_completion(&task);
        Ok(())
    }

    #[instrument(skip_all, fields(task_guid = %task_guid))]
    async fn reject_task(&self, task_guid: &TaskGuid, rejection_reason: &str) -> Result<()> {
        require_guid(task_guid)?;
        let max = self.inner.config.max_task_retries;
        let guard = self
            .inner
            .stripes
            .lock(TASK_STRIPE, task_guid.as_str())
            .await;
        let completed = with_cas_retry!(self, {
            let before = self.read_task(task_guid).await?;
            match before.state {
                TaskState::Pending | TaskState::Running if before.rejection_count >= max => {
                    let after = self.completed(&before, true, rejection_reason, "");
                    Ok(self.task_update(before, after.clone(), Some(after)))
                }
                TaskState::Pending | TaskState::Running => {
                    let mut after = before.clone();
                    after.state = TaskState::Pending;
                    after.rejection_count += 1;
                    after.rejection_reason = truncate_cell_string(rejection_reason);
                    Ok(self.task_update(before, after, None))
                }
                _ => Err(Error::BadRequest),
            }
        })?;
        drop(guard);
        if let Some(task) = completed {
            self.after_completion(&task);
        }
        Ok(())
    }

    #[instrument(skip_all, fields(task_guid = %task_guid, cell_id = %cell_id))]
    async fn complete_task(
        &self,
        task_guid: &TaskGuid,
        cell_id: &CellId,
        failed: bool,
        failure_reason: &str,
        result: &str,
    ) -> Result<()> {
        require_guid(task_guid)?;
        require_cell(cell_id)?;
        let guard = self
            .inner
            .stripes
            .lock(TASK_STRIPE, task_guid.as_str())
            .await;
        let task = with_cas_retry!(self, {
            let before = self.read_task(task_guid).await?;
            match (&before.state, &before.cell_id) {
                (TaskState::Running, Some(actual)) if actual != cell_id => {
                    Err(Error::RunningOnDifferentCell {
                        actual: actual.to_string(),
                        caller: cell_id.to_string(),
                    })
                }
                (TaskState::Running, _) => {
                    let after = self.completed(&before, failed, failure_reason, result);
                    Ok(self.task_update(before, after.clone(), after))
                }
                (from, _) => Err(transition(*from, TaskState::Completed)),
            }
        })?;
        drop(guard);
        self.after_completion(&task);
        Ok(())
    }

    #[instrument(skip_all, fields(task_guid = %task_guid))]
    async fn resolving_task(&self, task_guid: &TaskGuid) -> Result<()> {
        require_guid(task_guid)?;
        let _g = self
            .inner
            .stripes
            .lock(TASK_STRIPE, task_guid.as_str())
            .await;
        with_cas_retry!(self, {
            let before = self.read_task(task_guid).await?;
            match before.state {
                TaskState::Completed => {
                    let mut after = before.clone();
                    after.state = TaskState::Resolving;
                    Ok(self.task_update(before, after, ()))
                }
                from => Err(transition(from, TaskState::Resolving)),
            }
        })
    }

    #[instrument(skip_all, fields(task_guid = %task_guid))]
    async fn delete_task(&self, task_guid: &TaskGuid) -> Result<()> {
        require_guid(task_guid)?;
        let _g = self
            .inner
            .stripes
            .lock(TASK_STRIPE, task_guid.as_str())
            .await;
        with_cas_retry!(self, {
            let before = self.read_task(task_guid).await?;
            match before.state {
                TaskState::Resolving => Ok(self.task_removal(before)),
                // Diego's text names Resolving as the target here too.
                from => Err(transition(from, TaskState::Resolving)),
            }
        })
    }
}
