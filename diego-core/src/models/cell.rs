//! Cells: the presence a rep registers (with a TTL) and the state it reports to the
//! auction.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::models::actual_lrp::ActualLrpKey;
use crate::models::guid::{CellId, TaskGuid};
use crate::models::resource::Resource;
use crate::models::rootfs::{rootfs_rest, rootfs_scheme};
use crate::models::validation::{FieldPath, Validate, Validator};

/// How long a cell presence lives without renewal, in milliseconds (Diego: 15 s).
pub const DEFAULT_CELL_PRESENCE_TTL_MS: u64 = 15_000;

/// Total resources of a cell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellCapacity {
    /// Memory in MB (> 0).
    pub memory_mb: i32,
    /// Disk in MB (≥ 0).
    pub disk_mb: i32,
    /// Number of containers (> 0).
    pub containers: i32,
}

impl Validate for CellCapacity {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        v.check(self.memory_mb > 0, &path.field("memory_mb"), "must be > 0");
        v.non_negative(self.disk_mb.into(), &path.field("disk_mb"));
        v.check(
            self.containers > 0,
            &path.field("containers"),
            "must be > 0",
        );
    }
}

/// The rootfs providers of a cell: scheme → stacks. A `preloaded` provider lists the
/// stacks it has; any other scheme with an empty list accepts every rootfs of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RootfsProviders(pub BTreeMap<String, Vec<String>>);

impl RootfsProviders {
    /// Providers of the given preloaded stacks and of every `docker` image.
    pub fn preloaded_and_docker(stacks: &[&str]) -> Self {
        let mut m = BTreeMap::new();
        m.insert(
            "preloaded".to_owned(),
            stacks.iter().map(|s| (*s).to_owned()).collect(),
        );
        m.insert("docker".to_owned(), Vec::new());
        RootfsProviders(m)
    }

    /// Whether a cell with these providers can run `rootfs`.
    pub fn supports(&self, rootfs: &str) -> bool {
        let Some(scheme) = rootfs_scheme(rootfs) else {
            return false;
        };
        match self.0.get(scheme) {
            None => false,
            Some(stacks) if scheme == "preloaded" => {
                let stack = rootfs_rest(rootfs);
                stacks.iter().any(|s| s == stack)
            }
            Some(stacks) => stacks.is_empty() || stacks.iter().any(|s| s == rootfs_rest(rootfs)),
        }
    }
}

/// What a rep registers: who it is, where to reach it, what it offers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellPresence {
    /// The cell's id (`^[a-zA-Z0-9_-]+$`).
    pub cell_id: CellId,
    /// The rep's address (`host:port`), or an in-process name.
    pub rep_address: String,
    /// The rep's URL, when it serves HTTP.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rep_url: String,
    /// Availability zone.
    #[serde(default)]
    pub zone: String,
    /// Total resources.
    pub capacity: CellCapacity,
    /// Root filesystems it can run.
    #[serde(default)]
    pub rootfs_providers: RootfsProviders,
    /// Tags it always carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement_tags: Vec<String>,
    /// Tags it may carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional_placement_tags: Vec<String>,
    /// Volume drivers it offers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_drivers: Vec<String>,
}

impl Validate for CellPresence {
    fn validate_at(&self, path: &FieldPath<'_>, v: &mut Validator) {
        v.guid(self.cell_id.as_str(), &path.field("cell_id"));
        v.non_empty(&self.rep_address, &path.field("rep_address"));
        v.nested(&self.capacity, &path.field("capacity"));
    }
}

/// An LRP instance on a cell, as the cell reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrpSummary {
    /// Which instance.
    pub key: ActualLrpKey,
    /// What it uses.
    pub resource: Resource,
}

/// A Task on a cell, as the cell reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSummary {
    /// The task.
    pub task_guid: TaskGuid,
    /// Its domain.
    pub domain: String,
    /// What it uses.
    pub resource: Resource,
}

