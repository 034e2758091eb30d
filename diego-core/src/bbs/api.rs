//! `BbsApi`: the BBS's operations as one object-safe trait.
//!
//! Implemented by the in-process [`Bbs`](super::Bbs) and (with the HTTP API) by a
//! client; reps, the auction runner and the converger hold an `Arc<dyn BbsApi>`, so the
//! same code runs in one process or across many.

use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::events::{EventStream, LrpEvent, TaskEvent};
use crate::models::actual_lrp::{ActualLrp, ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo};
use crate::models::cell::CellPresence;
use crate::models::desired_lrp::{DesiredLrp, DesiredLrpUpdate, SchedulingInfo};
use crate::models::guid::{CellId, ProcessGuid, TaskGuid};
use crate::models::task::{DesireTaskRequest, Task};
use crate::store::{ActualLrpFilter, DesiredLrpFilter, TaskFilter};

/// Every operation of the BBS. See SPEC.md's Tasks, LRPs and Evacuation sections.
#[async_trait]
pub trait BbsApi: Send + Sync + std::fmt::Debug {
    // ----- tasks -----

    /// Creates a Pending task and asks for its placement. Duplicate guid: `ResourceExists`.
    async fn desire_task(&self, request: DesireTaskRequest) -> Result<()>;
    /// One task.
    async fn task_by_guid(&self, task_guid: &TaskGuid) -> Result<Task>;
    /// Tasks matching `filter`.
    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>>;
    /// Pending → Running on `cell_id`. `Ok(false)` when it already runs on that cell
    /// ("not changed": the cell must not run it again).
    async fn start_task(&self, task_guid: &TaskGuid, cell_id: &CellId) -> Result<bool>;
    /// Pending/Running → Completed, failed, `"task was cancelled"`.
    async fn cancel_task(&self, task_guid: &TaskGuid) -> Result<()>;
    /// Pending/Running → Completed, failed with `reason`.
    async fn fail_task(&self, task_guid: &TaskGuid, failure_reason: &str) -> Result<()>;
    /// The task could not be placed or set up: back to Pending, or failed after
    /// `max_task_retries` rejections.
    async fn reject_task(&self, task_guid: &TaskGuid, rejection_reason: &str) -> Result<()>;
    /// Running on `cell_id` → Completed.
    async fn complete_task(
        &self,
        task_guid: &TaskGuid,
        cell_id: &CellId,
        failed: bool,
        failure_reason: &str,
        result: &str,
    ) -> Result<()>;
    /// Completed → Resolving.
    async fn resolving_task(&self, task_guid: &TaskGuid) -> Result<()>;
    /// Resolving → deleted.
    async fn delete_task(&self, task_guid: &TaskGuid) -> Result<()>;

    // ----- desired LRPs -----

    /// Creates a DesiredLRP and its instances, and asks for their placement.
    async fn desire_lrp(&self, desired: DesiredLrp) -> Result<()>;
    /// Changes instances, routes, annotation, metric tags or image credentials.
    async fn update_desired_lrp(
        &self,
        process_guid: &ProcessGuid,
        update: DesiredLrpUpdate,
    ) -> Result<()>;
    /// Deletes a DesiredLRP and stops its instances.
    async fn remove_desired_lrp(&self, process_guid: &ProcessGuid) -> Result<()>;
    /// One DesiredLRP.
    async fn desired_lrp_by_process_guid(&self, process_guid: &ProcessGuid) -> Result<DesiredLrp>;
    /// DesiredLRPs matching `filter`.
    async fn desired_lrps(&self, filter: &DesiredLrpFilter) -> Result<Vec<DesiredLrp>>;
    /// The scheduling halves of the DesiredLRPs matching `filter`.
    async fn desired_lrp_scheduling_infos(
        &self,
        filter: &DesiredLrpFilter,
    ) -> Result<Vec<SchedulingInfo>>;

    // ----- actual LRPs -----

