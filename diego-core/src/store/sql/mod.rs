//! The SQL stores: [`SqliteStore`] (feature `sqlite`: durable and embedded, one file) and
//! [`PostgresStore`] (feature `postgres`: shared by several BBS processes), both with sqlx.
//!
//! Both keep one table per record kind — `tasks`, `desired_lrps`, `actual_lrps`,
//! `domains`, `cell_presences` — each row holding the record's key columns, the columns
//! the BBS lists by (domain, cell id; indexed), the modification tag (compared by every
//! conditional write: `UPDATE ... WHERE tag_epoch = $n AND tag_index = $m`), the lease
//! end of cell presences, and the record itself as a JSON payload, encrypted at rest when
//! a [`KeyRing`] is configured (each row carries its key's label). A `locks` table holds
//! the [`Lock`](crate::lock::Lock) leases; a fenced batch checks its lock row inside the
//! batch's transaction. Schemas are created by embedded migrations (`migrations/sqlite`,
//! `migrations/postgres` in this crate) when a store opens.
//!
//! Transient failures (SQLite busy, PostgreSQL serialization failures and deadlocks,
//! dropped connections, a pool that ran dry) are retried with exponential backoff
//! ([`RetryPolicy`]); after the last attempt the operation fails with
//! [`Error::Unavailable`](crate::Error::Unavailable) naming the operation and the cause.
//! A write whose outcome is unknown (the connection died during `COMMIT`, or during a
//! single-statement write) is not retried: it fails with `Unavailable` saying so.
//!
//! Encryption at rest: see [`KeyRing`]. Leader locks: the stores implement
//! [`Lock`](crate::lock::Lock) with a lease row per lock in the same database.

use std::time::Duration;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod codec;
mod encryption;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use encryption::{EncryptionKey, KeyRing};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// How often and how patiently a SQL store retries transient failures:
/// [`RetryPolicy::default`], changed with the `with_*` setters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all (the first one included); at least 1.
    pub attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts, waiting 10 ms, 20 ms, ... up to 1 s in between (about 2.3 s in all).
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// With `attempts`: attempts in all, the first one included (at least 1).
    #[must_use]
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// With `initial_backoff`: the wait after the first failure.
    #[must_use]
    pub fn with_initial_backoff(mut self, initial_backoff: Duration) -> Self {
        self.initial_backoff = initial_backoff;
        self
    }

    /// With `max_backoff`: the longest wait between two attempts.
    #[must_use]
    pub fn with_max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// The wait before attempt `attempt + 1` (after `attempt` failures, counting from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Settings shared by the SQL stores: [`SqlOptions::default`] or
/// [`SqlOptions::with_keys`], changed with the `with_*` setters.
///
/// ```
/// use std::time::Duration;
/// use diego_core::store::sql::SqlOptions;
/// let options = SqlOptions::default()
///     .with_max_connections(4)
///     .with_acquire_timeout(Duration::from_secs(5));
/// assert_eq!(options.rotate_batch, 256);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SqlOptions {
    /// The keys payloads are encrypted with (default: none, plaintext).
    pub keys: KeyRing,
    /// The connection pool's size (default 16; an in-memory SQLite store always uses 1).
    pub max_connections: u32,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// How many rows `rotate()` re-encrypts per transaction (default 256).
    pub rotate_batch: u32,
    /// How long to wait for a connection from the pool, opening included (default 30 s);
    /// then the operation fails with `Unavailable` (or is retried per `retry`).
    pub acquire_timeout: Duration,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            keys: KeyRing::plaintext(),
            max_connections: 16,
            retry: RetryPolicy::default(),
            rotate_batch: 256,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

impl SqlOptions {
    /// Default settings with `keys` (the keys payloads are encrypted with).
    #[must_use]
    pub fn with_keys(keys: KeyRing) -> Self {
        SqlOptions {
            keys,
            ..Default::default()
        }
    }

    /// With `max_connections`: the connection pool's size.
    #[must_use]
    pub fn with_max_connections(mut self, max_connections: u32) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// With `retry`: the retries of transient failures.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// With `rotate_batch`: how many rows `rotate()` re-encrypts per transaction.
    #[must_use]
    pub fn with_rotate_batch(mut self, rotate_batch: u32) -> Self {
        self.rotate_batch = rotate_batch;
        self
    }

    /// With `acquire_timeout`: how long to wait for a connection from the pool.
    #[must_use]
    pub fn with_acquire_timeout(mut self, acquire_timeout: Duration) -> Self {
        self.acquire_timeout = acquire_timeout;
        self
    }

    pub(crate) fn validate(&self) -> crate::Result<()> {
        let mut v = crate::models::validation::ValidationErrors::new();
        if self.max_connections == 0 {
            v.add("max_connections", "must be at least 1");
        }
        if self.retry.attempts == 0 {
            v.add("retry.attempts", "must be at least 1");
        }
        if self.acquire_timeout.is_zero() {
            v.add("acquire_timeout", "must be greater than zero");
        }
        if self.rotate_batch == 0 {
            v.add("rotate_batch", "must be at least 1");
        }
        Ok(v.into_result()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_millis(10));
        assert_eq!(p.backoff(2), Duration::from_millis(20));
        assert_eq!(p.backoff(4), Duration::from_millis(80));
        assert_eq!(p.backoff(30), Duration::from_secs(1));
    }
}
