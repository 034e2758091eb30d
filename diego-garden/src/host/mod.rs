//! What the backends that run real host processes share: the container registry,
//! capacity accounting, port leases, process tables, files in and out, stop and destroy.
//!
//! How a container is isolated (a plain directory, or namespaces and cgroups) is the
//! [`Isolation`] a backend plugs in; this module knows nothing of namespaces.

pub(crate) mod archive;
pub(crate) mod ports;
pub(crate) mod process;
pub(crate) mod root;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nix::sys::signal::Signal as NixSignal;

use self::ports::PortPool;
use self::process::{HostProcess, OomProbe, SignalTarget};
use crate::backend::{properties_match, ByteStream, Container, ContainerBackend, Process};
use crate::error::{Error, Result};
use crate::info::{
    Capabilities, Capacity, ContainerInfo, ContainerMetrics, ContainerState, PortMapping,
    OUT_OF_MEMORY_EVENT,
};
use crate::spec::{merged_env, ContainerSpec, ProcessSpec, Properties, ResourceLimits};

/// Exited processes a container remembers for `attach` (the oldest are forgotten).
const EXITED_PROCESSES_KEPT: usize = 64;

/// How long `destroy` waits for a killed process to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(10);

/// Resource usage read from the host.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    pub(crate) memory_bytes: u64,
    pub(crate) cpu_time: Duration,
}

/// How a host backend isolates a container. Blocking methods run on the blocking pool.
pub(crate) trait Isolation: Send + Sync + 'static {
    /// Per-container state (directories, mounts, cgroups).
    type Sandbox: Send + Sync + 'static;

    /// What this isolation enforces.
    fn capabilities(&self) -> Capabilities;

    /// Prepares a container in `dir` (blocking). On failure it leaves nothing behind.
    fn create(&self, spec: &ContainerSpec, dir: &Path) -> Result<Self::Sandbox>;

    /// The host directory that container path `/` maps to. Paths below it are the
    /// container's: they are only ever reached through a [`root::ContainerRoot`].
    fn root<'a>(&self, sandbox: &'a Self::Sandbox) -> &'a Path;

    /// The command that starts `spec` in the container, with working dir `dir` (a
    /// container path that exists).
    fn command(
        &self,
        sandbox: &Self::Sandbox,
        spec: &ProcessSpec,
        env: &[(String, String)],
        dir: &str,
        limits: &ResourceLimits,
    ) -> Result<tokio::process::Command>;

    /// How the started processes take signals.
    fn signal_target(&self) -> SignalTarget;

    /// Kills every process left in the container, tracked or not (blocking).
    fn kill_all(&self, sandbox: &Self::Sandbox);

    /// Removes everything the container left on the host (blocking).
    fn destroy(&self, sandbox: &Self::Sandbox) -> Result<()>;

    /// Memory and CPU used by the container; `pids` are its tracked live processes.
    fn usage(&self, sandbox: &Self::Sandbox, pids: &[i32]) -> Usage;

    /// Bytes the container wrote to disk.
    fn disk_bytes(&self, sandbox: &Self::Sandbox) -> u64;

    /// How many processes of the container the kernel killed for memory so far.
    fn oom_kills(&self, sandbox: &Self::Sandbox) -> u64;

    /// The container's own IP, when it has a network of its own (`None`: the host's).
    fn container_ip(&self, _sandbox: &Self::Sandbox) -> Option<String> {
        None
    }

    /// Forwards the leased `host_port` to `container_port` of a container with a network
    /// of its own (blocking); returns the port the process must listen on. Called only
    /// when [`container_ip`](Self::container_ip) is `Some`.
    fn map_port(
        &self,
        _sandbox: &Self::Sandbox,
        host_port: u16,
        _container_port: u16,
    ) -> Result<u16> {
        Ok(host_port)
    }

    /// Bytes (received, sent) on the container's own network; zero on the host's.
    fn traffic(&self, _sandbox: &Self::Sandbox) -> (u64, u64) {
        (0, 0)
    }
}

