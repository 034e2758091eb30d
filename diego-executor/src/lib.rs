//! # diego-executor
//!
//! Diego's **cell**: the rep and the executor, the two agents every cell of a Diego
//! runs. The **rep** ([`Rep`], [`rep`]) is the cell's agent towards the BBS and the
//! auction: it registers the cell's presence, answers the auction's `state` and
//! `perform`, claims and starts the work it won, and reports what its containers do.
//! The **executor** ([`Executor`]) reserves containers against the cell's capacity,
//! creates them in any [`ContainerBackend`](diego_garden::ContainerBackend), runs their
//! action trees (every `Action` of `diego-core`, with Diego's exact failure texts) and
//! health checks, streams their logs to a [`LogSink`](diego_core::LogSink), and
//! publishes container events. The executor knows containers and action trees; Tasks
//! and LRPs are the rep's business.
//!
//! This crate is also where the parts are composed, since it is the only one that sees
//! them all:
//!
//! - [`Cluster`] ([`cluster`]): a whole Diego in one process (BBS, auction runner,
//!   converger, N cells); `local_cluster` (feature `local-cluster`) the README's
//!   local cluster behind the BBS HTTP API and the router.
//! - `http` (feature `http`): the rep's HTTP API and its clients, for cells in other
//!   processes.
//! - The `diego` command line (`src/bin/diego.rs`, feature `cli`): a client of a BBS's
//!   HTTP API, like Diego's cfdot.
//! - The daemons of a multi-machine deployment, `diego bbs` (BBS, auctioneer and
//!   converger behind the leader lock) and `diego cell` (a rep and an executor
//!   registered with the BBS): subcommands of the same binary over `daemon`
//!   (`src/daemon/`, feature `daemon`).
//!
//! Inside, the executor's parts live under `src/executor/` (steps, health checks,
//! downloads, the container lifecycle, its settings), the rep's under `src/rep/`; the
//! crate root re-exports what users need of both.
//!
//! ## Quick start
//!
//! ```
//! use std::sync::Arc;
//!
//! use diego_core::log_sink::RingBufferLogSink;
//! use diego_core::RunAction;
//! use diego_executor::{
//!     AllocationRequest, ContainerEvent, ContainerResource, Executor, LogConfig, RunRequest,
//! };
//! use diego_garden::FakeBackend;
//! use futures::StreamExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let logs = Arc::new(RingBufferLogSink::new(100));
//! let executor = Executor::builder(Arc::new(FakeBackend::new()))
//!     .log_sink(logs.clone())
//!     .build()
//!     .await?;
//! let mut events = executor.events();
//!
//! // Reserve, then run.
//! let failures = executor
//!     .allocate(vec![AllocationRequest::new("job-1", ContainerResource::new(128, 256))])
//!     .await;
//! assert!(failures.is_empty());
//! let mut request = RunRequest::new(
//!     RunAction::new("/bin/sh", "vcap").with_args(["-c", "echo hello; exit 3"]),
//! );
//! request.log_config = LogConfig::new("job-1").with_source_name("TASK");
//! executor.run("job-1", request).await?;
//!
//! // Wait for it to complete.
//! let done = loop {
//!     if let Some(ContainerEvent::Completed(container)) = events.next().await {
//!         break container;
//!     }
//! };
//! assert!(done.run_result.failed);
//! assert_eq!(done.run_result.failure_reason, "TASK: Exited with status 3");
//! let lines: Vec<String> = logs.lines("job-1").iter().map(|l| l.text().into_owned()).collect();
//! assert!(lines.contains(&"hello".to_string()));
//! assert!(lines.contains(&"Exit status 3".to_string()));
//!
//! executor.delete("job-1").await?; // frees its resources
//! assert_eq!(executor.remaining_resources(), executor.total_resources());
//! # Ok(()) }
//! ```
//!
//! ## The executor's parts
//!
//! - [`Executor`]: allocation, the container lifecycle (reserved → initializing →
//!   created → running → completed), events, delete, start-up cleanup and the reaper.
//! - [`RunRequest`]: what a container runs (action tree, setup, monitor or checks,
//!   environment, ports, sidecars, log configuration, result file).
//! - Health checks: the legacy monitor and declarative TCP/HTTP checks, run from the
//!   cell through a [`CheckProber`] ([`NetworkProber`] by default,
//!   [`FakeBackendProber`] for simulations).
//! - Downloads: HTTP(S) via reqwest and rustls, checksums, tar/tgz/zip, and a shared
//!   size-bounded LRU [`DownloadCache`].
//!
//! ## Behaviour worth knowing
//!
//! - Exit texts follow Diego: `"<source>: Exited with status N"` (+ `" (out of
//!   memory)"`), `"exceeded 5s timeout; cancelled"`, `"Codependent step exited"`,
//!   parallel errors joined with `"; "`; the app log gets `"Exit status N"`.
//! - Without checks a container is running as soon as its first process spawns; with
//!   checks, when they first pass. Readiness checks only flip `routable`.
//! - **(ours)** Declarative checks run from the cell against the container's address
//!   (Diego runs a binary inside the container); results and texts are the same.
//! - **(ours)** A cancelled `try` reports the cancellation (so a stopped tree stops);
//!   any other failure of its child is only logged, as in Diego.
//! - The download cache revalidates an entry with a conditional request (`ETag`,
//!   `Last-Modified`) on each use, as Diego does; an entry whose server sent neither is
//!   trusted until it is evicted.
//! - A stopped container completes with `stopped` set and `failed` with the tree's
//!   cancellation text; one stopped before it ran says `"stopped-before-running"`.
//!
//! ## Measured
//!
//! `cargo bench -p diego-benches --bench executor` (criterion, release, 2 cores,
//! FakeBackend, logs to a null sink):
//!
//! | what | time | rate |
//! |---|---|---|
//! | reserve → run `/bin/true` → complete → delete, 100 containers at once | 3.2 ms per 100 | ~31,000 containers/s (~32 µs each) |
//! | a serial of 100 run steps in one container | 1.33 ms | ~13 µs per run step (fake process spawn, output pumps, `Exit status` line included) |
//! | a serial of 100 × timeout(try(parallel(run))) | 1.15 ms | ~11.5 µs per nested step |
//!
//! `headline executor` (release, 2 cores) gives the same picture end to end: ~30,800
//! containers/s on the FakeBackend (10,000 containers, 100 at a time), ~17 µs per run
//! step (a serial of 1,000), and ~1,200 containers/s on the ProcessBackend (reserve →
//! create → run a real `/bin/true` → complete → delete, 4 at a time).

