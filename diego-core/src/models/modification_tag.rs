//! The modification tag every stored record carries.
//!
//! `epoch` is a fresh id when a row is created; `index` is bumped on every write of that
//! row. Stores compare the whole tag on every write (optimistic concurrency).

use serde::{Deserialize, Serialize};

/// A record's version: a per-row `epoch` and a write counter `index`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModificationTag {
    /// Fresh (a UUID) when the row is created.
    pub epoch: String,
    /// Bumped on every write of the row.
    pub index: u32,
}

impl ModificationTag {
    /// The tag of a newly created row: a fresh epoch, index 0.
    pub fn fresh() -> Self {
        ModificationTag {
            epoch: uuid::Uuid::new_v4().to_string(),
            index: 0,
        }
    }

    /// The tag of the next write of the same row.
    pub fn incremented(&self) -> Self {
        ModificationTag {
            epoch: self.epoch.clone(),
            index: self.index.wrapping_add(1),
        }
    }

    /// Whether `self` is a later version of the same row than `other` (same epoch,
    /// higher index). Tags of different epochs are not ordered.
    pub fn succeeds(&self, other: &ModificationTag) -> bool {
        self.epoch == other.epoch && self.index > other.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_within_an_epoch() {
        let t = ModificationTag::fresh();
        let next = t.incremented();
        assert!(next.succeeds(&t));
        assert!(!t.succeeds(&next));
        assert!(!ModificationTag::fresh().succeeds(&t));
        assert_ne!(ModificationTag::fresh().epoch, t.epoch);
    }
}
