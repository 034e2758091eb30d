//! The crate's error type: why work could not be placed (with Diego's exact texts, which
//! clients match on) and why the auction runner could not reach a cell.
//!
//! It knows placement and cells only; the simulator's file and scenario errors are its
//! own (`sim::SimError`, feature `sim`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The resources that blocked placement on every compatible cell.
///
/// Displayed as Diego lists them: alphabetical, `", "`-joined (`"disk, memory"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shortfall {
    /// No compatible cell had a free container.
    pub containers: bool,
    /// No compatible cell had enough disk.
    pub disk: bool,
    /// No compatible cell had enough memory.
    pub memory: bool,
}

impl Shortfall {
    /// Every resource short: the starting point before any cell is looked at.
    pub const ALL: Shortfall = Shortfall {
        containers: true,
        disk: true,
        memory: true,
    };

    /// Keeps only the resources short in both `self` and `other`.
    pub fn intersect(self, other: Shortfall) -> Shortfall {
        Shortfall {
            containers: self.containers && other.containers,
            disk: self.disk && other.disk,
            memory: self.memory && other.memory,
        }
    }

    /// Whether no resource is short.
    pub fn is_empty(self) -> bool {
        !(self.containers || self.disk || self.memory)
    }
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.containers, "containers"),
            (self.disk, "disk"),
            (self.memory, "memory"),
        ];
        let mut first = true;
        for (short, name) in names {
            if short {
                if !first {
                    f.write_str(", ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

fn insufficient_text(s: &Shortfall) -> String {
    if s.is_empty() {
        "insufficient resources".to_owned()
    } else {
        format!("insufficient resources: {s}")
    }
}

fn placement_tags_text(tags: &[String]) -> String {
    match tags {
        [] => "found no compatible cell with no placement tags".to_owned(),
        [one] => format!("found no compatible cell with placement tag \"{one}\""),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|t| format!("\"{t}\"")).collect();
            format!(
                "found no compatible cell with placement tags {} and \"{last}\"",
                init.join(", ")
            )
        }
    }
}

/// Errors of diego-auction: the placement error of one piece of work, or a cell the
/// auction runner could not reach.
///
/// Placement errors display Diego's exact texts (`"insufficient resources: memory"`);
/// the auctioneer reports them through `fail_actual_lrp` / `reject_task`.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Compatible cells exist but none has room; lists what blocked every one of them.
    #[error("{}", insufficient_text(.0))]
    InsufficientResources(Shortfall),
    /// No cell offers the work's root filesystem.
    #[error("found no compatible cell for required rootfs")]
    NoCompatibleRootfs,
    /// Cells offer the rootfs but none offers every volume driver the work needs.
    #[error("found no compatible cell with required volume drivers")]
    NoCompatibleVolumeDrivers,
    /// Cells offer rootfs and drivers but none matches the work's placement tags.
    #[error("{}", placement_tags_text(.tags))]
    NoCompatiblePlacementTags {
        /// The work's placement tags, in its order.
        tags: Vec<String>,
    },
    /// No cell answered this round.
    #[error("unable to communicate to compatible cells")]
    CellCommunication,
    /// Every cell that won the work refused it in `perform`, up to the runner's retry
    /// limit (ours: Diego reports an empty placement error here).
    #[error("refused by the cells that won it: {}", .cells.join(", "))]
    RefusedByCells {
        /// The cells that refused it, in the order they were tried.
        cells: Vec<String>,
    },
    /// A cell could not be reached, or answered something that is not an answer.
    #[error("cell {cell_id} unreachable: {reason}")]
    CellUnreachable {
        /// The cell.
        cell_id: String,
        /// What went wrong.
        reason: String,
    },
    /// The auction reached `starting_container_count_maximum` containers starting.
    #[error("waiting to start instance: reached in-flight start limit")]
    InFlightLimit,
}

impl Error {
    /// Whether this is the placement error of a piece of work (as opposed to a cell
    /// that could not be reached).
    pub fn is_placement_error(&self) -> bool {
        matches!(
            self,
            Error::InsufficientResources(_)
                | Error::NoCompatibleRootfs
                | Error::NoCompatibleVolumeDrivers
                | Error::NoCompatiblePlacementTags { .. }
                | Error::CellCommunication
                | Error::RefusedByCells { .. }
                | Error::InFlightLimit
        )
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        let all = Error::InsufficientResources(Shortfall::ALL);
        assert_eq!(
            all.to_string(),
            "insufficient resources: containers, disk, memory"
        );
        let mem = Shortfall {
            memory: true,
            ..Default::default()
        };
        assert_eq!(
            Error::InsufficientResources(mem).to_string(),
            "insufficient resources: memory"
        );
        let dm = Shortfall {
            memory: true,
            disk: true,
            containers: false,
        };
        assert_eq!(
            Error::InsufficientResources(dm).to_string(),
            "insufficient resources: disk, memory"
        );
        assert_eq!(
            Error::InsufficientResources(Shortfall::default()).to_string(),
            "insufficient resources"
        );
        let tags = |t: &[&str]| Error::NoCompatiblePlacementTags {
            tags: t.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            tags(&[]).to_string(),
            "found no compatible cell with no placement tags"
        );
        assert_eq!(
            tags(&["a"]).to_string(),
            "found no compatible cell with placement tag \"a\""
        );
        assert_eq!(
            tags(&["a", "b", "c"]).to_string(),
            "found no compatible cell with placement tags \"a\", \"b\" and \"c\""
        );
        assert_eq!(
            tags(&["a", "b"]).to_string(),
            "found no compatible cell with placement tags \"a\" and \"b\""
        );
        assert!(Error::InFlightLimit.is_placement_error());
        assert_eq!(
            Error::InFlightLimit.to_string(),
            "waiting to start instance: reached in-flight start limit"
        );
        assert_eq!(
            Error::CellCommunication.to_string(),
            "unable to communicate to compatible cells"
        );
    }
}
