//! What a container should run: [`RunRequest`] (action tree, setup, monitor or checks,
//! environment, ports, log configuration, result file, sidecars).
//!
//! Plain data built by the caller (the rep builds it from a Task or an LRP). It knows
//! actions and containers; it must not know Tasks or LRPs.

use std::time::Duration;

use diego_core::log_sink::LogLimit;
use diego_core::{Action, CheckDefinition, EnvironmentVariable, LogTags};
use serde::{Deserialize, Serialize};

use diego_core::setter;

/// Where a container's log lines go and how they are labelled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogConfig {
    /// The source id of every line (the app's or task's log guid).
    pub guid: String,
    /// The default source type (`APP/PROC/WEB`, `TASK`, ...); empty: `LOG`.
    pub source_name: String,
    /// The instance index in every line.
    pub index: i32,
}

impl LogConfig {
    /// Lines with source id `guid`, the default source type and index 0.
    pub fn new(guid: impl Into<String>) -> Self {
        LogConfig {
            guid: guid.into(),
            ..LogConfig::default()
        }
    }

    setter!(with_guid => guid: impl Into<String>);
    setter!(with_source_name => source_name: impl Into<String>);
    setter!(with_index => index: i32);
}

/// The identity of an instance, exported to its processes as `INSTANCE_GUID`,
/// `INSTANCE_INDEX`, `CF_INSTANCE_GUID` and `CF_INSTANCE_INDEX`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceIdentity {
    /// The instance guid.
    pub guid: String,
    /// The instance index.
    pub index: i32,
}

/// Everything a reserved container needs to run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    /// The root filesystem (passed to the backend).
    pub rootfs: String,
    /// Environment of every process, after the `CF_INSTANCE_*` variables.
    pub env: Vec<EnvironmentVariable>,
    /// Runs first; its failure completes the container.
    pub setup: Option<Action>,
    /// The main action (required).
    pub action: Option<Action>,
    /// The legacy monitor action (ignored when `check_definition` is set).
    pub monitor: Option<Action>,
    /// Declarative checks (they disable `monitor`).
    pub check_definition: Option<CheckDefinition>,
    /// How long startup checks may take; zero: no deadline.
    pub start_timeout: Duration,
    /// Container ports to map, in order.
    pub ports: Vec<u16>,
    /// Actions running beside the main action; any member's exit ends the group.
    pub sidecars: Vec<Action>,
    /// Relative CPU weight (0: the backend's default).
    pub cpu_weight: u64,
    /// Where log lines go and how they are labelled.
    pub log_config: LogConfig,
    /// A per-instance limit on the container's log lines (lines over it are dropped
    /// and counted, never waited for); `None`: unlimited.
    pub log_rate_limit: Option<LogLimit>,
    /// Instance identity exported to processes; `None` for one-off work.
    pub instance: Option<InstanceIdentity>,
    /// Tags every log line and metric of the container carries (Diego's resolved
    /// `metric_tags`); they can be changed while it runs with
    /// [`Executor::update_metric_tags`](crate::Executor::update_metric_tags).
    #[serde(default, skip_serializing_if = "LogTags::is_empty")]
    pub metric_tags: LogTags,
    /// A container path read after a successful run (at most 51,200 bytes) into
    /// [`RunResult::result`](crate::RunResult::result); empty: none.
    pub result_file: String,
}

impl RunRequest {
    /// A request running `action` with everything else default.
    pub fn new(action: impl Into<Action>) -> Self {
        RunRequest {
            action: Some(action.into()),
            ..RunRequest::default()
        }
    }

    /// Whether the container has health checks of any kind (monitor or declarative).
    pub fn has_health_checks(&self) -> bool {
        self.check_definition.is_some() || self.monitor.is_some()
    }
}
