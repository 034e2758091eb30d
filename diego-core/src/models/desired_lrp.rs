//! DesiredLRPs: what the client wants kept running — N instances of one recipe.
//!
//! A [`DesiredLrp`] is two halves, as in Diego: the [`SchedulingInfo`] (what placement and
//! convergence need: identity, instances, resources, routes) and the [`RunInfo`] (what a
//! cell needs to run an instance). In JSON both halves are flattened into one object:
//! `{"process_guid": "web", "domain": "apps", "instances": 3, "rootfs": "...", "action": {...}}`.
//! Unknown fields are rejected.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::models::action::{validate_env, validate_required_action, Action, EnvironmentVariable};
use crate::models::check_definition::CheckDefinition;
use crate::models::guid::ProcessGuid;
use crate::models::log_rate_limit::LogRateLimit;
use crate::models::metric_tags::{validate_metric_tags, MetricTags};
use crate::models::modification_tag::ModificationTag;
use crate::models::network::{validate_egress_rules, EgressRule, Network};
use crate::models::routes::Routes;
use crate::models::validation::{FieldPath, Validate, Validator};
use crate::models::volume_mount::{validate_volume_mounts, VolumeMount, VolumePlacement};
use crate::time::Timestamp;

/// How instances are replaced when a cell is evacuated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpdateStrategy {
    /// Start the replacement before stopping the old instance.
    #[default]
    Rolling,
    /// Stop first, one instance at a time, only while all are running.
    Recreate,
}

/// The identity shared by a DesiredLRP's halves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DesiredLrpKey {
    /// The process guid.
    pub process_guid: ProcessGuid,
    /// The domain.
    pub domain: String,
    /// The log guid.
    pub log_guid: String,
}

/// What placement and convergence need to know of a DesiredLRP.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedulingInfo {
    /// The guid of the process (`^[a-zA-Z0-9_-]+$`).
    pub process_guid: ProcessGuid,
    /// Its domain (non-empty).
    pub domain: String,
    /// Id its logs are published under.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_guid: String,
    /// How many instances to keep running (≥ 0).
    #[serde(default)]
    pub instances: i32,
    /// Root filesystem URL.
    pub rootfs: String,
    /// Memory per instance in MB (≥ 0).
    #[serde(default)]
    pub memory_mb: i32,
    /// Disk per instance in MB (≥ 0).
    #[serde(default)]
    pub disk_mb: i32,
    /// Process limit per instance (≥ 0; 0 = unlimited).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_pids: i32,
    /// Tags a cell must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement_tags: Vec<String>,
    /// Volume drivers a cell must offer; the BBS derives it from `volume_mounts`.
    #[serde(default, skip_serializing_if = "is_empty_placement")]
    pub volume_placement: VolumePlacement,
    /// Routes, by router name.
    #[serde(default, skip_serializing_if = "Routes::is_empty")]
    pub routes: Routes,
    /// Free text for the client (≤ 10,240 bytes).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub annotation: String,
    /// How instances are replaced on evacuation.
    #[serde(default)]
    pub update_strategy: UpdateStrategy,
    /// The record's version (set by the BBS).
    #[serde(default)]
    pub modification_tag: ModificationTag,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

fn is_empty_placement(p: &VolumePlacement) -> bool {
    p.driver_names.is_empty()
}

impl SchedulingInfo {
    /// The identity of the LRP.
    pub fn key(&self) -> DesiredLrpKey {
        DesiredLrpKey {
            process_guid: self.process_guid.clone(),
            domain: self.domain.clone(),
            log_guid: self.log_guid.clone(),
        }
    }
}

/// A process that runs beside the main action of each instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    /// What it runs (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Its disk in MB (≥ 0).
    #[serde(default)]
    pub disk_mb: i32,
    /// Its memory in MB (≥ 0).
    #[serde(default)]
    pub memory_mb: i32,
}

