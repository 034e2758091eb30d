//! What a container needs of a cell: its [`Resource`]s and the [`PlacementConstraint`]
//! a cell must meet to run it (Diego's `rep.Resource` and `rep.PlacementConstraint`).

use serde::{Deserialize, Serialize};

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
