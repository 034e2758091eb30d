//! The BBS's contract with the cells: [`RepClient`], how the BBS reaches a cell's rep to
//! stop an LRP instance, cancel a task, or update an instance in place, addressed by the
//! cell's presence (its id and rep address).
//!
//! The executor crate implements it in-process and over HTTP; the BBS never knows which.
//! This module must not know containers, the executor, or any transport.

use async_trait::async_trait;
#[cfg(feature = "test-util")]
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::models::actual_lrp::{ActualLrpInstanceKey, ActualLrpKey};
use crate::models::cell::CellPresence;
#[cfg(feature = "test-util")]
use crate::models::guid::CellId;
use crate::models::guid::TaskGuid;
use crate::models::metric_tags::MetricTags;

/// Calls from the BBS to a cell.
#[async_trait]
pub trait RepClient: Send + Sync + std::fmt::Debug {
    /// Asks the cell to stop an LRP instance.
    async fn stop_lrp_instance(
        &self,
        cell: &CellPresence,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<()>;

    /// Asks the cell to cancel (delete the container of) a task.
    async fn cancel_task(&self, cell: &CellPresence, task_guid: &TaskGuid) -> Result<()>;

    /// Tells the cell the new metric tags of a running instance.
    async fn update_lrp_instance(
        &self,
        cell: &CellPresence,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        metric_tags: &MetricTags,
    ) -> Result<()>;
}

/// One call recorded by [`RecordingRepClient`] (feature `test-util`).
#[cfg(feature = "test-util")]
#[derive(Clone, Debug, PartialEq)]
pub enum RepCall {
    /// `stop_lrp_instance`.
    StopLrpInstance {
        /// The cell.
        cell_id: CellId,
        /// The instance.
        key: ActualLrpKey,
        /// The attempt.
        instance_key: ActualLrpInstanceKey,
    },
    /// `cancel_task`.
    CancelTask {
        /// The cell.
        cell_id: CellId,
        /// The task.
        task_guid: TaskGuid,
    },
    /// `update_lrp_instance`.
    UpdateLrpInstance {
        /// The cell.
        cell_id: CellId,
        /// The instance.
        key: ActualLrpKey,
        /// The new tags.
        metric_tags: MetricTags,
    },
}

/// A rep client that records every call: a test double (feature `test-util`). It can be
/// told to fail.
#[cfg(feature = "test-util")]
#[derive(Debug, Default)]
pub struct RecordingRepClient {
    calls: Mutex<Vec<RepCall>>,
    failing: Mutex<bool>,
}

#[cfg(feature = "test-util")]
impl RecordingRepClient {
    /// A recorder with nothing recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the calls recorded so far.
    pub fn take_calls(&self) -> Vec<RepCall> {
        std::mem::take(&mut *self.calls.lock())
    }

    /// Makes every later call fail with `Unavailable` (still recorded).
    pub fn set_failing(&self, failing: bool) {
        *self.failing.lock() = failing;
    }

    fn record(&self, call: RepCall) -> Result<()> {
        self.calls.lock().push(call);
        if *self.failing.lock() {
            Err(Error::unavailable("rep unreachable"))
        } else {
            Ok(())
        }
    }
}

#[cfg(feature = "test-util")]
#[async_trait]
impl RepClient for RecordingRepClient {
    async fn stop_lrp_instance(
        &self,
        cell: &CellPresence,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> Result<()> {
        self.record(RepCall::StopLrpInstance {
            cell_id: cell.cell_id.clone(),
            key: key.clone(),
            instance_key: instance_key.clone(),
        })
    }

    async fn cancel_task(&self, cell: &CellPresence, task_guid: &TaskGuid) -> Result<()> {
        self.record(RepCall::CancelTask {
            cell_id: cell.cell_id.clone(),
            task_guid: task_guid.clone(),
        })
    }

    async fn update_lrp_instance(
        &self,
        cell: &CellPresence,
        key: &ActualLrpKey,
        _instance_key: &ActualLrpInstanceKey,
        metric_tags: &MetricTags,
    ) -> Result<()> {
        self.record(RepCall::UpdateLrpInstance {
            cell_id: cell.cell_id.clone(),
            key: key.clone(),
            metric_tags: metric_tags.clone(),
        })
    }
}

/// The rep client of a BBS built without one: every call fails with `Unavailable`.
#[derive(Debug, Default)]
pub struct NoRepClient;

#[async_trait]
impl RepClient for NoRepClient {
    async fn stop_lrp_instance(
        &self,
        _: &CellPresence,
        _: &ActualLrpKey,
        _: &ActualLrpInstanceKey,
    ) -> Result<()> {
        Err(Error::unavailable("no rep client configured"))
    }

    async fn cancel_task(&self, _: &CellPresence, _: &TaskGuid) -> Result<()> {
        Err(Error::unavailable("no rep client configured"))
    }

    async fn update_lrp_instance(
        &self,
        _: &CellPresence,
        _: &ActualLrpKey,
        _: &ActualLrpInstanceKey,
        _: &MetricTags,
    ) -> Result<()> {
        Err(Error::unavailable("no rep client configured"))
    }
}