/// What a cell tells the auction about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellState {
    /// The cell's id.
    pub cell_id: CellId,
    /// The rep's URL, when it serves HTTP.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rep_url: String,
    /// Availability zone.
    #[serde(default)]
    pub zone: String,
    /// Resources not yet allocated.
    pub available_resources: CellCapacity,
    /// Total resources.
    pub total_resources: CellCapacity,
    /// LRP instances on the cell (completed ones included).
    #[serde(default)]
    pub lrps: Vec<LrpSummary>,
    /// Tasks on the cell.
    #[serde(default)]
    pub tasks: Vec<TaskSummary>,
    /// Containers allocated but not yet running.
    #[serde(default)]
    pub starting_container_count: i32,
    /// Whether the cell is evacuating (it takes no work).
    #[serde(default)]
    pub evacuating: bool,
    /// Root filesystems it can run.
    #[serde(default)]
    pub rootfs_providers: RootfsProviders,
    /// Tags it always carries.
    #[serde(default)]
    pub placement_tags: Vec<String>,
    /// Tags it may carry.
    #[serde(default)]
    pub optional_placement_tags: Vec<String>,
    /// Volume drivers it offers.
    #[serde(default)]
    pub volume_drivers: Vec<String>,
    /// Memory reserved per LRP container for the envoy proxy, in MB (0 = proxy off).
    #[serde(default)]
    pub proxy_memory_allocation_mb: i32,
    /// A producer's promise about `lrps` across its snapshots (not serialised: a state
    /// read from JSON makes no promise). See [`LrpLineage`].
    #[serde(skip)]
    pub lrp_lineage: LrpLineage,
    /// A producer's fingerprints of `lrps`' process guids (not serialised: a state read
    /// from JSON carries none). See [`LrpFingerprints`].
    #[serde(skip)]
    pub lrp_fingerprints: LrpFingerprints,
}

impl CellState {
    /// Appends an LRP instance to `lrps`, keeping [`lrp_fingerprints`](Self::lrp_fingerprints)
    /// in step when it covers the list (an empty list of instances is always covered).
    ///
    /// ```
    /// use diego_core::{ActualLrpKey, CellState, LrpSummary, Resource};
    ///
    /// let mut s = CellState::default();
    /// s.push_lrp(LrpSummary {
    ///     key: ActualLrpKey::new("web", 0, "apps"),
    ///     resource: Resource::default(),
    /// });
    /// let web = diego_core::models::cell::process_fingerprint("web");
    /// assert_eq!(s.lrp_fingerprints.of(&s.lrps), Some(&[web][..]));
    /// ```
    pub fn push_lrp(&mut self, lrp: LrpSummary) {
        if self.lrp_fingerprints.0.len() == self.lrps.len() {
            self.lrp_fingerprints
                .0
                .push(process_fingerprint(lrp.key.process_guid.as_str()));
        }
        self.lrps.push(lrp);
    }
}

/// A 32-bit fingerprint of a process guid: equal guids have equal fingerprints (unequal
/// ones seldom do). The hash [`LrpFingerprints`] are made of.
pub fn process_fingerprint(guid: &str) -> u32 {
    let mut h = rustc_hash::FxHasher::default();
    std::hash::Hasher::write(&mut h, guid.as_bytes());
    let x = std::hash::Hasher::finish(&h);
    (x ^ (x >> 32)) as u32
}

/// What a cell-state producer may add to its states for the placement code: the
/// [fingerprint](process_fingerprint) of each LRP instance's process guid, in the order
/// of `lrps`, so a strategy learns which processes a cell runs from one dense array
/// instead of reading every guid. They count only when there is exactly one per entry
/// of `lrps` ([`of`](LrpFingerprints::of)); otherwise (the default: none) the guids are
/// read. A producer keeps them in step with [`CellState::push_lrp`] or
/// [`LrpFingerprints::of_lrps`].
///
/// Like [`LrpLineage`], it is not part of the state's value: it never serialises, and
/// states that differ only in their fingerprints are equal.
#[derive(Clone, Debug, Default)]
pub struct LrpFingerprints(Vec<u32>);

impl LrpFingerprints {
    /// The fingerprints of every instance of `lrps`.
    pub fn of_lrps(lrps: &[LrpSummary]) -> Self {
        LrpFingerprints(
            lrps.iter()
                .map(|l| process_fingerprint(l.key.process_guid.as_str()))
                .collect(),
        )
    }

