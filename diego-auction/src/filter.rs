//! Diego's placement filters: which cells may run a piece of work at all.
//!
//! A cell must offer the work's root filesystem, every volume driver it needs, and carry
//! placement tags such that *required ⊆ work ⊆ required ∪ optional* (the cell's
//! required tags must all be asked for; everything asked for must be offered). When no
//! cell passes, the error names the furthest filter any cell reached: tags beat drivers,
//! drivers beat rootfs.

use diego_core::{CellState, PlacementConstraint};

use crate::error::Error;

/// How far a cell got through the filters for one piece of work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FilterReach {
    /// The cell does not offer the rootfs.
    Rootfs,
    /// Rootfs offered; a volume driver is missing.
    VolumeDrivers,
    /// Rootfs and drivers offered; the placement tags do not match.
    PlacementTags,
    /// The cell passes every filter.
    Pass,
}

/// Whether a cell with these tags may run work asking for `tags`:
/// required ⊆ work ⊆ required ∪ optional.
pub fn matches_placement_tags(cell: &CellState, tags: &[String]) -> bool {
    cell.placement_tags.iter().all(|r| tags.contains(r))
        && tags
            .iter()
            .all(|t| cell.placement_tags.contains(t) || cell.optional_placement_tags.contains(t))
}

/// Whether the cell offers every one of `drivers`.
pub fn matches_volume_drivers(cell: &CellState, drivers: &[String]) -> bool {
    drivers.iter().all(|d| cell.volume_drivers.contains(d))
}

/// How far `cell` gets through the filters for work with `constraint`.
pub fn filter_reach(cell: &CellState, constraint: &PlacementConstraint) -> FilterReach {
    if !cell.rootfs_providers.supports(&constraint.rootfs) {
        FilterReach::Rootfs
    } else if !matches_volume_drivers(cell, &constraint.volume_drivers) {
        FilterReach::VolumeDrivers
    } else if !matches_placement_tags(cell, &constraint.placement_tags) {
        FilterReach::PlacementTags
    } else {
        FilterReach::Pass
    }
}

/// The placement error when no cell passes and the furthest any cell got is `furthest`.
/// `None` when `furthest` is [`FilterReach::Pass`].
pub fn filter_error(furthest: FilterReach, constraint: &PlacementConstraint) -> Option<Error> {
    match furthest {
        FilterReach::Rootfs => Some(Error::NoCompatibleRootfs),
        FilterReach::VolumeDrivers => Some(Error::NoCompatibleVolumeDrivers),
        FilterReach::PlacementTags => Some(Error::NoCompatiblePlacementTags {
            tags: constraint.placement_tags.clone(),
        }),
        FilterReach::Pass => None,
    }
}

/// Whether two cells are alike for every filter (same providers, tags and drivers), so a
/// constraint needs checking against only one of them.
pub(crate) fn same_filter_signature(a: &CellState, b: &CellState) -> bool {
    a.rootfs_providers == b.rootfs_providers
        && a.placement_tags == b.placement_tags
        && a.optional_placement_tags == b.optional_placement_tags
        && a.volume_drivers == b.volume_drivers
}

/// Numbers cells by filter signature: cells alike for every filter share a number.
pub(crate) fn signature_id<S: std::ops::Deref<Target = CellState>>(
    reps: &mut Vec<S>,
    cell: &CellState,
    make: impl FnOnce() -> S,
) -> u32 {
    // Newest first: cells usually come grouped by kind.
    for (i, r) in reps.iter().enumerate().rev() {
        if same_filter_signature(r, cell) {
            return i as u32;
        }
    }
    reps.push(make());
    (reps.len() - 1) as u32
}

#[cfg(test)]
mod tests {
    use diego_core::RootfsProviders;

    use super::*;

    fn cell(tags: &[&str], optional: &[&str], drivers: &[&str]) -> CellState {
        CellState {
            rootfs_providers: RootfsProviders::preloaded_and_docker(&["cflinuxfs4"]),
            placement_tags: tags.iter().map(|s| s.to_string()).collect(),
            optional_placement_tags: optional.iter().map(|s| s.to_string()).collect(),
            volume_drivers: drivers.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn pc(rootfs: &str, tags: &[&str], drivers: &[&str]) -> PlacementConstraint {
        PlacementConstraint {
            rootfs: rootfs.into(),
            placement_tags: tags.iter().map(|s| s.to_string()).collect(),
            volume_drivers: drivers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn tag_rule() {
        let c = cell(&["a"], &["b"], &[]);
        let ok = |t: &[&str]| {
            matches_placement_tags(&c, &t.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert!(ok(&["a"]));
        assert!(ok(&["a", "b"]));
        assert!(!ok(&[]), "required tag a not asked for");
        assert!(!ok(&["b"]));
        assert!(!ok(&["a", "c"]), "c not offered");
        let plain = cell(&[], &[], &[]);
        assert!(matches_placement_tags(&plain, &[]));
        assert!(!matches_placement_tags(&plain, &["x".to_string()]));
    }

    #[test]
    fn reach_order() {
        let c = cell(&[], &[], &["nfs"]);
        assert_eq!(
            filter_reach(&c, &pc("preloaded:other", &[], &[])),
            FilterReach::Rootfs
        );
        assert_eq!(
            filter_reach(&c, &pc("preloaded:cflinuxfs4", &[], &["smb"])),
            FilterReach::VolumeDrivers
        );
        assert_eq!(
            filter_reach(&c, &pc("docker:///x", &["t"], &["nfs"])),
            FilterReach::PlacementTags
        );
        assert_eq!(
            filter_reach(&c, &pc("docker:///x", &[], &["nfs"])),
            FilterReach::Pass
        );
        assert!(filter_error(FilterReach::Pass, &pc("x:y", &[], &[])).is_none());
    }
}
