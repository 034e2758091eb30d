//! [`LinuxBackend`]: containers isolated by Linux namespaces and cgroups, each with its own
//! root filesystem. Needs root.
//!
//! Each process of a container runs in fresh mount, uts, ipc and pid namespaces (it sees
//! itself as the child of its own pid 1, and only its own processes), pivoted into the
//! container's root: an overlay of the rootfs (a directory, or a tarball unpacked once and
//! shared read-only) under a writable per-container layer. `/proc` and a minimal `/dev`
//! are mounted. The container's cgroup (v1 or v2, detected) limits memory, pids and CPU
//! weight; a process the kernel kills for memory exits with "(out of memory)" and the
//! container records an "out of memory" event.
//!
//! Network ([`NetworkMode`]): by default the host's, with `net_in` leasing host ports as
//! the ProcessBackend does. In bridged mode each container has its own network namespace
//! on a host bridge, an IP from the configured subnet, `net_in` as DNAT and outbound
//! traffic masqueraded (see the `network` module).

//!
//! Every system call goes through the crate-private `Syscall` seam (`syscall` module) and
//! every nftables batch through the `Netfilter` seam (`network::netfilter`): the cgroup
//! directories and files, the overlay and mount plan, namespace setup and the NAT rules
//! are values and calls that unit tests check against recorders, without root.

mod cgroup;
mod mount_plan;
mod netfilter;
mod network;
mod rootfs;
mod sandbox;
mod syscall;
#[cfg(test)]
mod tests;

pub use self::network::{BridgeNetwork, NetworkMode};

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use self::cgroup::{Cgroup, CgroupLayout};
use self::network::{Attachment, Bridge};
use self::rootfs::{Overlay, RootfsResolver};
use self::sandbox::{ExecPlan, SandboxPlan, STACK_BYTES};
use self::syscall::{LinuxSyscall, MountPoint, Syscall};
use crate::error::{Error, Result};
use crate::host::process::SignalTarget;
use crate::host::root::{self as container_root, ContainerRoot, Kind};
use crate::host::{self, archive, HostBackend, HostSettings, Isolation, Usage};
use crate::info::Capabilities;
use crate::process_backend::find_program;
use crate::spec::{ContainerSpec, ProcessSpec, ResourceLimits};

/// Settings of a [`LinuxBackend`]: [`new`](Self::new), then the `with_` setters.
///
/// ```
/// use std::time::Duration;
/// use diego_garden::LinuxBackendConfig;
///
/// let config = LinuxBackendConfig::new("/var/lib/diego-rs/containers", "/var/lib/diego-rs/rootfs/busybox")
///     .with_preloaded("cflinuxfs4", "/var/lib/diego-rs/rootfs/cflinuxfs4.tar")
///     .with_memory_bytes(8 << 30)
///     .with_stop_grace(Duration::from_secs(5));
/// assert_eq!(config.memory_bytes, Some(8 << 30));
/// assert_eq!(config.max_containers, 256);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LinuxBackendConfig {
    /// Where container directories (overlay layers and mount points) are made.
    pub containers_dir: PathBuf,
    /// Where rootfs tarballs are unpacked (once each).
    pub rootfs_cache_dir: PathBuf,
    /// The rootfs of containers whose spec names none (a directory or tarball path).
    pub default_rootfs: String,
    /// Rootfs directories or tarballs by name, for `preloaded:<name>` specs.
    pub preloaded: BTreeMap<String, PathBuf>,
    /// The cgroup (relative to each hierarchy's root) that holds the containers' cgroups;
    /// `None`: `diego-rs-<hash of containers_dir>`, so backends with different
    /// directories never share one.
    pub cgroup_parent: Option<String>,
    /// Memory offered to containers; `None`: the host's total.
    pub memory_bytes: Option<u64>,
    /// Disk offered to containers; `None`: the size of the filesystem of `containers_dir`.
    pub disk_bytes: Option<u64>,
    /// Most containers at once.
    pub max_containers: u64,
    /// Host ports `net_in` leases from.
    pub port_range: std::ops::RangeInclusive<u16>,
    /// How long `stop(false)` waits after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// The IP reported as the host's (and as the container's in host-network mode).
    pub host_ip: String,
    /// How containers are networked: the host's network (default) or bridged.
    pub network: NetworkMode,
}

