//! How the auction runner reaches a cell: the [`CellClient`] trait (fetch the cell's
//! state, ask it to perform work), the [`Work`] it carries, and the
//! [`CellClientFactory`] that finds a client for a cell presence.
//!
//! This module knows nothing of how a client talks to its cell: the executor crate
//! implements [`CellClient`] for its in-process rep and over HTTP. [`CellRegistry`] is
//! the in-memory factory for cells living in the same process.

use std::fmt;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use diego_core::{CellId, CellPresence, CellState, LrpStartRequest, TaskStartRequest};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Work the auction asks one cell to start (Diego's `rep.Work`). Its JSON form is the
/// body of a rep's `POST /work` and of its answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Work {
    /// The cell the work is meant for; a rep refuses work naming another cell.
    pub cell_id: CellId,
    /// LRP instances to start, grouped by process (`indices` lists the instances).
    #[serde(default)]
    pub lrps: Vec<LrpStartRequest>,
    /// Tasks to start.
    #[serde(default)]
    pub tasks: Vec<TaskStartRequest>,
}

impl Work {
    /// No work, for `cell_id`.
    pub fn new(cell_id: impl Into<CellId>) -> Self {
        Work {
            cell_id: cell_id.into(),
            ..Work::default()
        }
    }

    /// How many pieces of work (LRP instances + Tasks).
    pub fn len(&self) -> usize {
        self.lrps.iter().map(|r| r.indices.len()).sum::<usize>() + self.tasks.len()
    }

    /// Whether there is no work.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The auction's view of one cell (Diego's rep client, as the auctioneer uses it).
///
/// Implemented by the executor crate for the in-process rep and for a remote rep over
/// HTTP. Errors say the cell could not be reached or answered nonsense
/// ([`Error::CellUnreachable`](crate::Error::CellUnreachable)); the runner leaves such a
/// cell out of the round.
#[async_trait]
pub trait CellClient: Send + Sync + fmt::Debug {
    /// The cell's current state.
    ///
    /// A shared snapshot: an in-process cell should hand out the same `Arc` while its
    /// state does not change, which lets [`DiegoStrategy`](crate::DiegoStrategy) skip
    /// the cell in O(1); a remote client returns a fresh one each time.
    async fn state(&self) -> Result<Arc<CellState>>;

    /// Asks the cell to start `work`; returns the work it did **not** take (empty when
    /// it took everything).
    async fn perform(&self, work: Work) -> Result<Work>;
}

/// Finds the [`CellClient`] of a cell from its presence (in-process by cell id now,
/// by rep address or URL over HTTP later).
pub trait CellClientFactory: Send + Sync + fmt::Debug {
    /// The client of the cell that registered `presence`, or `None` when this factory
    /// cannot reach it (the cell is left out of the round).
    fn client(&self, presence: &CellPresence) -> Option<Arc<dyn CellClient>>;
}

/// An in-memory [`CellClientFactory`]: clients registered by cell id, for cells living
/// in the same process.
#[derive(Default)]
pub struct CellRegistry {
    clients: RwLock<FxHashMap<CellId, Arc<dyn CellClient>>>,
}

impl fmt::Debug for CellRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.clients.read().map_or(0, |m| m.len());
        f.debug_struct("CellRegistry").field("cells", &n).finish()
    }
}

impl CellRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) the client of `cell_id`.
    pub fn register(&self, cell_id: impl Into<CellId>, client: Arc<dyn CellClient>) {
        let mut m = self.clients.write().unwrap_or_else(|e| e.into_inner());
        m.insert(cell_id.into(), client);
    }

    /// Forgets the client of `cell_id`; returns it when there was one.
    pub fn remove(&self, cell_id: &CellId) -> Option<Arc<dyn CellClient>> {
        let mut m = self.clients.write().unwrap_or_else(|e| e.into_inner());
        m.remove(cell_id.as_str())
    }

    /// How many cells are registered.
    pub fn len(&self) -> usize {
        self.clients.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no cell is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl CellClientFactory for CellRegistry {
    fn client(&self, presence: &CellPresence) -> Option<Arc<dyn CellClient>> {
        let m = self.clients.read().unwrap_or_else(|e| e.into_inner());
        m.get(presence.cell_id.as_str()).cloned()
    }
}
