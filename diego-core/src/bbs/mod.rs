//! The BBS: the source of truth and its rules, on a pluggable [`Store`].
//!
//! Every operation validates its request before anything is written, reads the records
//! it needs, decides the change by SPEC.md's rules, and writes it as one atomic batch with
//! compare-and-swap on the modification tags. A lost compare-and-swap is retried after a
//! fresh read, so a caller never sees a conflict caused by a concurrent valid write.
//! Events are emitted only after their write succeeded; writes to one process (or task)
//! are serialised in-process, so its events come in write order.
//!
//! Its operations are the traits of [`api`] ([`TaskApi`], [`DesiredLrpApi`],
//! [`ActualLrpApi`], [`EvacuationApi`], [`DomainApi`], [`CellApi`], [`EventApi`]; all
//! of them together: [`BbsApi`]), implemented here in the file of each resource; bring
//! them into scope with `use diego_core::prelude::*;`.
//!
//! The BBS never knows the auction or the cells: it talks to them through its outbound
//! contracts, each in a module of its own — [`AuctioneerClient`] ([`auctioneer_client`]),
//! [`RepClient`] ([`rep_client`]) — and delivers task callbacks through
//! [`CompletionCallback`] ([`completion_callback`]). A BBS built without one of them
//! gets a stand-in that fails or gives up (and the BBS logs it). The recording test
//! doubles of the three (`RecordingAuctioneer` below) come with feature `test-util`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use diego_core::bbs::auctioneer_client::RecordingAuctioneer;
//! use diego_core::prelude::*;
//! use diego_core::{Bbs, DesiredLrp, RunAction};
//!
//! let auctioneer = Arc::new(RecordingAuctioneer::new());
//! let bbs = Bbs::builder().auctioneer(auctioneer.clone()).build();
//! bbs.desire_lrp(DesiredLrp::new("web", "apps", "preloaded:cflinuxfs4", 2,
//!     RunAction::new("/app/server", "vcap"))).await?;
//! assert_eq!(bbs.actual_lrps(&Default::default()).await?.len(), 2);
//! assert_eq!(auctioneer.requested_indices().len(), 2); // both instances sent to the auction
//! # Ok::<(), diego_core::Error>(())
//! # }).unwrap();
//! ```

mod actual_lrps;
pub mod api;
pub mod auctioneer_client;
mod cells;
pub mod completion_callback;
mod convergence_ops;
mod desired_lrps;
mod evacuation;
pub mod rep_client;
mod tasks;
pub mod truncate;

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use api::{
    ActualLrpApi, BbsApi, CellApi, DesiredLrpApi, DomainApi, EvacuationApi, EventApi, TaskApi,
};
pub use auctioneer_client::{AuctioneerClient, LrpStartRequest, TaskStartRequest};
pub use completion_callback::CompletionCallback;
pub use rep_client::RepClient;

use auctioneer_client::NoAuctioneer;
use completion_callback::NoCallback;
use rep_client::NoRepClient;

use crate::error::{Error, Result};
use crate::events::{EventHub, EventStream, LagPolicy, LrpEvent, TaskEvent};
use crate::lock::Lock;
use crate::models::guid::CellId;
use crate::models::restart_policy::RestartCalculator;
use crate::store::{MemoryStore, Store, WriteBatch};
use crate::time::{Clock, SystemClock};

/// The BBS's settings; every number is Diego's default. Start from
/// [`BbsConfig::default`] and change what differs with the `with_*` setters (new
/// settings may come: the struct cannot be built field by field outside this crate).
///
/// ```
/// use std::time::Duration;
/// let config = diego_core::BbsConfig::default().with_cell_presence_ttl(Duration::from_secs(5));
/// assert_eq!(config.max_task_retries, 3);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BbsConfig {
    /// Rejections after which a task fails instead of going back to Pending (3).
    pub max_task_retries: i32,
    /// How long a cell presence lives without renewal (15 s).
    pub cell_presence_ttl: Duration,
    /// How far a subscriber may fall behind before it gets `Lagged` (1,024 events).
    pub event_buffer: usize,
    /// What a subscriber that falls behind gets.
    pub lag_policy: LagPolicy,
    /// Attempts of a retire (stop on the cell, or delete) before giving up (5).
    pub retire_attempts: usize,
    /// Compare-and-swap retries after a concurrent write before giving up (16).
    pub max_cas_retries: u32,
    /// The crash restart policy.
    pub restart: RestartCalculator,
}

impl Default for BbsConfig {
    fn default() -> Self {
        BbsConfig {
            max_task_retries: 3,
            cell_presence_ttl: Duration::from_secs(15),
            event_buffer: 1_024,
            lag_policy: LagPolicy::Signal,
            retire_attempts: 5,
            max_cas_retries: 16,
            restart: RestartCalculator::default(),
        }
    }
}

