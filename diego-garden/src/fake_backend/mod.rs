//! [`FakeBackend`]: simulated containers and processes for tests and large simulations.
//!
//! Nothing touches the host: files live in memory, processes are tokio tasks playing a
//! [`FakeScript`], ports are numbers. Cheap (100,000 containers take a fraction of a
//! second) and deterministic under paused tokio time. Tests steer it: register a
//! program's behaviour by path, end a process, inject failures.

mod fs;
mod process;
mod script;
mod shell;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;

use self::fs::{normalize, FakeFs};
use self::process::{Control, FakeProcess};
pub use self::script::{FakeScript, FakeStep};
use crate::backend::{properties_match, ByteStream, Container, ContainerBackend, Process};
use crate::error::{Error, Result};
use crate::info::{
    Capabilities, Capacity, ContainerInfo, ContainerMetrics, ContainerState, PortMapping, Signal,
};
use crate::output::collect;
use crate::spec::{ContainerSpec, ProcessSpec, Properties, ResourceLimits};

/// Decides the behaviour of a process from its spec.
pub type FakeProgram = Arc<dyn Fn(&ProcessSpec) -> FakeScript + Send + Sync>;

/// Operations whose next call a test can make fail (see [`FakeBackend::fail_next`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FakeOperation {
    /// `ContainerBackend::create`.
    Create,
    /// `ContainerBackend::destroy`.
    Destroy,
    /// `Container::run`.
    Run,
    /// `Container::stream_in`.
    StreamIn,
    /// `Container::net_in`.
    NetIn,
}

/// Exited processes a fake container remembers for `attach` (the oldest are forgotten).
const EXITED_PROCESSES_KEPT: usize = 64;

struct BackendShared {
    containers: Mutex<HashMap<String, Arc<FakeContainer>>>,
    totals: Capacity,
    allocated: Mutex<(u64, u64)>,
    programs: RwLock<HashMap<String, FakeProgram>>,
    failures: Mutex<HashMap<FakeOperation, u32>>,
    next_port: AtomicU32,
    next_process: AtomicU64,
    stop_grace: Duration,
}

impl BackendShared {
    fn take_failure(&self, op: FakeOperation) -> Result<()> {
        let mut failures = lock(&self.failures);
        if let Some(count) = failures.get_mut(&op) {
            if *count > 0 {
                *count -= 1;
                return Err(Error::backend(
                    format!("running {op:?}"),
                    "failure injected by FakeBackend::fail_next",
                ));
            }
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Simulated containers (see the module docs).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), diego_garden::Error> {
/// use std::time::Duration;
/// use diego_garden::{ContainerBackend, ContainerSpec, FakeBackend, FakeScript, ProcessSpec};
///
/// let fake = FakeBackend::new();
/// fake.set_program("/app/server", |_spec: &ProcessSpec| FakeScript::exit_after(Duration::from_millis(5), 3));
/// let container = fake.create(ContainerSpec::new("web-0")).await?;
/// let process = container.run(ProcessSpec::new("/app/server")).await?;
/// assert_eq!(process.wait().await?.code, 3);
/// fake.destroy("web-0").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FakeBackend {
    shared: Arc<BackendShared>,
}

impl std::fmt::Debug for FakeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeBackend").finish_non_exhaustive()
    }
}

impl Default for FakeBackend {
    fn default() -> Self {
        FakeBackend::new()
    }
}

impl FakeBackend {
    /// A fake with 64 GiB of memory, 1 TiB of disk and room for a million containers.
    pub fn new() -> Self {
        FakeBackend::with_capacity(64 << 30, 1 << 40, 1_000_000)
    }

    /// A fake with this much to give.
    pub fn with_capacity(memory_bytes: u64, disk_bytes: u64, max_containers: u64) -> Self {
        FakeBackend {
            shared: Arc::new(BackendShared {
                containers: Mutex::new(HashMap::new()),
                totals: Capacity {
                    memory_bytes,
                    disk_bytes,
                    max_containers,
                    ..Capacity::default()
                },
                allocated: Mutex::new((0, 0)),
                programs: RwLock::new(HashMap::new()),
                failures: Mutex::new(HashMap::new()),
                next_port: AtomicU32::new(0),
                next_process: AtomicU64::new(0),
                stop_grace: Duration::from_secs(10),
            }),
        }
    }