pub mod cluster;
#[cfg(feature = "daemon")]
pub mod daemon;
mod error;
mod executor;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "local-cluster")]
pub mod local_cluster;
pub mod rep;

pub use crate::cluster::{Cluster, ClusterBuilder, RepTransport};
pub use crate::error::{
    Error, Result, GUID_NOT_AVAILABLE, GUID_NOT_SPECIFIED, INSUFFICIENT_RESOURCES,
};
pub use crate::executor::config::{DownloadCacheConfig, ExecutorConfig, MAX_RESULT_FILE_BYTES};
pub use crate::executor::container::{
    AllocationFailure, AllocationRequest, Container, ContainerResource, ContainerState,
    PortMapping, Resources, RunResult, Tags,
};
pub use crate::executor::download::{
    ArchiveKind, CacheLease, CacheStats, Checksum, ChecksumAlgorithm, DownloadCache, Downloader,
    Validators,
};
pub use crate::executor::duration::{byte_size, go_duration};
pub use crate::executor::env::container_env;
pub use crate::executor::event::{ContainerEvent, ContainerEventStream};
pub use crate::executor::health::{
    CheckProber, FakeBackendProber, NetworkProber, ProbeFailure, ProbeTarget,
};
pub use crate::executor::log_streamer::{
    LogStreamer, SharedTags, DEFAULT_SOURCE_TYPE, MAX_LINE_BYTES,
};
pub use crate::executor::result_file::FAILED_TO_FETCH_RESULT;
pub use crate::executor::run_request::{InstanceIdentity, LogConfig, RunRequest};
pub use crate::executor::step::CODEPENDENT_STEP_EXITED;
pub use crate::executor::{
    Executor, ExecutorBuilder, TaggedContainerMetrics, EXPIRED_CONTAINER, MISSING_GARDEN_CONTAINER,
    OWNER_PROPERTY, STOPPED_BEFORE_RUNNING, TAG_PROPERTY_PREFIX,
};
pub use crate::rep::{LocalCellClient, LocalReps, Rep, RepConfig};

/// The fixture app (feature `fixture-app`).
#[cfg(feature = "fixture-app")]
pub mod fixture_app;
