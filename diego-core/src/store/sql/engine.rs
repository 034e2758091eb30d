//! The SQL store engine, compiled once per backend: the parent module (`sqlite.rs` or
//! `postgres.rs`) provides `Db`, `BEGIN_WRITE`, `FENCE_LOCK_SUFFIX`, `SERIALIZE_WRITES`,
//! `is_retryable` and
//! the public store type `Backend` (with a field `engine: Engine`). The SQL below is the
//! dialect both backends accept (`$n` parameters, `ON CONFLICT`, `RETURNING`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::RwLock;
use sqlx::Row as _;

use super::super::codec::{self, EncodedRow, KeyValue, RowKey, Table, DATA_COLUMNS};
use super::super::{KeyRing, RetryPolicy, SqlOptions};
use super::{is_retryable, Backend, Db, BEGIN_WRITE, FENCE_LOCK_SUFFIX, SERIALIZE_WRITES};
use crate::error::{Error, Result};
use crate::lock::{validate_acquire, Lease, Lock};
use crate::models::actual_lrp::ActualLrp;
use crate::models::desired_lrp::DesiredLrp;
use crate::models::domain::Domain;
use crate::models::guid::{CellId, ProcessGuid, TaskGuid};
use crate::models::task::Task;
use crate::store::{
    ActualLrpFilter, CellPresenceRecord, DesiredLrpFilter, Fence, Precondition, Store, TaskFilter,
    WriteBatch, WriteOp,
};
use crate::time::Timestamp;

type Pool = sqlx::Pool<Db>;
type Tx = sqlx::Transaction<'static, Db>;

/// Why one attempt failed.
enum Failure {
    /// A database error; retried when transient.
    Db(sqlx::Error),
    /// `COMMIT` failed: the outcome is unknown, so never retried.
    Commit(sqlx::Error),
    /// A definite answer (precondition, fence, decoding): returned as is.
    Domain(Error),
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Domain(e)
    }
}

/// The statements of one table.
#[derive(Debug)]
struct TableSql {
    insert: String,
    upsert: String,
    update_tagged: String,
    delete: String,
    delete_tagged: String,
    exists: String,
}

impl TableSql {
    fn new(table: Table) -> Self {
        let keys = table.key_columns();
        let name = table.name();
        let all: Vec<&str> = keys.iter().chain(DATA_COLUMNS.iter()).copied().collect();
        let params = |from: usize, n: usize| -> Vec<String> {
            (from..from + n).map(|i| format!("${i}")).collect()
        };
        let key_match = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ${}", i + 1))
            .collect::<Vec<_>>()
            .join(" AND ");
        let insert = format!(
            "INSERT INTO {name} ({}) VALUES ({})",
            all.join(", "),
            params(1, all.len()).join(", ")
        );
        let set_excluded = DATA_COLUMNS
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let set_params = DATA_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", keys.len() + i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let n = all.len();
        TableSql {
            upsert: format!(
                "{insert} ON CONFLICT ({}) DO UPDATE SET {set_excluded}",
                keys.join(", ")
            ),
            insert: format!("{insert} ON CONFLICT DO NOTHING"),
            update_tagged: format!(
                "UPDATE {name} SET {set_params} WHERE {key_match} AND tag_epoch = ${} AND tag_index = ${}",
                n + 1,
                n + 2
            ),
            delete: format!("DELETE FROM {name} WHERE {key_match}"),
            delete_tagged: format!(
                "DELETE FROM {name} WHERE {key_match} AND tag_epoch = ${} AND tag_index = ${}",
                keys.len() + 1,
                keys.len() + 2
            ),
            exists: format!("SELECT 1 FROM {name} WHERE {key_match}"),
        }
    }
}

/// One bound value of a dynamically built statement.
#[derive(Clone, Debug)]
enum Bind {
    Text(String),
    Int(i64),
}

/// A statement with its binds, numbered as they are added.
#[derive(Debug, Default)]
struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            binds: Vec::new(),
        }
    }

    /// Adds a bind and returns its placeholder.
    fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }
}

