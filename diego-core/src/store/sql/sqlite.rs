//! `SqliteStore`: the durable embedded store — every record in one SQLite file (WAL
//! journal), or in memory for tests.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{KeyRing, SqlOptions};
use crate::error::{Error, Result};

// The engine is compiled once per backend, against this module's `Db`.
#[allow(clippy::duplicate_mod)]
#[path = "engine.rs"]
mod engine;

type Db = sqlx::Sqlite;
type Backend = SqliteStore;

/// Writers take the database's write lock at once (not on their first write), so two
/// transactions never deadlock upgrading their read locks; others wait `busy_timeout`.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
/// SQLite takes one writer at a time: this process's writers queue for their turn
/// in order rather than polling the busy database (other processes still wait on
/// `busy_timeout`).
const SERIALIZE_WRITES: bool = true;
/// SQLite serialises writers: reading the lock row inside the write transaction is enough.
const FENCE_LOCK_SUFFIX: &str = "";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// `SQLITE_BUSY` and `SQLITE_LOCKED` (any extended code), a pool that ran dry, I/O.
fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        _ => false,
    }
}

/// The SQLite store: durable and embedded — the choice when one process's state must
/// survive a restart. Also the [`Lock`](crate::lock::Lock) of the processes sharing the
/// file (a lease row in the same database).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use diego_core::store::{SqliteStore, Store, TaskFilter};
/// let store = SqliteStore::in_memory().await.unwrap();
/// assert!(store.tasks(&TaskFilter::default()).await.unwrap().is_empty());
/// # });
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    engine: engine::Engine,
}

impl SqliteStore {
    /// Opens (creating when missing) the database file at `path` with default options.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqlOptions::default()).await
    }

    /// Opens (creating when missing) the database file at `path`.
    pub async fn open_with(path: impl AsRef<Path>, options: SqlOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::new()
            .filename(path.as_ref())
            .create_if_missing(true);
        Self::connect(connect, options, false).await
    }

    /// A store in memory, gone when it is dropped (one connection: SQLite's in-memory
    /// databases are private to their connection).
    pub async fn in_memory() -> Result<Self> {
        Self::in_memory_with(SqlOptions::default()).await
    }

    /// A store in memory with `options` (`max_connections` is ignored: always 1).
    pub async fn in_memory_with(options: SqlOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| Error::unavailable_from("sqlite", e))?;
        Self::connect(connect, options, true).await
    }

    async fn connect(
        connect: SqliteConnectOptions,
        options: SqlOptions,
        in_memory: bool,
    ) -> Result<Self> {
        options.validate()?;
        let connect = connect
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL syncs at checkpoints: a committed write survives a crash
            // of the process; a power loss may lose the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(false);
        let mut pool = SqlitePoolOptions::new();
        pool = if in_memory {
            pool.max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            pool.max_connections(options.max_connections)
        };
        let pool = pool
            .acquire_timeout(options.acquire_timeout)
            // A SQLite connection is a file handle of this process: nothing can cut it,
            // so no ping (a round trip to the connection's worker thread) before use.
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(|e| Error::unavailable_from("cannot open the SQLite database", e))?;
        Ok(SqliteStore {
            engine: engine::Engine::open(pool, options, &MIGRATOR).await?,
        })
    }

    /// Re-encrypts every row that is not under the active key, online: in batches of
    /// [`SqlOptions::rotate_batch`] rows, each row rewritten only if it did not change
    /// since it was read (a concurrent writer's newer version is already under the
    /// active key). Returns how many rows it rewrote. A row under a key that is not
    /// configured fails the rotation with `InvalidRecord` naming the label.
    pub async fn rotate(&self) -> Result<u64> {
        self.engine.rotate().await
    }

    /// The keys in use.
    pub fn key_ring(&self) -> std::sync::Arc<KeyRing> {
        self.engine.key_ring()
    }

    /// Replaces the keys: later writes use the new active key, reads any configured key.
    pub fn set_key_ring(&self, keys: KeyRing) {
        self.engine.set_key_ring(keys);
    }

    /// The connection pool, for inspection and tests (reading raw rows).
    pub fn pool(&self) -> &sqlx::SqlitePool {
        self.engine.pool()
    }
}