impl LinuxBackendConfig {
    /// Defaults with containers under `containers_dir` and this default rootfs.
    pub fn new(containers_dir: impl Into<PathBuf>, default_rootfs: impl Into<String>) -> Self {
        let containers_dir = containers_dir.into();
        LinuxBackendConfig {
            rootfs_cache_dir: containers_dir.join(".rootfs-cache"),
            containers_dir,
            default_rootfs: default_rootfs.into(),
            preloaded: BTreeMap::new(),
            cgroup_parent: None,
            memory_bytes: None,
            disk_bytes: None,
            max_containers: 256,
            port_range: 61_000..=65_000,
            stop_grace: Duration::from_secs(10),
            host_ip: "127.0.0.1".to_string(),
            network: NetworkMode::Host,
        }
    }

    /// Sets how containers are networked.
    #[must_use]
    pub fn network(mut self, network: NetworkMode) -> Self {
        self.network = network;
        self
    }

    /// Sets where rootfs tarballs are unpacked.
    #[must_use]
    pub fn with_rootfs_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.rootfs_cache_dir = dir.into();
        self
    }

    /// Sets the rootfs of containers whose spec names none.
    #[must_use]
    pub fn with_default_rootfs(mut self, rootfs: impl Into<String>) -> Self {
        self.default_rootfs = rootfs.into();
        self
    }

    /// Adds a rootfs directory or tarball that specs name as `preloaded:<name>`.
    #[must_use]
    pub fn with_preloaded(mut self, name: impl Into<String>, rootfs: impl Into<PathBuf>) -> Self {
        self.preloaded.insert(name.into(), rootfs.into());
        self
    }

    /// Sets the cgroup that holds the containers' cgroups.
    #[must_use]
    pub fn with_cgroup_parent(mut self, parent: impl Into<String>) -> Self {
        self.cgroup_parent = Some(parent.into());
        self
    }

    host::host_settings_setters!();
}

/// Namespaces, cgroups and an own root filesystem per container (see the module docs).
pub struct LinuxBackend {
    inner: HostBackend<NamespaceIsolation>,
}

impl LinuxBackend {
    /// In bridged mode, how many container IPs are leased now (one per container that
    /// exists or is being created); `None` in host-network mode.
    pub fn leased_ips(&self) -> Option<usize> {
        self.inner.isolation().bridge.as_ref().map(Bridge::leased)
    }
}

impl std::fmt::Debug for LinuxBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxBackend").finish_non_exhaustive()
    }
}

impl LinuxBackend {
    /// Whether this host can run the backend; `Err` says why not (not root, no overlayfs).
    pub fn available() -> std::result::Result<(), String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("the LinuxBackend needs root".to_string());
        }
        let filesystems = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
        if !filesystems
            .lines()
            .any(|l| l.trim_end().ends_with("overlay"))
        {
            return Err("the kernel has no overlay filesystem".to_string());
        }
        Ok(())
    }

    /// A backend with these settings. Fails when [`available`](Self::available) does.
    pub fn new(config: LinuxBackendConfig) -> Result<Self> {
        LinuxBackend::available().map_err(|what| Error::Unsupported { what })?;
        let sys: Arc<dyn Syscall> = Arc::new(LinuxSyscall);
        sys.create_dir_all(&config.containers_dir).map_err(|e| {
            Error::backend(format!("creating {}", config.containers_dir.display()), e)
        })?;
        let layout = CgroupLayout::detect(&*sys);
        tracing::debug!(?layout, "detected cgroups");
        let bridge = match &config.network {
            NetworkMode::Host => None,
            NetworkMode::Bridged(network) => Some(Bridge::start(network.clone(), &sys)?),
        };
        let isolation = NamespaceIsolation::new(&config, sys, layout, bridge);
        let settings = HostSettings {
            memory_bytes: config.memory_bytes.unwrap_or_else(host::host_memory_bytes),
            disk_bytes: config
                .disk_bytes
                .unwrap_or_else(|| host::filesystem_bytes(&config.containers_dir)),
            containers_dir: config.containers_dir,
            max_containers: config.max_containers,
            port_range: config.port_range,
            stop_grace: config.stop_grace,
            host_ip: config.host_ip,
        };
        Ok(LinuxBackend {
            inner: HostBackend::new(isolation, settings)?,
        })
    }
}

host::delegate_container_backend!(LinuxBackend);

/// The cgroup holding a backend's containers when its settings name none: named after
/// the containers' directory, so backends with different directories never share one.
fn default_cgroup_parent(containers_dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    containers_dir.hash(&mut hasher);
    format!("diego-rs-{:016x}", hasher.finish())
}

/// Isolation by namespaces, cgroups and overlay root filesystems.
pub(crate) struct NamespaceIsolation {
    /// Every system call of the backend.
    sys: Arc<dyn Syscall>,
    /// The bridge of bridged mode; `None`: the host's network.
    bridge: Option<Bridge>,
    resolver: RootfsResolver,
    layout: CgroupLayout,
    cgroup_parent: String,
}

