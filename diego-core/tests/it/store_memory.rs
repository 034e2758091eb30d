//! MemoryStore runs the whole Store conformance suite.

use std::sync::Arc;

use diego_core::store::{conformance, MemoryStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    conformance::run_all(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_lock_conforms() {
    diego_core::lock::conformance::run_all(|| async {
        let s = Arc::new(MemoryStore::new());
        (
            s.clone() as Arc<dyn Store>,
            s as Arc<dyn diego_core::lock::Lock>,
        )
    })
    .await;
}
