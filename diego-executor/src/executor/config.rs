//! [`ExecutorConfig`]: every number the executor uses, with Diego's defaults.
//!
//! Plain data; it knows the executor's settings, not Tasks or LRPs.

use std::path::PathBuf;
use std::time::Duration;

use crate::executor::container::Resources;
use diego_core::setter;

/// Diego's limit on a result file: 51,200 bytes.
pub const MAX_RESULT_FILE_BYTES: u64 = 51_200;

/// Settings of the shared download cache.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadCacheConfig {
    /// Where cached files live (created when missing; emptied at start-up).
    pub dir: PathBuf,
    /// Most bytes kept; least recently used entries are evicted first.
    pub max_bytes: u64,
}

impl DownloadCacheConfig {
    /// A cache in `dir` keeping at most `max_bytes`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> Self {
        DownloadCacheConfig {
            dir: dir.into(),
            max_bytes,
        }
    }

    setter!(with_dir => dir: impl Into<PathBuf>);
    setter!(with_max_bytes => max_bytes: u64);
}

/// The executor's settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ExecutorConfig {
    /// The cell's id, quoted in cell log lines (`"Cell <cell> creating container ..."`).
    pub cell_id: String,
    /// The value of the owner property of this executor's backend containers; at
    /// start-up and in the reaper, containers with this owner that the executor does
    /// not know are destroyed.
    pub owner_name: String,
    /// The cell's resources; `None`: the backend's capacity.
    pub total_resources: Option<Resources>,
    /// How long a reservation may wait for its run before it expires (Diego: 1 min).
    pub reserved_expiration: Duration,
    /// How often the reaper compares the executor's view with the backend (1 min).
    pub reap_interval: Duration,
    /// How long a cancelled process gets after SIGTERM before SIGKILL (10 s).
    pub graceful_shutdown_interval: Duration,
    /// How long to wait after SIGKILL before giving up with `"process did not exit"` (1 s).
    pub process_kill_wait: Duration,
    /// Interval of startup checks and of the legacy monitor before healthy (2 s).
    pub unhealthy_monitoring_interval: Duration,
    /// Interval of the legacy monitor once healthy (30 s).
    pub healthy_monitoring_interval: Duration,
    /// Run processes as the action's `user`. Turn off for backends whose host lacks the
    /// users named in actions (`ProcessBackend` on a developer machine): processes then
    /// run as the backend's default user.
    pub apply_action_user: bool,
    /// The shared download cache; `None`: downloads are not cached.
    pub download_cache: Option<DownloadCacheConfig>,
    /// Where uncached downloads are staged; `None`: the system's temporary directory.
    pub temp_dir: Option<PathBuf>,
    /// How many container events a slow subscriber may fall behind before it gets a
    /// `Lagged` item (1,024, as Diego's buffers).
    pub event_buffer: usize,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            cell_id: "cell-0".to_string(),
            owner_name: "executor".to_string(),
            total_resources: None,
            reserved_expiration: Duration::from_secs(60),
            reap_interval: Duration::from_secs(60),
            graceful_shutdown_interval: Duration::from_secs(10),
            process_kill_wait: Duration::from_secs(1),
            unhealthy_monitoring_interval: Duration::from_secs(2),
            healthy_monitoring_interval: Duration::from_secs(30),
            apply_action_user: true,
            download_cache: None,
            temp_dir: None,
            event_buffer: 1024,
        }
    }
}

impl ExecutorConfig {
    setter!(with_cell_id => cell_id: impl Into<String>);
    setter!(with_owner_name => owner_name: impl Into<String>);
    setter!(with_total_resources => total_resources: impl Into<Option<Resources>>);
    setter!(with_reserved_expiration => reserved_expiration: Duration);
    setter!(with_reap_interval => reap_interval: Duration);
    setter!(with_graceful_shutdown_interval => graceful_shutdown_interval: Duration);
    setter!(with_process_kill_wait => process_kill_wait: Duration);
    setter!(with_unhealthy_monitoring_interval => unhealthy_monitoring_interval: Duration);
    setter!(with_healthy_monitoring_interval => healthy_monitoring_interval: Duration);
    setter!(with_apply_action_user => apply_action_user: bool);
    setter!(with_download_cache => download_cache: impl Into<Option<DownloadCacheConfig>>);
    setter!(with_temp_dir => temp_dir: Some(impl Into<PathBuf>));
    setter!(with_event_buffer => event_buffer: usize);
}