    /// ActualLRP rows matching `filter` (every presence).
    async fn actual_lrps(&self, filter: &ActualLrpFilter) -> Result<Vec<Arc<ActualLrp>>>;
    /// A cell claims an instance.
    async fn claim_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<()>;
    /// A cell reports an instance running (also the heartbeat).
    async fn start_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        net_info: &ActualLrpNetInfo,
        routable: bool,
    ) -> Result<()>;
    /// A cell reports an instance crashed; the restart policy decides what follows.
    async fn crash_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        crash_reason: &str,
    ) -> Result<()>;
    /// The auctioneer could not place an UNCLAIMED instance.
    async fn fail_actual_lrp(&self, key: &ActualLrpKey, placement_error: &str) -> Result<()>;
    /// A cell stopped an instance: its ORDINARY row goes.
    async fn remove_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: Option<&ActualLrpInstanceKey>,
    ) -> Result<()>;
    /// Stops an instance wherever it is (deletes it when not running anywhere).
    async fn retire_actual_lrp(&self, key: &ActualLrpKey) -> Result<()>;

    // ----- evacuation -----

    /// An evacuating cell gives up a CLAIMED instance. Returns whether to keep the container.
    async fn evacuate_claimed_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<bool>;
    /// An evacuating cell asks about a RUNNING instance. Returns whether to keep the container.
    async fn evacuate_running_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        net_info: &ActualLrpNetInfo,
    ) -> Result<bool>;
    /// An evacuating cell's instance stopped. Returns whether to keep the container.
    async fn evacuate_stopped_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<bool>;
    /// An evacuating cell's instance crashed. Returns whether to keep the container.
    async fn evacuate_crashed_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        crash_reason: &str,
    ) -> Result<bool>;
    /// Deletes an EVACUATING row whose container is gone.
    async fn remove_evacuating_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<()>;

    // ----- domains and cells -----

    /// Marks `domain` fresh for `ttl` (zero: forever).
    async fn upsert_domain(&self, domain: &str, ttl: Duration) -> Result<()>;
    /// The fresh domains.
    async fn domains(&self) -> Result<Vec<String>>;
    /// Registers or renews a cell's presence for the configured TTL.
    async fn register_cell(&self, presence: &CellPresence) -> Result<()>;
    /// Removes a cell's presence at once (a clean shutdown).
    async fn remove_cell(&self, cell_id: &CellId) -> Result<()>;
    /// The cells whose presence is live.
    async fn cells(&self) -> Result<Vec<CellPresence>>;
    /// One live cell.
    async fn cell_by_id(&self, cell_id: &CellId) -> Result<CellPresence>;

    // ----- events -----

    /// The LRP event stream; with `cell_id`, actual-LRP events of that cell only.
    async fn subscribe_lrp_events(&self, cell_id: Option<CellId>) -> Result<EventStream<LrpEvent>>;
    /// The task event stream.
    async fn subscribe_task_events(&self) -> Result<EventStream<TaskEvent>>;
}