/// Settings every host backend has.
#[derive(Debug, Clone)]
pub(crate) struct HostSettings {
    pub(crate) containers_dir: PathBuf,
    pub(crate) memory_bytes: u64,
    pub(crate) disk_bytes: u64,
    pub(crate) max_containers: u64,
    pub(crate) port_range: std::ops::RangeInclusive<u16>,
    pub(crate) stop_grace: Duration,
    pub(crate) host_ip: String,
}

/// The `with_` setters of the settings every host backend's config shares with
/// [`HostSettings`] (`memory_bytes`, `disk_bytes`, `max_containers`, `port_range`,
/// `stop_grace`, `host_ip`), written once for `ProcessBackendConfig` and
/// `LinuxBackendConfig`: invoke it inside the config's `impl`.
macro_rules! host_settings_setters {
    () => {
        /// Sets the memory offered to containers (default: the host's total).
        #[must_use]
        pub fn with_memory_bytes(mut self, bytes: u64) -> Self {
            self.memory_bytes = Some(bytes);
            self
        }

        /// Sets the disk offered to containers (default: the size of the filesystem of
        /// `containers_dir`).
        #[must_use]
        pub fn with_disk_bytes(mut self, bytes: u64) -> Self {
            self.disk_bytes = Some(bytes);
            self
        }

        /// Sets the most containers at once.
        #[must_use]
        pub fn with_max_containers(mut self, max: u64) -> Self {
            self.max_containers = max;
            self
        }

        /// Sets the host ports `net_in` leases from.
        #[must_use]
        pub fn with_port_range(mut self, ports: std::ops::RangeInclusive<u16>) -> Self {
            self.port_range = ports;
            self
        }

        /// Sets how long `stop(false)` waits after SIGTERM before SIGKILL.
        #[must_use]
        pub fn with_stop_grace(mut self, grace: std::time::Duration) -> Self {
            self.stop_grace = grace;
            self
        }

        /// Sets the IP reported as the host's (see the `host_ip` field).
        #[must_use]
        pub fn with_host_ip(mut self, ip: impl Into<String>) -> Self {
            self.host_ip = ip.into();
            self
        }
    };
}

pub(crate) use host_settings_setters;

/// Total memory of the host, in bytes (0 when unreadable).
pub(crate) fn host_memory_bytes() -> u64 {
    use procfs::Current;
    procfs::Meminfo::current().map(|m| m.mem_total).unwrap_or(0)
}

/// Space of the filesystem holding `dir`, in bytes (0 when unreadable).
pub(crate) fn filesystem_bytes(dir: &Path) -> u64 {
    nix::sys::statvfs::statvfs(dir)
        .map(|s| s.blocks().saturating_mul(s.fragment_size()))
        .unwrap_or(0)
}

enum Slot<I: Isolation> {
    /// Being created or destroyed: the handle is taken but not visible.
    Busy,
    Ready(Arc<HostContainer<I>>),
}

