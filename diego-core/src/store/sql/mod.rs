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

/// How often and how patiently a SQL store retries transient failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// The wait before attempt `attempt + 1` (after `attempt` failures, counting from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Settings shared by the SQL stores.
#[derive(Clone, Debug)]
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
    /// Default settings with `keys`.
    pub fn with_keys(keys: KeyRing) -> Self {
        SqlOptions {
            keys,
            ..Default::default()
        }
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
