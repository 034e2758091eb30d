//! What the executor knows about one container: its state, resources, tags, ports and
//! run result ([`Container`]), and the allocation request that reserves it.
//!
//! Plain data. It knows containers; it must not know Tasks or LRPs (tags carry whatever
//! the caller wants to find the container by).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use diego_core::{LogTags, Timestamp};
use serde::{Deserialize, Serialize};

/// Tags: key/value pairs the caller attaches at allocation and filters on.
pub type Tags = BTreeMap<String, String>;

/// The life of a container in the executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerState {
    /// Resources are reserved; nothing exists in the backend yet.
    Reserved,
    /// A run was asked for; the backend container is being created.
    Initializing,
    /// The backend container exists; setup and the action are starting.
    Created,
    /// The action runs and the container is healthy (or has no checks).
    Running,
    /// It ended; see its [`RunResult`]. Resources stay taken until it is deleted.
    Completed,
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContainerState::Reserved => "reserved",
            ContainerState::Initializing => "initializing",
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Completed => "completed",
        })
    }
}

/// What a container takes from the cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContainerResource {
    /// Memory in MiB (0: no limit, nothing reserved).
    pub memory_mb: u64,
    /// Disk in MiB (0: no limit, nothing reserved).
    pub disk_mb: u64,
    /// Most processes (0: no limit).
    pub max_pids: u64,
}

impl ContainerResource {
    /// `memory_mb` and `disk_mb` with no process limit.
    pub fn new(memory_mb: u64, disk_mb: u64) -> Self {
        ContainerResource {
            memory_mb,
            disk_mb,
            max_pids: 0,
        }
    }
}

/// The cell's resources: totals or what is left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resources {
    /// Memory in MiB.
    pub memory_mb: u64,
    /// Disk in MiB.
    pub disk_mb: u64,
    /// Container slots.
    pub containers: u64,
}

impl Resources {
    /// Whether `resource` (plus one container slot) fits in these.
    pub fn fits(&self, resource: &ContainerResource) -> bool {
        self.containers >= 1
            && self.memory_mb >= resource.memory_mb
            && self.disk_mb >= resource.disk_mb
    }

    pub(crate) fn take(&mut self, resource: &ContainerResource) {
        self.containers -= 1;
        self.memory_mb -= resource.memory_mb;
        self.disk_mb -= resource.disk_mb;
    }

    pub(crate) fn give_back(&mut self, resource: &ContainerResource) {
        self.containers += 1;
        self.memory_mb += resource.memory_mb;
        self.disk_mb += resource.disk_mb;
    }
}

/// A request to reserve a container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationRequest {
    /// The container's guid (its backend handle too).
    pub guid: String,
    /// What it takes.
    pub resource: ContainerResource,
    /// Tags to find it by.
    pub tags: Tags,
}

impl AllocationRequest {
    /// A request for `guid` taking `resource`, no tags.
    pub fn new(guid: impl Into<String>, resource: ContainerResource) -> Self {
        AllocationRequest {
            guid: guid.into(),
            resource,
            tags: Tags::new(),
        }
    }

    /// Adds a tag.
    #[must_use]
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

/// An allocation request that could not be served, and why (Diego's texts:
/// `"container guid not available"`, `"container guid not specified"`,
/// `"insufficient resources available"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationFailure {
    /// The request.
    pub request: AllocationRequest,
    /// Why it failed.
    pub reason: String,
}

/// How a container's run ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunResult {
    /// Whether it failed.
    pub failed: bool,
    /// Why (Diego's texts, e.g. `"APP/PROC/WEB: Exited with status 1"`); empty on success.
    pub failure_reason: String,
    /// The result file's content (at most 51,200 bytes), when one was asked for.
    pub result: String,
    /// Whether it ended because it was stopped.
    pub stopped: bool,
}

/// A port of the container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// The port asked for in the run request (what checks and routes name).
    pub container_port: u16,
    /// The port reachable on the host.
    pub host_port: u16,
    /// The port the process must listen on inside the container: equal to
    /// `container_port`, except on backends in host-network mode that assign one.
    pub internal_port: u16,
}

/// A snapshot of one container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// Its guid (and backend handle).
    pub guid: String,
    /// Its state.
    pub state: ContainerState,
    /// What it takes.
    pub resource: ContainerResource,
    /// Its tags.
    pub tags: Tags,
    /// When it was reserved.
    pub allocated_at: Timestamp,
    /// The host's address, as clients reach it.
    pub external_ip: String,
    /// The container's own address.
    pub internal_ip: String,
    /// Its ports, in the order of the run request.
    pub ports: Vec<PortMapping>,
    /// Whether it should receive traffic: true once running, unless readiness checks
    /// say otherwise.
    pub routable: bool,
    /// How its run ended (meaningful once completed).
    pub run_result: RunResult,
    /// The metric tags its log lines and metrics carry (from the run request, changed in
    /// place by [`Executor::update_metric_tags`](crate::Executor::update_metric_tags)).
    #[serde(default, skip_serializing_if = "no_tags")]
    pub metric_tags: Arc<LogTags>,
}

fn no_tags(tags: &Arc<LogTags>) -> bool {
    tags.is_empty()
}

impl Container {
    pub(crate) fn reserved(request: &AllocationRequest, now: Timestamp) -> Self {
        Container {
            guid: request.guid.clone(),
            state: ContainerState::Reserved,
            resource: request.resource,
            tags: request.tags.clone(),
            allocated_at: now,
            external_ip: String::new(),
            internal_ip: String::new(),
            ports: Vec::new(),
            routable: false,
            run_result: RunResult::default(),
            metric_tags: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_fit_take_and_give_back() {
        let mut left = Resources {
            memory_mb: 100,
            disk_mb: 100,
            containers: 1,
        };
        let small = ContainerResource::new(60, 10);
        assert!(left.fits(&small));
        assert!(!left.fits(&ContainerResource::new(101, 0)));
        assert!(!left.fits(&ContainerResource::new(0, 101)));
        left.take(&small);
        assert!(!left.fits(&ContainerResource::new(0, 0)), "no slot left");
        left.give_back(&small);
        assert_eq!(left.memory_mb, 100);
        assert_eq!(left.containers, 1);
    }
}
