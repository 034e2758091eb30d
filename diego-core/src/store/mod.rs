//! The `Store`: where the BBS keeps its records, behind one object-safe trait.
//!
//! Records are typed values (tasks, desired LRPs, actual LRP rows, domains, cell
//! presences). Every change is an atomic [`WriteBatch`] of puts and deletes, each with a
//! [`Precondition`] (absent, or modification tag equals), applied all-or-nothing — what a
//! SQL transaction does. A failed precondition is [`Error::ResourceExists`] (the record
//! exists but must be absent) or [`Error::ResourceConflict`] (it changed or vanished),
//! never a silent overwrite. The BBS computes each new modification tag; the store only
//! checks the precondition.
//!
//! Implementations: [`MemoryStore`] (the embedded default), `SqliteStore` (feature
//! `sqlite`) and `PostgresStore` (feature `postgres`). A user's own store can run the
//! `conformance` suite (feature `test-util`).
//!
//! A store need not be a [`Lock`]: the BBS takes its lock as a choice of its own
//! ([`BbsBuilder::lock`](crate::BbsBuilder::lock)), by default the store's own
//! ([`Store::own_lock`]), which every store here has.
//!
//! [`Error::ResourceExists`]: crate::Error::ResourceExists
//! [`Error::ResourceConflict`]: crate::Error::ResourceConflict

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::lock::Lock;
use crate::models::actual_lrp::{ActualLrp, ActualLrpKey, Presence};
use crate::models::cell::CellPresence;
use crate::models::desired_lrp::{DesiredLrp, SchedulingInfo};
use crate::models::domain::Domain;
use crate::models::guid::{CellId, ProcessGuid, TaskGuid};
use crate::models::modification_tag::ModificationTag;
use crate::models::task::Task;
use crate::time::Timestamp;

#[cfg(feature = "test-util")]
pub mod conformance;
mod fenced;
mod memory;
#[cfg(feature = "sql")]
pub mod sql;

pub use fenced::FencedStore;
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use sql::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sql::SqliteStore;

/// A cell presence as stored: a lease that ends at `expires_at` unless renewed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellPresenceRecord {
    /// What the cell registered.
    pub presence: CellPresence,
    /// When the lease ends.
    pub expires_at: Timestamp,
}

/// The identity of one ActualLRP row: an index may have an ORDINARY, an EVACUATING and
/// a SUSPECT row at the same time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActualLrpRowKey {
    /// The process.
    pub process_guid: ProcessGuid,
    /// The instance index.
    pub index: i32,
    /// Which copy.
    pub presence: Presence,
}

impl ActualLrpRowKey {
    /// The row key of `lrp`.
    pub fn of(lrp: &ActualLrp) -> Self {
        ActualLrpRowKey {
            process_guid: lrp.key.process_guid.clone(),
            index: lrp.key.index,
            presence: lrp.presence,
        }
    }

    /// The row of `key` with `presence`.
    pub fn new(key: &ActualLrpKey, presence: Presence) -> Self {
        ActualLrpRowKey {
            process_guid: key.process_guid.clone(),
            index: key.index,
            presence,
        }
    }
}

/// A stored record.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A Task.
    Task(Box<Task>),
    /// A DesiredLRP.
    DesiredLrp(Box<DesiredLrp>),
    /// An ActualLRP row (shared with the events that announce it).
    ActualLrp(Arc<ActualLrp>),
    /// A domain.
    Domain(Domain),
    /// A cell presence lease.
    CellPresence(CellPresenceRecord),
}

/// The identity of a stored record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RecordKey {
    /// A Task by guid.
    Task(TaskGuid),
    /// A DesiredLRP by process guid.
    DesiredLrp(ProcessGuid),
    /// An ActualLRP row.
    ActualLrp(ActualLrpRowKey),
    /// A domain by name.
    Domain(String),
    /// A cell presence by cell id.
    CellPresence(CellId),
}

impl Record {
    /// A Task record.
    pub fn task(task: Task) -> Self {
        Record::Task(Box::new(task))
    }

    /// An ActualLRP record.
    pub fn actual_lrp(row: ActualLrp) -> Self {
        Record::ActualLrp(Arc::new(row))
    }

    /// A DesiredLRP record.
    pub fn desired_lrp(desired: DesiredLrp) -> Self {
        Record::DesiredLrp(Box::new(desired))
    }