impl NamespaceIsolation {
    /// The isolation of a backend with these settings, making its system calls through
    /// `sys`, with cgroups as `layout` says and this bridge (bridged mode).
    fn new(
        config: &LinuxBackendConfig,
        sys: Arc<dyn Syscall>,
        layout: CgroupLayout,
        bridge: Option<Bridge>,
    ) -> NamespaceIsolation {
        NamespaceIsolation {
            sys,
            bridge,
            resolver: RootfsResolver::new(
                config.default_rootfs.clone(),
                config.preloaded.clone(),
                config.rootfs_cache_dir.clone(),
            ),
            layout,
            cgroup_parent: config
                .cgroup_parent
                .clone()
                .unwrap_or_else(|| default_cgroup_parent(&config.containers_dir)),
        }
    }
}

impl Drop for NamespaceIsolation {
    fn drop(&mut self) {
        cgroup::remove_parent(&*self.sys, &self.layout, &self.cgroup_parent);
    }
}

/// A bind mount: host source, target under the container's root, read-only.
type HostBind = (PathBuf, PathBuf, bool);

/// A Linux container on the host: its directory, overlay and cgroup.
pub(crate) struct LinuxSandbox {
    dir: PathBuf,
    overlay: Overlay,
    cgroup: Cgroup,
    hostname: Vec<u8>,
    binds: Vec<HostBind>,
    /// The container's network namespace on the bridge (bridged mode).
    net: Option<Attachment>,
}

fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::invalid(format!("path contains a NUL byte: {}", path.display())))
}

fn cstr(text: &str) -> Result<CString> {
    CString::new(text).map_err(|_| Error::invalid(format!("string contains a NUL byte: {text:?}")))
}

/// Most bytes of a container's `/etc/passwd` that are read.
const MAX_PASSWD_BYTES: u64 = 1 << 20;

/// Looks a user up in the container's `/etc/passwd` (numeric uids are taken as they are).
/// The file is read inside the root, only when it is a regular file and at most
/// [`MAX_PASSWD_BYTES`] of it: a FIFO, a device or a huge file there is an error at once.
fn container_user(root: &ContainerRoot, user: &str) -> Result<(u32, u32)> {
    if let Ok(uid) = user.parse::<u32>() {
        return Ok((uid, uid));
    }
    let text = match root.read_limited("/etc/passwd", MAX_PASSWD_BYTES) {
        Ok(data) => String::from_utf8_lossy(&data).into_owned(),
        // No passwd: no users.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => {
            return Err(Error::backend(
                format!("looking up user {user} in the container's /etc/passwd"),
                err,
            ))
        }
    };
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 4 && fields[0] == user)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
        })
        .flatten()
        .next()
        .ok_or_else(|| Error::invalid(format!("unknown user in the container: {user}")))
}

/// Whether the host's view of the container root shows a program at `program` (a container
/// path): a regular file there, or a path under one of the `binds` mount points (whose
/// contents the host's view does not show). The deepest part of the path that exists is
/// what is looked at, resolved inside the root.
fn program_exists(root: &ContainerRoot, program: &Path, bind_points: &[(u64, u64)]) -> bool {
    let mut at = Some(program);
    while let Some(path) = at {
        if let Ok(handle) = root.resolve(&path.to_string_lossy()) {
            let Ok(stat) = container_root::stat(&handle) else {
                return false;
            };
            let is_bind = bind_points.contains(&(stat.st_dev, stat.st_ino));
            return is_bind || (path == program && Kind::of(&stat) == Kind::File);
        }
        at = path.parent();
    }
    false
}

impl NamespaceIsolation {
    fn prepare(
        &self,
        spec: &ContainerSpec,
        dir: &Path,
        lower: &Path,
    ) -> Result<(Overlay, Vec<HostBind>)> {
        let sys = &*self.sys;
        let overlay = Overlay::mount(&self.sys, dir, lower)?;
        let made = (|| -> Result<Vec<HostBind>> {
            for (sub, mode) in [("/proc", 0o555), ("/dev", 0o755), ("/tmp", 0o1777)] {
                sys.mount_point(&overlay.root, sub, MountPoint::Dir(mode))
                    .map_err(|e| Error::backend(format!("creating {sub}"), e))?;
            }
            let mut binds = Vec::new();
            for mount in &spec.bind_mounts {
                let source = PathBuf::from(&mount.src_path);
                let is_dir = sys.is_dir(&source).map_err(|e| {
                    Error::backend(format!("reading bind mount source {}", source.display()), e)
                })?;
                let kind = if is_dir {
                    MountPoint::Dir(0o755)
                } else {
                    MountPoint::File
                };
                let target = sys
                    .mount_point(&overlay.root, &mount.dst_path, kind)
                    .map_err(|e| {
                        Error::backend(format!("creating mount point {}", mount.dst_path), e)
                    })?;
                binds.push((source, target, mount.read_only));
            }
            Ok(binds)
        })();
        match made {
            Ok(binds) => Ok((overlay, binds)),
            Err(err) => {
                let _ = overlay.unmount();
                Err(err)
            }
        }
    }

