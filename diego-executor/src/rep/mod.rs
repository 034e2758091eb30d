//! The rep: the cell's agent. It registers the cell's presence, answers the auction
//! (`state`, `perform`), turns won work into containers through the [`Executor`], keeps
//! the BBS told of what runs (claim, start, crash, remove, complete), reconciles
//! periodically so a restart loses nothing, and evacuates the cell on request.
//!
//! The rep knows Tasks and LRPs; the executor below it knows only containers.

mod clients;
mod evacuation;
mod perform;
mod reconcile;
mod tags;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diego_core::{BbsApi, CellCapacity, CellId, CellPresence, RootfsProviders};
use futures::StreamExt;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

pub use clients::{LocalCellClient, LocalReps};
pub use tags::{container_guid, LIFECYCLE_TAG};

use crate::Executor;
use diego_core::setter;

/// The rep's settings; every number is Diego's default.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RepConfig {
    /// The cell's id.
    pub cell_id: CellId,
    /// Availability zone.
    pub zone: String,
    /// Where the rep is reached (an in-process name, or `host:port` over HTTP).
    pub rep_address: String,
    /// The rep's URL when it serves HTTP.
    pub rep_url: String,
    /// Root filesystems the cell can run.
    pub rootfs_providers: RootfsProviders,
    /// Tags the cell always carries.
    pub placement_tags: Vec<String>,
    /// Tags the cell may carry.
    pub optional_placement_tags: Vec<String>,
    /// Volume drivers the cell offers.
    pub volume_drivers: Vec<String>,
    /// How often the presence is renewed (5 s; it lives 15 s).
    pub presence_renew_interval: Duration,
    /// How often containers are reconciled with the BBS (30 s).
    pub bulk_interval: Duration,
    /// How often an evacuating rep asks about its instances (10 s).
    pub evacuation_polling_interval: Duration,
    /// How long evacuation may take before the rep deletes what remains (600 s).
    pub evacuation_timeout: Duration,
    /// Memory reserved per LRP container for a proxy, in MB (0: none).
    pub proxy_memory_allocation_mb: i32,
}

impl RepConfig {
    /// Defaults for a cell named `cell_id` running `preloaded:cflinuxfs4` and docker images.
    pub fn new(cell_id: impl Into<CellId>) -> Self {
        let cell_id = cell_id.into();
        RepConfig {
            rep_address: format!("in-process:{cell_id}"),
            cell_id,
            zone: "z1".into(),
            rep_url: String::new(),
            rootfs_providers: RootfsProviders::preloaded_and_docker(&["cflinuxfs4"]),
            placement_tags: Vec::new(),
            optional_placement_tags: Vec::new(),
            volume_drivers: Vec::new(),
            presence_renew_interval: Duration::from_secs(5),
            bulk_interval: Duration::from_secs(30),
            evacuation_polling_interval: Duration::from_secs(10),
            evacuation_timeout: Duration::from_secs(600),
            proxy_memory_allocation_mb: 0,
        }
    }

    setter!(with_cell_id => cell_id: impl Into<CellId>);
    setter!(with_zone => zone: impl Into<String>);
    setter!(with_rep_address => rep_address: impl Into<String>);
    setter!(with_rep_url => rep_url: impl Into<String>);
    setter!(with_rootfs_providers => rootfs_providers: RootfsProviders);
    setter!(with_placement_tags => placement_tags: Vec<String>);
    setter!(with_optional_placement_tags => optional_placement_tags: Vec<String>);
    setter!(with_volume_drivers => volume_drivers: Vec<String>);
    setter!(with_presence_renew_interval => presence_renew_interval: Duration);
    setter!(with_bulk_interval => bulk_interval: Duration);
    setter!(with_evacuation_polling_interval => evacuation_polling_interval: Duration);
    setter!(with_evacuation_timeout => evacuation_timeout: Duration);
    setter!(with_proxy_memory_allocation_mb => proxy_memory_allocation_mb: i32);
}

/// The cell agent. Cheap to clone (a handle).
#[derive(Clone, Debug)]
pub struct Rep {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    bbs: Arc<dyn BbsApi>,
    executor: Executor,
    config: RepConfig,
    evacuating: AtomicBool,
    /// Bumped whenever the cell's state may have changed (the auction reuses an
    /// unchanged snapshot).
    version: AtomicU64,
    state_cache: Mutex<Option<(u64, Arc<diego_core::CellState>)>>,
}

impl Rep {
    /// A rep for `executor`, talking to `bbs`.
    pub fn new(bbs: Arc<dyn BbsApi>, executor: Executor, config: RepConfig) -> Self {
        Rep {
            inner: Arc::new(Inner {
                bbs,
                executor,
                config,
                evacuating: AtomicBool::new(false),
                version: AtomicU64::new(1),
                state_cache: Mutex::new(None),
            }),
        }
    }

    /// The cell's id.
    pub fn cell_id(&self) -> &CellId {
        &self.inner.config.cell_id
    }

    /// The executor below the rep.
    pub fn executor(&self) -> &Executor {
        &self.inner.executor
    }

    /// The settings.
    pub fn config(&self) -> &RepConfig {
        &self.inner.config
    }

    /// Whether the cell is evacuating (it takes no work).
    pub fn is_evacuating(&self) -> bool {
        self.inner.evacuating.load(Ordering::SeqCst)
    }

    fn touch(&self) {
        self.inner.version.fetch_add(1, Ordering::SeqCst);
    }

    /// The presence this rep registers.
    pub fn presence(&self) -> CellPresence {
        let c = &self.inner.config;
        let total = self.inner.executor.total_resources();
        CellPresence {
            cell_id: c.cell_id.clone(),
            rep_address: c.rep_address.clone(),
            rep_url: c.rep_url.clone(),
            zone: c.zone.clone(),
            capacity: CellCapacity {
                memory_mb: clamp(total.memory_mb),
                disk_mb: clamp(total.disk_mb),
                containers: clamp(total.containers),
            },
            rootfs_providers: c.rootfs_providers.clone(),
            placement_tags: c.placement_tags.clone(),
            optional_placement_tags: c.optional_placement_tags.clone(),
            volume_drivers: c.volume_drivers.clone(),
        }
    }

    /// Registers the presence now.
    pub async fn register(&self) -> diego_core::Result<()> {
        self.inner.bbs.register_cell(&self.presence()).await
    }

    /// Runs the rep until `cancel` fires: keeps the presence alive, follows container
    /// events, reconciles every `bulk_interval`. Containers are left running when it
    /// stops (a restarted rep picks them up).
    pub async fn run(&self, cancel: CancellationToken) {
        if let Err(e) = self.register().await {
            tracing::warn!(error = %e, cell_id = %self.cell_id(), "failed to register the cell");
        }
        let mut events = self.inner.executor.events();
        let mut presence = tokio::time::interval(self.inner.config.presence_renew_interval);
        presence.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut bulk = tokio::time::interval(self.inner.config.bulk_interval);
        bulk.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reaper = tokio::spawn({
            let executor = self.inner.executor.clone();
            let cancel = cancel.clone();
            async move { executor.run_reaper(cancel).await }
        });
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = presence.tick() => {
                    if let Err(e) = self.register().await {
                        tracing::warn!(error = %e, cell_id = %self.cell_id(), "failed to renew the cell presence");
                    }
                }
                _ = bulk.tick() => self.reconcile().await,
                event = events.next() => match event {
                    Some(event) => self.on_event(event).await,
                    None => break,
                },
            }
        }
        let _ = reaper.await;
    }
}

fn clamp(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