    /// The record's identity.
    pub fn key(&self) -> RecordKey {
        match self {
            Record::Task(t) => RecordKey::Task(t.task_guid.clone()),
            Record::DesiredLrp(d) => RecordKey::DesiredLrp(d.process_guid().clone()),
            Record::ActualLrp(a) => RecordKey::ActualLrp(ActualLrpRowKey::of(a)),
            Record::Domain(d) => RecordKey::Domain(d.name.clone()),
            Record::CellPresence(c) => RecordKey::CellPresence(c.presence.cell_id.clone()),
        }
    }

    /// The record's modification tag; domains and cell presences have none.
    pub fn modification_tag(&self) -> Option<&ModificationTag> {
        match self {
            Record::Task(t) => Some(&t.modification_tag),
            Record::DesiredLrp(d) => Some(&d.scheduling_info.modification_tag),
            Record::ActualLrp(a) => Some(&a.modification_tag),
            Record::Domain(_) | Record::CellPresence(_) => None,
        }
    }
}

/// What must hold of a record's current version for a write to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Nothing: write whatever is there (upserts of domains and cell presences).
    None,
    /// The record must not exist (else `ResourceExists`).
    Absent,
    /// The record must exist with exactly this tag (else `ResourceConflict`).
    Tag(ModificationTag),
}

/// One write of a batch.
// Batches are short-lived; boxing the record would cost an allocation per write.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum WriteOp {
    /// Create or replace a record.
    Put {
        /// The new record.
        record: Record,
        /// What must hold first.
        precondition: Precondition,
    },
    /// Delete a record (deleting a missing record with `Precondition::None` is a no-op).
    Delete {
        /// Which record.
        key: RecordKey,
        /// What must hold first.
        precondition: Precondition,
    },
}

impl WriteOp {
    /// The key the op writes.
    pub fn key(&self) -> RecordKey {
        match self {
            WriteOp::Put { record, .. } => record.key(),
            WriteOp::Delete { key, .. } => key.clone(),
        }
    }

    /// The op's precondition.
    pub fn precondition(&self) -> &Precondition {
        match self {
            WriteOp::Put { precondition, .. } | WriteOp::Delete { precondition, .. } => {
                precondition
            }
        }
    }
}

/// A fencing condition on a whole batch: the named [`Lock`] must still
/// carry this fencing token when the batch is applied (checked in the same transaction).
/// The store checks it against its own lock ([`Store::own_lock`]): a fence of another
/// lock is refused as lost.
///
/// A process that lost its lease (paused, partitioned) and wakes up still holding an old
/// token cannot write any more: the new holder's takeover incremented the token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The lock's name.
    pub lock: String,
    /// The fencing token the writer holds (see [`Lease::token`](crate::lock::Lease::token)).
    pub token: u64,
}

impl Fence {
    /// A fence on lock `lock` with `token`.
    pub fn new(lock: impl Into<String>, token: u64) -> Self {
        Fence {
            lock: lock.into(),
            token,
        }
    }
}

/// Writes applied all-or-nothing. Each key may appear at most once; preconditions are
/// checked against the state before the batch. With a [`Fence`], the batch applies only
/// while the fence's lock carries its token (else [`Error::FenceLost`] and nothing is
/// written).
///
/// [`Error::FenceLost`]: crate::Error::FenceLost
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteBatch {
    /// The writes, applied in order.
    pub ops: Vec<WriteOp>,
    /// When set, the lock whose fencing token must still be current.
    pub fence: Option<Fence>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, record: Record, precondition: Precondition) -> &mut Self {
        self.ops.push(WriteOp::Put {
            record,
            precondition,
        });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: RecordKey, precondition: Precondition) -> &mut Self {
        self.ops.push(WriteOp::Delete { key, precondition });
        self
    }

    /// Makes the batch conditional on `fence` (replacing any fence it had).
    pub fn fenced(&mut self, fence: Fence) -> &mut Self {
        self.fence = Some(fence);
        self
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Which Tasks to list; unset fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Only this domain.
    pub domain: Option<String>,
    /// Only Tasks on this cell.
    pub cell_id: Option<CellId>,
}

/// Which DesiredLRPs to list; unset fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredLrpFilter {
    /// Only this domain.
    pub domain: Option<String>,
    /// Only these process guids (empty = all).
    pub process_guids: Vec<ProcessGuid>,
}

/// Which ActualLRP rows to list; unset fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActualLrpFilter {
    /// Only this domain.
    pub domain: Option<String>,
    /// Only rows on this cell.
    pub cell_id: Option<CellId>,
    /// Only this process.
    pub process_guid: Option<ProcessGuid>,
    /// Only this index (with or without `process_guid`).
    pub index: Option<i32>,
}