fn bind_key<'q>(
    mut q: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>,
    key: &RowKey,
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>> {
    for v in &key.values {
        q = match v {
            KeyValue::Text(s) => q.bind(s.clone()),
            KeyValue::Int(i) => q.bind(*i),
        };
    }
    q
}

fn bind_data<'q>(
    q: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>,
    row: &EncodedRow,
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>> {
    q.bind(row.domain.clone())
        .bind(row.cell_id.clone())
        .bind(row.tag_epoch.clone())
        .bind(row.tag_index)
        .bind(row.expires_at)
        .bind(row.key_label.clone())
        .bind(row.payload.clone())
}

/// An op of a batch, encoded before the transaction starts.
enum PreparedOp {
    Put(EncodedRow, Precondition),
    Delete(RowKey, Precondition),
}

/// The shared machinery of one SQL store.
#[derive(Debug)]
pub(super) struct Engine {
    pool: Pool,
    keys: RwLock<Arc<KeyRing>>,
    retry: RetryPolicy,
    rotate_batch: u32,
    tables: Vec<TableSql>,
    /// Queues this process's writers in order (FIFO) when the backend takes one writer
    /// at a time anyway (SQLite): they wait here instead of polling a busy database.
    write_gate: Option<tokio::sync::Mutex<()>>,
}

impl Engine {
    /// Runs the migrations on `pool` and wraps it.
    pub(super) async fn open(
        pool: Pool,
        options: SqlOptions,
        migrator: &sqlx::migrate::Migrator,
    ) -> Result<Self> {
        let engine = Engine {
            pool,
            keys: RwLock::new(Arc::new(options.keys)),
            retry: options.retry,
            rotate_batch: options.rotate_batch,
            tables: Table::ALL.iter().map(|t| TableSql::new(*t)).collect(),
            write_gate: SERIALIZE_WRITES.then(|| tokio::sync::Mutex::new(())),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match migrator.run(&engine.pool).await {
                Ok(()) => return Ok(engine),
                Err(sqlx::migrate::MigrateError::Execute(e))
                    if is_retryable(&e) && attempt < engine.retry.attempts =>
                {
                    tokio::time::sleep(engine.retry.backoff(attempt)).await;
                }
                Err(e) => {
                    return Err(Error::unavailable_from(
                        "cannot create the store's schema",
                        e,
                    ))
                }
            }
        }
    }

