//! `MemoryStore`: the embedded default store — every record in memory, one
//! reader-writer lock held for microseconds per operation. It is also the in-process
//! [`Lock`]: leases live beside the records, so fenced writes check them atomically.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;
use rustc_hash::{FxHashMap, FxHashSet};

use super::{
    ActualLrpFilter, ActualLrpRowKey, CellPresenceRecord, DesiredLrpFilter, Precondition, Record,
    RecordKey, Store, TaskFilter, WriteBatch, WriteOp,
};
use crate::error::{Error, Result};
use crate::lock::{validate_acquire, Lease, Lock};
use crate::models::actual_lrp::{ActualLrp, Presence};
use crate::models::desired_lrp::{DesiredLrp, SchedulingInfo};
use crate::models::domain::Domain;
use crate::models::guid::{CellId, ProcessGuid, TaskGuid};
use crate::models::modification_tag::ModificationTag;
use crate::models::task::Task;
use crate::time::Timestamp;

/// Rows of one process: `(index, presence)` → row.
type ProcessRows = BTreeMap<(i32, Presence), Arc<ActualLrp>>;

#[derive(Debug, Default)]
struct Tables {
    tasks: FxHashMap<TaskGuid, Task>,
    desired: BTreeMap<ProcessGuid, DesiredLrp>,
    actual: BTreeMap<ProcessGuid, ProcessRows>,
    actual_by_cell: FxHashMap<CellId, FxHashSet<ActualLrpRowKey>>,
    domains: BTreeMap<String, Domain>,
    cells: BTreeMap<CellId, CellPresenceRecord>,
    /// Lock leases by name; a released lock keeps its token with an empty owner.
    locks: FxHashMap<String, Lease>,
}

