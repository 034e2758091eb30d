//! Tasks: work run at most once — `Pending → Running → Completed → Resolving → deleted`.
//!
//! This module holds the records and their validation; the rules of the transitions
//! live in the BBS.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::models::action::{validate_env, validate_required_action, Action, EnvironmentVariable};
use crate::models::guid::{CellId, TaskGuid};
use crate::models::log_rate_limit::LogRateLimit;
use crate::models::metric_tags::{validate_metric_tags, MetricTags};
use crate::models::modification_tag::ModificationTag;
use crate::models::network::{validate_egress_rules, EgressRule, Network};
use crate::models::validation::{FieldPath, Validate, Validator};
use crate::models::volume_mount::{validate_volume_mounts, VolumeMount};
use crate::time::Timestamp;

/// Largest result a task may return from its result file, in bytes.
pub const MAX_TASK_RESULT_BYTES: usize = 51_200;

/// Where a Task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TaskState {
    /// Waiting for a cell.
    Pending,
    /// Running on a cell.
    Running,
    /// Finished (succeeded, failed or cancelled); waiting to be resolved.
    Completed,
    /// Its completion is being delivered (callback) and it is about to be deleted.
    Resolving,
}

impl TaskState {
    /// Diego's name of the state (`Pending`, ...), as used in error texts.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "Pending",
            TaskState::Running => "Running",
            TaskState::Completed => "Completed",
            TaskState::Resolving => "Resolving",
        }
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a Task runs and what it needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDefinition {
    /// Root filesystem URL (`preloaded:cflinuxfs4`, `docker:///busybox`).
    pub rootfs: String,
    /// Environment of every process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvironmentVariable>,
    /// The recipe (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Disk limit in MB (≥ 0; 0 = unlimited).
    #[serde(default)]
    pub disk_mb: i32,
    /// Memory limit in MB (≥ 0; 0 = unlimited).
    #[serde(default)]
    pub memory_mb: i32,
    /// Process limit (≥ 0; 0 = unlimited).
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub max_pids: i32,
    /// Relative CPU weight, 0..=100.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub cpu_weight: u32,
    /// Run privileged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// Log source of its output (default `TASK`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_source: String,
    /// Id its logs are published under.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_guid: String,
    /// Id its metrics are published under.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metrics_guid: String,
    /// Path of a file in the container whose contents become the result.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub result_file: String,
    /// URL POSTed when the task completes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub completion_callback_url: String,
    /// Free text for the client (≤ 10,240 bytes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub annotation: String,
    /// Allowed outbound traffic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress_rules: Vec<EgressRule>,
    /// Volumes to mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Network properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// Tags a cell must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement_tags: Vec<String>,
    /// Registry user for the image (with `image_password`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_username: String,
    /// Registry password for the image (with `image_username`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_password: String,
    /// Log rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_rate_limit: Option<LogRateLimit>,
    /// Metric tags.
    #[serde(default, skip_serializing_if = "MetricTags::is_empty")]
    pub metric_tags: MetricTags,
}

fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

impl TaskDefinition {
    /// A definition running `action` on `rootfs`, everything else default.
    pub fn new(rootfs: impl Into<String>, action: impl Into<Action>) -> Self {
        TaskDefinition {
            rootfs: rootfs.into(),
            action: Some(action.into()),
            ..Default::default()
        }
    }
}

impl Validate for TaskDefinition {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        v.rootfs(&self.rootfs, &path.field("rootfs"));
        validate_env(&self.env, &path.field("env"), v);
        validate_required_action(self.action.as_ref(), &path.field("action"), v);
        v.non_negative(self.disk_mb.into(), &path.field("disk_mb"));
        v.non_negative(self.memory_mb.into(), &path.field("memory_mb"));
        v.non_negative(self.max_pids.into(), &path.field("max_pids"));
        v.check(
            self.cpu_weight <= 100,
            &path.field("cpu_weight"),
            "must be <= 100",
        );
        if !self.completion_callback_url.is_empty() {
            let ok = self.completion_callback_url.starts_with("http://")
                || self.completion_callback_url.starts_with("https://");
            v.check(
                ok,
                &path.field("completion_callback_url"),
                "must be an http:// or https:// URL",
            );
        }
        v.annotation(&self.annotation, &path.field("annotation"));
        validate_egress_rules(&self.egress_rules, &path.field("egress_rules"), v);
        validate_volume_mounts(&self.volume_mounts, &path.field("volume_mounts"), v);
        v.image_credentials(&self.image_username, &self.image_password, path);
        v.log_rate_limit(self.log_rate_limit.as_ref(), &path.field("log_rate_limit"));
        validate_metric_tags(&self.metric_tags, &path.field("metric_tags"), v);
    }
}