    /// Waits for this process's turn to write, when writes are serialised.
    pub(super) async fn writer_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        }
    }

    pub(super) fn pool(&self) -> &Pool {
        &self.pool
    }

    fn sql(&self, table: Table) -> &TableSql {
        let i = Table::ALL.iter().position(|t| *t == table).unwrap_or(0);
        &self.tables[i]
    }

    pub(super) fn key_ring(&self) -> Arc<KeyRing> {
        self.keys.read().clone()
    }

    pub(super) fn set_key_ring(&self, keys: KeyRing) {
        *self.keys.write() = Arc::new(keys);
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries run out.
    async fn run<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        let mut n = 0;
        loop {
            n += 1;
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(Failure::Domain(e)) => return Err(e),
                Err(Failure::Commit(e)) => {
                    return Err(Error::unavailable_from(
                        format_args!("{what}: the connection was lost, the outcome is unknown"),
                        e,
                    ))
                }
                Err(Failure::Db(e)) if is_retryable(&e) => {
                    if n >= self.retry.attempts {
                        return Err(Error::unavailable_from(
                            format_args!("{what}: gave up after {n} attempts"),
                            e,
                        ));
                    }
                    let wait = self.retry.backoff(n);
                    tracing::debug!(what, attempt = n, ?wait, error = %e, "retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(Failure::Db(e)) => return Err(Error::unavailable_from(what, e)),
            }
        }
    }

    /// `(key_label, payload)` of the rows a statement selects.
    async fn payloads(&self, what: &str, sql: &Sql) -> Result<Vec<(String, Vec<u8>)>> {
        let pool = &self.pool;
        self.run(what, || async move {
            let mut q = sqlx::query_as::<Db, (String, Vec<u8>)>(&sql.text);
            for b in &sql.binds {
                q = match b {
                    Bind::Text(s) => q.bind(s.clone()),
                    Bind::Int(i) => q.bind(*i),
                };
            }
            Ok(q.fetch_all(pool).await?)
        })
        .await
    }

    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
        sql: &Sql,
    ) -> Result<Vec<T>> {
        let rows = self.payloads(table.name(), sql).await?;
        let keys = self.key_ring();
        rows.iter()
            .map(|(label, payload)| codec::decode(table, &keys, label, payload))
            .collect()
    }

    async fn one<T: serde::de::DeserializeOwned>(
        &self,
        table: Table,
        key: &str,
    ) -> Result<Option<T>> {
        let column = table.key_columns()[0];
        let mut sql = Sql::new("");
        let p = sql.bind(Bind::Text(key.to_owned()));
        sql.text = format!(
            "SELECT key_label, payload FROM {} WHERE {column} = {p}",
            table.name()
        );
        Ok(self.list(table, &sql).await?.into_iter().next())
    }

    async fn write_batch(&self, batch: WriteBatch) -> Result<()> {
        if batch.ops.len() > 1 {
            let mut seen = std::collections::HashSet::with_capacity(batch.ops.len());
            for op in &batch.ops {
                if !seen.insert(op.key()) {
                    return Err(Error::BadRequest);
                }
            }
        }
        let keys = self.key_ring();
        let ops = batch
            .ops
            .into_iter()
            .map(|op| match op {
                WriteOp::Put {
                    record,
                    precondition,
                } => Ok(PreparedOp::Put(
                    codec::encode(&record, &keys)?,
                    precondition,
                )),
                WriteOp::Delete { key, precondition } => {
                    Ok(PreparedOp::Delete(RowKey::of(&key), precondition))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let fence = batch.fence;
        let (ops, fence) = (&ops, &fence);
        self.run("write", || async move {
            if fence.is_none() && ops.len() <= 1 {
                // One statement commits on its own: no transaction round trips. A
                // connection lost while it ran leaves its outcome unknown: not retried.
                let _turn = self.writer_turn().await;
                let mut conn = self.pool.acquire().await?;
                for op in ops {
                    self.apply(&mut conn, op).await.map_err(|f| match f {
                        Failure::Db(e @ sqlx::Error::Io(_)) => Failure::Commit(e),
                        other => other,
                    })?;
                }
                return Ok(());
            }
            let _turn = self.writer_turn().await;
            let mut tx: Tx = self.pool.begin_with(BEGIN_WRITE).await?;
            if let Some(fence) = fence {
                check_fence(&mut tx, fence).await?;
            }
            for op in ops {
                self.apply(&mut tx, op).await?;
            }
            tx.commit().await.map_err(Failure::Commit)
        })
        .await
    }

    async fn apply(
        &self,
        conn: &mut <Db as sqlx::Database>::Connection,
        op: &PreparedOp,
    ) -> std::result::Result<(), Failure> {
        match op {
            PreparedOp::Put(row, pre) => {
                let sql = self.sql(row.key.table);
                match pre {
                    Precondition::None => {
                        let q = bind_data(bind_key(sqlx::query(&sql.upsert), &row.key), row);
                        q.execute(&mut *conn).await?;
                    }
                    Precondition::Absent => {
                        let q = bind_data(bind_key(sqlx::query(&sql.insert), &row.key), row);
                        if q.execute(&mut *conn).await?.rows_affected() == 0 {
                            return Err(Error::ResourceExists.into());
                        }
                    }
                    Precondition::Tag(tag) => {
                        let q = bind_data(bind_key(sqlx::query(&sql.update_tagged), &row.key), row)
                            .bind(tag.epoch.clone())
                            .bind(i64::from(tag.index));
                        if q.execute(&mut *conn).await?.rows_affected() == 0 {
                            return Err(Error::ResourceConflict.into());
                        }
                    }
                }
            }
            PreparedOp::Delete(key, pre) => {
                let sql = self.sql(key.table);
                match pre {
                    Precondition::None => {
                        bind_key(sqlx::query(&sql.delete), key)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Precondition::Absent => {
                        let found = bind_key(sqlx::query(&sql.exists), key)
                            .fetch_optional(&mut *conn)
                            .await?;
                        if found.is_some() {
                            return Err(Error::ResourceExists.into());
                        }
                    }
                    Precondition::Tag(tag) => {
                        let q = bind_key(sqlx::query(&sql.delete_tagged), key)
                            .bind(tag.epoch.clone())
                            .bind(i64::from(tag.index));
                        if q.execute(&mut *conn).await?.rows_affected() == 0 {
                            return Err(Error::ResourceConflict.into());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Re-encrypts every row not under the active key; see the stores' `rotate`.
    pub(super) async fn rotate(&self) -> Result<u64> {
        let keys = self.key_ring();
        let active = keys.active_label().to_owned();
        let mut rewritten = 0u64;
        for table in Table::ALL {
            let key_cols = table.key_columns().join(", ");
            let select = format!(
                "SELECT {key_cols}, key_label, payload FROM {} WHERE key_label <> $1 LIMIT $2",
                table.name()
            );
            let key_match = table
                .key_columns()
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{k} = ${}", i + 3))
                .collect::<Vec<_>>()
                .join(" AND ");
            let n = table.key_columns().len();
            let update = format!(
                "UPDATE {} SET key_label = $1, payload = $2 WHERE {key_match} AND key_label = ${} AND payload = ${}",
                table.name(),
                n + 3,
                n + 4
            );
            loop {
                let (select, update, active, keys) = (&select, &update, &active, &keys);
                let done = self
                    .run("rotate", || async move {
                        let rows = sqlx::query(select)
                            .bind(active.clone())
                            .bind(i64::from(self.rotate_batch))
                            .fetch_all(&self.pool)
                            .await?;
                        if rows.is_empty() {
                            return Ok(None);
                        }
                        let _turn = self.writer_turn().await;
                        let mut tx: Tx = self.pool.begin_with(BEGIN_WRITE).await?;
                        let mut count = 0u64;
                        for row in &rows {
                            let mut values = Vec::with_capacity(n);
                            for (i, col) in table.key_columns().iter().enumerate() {
                                values.push(if table == Table::ActualLrps && i > 0 {
                                    KeyValue::Int(row.try_get::<i64, _>(i)?)
                                } else {
                                    KeyValue::Text(row.try_get::<String, _>(*col)?)
                                });
                            }
                            let label: String = row.try_get("key_label")?;
                            let payload: Vec<u8> = row.try_get("payload")?;
                            let plain = keys
                                .decrypt(&label, &payload)
                                .map_err(|e| codec::in_table(table, e))?;
                            let (new_label, sealed) = keys.encrypt(&plain)?;
                            let key = RowKey { table, values };
                            let q = sqlx::query(update).bind(new_label).bind(sealed);
                            let q = bind_key(q, &key).bind(label).bind(payload);
                            count += q.execute(&mut *tx).await?.rows_affected();
                        }
                        tx.commit().await.map_err(Failure::Commit)?;
                        Ok(Some(count))
                    })
                    .await?;
                match done {
                    Some(count) => rewritten += count,
                    None => break,
                }
            }
        }
        Ok(rewritten)
    }
}

async fn check_fence(tx: &mut Tx, fence: &Fence) -> std::result::Result<(), Failure> {
    let sql = format!("SELECT token FROM locks WHERE name = $1{FENCE_LOCK_SUFFIX}");
    let token: Option<i64> = sqlx::query_scalar(&sql)
        .bind(fence.lock.clone())
        .fetch_optional(&mut **tx)
        .await?;
    if token.and_then(|t| u64::try_from(t).ok()) == Some(fence.token) {
        Ok(())
    } else {
        Err(Error::FenceLost {
            lock: fence.lock.clone(),
            token: fence.token,
        }
        .into())
    }
}

fn filter_sql(table: Table, conditions: &[String], order: &str) -> String {
    let mut text = format!("SELECT key_label, payload FROM {}", table.name());
    if !conditions.is_empty() {
        text.push_str(" WHERE ");
        text.push_str(&conditions.join(" AND "));
    }
    text.push_str(" ORDER BY ");
    text.push_str(order);
    text
}

fn token_of(t: i64) -> Result<u64> {
    u64::try_from(t)
        .map_err(|_| Error::invalid_record(format!("locks: negative fencing token {t}")))
}

#[async_trait]
impl Store for Backend {
    async fn task(&self, guid: &TaskGuid) -> Result<Option<Task>> {
        self.engine.one(Table::Tasks, guid.as_ref()).await
    }

    async fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let mut sql = Sql::default();
        let mut cond = Vec::new();
        if let Some(d) = &filter.domain {
            cond.push(format!("domain = {}", sql.bind(Bind::Text(d.clone()))));
        }
        if let Some(c) = &filter.cell_id {
            cond.push(format!("cell_id = {}", sql.bind(Bind::Text(c.to_string()))));
        }
        sql.text = filter_sql(Table::Tasks, &cond, "guid");
        self.engine.list(Table::Tasks, &sql).await
    }

    async fn desired_lrp(&self, process_guid: &ProcessGuid) -> Result<Option<DesiredLrp>> {
        self.engine
            .one(Table::DesiredLrps, process_guid.as_ref())
            .await
    }

    async fn desired_lrps(&self, filter: &DesiredLrpFilter) -> Result<Vec<DesiredLrp>> {
        let mut sql = Sql::default();
        let mut cond = Vec::new();
        if let Some(d) = &filter.domain {
            cond.push(format!("domain = {}", sql.bind(Bind::Text(d.clone()))));
        }
        if !filter.process_guids.is_empty() {
            let list: Vec<String> = filter
                .process_guids
                .iter()
                .map(|g| sql.bind(Bind::Text(g.to_string())))
                .collect();
            cond.push(format!("process_guid IN ({})", list.join(", ")));
        }
        sql.text = filter_sql(Table::DesiredLrps, &cond, "process_guid");
        self.engine.list(Table::DesiredLrps, &sql).await
    }

    async fn actual_lrps(&self, filter: &ActualLrpFilter) -> Result<Vec<Arc<ActualLrp>>> {
        let mut sql = Sql::default();
        let mut cond = Vec::new();
        if let Some(p) = &filter.process_guid {
            cond.push(format!(
                "process_guid = {}",
                sql.bind(Bind::Text(p.to_string()))
            ));
        }
        if let Some(i) = filter.index {
            cond.push(format!("idx = {}", sql.bind(Bind::Int(i64::from(i)))));
        }
        if let Some(c) = &filter.cell_id {
            cond.push(format!("cell_id = {}", sql.bind(Bind::Text(c.to_string()))));
        }
        if let Some(d) = &filter.domain {
            cond.push(format!("domain = {}", sql.bind(Bind::Text(d.clone()))));
        }
        sql.text = filter_sql(Table::ActualLrps, &cond, "process_guid, idx, presence");
        let rows: Vec<ActualLrp> = self.engine.list(Table::ActualLrps, &sql).await?;
        Ok(rows.into_iter().map(Arc::new).collect())
    }

    async fn domains(&self) -> Result<Vec<Domain>> {
        let sql = Sql::new(&filter_sql(Table::Domains, &[], "name"));
        self.engine.list(Table::Domains, &sql).await
    }

    async fn cell_presences(&self) -> Result<Vec<CellPresenceRecord>> {
        let sql = Sql::new(&filter_sql(Table::CellPresences, &[], "id"));
        self.engine.list(Table::CellPresences, &sql).await
    }

    async fn cell_presence(&self, cell_id: &CellId) -> Result<Option<CellPresenceRecord>> {
        self.engine
            .one(Table::CellPresences, cell_id.as_ref())
            .await
    }

    async fn write(&self, batch: WriteBatch) -> Result<()> {
        self.engine.write_batch(batch).await
    }

    fn own_lock(self: Arc<Self>) -> Option<Arc<dyn Lock>> {
        Some(self)
    }
}

#[async_trait]
impl Lock for Backend {
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Option<Lease>> {
        validate_acquire(name, owner, ttl)?;
        let expires_at = now + ttl;
        let pool = self.engine.pool();
        let engine = &self.engine;
        let token: Option<i64> = self
            .engine
            .run("acquire lock", || async move {
                let _turn = engine.writer_turn().await;
                Ok(sqlx::query_scalar(
                    "INSERT INTO locks (name, owner, token, expires_at) VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (name) DO UPDATE SET \
                       token = CASE WHEN locks.owner = excluded.owner THEN locks.token ELSE locks.token + 1 END, \
                       owner = excluded.owner, \
                       expires_at = excluded.expires_at \
                     WHERE locks.owner = excluded.owner OR locks.owner = '' OR locks.expires_at <= $4 \
                     RETURNING token",
                )
                .bind(name.to_owned())
                .bind(owner.to_owned())
                .bind(expires_at.unix_nanos())
                .bind(now.unix_nanos())
                .fetch_optional(pool)
                .await?)
            })
            .await?;
        token
            .map(|t| {
                Ok(Lease {
                    name: name.to_owned(),
                    owner: owner.to_owned(),
                    token: token_of(t)?,
                    expires_at,
                })
            })
            .transpose()
    }

    async fn release(&self, name: &str, owner: &str) -> Result<bool> {
        let pool = self.engine.pool();
        let engine = &self.engine;
        let done = self
            .engine
            .run("release lock", || async move {
                let _turn = engine.writer_turn().await;
                Ok(sqlx::query(
                    "UPDATE locks SET owner = '', expires_at = 0 \
                     WHERE name = $1 AND owner = $2 AND owner <> ''",
                )
                .bind(name.to_owned())
                .bind(owner.to_owned())
                .execute(pool)
                .await?
                .rows_affected())
            })
            .await?;
        Ok(done > 0)
    }

    async fn holder(&self, name: &str) -> Result<Option<Lease>> {
        let pool = self.engine.pool();
        let row: Option<(String, i64, i64)> = self
            .engine
            .run("read lock", || async move {
                Ok(sqlx::query_as(
                    "SELECT owner, token, expires_at FROM locks WHERE name = $1 AND owner <> ''",
                )
                .bind(name.to_owned())
                .fetch_optional(pool)
                .await?)
            })
            .await?;
        row.map(|(owner, token, expires_at)| {
            Ok(Lease {
                name: name.to_owned(),
                owner,
                token: token_of(token)?,
                expires_at: Timestamp(expires_at),
            })
        })
        .transpose()
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<Lease>> {
        let pool = self.engine.pool();
        // `substr` rather than LIKE: a prefix may hold `%` or `_`.
        let length = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
        let rows: Vec<(String, String, i64, i64)> = self
            .engine
            .run("list locks", || async move {
                Ok(sqlx::query_as(
                    "SELECT name, owner, token, expires_at FROM locks \
                     WHERE owner <> '' AND substr(name, 1, $2) = $1 ORDER BY name",
                )
                .bind(prefix.to_owned())
                .bind(length)
                .fetch_all(pool)
                .await?)
            })
            .await?;
        rows.into_iter()
            .map(|(name, owner, token, expires_at)| {
                Ok(Lease {
                    name,
                    owner,
                    token: token_of(token)?,
                    expires_at: Timestamp(expires_at),
                })
            })
            .collect()
    }
}