    /// What the forked child of a process of `sandbox` does (see the sandbox module), and
    /// the program on the host's view of the root, to start `spec` with working directory
    /// `dir` (a container path that exists).
    fn sandbox_plan(
        &self,
        sandbox: &LinuxSandbox,
        spec: &ProcessSpec,
        env: &[(String, String)],
        dir: &str,
        limits: &ResourceLimits,
    ) -> Result<(PathBuf, SandboxPlan)> {
        let root = &sandbox.overlay.root;
        let container = archive::open_root(root, "starting a process")?;
        let program = find_program(&spec.path, env, &container);
        // The main process execs by itself (see the sandbox module), so a program that is
        // not there is reported here rather than as an exec failure. A relative path is
        // taken from the working directory, as `execve` would; a bare name that no `PATH`
        // entry holds is not found.
        let in_container = if program.is_absolute() || !program.to_string_lossy().contains('/') {
            program.clone()
        } else {
            Path::new(dir).join(&program)
        };
        // Under a bind mount the host's view of the root shows only the mount point: such
        // programs are left to `execve` (which reports a failure as exit 127).
        let bind_points: Vec<(u64, u64)> = sandbox
            .binds
            .iter()
            .filter_map(|(_, target, _)| {
                let inside = target.strip_prefix(root).ok()?;
                let handle = container.resolve(&inside.to_string_lossy()).ok()?;
                let stat = container_root::stat(&handle).ok()?;
                Some((stat.st_dev, stat.st_ino))
            })
            .collect();
        let found =
            in_container.is_absolute() && program_exists(&container, &in_container, &bind_points);
        if !found {
            return Err(Error::ProcessStart {
                path: spec.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such executable in the container",
                ),
            });
        }
        let program_c = cstring(&program)?;
        let mut exec_args = vec![program_c.clone()];
        for arg in &spec.args {
            exec_args.push(cstr(arg)?);
        }
        let exec_env = env
            .iter()
            .map(|(name, value)| cstr(&format!("{name}={value}")))
            .collect::<Result<Vec<_>>>()?;
        let root_steps = mount_plan::root_steps(root, &sandbox.hostname, &sandbox.binds)?;
        let user = match &spec.user {
            Some(user) => Some(container_user(&container, user)?),
            None => None,
        };
        let plan = SandboxPlan {
            cgroup_join: sandbox
                .cgroup
                .join_files()
                .iter()
                .map(|p| cstring(p))
                .collect::<Result<_>>()?,
            netns: sandbox.net.as_ref().map(Attachment::netns_fd),
            root_steps,
            cwd: cstr(dir)?,
            nofile: spec.limits.nofile.or(limits.nofile),
            user,
            exec: ExecPlan::new(program_c, exec_args, exec_env),
            stack: vec![0; STACK_BYTES],
            init_stack: vec![0; STACK_BYTES],
            init_error: std::sync::atomic::AtomicI32::new(0),
        };
        Ok((program, plan))
    }
}