struct Shared<I: Isolation> {
    isolation: I,
    settings: HostSettings,
    containers: Mutex<HashMap<String, Slot<I>>>,
    allocated: Mutex<(u64, u64)>,
    ports: PortPool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<I: Isolation> Shared<I> {
    fn release(&self, limits: &ResourceLimits) {
        let mut allocated = lock(&self.allocated);
        allocated.0 = allocated.0.saturating_sub(limits.memory_bytes.unwrap_or(0));
        allocated.1 = allocated.1.saturating_sub(limits.disk_bytes.unwrap_or(0));
    }
}

impl<I: Isolation> Drop for Shared<I> {
    fn drop(&mut self) {
        // The backend is gone: end and remove what it still had (best effort, blocking).
        let containers = std::mem::take(&mut *lock(&self.containers));
        for slot in containers.into_values() {
            if let Slot::Ready(container) = slot {
                let processes: Vec<Arc<HostProcess>> =
                    container.state().processes.values().cloned().collect();
                for process in &processes {
                    process.send(NixSignal::SIGKILL);
                }
                self.isolation.kill_all(&container.sandbox);
                if let Err(err) = self.isolation.destroy(&container.sandbox) {
                    tracing::warn!(handle = %container.handle, error = %err, "cleaning up a container failed");
                }
            }
        }
    }
}

/// Implements [`ContainerBackend`] for a public backend that wraps a [`HostBackend`] in
/// its `inner` field, passing every call through.
macro_rules! delegate_container_backend {
    ($backend:ty) => {
        #[async_trait::async_trait]
        impl $crate::backend::ContainerBackend for $backend {
            fn capabilities(&self) -> $crate::info::Capabilities {
                self.inner.capabilities()
            }

            async fn create(
                &self,
                spec: $crate::spec::ContainerSpec,
            ) -> $crate::error::Result<std::sync::Arc<dyn $crate::backend::Container>> {
                self.inner.create(spec).await
            }

            async fn destroy(&self, handle: &str) -> $crate::error::Result<()> {
                self.inner.destroy(handle).await
            }

            async fn lookup(
                &self,
                handle: &str,
            ) -> $crate::error::Result<std::sync::Arc<dyn $crate::backend::Container>> {
                self.inner.lookup(handle).await
            }

            async fn containers(
                &self,
                filter: &$crate::spec::Properties,
            ) -> $crate::error::Result<Vec<std::sync::Arc<dyn $crate::backend::Container>>> {
                self.inner.containers(filter).await
            }

            async fn capacity(&self) -> $crate::error::Result<$crate::info::Capacity> {
                self.inner.capacity().await
            }

            async fn bulk_info(
                &self,
                handles: &[String],
            ) -> $crate::error::Result<
                std::collections::BTreeMap<
                    String,
                    $crate::error::Result<$crate::info::ContainerInfo>,
                >,
            > {
                self.inner.bulk_info(handles).await
            }

            async fn bulk_metrics(
                &self,
                handles: &[String],
            ) -> $crate::error::Result<
                std::collections::BTreeMap<
                    String,
                    $crate::error::Result<$crate::info::ContainerMetrics>,
                >,
            > {
                self.inner.bulk_metrics(handles).await
            }
        }
    };
}
pub(crate) use delegate_container_backend;

/// A backend of host processes isolated by `I`.
pub(crate) struct HostBackend<I: Isolation> {
    shared: Arc<Shared<I>>,
}

impl<I: Isolation> HostBackend<I> {
    pub(crate) fn new(isolation: I, settings: HostSettings) -> Result<Self> {
        std::fs::create_dir_all(&settings.containers_dir).map_err(|e| {
            Error::backend(format!("creating {}", settings.containers_dir.display()), e)
        })?;
        Ok(HostBackend {
            shared: Arc::new(Shared {
                isolation,
                ports: PortPool::new(settings.port_range.clone()),
                settings,
                containers: Mutex::new(HashMap::new()),
                allocated: Mutex::new((0, 0)),
            }),
        })
    }

    pub(crate) fn settings(&self) -> &HostSettings {
        &self.shared.settings
    }

    pub(crate) fn isolation(&self) -> &I {
        &self.shared.isolation
    }

    fn ready(&self, handle: &str) -> Result<Arc<HostContainer<I>>> {
        match lock(&self.shared.containers).get(handle) {
            Some(Slot::Ready(container)) => Ok(Arc::clone(container)),
            _ => Err(Error::not_found(handle)),
        }
    }