    /// Sets how long `stop(false)` waits after SIGTERM before killing (default 10 s).
    #[must_use]
    pub fn with_stop_grace(self, grace: Duration) -> Self {
        let mut shared = match Arc::try_unwrap(self.shared) {
            Ok(shared) => shared,
            Err(shared) => return FakeBackend { shared },
        };
        shared.stop_grace = grace;
        FakeBackend {
            shared: Arc::new(shared),
        }
    }

    /// Registers the behaviour of processes whose path is exactly `path`. Without one, a
    /// process runs `sh -c` scripts (see [`FakeStep`]) and `true`/`false`/`echo`/`sleep`/
    /// `cat`; any other path fails to start like a missing executable.
    pub fn set_program<F>(&self, path: &str, program: F)
    where
        F: Fn(&ProcessSpec) -> FakeScript + Send + Sync + 'static,
    {
        let mut programs = self
            .shared
            .programs
            .write()
            .unwrap_or_else(|p| p.into_inner());
        programs.insert(path.to_string(), Arc::new(program));
    }

    /// Makes the next `times` calls of `op` fail with [`Error::Backend`].
    pub fn fail_next(&self, op: FakeOperation, times: u32) {
        *lock(&self.shared.failures).entry(op).or_insert(0) += times;
    }

    /// Ends a running process as if it exited with `code`.
    pub fn exit_process(&self, handle: &str, process_id: &str, code: i32) -> Result<()> {
        let container = self.container(handle)?;
        let process = container.process(process_id)?;
        process.control(Control::Exit(code));
        Ok(())
    }

    /// The container ports something listens on now.
    pub fn listening_ports(&self, handle: &str) -> Result<Vec<u16>> {
        let container = self.container(handle)?;
        let state = container.state();
        Ok(state.listening.keys().copied().collect())
    }

    /// How many containers exist.
    pub fn container_count(&self) -> usize {
        lock(&self.shared.containers).len()
    }

    fn container(&self, handle: &str) -> Result<Arc<FakeContainer>> {
        lock(&self.shared.containers)
            .get(handle)
            .cloned()
            .ok_or_else(|| Error::not_found(handle))
    }
}

#[async_trait]
impl ContainerBackend for FakeBackend {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }

    async fn create(&self, spec: ContainerSpec) -> Result<Arc<dyn Container>> {
        spec.validate()?;
        self.shared.take_failure(FakeOperation::Create)?;
        let container = {
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
                ..self.shared.totals
            };
            capacity.check_fits(spec.limits.memory_bytes, spec.limits.disk_bytes)?;
            allocated.0 += spec.limits.memory_bytes.unwrap_or(0);
            allocated.1 += spec.limits.disk_bytes.unwrap_or(0);
            let container = Arc::new(FakeContainer {
                handle: spec.handle.clone(),
                created: Instant::now(),
                env: spec.env,
                limits: spec.limits,
                backend: Arc::downgrade(&self.shared),
                state: Mutex::new(FakeState {
                    properties: spec.properties,
                    ..FakeState::default()
                }),
            });
            containers.insert(spec.handle, Arc::clone(&container));
            container
        };
        for rule in &spec.net_in {
            if let Err(err) = container.map_port(rule.host_port, rule.container_port) {
                let _ = self.destroy(&container.handle).await;
                return Err(err);
            }
        }
        Ok(container)
    }

    async fn destroy(&self, handle: &str) -> Result<()> {
        self.shared.take_failure(FakeOperation::Destroy)?;
        let container = lock(&self.shared.containers)
            .remove(handle)
            .ok_or_else(|| Error::not_found(handle))?;
        {
            let mut allocated = lock(&self.shared.allocated);
            allocated.0 = allocated
                .0
                .saturating_sub(container.limits.memory_bytes.unwrap_or(0));
            allocated.1 = allocated
                .1
                .saturating_sub(container.limits.disk_bytes.unwrap_or(0));
        }
        let processes = {
            let mut state = container.state();
            state.destroyed = true;
            std::mem::take(&mut state.processes)
        };
        for process in processes.values() {
            process.control(Control::Signal(Signal::Kill));
        }
        for process in processes.values() {
            process.wait_exit().await;
        }
        Ok(())
    }

    async fn lookup(&self, handle: &str) -> Result<Arc<dyn Container>> {
        Ok(self.container(handle)?)
    }

    async fn containers(&self, filter: &Properties) -> Result<Vec<Arc<dyn Container>>> {
        let containers = lock(&self.shared.containers);
        let mut out: Vec<Arc<dyn Container>> = Vec::with_capacity(containers.len());
        for container in containers.values() {
            if filter.is_empty() || properties_match(&container.state().properties, filter) {
                out.push(Arc::clone(container) as Arc<dyn Container>);
            }
        }
        Ok(out)
    }

    async fn capacity(&self) -> Result<Capacity> {
        let containers = lock(&self.shared.containers).len() as u64;
        let allocated = *lock(&self.shared.allocated);
        Ok(Capacity {
            allocated_memory_bytes: allocated.0,
            allocated_disk_bytes: allocated.1,
            containers,
            ..self.shared.totals
        })
    }
}

