//! ActualLRPs: one row per instance index (plus EVACUATING and SUSPECT copies), with
//! state `UNCLAIMED | CLAIMED | RUNNING | CRASHED`.
//!
//! This module holds the records and their validation; the transition rules live in
//! the BBS.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::models::guid::{CellId, InstanceGuid, ProcessGuid};
use crate::models::modification_tag::ModificationTag;
use crate::models::validation::{FieldPath, Validate, Validator};
use crate::time::Timestamp;

/// Which instance of which process: `(process_guid, index, domain)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActualLrpKey {
    /// The process.
    pub process_guid: ProcessGuid,
    /// The instance index (≥ 0).
    pub index: i32,
    /// The process's domain.
    pub domain: String,
}

impl ActualLrpKey {
    /// The key of instance `index` of `process_guid`.
    pub fn new(
        process_guid: impl Into<ProcessGuid>,
        index: i32,
        domain: impl Into<String>,
    ) -> Self {
        ActualLrpKey {
            process_guid: process_guid.into(),
            index,
            domain: domain.into(),
        }
    }
}

impl Validate for ActualLrpKey {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        v.guid(self.process_guid.as_str(), &path.field("process_guid"));
        v.non_negative(self.index.into(), &path.field("index"));
        v.non_empty(&self.domain, &path.field("domain"));
    }
}

/// Which attempt on which cell: `(instance_guid, cell_id)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActualLrpInstanceKey {
    /// The attempt (made by the rep at allocation).
    pub instance_guid: InstanceGuid,
    /// The cell running it.
    pub cell_id: CellId,
}

impl ActualLrpInstanceKey {
    /// The instance key of `instance_guid` on `cell_id`.
    pub fn new(instance_guid: impl Into<InstanceGuid>, cell_id: impl Into<CellId>) -> Self {
        ActualLrpInstanceKey {
            instance_guid: instance_guid.into(),
            cell_id: cell_id.into(),
        }
    }
}

impl Validate for ActualLrpInstanceKey {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        v.non_empty(self.instance_guid.as_str(), &path.field("instance_guid"));
        v.non_empty(self.cell_id.as_str(), &path.field("cell_id"));
    }
}

/// One mapped port of an instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortMapping {
    /// Port inside the container.
    pub container_port: u32,
    /// Port on the host (`address`).
    pub host_port: u32,
    /// TLS proxy port inside the container (0 = none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub container_tls_proxy_port: u32,
    /// TLS proxy port on the host (0 = none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub host_tls_proxy_port: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Which address routers should prefer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PreferredAddress {
    /// Not said.
    #[default]
    Unknown,
    /// The instance address.
    Instance,
    /// The host address.
    Host,
}

/// Where a running instance can be reached.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActualLrpNetInfo {
    /// The host's address (with `host_port`s).
    pub address: String,
    /// The container's own address (with `container_port`s).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance_address: String,
    /// Which address to prefer.
    #[serde(default)]
    pub preferred_address: PreferredAddress,
    /// Mapped ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
}

impl Validate for ActualLrpNetInfo {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        v.non_empty(&self.address, &path.field("address"));
    }
}

/// The state of one ActualLRP row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActualLrpState {
    /// Waiting for a cell.
    Unclaimed,
    /// A cell took it and is starting it.
    Claimed,
    /// Running on a cell.
    Running,
    /// Crashed; waiting for its restart delay (or never restarted).
    Crashed,
}

impl ActualLrpState {
    /// Diego's name (`UNCLAIMED`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ActualLrpState::Unclaimed => "UNCLAIMED",
            ActualLrpState::Claimed => "CLAIMED",
            ActualLrpState::Running => "RUNNING",
            ActualLrpState::Crashed => "CRASHED",
        }
    }
}

impl fmt::Display for ActualLrpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which copy of an index a row is.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Presence {
    /// The normal row of the index.
    #[default]
    Ordinary,
    /// A copy still running on an evacuating cell while its replacement starts.
    Evacuating,
    /// A row on a cell whose presence vanished, kept until a replacement runs.
    Suspect,
}

impl Presence {
    /// Diego's name (`ORDINARY`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Ordinary => "ORDINARY",
            Presence::Evacuating => "EVACUATING",
            Presence::Suspect => "SUSPECT",
        }
    }
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ActualLRP row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActualLrp {
    /// Which instance.
    pub key: ActualLrpKey,
    /// Which attempt on which cell (none while UNCLAIMED or CRASHED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_key: Option<ActualLrpInstanceKey>,
    /// Where it can be reached (RUNNING only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_info: Option<ActualLrpNetInfo>,
    /// Its state.
    pub state: ActualLrpState,
    /// Which copy of the index this row is.
    #[serde(default)]
    pub presence: Presence,
    /// Crashes counted by the restart policy.
    #[serde(default)]
    pub crash_count: i32,
    /// The last crash's reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub crash_reason: String,
    /// Why the auctioneer could not place it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub placement_error: String,
    /// When the state last changed (Unix ns).
    pub since: Timestamp,
    /// Whether routers may send it traffic (readiness).
    #[serde(default)]
    pub routable: bool,
    /// The cell's availability zone.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub availability_zone: String,
    /// The record's version.
    pub modification_tag: ModificationTag,
}

impl ActualLrp {
    /// A new UNCLAIMED ORDINARY row for `key`, with a fresh modification tag.
    pub fn unclaimed(key: ActualLrpKey, now: Timestamp) -> Self {
        ActualLrp {
            key,
            instance_key: None,
            net_info: None,
            state: ActualLrpState::Unclaimed,
            presence: Presence::Ordinary,
            crash_count: 0,
            crash_reason: String::new(),
            placement_error: String::new(),
            since: now,
            routable: false,
            availability_zone: String::new(),
            modification_tag: ModificationTag::fresh(),
        }
    }

    /// The cell this row is on, if any.
    pub fn cell_id(&self) -> Option<&CellId> {
        self.instance_key.as_ref().map(|k| &k.cell_id)
    }

    /// The instance guid of this row, if any.
    pub fn instance_guid(&self) -> Option<&InstanceGuid> {
        self.instance_key.as_ref().map(|k| &k.instance_guid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_diegos() {
        assert_eq!(
            serde_json::to_string(&ActualLrpState::Unclaimed).unwrap(),
            "\"UNCLAIMED\""
        );
        assert_eq!(
            serde_json::to_string(&Presence::Suspect).unwrap(),
            "\"SUSPECT\""
        );
        assert_eq!(ActualLrpState::Crashed.to_string(), "CRASHED");
        assert_eq!(Presence::Evacuating.to_string(), "EVACUATING");
    }

    #[test]
    fn key_validation() {
        let k = ActualLrpKey::new("", -1, "");
        let e = k.validate().unwrap_err();
        let f: Vec<_> = e.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(f, ["process_guid", "index", "domain"]);
        assert!(ActualLrpKey::new("web", 0, "apps").validate().is_ok());
        let ik = ActualLrpInstanceKey::new("", "");
        assert_eq!(ik.validate().unwrap_err().errors().len(), 2);
        assert!(ActualLrpNetInfo::default().validate().is_err());
    }

    #[test]
    fn a_new_row_is_unclaimed() {
        let row = ActualLrp::unclaimed(ActualLrpKey::new("web", 2, "apps"), Timestamp(9));
        assert_eq!(row.state, ActualLrpState::Unclaimed);
        assert_eq!(row.presence, Presence::Ordinary);
        assert!(row.cell_id().is_none());
        let json = serde_json::to_string(&row).unwrap();
        assert_eq!(serde_json::from_str::<ActualLrp>(&json).unwrap(), row);
    }
}