    fn capacity_now(&self) -> Capacity {
        let containers = lock(&self.shared.containers).len() as u64;
        let allocated = *lock(&self.shared.allocated);
        let settings = &self.shared.settings;
        Capacity {
            memory_bytes: settings.memory_bytes,
            disk_bytes: settings.disk_bytes,
            max_containers: settings.max_containers,
            allocated_memory_bytes: allocated.0,
            allocated_disk_bytes: allocated.1,
            containers,
        }
    }
}

#[async_trait]
impl<I: Isolation> ContainerBackend for HostBackend<I> {
    fn capabilities(&self) -> Capabilities {
        self.shared.isolation.capabilities()
    }

    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>> {
        spec.validate()?;
        {
            let mut containers = lock(&self.shared.containers);
            if containers.contains_key(&spec.handle) {
                return Err(Error::HandleExists {
                    handle: spec.handle,
                });
            }
            let mut allocated = lock(&self.shared.allocated);
            let capacity = Capacity {
                allocated_memory_bytes: allocated.0,
                allocated_disk_bytes: allocated.1,
                containers: containers.len() as u64,
                ..self.capacity_now_unlocked()
            };
            capacity.check_fits(spec.limits.memory_bytes, spec.limits.disk_bytes)?;
            allocated.0 += spec.limits.memory_bytes.unwrap_or(0);
            allocated.1 += spec.limits.disk_bytes.unwrap_or(0);
            containers.insert(spec.handle.clone(), Slot::Busy);
        }
        let shared = Arc::clone(&self.shared);
        let dir = shared.settings.containers_dir.join(&spec.handle);
        let made = {
            let shared = Arc::clone(&shared);
            let spec = spec.clone();
            tokio::task::spawn_blocking(move || shared.isolation.create(&spec, &dir))
                .await
                .map_err(|e| Error::backend("creating a container", e))
                .and_then(|r| r)
        };
        let sandbox = match made {
            Ok(sandbox) => sandbox,
            Err(err) => {
                lock(&shared.containers).remove(&spec.handle);
                shared.release(&spec.limits);
                return Err(err);
            }
        };
        let container = Arc::new(HostContainer {
            handle: spec.handle.clone(),
            created: Instant::now(),
            env: spec.env.clone(),
            limits: spec.limits.clone(),
            sandbox,
            backend: Arc::downgrade(&shared),
            state: Mutex::new(HostState {
                properties: spec.properties.clone(),
                ..HostState::default()
            }),
        });
        lock(&shared.containers).insert(spec.handle.clone(), Slot::Ready(Arc::clone(&container)));
        tracing::debug!(handle = %spec.handle, "created container");
        for rule in &spec.net_in {
            if let Err(err) = container
                .map_port(rule.host_port, rule.container_port)
                .await
            {
                let _ = self.destroy(&spec.handle).await;
                return Err(err);
            }
        }
        Ok(container)
    }

    async fn destroy(&self, handle: &str) -> Result<()> {
        let container = {
            let mut containers = lock(&self.shared.containers);
            match containers.get(handle) {
                Some(Slot::Ready(container)) => {
                    let container = Arc::clone(container);
                    containers.insert(handle.to_string(), Slot::Busy);
                    container
                }
                _ => return Err(Error::not_found(handle)),
            }
        };
        let (processes, ports) = {
            let mut state = container.state();
            state.destroyed = true;
            let processes: Vec<Arc<HostProcess>> = state.processes.values().cloned().collect();
            (processes, std::mem::take(&mut state.ports))
        };
        for process in &processes {
            process.send(NixSignal::SIGKILL);
        }
        let shared = Arc::clone(&self.shared);
        let result = {
            let shared = Arc::clone(&shared);
            let container = Arc::clone(&container);
            let processes = processes.clone();
            async move {
                let reaped = async {
                    for process in &processes {
                        process.wait_exit().await;
                    }
                };
                // Kill what is left (untracked descendants) while the tracked ones end.
                let killer = {
                    let shared = Arc::clone(&shared);
                    let container = Arc::clone(&container);
                    tokio::task::spawn_blocking(move || shared.isolation.kill_all(&container.sandbox))
                };
                let _ = killer.await;
                if tokio::time::timeout(REAP_TIMEOUT, reaped).await.is_err() {
                    tracing::warn!(handle = %container.handle, "container processes did not end in time");
                }
                tokio::task::spawn_blocking(move || shared.isolation.destroy(&container.sandbox))
                    .await
                    .map_err(|e| Error::backend("destroying a container", e))
                    .and_then(|r| r)
            }
            .await
        };
        for mapping in ports {
            shared.ports.release(mapping.host_port);
        }
        shared.release(&container.limits);
        lock(&shared.containers).remove(handle);
        tracing::debug!(handle, "destroyed container");
        result
    }

