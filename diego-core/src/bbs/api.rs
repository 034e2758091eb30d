//! The BBS's operations as object-safe traits, one per resource, and [`BbsApi`], their
//! union.
//!
//! As Diego's own Go client (`bbs.Client` embeds a task, a desired-LRP, an actual-LRP, a
//! domain and an event client, and the cell-facing calls): [`TaskApi`],
//! [`DesiredLrpApi`], [`ActualLrpApi`], [`EvacuationApi`], [`DomainApi`], [`CellApi`]
//! and [`EventApi`]. Every type that implements all of them is a [`BbsApi`] (a blanket
//! impl): the in-process [`Bbs`](super::Bbs), whose bodies live in the file of each
//! resource (`tasks.rs`, `desired_lrps.rs`, ...), and (with the HTTP API) the
//! `BbsClient`. Reps, the auction runner and the converger hold an `Arc<dyn BbsApi>`,
//! so the same code runs in one process or across many.
//!
//! Calling an operation needs its trait in scope: `use diego_core::prelude::*;` brings
//! them all. This module knows the operations, not how they are carried out.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::events::{EventStream, LrpEvent, TaskEvent};
use crate::models::actual_lrp::{ActualLrp, ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo};
use crate::models::cell::CellPresence;
use crate::models::desired_lrp::{DesiredLrp, DesiredLrpUpdate, SchedulingInfo};
use crate::models::guid::{CellId, ProcessGuid, TaskGuid};
use crate::models::task::{DesireTaskRequest, Task};
use crate::store::{ActualLrpFilter, DesiredLrpFilter, TaskFilter};

/// Task operations (SPEC.md's Tasks section): `Pending → Running → Completed →
/// Resolving → deleted`.
#[async_trait]
pub trait TaskApi: Send + Sync + Debug {
    /// Creates a Pending task and asks for its placement. Duplicate guid: `ResourceExists`.
    async fn desire_task(&self, request: DesireTaskRequest) -> Result<()>;
    /// One task.
    async fn task_by_guid(&self, task_guid: &TaskGuid) -> Result<Task>;
    /// Tasks matching `filter`.
    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>>;
    /// Pending → Running on `cell_id`. `Ok(false)` when it already runs on that cell
    /// ("not changed": the cell must not run it again).
    async fn start_task(&self, task_guid: &TaskGuid, cell_id: &CellId) -> Result<bool>;
    /// Pending/Running → Completed, failed, `"task was cancelled"`; the cell is told to
    /// delete the container.
    async fn cancel_task(&self, task_guid: &TaskGuid) -> Result<()>;
    /// Pending/Running → Completed, failed with `failure_reason`.
    async fn fail_task(&self, task_guid: &TaskGuid, failure_reason: &str) -> Result<()>;
    /// The task could not be placed or set up: back to Pending (to be auctioned again by
    /// convergence), or failed with the reason once `max_task_retries` rejections were
    /// counted before this one.
    async fn reject_task(&self, task_guid: &TaskGuid, rejection_reason: &str) -> Result<()>;
    /// Running on `cell_id` → Completed with the run's outcome.
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
}

/// DesiredLRP operations (SPEC.md's LRPs section): desire, update, remove, read.
#[async_trait]
pub trait DesiredLrpApi: Send + Sync + Debug {
    /// Creates a DesiredLRP and an UNCLAIMED row for each index lacking one, and asks for
    /// their placement. An existing process guid is `ResourceExists` (not an update).
    async fn desire_lrp(&self, desired: DesiredLrp) -> Result<()>;
    /// Changes instances, routes, annotation, metric tags or image credentials. Scaling
    /// up creates and auctions the new indices, scaling down retires instances at or
    /// above the new count (EVACUATING rows are left alone); new metric tags reach
    /// running instances in place.
    async fn update_desired_lrp(
        &self,
        process_guid: &ProcessGuid,
        update: DesiredLrpUpdate,
    ) -> Result<()>;
    /// Deletes a DesiredLRP and retires (stops) its instances.
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
}

/// ActualLRP operations (SPEC.md's transition table, checked on every call): what cells
/// and the auctioneer report about instances, and reads.
#[async_trait]
pub trait ActualLrpApi: Send + Sync + Debug {
    /// ActualLRP rows matching `filter` (every presence).
    async fn actual_lrps(&self, filter: &ActualLrpFilter) -> Result<Vec<Arc<ActualLrp>>>;
    /// A cell claims an instance: UNCLAIMED (any instance), or CLAIMED/RUNNING by the same
    /// instance, → CLAIMED. From a SUSPECT instance: ignored, answered as success.
    async fn claim_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<()>;
    /// A cell reports an instance running (also the heartbeat: nothing changed → no
    /// write, no event). With no ORDINARY row one is created RUNNING. The EVACUATING and
    /// SUSPECT rows of the index are removed once a replacement runs.
    async fn start_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        net_info: &ActualLrpNetInfo,
        routable: bool,
    ) -> Result<()>;
    /// A cell reports an instance crashed: CLAIMED/RUNNING by the same instance → the
    /// restart policy decides (UNCLAIMED and auctioned now, or CRASHED to wait). From a
    /// SUSPECT instance the suspect row is simply deleted.
    async fn crash_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        crash_reason: &str,
    ) -> Result<()>;
    /// The auctioneer could not place an UNCLAIMED instance: records the placement
    /// error. A missing row is accepted silently.
    async fn fail_actual_lrp(&self, key: &ActualLrpKey, placement_error: &str) -> Result<()>;
    /// A cell stopped an instance: the ORDINARY row of `key` (held by `instance_key` when
    /// given) is deleted.
    async fn remove_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: Option<&ActualLrpInstanceKey>,
    ) -> Result<()>;
    /// Stops an instance wherever it is: UNCLAIMED/CRASHED rows are deleted;
    /// CLAIMED/RUNNING ones are stopped by their cell (deleted when the cell is gone).
    /// Up to `retire_attempts` attempts.
    async fn retire_actual_lrp(&self, key: &ActualLrpKey) -> Result<()>;
}

