//! # diego-core
//!
//! The domain and the rules of a Diego-like scheduler: the models (Tasks, DesiredLRPs,
//! ActualLRPs, cells, actions, health checks, routes), their validation, the error type
//! and the injected clock. The BBS, its `Store`, events and convergence build on these.
//!
//! This crate depends on no other diego crate: it knows the domain, not how containers
//! run or where work is placed.
//!
//! ## Where things are
//!
//! - [`models`]: Diego's models and their validation; every type is re-exported here.
//! - [`bbs`]: the BBS ([`Bbs`], [`BbsApi`]) and its outbound contracts
//!   ([`bbs::auctioneer_client`], [`bbs::rep_client`], [`bbs::completion_callback`]).
//! - [`store`], [`events`], [`convergence`], [`lock`], [`log_sink`], [`time`], [`error`],
//!   [`request_id`]: what the BBS and its neighbours build on.
//! - [`routing`]: the [`Router`](routing::Router) plug-in point and the route emitter,
//!   with no HTTP stack; feature `router`: the default router and its proxies
//!   ([`router`]); feature `http`: the BBS over HTTP ([`http`]).
//!
//! ## Quick start
//!
//! Describe an LRP, validate it, and look at its stable JSON shape:
//!
//! ```
//! use diego_core::{Action, DesiredLrp, RunAction, Routes, Validate};
//!
//! let mut lrp = DesiredLrp::new(
//!     "web",                      // process guid
//!     "apps",                     // domain
//!     "preloaded:cflinuxfs4",     // rootfs
//!     3,                          // instances
//!     RunAction::new("/app/server", "vcap").with_args(["--port", "8080"]),
//! );
//! lrp.scheduling_info.routes = Routes::http(&["demo.localhost"], 8080);
//! lrp.run_info.ports = vec![8080];
//! assert!(lrp.validate().is_ok());
//!
//! let json = serde_json::to_value(&lrp).unwrap();
//! assert_eq!(json["action"]["run"]["path"], "/app/server");
//!
//! // Every violated field is reported at once, with its full path.
//! lrp.scheduling_info.instances = -1;
//! lrp.run_info.action = Some(Action::serial([RunAction::new("", "vcap").into()]));
//! let err = lrp.validate().unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "Invalid field: instances (must be >= 0), \
//!      Invalid field: action.serial.actions[0].run.path (must not be empty)"
//! );
//! ```
//!
//! ## JSON shape
//!
//! Fields are snake_case; actions are externally tagged objects (`{"run": {...}}`);
//! durations are milliseconds with the unit in the field name (`timeout_ms`); timestamps
//! are Unix nanoseconds; states use Diego's names (`"Pending"`, `"UNCLAIMED"`,
//! `"ORDINARY"`). Unknown fields are rejected. The fixtures under `tests/fixtures/` show
//! one Task and one DesiredLRP with every field set.
//!
//! ## Stores and the leader lock
//!
//! The BBS keeps its records in a [`Store`]: [`MemoryStore`] by default; with feature
//! `sqlite`, [`store::SqliteStore`] (one durable file); with feature `postgres`,
//! [`store::PostgresStore`] (shared by several BBS processes). The SQL stores encrypt
//! payloads at rest when given a [`store::sql::KeyRing`]. Several BBS processes pick the
//! active one with a [`Lock`] lease; the lock is a choice of its own, by default the
//! store's ([`Store::own_lock`]: every store here has one). The holder builds its BBS on
//! a [`store::FencedStore`] carrying its lease's fence, so it cannot write once another
//! process has taken the lock over.
//!
//! ## The BBS's operations
//!
//! [`Bbs`] (in process) and `http::BbsClient` (over HTTP) implement the same traits, one
//! per resource ([`TaskApi`], [`DesiredLrpApi`], [`ActualLrpApi`], [`EvacuationApi`],
//! [`DomainApi`], [`CellApi`], [`EventApi`]); [`BbsApi`] is all of them, for an
//! `Arc<dyn BbsApi>`. `use diego_core::prelude::*;` brings them into scope.

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub mod bbs;
pub mod convergence;
pub mod error;
pub mod events;
#[cfg(feature = "http")]
pub mod http;
pub mod lock;
pub mod log_sink;
pub mod models;
pub mod prelude;
pub mod request_id;
#[cfg(feature = "router")]
pub mod router;
pub mod routing;
mod setters;
pub mod store;
pub mod time;

pub use bbs::{
    ActualLrpApi, AuctioneerClient, Bbs, BbsApi, BbsBuilder, BbsConfig, CellApi,
    CompletionCallback, DesiredLrpApi, DomainApi, EvacuationApi, EventApi, LrpStartRequest,
    RepClient, TaskApi, TaskStartRequest,
};
pub use convergence::{ConvergenceConfig, ConvergenceReport, Converger};
pub use error::{Error, Result};
pub use events::{EventItem, EventStream, LrpEvent, TaskEvent};
pub use lock::{Lease, Lock};
pub use log_sink::{LogLine, LogSink, LogStream, LogTags};
pub use models::{
    Action, ActualLrp, ActualLrpInstanceKey, ActualLrpKey, ActualLrpNetInfo, ActualLrpState,
    CellCapacity, CellId, CellPresence, CellState, Check, CheckDefinition, CodependentAction,
    DesireTaskRequest, DesiredLrp, DesiredLrpKey, DesiredLrpUpdate, Domain, DownloadAction,
    DynamicMetricTag, EgressRule, EmitProgressAction, EnvironmentVariable, FieldError, HttpCheck,
    HttpRoute, IcmpInfo, InstanceGuid, LogRateLimit, LrpSummary, MetricTagValue, MetricTags,
    ModificationTag, Network, ParallelAction, PlacementConstraint, PortMapping, PortRange,
    PreferredAddress, Presence, ProcessGuid, Resource, ResourceLimits, RestartCalculator,
    RootfsProviders, Routes, RunAction, RunInfo, SchedulingInfo, SerialAction, SharedDevice,
    Sidecar, Task, TaskDefinition, TaskGuid, TaskState, TaskSummary, TcpCheck, TcpRoute,
    TimeoutAction, TryAction, UpdateStrategy, UploadAction, Validate, ValidationErrors,
    VolumeMount, VolumePlacement,
};
pub use store::{MemoryStore, Store};
pub use time::{Clock, ManualClock, SystemClock, Timestamp, TokioClock};