/// What a cell needs to run an instance of a DesiredLRP.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Environment of every process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvironmentVariable>,
    /// Run once before the action (downloads, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<Action>,
    /// The long-running process (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Legacy health check action (ignored when `check_definition` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Action>,
    /// Declarative health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_definition: Option<CheckDefinition>,
    /// How long an instance may take to become healthy; 0 = no deadline.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub start_timeout_ms: u64,
    /// Container ports to expose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u32>,
    /// Run privileged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// Relative CPU weight, 0..=100.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub cpu_weight: u32,
    /// Log source of the app's output (default `APP/PROC/WEB`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_source: String,
    /// Id its metrics are published under.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metrics_guid: String,
    /// Metric tags.
    #[serde(default, skip_serializing_if = "MetricTags::is_empty")]
    pub metric_tags: MetricTags,
    /// Allowed outbound traffic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress_rules: Vec<EgressRule>,
    /// Volumes to mount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Processes run beside the action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sidecars: Vec<Sidecar>,
    /// Network properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// Registry user for the image (with `image_password`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_username: String,
    /// Registry password for the image (with `image_username`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_password: String,
    /// Log rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_rate_limit: Option<LogRateLimit>,
    /// When it was desired (Unix ns; set by the BBS).
    #[serde(default)]
    pub created_at: Timestamp,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// A long-running process: its scheduling half and its run half.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DesiredLrpWire")]
pub struct DesiredLrp {
    /// What placement and convergence need.
    #[serde(flatten)]
    pub scheduling_info: SchedulingInfo,
    /// What a cell needs to run an instance.
    #[serde(flatten)]
    pub run_info: RunInfo,
}

/// The JSON form, with a catch-all that turns unknown fields into an error.
#[derive(Deserialize)]
struct DesiredLrpWire {
    #[serde(flatten)]
    scheduling_info: SchedulingInfo,
    #[serde(flatten)]
    run_info: RunInfo,
    #[serde(flatten)]
    unknown: BTreeMap<String, serde::de::IgnoredAny>,
}

impl TryFrom<DesiredLrpWire> for DesiredLrp {
    type Error = String;

    fn try_from(w: DesiredLrpWire) -> Result<Self, String> {
        if let Some(name) = w.unknown.keys().next() {
            return Err(format!("unknown field `{name}` in desired LRP"));
        }
        Ok(DesiredLrp {
            scheduling_info: w.scheduling_info,
            run_info: w.run_info,
        })
    }
}

impl DesiredLrp {
    /// An LRP of `instances` instances of `action` on `rootfs`, everything else default.
    pub fn new(
        process_guid: impl Into<ProcessGuid>,
        domain: impl Into<String>,
        rootfs: impl Into<String>,
        instances: i32,
        action: impl Into<Action>,
    ) -> Self {
        DesiredLrp {
            scheduling_info: SchedulingInfo {
                process_guid: process_guid.into(),
                domain: domain.into(),
                instances,
                rootfs: rootfs.into(),
                ..Default::default()
            },
            run_info: RunInfo {
                action: Some(action.into()),
                ..Default::default()
            },
        }
    }

    /// The process guid.
    pub fn process_guid(&self) -> &ProcessGuid {
        &self.scheduling_info.process_guid
    }

    /// Applies an update: only the fields an update may change; bumps nothing (the BBS
    /// sets the new modification tag).
    pub fn apply_update(&mut self, update: &DesiredLrpUpdate) {
        let s = &mut self.scheduling_info;
        if let Some(n) = update.instances {
            s.instances = n;
        }
        if let Some(r) = &update.routes {
            s.routes = r.clone();
        }
        if let Some(a) = &update.annotation {
            s.annotation = a.clone();
        }
        let r = &mut self.run_info;
        if let Some(t) = &update.metric_tags {
            r.metric_tags = t.clone();
        }
        if let Some(u) = &update.image_username {
            r.image_username = u.clone();
        }
        if let Some(p) = &update.image_password {
            r.image_password = p.clone();
        }
    }
}

