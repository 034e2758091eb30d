//! What a placement strategy decides for a batch: which cell wins each piece of work, and
//! why the rest could not be placed.
//!
//! Results name work by its position in the [`AuctionBatch`](crate::AuctionBatch)
//! (request position, plus the instance index for LRPs) and cells by their position in
//! the slice of cell states the strategy was given, so the caller can build each
//! winner's work without cloning requests.

use diego_core::CellId;

use crate::error::Error;

/// An LRP instance placed on a cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LrpPlacement {
    /// Position of the request in `batch.lrps`.
    pub request: usize,
    /// The instance index.
    pub index: i32,
    /// Position of the winning cell in the cell states given to the strategy.
    pub cell: usize,
    /// The winning cell's id.
    pub cell_id: CellId,
}

/// A Task placed on a cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskPlacement {
    /// Position of the request in `batch.tasks`.
    pub request: usize,
    /// Position of the winning cell in the cell states given to the strategy.
    pub cell: usize,
    /// The winning cell's id.
    pub cell_id: CellId,
}

/// An LRP instance that could not be placed.
#[derive(Clone, Debug)]
pub struct FailedLrp {
    /// Position of the request in `batch.lrps`.
    pub request: usize,
    /// The instance index.
    pub index: i32,
    /// Why (Diego's placement error text via `Display`).
    pub error: Error,
}

/// A Task that could not be placed.
#[derive(Clone, Debug)]
pub struct FailedTask {
    /// Position of the request in `batch.tasks`.
    pub request: usize,
    /// Why (Diego's placement error text via `Display`).
    pub error: Error,
}

/// The work given to one cell: what `perform` is asked to start there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CellWork {
    /// Position of the cell in the cell states given to the strategy.
    pub cell: usize,
    /// `(request position, instance index)` of each LRP instance.
    pub lrps: Vec<(usize, i32)>,
    /// Request positions of the Tasks.
    pub tasks: Vec<usize>,
}

/// The decision for a whole batch, in the order work was placed.
#[derive(Clone, Debug, Default)]
pub struct AuctionResults {
    /// LRP instances placed.
    pub lrps: Vec<LrpPlacement>,
    /// Tasks placed.
    pub tasks: Vec<TaskPlacement>,
    /// LRP instances not placed.
    pub failed_lrps: Vec<FailedLrp>,
    /// Tasks not placed.
    pub failed_tasks: Vec<FailedTask>,
}

impl AuctionResults {
    /// How many pieces of work were placed.
    pub fn placed(&self) -> usize {
        self.lrps.len() + self.tasks.len()
    }

    /// How many pieces of work were not placed.
    pub fn failed(&self) -> usize {
        self.failed_lrps.len() + self.failed_tasks.len()
    }

    /// The placed work grouped by winning cell, cells in ascending position.
    pub fn work_by_cell(&self) -> Vec<CellWork> {
        let mut by_cell: Vec<CellWork> = Vec::new();
        let mut slot_of = rustc_hash::FxHashMap::<usize, usize>::default();
        let mut slot = |cell: usize, by_cell: &mut Vec<CellWork>| -> usize {
            *slot_of.entry(cell).or_insert_with(|| {
                by_cell.push(CellWork {
                    cell,
                    ..CellWork::default()
                });
                by_cell.len() - 1
            })
        };
        for p in &self.lrps {
            let s = slot(p.cell, &mut by_cell);
            by_cell[s].lrps.push((p.request, p.index));
        }
        for p in &self.tasks {
            let s = slot(p.cell, &mut by_cell);
            by_cell[s].tasks.push(p.request);
        }
        by_cell.sort_by_key(|w| w.cell);
        by_cell
    }
}
