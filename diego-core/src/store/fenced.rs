//! [`FencedStore`]: a store whose every write carries the writer's fence.

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    ActualLrpFilter, CellPresenceRecord, DesiredLrpFilter, Fence, Store, TaskFilter, WriteBatch,
};
use crate::error::Result;
use crate::lock::Lock;
use crate::models::actual_lrp::ActualLrp;
use crate::models::desired_lrp::{DesiredLrp, SchedulingInfo};
use crate::models::domain::Domain;
use crate::models::guid::{CellId, ProcessGuid, TaskGuid};
use crate::models::task::Task;

/// Wraps a store so that every batch written through it is fenced with the holder's
/// [`Fence`]: hand it to a [`Bbs`](crate::Bbs) built while this process holds the lock,
/// and once another process takes the lock over, no write of this one can land
/// ([`Error::FenceLost`](crate::Error::FenceLost)). Reads pass through, and so does the
/// inner store's own [`Lock`] ([`Store::own_lock`]; leases are not records: cell
/// presences are renewed through any BBS).
///
/// The fence is checked by the inner store against its own lock, so the lease must come
/// from that lock: a fence of another lock is refused as lost.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use diego_core::lock::Lock;
/// use diego_core::store::{FencedStore, MemoryStore, Store, WriteBatch};
/// use diego_core::time::Timestamp;
///
/// let store = Arc::new(MemoryStore::new());
/// let ttl = Duration::from_secs(15);
/// let lease = store.acquire("bbs", "a", ttl, Timestamp(0)).await.unwrap().unwrap();
/// let fenced = FencedStore::new(store.clone(), lease.fence());
/// fenced.write(WriteBatch::new()).await.unwrap();
///
/// // "b" takes the expired lock over: "a"'s writes are refused from now on.
/// let later = Timestamp(0) + Duration::from_secs(16);
/// store.acquire("bbs", "b", ttl, later).await.unwrap().unwrap();
/// let err = fenced.write(WriteBatch::new()).await.unwrap_err();
/// assert_eq!(err.kind(), "FenceLost");
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct FencedStore {
    inner: Arc<dyn Store>,
    fence: Fence,
}

impl FencedStore {
    /// `inner`, with every write fenced by `fence`.
    pub fn new(inner: Arc<dyn Store>, fence: Fence) -> Self {
        FencedStore { inner, fence }
    }

    /// The fence every write carries.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }
}

#[async_trait]
impl Store for FencedStore {
    async fn task(&self, guid: &TaskGuid) -> Result<Option<Task>> {
        self.inner.task(guid).await
    }
    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        self.inner.tasks(filter).await
    }
    async fn desired_lrp(&self, process_guid: &ProcessGuid) -> Result<Option<DesiredLrp>> {
        self.inner.desired_lrp(process_guid).await
    }
    async fn desired_lrps(&self, filter: &DesiredLrpFilter) -> Result<Vec<DesiredLrp>> {
        self.inner.desired_lrps(filter).await
    }
    async fn scheduling_infos(&self, filter: &DesiredLrpFilter) -> Result<Vec<SchedulingInfo>> {
        self.inner.scheduling_infos(filter).await
    }
    async fn actual_lrps(&self, filter: &ActualLrpFilter) -> Result<Vec<Arc<ActualLrp>>> {
        self.inner.actual_lrps(filter).await
    }
    async fn domains(&self) -> Result<Vec<Domain>> {
        self.inner.domains().await
    }
    async fn cell_presences(&self) -> Result<Vec<CellPresenceRecord>> {
        self.inner.cell_presences().await
    }
    async fn cell_presence(&self, cell_id: &CellId) -> Result<Option<CellPresenceRecord>> {
        self.inner.cell_presence(cell_id).await
    }
    async fn write(&self, mut batch: WriteBatch) -> Result<()> {
        batch.fenced(self.fence.clone());
        self.inner.write(batch).await
    }
    fn own_lock(self: Arc<Self>) -> Option<Arc<dyn Lock>> {
        self.inner.clone().own_lock()
    }
}
