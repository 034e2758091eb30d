//! What the BBS asks the auctioneer to place: LRP instances and Tasks, with the
//! resources and constraints placement needs.

use serde::{Deserialize, Serialize};

use crate::desired_lrp::SchedulingInfo;
use crate::guid::{ProcessGuid, TaskGuid};
use crate::task::Task;
use crate::volume_mount::VolumePlacement;

/// Resources one container needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// Memory in MB.
    pub memory_mb: i32,
    /// Disk in MB.
    pub disk_mb: i32,
    /// Process limit (0 = unlimited).
    #[serde(default)]
    pub max_pids: i32,
}

/// What a cell must offer to run the work.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementConstraint {
    /// Root filesystem URL.
    pub rootfs: String,
    /// Tags the cell must carry.
    #[serde(default)]
    pub placement_tags: Vec<String>,
    /// Volume drivers the cell must offer.
    #[serde(default)]
    pub volume_drivers: Vec<String>,
}

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