impl TaskFilter {
    /// Whether `t` passes the filter.
    pub fn matches(&self, t: &Task) -> bool {
        self.domain.as_ref().is_none_or(|d| &t.domain == d)
            && self
                .cell_id
                .as_ref()
                .is_none_or(|c| t.cell_id.as_ref() == Some(c))
    }
}

impl DesiredLrpFilter {
    /// Whether `d` passes the filter.
    pub fn matches(&self, d: &SchedulingInfo) -> bool {
        self.domain.as_ref().is_none_or(|x| &d.domain == x)
            && (self.process_guids.is_empty() || self.process_guids.contains(&d.process_guid))
    }
}

impl ActualLrpFilter {
    /// Rows of one process.
    pub fn process(process_guid: &ProcessGuid) -> Self {
        ActualLrpFilter {
            process_guid: Some(process_guid.clone()),
            ..Default::default()
        }
    }

    /// Rows of one index of one process (all presences).
    pub fn instance(process_guid: &ProcessGuid, index: i32) -> Self {
        ActualLrpFilter {
            process_guid: Some(process_guid.clone()),
            index: Some(index),
            ..Default::default()
        }
    }

    /// Whether `a` passes the filter.
    pub fn matches(&self, a: &ActualLrp) -> bool {
        self.domain.as_ref().is_none_or(|d| &a.key.domain == d)
            && self.cell_id.as_ref().is_none_or(|c| a.cell_id() == Some(c))
            && self
                .process_guid
                .as_ref()
                .is_none_or(|p| &a.key.process_guid == p)
            && self.index.is_none_or(|i| a.key.index == i)
    }
}

/// Where the BBS keeps its records. Object-safe; implementations must make
/// [`Store::write`] atomic and check every precondition.
///
/// A store may also keep [`Lock`] leases in the same place as the records, and say so
/// through [`Store::own_lock`] (every store here does): the BBS's leader lock, whose
/// fencing token [`Store::write`] then checks in the write's own transaction, and by
/// default the cells' presences, which are leases with a TTL named `cells/{cell_id}`
/// (see [`CellApi::register_cell`](crate::bbs::CellApi::register_cell)). A store without
/// a lock of its own is paired with one of the host's choice
/// ([`BbsBuilder::lock`](crate::BbsBuilder::lock)).
#[async_trait]
pub trait Store: Send + Sync + Debug {
    /// One Task.
    async fn task(&self, guid: &TaskGuid) -> Result<Option<Task>>;
    /// Tasks matching `filter`.
    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>>;
    /// One DesiredLRP.
    async fn desired_lrp(&self, process_guid: &ProcessGuid) -> Result<Option<DesiredLrp>>;
    /// DesiredLRPs matching `filter`.
    async fn desired_lrps(&self, filter: &DesiredLrpFilter) -> Result<Vec<DesiredLrp>>;
    /// The scheduling halves of the DesiredLRPs matching `filter`.
    async fn scheduling_infos(&self, filter: &DesiredLrpFilter) -> Result<Vec<SchedulingInfo>> {
        Ok(self
            .desired_lrps(filter)
            .await?
            .into_iter()
            .map(|d| d.scheduling_info)
            .collect())
    }
    /// ActualLRP rows matching `filter` (every presence).
    async fn actual_lrps(&self, filter: &ActualLrpFilter) -> Result<Vec<Arc<ActualLrp>>>;
    /// Every domain (expired ones too).
    async fn domains(&self) -> Result<Vec<Domain>>;
    /// Every cell presence lease (expired ones too).
    async fn cell_presences(&self) -> Result<Vec<CellPresenceRecord>>;
    /// One cell presence lease (expired or not).
    async fn cell_presence(&self, cell_id: &CellId) -> Result<Option<CellPresenceRecord>> {
        Ok(self
            .cell_presences()
            .await?
            .into_iter()
            .find(|c| &c.presence.cell_id == cell_id))
    }
    /// Applies `batch` atomically: every precondition holds and every op is applied, or
    /// nothing is. A batch with a [`Fence`] applies only while the fence's lock carries
    /// its token, else it fails with [`Error::FenceLost`](crate::Error::FenceLost); a
    /// store without locks refuses fenced batches the same way.
    async fn write(&self, batch: WriteBatch) -> Result<()>;

    /// The [`Lock`] that keeps its leases beside this store's records — the one whose
    /// fences [`Store::write`] checks — when the store has one; `None` (the default)
    /// when it has none. A [`Bbs`](crate::Bbs) built on this store uses it unless given
    /// another ([`BbsBuilder::lock`](crate::BbsBuilder::lock)).
    fn own_lock(self: Arc<Self>) -> Option<Arc<dyn Lock>> {
        None
    }
}