impl Isolation for NamespaceIsolation {
    type Sandbox = LinuxSandbox;

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_memory_limit(self.layout.has(&*self.sys, "memory"))
            .with_pids_limit(self.layout.has(&*self.sys, "pids"))
            .with_cpu_weight(self.layout.has(&*self.sys, "cpu"))
            .with_nofile_limit(true)
            .with_isolation(true)
            .with_net_out(self.bridge.as_ref().is_some_and(Bridge::enforces_net_out))
    }

    fn create(&self, spec: &ContainerSpec, dir: &Path) -> Result<LinuxSandbox> {
        let sys = &*self.sys;
        let lower = self.resolver.resolve(&spec.rootfs)?;
        if sys.exists(dir) {
            // Left by a backend that died without cleaning up: the handle is free now.
            if let Ok(rootfs) = cstring(&dir.join("rootfs")) {
                let _ = sys.umount2(&rootfs, libc::MNT_DETACH);
            }
            sys.remove_dir_all(dir)
                .map_err(|e| Error::backend(format!("clearing {}", dir.display()), e))?;
        }
        sys.create_dir_all(dir)
            .map_err(|e| Error::backend(format!("creating {}", dir.display()), e))?;
        let (overlay, binds) = match self.prepare(spec, dir, &lower) {
            Ok(made) => made,
            Err(err) => {
                let _ = sys.remove_dir_all(dir);
                return Err(err);
            }
        };
        let cgroup = match Cgroup::create(
            &self.sys,
            &self.layout,
            &self.cgroup_parent,
            &spec.handle,
            &spec.limits,
        ) {
            Ok(cgroup) => cgroup,
            Err(err) => {
                let _ = overlay.unmount();
                let _ = sys.remove_dir_all(dir);
                return Err(err);
            }
        };
        let net = match self
            .bridge
            .as_ref()
            .map(|bridge| bridge.attach(&spec.net_out))
            .transpose()
        {
            Ok(net) => net,
            Err(err) => {
                let _ = cgroup.remove();
                let _ = overlay.unmount();
                let _ = sys.remove_dir_all(dir);
                return Err(err);
            }
        };
        let hostname: Vec<u8> = spec.handle.as_bytes().iter().copied().take(63).collect();
        Ok(LinuxSandbox {
            dir: dir.to_path_buf(),
            overlay,
            cgroup,
            hostname,
            binds,
            net,
        })
    }

    fn root<'a>(&self, sandbox: &'a LinuxSandbox) -> &'a Path {
        &sandbox.overlay.root
    }

    fn command(
        &self,
        sandbox: &LinuxSandbox,
        spec: &ProcessSpec,
        env: &[(String, String)],
        dir: &str,
        limits: &ResourceLimits,
    ) -> Result<tokio::process::Command> {
        let (program, plan) = self.sandbox_plan(sandbox, spec, env, dir, limits)?;
        let mut command = tokio::process::Command::new(program);
        command
            .args(&spec.args)
            .env_clear()
            .envs(env.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            .process_group(0);
        // SAFETY: `enter` makes only raw system calls on data prepared here, as a
        // pre_exec hook must; see the sandbox module.
        unsafe {
            command.pre_exec(move || plan.enter());
        }
        Ok(command)
    }

    fn signal_target(&self) -> SignalTarget {
        SignalTarget::Process
    }

    fn kill_all(&self, sandbox: &LinuxSandbox) {
        sandbox.cgroup.kill_all();
    }

    fn destroy(&self, sandbox: &LinuxSandbox) -> Result<()> {
        let network = match (&self.bridge, &sandbox.net) {
            (Some(bridge), Some(net)) => bridge.detach(net),
            _ => Ok(()),
        };
        let cgroup = sandbox.cgroup.remove();
        let overlay = sandbox.overlay.unmount();
        let removed = match self.sys.remove_dir_all(&sandbox.dir) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(Error::backend(
                format!("removing {}", sandbox.dir.display()),
                err,
            )),
        };
        network.and(cgroup).and(overlay).and(removed)
    }

    fn usage(&self, sandbox: &LinuxSandbox, _pids: &[i32]) -> Usage {
        Usage {
            memory_bytes: sandbox.cgroup.memory_bytes(),
            cpu_time: sandbox.cgroup.cpu_time(),
        }
    }

    fn disk_bytes(&self, sandbox: &LinuxSandbox) -> u64 {
        archive::disk_usage(&sandbox.overlay.upper)
    }

    fn oom_kills(&self, sandbox: &LinuxSandbox) -> u64 {
        sandbox.cgroup.oom_kills()
    }

    fn container_ip(&self, sandbox: &LinuxSandbox) -> Option<String> {
        sandbox.net.as_ref().map(|net| net.ip.to_string())
    }

    fn map_port(&self, sandbox: &LinuxSandbox, host_port: u16, container_port: u16) -> Result<u16> {
        match (&self.bridge, &sandbox.net) {
            (Some(bridge), Some(net)) => {
                // No container port asked: the process listens on the host port's number.
                let container_port = if container_port == 0 {
                    host_port
                } else {
                    container_port
                };
                bridge.map_port(net, host_port, container_port)?;
                Ok(container_port)
            }
            _ => Ok(host_port),
        }
    }

    fn traffic(&self, sandbox: &LinuxSandbox) -> (u64, u64) {
        match (&self.bridge, &sandbox.net) {
            (Some(bridge), Some(net)) => bridge.traffic(net),
            _ => (0, 0),
        }
    }
}
