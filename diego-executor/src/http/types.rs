//! The bodies of the rep's HTTP API beyond those of the auction and the BBS, shared by
//! [`RepServer`](super::RepServer) and the clients.

use diego_core::MetricTags;
use diego_core::{ActualLrpInstanceKey, ActualLrpKey};
use serde::{Deserialize, Serialize};

/// The body of `POST /v1/lrps/{process_guid}/instances/{instance_guid}/stop`: which
/// instance (the path's guids must match it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrpInstanceRequest {
    /// The instance's process, index and domain.
    pub actual_lrp_key: ActualLrpKey,
    /// The attempt: instance guid and cell.
    pub actual_lrp_instance_key: ActualLrpInstanceKey,
}

/// The body of `PUT /v1/lrps/{process_guid}/instances/{instance_guid}`: new metric tags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateLrpInstanceRequest {
    /// The instance's process, index and domain.
    pub actual_lrp_key: ActualLrpKey,
    /// The attempt: instance guid and cell.
    pub actual_lrp_instance_key: ActualLrpInstanceKey,
    /// The instance's new metric tags.
    #[serde(default)]
    pub metric_tags: MetricTags,
}

/// The answer of `POST /evacuate` (Diego's): where to poll until the rep is gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvacuateResponse {
    /// The path answering while the rep still runs (`/ping`).
    pub ping_path: String,
}
