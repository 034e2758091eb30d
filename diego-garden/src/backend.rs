//! The container backend contract: [`ContainerBackend`], [`Container`] and [`Process`].
//!
//! Object-safe `async_trait`s; callers hold `Arc<dyn ContainerBackend>`. This module knows
//! containers and processes only, never Tasks, LRPs or actions.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use crate::error::Result;
use crate::info::{
    Capabilities, Capacity, ContainerInfo, ContainerMetrics, ExitStatus, PortMapping, Signal,
};
use crate::spec::{ContainerSpec, ProcessSpec, Properties};

/// A stream of bytes: process output, or a tar archive for `stream_in`/`stream_out`.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send + 'static>>;

/// Creates, finds and destroys containers.
#[async_trait]
pub trait ContainerBackend: Send + Sync {
    /// What this backend enforces (the conformance suite tests exactly these).
    fn capabilities(&self) -> Capabilities;

    /// Creates a container. Fails with `HandleExists` for a handle in use and
    /// `InsufficientResources` when it does not fit in [`capacity`](Self::capacity).
    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>>;

    /// Ends every process of the container and removes it and everything it left.
    async fn destroy(&self, handle: &str) -> Result<()>;

    /// Finds a container by handle.
    async fn lookup(&self, handle: &str) -> Result<Arc<dyn Container>>;

    /// The containers whose properties include every `filter` entry (all when empty).
    async fn containers(&self, filter: &Properties) -> Result<Vec<Arc<dyn Container>>>;

    /// Total and allocated resources.
    async fn capacity(&self) -> Result<Capacity>;

    /// Info of several containers; an unknown handle maps to its own error.
    async fn bulk_info(
        &self,
        handles: &[String],
    ) -> Result<BTreeMap<String, Result<ContainerInfo>>> {
        let mut out = BTreeMap::new();
        for handle in handles {
            let info = match self.lookup(handle).await {
                Ok(container) => container.info().await,
                Err(err) => Err(err),
            };
            out.insert(handle.clone(), info);
        }
        Ok(out)
    }

    /// Metrics of several containers; an unknown handle maps to its own error.
    async fn bulk_metrics(
        &self,
        handles: &[String],
    ) -> Result<BTreeMap<String, Result<ContainerMetrics>>> {
        let mut out = BTreeMap::new();
        for handle in handles {
            let metrics = match self.lookup(handle).await {
                Ok(container) => container.metrics().await,
                Err(err) => Err(err),
            };
            out.insert(handle.clone(), metrics);
        }
        Ok(out)
    }
}

/// One container: runs processes, moves files in and out, maps ports.
///
/// Every operation on a destroyed container fails with `ContainerNotFound`.
#[async_trait]
pub trait Container: Send + Sync {
    /// The container's handle.
    fn handle(&self) -> &str;

    /// Starts a process. Its output is kept from the start, so the streams of the
    /// returned handle miss nothing.
    async fn run(&self, spec: ProcessSpec) -> Result<Arc<dyn Process>>;

    /// A new handle on a process started earlier (running or exited but not yet
    /// forgotten); `ProcessNotFound` otherwise.
    async fn attach(&self, process_id: &str) -> Result<Arc<dyn Process>>;

    /// Unpacks a tar archive into the directory `path` (a container path, created when
    /// missing). Paths resolve inside the container as its own processes see them: no
    /// link, `..` or entry name leads out of it, even one the container swaps in meanwhile;
    /// entries named with `..` are refused.
    async fn stream_in(&self, path: &str, tar: ByteStream) -> Result<()>;

    /// Packs the file or directory at `path` (a container path, resolved inside the
    /// container as for [`stream_in`](Self::stream_in)) as a tar archive whose single top
    /// entry is its base name. Links, FIFOs and devices are entries of their own, never
    /// followed or read.
    async fn stream_out(&self, path: &str) -> Result<ByteStream>;

    /// Maps a host port (0: any free one) to a container port; returns the mapping.
    async fn net_in(&self, host_port: u16, container_port: u16) -> Result<PortMapping>;

    /// The container's properties.
    async fn properties(&self) -> Result<Properties>;

    /// Sets one property.
    async fn set_property(&self, name: &str, value: &str) -> Result<()>;

    /// Removes one property (no error when absent).
    async fn remove_property(&self, name: &str) -> Result<()>;

    /// A snapshot of the container.
    async fn info(&self) -> Result<ContainerInfo>;

    /// Resource usage.
    async fn metrics(&self) -> Result<ContainerMetrics>;

    /// Ends every process (`kill`: at once; otherwise SIGTERM, then SIGKILL after the
    /// backend's grace period) and marks the container stopped. Returns once they ended.
    async fn stop(&self, kill: bool) -> Result<()>;
}

/// A process running (or having run) in a container.
#[async_trait]
pub trait Process: Send + Sync {
    /// The process id, unique in its container.
    fn id(&self) -> &str;

    /// Waits for the process to end. Any number of callers may wait.
    async fn wait(&self) -> Result<ExitStatus>;

    /// Sends a signal; no error when the process already ended.
    async fn signal(&self, signal: Signal) -> Result<()>;

    /// The process's standard output from its start, then live, until it ends.
    fn stdout(&self) -> ByteStream;

    /// The process's standard error from its start, then live, until it ends.
    fn stderr(&self) -> ByteStream;
}

/// Whether `properties` include every entry of `filter`.
pub fn properties_match(properties: &Properties, filter: &Properties) -> bool {
    filter
        .iter()
        .all(|(name, value)| properties.get(name) == Some(value))
}
