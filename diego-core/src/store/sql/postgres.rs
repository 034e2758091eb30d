//! `PostgresStore`: records in PostgreSQL, the distributed source of truth shared by
//! several BBS processes (one active, chosen with the [`Lock`](crate::lock::Lock) lease
//! row in the same database).

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::ConnectOptions as _;

use super::{KeyRing, SqlOptions};
use crate::error::{Error, Result};
use crate::models::validation::ValidationErrors;

// The engine is compiled once per backend, against this module's `Db`.
#[allow(clippy::duplicate_mod)]
#[path = "engine.rs"]
mod engine;

type Db = sqlx::Postgres;
type Backend = PostgresStore;

/// Transactions run at READ COMMITTED: every conditional write is one statement whose
/// `WHERE` is re-checked on the newest row version, so compare-and-swap holds.
const BEGIN_WRITE: &str = "BEGIN";
/// PostgreSQL runs writers concurrently (row locks).
const SERIALIZE_WRITES: bool = false;
/// A fenced write holds a shared lock on the lock row until it commits, so a takeover
/// (which updates the row) waits for it: no write with the old token commits after it.
const FENCE_LOCK_SUFFIX: &str = " FOR SHARE";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A pooled connection idle this long is pinged before it is used again.
const IDLE_PING_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Serialization failures, deadlocks, lost or refused connections, server shutdown,
/// too many connections, a pool that ran dry.
fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            matches!(
                c.as_ref(),
                "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300"
            ) || c.starts_with("08")
        }),
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        _ => false,
    }
}

/// The PostgreSQL store; also the [`Lock`](crate::lock::Lock) of the BBS processes that
/// share the database.
///
/// ```no_run
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use diego_core::store::{PostgresStore, Store, TaskFilter};
/// let store = PostgresStore::connect("postgres://diego@localhost:5432/diego").await.unwrap();
/// let tasks = store.tasks(&TaskFilter::default()).await.unwrap();
/// # });
/// ```
#[derive(Debug)]
pub struct PostgresStore {
    engine: engine::Engine,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`,
    /// or `?host=/socket/dir` for a unix socket) with default options, and creates or
    /// migrates the schema.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, None, SqlOptions::default()).await
    }

    /// Connects to `url`, keeping every table in the PostgreSQL schema `schema` when
    /// given (created when missing; letters, digits and `_` only, not starting with a
    /// digit) — several independent stores can share one database that way.
    pub async fn connect_with(
        url: &str,
        schema: Option<&str>,
        options: SqlOptions,
    ) -> Result<Self> {
        options.validate()?;
        let bad_url = |why: String| {
            let mut v = ValidationErrors::new();
            v.add("url", why);
            Error::from(v)
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(bad_url(
                "must start with postgres:// or postgresql://".into(),
            ));
        }
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|e| bad_url(format!("is not a PostgreSQL URL: {e}")))?;
        if let Some(schema) = schema {
            let valid = schema
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && schema.len() <= 63
                && schema
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                let mut v = ValidationErrors::new();
                v.add(
                    "schema",
                    "must be 1-63 ASCII letters, digits or _, not starting with a digit",
                );
                return Err(v.into());
            }
            let mut conn = connect
                .connect()
                .await
                .map_err(|e| Error::unavailable_from("cannot connect to PostgreSQL", e))?;
            let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&mut conn)
                .await;
            match created {
                Ok(_) => {}
                // Two processes creating the schema at once: PostgreSQL's IF NOT EXISTS
                // is not atomic, the loser gets a unique violation; the schema exists.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {}
                Err(e) => {
                    return Err(Error::unavailable_from(
                        format_args!("cannot create schema {schema}"),
                        e,
                    ))
                }
            }
            connect = connect.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // A connection that has been idle is pinged before use (it may have been
            // cut: a database restart, a proxy's idle timeout); one handed back a moment
            // ago is not, which saves a round trip on every statement under load. A
            // connection that died anyway fails its statement, which `run` retries
            // when its outcome is known.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_PING_AFTER {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(connect)
            .await
            .map_err(|e| Error::unavailable_from("cannot connect to PostgreSQL", e))?;
        Ok(PostgresStore {
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
    pub fn pool(&self) -> &sqlx::PgPool {
        self.engine.pool()
    }
}
