//! # diego-auction
//!
//! Placement for diego-rs: which cell runs which work. Diego's auction
//! ([`DiegoStrategy`]), rival strategies to compare it with, and (feature `sim`) a
//! simulator with in-process cells.
//!
//! Placement is pure, synchronous and deterministic: a [`PlacementStrategy`] is handed
//! the cells' states and a batch of work and returns placements and per-item placement
//! errors (Diego's exact texts). It does no I/O and keeps no clock; randomness comes from
//! a seeded generator it owns. Fetching cell states and asking the winners to `perform`
//! the work is the caller's job: the async [`AuctionRunner`] (core's `AuctioneerClient`:
//! batching, cell state fetch through [`CellClient`]s, `perform`, retries of refused
//! work, failures reported to the BBS), or [`sim`] when the feature is on.
//!
//! This crate depends on `diego-core` only.
//!
//! ## Quick start
//!
//! ```
//! use std::sync::Arc;
//! use diego_auction::{AuctionBatch, DiegoStrategy, PlacementStrategy};
//! use diego_core::{CellCapacity, CellState, LrpStartRequest, PlacementConstraint, Resource,
//!     RootfsProviders};
//!
//! // Three cells in two zones.
//! let cell = |id: &str, zone: &str| Arc::new(CellState {
//!     cell_id: id.into(),
//!     zone: zone.into(),
//!     available_resources: CellCapacity { memory_mb: 4096, disk_mb: 8192, containers: 100 },
//!     total_resources: CellCapacity { memory_mb: 4096, disk_mb: 8192, containers: 100 },
//!     rootfs_providers: RootfsProviders::preloaded_and_docker(&["cflinuxfs4"]),
//!     ..Default::default()
//! });
//! let cells = vec![cell("cell-1", "z1"), cell("cell-2", "z1"), cell("cell-3", "z2")];
//!
//! // Four instances of one app, and one that cannot fit anywhere.
//! let request = |guid: &str, indices: Vec<i32>, memory_mb: i32| LrpStartRequest {
//!     process_guid: guid.into(),
//!     domain: "apps".into(),
//!     indices,
//!     resource: Resource { memory_mb, disk_mb: 512, max_pids: 0 },
//!     placement_constraint: PlacementConstraint {
//!         rootfs: "preloaded:cflinuxfs4".into(),
//!         ..Default::default()
//!     },
//! };
//! let batch = AuctionBatch::new()
//!     .with_lrp(request("web", vec![0, 1, 2, 3], 512))
//!     .with_lrp(request("huge", vec![0], 1 << 20));
//!
//! let mut diego = DiegoStrategy::default();
//! let results = diego.place(&cells, &batch);
//!
//! assert_eq!(results.lrps.len(), 4);
//! // Zones are balanced first (2 + 2), and no cell runs two instances unless it must.
//! let on = |id: &str| results.lrps.iter().filter(|p| p.cell_id == id).count();
//! assert_eq!(on("cell-1") + on("cell-2"), 2);
//! assert_eq!(on("cell-3"), 2);
//! assert_eq!(
//!     results.failed_lrps[0].error.to_string(),
//!     "insufficient resources: memory"
//! );
//! ```
//!
//! ## Strategies
//!
//! | strategy | idea |
//! |---|---|
//! | [`DiegoStrategy`] | Diego's auction score, zones balanced first, incremental index |
//! | [`DiegoStrategy::plain_scan`] | the same decisions computed Go's way (every cell, every time) |
//! | [`FirstFitStrategy`] | first compatible cell with room |
//! | [`BestFitStrategy`] | most allocated cell after placement (bin packing) |
//! | [`SpreadStrategy`] | least allocated cell after placement (Kubernetes' default) |
//! | [`PowerOfTwoStrategy`] | less allocated of two random cells |
//! | [`RandomStrategy`] | a random cell |
//! | [`KubernetesStrategy`] | filter + score over a sample of cells, as kube-scheduler |
//!
//! Every strategy applies the same filters (rootfs, volume drivers, placement tags),
//! capacity checks, in-flight limit, batch order and error texts ([`PlacementOptions`]).
//! They live in [`strategy`], one module each, beside the [`PlacementStrategy`] trait;
//! the crate root re-exports each one's types.
//!
//! Settings structs ([`DiegoConfig`], [`KubernetesConfig`], [`PlacementOptions`],
//! [`RunnerConfig`]) may gain fields: build them from `Default` with their `with_*`
//! setters (`DiegoConfig::default().with_seed(7)`).

pub mod error;
pub mod filter;
pub mod results;
pub mod runner;
#[cfg(feature = "sim")]
pub mod sim;
pub mod strategy;
pub mod work;

pub use error::{Error, Result, Shortfall};
pub use results::{AuctionResults, CellWork, FailedLrp, FailedTask, LrpPlacement, TaskPlacement};
pub use runner::{
    AuctionRunner, AuctionRunnerBuilder, CellClient, CellClientFactory, CellRegistry, RunnerConfig,
    Work,
};
pub use strategy::best_fit::BestFitStrategy;
pub use strategy::diego::{DiegoConfig, DiegoStrategy, TieBreak};
pub use strategy::first_fit::FirstFitStrategy;
pub use strategy::kubernetes::{KubernetesConfig, KubernetesStrategy};
pub use strategy::power_of_two::PowerOfTwoStrategy;
pub use strategy::random::RandomStrategy;
pub use strategy::spread::SpreadStrategy;
pub use strategy::{PlacementOptions, PlacementStrategy};
pub use work::AuctionBatch;
