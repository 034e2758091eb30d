//! The log rate limit of a container.

use serde::{Deserialize, Serialize};

/// Bytes per second an instance may log; -1 = unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogRateLimit {
    /// Bytes per second; -1 means unlimited; must be ≥ -1.
    pub bytes_per_second: i64,
}

impl Default for LogRateLimit {
    fn default() -> Self {
        LogRateLimit {
            bytes_per_second: -1,
        }
    }
}
