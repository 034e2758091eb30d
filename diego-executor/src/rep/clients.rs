//! In-process clients of reps: the auction's [`CellClient`] and the BBS's [`RepClient`],
//! found by cell id in a [`LocalReps`] registry.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use diego_auction::{CellClient, CellClientFactory, Work};
use diego_core::MetricTags;
use diego_core::{
    ActualLrpInstanceKey, ActualLrpKey, CellId, CellPresence, CellState, Error, RepClient, TaskGuid,
};
use parking_lot::RwLock;

use super::Rep;

/// The auction's client of an in-process rep.
#[derive(Clone, Debug)]
pub struct LocalCellClient(pub Rep);

#[async_trait]
impl CellClient for LocalCellClient {
    async fn state(&self) -> diego_auction::Result<Arc<CellState>> {
        Ok(self.0.state())
    }

    async fn perform(&self, work: Work) -> diego_auction::Result<Work> {
        Ok(self.0.perform(work).await)
    }
}

/// The reps living in this process, by cell id: how the auction and the BBS reach them.
#[derive(Debug, Default)]
pub struct LocalReps {
    reps: RwLock<HashMap<CellId, Rep>>,
}

impl LocalReps {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a rep.
    pub fn insert(&self, rep: Rep) {
        self.reps.write().insert(rep.cell_id().clone(), rep);
    }

    /// Removes a rep (it can no longer be reached).
    pub fn remove(&self, cell_id: &CellId) -> Option<Rep> {
        self.reps.write().remove(cell_id)
    }

    /// The rep of `cell_id`.
    pub fn get(&self, cell_id: &CellId) -> Option<Rep> {
        self.reps.read().get(cell_id).cloned()
    }

    /// Every rep.
    pub fn all(&self) -> Vec<Rep> {
        self.reps.read().values().cloned().collect()
    }

    fn rep(&self, cell: &CellPresence) -> diego_core::Result<Rep> {
        self.get(&cell.cell_id)
            .ok_or_else(|| Error::unavailable(format!("cell {} is not reachable", cell.cell_id)))
    }
}

impl CellClientFactory for LocalReps {
    fn client(&self, presence: &CellPresence) -> Option<Arc<dyn CellClient>> {
        self.get(&presence.cell_id)
            .map(|rep| Arc::new(LocalCellClient(rep)) as Arc<dyn CellClient>)
    }
}

#[async_trait]
impl RepClient for LocalReps {
    async fn stop_lrp_instance(
        &self,
        cell: &CellPresence,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
    ) -> diego_core::Result<()> {
        self.rep(cell)?.stop_lrp_instance(key, instance_key).await
    }

    async fn cancel_task(
        &self,
        cell: &CellPresence,
        task_guid: &TaskGuid,
    ) -> diego_core::Result<()> {
        self.rep(cell)?.cancel_task(task_guid).await
    }

    async fn update_lrp_instance(
        &self,
        cell: &CellPresence,
        key: &ActualLrpKey,
        instance_key: &ActualLrpInstanceKey,
        metric_tags: &MetricTags,
    ) -> diego_core::Result<()> {
        self.rep(cell)?
            .update_lrp_instance(key, instance_key, metric_tags)
            .await
    }
}