/// The in-memory store: fast, and gone when the process ends.
///
/// ```
/// # tokio_test_block(async {
/// use diego_core::store::{MemoryStore, Store, TaskFilter};
/// let store = MemoryStore::new();
/// assert!(store.tasks(&TaskFilter::default()).await.unwrap().is_empty());
/// # });
/// # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: RwLock<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Tables {
    fn current_tag(&self, key: &RecordKey) -> Option<Option<&ModificationTag>> {
        match key {
            RecordKey::Task(g) => self.tasks.get(g).map(|t| Some(&t.modification_tag)),
            RecordKey::DesiredLrp(g) => self
                .desired
                .get(g)
                .map(|d| Some(&d.scheduling_info.modification_tag)),
            RecordKey::ActualLrp(k) => self
                .actual
                .get(&k.process_guid)
                .and_then(|rows| rows.get(&(k.index, k.presence)))
                .map(|a| Some(&a.modification_tag)),
            RecordKey::Domain(n) => self.domains.get(n).map(|_| None),
            RecordKey::CellPresence(c) => self.cells.get(c).map(|_| None),
        }
    }

    fn check(&self, key: &RecordKey, pre: &Precondition) -> Result<()> {
        match pre {
            Precondition::None => Ok(()),
            Precondition::Absent => match self.current_tag(key) {
                None => Ok(()),
                Some(_) => Err(Error::ResourceExists),
            },
            Precondition::Tag(want) => match self.current_tag(key) {
                Some(Some(have)) if have == want => Ok(()),
                _ => Err(Error::ResourceConflict),
            },
        }
    }

    fn unindex_cell(&mut self, lrp: &ActualLrp) {
        if let Some(cell) = lrp.cell_id() {
            if let Some(set) = self.actual_by_cell.get_mut(cell) {
                set.remove(&ActualLrpRowKey::of(lrp));
                if set.is_empty() {
                    self.actual_by_cell.remove(cell);
                }
            }
        }
    }

    fn remove_actual(&mut self, k: &ActualLrpRowKey) {
        let Some(rows) = self.actual.get_mut(&k.process_guid) else {
            return;
        };
        let removed = rows.remove(&(k.index, k.presence));
        if rows.is_empty() {
            self.actual.remove(&k.process_guid);
        }
        if let Some(old) = removed {
            self.unindex_cell(&old);
        }
    }

    fn apply(&mut self, op: WriteOp) {
        match op {
            WriteOp::Put { record, .. } => match record {
                Record::Task(t) => {
                    self.tasks.insert(t.task_guid.clone(), *t);
                }
                Record::DesiredLrp(d) => {
                    self.desired.insert(d.process_guid().clone(), *d);
                }
                Record::ActualLrp(a) => {
                    let row_key = ActualLrpRowKey::of(&a);
                    let cell = a.cell_id().cloned();
                    let rows = self.actual.entry(row_key.process_guid.clone()).or_default();
                    if let Some(old) = rows.insert((row_key.index, row_key.presence), a) {
                        self.unindex_cell(&old);
                    }
                    if let Some(cell) = cell {
                        self.actual_by_cell.entry(cell).or_default().insert(row_key);
                    }
                }
                Record::Domain(d) => {
                    self.domains.insert(d.name.clone(), d);
                }
                Record::CellPresence(c) => {
                    self.cells.insert(c.presence.cell_id.clone(), c);
                }
            },
            WriteOp::Delete { key, .. } => match key {
                RecordKey::Task(g) => {
                    self.tasks.remove(&g);
                }
                RecordKey::DesiredLrp(g) => {
                    self.desired.remove(&g);
                }
                RecordKey::ActualLrp(k) => self.remove_actual(&k),
                RecordKey::Domain(n) => {
                    self.domains.remove(&n);
                }
                RecordKey::CellPresence(c) => {
                    self.cells.remove(&c);
                }
            },
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn task(&self, guid: &TaskGuid) -> Result<Option<Task>> {
        Ok(self.tables.read().tasks.get(guid).cloned())
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let t = self.tables.read();
        let mut out: Vec<Task> = t
            .tasks
            .values()
            .filter(|x| filter.matches(x))
            .cloned()
            .collect();
        drop(t);
        out.sort_by(|a, b| a.task_guid.cmp(&b.task_guid));
        Ok(out)
    }

    async fn desired_lrp(&self, process_guid: &ProcessGuid) -> Result<Option<DesiredLrp>> {
        Ok(self.tables.read().desired.get(process_guid).cloned())
    }

    async fn desired_lrps(&self, filter: &DesiredLrpFilter) -> Result<Vec<DesiredLrp>> {
        let t = self.tables.read();
        Ok(t.desired
            .values()
            .filter(|d| filter.matches(&d.scheduling_info))
            .cloned()
            .collect())
    }

    async fn scheduling_infos(&self, filter: &DesiredLrpFilter) -> Result<Vec<SchedulingInfo>> {
        let t = self.tables.read();
        Ok(t.desired
            .values()
            .filter(|d| filter.matches(&d.scheduling_info))
            .map(|d| d.scheduling_info.clone())
            .collect())
    }

    async fn actual_lrps(&self, filter: &ActualLrpFilter) -> Result<Vec<Arc<ActualLrp>>> {
        let t = self.tables.read();
        let mut out = Vec::new();
        if let Some(cell) = &filter.cell_id {
            // Through the cell index: only this cell's rows are visited.
            if let Some(keys) = t.actual_by_cell.get(cell) {
                for k in keys {
                    if let Some(a) = t
                        .actual
                        .get(&k.process_guid)
                        .and_then(|rows| rows.get(&(k.index, k.presence)))
                    {
                        if filter.matches(a) {
                            out.push(a.clone());
                        }
                    }
                }
            }
            drop(t);
            out.sort_by(|a, b| ActualLrpRowKey::of(a).cmp(&ActualLrpRowKey::of(b)));
            return Ok(out);
        }
        if filter.process_guid.is_none() && filter.index.is_none() {
            out.reserve(t.actual.values().map(|rows| rows.len()).sum());
        }
        let mut push_rows = |rows: &ProcessRows| match filter.index {
            Some(i) => {
                for (_, a) in rows.range((i, Presence::Ordinary)..=(i, Presence::Suspect)) {
                    if filter.matches(a) {
                        out.push(a.clone());
                    }
                }
            }
            None => out.extend(rows.values().filter(|a| filter.matches(a)).cloned()),
        };
        match &filter.process_guid {
            Some(pg) => {
                if let Some(rows) = t.actual.get(pg) {
                    push_rows(rows);
                }
            }
            None => {
                for rows in t.actual.values() {
                    push_rows(rows);
                }
            }
        }
        Ok(out)
    }

    async fn domains(&self) -> Result<Vec<Domain>> {
        Ok(self.tables.read().domains.values().cloned().collect())
    }

    async fn cell_presences(&self) -> Result<Vec<CellPresenceRecord>> {
        Ok(self.tables.read().cells.values().cloned().collect())
    }

    async fn cell_presence(&self, cell_id: &CellId) -> Result<Option<CellPresenceRecord>> {
        Ok(self.tables.read().cells.get(cell_id).cloned())
    }

    fn own_lock(self: Arc<Self>) -> Option<Arc<dyn Lock>> {
        Some(self)
    }

    async fn write(&self, batch: WriteBatch) -> Result<()> {
        if batch.ops.len() > 1 {
            let mut seen = HashSet::with_capacity(batch.ops.len());
            for op in &batch.ops {
                if !seen.insert(op.key()) {
                    return Err(Error::BadRequest);
                }
            }
        }
        let mut t = self.tables.write();
        if let Some(fence) = &batch.fence {
            let current = t.locks.get(&fence.lock).map(|l| l.token);
            if current != Some(fence.token) {
                return Err(Error::FenceLost {
                    lock: fence.lock.clone(),
                    token: fence.token,
                });
            }
        }
        for op in &batch.ops {
            t.check(&op.key(), op.precondition())?;
        }
        for op in batch.ops {
            t.apply(op);
        }
        Ok(())
    }
}

#[async_trait]
impl Lock for MemoryStore {
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Option<Lease>> {
        validate_acquire(name, owner, ttl)?;
        let expires_at = now + ttl;
        let mut t = self.tables.write();
        let lease = match t.locks.get_mut(name) {
            None => {
                let lease = Lease {
                    name: name.to_owned(),
                    owner: owner.to_owned(),
                    token: 1,
                    expires_at,
                };
                t.locks.insert(name.to_owned(), lease.clone());
                lease
            }
            Some(held) if held.owner == owner => {
                held.expires_at = expires_at;
                held.clone()
            }
            Some(held) if held.owner.is_empty() || held.is_expired(now) => {
                held.owner = owner.to_owned();
                held.token += 1;
                held.expires_at = expires_at;
                held.clone()
            }
            Some(_) => return Ok(None),
        };
        Ok(Some(lease))
    }

    async fn release(&self, name: &str, owner: &str) -> Result<bool> {
        let mut t = self.tables.write();
        match t.locks.get_mut(name) {
            Some(held) if !owner.is_empty() && held.owner == owner => {
                held.owner.clear();
                held.expires_at = Timestamp::ZERO;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn holder(&self, name: &str) -> Result<Option<Lease>> {
        Ok(self
            .tables
            .read()
            .locks
            .get(name)
            .filter(|l| !l.owner.is_empty())
            .cloned())
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>> {
        let mut v: Vec<Lease> = self
            .tables
            .read()
            .locks
            .values()
            .filter(|l| !l.owner.is_empty() && l.name.starts_with(prefix))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }
}