#[async_trait]
impl BbsApi for super::Bbs {
    async fn desire_task(&self, request: DesireTaskRequest) -> Result<()> {
        super::Bbs::desire_task(self, request).await
    }
    async fn task_by_guid(&self, task_guid: &TaskGuid) -> Result<Task> {
        super::Bbs::task_by_guid(self, task_guid).await
    }
    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        super::Bbs::tasks(self, filter).await
    }
    async fn start_task(&self, task_guid: &TaskGuid, cell_id: &CellId) -> Result<bool> {
        super::Bbs::start_task(self, task_guid, cell_id).await
    }
    async fn cancel_task(&self, task_guid: &TaskGuid) -> Result<()> {
        super::Bbs::cancel_task(self, task_guid).await
    }
    async fn fail_task(&self, task_guid: &TaskGuid, failure_reason: &str) -> Result<()> {
        super::Bbs::fail_task(self, task_guid, failure_reason).await
    }
    async fn reject_task(&self, task_guid: &TaskGuid, rejection_reason: &str) -> Result<()> {
        super::Bbs::reject_task(self, task_guid, rejection_reason).await
    }
    async fn complete_task(
        &self,
        task_guid: &TaskGuid,
        cell_id: &CellId,
        failed: bool,
        failure_reason: &str,
        result: &str,
    ) -> Result<()> {
        super::Bbs::complete_task(self, task_guid, cell_id, failed, failure_reason, result).await
    }
    async fn resolving_task(&self, task_guid: &TaskGuid) -> Result<()> {
        super::Bbs::resolving_task(self, task_guid).await
    }
    async fn delete_task(&self, task_guid: &TaskGuid) -> Result<()> {
        super::Bbs::delete_task(self, task_guid).await
    }
    async fn desire_lrp(&self, desired: DesiredLrp) -> Result<()> {
        super::Bbs::desire_lrp(self, desired).await
    }
    async fn update_desired_lrp(
        &self,
        process_guid: &ProcessGuid,
        update: DesiredLrpUpdate,
    ) -> Result<()> {
        super::Bbs::update_desired_lrp(self, process_guid, update).await
    }
    async fn remove_desired_lrp(&self, process_guid: &ProcessGuid) -> Result<()> {
        super::Bbs::remove_desired_lrp(self, process_guid).await
    }
    async fn desired_lrp_by_process_guid(&self, process_guid: &ProcessGuid) -> Result<DesiredLrp> {
        super::Bbs::desired_lrp_by_process_guid(self, process_guid).await
    }
    async fn desired_lrps(&self, filter: &DesiredLrpFilter) -> Result<Vec<DesiredLrp>> {
        super::Bbs::desired_lrps(self, filter).await
    }
    async fn desired_lrp_scheduling_infos(
        &self,
        filter: &DesiredLrpFilter,
    ) -> Result<Vec<SchedulingInfo>> {
        super::Bbs::desired_lrp_scheduling_infos(self, filter).await
    }
    async fn actual_lrps(&self, filter: &ActualLrpFilter) -> Result<Vec<Arc<ActualLrp>>> {
        super::Bbs::actual_lrps(self, filter).await
    }
    async fn claim_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<()> {
        super::Bbs::claim_actual_lrp(self, key, instance_key).await
    }
    async fn start_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        net_info: &ActualLrpNetInfo,
        routable: bool,
    ) -> Result<()> {
        super::Bbs::start_actual_lrp(self, key, instance_key, net_info, routable).await
    }
    async fn crash_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        crash_reason: &str,
    ) -> Result<()> {
        super::Bbs::crash_actual_lrp(self, key, instance_key, crash_reason).await
    }
    async fn fail_actual_lrp(&self, key: &ActualLrpKey, placement_error: &str) -> Result<()> {
        super::Bbs::fail_actual_lrp(self, key, placement_error).await
    }
    async fn remove_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: Option<&ActualLrpInstanceKey>,
    ) -> Result<()> {
        super::Bbs::remove_actual_lrp(self, key, instance_key).await
    }
    async fn retire_actual_lrp(&self, key: &ActualLrpKey) -> Result<()> {
        super::Bbs::retire_actual_lrp(self, key).await
    }
    async fn evacuate_claimed_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<bool> {
        super::Bbs::evacuate_claimed_actual_lrp(self, key, instance_key).await
    }
    async fn evacuate_running_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        net_info: &ActualLrpNetInfo,
    ) -> Result<bool> {
        super::Bbs::evacuate_running_actual_lrp(self, key, instance_key, net_info).await
    }
    async fn evacuate_stopped_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<bool> {
        super::Bbs::evacuate_stopped_actual_lrp(self, key, instance_key).await
    }
    async fn evacuate_crashed_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        crash_reason: &str,
    ) -> Result<bool> {
        super::Bbs::evacuate_crashed_actual_lrp(self, key, instance_key, crash_reason).await
    }
    async fn remove_evacuating_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<()> {
        super::Bbs::remove_evacuating_actual_lrp(self, key, instance_key).await
    }
    async fn upsert_domain(&self, domain: &str, ttl: Duration) -> Result<()> {
        super::Bbs::upsert_domain(self, domain, ttl).await
    }
    async fn domains(&self) -> Result<Vec<String>> {
        super::Bbs::domains(self).await
    }
    async fn register_cell(&self, presence: &CellPresence) -> Result<()> {
        super::Bbs::register_cell(self, presence).await
    }
    async fn remove_cell(&self, cell_id: &CellId) -> Result<()> {
        super::Bbs::remove_cell(self, cell_id).await
    }
    async fn cells(&self) -> Result<Vec<CellPresence>> {
        super::Bbs::cells(self).await
    }
    async fn cell_by_id(&self, cell_id: &CellId) -> Result<CellPresence> {
        super::Bbs::cell_by_id(self, cell_id).await
    }
    async fn subscribe_lrp_events(&self, cell_id: Option<CellId>) -> Result<EventStream<LrpEvent>> {
        Ok(self.events().subscribe_lrp(cell_id))
    }
    async fn subscribe_task_events(&self) -> Result<EventStream<TaskEvent>> {
        Ok(self.events().subscribe_task())
    }
}
