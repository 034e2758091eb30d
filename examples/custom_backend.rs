//! Bring your own container backend: `AuditedBackend` wraps the `ProcessBackend` and logs
//! every container created and destroyed, then proves itself with the garden
//! conformance suite — the same scenarios every backend in this repository passes.
//!
//! Run: `cargo run --example custom_backend`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use diego_garden::{
    Capabilities, Capacity, Container, ContainerBackend, ContainerSpec, ProcessBackend, Properties,
    Result,
};

/// A backend that records what it does, around any other backend.
#[derive(Debug)]
struct AuditedBackend<B> {
    inner: B,
    created: AtomicUsize,
    destroyed: AtomicUsize,
}

#[async_trait]
impl<B: ContainerBackend> ContainerBackend for AuditedBackend<B> {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>> {
        let handle = spec.handle.clone();
        let result = self.inner.create(spec).await;
        if result.is_ok() {
            self.created.fetch_add(1, Ordering::SeqCst);
            println!("audit: created {handle}");
        }
        result
    }

    async fn destroy(&self, handle: &str) -> Result<()> {
        let result = self.inner.destroy(handle).await;
        if result.is_ok() {
            self.destroyed.fetch_add(1, Ordering::SeqCst);
            println!("audit: destroyed {handle}");
        }
        result
    }

    async fn lookup(&self, handle: &str) -> Result<Arc<dyn Container>> {
        self.inner.lookup(handle).await
    }

    async fn containers(&self, filter: &Properties) -> Result<Vec<Arc<dyn Container>>> {
        self.inner.containers(filter).await
    }

    async fn capacity(&self) -> Result<Capacity> {
        self.inner.capacity().await
    }
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("custom-backend-{}", std::process::id()));
        let backend = AuditedBackend {
            inner: ProcessBackend::new(&dir)?,
            created: AtomicUsize::new(0),
            destroyed: AtomicUsize::new(0),
        };
        // Every scenario of the suite; each panics with what the backend got wrong.
        diego_garden::conformance::run_all(&backend).await;
        println!(
            "\nAuditedBackend passed the conformance suite: {} containers created, {} destroyed",
            backend.created.load(Ordering::SeqCst),
            backend.destroyed.load(Ordering::SeqCst)
        );
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    })
}