impl Validate for DesiredLrp {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        let s = &self.scheduling_info;
        v.guid(s.process_guid.as_str(), &path.field("process_guid"));
        v.non_empty(&s.domain, &path.field("domain"));
        v.rootfs(&s.rootfs, &path.field("rootfs"));
        v.non_negative(s.instances.into(), &path.field("instances"));
        v.non_negative(s.memory_mb.into(), &path.field("memory_mb"));
        v.non_negative(s.disk_mb.into(), &path.field("disk_mb"));
        v.non_negative(s.max_pids.into(), &path.field("max_pids"));
        v.annotation(&s.annotation, &path.field("annotation"));
        s.routes.validate_size(&path.field("routes"), v);

        let r = &self.run_info;
        validate_env(&r.env, &path.field("env"), v);
        if let Some(setup) = &r.setup {
            v.nested(setup, &path.field("setup"));
        }
        validate_required_action(r.action.as_ref(), &path.field("action"), v);
        if let Some(monitor) = &r.monitor {
            v.nested(monitor, &path.field("monitor"));
        }
        if let Some(checks) = &r.check_definition {
            v.nested(checks, &path.field("check_definition"));
        }
        let ports = path.field("ports");
        for (i, p) in r.ports.iter().enumerate() {
            v.check(
                (1..=65_535).contains(p),
                &ports.index(i),
                "must be 1..=65535",
            );
        }
        v.check(
            r.cpu_weight <= 100,
            &path.field("cpu_weight"),
            "must be <= 100",
        );
        validate_metric_tags(&r.metric_tags, &path.field("metric_tags"), v);
        validate_egress_rules(&r.egress_rules, &path.field("egress_rules"), v);
        validate_volume_mounts(&r.volume_mounts, &path.field("volume_mounts"), v);
        let sidecars = path.field("sidecars");
        for (i, sc) in r.sidecars.iter().enumerate() {
            let p = sidecars.index(i);
            validate_required_action(sc.action.as_ref(), &p.field("action"), v);
            v.non_negative(sc.disk_mb.into(), &p.field("disk_mb"));
            v.non_negative(sc.memory_mb.into(), &p.field("memory_mb"));
        }
        v.image_credentials(&r.image_username, &r.image_password, path);
        v.log_rate_limit(r.log_rate_limit.as_ref(), &path.field("log_rate_limit"));
    }
}

/// A change to a DesiredLRP: only these fields can change (anything else needs a new
/// process guid). Absent fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredLrpUpdate {
    /// New number of instances (≥ 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<i32>,
    /// New routes (replace all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Routes>,
    /// New annotation (≤ 10,240 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
    /// New metric tags (reach running instances in place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_tags: Option<MetricTags>,
    /// New registry user (with `image_password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_username: Option<String>,
    /// New registry password (with `image_username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_password: Option<String>,
}

