//! The BBS's contract with the auctioneer: [`AuctioneerClient`], and what the BBS asks
//! it to place — LRP instances and Tasks, with the resources and constraints placement
//! needs.
//!
//! The auction runner implements it in-process and an HTTP client over the network; the
//! BBS never knows which. This module must not know how placement is decided, the cells,
//! or any transport.

use serde::{Deserialize, Serialize};

use crate::models::desired_lrp::SchedulingInfo;
use crate::models::guid::{ProcessGuid, TaskGuid};
use crate::models::resource::{PlacementConstraint, Resource};
use crate::models::task::Task;
use crate::models::volume_mount::VolumePlacement;

/// Start instances `indices` of one LRP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrpStartRequest {
    /// The process.
    pub process_guid: ProcessGuid,
    /// Its domain.
    pub domain: String,
    /// The instance indices to start.
    pub indices: Vec<i32>,
    /// Resources of one instance.
    pub resource: Resource,
    /// Where it may run.
    pub placement_constraint: PlacementConstraint,
}

impl LrpStartRequest {
    /// A request to start `indices` of the LRP described by `info`.
    pub fn new(info: &SchedulingInfo, indices: Vec<i32>) -> Self {
        LrpStartRequest {
            process_guid: info.process_guid.clone(),
            domain: info.domain.clone(),
            indices,
            resource: Resource {
                memory_mb: info.memory_mb,
                disk_mb: info.disk_mb,
                max_pids: info.max_pids,
            },
            placement_constraint: PlacementConstraint {
                rootfs: info.rootfs.clone(),
                placement_tags: info.placement_tags.clone(),
                volume_drivers: info.volume_placement.driver_names.clone(),
            },
        }
    }
}

/// Start one Task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskStartRequest {
    /// The task.
    pub task_guid: TaskGuid,
    /// Its domain.
    pub domain: String,
    /// Its resources.
    pub resource: Resource,
    /// Where it may run.
    pub placement_constraint: PlacementConstraint,
}

impl TaskStartRequest {
    /// A request to start `task`.
    pub fn new(task: &Task) -> Self {
        let d = &task.task_definition;
        TaskStartRequest {
            task_guid: task.task_guid.clone(),
            domain: task.domain.clone(),
            resource: Resource {
                memory_mb: d.memory_mb,
                disk_mb: d.disk_mb,
                max_pids: d.max_pids,
            },
            placement_constraint: PlacementConstraint {
                rootfs: d.rootfs.clone(),
                placement_tags: d.placement_tags.clone(),
                volume_drivers: VolumePlacement::from_mounts(&d.volume_mounts).driver_names,
            },
        }
    }
}

/// How the BBS asks for placement. Implemented by the auction runner (in-process) and
/// by an HTTP client; the BBS never knows which.
#[async_trait::async_trait]
pub trait AuctioneerClient: Send + Sync + std::fmt::Debug {
    /// Asks for LRP instances to be placed.
    async fn request_lrp_auctions(&self, requests: Vec<LrpStartRequest>) -> crate::Result<()>;
    /// Asks for Tasks to be placed.
    async fn request_task_auctions(&self, requests: Vec<TaskStartRequest>) -> crate::Result<()>;
}

/// An auctioneer that records every request: a test double (feature `test-util`).
#[cfg(feature = "test-util")]
#[derive(Debug, Default)]
pub struct RecordingAuctioneer {
    lrps: parking_lot::Mutex<Vec<LrpStartRequest>>,
    tasks: parking_lot::Mutex<Vec<TaskStartRequest>>,
}

#[cfg(feature = "test-util")]
impl RecordingAuctioneer {
    /// A recorder with nothing recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the LRP requests recorded so far.
    pub fn take_lrp_requests(&self) -> Vec<LrpStartRequest> {
        std::mem::take(&mut *self.lrps.lock())
    }

    /// Takes the Task requests recorded so far.
    pub fn take_task_requests(&self) -> Vec<TaskStartRequest> {
        std::mem::take(&mut *self.tasks.lock())
    }

    /// The `(process_guid, index)` pairs requested so far (without taking them).
    pub fn requested_indices(&self) -> Vec<(ProcessGuid, i32)> {
        self.lrps
            .lock()
            .iter()
            .flat_map(|r| r.indices.iter().map(|i| (r.process_guid.clone(), *i)))
            .collect()
    }
}

#[cfg(feature = "test-util")]
#[async_trait::async_trait]
impl AuctioneerClient for RecordingAuctioneer {
    async fn request_lrp_auctions(&self, requests: Vec<LrpStartRequest>) -> crate::Result<()> {
        self.lrps.lock().extend(requests);
        Ok(())
    }

    async fn request_task_auctions(&self, requests: Vec<TaskStartRequest>) -> crate::Result<()> {
        self.tasks.lock().extend(requests);
        Ok(())
    }
}

/// The auctioneer of a BBS built without one: every request fails with `Unavailable`,
/// which the BBS logs; convergence asks again later.
#[derive(Debug, Default)]
pub struct NoAuctioneer;

#[async_trait::async_trait]
impl AuctioneerClient for NoAuctioneer {
    async fn request_lrp_auctions(&self, _: Vec<LrpStartRequest>) -> crate::Result<()> {
        Err(crate::Error::unavailable("no auctioneer configured"))
    }

    async fn request_task_auctions(&self, _: Vec<TaskStartRequest>) -> crate::Result<()> {
        Err(crate::Error::unavailable("no auctioneer configured"))
    }
}