impl BbsConfig {
    /// With `max_task_retries`: rejections after which a task fails.
    #[must_use]
    pub fn with_max_task_retries(mut self, max_task_retries: i32) -> Self {
        self.max_task_retries = max_task_retries;
        self
    }

    /// With `cell_presence_ttl`: how long a cell presence lives without renewal.
    #[must_use]
    pub fn with_cell_presence_ttl(mut self, cell_presence_ttl: Duration) -> Self {
        self.cell_presence_ttl = cell_presence_ttl;
        self
    }

    /// With `event_buffer`: how far a subscriber may fall behind before it gets `Lagged`.
    #[must_use]
    pub fn with_event_buffer(mut self, event_buffer: usize) -> Self {
        self.event_buffer = event_buffer;
        self
    }

    /// With `lag_policy`: what a subscriber that falls behind gets.
    #[must_use]
    pub fn with_lag_policy(mut self, lag_policy: LagPolicy) -> Self {
        self.lag_policy = lag_policy;
        self
    }

    /// With `retire_attempts`: attempts of a retire before giving up.
    #[must_use]
    pub fn with_retire_attempts(mut self, retire_attempts: usize) -> Self {
        self.retire_attempts = retire_attempts;
        self
    }

    /// With `max_cas_retries`: compare-and-swap retries after a concurrent write.
    #[must_use]
    pub fn with_max_cas_retries(mut self, max_cas_retries: u32) -> Self {
        self.max_cas_retries = max_cas_retries;
        self
    }

    /// With `restart`: the crash restart policy.
    #[must_use]
    pub fn with_restart(mut self, restart: RestartCalculator) -> Self {
        self.restart = restart;
        self
    }
}

/// Builds a [`Bbs`]; every part has a default (memory store, system clock, and clients
/// that report "not configured").
#[derive(Debug, Default)]
pub struct BbsBuilder {
    store: Option<Arc<dyn Store>>,
    lock: Option<Arc<dyn Lock>>,
    clock: Option<Arc<dyn Clock>>,
    auctioneer: Option<Arc<dyn AuctioneerClient>>,
    rep_client: Option<Arc<dyn RepClient>>,
    callback: Option<Arc<dyn CompletionCallback>>,
    config: BbsConfig,
}

impl BbsBuilder {
    /// The store (default: a new [`MemoryStore`]).
    #[must_use]
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The lock the cells' presences are leases on (`cells/{cell_id}`). Default: the
    /// store's own ([`Store::own_lock`]); for a store without one, an in-process lock (a
    /// [`MemoryStore`]'s), which serves one BBS process only.
    #[must_use]
    pub fn lock(mut self, lock: Arc<dyn Lock>) -> Self {
        self.lock = Some(lock);
        self
    }

    /// The clock (default: [`SystemClock`]).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Where placement requests go.
    #[must_use]
    pub fn auctioneer(mut self, auctioneer: Arc<dyn AuctioneerClient>) -> Self {
        self.auctioneer = Some(auctioneer);
        self
    }

    /// How cells are reached.
    #[must_use]
    pub fn rep_client(mut self, rep_client: Arc<dyn RepClient>) -> Self {
        self.rep_client = Some(rep_client);
        self
    }

    /// How task completion callbacks are delivered.
    #[must_use]
    pub fn completion_callback(mut self, callback: Arc<dyn CompletionCallback>) -> Self {
        self.callback = Some(callback);
        self
    }

    /// The settings.
    #[must_use]
    pub fn config(mut self, config: BbsConfig) -> Self {
        self.config = config;
        self
    }

    /// The BBS.
    pub fn build(self) -> Bbs {
        let events = EventHub::new(self.config.event_buffer, self.config.lag_policy);
        let store: Arc<dyn Store> = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let lock = self
            .lock
            .or_else(|| store.clone().own_lock())
            .unwrap_or_else(|| Arc::new(MemoryStore::new()));
        Bbs {
            inner: Arc::new(Inner {
                store,
                lock,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                auctioneer: self.auctioneer.unwrap_or_else(|| Arc::new(NoAuctioneer)),
                rep_client: self.rep_client.unwrap_or_else(|| Arc::new(NoRepClient)),
                callback: self.callback.unwrap_or_else(|| Arc::new(NoCallback)),
                config: self.config,
                events,
                stripes: Stripes::new(1_024),
            }),
        }
    }
}

/// The in-process BBS. Cheap to clone (a handle).
#[derive(Clone, Debug)]
pub struct Bbs {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    lock: Arc<dyn Lock>,
    clock: Arc<dyn Clock>,
    auctioneer: Arc<dyn AuctioneerClient>,
    rep_client: Arc<dyn RepClient>,
    callback: Arc<dyn CompletionCallback>,
    config: BbsConfig,
    events: EventHub,
    stripes: Stripes,
}

