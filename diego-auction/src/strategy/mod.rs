//! The placement strategy trait: given the cells' states and a batch of work, decide
//! which cell runs each piece of work.
//!
//! A strategy is pure and synchronous: no I/O, no clock, randomness only from a seeded
//! generator it owns. It knows nothing of how cell states were fetched or how the work
//! reaches the winners; the auction runner (or the simulator) does that around it.
//!
//! Every strategy of this crate lives here, one module each: Diego's auction
//! ([`diego`]) and its rivals ([`first_fit`], [`best_fit`], [`spread`],
//! [`power_of_two`], [`random`], [`kubernetes`]). All but Diego's index run the shared
//! scan-based round (a private `round` module), which applies the rules every strategy
//! shares ([`PlacementOptions`], the filters, the error texts) around the strategy's own
//! choice of cell. A user's own strategy implements [`PlacementStrategy`] beside them.

pub mod best_fit;
pub mod diego;
pub mod first_fit;
pub mod kubernetes;
pub mod power_of_two;
pub mod random;
mod round;
pub mod spread;

use std::sync::Arc;

use diego_core::CellState;
use serde::{Deserialize, Serialize};

use crate::results::AuctionResults;
use crate::work::AuctionBatch;
use diego_core::setter;

/// Decides where each piece of work of a batch runs.
///
/// Cells are shared snapshots (`Arc<CellState>`): a strategy may keep what it derived
/// from a snapshot for later rounds and reuse it when it is handed the *same* snapshot
/// again (`Arc::ptr_eq`), which is how [`DiegoStrategy`](crate::DiegoStrategy) avoids
/// re-reading cells that did not change. Evacuating cells are never chosen.
///
/// Every piece of work of the batch (after de-duplication) appears exactly once in the
/// results, placed or failed with a placement error whose `Display` is Diego's text.
pub trait PlacementStrategy {
    /// A short name for reports (`diego`, `first-fit`, ...).
    fn name(&self) -> &str;

    /// Places `batch` on `cells`.
    fn place(&mut self, cells: &[Arc<CellState>], batch: &AuctionBatch) -> AuctionResults;
}

impl<S: PlacementStrategy + ?Sized> PlacementStrategy for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn place(&mut self, cells: &[Arc<CellState>], batch: &AuctionBatch) -> AuctionResults {
        (**self).place(cells, batch)
    }
}

/// Rules every strategy of this crate applies around its own choice of cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PlacementOptions {
    /// Most containers starting at once across the cells of a round, counting the
    /// cells' own starting containers and the work placed so far (Diego's
    /// `starting_container_count_maximum`); 0 = unlimited. Work beyond it fails with
    /// `"waiting to start instance: reached in-flight start limit"`.
    pub starting_container_count_maximum: u32,
    /// Reserve the cell's proxy memory (`proxy_memory_allocation_mb`) along with each
    /// LRP's memory. `false` is Diego's quirk: proxy memory is checked and scored but
    /// not reserved, so later work in the round may overcommit the cell.
    pub reserve_proxy_memory: bool,
    /// Diego's quirk: when a batch has no LRP instance with an index above 0, its
    /// index-0 instances are placed after the Tasks instead of before.
    pub index0_after_tasks_quirk: bool,
}

impl Default for PlacementOptions {
    fn default() -> Self {
        PlacementOptions {
            starting_container_count_maximum: 0,
            reserve_proxy_memory: true,
            index0_after_tasks_quirk: false,
        }
    }
}

impl PlacementOptions {
    setter!(with_starting_container_count_maximum => starting_container_count_maximum: u32);
    setter!(with_reserve_proxy_memory => reserve_proxy_memory: bool);
    setter!(with_index0_after_tasks_quirk => index0_after_tasks_quirk: bool);
}
