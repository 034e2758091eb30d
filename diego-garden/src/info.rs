//! What a backend reports: exit statuses, container info and metrics, capacity, and what
//! the backend enforces.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spec::Properties;

/// The event recorded (in [`ContainerInfo::events`]) when the kernel killed a process of
/// the container for exceeding its memory limit.
pub const OUT_OF_MEMORY_EVENT: &str = "out of memory";

/// A signal a caller may send to a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Signal {
    /// Ask the process to stop (SIGTERM).
    Terminate,
    /// Stop it now (SIGKILL).
    Kill,
}

impl Signal {
    /// The Unix signal number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Terminate => 15,
            Signal::Kill => 9,
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code; `128 + n` when the process was ended by signal `n`.
    pub code: i32,
    /// Whether the kernel killed it for exceeding its container's memory limit.
    pub out_of_memory: bool,
}

impl ExitStatus {
    /// An ordinary exit with this code.
    pub fn code(code: i32) -> Self {
        ExitStatus {
            code,
            out_of_memory: false,
        }
    }

    /// The status of a process ended by signal `signal`: `128 + signal`.
    pub fn signaled(signal: i32) -> Self {
        ExitStatus::code(128 + signal)
    }

    /// Whether the exit code is 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit status {}", self.code)?;
        if self.out_of_memory {
            write!(f, " (out of memory)")?;
        }
        Ok(())
    }
}

/// A host port mapped to a container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// The port reachable on the host.
    pub host_port: u16,
    /// The port the process must listen on. In host-network mode it equals `host_port`
    /// (the backend replaces the requested container port, which is only a hint).
    pub container_port: u16,
}

/// Whether a container still runs processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Created and accepting processes.
    Active,
    /// Stopped: its processes were ended and it runs no new ones.
    Stopped,
}

/// A snapshot of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// The container's handle.
    pub handle: String,
    /// Its state.
    pub state: ContainerState,
    /// Things that happened to it, e.g. [`OUT_OF_MEMORY_EVENT`].
    pub events: Vec<String>,
    /// The host's IP as seen by clients.
    pub host_ip: String,
    /// The container's own IP (the host's in host-network mode).
    pub container_ip: String,
    /// The ports mapped by `net_in`, in order.
    pub mapped_ports: Vec<PortMapping>,
    /// The container's properties.
    pub properties: Properties,
    /// The ids of processes still running.
    pub process_ids: Vec<String>,
}

/// Resource usage of a container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMetrics {
    /// Memory in use, in bytes.
    pub memory_bytes: u64,
    /// CPU time used so far.
    pub cpu_time: Duration,
    /// Disk used by the container's own files, in bytes.
    pub disk_bytes: u64,
    /// Bytes received on the container's own network (0 in host-network mode).
    pub rx_bytes: u64,
    /// Bytes sent on the container's own network (0 in host-network mode).
    pub tx_bytes: u64,
    /// Time since the container was created.
    pub age: Duration,
}

/// What a backend can give, and how much of it is taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Total memory for containers, in bytes.
    pub memory_bytes: u64,
    /// Total disk for containers, in bytes.
    pub disk_bytes: u64,
    /// Most containers that may exist at once.
    pub max_containers: u64,
    /// Sum of the memory limits of existing containers.
    pub allocated_memory_bytes: u64,
    /// Sum of the disk limits of existing containers.
    pub allocated_disk_bytes: u64,
    /// Containers that exist now.
    pub containers: u64,
}

impl Capacity {
    /// Checks that a container with these limits fits; says which resource is short.
    pub fn check_fits(&self, memory: Option<u64>, disk: Option<u64>) -> crate::Result<()> {
        if self.containers >= self.max_containers {
            return Err(crate::Error::InsufficientResources {
                reason: format!("container limit of {} reached", self.max_containers),
            });
        }
        if let Some(memory) = memory {
            if self.allocated_memory_bytes.saturating_add(memory) > self.memory_bytes {
                return Err(crate::Error::InsufficientResources {
                    reason: format!(
                        "memory: {memory} bytes asked, {} of {} free",
                        self.memory_bytes
                            .saturating_sub(self.allocated_memory_bytes),
                        self.memory_bytes
                    ),
                });
            }
        }
        if let Some(disk) = disk {
            if self.allocated_disk_bytes.saturating_add(disk) > self.disk_bytes {
                return Err(crate::Error::InsufficientResources {
                    reason: format!(
                        "disk: {disk} bytes asked, {} of {} free",
                        self.disk_bytes.saturating_sub(self.allocated_disk_bytes),
                        self.disk_bytes
                    ),
                });
            }
        }
        Ok(())
    }
}

/// What a backend enforces or offers; the conformance suite tests exactly these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// Memory limits are enforced, and exceeding one is reported as out of memory.
    pub memory_limit: bool,
    /// Process-count limits are enforced.
    pub pids_limit: bool,
    /// `nofile` limits are applied to processes (visible through `ulimit -n`).
    pub nofile_limit: bool,
    /// CPU weights are applied.
    pub cpu_weight: bool,
    /// Egress rules are enforced.
    pub net_out: bool,
    /// Each container has its own root filesystem and pid namespace.
    pub isolation: bool,
}

impl Capabilities {
    /// Nothing enforced.
    pub fn none() -> Self {
        Capabilities::default()
    }

    /// Sets `memory_limit`.
    #[must_use]
    pub fn with_memory_limit(mut self, yes: bool) -> Self {
        self.memory_limit = yes;
        self
    }

    /// Sets `pids_limit`.
    #[must_use]
    pub fn with_pids_limit(mut self, yes: bool) -> Self {
        self.pids_limit = yes;
        self
    }

    /// Sets `nofile_limit`.
    #[must_use]
    pub fn with_nofile_limit(mut self, yes: bool) -> Self {
        self.nofile_limit = yes;
        self
    }

    /// Sets `cpu_weight`.
    #[must_use]
    pub fn with_cpu_weight(mut self, yes: bool) -> Self {
        self.cpu_weight = yes;
        self
    }

    /// Sets `net_out`.
    #[must_use]
    pub fn with_net_out(mut self, yes: bool) -> Self {
        self.net_out = yes;
        self
    }

    /// Sets `isolation`.
    #[must_use]
    pub fn with_isolation(mut self, yes: bool) -> Self {
        self.isolation = yes;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_says_out_of_memory() {
        let status = ExitStatus {
            code: 137,
            out_of_memory: true,
        };
        assert_eq!(status.to_string(), "exit status 137 (out of memory)");
        assert_eq!(ExitStatus::signaled(15).code, 143);
        assert!(!ExitStatus::signaled(9).success());
    }

    #[test]
    fn capacity_says_which_resource_is_short() {
        let cap = Capacity {
            memory_bytes: 100,
            disk_bytes: 100,
            max_containers: 2,
            allocated_memory_bytes: 60,
            containers: 1,
            ..Capacity::default()
        };
        assert!(cap.check_fits(Some(40), None).is_ok());
        let err = cap.check_fits(Some(41), None).unwrap_err();
        assert!(err.to_string().contains("memory"), "{err}");
        let full = Capacity {
            containers: 2,
            ..cap
        };
        assert!(matches!(
            full.check_fits(None, None),
            Err(crate::Error::InsufficientResources { .. })
        ));
    }
}