    /// The fingerprints, when there is one per entry of `lrps`.
    pub fn of(&self, lrps: &[LrpSummary]) -> Option<&[u32]> {
        (self.0.len() == lrps.len()).then_some(&self.0[..])
    }
}

impl PartialEq for LrpFingerprints {
    fn eq(&self, _: &LrpFingerprints) -> bool {
        true
    }
}

impl Eq for LrpFingerprints {}

/// A promise a cell-state producer may make to the placement code that keeps state across
/// rounds: two snapshots of a cell carrying the [same](LrpLineage::same) lineage list
/// the same LRP instances first, in the same order — the later one's `lrps` is the
/// earlier one's with entries appended only — and have the same zone, rootfs providers,
/// placement tags (required and optional) and volume drivers: what a cell is given when
/// it starts. A producer that removes, reorders or replaces an entry, or changes one of
/// those, starts a [new](LrpLineage::new) lineage. A lineage belongs to one cell: a
/// state copied to make another cell takes a new one. The default makes no promise, so
/// every snapshot is read in full.
///
/// It is not part of the state's value: it never serialises, and states that differ only
/// in their lineage are equal.
///
/// ```
/// use diego_core::models::cell::LrpLineage;
///
/// let a = LrpLineage::new();
/// assert!(a.same(&a.clone()));
/// assert!(!a.same(&LrpLineage::new()));
/// assert!(!LrpLineage::default().same(&LrpLineage::default()));
/// ```
#[derive(Clone, Debug, Default)]
pub struct LrpLineage(Option<Arc<()>>);

impl LrpLineage {
    /// A lineage of its own: no other snapshot shares it until this one is cloned.
    pub fn new() -> Self {
        LrpLineage(Some(Arc::new(())))
    }

    /// Whether both come from one lineage (never for the default, promise-free one).
    pub fn same(&self, other: &LrpLineage) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl PartialEq for LrpLineage {
    fn eq(&self, _: &LrpLineage) -> bool {
        true
    }
}

impl Eq for LrpLineage {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rootfs_matching() {
        let p = RootfsProviders::preloaded_and_docker(&["cflinuxfs4"]);
        assert!(p.supports("preloaded:cflinuxfs4"));
        assert!(!p.supports("preloaded:cflinuxfs3"));
        assert!(p.supports("docker:///busybox"));
        assert!(!p.supports("oci:///x"));
        assert!(!p.supports("garbage"));
    }

    #[test]
    fn fingerprints_count_only_when_they_cover_the_list() {
        let lrp = |g: &str| LrpSummary {
            key: ActualLrpKey::new(g, 0, "d"),
            resource: Resource::default(),
        };
        let mut s = CellState::default();
        s.push_lrp(lrp("a"));
        s.push_lrp(lrp("b"));
        let (a, b) = (process_fingerprint("a"), process_fingerprint("b"));
        assert_eq!(s.lrp_fingerprints.of(&s.lrps), Some(&[a, b][..]));
        // A list grown behind their back has none, and `push_lrp` does not resume them.
        s.lrps.push(lrp("c"));
        assert_eq!(s.lrp_fingerprints.of(&s.lrps), None);
        s.push_lrp(lrp("d"));
        assert_eq!(s.lrp_fingerprints.of(&s.lrps), None);
        // They are no part of the state's value.
        let mut t = s.clone();
        t.lrp_fingerprints = LrpFingerprints::of_lrps(&t.lrps);
        assert_eq!(s, t);
        assert_eq!(t.lrp_fingerprints.of(&t.lrps).map(<[u32]>::len), Some(4));
    }

    #[test]
    fn presence_validation() {
        let p = CellPresence::default();
        let e = p.validate().unwrap_err();
        let f: Vec<_> = e.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            f,
            [
                "cell_id",
                "rep_address",
                "capacity.memory_mb",
                "capacity.containers"
            ]
        );
        let ok = CellPresence {
            cell_id: "cell-1".into(),
            rep_address: "127.0.0.1:1800".into(),
            capacity: CellCapacity {
                memory_mb: 1024,
                disk_mb: 1024,
                containers: 10,
            },
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
    }
}
