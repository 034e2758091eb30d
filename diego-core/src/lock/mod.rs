//! The leader [`Lock`]: a named lease with an owner, a time-to-live and a fencing token.
//!
//! Several BBS processes share one store; one of them holds the lock and acts, the others
//! wait and take over when the holder's lease expires. Every takeover increments the
//! lock's *fencing token*; the holder puts its token on each write
//! ([`WriteBatch::fenced`](crate::store::WriteBatch::fenced)) and the store refuses the
//! write when the token is no longer current, so a paused old holder that wakes up after
//! losing the lock cannot write ([`Error::FenceLost`](crate::Error::FenceLost)).
//!
//! Time is the caller's: every acquisition passes `now` from the caller's
//! [`Clock`](crate::time::Clock), so tests drive expiry by hand. Implementations:
//! [`MemoryStore`](crate::store::MemoryStore) (in-process) and the SQL stores (a lease row
//! in the same database as the records, so the fence check is part of each write
//! transaction), each its store's own lock
//! ([`Store::own_lock`](crate::store::Store::own_lock)); a lock need not be a store, and a
//! store need not be a lock. This module knows nothing of the BBS.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::time::Duration;
//! use diego_core::lock::Lock;
//! use diego_core::store::{Fence, MemoryStore, Store, WriteBatch};
//! use diego_core::time::Timestamp;
//!
//! let store = MemoryStore::new();
//! let now = Timestamp(1_000);
//! let lease = store.acquire("bbs", "bbs-a", Duration::from_secs(15), now).await.unwrap().unwrap();
//! // A second contender gets nothing while the lease is live.
//! assert!(store.acquire("bbs", "bbs-b", Duration::from_secs(15), now).await.unwrap().is_none());
//! // The holder fences its writes with its token.
//! let mut batch = WriteBatch::new();
//! batch.fenced(lease.fence());
//! store.write(batch).await.unwrap();
//! # });
//! ```

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::models::validation::ValidationErrors;
use crate::store::Fence;
use crate::time::Timestamp;

#[cfg(feature = "test-util")]
pub mod conformance;

/// A held lease on a named lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The lock's name.
    pub name: String,
    /// Who holds it.
    pub owner: String,
    /// The fencing token: incremented on every change of holder, kept by renewals.
    pub token: u64,
    /// When the lease ends unless renewed.
    pub expires_at: Timestamp,
}

impl Lease {
    /// The fence to put on writes made under this lease.
    pub fn fence(&self) -> Fence {
        Fence::new(self.name.clone(), self.token)
    }

    /// Whether the lease has ended at `now` (a lease ending exactly at `now` has ended).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at <= now
    }
}

/// A named lease with fencing tokens, shared by the processes that contend for it.
///
/// Object-safe. Implementations must make [`Lock::acquire`] atomic (two contenders never
/// both hold an unexpired lease) and keep each lock's token monotonic: a change of holder
/// (first acquisition, takeover after expiry, acquisition after a release) increments it;
/// a renewal by the current owner keeps it.
#[async_trait]
pub trait Lock: Send + Sync + Debug {
    /// Acquires the lock `name` for `owner`, or renews `owner`'s lease, until `now + ttl`.
    ///
    /// Returns the lease now held, or `None` when another owner holds an unexpired lease.
    /// The owner's own lease is renewed even after it expired, as long as nobody took it
    /// over in between (the token is then unchanged: no other writer held it).
    /// An empty `name` or `owner`, or a zero `ttl`, is
    /// [`Error::InvalidRequest`](crate::Error::InvalidRequest).
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Option<Lease>>;

    /// Releases `owner`'s lease on `name` so a contender can take over at once (its
    /// acquisition increments the token). Returns whether `owner` held the lock;
    /// releasing a lock held by someone else changes nothing.
    async fn release(&self, name: &str, owner: &str) -> Result<bool>;

    /// The last lease granted on `name` — possibly expired (see [`Lease::is_expired`]) —
    /// or `None` when the lock was never acquired or was released.
    async fn holder(&self, name: &str) -> Result<Option<Lease>>;

    /// Every held lease (as [`Lock::holder`] gives it: possibly expired, not released)
    /// on a lock whose name starts with `prefix`, in name order. The BBS lists its cells'
    /// presence leases this way.
    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>>;
}

/// Checks the arguments of [`Lock::acquire`]; shared by the implementations.
pub(crate) fn validate_acquire(name: &str, owner: &str, ttl: Duration) -> Result<()> {
    let mut errors = ValidationErrors::new();
    if name.is_empty() {
        errors.add("name", "must not be empty");
    }
    if owner.is_empty() {
        errors.add("owner", "must not be empty");
    }
    if ttl.is_zero() {
        errors.add("ttl", "must be greater than zero");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.into())
    }
}