/// Evacuation (SPEC.md's Evacuation section): a draining cell hands its instances over.
/// Each call answers "keep the container?".
#[async_trait]
pub trait EvacuationApi: Send + Sync + Debug {
    /// An evacuating cell gives up a CLAIMED instance: it is unclaimed and auctioned;
    /// the container is not kept. Returns whether to keep the container.
    async fn evacuate_claimed_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<bool>;
    /// An evacuating cell asks about a RUNNING instance. First call: an EVACUATING copy is
    /// made (still routed) and the ORDINARY row is unclaimed in place and auctioned; the
    /// container is kept until the replacement is RUNNING or CRASHED, the DesiredLRP is
    /// gone, or another cell holds the EVACUATING row. With `RECREATE` no copy is made
    /// and the instance is unclaimed only while all desired instances are RUNNING.
    /// Returns whether to keep the container.
    async fn evacuate_running_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        net_info: &ActualLrpNetInfo,
    ) -> Result<bool>;
    /// An evacuating cell's instance stopped: its rows go; the container is not kept.
    /// Returns whether to keep the container.
    async fn evacuate_stopped_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<bool>;
    /// An evacuating cell's instance crashed: the crash is recorded with no immediate
    /// auction (convergence picks it up as stale unclaimed); the container is not kept.
    /// Returns whether to keep the container.
    async fn evacuate_crashed_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        crash_reason: &str,
    ) -> Result<bool>;
    /// Deletes the EVACUATING row held by `instance_key` (its container is gone). A
    /// missing row is accepted; a row held by another instance is
    /// `ActualLRPCannotBeRemoved`.
    async fn remove_evacuating_actual_lrp(
        &self,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<()>;
}

/// Domains: names kept fresh with a TTL by whoever owns them.
#[async_trait]
pub trait DomainApi: Send + Sync + Debug {
    /// Marks `domain` fresh for `ttl` from now (zero: forever).
    async fn upsert_domain(&self, domain: &str, ttl: Duration) -> Result<()>;
    /// The names of the fresh domains.
    async fn domains(&self) -> Result<Vec<String>>;
}

/// Cell presences: leases with a TTL that reps renew.
#[async_trait]
pub trait CellApi: Send + Sync + Debug {
    /// Registers or renews `presence` for the configured TTL.
    ///
    /// A presence is a [`Lock`](crate::lock::Lock) lease named `cells/{cell_id}`, held by
    /// the rep's address, on the BBS's lock (by default its store's own, the one behind
    /// the BBS's leader lock), plus the presence record itself. Renewing keeps the lease;
    /// another rep registering the same cell id while the lease is live gets
    /// [`Error::LockCollision`](crate::Error::LockCollision); once it has expired, the
    /// newcomer takes it over.
    async fn register_cell(&self, presence: &CellPresence) -> Result<()>;
    /// Removes a cell's presence at once (a clean shutdown): its lease is released.
    async fn remove_cell(&self, cell_id: &CellId) -> Result<()>;
    /// The cells whose presence is live (its lease has not ended).
    async fn cells(&self) -> Result<Vec<CellPresence>>;
    /// One live cell.
    async fn cell_by_id(&self, cell_id: &CellId) -> Result<CellPresence>;
}

/// The event streams.
#[async_trait]
pub trait EventApi: Send + Sync + Debug {
    /// The LRP event stream; with `cell_id`, actual-LRP events of that cell only.
    async fn subscribe_lrp_events(&self, cell_id: Option<CellId>) -> Result<EventStream<LrpEvent>>;
    /// The task event stream.
    async fn subscribe_task_events(&self) -> Result<EventStream<TaskEvent>>;
}

/// Every operation of the BBS: the union of [`TaskApi`], [`DesiredLrpApi`],
/// [`ActualLrpApi`], [`EvacuationApi`], [`DomainApi`], [`CellApi`] and [`EventApi`],
/// implemented by every type that implements them all. Object-safe: hold an
/// `Arc<dyn BbsApi>` and call any operation on it (with `diego_core::prelude::*` in
/// scope).
pub trait BbsApi:
    TaskApi + DesiredLrpApi + ActualLrpApi + EvacuationApi + DomainApi + CellApi + EventApi
{
}

impl<T> BbsApi for T where
    T: TaskApi
        + DesiredLrpApi
        + ActualLrpApi
        + EvacuationApi
        + DomainApi
        + CellApi
        + EventApi
        + ?Sized
{
}