    async fn lookup(&self, handle: &str) -> Result<Arc<dyn Container>> {
        Ok(self.ready(handle)?)
    }

    async fn containers(&self, filter: &Properties) -> Result<Vec<Arc<dyn Container>>> {
        let containers = lock(&self.shared.containers);
        let mut out: Vec<Arc<dyn Container>> = Vec::new();
        for slot in containers.values() {
            if let Slot::Ready(container) = slot {
                if properties_match(&container.state().properties, filter) {
                    out.push(Arc::clone(container) as Arc<dyn Container>);
                }
            }
        }
        Ok(out)
    }

    async fn capacity(&self) -> Result<Capacity> {
        Ok(self.capacity_now())
    }
}

impl<I: Isolation> HostBackend<I> {
    fn capacity_now_unlocked(&self) -> Capacity {
        let settings = &self.shared.settings;
        Capacity {
            memory_bytes: settings.memory_bytes,
            disk_bytes: settings.disk_bytes,
            max_containers: settings.max_containers,
            ..Capacity::default()
        }
    }
}

#[derive(Default)]
struct HostState {
    properties: Properties,
    stopped: bool,
    destroyed: bool,
    ports: Vec<PortMapping>,
    processes: BTreeMap<String, Arc<HostProcess>>,
    order: Vec<String>,
    events: Vec<String>,
}

/// A container of a host backend.
pub(crate) struct HostContainer<I: Isolation> {
    handle: String,
    created: Instant,
    env: Vec<(String, String)>,
    limits: ResourceLimits,
    sandbox: I::Sandbox,
    backend: Weak<Shared<I>>,
    state: Mutex<HostState>,
}

impl<I: Isolation> HostContainer<I> {
    fn state(&self) -> MutexGuard<'_, HostState> {
        lock(&self.state)
    }

    fn check_live(&self) -> Result<()> {
        self.live().map(drop)
    }

