//! Diego's models, as its `bbs/models` package has them: Tasks, DesiredLRPs, ActualLRPs,
//! cells and the resources they offer, actions, health checks, routes, networking,
//! volume mounts, domains, the identifiers and modification tags every record carries,
//! the crash restart policy, and the validation of all of them.
//!
//! These are plain data with their stable JSON shape and their validation rules. They
//! must not know the BBS, its `Store`, events or convergence, nor HTTP, the auction or
//! how containers run: everything else in the SDK builds on them, never the other way
//! round. Each type is also re-exported at the crate root (`diego_core::DesiredLrp`).

pub mod action;
pub mod actual_lrp;
pub mod cell;
pub mod check_definition;
pub mod desired_lrp;
pub mod domain;
pub mod guid;
pub mod log_rate_limit;
pub mod metric_tags;
pub mod modification_tag;
pub mod network;
pub mod resource;
pub mod restart_policy;
pub mod rootfs;
pub mod routes;
pub mod task;
pub mod validation;
pub mod volume_mount;

pub use action::{
    Action, CodependentAction, DownloadAction, EmitProgressAction, EnvironmentVariable,
    ParallelAction, ResourceLimits, RunAction, SerialAction, TimeoutAction, TryAction,
    UploadAction,
};
pub use actual_lrp::{
    ActualLrp, ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo, ActualLrpState, PortMapping,
    PreferredAddress, Presence,
};
pub use cell::{CellCapacity, CellPresence, CellState, LrpSummary, RootfsProviders, TaskSummary};
pub use check_definition::{Check, CheckDefinition, HttpCheck, TcpCheck};
pub use desired_lrp::{
    DesiredLrp, DesiredLrpKey, DesiredLrpUpdate, RunInfo, SchedulingInfo, Sidecar, UpdateStrategy,
};
pub use domain::Domain;
pub use guid::{CellId, InstanceGuid, ProcessGuid, TaskGuid};
pub use log_rate_limit::LogRateLimit;
pub use metric_tags::{DynamicMetricTag, MetricTagValue, MetricTags};
pub use modification_tag::ModificationTag;
pub use network::{EgressRule, IcmpInfo, Network, PortRange};
pub use resource::{PlacementConstraint, Resource};
pub use restart_policy::RestartCalculator;
pub use routes::{HttpRoute, Routes, TcpRoute};
pub use task::{DesireTaskRequest, Task, TaskDefinition, TaskState};
pub use validation::{FieldError, Validate, ValidationErrors};
pub use volume_mount::{SharedDevice, VolumeMount, VolumePlacement};