#[derive(Default)]
struct FakeState {
    properties: Properties,
    stopped: bool,
    destroyed: bool,
    ports: Vec<PortMapping>,
    processes: BTreeMap<String, Arc<FakeProcess>>,
    /// Process ids in start order, to forget the oldest exited ones.
    order: Vec<String>,
    fs: FakeFs,
    listening: BTreeMap<u16, usize>,
    events: Vec<String>,
}

/// A fake container.
pub(crate) struct FakeContainer {
    handle: String,
    created: Instant,
    env: Vec<(String, String)>,
    limits: ResourceLimits,
    backend: Weak<BackendShared>,
    state: Mutex<FakeState>,
}

impl FakeContainer {
    fn state(&self) -> MutexGuard<'_, FakeState> {
        lock(&self.state)
    }

    fn check_live(&self) -> Result<()> {
        self.live().map(drop)
    }

    fn live(&self) -> Result<MutexGuard<'_, FakeState>> {
        let state = self.state();
        if state.destroyed {
            Err(Error::not_found(&self.handle))
        } else {
            Ok(state)
        }
    }

    fn backend(&self) -> Result<Arc<BackendShared>> {
        self.backend
            .upgrade()
            .ok_or_else(|| Error::not_found(&self.handle))
    }

    fn process(&self, id: &str) -> Result<Arc<FakeProcess>> {
        self.live()?
            .processes
            .get(id)
            .cloned()
            .ok_or_else(|| Error::ProcessNotFound { id: id.to_string() })
    }

    pub(crate) fn resolve_port(&self, port: u16) -> u16 {
        if port != 0 {
            return port;
        }
        self.state()
            .ports
            .first()
            .map(|m| m.container_port)
            .unwrap_or(0)
    }

    pub(crate) fn listen(&self, port: u16) {
        *self.state().listening.entry(port).or_insert(0) += 1;
    }

    pub(crate) fn unlisten(&self, port: u16) {
        let mut state = self.state();
        if let Some(count) = state.listening.get_mut(&port) {
            *count -= 1;
            if *count == 0 {
                state.listening.remove(&port);
            }
        }
    }

    pub(crate) fn is_listening(&self, port: u16) -> bool {
        self.state().listening.contains_key(&port)
    }

    pub(crate) fn read_file(&self, dir: &str, path: &str) -> Option<Bytes> {
        self.state().fs.read(&normalize(dir, path))
    }

    pub(crate) fn write_file(&self, dir: &str, path: &str, bytes: Bytes) {
        self.state().fs.write(&normalize(dir, path), bytes);
    }

    fn map_port(&self, host_port: u16, container_port: u16) -> Result<PortMapping> {
        let backend = self.backend()?;
        backend.take_failure(FakeOperation::NetIn)?;
        let mut state = self.live()?;
        let host_port = if host_port == 0 {
            let n = backend.next_port.fetch_add(1, Ordering::Relaxed);
            // Ports 61000..=65535, then around again.
            61_000 + (n % 4_536) as u16
        } else {
            host_port
        };
        let container_port = if container_port == 0 {
            host_port
        } else {
            container_port
        };
        let mapping = PortMapping {
            host_port,
            container_port,
        };
        state.ports.push(mapping);
        Ok(mapping)
    }

    fn script_for(&self, spec: &ProcessSpec, env: &[(String, String)]) -> Result<FakeScript> {
        let backend = self.backend()?;
        let program = {
            let programs = backend.programs.read().unwrap_or_else(|p| p.into_inner());
            programs.get(&spec.path).cloned()
        };
        if let Some(program) = program {
            return Ok(program(spec));
        }
        let name = spec.path.rsplit('/').next().unwrap_or("");
        if matches!(name, "sh" | "bash" | "ash" | "dash") {
            if let (Some(flag), Some(script)) = (spec.args.first(), spec.args.get(1)) {
                if flag == "-c" {
                    return Ok(shell::translate(script, env));
                }
            }
        }
        shell::builtin_program(name, &spec.args).ok_or_else(|| Error::ProcessStart {
            path: spec.path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        })
    }

    fn forget_old_exited(state: &mut FakeState) {
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
}