    fn live(&self) -> Result<MutexGuard<'_, HostState>> {
        let state = self.state();
        if state.destroyed {
            Err(Error::not_found(&self.handle))
        } else {
            Ok(state)
        }
    }

    fn backend(&self) -> Result<Arc<Shared<I>>> {
        self.backend
            .upgrade()
            .ok_or_else(|| Error::not_found(&self.handle))
    }

    async fn map_port(
        self: &Arc<Self>,
        host_port: u16,
        container_port: u16,
    ) -> Result<PortMapping> {
        let backend = self.backend()?;
        self.check_live()?;
        let port = backend.ports.lease(host_port)?;
        let mapped = if backend.isolation.container_ip(&self.sandbox).is_some() {
            // An own network: the backend forwards the host port (blocking work).
            let this = Arc::clone(self);
            let shared = Arc::clone(&backend);
            tokio::task::spawn_blocking(move || {
                shared
                    .isolation
                    .map_port(&this.sandbox, port, container_port)
            })
            .await
            .map_err(|e| Error::backend("mapping a port", e))
            .and_then(|r| r)
        } else {
            // Host network: the process listens on the host port itself.
            Ok(port)
        };
        let mapping = match mapped {
            Ok(container_port) => PortMapping {
                host_port: port,
                container_port,
            },
            Err(err) => {
                backend.ports.release(port);
                if self.state().destroyed {
                    return Err(Error::not_found(&self.handle));
                }
                return Err(err);
            }
        };
        let mut state = self.state();
        if state.destroyed {
            // Destroyed meanwhile: its rules went with it, or go with the sandbox.
            drop(state);
            backend.ports.release(port);
            return Err(Error::not_found(&self.handle));
        }
        state.ports.push(mapping);
        Ok(mapping)
    }

    fn forget_old_exited(state: &mut HostState) {
        let exited: Vec<String> = state
            .order
            .iter()
            .filter(|id| state.processes.get(*id).is_some_and(|p| !p.running()))
            .cloned()
            .collect();
        if exited.len() > EXITED_PROCESSES_KEPT {
            for id in &exited[..exited.len() - EXITED_PROCESSES_KEPT] {
                state.processes.remove(id);
            }
            let processes = &state.processes;
            state.order.retain(|id| processes.contains_key(id));
        }
    }

    fn running_processes(&self) -> Vec<Arc<HostProcess>> {
        self.state()
            .processes
            .values()
            .filter(|p| p.running())
            .cloned()
            .collect()
    }

    fn record_oom(self: &Arc<Self>) {
        let mut state = self.state();
        if !state.events.iter().any(|e| e == OUT_OF_MEMORY_EVENT) {
            state.events.push(OUT_OF_MEMORY_EVENT.to_string());
        }
    }
}

#[async_trait]
impl<I: Isolation> Container for HostContainer<I> {
    fn handle(&self) -> &str {
        &self.handle
    }