/// In-process locks by record family, so writes to one process or task are serialised
/// and their events leave in write order. Correctness across processes comes from the
/// store's compare-and-swap, not from these.
#[derive(Debug)]
struct Stripes {
    locks: Vec<tokio::sync::Mutex<()>>,
}

impl Stripes {
    fn new(n: usize) -> Self {
        Stripes {
            locks: (0..n).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    async fn lock(&self, kind: u8, key: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let mut h = rustc_hash::FxHasher::default();
        kind.hash(&mut h);
        key.hash(&mut h);
        let i = (h.finish() as usize) % self.locks.len();
        self.locks[i].lock().await
    }
}

const PROCESS_STRIPE: u8 = 0;
const TASK_STRIPE: u8 = 1;

/// What one attempt of an operation decided: the writes, the events to emit after
/// they succeed, and the value to return.
struct Change<T> {
    batch: WriteBatch,
    lrp_events: Vec<LrpEvent>,
    task_events: Vec<TaskEvent>,
    value: T,
}

impl<T> Change<T> {
    fn none(value: T) -> Self {
        Change {
            batch: WriteBatch::new(),
            lrp_events: Vec::new(),
            task_events: Vec::new(),
            value,
        }
    }
}

/// Whether an error means "a concurrent write got there first": read again and retry.
pub(crate) fn is_cas_loss(e: &Error) -> bool {
    matches!(e, Error::ResourceConflict | Error::ResourceExists)
}

/// Runs `$attempt` (an expression evaluating to `Result<Change<T>>`, re-evaluated after a
/// fresh read) until its batch commits, retrying lost compare-and-swaps.
macro_rules! with_cas_retry {
    ($bbs:expr, $attempt:expr) => {{
        let mut tries: u32 = 0;
        loop {
            let change = $attempt?;
            match $bbs.commit(change).await {
                Err(e)
                    if $crate::bbs::is_cas_loss(&e)
                        && tries < $bbs.inner.config.max_cas_retries =>
                {
                    tries += 1;
                    tracing::debug!(
                        tries,
                        "compare-and-swap lost to a concurrent write; retrying"
                    );
                }
                other => break other,
            }
        }
    }};
}
pub(crate) use with_cas_retry;

impl Bbs {
    /// A builder with every part defaulted.
    #[must_use]
    pub fn builder() -> BbsBuilder {
        BbsBuilder::default()
    }

    /// A BBS on a memory store with default settings and no auctioneer, rep client or
    /// callback configured.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The lock the cells' presences are leases on.
    pub fn lock(&self) -> &Arc<dyn Lock> {
        &self.inner.lock
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The settings.
    pub fn config(&self) -> &BbsConfig {
        &self.inner.config
    }

    /// The event hub (for emitting from composed parts such as convergence).
    pub fn events(&self) -> &EventHub {
        &self.inner.events
    }

    /// The auctioneer client.
    pub fn auctioneer(&self) -> &Arc<dyn AuctioneerClient> {
        &self.inner.auctioneer
    }

    /// The rep client.
    pub fn rep_client(&self) -> &Arc<dyn RepClient> {
        &self.inner.rep_client
    }

    async fn commit<T>(&self, change: Change<T>) -> Result<T> {
        if !change.batch.is_empty() {
            self.inner.store.write(change.batch).await?;
        }
        self.inner.events.emit_lrp(change.lrp_events);
        self.inner.events.emit_task(change.task_events);
        Ok(change.value)
    }

    /// Sends LRP start requests, logging (not returning) a failure: convergence asks again.
    async fn request_lrp_auctions(&self, requests: Vec<LrpStartRequest>) {
        if requests.is_empty() {
            return;
        }
        if let Err(e) = self.inner.auctioneer.request_lrp_auctions(requests).await {
            tracing::warn!(error = %e, "failed to request LRP auctions; convergence will retry");
        }
    }

    /// Sends task start requests, logging (not returning) a failure.
    async fn request_task_auctions(&self, requests: Vec<TaskStartRequest>) {
        if requests.is_empty() {
            return;
        }
        if let Err(e) = self.inner.auctioneer.request_task_auctions(requests).await {
            tracing::warn!(error = %e, "failed to request task auctions; convergence will retry");
        }
    }
}

impl Default for Bbs {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl EventApi for Bbs {
    async fn subscribe_lrp_events(&self, cell_id: Option<CellId>) -> Result<EventStream<LrpEvent>> {
        Ok(self.events().subscribe_lrp(cell_id))
    }
    async fn subscribe_task_events(&self) -> Result<EventStream<TaskEvent>> {
        Ok(self.events().subscribe_task())
    }
}