#[async_trait]
impl Container for FakeContainer {
    fn handle(&self) -> &str {
        &self.handle
    }

    async fn run(&self, spec: ProcessSpec) -> Result<Arc<dyn Process>> {
        spec.validate()?;
        let backend = self.backend()?;
        backend.take_failure(FakeOperation::Run)?;
        let env = crate::spec::merged_env(&self.env, &spec.env);
        let script = self.script_for(&spec, &env)?;
        let dir = normalize("/", spec.dir.as_deref().unwrap_or("/"));
        let id = match &spec.id {
            Some(id) => id.clone(),
            None => format!(
                "fake-{}",
                backend.next_process.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let this = {
            // Processes hold their container while they run; look it up to get the Arc.
            let containers = lock(&backend.containers);
            containers
                .get(&self.handle)
                .cloned()
                .ok_or_else(|| Error::not_found(&self.handle))?
        };
        let mut state = self.live()?;
        if state.stopped {
            return Err(Error::ContainerStopped {
                handle: self.handle.clone(),
            });
        }
        if state.processes.contains_key(&id) {
            return Err(Error::ProcessIdExists { id });
        }
        state.fs.mkdir_all(&dir);
        let process = FakeProcess::start(id.clone(), script, dir, this);
        state.processes.insert(id.clone(), Arc::clone(&process));
        state.order.push(id);
        FakeContainer::forget_old_exited(&mut state);
        Ok(process)
    }

    async fn attach(&self, process_id: &str) -> Result<Arc<dyn Process>> {
        Ok(self.process(process_id)?)
    }

    async fn stream_in(&self, path: &str, tar: ByteStream) -> Result<()> {
        self.backend()?.take_failure(FakeOperation::StreamIn)?;
        self.check_live()?;
        let bytes = collect(tar)
            .await
            .map_err(|e| Error::backend("reading the tar stream", e))?;
        self.live()?.fs.unpack(path, &bytes)
    }

    async fn stream_out(&self, path: &str) -> Result<ByteStream> {
        let archive = self.live()?.fs.pack(path)?;
        let chunk: std::io::Result<Bytes> = Ok(Bytes::from(archive));
        Ok(Box::pin(futures::stream::iter([chunk])))
    }

    async fn net_in(&self, host_port: u16, container_port: u16) -> Result<PortMapping> {
        self.map_port(host_port, container_port)
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
        let state = self.live()?;
        Ok(ContainerInfo {
            handle: self.handle.clone(),
            state: if state.stopped {
                ContainerState::Stopped
            } else {
                ContainerState::Active
            },
            events: state.events.clone(),
            host_ip: "127.0.0.1".to_string(),
            container_ip: "127.0.0.1".to_string(),
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
        let state = self.live()?;
        Ok(ContainerMetrics {
            disk_bytes: state.fs.disk_bytes(),
            age: self.created.elapsed(),
            ..ContainerMetrics::default()
        })
    }

    async fn stop(&self, kill: bool) -> Result<()> {
        let grace = self.backend()?.stop_grace;
        let processes: Vec<Arc<FakeProcess>> = {
            let mut state = self.live()?;
            state.stopped = true;
            state
                .processes
                .values()
                .filter(|p| p.running())
                .cloned()
                .collect()
        };
        let first = if kill {
            Signal::Kill
        } else {
            Signal::Terminate
        };
        for process in &processes {
            process.control(Control::Signal(first));
        }
        let all_exited = async {
            for process in &processes {
                process.wait_exit().await;
            }
        };
        if tokio::time::timeout(grace, all_exited).await.is_err() {
            for process in &processes {
                process.control(Control::Signal(Signal::Kill));
            }
            for process in &processes {
                process.wait_exit().await;
            }
        }
        Ok(())
    }
}
