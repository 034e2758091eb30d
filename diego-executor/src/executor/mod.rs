//! The executor: the [`Executor`] reserves containers against the cell's capacity,
//! creates them in a [`ContainerBackend`], runs their action trees and health checks,
//! publishes their events, and deletes them; start-up cleanup and the reaper keep it in
//! step with the backend.
//!
//! Its parts sit beside it, as in Diego's executor: the settings ([`config`]), the
//! container records ([`container`]) and their [`event`]s, what a container runs
//! ([`run_request`], [`env`]), the life of one container ([`lifecycle`]), the action
//! tree's steps ([`step`]), the health checks ([`health`]), downloads and their cache
//! ([`download`]), the log streamer ([`log_streamer`]), the result file
//! ([`result_file`]) and Go-style durations in messages ([`duration`]). The crate root
//! re-exports what users need of them.
//!
//! It knows containers and action trees; it must not know Tasks or LRPs (the rep does).

pub(crate) mod config;
pub(crate) mod container;
pub(crate) mod download;
pub(crate) mod duration;
pub(crate) mod env;
pub(crate) mod event;
pub(crate) mod health;
pub(crate) mod lifecycle;
pub(crate) mod log_streamer;
pub(crate) mod result_file;
pub(crate) mod run_request;
pub(crate) mod step;

use std::collections::HashMap;
use std::sync::Arc;

use diego_core::log_sink::TracingLogSink;
use diego_core::{Clock, LogSink, TokioClock};
use diego_garden::{ContainerBackend, ContainerSpec, NetIn, Properties, ResourceLimits};
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::config::ExecutorConfig;
use self::container::{
    AllocationFailure, AllocationRequest, Container, ContainerState, PortMapping, Resources,
    RunResult,
};
use self::download::{CacheStats, Downloader};
use self::event::{ContainerEvent, ContainerEventStream};
use self::health::{CheckProber, NetworkProber};
use self::log_streamer::{LogStreamer, SharedTags};
use self::run_request::RunRequest;
use self::step::StepSettings;
use crate::error::{Error, Result, GUID_NOT_AVAILABLE, GUID_NOT_SPECIFIED, INSUFFICIENT_RESOURCES};

/// The property naming the executor that owns a backend container.
pub const OWNER_PROPERTY: &str = "executor:owner";
/// Prefix of the properties carrying a container's tags (`tag:<key>`).
pub const TAG_PROPERTY_PREFIX: &str = "tag:";

/// Diego's text for a reservation never run in time.
pub const EXPIRED_CONTAINER: &str = "expired container";
/// Diego's text for a container stopped before it ran.
pub const STOPPED_BEFORE_RUNNING: &str = "stopped-before-running";
/// Diego's text for a container the backend lost.
pub const MISSING_GARDEN_CONTAINER: &str = "missing garden container";

const MIB: u64 = 1024 * 1024;

struct Entry {
    container: Container,
    /// Cancels the action tree and health checks.
    stop: CancellationToken,
    stopped: bool,
    done: watch::Sender<bool>,
    request: Option<Arc<RunRequest>>,
    /// The metric tags its lines and metrics carry.
    metric_tags: SharedTags,
}

/// One container's metrics with the tags Diego attaches to them (see
/// [`Executor::container_metrics`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TaggedContainerMetrics {
    /// The container.
    pub guid: String,
    /// Whose metrics they are: the log guid of its run request.
    pub source_id: String,
    /// The instance index of its run request.
    pub instance_index: i32,
    /// The container's metric tags now.
    pub tags: Arc<diego_core::LogTags>,
    /// What the backend measured.
    pub metrics: diego_garden::ContainerMetrics,
}

struct State {
    containers: HashMap<String, Entry>,
    remaining: Resources,
}

pub(crate) struct Inner {
    pub(crate) backend: Arc<dyn ContainerBackend>,
    pub(crate) config: ExecutorConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) log_sink: Arc<dyn LogSink>,
    pub(crate) prober: Arc<dyn CheckProber>,
    pub(crate) downloader: Arc<Downloader>,
    pub(crate) step_settings: Arc<StepSettings>,
    total: Resources,
    state: Mutex<State>,
    events: broadcast::Sender<ContainerEvent>,
}