impl Validate for DesiredLrpUpdate {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        if let Some(n) = self.instances {
            v.non_negative(n.into(), &path.field("instances"));
        }
        if let Some(r) = &self.routes {
            r.validate_size(&path.field("routes"), v);
        }
        if let Some(a) = &self.annotation {
            v.annotation(a, &path.field("annotation"));
        }
        if let Some(t) = &self.metric_tags {
            validate_metric_tags(t, &path.field("metric_tags"), v);
        }
        match (&self.image_username, &self.image_password) {
            (Some(_), None) => v.error(
                &path.field("image_password"),
                "must be set with image_username",
            ),
            (None, Some(_)) => v.error(
                &path.field("image_username"),
                "must be set with image_password",
            ),
            (Some(u), Some(p)) => v.image_credentials(u, p, path),
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::action::RunAction;
    use crate::models::check_definition::Check;

    fn lrp() -> DesiredLrp {
        DesiredLrp::new(
            "web",
            "apps",
            "preloaded:cflinuxfs4",
            3,
            RunAction::new("/app/server", "vcap"),
        )
    }

    fn fields<V: Validate>(x: &V) -> Vec<String> {
        match x.validate() {
            Ok(()) => vec![],
            Err(e) => e.errors().iter().map(|e| e.field.clone()).collect(),
        }
    }

    #[test]
    fn json_is_one_flat_object() {
        let json = serde_json::to_value(lrp()).unwrap();
        assert_eq!(json["process_guid"], "web");
        assert_eq!(json["instances"], 3);
        assert_eq!(json["action"]["run"]["path"], "/app/server");
        assert_eq!(json["update_strategy"], "ROLLING");
        let back: DesiredLrp = serde_json::from_value(json).unwrap();
        assert_eq!(back, lrp());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let mut json = serde_json::to_value(lrp()).unwrap();
        json["instancs"] = 3.into();
        let err = serde_json::from_value::<DesiredLrp>(json).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `instancs`"),
            "{err}"
        );
    }

    #[test]
    fn a_good_lrp_passes() {
        let mut l = lrp();
        l.run_info.check_definition = Some(CheckDefinition {
            checks: vec![Check::tcp(8080)],
            ..Default::default()
        });
        l.run_info.ports = vec![8080];
        l.scheduling_info.routes = Routes::http(&["demo.localhost"], 8080);
        assert!(fields(&l).is_empty());
    }

    #[test]
    fn every_violation_is_reported() {
        let mut l = lrp();
        l.scheduling_info.process_guid = ProcessGuid::new("");
        l.scheduling_info.domain.clear();
        l.scheduling_info.rootfs = "nope".into();
        l.scheduling_info.instances = -1;
        l.scheduling_info.memory_mb = -1;
        l.scheduling_info.disk_mb = -1;
        l.scheduling_info.max_pids = -1;
        l.scheduling_info.annotation = "x".repeat(10_241);
        l.run_info.action = Some(Action::serial([
            RunAction::new("/a", "u").into(),
            RunAction::new("/b", "u").into(),
            RunAction::new("", "u").into(),
        ]));
        l.run_info.check_definition = Some(CheckDefinition {
            checks: vec![Check::default()],
            ..Default::default()
        });
        l.run_info.ports = vec![0];
        l.run_info.cpu_weight = 200;
        l.run_info.sidecars = vec![Sidecar::default()];
        l.run_info.image_password = "p".into();
        assert_eq!(
            fields(&l),
            [
                "process_guid",
                "domain",
                "rootfs",
                "instances",
                "memory_mb",
                "disk_mb",
                "max_pids",
                "annotation",
                "action.serial.actions[2].run.path",
                "check_definition.checks[0].port",
                "ports[0]",
                "cpu_weight",
                "sidecars[0].action",
                "image_username",
            ]
        );
    }

    #[test]
    fn update_changes_only_its_fields() {
        let mut l = lrp();
        let before = l.clone();
        let update = DesiredLrpUpdate {
            instances: Some(5),
            annotation: Some("v2".into()),
            ..Default::default()
        };
        l.apply_update(&update);
        assert_eq!(l.scheduling_info.instances, 5);
        assert_eq!(l.scheduling_info.annotation, "v2");
        assert_eq!(l.run_info, before.run_info);
        assert_eq!(l.scheduling_info.routes, before.scheduling_info.routes);
        assert!(serde_json::from_str::<DesiredLrpUpdate>(r#"{"rootfs":"x"}"#).is_err());
    }

    #[test]
    fn update_validation() {
        let u = DesiredLrpUpdate {
            instances: Some(-1),
            annotation: Some("a".repeat(10_241)),
            image_username: Some("u".into()),
            ..Default::default()
        };
        assert_eq!(fields(&u), ["instances", "annotation", "image_password"]);
        assert!(fields(&DesiredLrpUpdate::default()).is_empty());
    }
}