/// A request to run a new Task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesireTaskRequest {
    /// The new Task's guid (`^[a-zA-Z0-9_-]+$`, unique).
    pub task_guid: TaskGuid,
    /// Its domain (non-empty).
    pub domain: String,
    /// What it runs.
    pub task_definition: TaskDefinition,
}

impl Validate for DesireTaskRequest {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        v.guid(self.task_guid.as_str(), &path.field("task_guid"));
        v.non_empty(&self.domain, &path.field("domain"));
        v.nested(&self.task_definition, &path.field("task_definition"));
    }
}

/// A Task as the BBS stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Its guid; also the guid of its container.
    pub task_guid: TaskGuid,
    /// Its domain.
    pub domain: String,
    /// What it runs.
    pub task_definition: TaskDefinition,
    /// Where it is in its life.
    pub state: TaskState,
    /// The cell it was started on (kept on rejection, cleared on completion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_id: Option<CellId>,
    /// The contents of its result file (≤ 51,200 bytes).
    #[serde(default)]
    pub result: String,
    /// Whether it failed.
    #[serde(default)]
    pub failed: bool,
    /// Why it failed.
    #[serde(default)]
    pub failure_reason: String,
    /// When it was desired (Unix ns).
    pub created_at: Timestamp,
    /// When it was last written (Unix ns).
    pub updated_at: Timestamp,
    /// When it first completed (Unix ns; 0 until then).
    #[serde(default)]
    pub first_completed_at: Timestamp,
    /// How many times a cell or the auctioneer rejected it.
    #[serde(default)]
    pub rejection_count: i32,
    /// The last rejection's reason.
    #[serde(default)]
    pub rejection_reason: String,
    /// The record's version.
    pub modification_tag: ModificationTag,
}

impl Task {
    /// A new Pending task from a request, created at `now`.
    pub fn from_request(req: DesireTaskRequest, now: Timestamp) -> Self {
        Task {
            task_guid: req.task_guid,
            domain: req.domain,
            task_definition: req.task_definition,
            state: TaskState::Pending,
            cell_id: None,
            result: String::new(),
            failed: false,
            failure_reason: String::new(),
            created_at: now,
            updated_at: now,
            first_completed_at: Timestamp::ZERO,
            rejection_count: 0,
            rejection_reason: String::new(),
            modification_tag: ModificationTag::fresh(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::action::RunAction;

    fn request() -> DesireTaskRequest {
        DesireTaskRequest {
            task_guid: TaskGuid::new("task-1"),
            domain: "cf-tasks".into(),
            task_definition: TaskDefinition::new(
                "preloaded:cflinuxfs4",
                RunAction::new("/bin/echo", "vcap").with_args(["hi"]),
            ),
        }
    }

    fn fields(r: &DesireTaskRequest) -> Vec<String> {
        match r.validate() {
            Ok(()) => vec![],
            Err(e) => e.errors().iter().map(|e| e.field.clone()).collect(),
        }
    }

    #[test]
    fn a_good_request_passes() {
        assert!(fields(&request()).is_empty());
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        let mut r = request();
        r.task_guid = TaskGuid::new("bad guid!");
        r.domain.clear();
        r.task_definition.rootfs = "cflinuxfs4".into();
        r.task_definition.action = None;
        r.task_definition.memory_mb = -1;
        r.task_definition.disk_mb = -1;
        r.task_definition.max_pids = -1;
        r.task_definition.cpu_weight = 101;
        r.task_definition.annotation = "a".repeat(10_241);
        r.task_definition.image_username = "me".into();
        r.task_definition.completion_callback_url = "ftp://x".into();
        r.task_definition.log_rate_limit = Some(LogRateLimit {
            bytes_per_second: -2,
        });
        assert_eq!(
            fields(&r),
            [
                "task_guid",
                "domain",
                "task_definition.rootfs",
                "task_definition.action",
                "task_definition.disk_mb",
                "task_definition.memory_mb",
                "task_definition.max_pids",
                "task_definition.cpu_weight",
                "task_definition.completion_callback_url",
                "task_definition.annotation",
                "task_definition.image_password",
                "task_definition.log_rate_limit.bytes_per_second",
            ]
        );
        let e = r.validate().unwrap_err().to_string();
        assert!(e.starts_with("Invalid field: task_guid ("), "{e}");
    }

    #[test]
    fn annotation_at_the_limit_passes() {
        let mut r = request();
        r.task_definition.annotation = "a".repeat(10_240);
        r.task_definition.log_rate_limit = Some(LogRateLimit::default());
        assert!(fields(&r).is_empty());
    }

    #[test]
    fn states_have_diegos_names() {
        assert_eq!(TaskState::Pending.to_string(), "Pending");
        assert_eq!(
            serde_json::to_string(&TaskState::Resolving).unwrap(),
            "\"Resolving\""
        );
        let t = Task::from_request(request(), Timestamp(7));
        assert_eq!(t.state, TaskState::Pending);
        assert_eq!(t.created_at, Timestamp(7));
    }
}
