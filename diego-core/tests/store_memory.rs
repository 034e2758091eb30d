//! MemoryStore runs the whole Store conformance suite.

use std::sync::Arc;

use diego_core::store::{conformance, MemoryStore, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    conformance::run_all(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> }).await;
}
