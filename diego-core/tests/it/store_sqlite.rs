//! SqliteStore: the Store and Lock conformance suites (in memory and on a file), durability
//! across a reopen, encryption at rest and key rotation.

#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::sql_common;
use std::sync::Arc;

use async_trait::async_trait;
use diego_core::lock::{conformance as lock_conformance, Lock};
use diego_core::store::sql::{KeyRing, SqlOptions};
use diego_core::store::{conformance, SqliteStore, Store, TaskFilter};
use sql_common::SqlUnderTest;

#[async_trait]
impl SqlUnderTest for SqliteStore {
    async fn raw(&self, table: &str) -> Vec<(String, Vec<u8>)> {
        sqlx::query_as(&format!("SELECT key_label, payload FROM {table}"))
            .fetch_all(self.pool())
            .await
            .unwrap()
    }
    fn set_keys(&self, keys: KeyRing) {
        self.set_key_ring(keys);
    }
    async fn rotate_keys(&self) -> diego_core::Result<u64> {
        self.rotate().await
    }
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("diego-sqlite-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_store_conforms() {
    conformance::run_all(|| async {
        Arc::new(SqliteStore::in_memory().await.unwrap()) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_conforms() {
    let dir = temp_dir();
    let n = std::sync::atomic::AtomicUsize::new(0);
    conformance::run_all(|| {
        let path = dir.join(format!(
            "s{}.db",
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        async move { Arc::new(SqliteStore::open(path).await.unwrap()) as Arc<dyn Store> }
    })
    .await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_lock_conforms() {
    let dir = temp_dir();
    let n = std::sync::atomic::AtomicUsize::new(0);
    lock_conformance::run_all(|| {
        let path = dir.join(format!(
            "l{}.db",
            n.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        async move {
            let s = Arc::new(SqliteStore::open(path).await.unwrap());
            (s.clone() as Arc<dyn Store>, s as Arc<dyn Lock>)
        }
    })
    .await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_lock_conforms() {
    lock_conformance::run_all(|| async {
        let s = Arc::new(SqliteStore::in_memory().await.unwrap());
        (s.clone() as Arc<dyn Store>, s as Arc<dyn Lock>)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_leases_survive_a_reopen() {
    let dir = temp_dir();
    let path = dir.join("state.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        sql_common::write_fixtures(&store, "x").await;
        let lease = store
            .acquire(
                "bbs",
                "a",
                std::time::Duration::from_secs(15),
                diego_core::Timestamp(1),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lease.token, 1);
        store.pool().close().await;
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(sql_common::read_all(&store).await, 5);
    assert_eq!(store.holder("bbs").await.unwrap().unwrap().owner, "a");
    // Two stores on one file (two processes would do the same) share leases and records.
    let other = SqliteStore::open(&path).await.unwrap();
    assert!(other
        .acquire(
            "bbs",
            "b",
            std::time::Duration::from_secs(15),
            diego_core::Timestamp(2)
        )
        .await
        .unwrap()
        .is_none());
    assert_eq!(other.tasks(&TaskFilter::default()).await.unwrap().len(), 1);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    drop((store, other));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_and_rotation() {
    let dir = temp_dir();
    let store = SqliteStore::open(dir.join("enc.db")).await.unwrap();
    sql_common::encryption_and_rotation(&store).await;
    // The keys are the process's: a reopen with only key B reads everything.
    drop(store);
    let keys = sql_common::ring(vec![sql_common::key_b()], "key-b");
    let store = SqliteStore::open_with(dir.join("enc.db"), SqlOptions::with_keys(keys))
        .await
        .unwrap();
    assert_eq!(sql_common::read_all(&store).await, 15);
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_is_online() {
    let dir = temp_dir();
    let options = SqlOptions::default().with_rotate_batch(7);
    let store = Arc::new(
        SqliteStore::open_with(dir.join("rot.db"), options)
            .await
            .unwrap(),
    );
    sql_common::rotation_is_online(store).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn bad_options_name_the_field() {
    let options = SqlOptions::default().with_max_connections(0);
    let err = SqliteStore::in_memory_with(options).await.unwrap_err();
    assert!(
        err.validation_errors()
            .unwrap()
            .has_field("max_connections"),
        "{err}"
    );
    let err = SqliteStore::open("/nonexistent-dir/x/y.db")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "Unavailable", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_run_out_into_a_clear_error_then_the_store_recovers() {
    use diego_core::store::sql::RetryPolicy;
    let options = SqlOptions::default()
        .with_acquire_timeout(std::time::Duration::from_millis(50))
        .with_retry(
            RetryPolicy::default()
                .with_attempts(3)
                .with_initial_backoff(std::time::Duration::from_millis(1))
                .with_max_backoff(std::time::Duration::from_millis(5)),
        );
    let store = SqliteStore::in_memory_with(options).await.unwrap();
    // Hold the only connection: every attempt times out waiting for the pool.
    let held = store.pool().acquire().await.unwrap();
    let err = store.tasks(&TaskFilter::default()).await.unwrap_err();
    assert_eq!(err.kind(), "Unavailable", "{err}");
    assert!(
        err.to_string().contains("gave up after 3 attempts"),
        "{err}"
    );
    drop(held);
    assert!(store
        .tasks(&TaskFilter::default())
        .await
        .unwrap()
        .is_empty());
}
