//! Container backends for diego-rs.
//!
//! This crate knows containers and processes only: it must not know Tasks, LRPs or
//! actions (those belong to `diego-core` and `diego-executor`).
//!
//! # Quick start
//!
//! ```
//! use diego_garden::{ContainerBackend, ContainerSpec, ProcessBackend, ProcessSpec};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Host processes in a private directory per container; no root needed.
//! let dir = std::env::temp_dir().join(format!("garden-doc-{}", std::process::id()));
//! let backend = ProcessBackend::new(&dir)?;
//!
//! let container = backend
//!     .create(ContainerSpec::new("hello").env("GREETING", "hi"))
//!     .await?;
//! let process = container
//!     .run(ProcessSpec::shell("echo $GREETING from $NAME; exit 3").env("NAME", "garden"))
//!     .await?;
//! let status = process.wait().await?;
//! let output = diego_garden::collect(process.stdout()).await?;
//! assert_eq!(status.code, 3);
//! assert_eq!(&output[..], b"hi from garden\n");
//!
//! backend.destroy("hello").await?; // ends its processes and removes its directory
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```
//!
//! # The parts
//!
//! - [`ContainerBackend`], [`Container`], [`Process`]: the contract (object-safe).
//! - [`ProcessBackend`]: host processes, one directory per container (the default).
//! - [`LinuxBackend`]: namespaces, cgroups and an own root filesystem (root, Linux); the
//!   host's network, or a bridged one ([`NetworkMode`]) with `net_in` by DNAT.
//! - [`FakeBackend`]: simulated containers for tests and simulations.
//! - `conformance` (feature `test-util`): the scenarios every backend passes; run them
//!   against your own backend too.

mod backend;
mod error;
mod fake_backend;
mod host;
mod info;
mod linux_backend;
mod output;
mod process_backend;
mod spec;

#[cfg(feature = "test-util")]
pub mod conformance;

pub use crate::backend::{properties_match, ByteStream, Container, ContainerBackend, Process};
pub use crate::error::{BoxError, Error, Result};
pub use crate::fake_backend::{FakeBackend, FakeOperation, FakeProgram, FakeScript, FakeStep};
pub use crate::info::{
    Capabilities, Capacity, ContainerInfo, ContainerMetrics, ContainerState, ExitStatus,
    PortMapping, Signal, OUT_OF_MEMORY_EVENT,
};
pub use crate::linux_backend::{BridgeNetwork, LinuxBackend, LinuxBackendConfig, NetworkMode};
pub use crate::output::collect;
pub use crate::process_backend::{ProcessBackend, ProcessBackendConfig};
pub use crate::spec::{
    merged_env, validate_handle, BindMount, ContainerSpec, NetIn, NetOutRule, ProcessLimits,
    ProcessSpec, Properties, Protocol, ResourceLimits,
};