/// Builds an [`Executor`]; see [`Executor::builder`].
pub struct ExecutorBuilder {
    backend: Arc<dyn ContainerBackend>,
    config: ExecutorConfig,
    clock: Option<Arc<dyn Clock>>,
    log_sink: Option<Arc<dyn LogSink>>,
    prober: Option<Arc<dyn CheckProber>>,
}

impl std::fmt::Debug for ExecutorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ExecutorBuilder {
    /// Sets the configuration (default: [`ExecutorConfig::default`]).
    #[must_use]
    pub fn config(mut self, config: ExecutorConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the clock for log timestamps (default: [`TokioClock`]).
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Sets where container and cell log lines go (default: [`TracingLogSink`]).
    #[must_use]
    pub fn log_sink(mut self, sink: Arc<dyn LogSink>) -> Self {
        self.log_sink = Some(sink);
        self
    }

    /// Sets how declarative checks reach containers (default: [`NetworkProber`]).
    #[must_use]
    pub fn prober(mut self, prober: Arc<dyn CheckProber>) -> Self {
        self.prober = Some(prober);
        self
    }

    /// Builds the executor: sizes it from the backend's capacity (unless configured),
    /// prepares the download cache, and destroys backend containers this owner left
    /// from an earlier run (only those).
    pub async fn build(self) -> Result<Executor> {
        let config = self.config;
        let total = match config.total_resources {
            Some(total) => total,
            None => {
                let capacity = self.backend.capacity().await?;
                Resources {
                    memory_mb: capacity.memory_bytes / MIB,
                    disk_mb: capacity.disk_bytes / MIB,
                    containers: capacity.max_containers,
                }
            }
        };
        let scratch = config.temp_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("diego-executor-{}", std::process::id()))
        });
        let downloader = Downloader::new(config.download_cache.as_ref(), scratch)
            .map_err(|e| Error::io("preparing the download directories", e))?;
        let owner: Properties = [(OWNER_PROPERTY.to_string(), config.owner_name.clone())]
            .into_iter()
            .collect();
        for leftover in self.backend.containers(&owner).await? {
            let handle = leftover.handle().to_string();
            tracing::info!(%handle, "destroying a container left by an earlier run");
            match self.backend.destroy(&handle).await {
                Ok(()) | Err(diego_garden::Error::ContainerNotFound { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        let step_settings = Arc::new(StepSettings {
            graceful_shutdown_interval: config.graceful_shutdown_interval,
            process_kill_wait: config.process_kill_wait,
            apply_action_user: config.apply_action_user,
        });
        let (events, _) = broadcast::channel(config.event_buffer.max(1));
        Ok(Executor {
            inner: Arc::new(Inner {
                backend: self.backend,
                clock: self.clock.unwrap_or_else(|| Arc::new(TokioClock::new())),
                log_sink: self.log_sink.unwrap_or_else(|| Arc::new(TracingLogSink)),
                prober: self
                    .prober
                    .unwrap_or_else(|| Arc::new(NetworkProber::new())),
                downloader: Arc::new(downloader),
                step_settings,
                total,
                state: Mutex::new(State {
                    containers: HashMap::new(),
                    remaining: total,
                }),
                events,
                config,
            }),
        })
    }
}

/// Runs containers for a cell (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("cell_id", &self.inner.config.cell_id)
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// A builder over `backend`.
    pub fn builder(backend: Arc<dyn ContainerBackend>) -> ExecutorBuilder {
        ExecutorBuilder {
            backend,
            config: ExecutorConfig::default(),
            clock: None,
            log_sink: None,
            prober: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ExecutorConfig {
        &self.inner.config
    }

    /// The cell's total resources.
    pub fn total_resources(&self) -> Resources {
        self.inner.total
    }

    /// What is not reserved.
    pub fn remaining_resources(&self) -> Resources {
        self.inner.state.lock().remaining
    }

    /// Counters of the shared download cache, when there is one.
    pub fn download_cache_stats(&self) -> Option<CacheStats> {
        self.inner.downloader.cache().map(|c| c.stats())
    }

    /// Container events from now on, in order.
    pub fn events(&self) -> ContainerEventStream {
        event::stream(self.inner.events.subscribe())
    }

    /// A snapshot of one container.
    pub fn get(&self, guid: &str) -> Result<Container> {
        self.inner
            .state
            .lock()
            .containers
            .get(guid)
            .map(|e| e.container.clone())
            .ok_or_else(|| Error::ContainerNotFound {
                guid: guid.to_string(),
            })
    }

    /// Snapshots of every container.
    pub fn list(&self) -> Vec<Container> {
        let mut out: Vec<Container> = self
            .inner
            .state
            .lock()
            .containers
            .values()
            .map(|e| e.container.clone())
            .collect();
        out.sort_by(|a, b| a.guid.cmp(&b.guid));
        out
    }

    /// Replaces the metric tags of container `guid` in place (Diego's `UpdateContainer`):
    /// its later log lines and metrics carry `tags`; nothing restarts.
    pub fn update_metric_tags(&self, guid: &str, tags: diego_core::LogTags) -> Result<()> {
        let mut state = self.inner.state.lock();
        let entry = state
            .containers
            .get_mut(guid)
            .ok_or_else(|| Error::ContainerNotFound {
                guid: guid.to_string(),
            })?;
        entry.metric_tags.set(tags);
        entry.container.metric_tags = entry.metric_tags.get();
        Ok(())
    }

    /// The backend's metrics of a created container, labelled as Diego labels container
    /// metrics: source id and index of its run request, and its metric tags.
    pub async fn container_metrics(&self, guid: &str) -> Result<TaggedContainerMetrics> {
        let (request, tags) = {
            let state = self.inner.state.lock();
            let entry = state
                .containers
                .get(guid)
                .ok_or_else(|| Error::ContainerNotFound {
                    guid: guid.to_string(),
                })?;
            (entry.request.clone(), entry.metric_tags.get())
        };
        let container = self.inner.backend.lookup(guid).await?;
        let metrics = container.metrics().await?;
        let (source_id, instance_index) = request.map_or((String::new(), 0), |r| {
            (r.log_config.guid.clone(), r.log_config.index)
        });
        Ok(TaggedContainerMetrics {
            guid: guid.to_string(),
            source_id,
            instance_index,
            tags,
            metrics,
        })
    }

    /// Reserves containers; returns the requests that could not be served, with Diego's
    /// reasons. A reservation not run within `reserved_expiration` completes as
    /// `"expired container"`.
    #[tracing::instrument(name = "executor.allocate", skip_all, fields(count = requests.len()))]
    pub async fn allocate(&self, requests: Vec<AllocationRequest>) -> Vec<AllocationFailure> {
        let now = self.inner.clock.now();
        let mut failures = Vec::new();
        let mut reserved = Vec::new();
        {
            let mut state = self.inner.state.lock();
            for request in requests {
                let reason = if request.guid.is_empty() {
                    Some(GUID_NOT_SPECIFIED)
                } else if state.containers.contains_key(&request.guid) {
                    Some(GUID_NOT_AVAILABLE)
                } else if !state.remaining.fits(&request.resource) {
                    Some(INSUFFICIENT_RESOURCES)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    failures.push(AllocationFailure {
                        request,
                        reason: reason.to_string(),
                    });
                    continue;
                }
                state.remaining.take(&request.resource);
                let container = Container::reserved(&request, now);
                let _ = self
                    .inner
                    .events
                    .send(ContainerEvent::Reserved(container.clone()));
                reserved.push(request.guid.clone());
                state.containers.insert(
                    request.guid,
                    Entry {
                        container,
                        stop: CancellationToken::new(),
                        stopped: false,
                        done: watch::channel(false).0,
                        request: None,
                        metric_tags: SharedTags::default(),
                    },
                );
            }
        }
        for guid in reserved {
            let inner = Arc::clone(&self.inner);
            let expiration = inner.config.reserved_expiration;
            tokio::spawn(async move {
                tokio::time::sleep(expiration).await;
                inner.expire(&guid);
            });
        }
        failures
    }

    /// Creates the reserved container `guid` in the backend and starts its run in the
    /// background. A creation failure completes the container with
    /// `"failed to create container: <err>"` and is returned too.
    pub async fn run(&self, guid: &str, request: RunRequest) -> Result<()> {
        let span = tracing::info_span!("executor.run", %guid);
        self.run_inner(guid, request).instrument(span).await
    }

    async fn run_inner(&self, guid: &str, request: RunRequest) -> Result<()> {
        if request.action.is_none() {
            return Err(Error::InvalidRequest {
                reason: diego_core::models::action::INVALID_ACTION_TYPE.to_string(),
            });
        }
        let (resource, tags, request, metric_tags) = {
            let mut state = self.inner.state.lock();
            let entry = state
                .containers
                .get_mut(guid)
                .ok_or_else(|| Error::ContainerNotFound {
                    guid: guid.to_string(),
                })?;
            if entry.container.state != ContainerState::Reserved {
                return Err(Error::InvalidTransition {
                    guid: guid.to_string(),
                    from: entry.container.state.to_string(),
                    to: ContainerState::Initializing.to_string(),
                });
            }
            entry.container.state = ContainerState::Initializing;
            entry.metric_tags.set(request.metric_tags.clone());
            entry.container.metric_tags = entry.metric_tags.get();
            let request = Arc::new(request);
            entry.request = Some(Arc::clone(&request));
            (
                entry.container.resource,
                entry.container.tags.clone(),
                request,
                entry.metric_tags.clone(),
            )
        };
        let cell = self.cell_streamer(&request, &metric_tags);
        let instance = request
            .instance
            .as_ref()
            .map_or(guid.to_string(), |i| i.guid.clone());
        let cell_id = &self.inner.config.cell_id;
        cell.out(format!(
            "Cell {cell_id} creating container for instance {instance}"
        ));

        let mut properties: Properties = tags
            .iter()
            .map(|(k, v)| (format!("{TAG_PROPERTY_PREFIX}{k}"), v.clone()))
            .collect();
        properties.insert(
            OWNER_PROPERTY.to_string(),
            self.inner.config.owner_name.clone(),
        );
        let nonzero = |n: u64| (n > 0).then_some(n);
        let spec = ContainerSpec {
            handle: guid.to_string(),
            rootfs: request.rootfs.clone(),
            env: Vec::new(),
            bind_mounts: Vec::new(),
            limits: ResourceLimits {
                memory_bytes: nonzero(resource.memory_mb * MIB),
                disk_bytes: nonzero(resource.disk_mb * MIB),
                pids: nonzero(resource.max_pids),
                cpu_weight: nonzero(request.cpu_weight),
                nofile: None,
            },
            net_in: request
                .ports
                .iter()
                .map(|&port| NetIn {
                    host_port: 0,
                    container_port: port,
                })
                .collect(),
            net_out: Vec::new(),
            properties,
        };
        let created = match self.inner.backend.create(spec).await {
            Ok(created) => created,
            Err(err) => {
                let reason = format!("failed to create container: {err}");
                cell.err(reason.clone());
                self.inner.complete(guid, failed(reason));
                return Err(Error::CreateFailed { source: err });
            }
        };
        let info = match created.info().await {
            Ok(info) => info,
            Err(err) => {
                let _ = self.inner.backend.destroy(guid).await;
                let reason = format!("failed to create container: {err}");
                self.inner.complete(guid, failed(reason));
                return Err(Error::CreateFailed { source: err });
            }
        };
        let ports: Vec<PortMapping> = request
            .ports
            .iter()
            .zip(info.mapped_ports.iter())
            .map(|(&asked, mapped)| PortMapping {
                container_port: asked,
                host_port: mapped.host_port,
                internal_port: mapped.container_port,
            })
            .collect();
        let stop = {
            let mut state = self.inner.state.lock();
            match state.containers.get_mut(guid) {
                None => None,
                Some(entry) => {
                    if entry.container.state != ContainerState::Initializing {
                        // Stopped meanwhile: it already completed; delete destroys it.
                        return Ok(());
                    }
                    entry.container.state = ContainerState::Created;
                    entry.container.external_ip.clone_from(&info.host_ip);
                    entry.container.internal_ip.clone_from(&info.container_ip);
                    entry.container.ports.clone_from(&ports);
                    Some(entry.stop.clone())
                }
            }
        };
        let Some(stop) = stop else {
            // Deleted while being created.
            let _ = self.inner.backend.destroy(guid).await;
            return Err(Error::ContainerNotFound {
                guid: guid.to_string(),
            });
        };
        cell.out(format!(
            "Cell {cell_id} successfully created container for instance {instance}"
        ));
        let inner = Arc::clone(&self.inner);
        let guid = guid.to_string();
        let span = tracing::info_span!("executor.container", guid = %guid);
        tokio::spawn(
            async move {
                let setup = lifecycle::Setup {
                    guid: guid.clone(),
                    container: created,
                    request,
                    external_ip: info.host_ip,
                    internal_ip: info.container_ip,
                    ports,
                    stop,
                    metric_tags,
                };
                let result = lifecycle::run(&inner, setup).await;
                inner.complete(&guid, result);
            }
            .instrument(span),
        );
        Ok(())
    }

    /// Stops a container: its processes get SIGTERM (SIGKILL after the graceful
    /// shutdown interval) and it completes with `stopped` set. A container that has not
    /// run yet completes as `"stopped-before-running"`. Returns once it completed.
    #[tracing::instrument(name = "executor.stop", skip(self))]
    pub async fn stop(&self, guid: &str) -> Result<()> {
        let mut done = {
            let mut state = self.inner.state.lock();
            let entry = state
                .containers
                .get_mut(guid)
                .ok_or_else(|| Error::ContainerNotFound {
                    guid: guid.to_string(),
                })?;
            entry.stopped = true;
            match entry.container.state {
                ContainerState::Completed => return Ok(()),
                ContainerState::Reserved | ContainerState::Initializing => {
                    drop(state);
                    self.inner.complete(
                        guid,
                        RunResult {
                            stopped: true,
                            ..failed(STOPPED_BEFORE_RUNNING.to_string())
                        },
                    );
                    return Ok(());
                }
                ContainerState::Created | ContainerState::Running => {}
            }
            entry.stop.cancel();
            entry.done.subscribe()
        };
        if let Some(request_log) = self.cell_log_for(guid) {
            request_log.0.out(format!(
                "Cell {} stopping instance {}",
                self.inner.config.cell_id, request_log.1
            ));
        }
        let _ = done.wait_for(|d| *d).await;
        Ok(())
    }

    /// Deletes a container: stops it if needed, destroys it in the backend and frees its
    /// resources.
    pub async fn delete(&self, guid: &str) -> Result<()> {
        let span = tracing::info_span!("executor.delete", %guid);
        async {
            let state_now = self.get(guid)?.state;
            if matches!(state_now, ContainerState::Created | ContainerState::Running) {
                self.stop(guid).await?;
            }
            let had_backend_container = state_now != ContainerState::Reserved;
            if had_backend_container {
                if let Some((cell, instance)) = self.cell_log_for(guid) {
                    cell.out(format!(
                        "Cell {} destroying container for instance {instance}",
                        self.inner.config.cell_id
                    ));
                }
                match self.inner.backend.destroy(guid).await {
                    Ok(()) | Err(diego_garden::Error::ContainerNotFound { .. }) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            let mut state = self.inner.state.lock();
            if let Some(entry) = state.containers.remove(guid) {
                entry.stop.cancel();
                entry.done.send_replace(true);
                state.remaining.give_back(&entry.container.resource);
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Compares the executor's view with the backend once: owned backend containers the
    /// executor does not know are destroyed; known created or running containers the
    /// backend lost complete as `"missing garden container"`.
    #[tracing::instrument(name = "executor.reap", skip(self))]
    pub async fn reap_once(&self) -> Result<()> {
        let owner: Properties = [(
            OWNER_PROPERTY.to_string(),
            self.inner.config.owner_name.clone(),
        )]
        .into_iter()
        .collect();
        let listed = self.inner.backend.containers(&owner).await?;
        let handles: std::collections::HashSet<String> =
            listed.iter().map(|c| c.handle().to_string()).collect();
        let (unknown, lost): (Vec<String>, Vec<String>) = {
            let state = self.inner.state.lock();
            let unknown = handles
                .iter()
                .filter(|h| !state.containers.contains_key(*h))
                .cloned()
                .collect();
            let lost = state
                .containers
                .iter()
                .filter(|(guid, e)| {
                    matches!(
                        e.container.state,
                        ContainerState::Created | ContainerState::Running
                    ) && !handles.contains(*guid)
                })
                .map(|(guid, _)| guid.clone())
                .collect();
            (unknown, lost)
        };
        for handle in unknown {
            tracing::info!(%handle, "reaping a container the executor does not know");
            match self.inner.backend.destroy(&handle).await {
                Ok(()) | Err(diego_garden::Error::ContainerNotFound { .. }) => {}
                Err(err) => tracing::warn!(%handle, error = %err, "reaping failed"),
            }
        }
        for guid in lost {
            tracing::warn!(%guid, "the backend lost a container");
            self.inner
                .complete(&guid, failed(MISSING_GARDEN_CONTAINER.to_string()));
            let state = self.inner.state.lock();
            if let Some(entry) = state.containers.get(&guid) {
                entry.stop.cancel();
            }
        }
        Ok(())
    }

    /// Runs [`reap_once`](Self::reap_once) every `reap_interval` until `cancel` fires.
    pub async fn run_reaper(&self, cancel: CancellationToken) {
        let interval = self.inner.config.reap_interval;
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = cancel.cancelled() => return,
            }
            if let Err(err) = self.reap_once().await {
                tracing::warn!(error = %err, "reaping failed");
            }
        }
    }

    fn cell_streamer(&self, request: &RunRequest, tags: &SharedTags) -> LogStreamer {
        LogStreamer::new(
            Arc::clone(&self.inner.log_sink),
            Arc::clone(&self.inner.clock),
            request.log_config.guid.clone(),
            "CELL",
            request.log_config.index,
        )
        .with_tags(tags.clone())
    }

    /// The cell log streamer and instance name of a container that has a run request.
    fn cell_log_for(&self, guid: &str) -> Option<(LogStreamer, String)> {
        let (request, tags) = self
            .inner
            .state
            .lock()
            .containers
            .get(guid)
            .and_then(|e| Some((e.request.clone()?, e.metric_tags.clone())))?;
        let instance = request
            .instance
            .as_ref()
            .map_or(guid.to_string(), |i| i.guid.clone());
        Some((self.cell_streamer(&request, &tags), instance))
    }
}

fn failed(reason: String) -> RunResult {
    RunResult {
        failed: true,
        failure_reason: reason,
        ..RunResult::default()
    }
}

impl Inner {
    fn expire(&self, guid: &str) {
        let reserved = self
            .state
            .lock()
            .containers
            .get(guid)
            .is_some_and(|e| e.container.state == ContainerState::Reserved);
        if reserved {
            self.complete(guid, failed(EXPIRED_CONTAINER.to_string()));
        }
    }

    /// Completes a container (once; later calls are ignored).
    pub(crate) fn complete(&self, guid: &str, mut result: RunResult) {
        let mut state = self.state.lock();
        let Some(entry) = state.containers.get_mut(guid) else {
            return;
        };
        if entry.container.state == ContainerState::Completed {
            return;
        }
        if entry.stopped {
            result.stopped = true;
        }
        entry.container.state = ContainerState::Completed;
        entry.container.routable = false;
        entry.container.run_result = result;
        let _ = self
            .events
            .send(ContainerEvent::Completed(entry.container.clone()));
        entry.done.send_replace(true);
    }

    /// Marks a created container running (once).
    pub(crate) fn mark_running(&self, guid: &str, routable: bool) {
        let mut state = self.state.lock();
        let Some(entry) = state.containers.get_mut(guid) else {
            return;
        };
        if entry.container.state != ContainerState::Created {
            return;
        }
        entry.container.state = ContainerState::Running;
        entry.container.routable = routable;
        let _ = self
            .events
            .send(ContainerEvent::Running(entry.container.clone()));
    }

    /// Records a readiness change of a running container.
    pub(crate) fn set_routable(&self, guid: &str, routable: bool) {
        let mut state = self.state.lock();
        let Some(entry) = state.containers.get_mut(guid) else {
            return;
        };
        if entry.container.state != ContainerState::Running || entry.container.routable == routable
        {
            return;
        }
        entry.container.routable = routable;
        let _ = self
            .events
            .send(ContainerEvent::RoutableChanged(entry.container.clone()));
    }
}