    async fn run(&self, spec: ProcessSpec) -> Result<Arc<dyn Process>> {
        spec.validate()?;
        let backend = self.backend()?;
        let this = match lock(&backend.containers).get(&self.handle) {
            Some(Slot::Ready(container)) => Arc::clone(container),
            _ => return Err(Error::not_found(&self.handle)),
        };
        let id = match &spec.id {
            Some(id) => id.clone(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        {
            let state = self.live()?;
            if state.stopped {
                return Err(Error::ContainerStopped {
                    handle: self.handle.clone(),
                });
            }
            if state.processes.contains_key(&id) {
                return Err(Error::ProcessIdExists { id });
            }
        }
        let env = merged_env(&self.env, &spec.env);
        let dir = spec.dir.clone().unwrap_or_else(|| "/".to_string());
        let dir = if dir.starts_with('/') {
            dir
        } else {
            format!("/{dir}")
        };
        archive::open_root(backend.isolation.root(&self.sandbox), "a working directory")?
            .mkdir_all(&dir)
            .map_err(|e| Error::backend(format!("creating working directory {dir}"), e))?;
        let command = backend
            .isolation
            .command(&self.sandbox, &spec, &env, &dir, &self.limits)?;
        let oom_before = backend.isolation.oom_kills(&self.sandbox);
        let probe: OomProbe = {
            let container = Arc::clone(&this);
            Box::new(move |status| {
                let Some(backend) = container.backend.upgrade() else {
                    return false;
                };
                let killed = status.code == 128 + 9
                    && backend.isolation.oom_kills(&container.sandbox) > oom_before;
                if killed {
                    container.record_oom();
                }
                killed
            })
        };
        let process = HostProcess::spawn(
            id.clone(),
            command,
            &spec.path,
            backend.isolation.signal_target(),
            probe,
        )?;
        let mut state = self.state();
        if state.destroyed {
            // Destroyed while it started: end it with the rest.
            process.send(NixSignal::SIGKILL);
            return Err(Error::not_found(&self.handle));
        }
        state.processes.insert(id.clone(), Arc::clone(&process));
        state.order.push(id);
        HostContainer::<I>::forget_old_exited(&mut state);
        Ok(process)
    }

    async fn attach(&self, process_id: &str) -> Result<Arc<dyn Process>> {
        let state = self.live()?;
        match state.processes.get(process_id) {
            Some(process) => Ok(Arc::clone(process) as Arc<dyn Process>),
            None => Err(Error::ProcessNotFound {
                id: process_id.to_string(),
            }),
        }
    }

    async fn stream_in(&self, path: &str, tar: ByteStream) -> Result<()> {
        let backend = self.backend()?;
        self.check_live()?;
        let root = backend.isolation.root(&self.sandbox).to_path_buf();
        archive::unpack(root, path.to_string(), tar).await
    }

    async fn stream_out(&self, path: &str) -> Result<ByteStream> {
        let backend = self.backend()?;
        self.check_live()?;
        archive::pack(backend.isolation.root(&self.sandbox), path)
    }

    async fn net_in(&self, host_port: u16, container_port: u16) -> Result<PortMapping> {
        let backend = self.backend()?;
        let this = match lock(&backend.containers).get(&self.handle) {
            Some(Slot::Ready(container)) => Arc::clone(container),
            _ => return Err(Error::not_found(&self.handle)),
        };
        this.map_port(host_port, container_port).await
    }

    async fn properties(&self) -> Result<Properties> {
        Ok(self.live()?.properties.clone())
    }

    async fn set_property(&self, name: &str, value: &str) -> Result<()> {
        self.live()?
            .properties
            .insert(name.to_string(), value.to_string());
        Ok(())
    }

    async fn remove_property(&self, name: &str) -> Result<()> {
        self.live()?.properties.remove(name);
        Ok(())
    }

    async fn info(&self) -> Result<ContainerInfo> {
        let backend = self.backend()?;
        let state = self.live()?;
        Ok(ContainerInfo {
            handle: self.handle.clone(),
            state: if state.stopped {
                ContainerState::Stopped
            } else {
                ContainerState::Active
            },
            events: state.events.clone(),
            host_ip: backend.settings.host_ip.clone(),
            container_ip: backend
                .isolation
                .container_ip(&self.sandbox)
                .unwrap_or_else(|| backend.settings.host_ip.clone()),
            mapped_ports: state.ports.clone(),
            properties: state.properties.clone(),
            process_ids: state
                .order
                .iter()
                .filter(|id| state.processes.get(*id).is_some_and(|p| p.running()))
                .cloned()
                .collect(),
        })
    }

    async fn metrics(&self) -> Result<ContainerMetrics> {
        let backend = self.backend()?;
        self.check_live()?;
        let pids: Vec<i32> = self.running_processes().iter().map(|p| p.pid()).collect();
        let usage = backend.isolation.usage(&self.sandbox, &pids);
        let disk_bytes = backend.isolation.disk_bytes(&self.sandbox);
        let (rx_bytes, tx_bytes) = backend.isolation.traffic(&self.sandbox);
        Ok(ContainerMetrics {
            memory_bytes: usage.memory_bytes,
            cpu_time: usage.cpu_time,
            disk_bytes,
            rx_bytes,
            tx_bytes,
            age: self.created.elapsed(),
        })
    }

    async fn stop(&self, kill: bool) -> Result<()> {
        let backend = self.backend()?;
        let processes = {
            let mut state = self.live()?;
            state.stopped = true;
            state
                .processes
                .values()
                .filter(|p| p.running())
                .cloned()
                .collect::<Vec<_>>()
        };
        let first = if kill {
            NixSignal::SIGKILL
        } else {
            NixSignal::SIGTERM
        };
        for process in &processes {
            process.send(first);
        }
        let all_exited = async {
            for process in &processes {
                process.wait_exit().await;
            }
        };
        if tokio::time::timeout(backend.settings.stop_grace, all_exited)
            .await
            .is_err()
        {
            for process in &processes {
                process.send(NixSignal::SIGKILL);
            }
            for process in &processes {
                process.wait_exit().await;
            }
        }
        Ok(())
    }
}
