//! PostgresStore: the Store and Lock conformance suites, encryption at rest and key
//! rotation, against the PostgreSQL that `bash scripts/test.sh` starts (its URL in
//! `DIEGO_TEST_POSTGRES_URL`). Each test works in schemas of its own, so tests run in
//! parallel. Without the URL the tests fail, unless `DIEGO_SKIP_POSTGRES=1` says to skip.

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::sql_common;
use std::sync::Arc;

use async_trait::async_trait;
use diego_core::lock::{conformance as lock_conformance, Lock};
use diego_core::store::sql::{KeyRing, SqlOptions};
use diego_core::store::{conformance, PostgresStore, Store};
use sql_common::SqlUnderTest;

#[async_trait]
impl SqlUnderTest for PostgresStore {
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

/// The test server's URL, or `None` when skipping was asked for explicitly.
fn url() -> Option<String> {
    match std::env::var("DIEGO_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("DIEGO_SKIP_POSTGRES").as_deref() == Ok("1") => {
            // The README's test command starts PostgreSQL: there a skip is a failure.
            assert!(
                std::env::var_os("DIEGO_TESTS_REQUIRE_ALL").is_none()
                    && std::env::var_os("CI").is_none(),
                "DIEGO_SKIP_POSTGRES=1 under the test command or CI: the PostgreSQL tests must run"
            );
            eprintln!("not run: DIEGO_SKIP_POSTGRES=1");
            None
        }
        _ => panic!(
            "DIEGO_TEST_POSTGRES_URL is not set: run the tests with `bash scripts/test.sh`, \
             which starts a private PostgreSQL (or set DIEGO_SKIP_POSTGRES=1 to skip them)"
        ),
    }
}

/// A store in a fresh schema of its own.
async fn fresh(url: &str, options: SqlOptions) -> PostgresStore {
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    PostgresStore::connect_with(url, Some(&schema), options)
        .await
        .unwrap()
}

fn small() -> SqlOptions {
    SqlOptions::default().with_max_connections(4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_conforms() {
    let Some(url) = url() else { return };
    conformance::run_all(|| {
        let url = url.clone();
        async move { Arc::new(fresh(&url, small()).await) as Arc<dyn Store> }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lock_conforms() {
    let Some(url) = url() else { return };
    lock_conformance::run_all(|| {
        let url = url.clone();
        async move {
            let s = Arc::new(fresh(&url, small()).await);
            (s.clone() as Arc<dyn Store>, s as Arc<dyn Lock>)
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_schema_share_leases_and_fences() {
    let Some(url) = url() else { return };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let a = PostgresStore::connect_with(&url, Some(&schema), small())
        .await
        .unwrap();
    let b = PostgresStore::connect_with(&url, Some(&schema), small())
        .await
        .unwrap();
    // Two BBS processes on one database: the lock and the fences are shared.
    lock_conformance::takeover_after_expiry_fences_out_the_old_holder(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_and_rotation() {
    let Some(url) = url() else { return };
    let store = fresh(&url, small()).await;
    sql_common::encryption_and_rotation(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_is_online() {
    let Some(url) = url() else { return };
    let options = small().with_rotate_batch(7);
    sql_common::rotation_is_online(Arc::new(fresh(&url, options).await)).await;
}

#[tokio::test]
async fn bad_settings_name_the_field() {
    let Some(url) = url() else { return };
    let err = PostgresStore::connect_with(&url, Some("bad schema; drop"), small())
        .await
        .unwrap_err();
    assert!(
        err.validation_errors().unwrap().has_field("schema"),
        "{err}"
    );
    let err = PostgresStore::connect_with("mysql://x", None, small())
        .await
        .unwrap_err();
    assert!(err.validation_errors().unwrap().has_field("url"), "{err}");
    // Nothing listens on port 1: a clear Unavailable, not a hang or a panic.
    let quick = small().with_acquire_timeout(std::time::Duration::from_secs(2));
    let err = PostgresStore::connect_with("postgres://postgres@127.0.0.1:1/x", None, quick)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "Unavailable", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_does_not_fail_the_next_operations() {
    let Some(url) = url() else { return };
    let options = SqlOptions::default().with_max_connections(1);
    let store = fresh(&url, options).await;
    sql_common::write_fixtures(&store, "x").await;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    // The server ends the store's only connection (as a restart or a proxy would).
    let admin = PostgresStore::connect_with(&url, Some("t_admin"), small())
        .await
        .unwrap();
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(admin.pool())
        .await
        .unwrap();
    assert!(killed);
    assert_eq!(sql_common::read_all(&store).await, 5);
    sql_common::write_fixtures(&store, "y").await;
    assert_eq!(sql_common::read_all(&store).await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_processes_opening_one_new_schema_at_once_all_succeed() {
    let Some(url) = url() else { return };
    // What two `diego bbs` started together do: create the schema and migrate it at once.
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let opens = (0..6).map(|_| {
        let url = url.clone();
        let schema = schema.clone();
        tokio::spawn(async move { PostgresStore::connect_with(&url, Some(&schema), small()).await })
    });
    for open in futures::future::join_all(opens).await {
        open.unwrap().expect("every concurrent open succeeds");
    }
}
