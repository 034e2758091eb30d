//! [`ProcessBackend`]: the embedded default. Each container is a private directory on the
//! host; its processes are host child processes, each leading its own process group, with
//! the container's environment, working directory and `nofile` limit.
//!
//! No root needed and no isolation: container paths (`stream_in`, working dirs) map into
//! the container's directory, but executables are host paths. `terminate` sends SIGTERM to
//! the process group, `kill` SIGKILL. `net_in` leases a free host port and reports it as
//! both the host and the container port. Destroy kills every group and removes the
//! directory; processes are reaped even when every handle is dropped.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::resource::{setrlimit, Resource};

use crate::error::{Error, Result};
use crate::host::process::SignalTarget;
use crate::host::root::{ContainerRoot, Kind};
use crate::host::{self, archive, HostBackend, HostSettings, Isolation, Usage};
use crate::info::Capabilities;
use crate::spec::{ContainerSpec, ProcessSpec, ResourceLimits};

/// Settings of a [`ProcessBackend`]: [`new`](Self::new), then the `with_` setters.
///
/// ```
/// use diego_garden::{ProcessBackend, ProcessBackendConfig};
///
/// let dir = std::env::temp_dir().join(format!("garden-config-doc-{}", std::process::id()));
/// let config = ProcessBackendConfig::new(&dir)
///     .with_max_containers(8)
///     .with_port_range(62_000..=62_099);
/// assert_eq!(config.max_containers, 8);
/// let backend = ProcessBackend::with_config(config)?;
/// # drop(backend);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProcessBackendConfig {
    /// Where container directories are made (one per handle).
    pub containers_dir: PathBuf,
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
    /// The IP reported as host and container IP.
    pub host_ip: String,
}

impl ProcessBackendConfig {
    /// Defaults with containers under `containers_dir`.
    pub fn new(containers_dir: impl Into<PathBuf>) -> Self {
        ProcessBackendConfig {
            containers_dir: containers_dir.into(),
            memory_bytes: None,
            disk_bytes: None,
            max_containers: 1024,
            port_range: 61_000..=65_000,
            stop_grace: Duration::from_secs(10),
            host_ip: "127.0.0.1".to_string(),
        }
    }

    host::host_settings_setters!();
}

/// Host processes, one private directory per container (see the module docs).
pub struct ProcessBackend {
    inner: HostBackend<DirIsolation>,
}

impl std::fmt::Debug for ProcessBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessBackend").finish_non_exhaustive()
    }
}

impl ProcessBackend {
    /// A backend with default settings keeping containers under `containers_dir`.
    pub fn new(containers_dir: impl Into<PathBuf>) -> Result<Self> {
        ProcessBackend::with_config(ProcessBackendConfig::new(containers_dir))
    }

    /// A backend with these settings.
    pub fn with_config(config: ProcessBackendConfig) -> Result<Self> {
        std::fs::create_dir_all(&config.containers_dir).map_err(|e| {
            Error::backend(format!("creating {}", config.containers_dir.display()), e)
        })?;
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
        Ok(ProcessBackend {
            inner: HostBackend::new(DirIsolation, settings)?,
        })
    }

    /// The host directory of a container (whether or not it exists).
    pub fn container_dir(&self, handle: &str) -> Result<PathBuf> {
        crate::spec::validate_handle(handle)?;
        Ok(self.inner.settings().containers_dir.join(handle))
    }
}

host::delegate_container_backend!(ProcessBackend);

/// A container of the process backend: its directory.
pub(crate) struct DirSandbox {
    root: PathBuf,
}

/// Isolation by directory only.
pub(crate) struct DirIsolation;

/// Finds `program` in the `PATH` of `env`, looking inside `root` (programs with a `/` are
/// taken as they are).
pub(crate) fn find_program(
    program: &str,
    env: &[(String, String)],
    root: &ContainerRoot,
) -> PathBuf {
    if program.contains('/') {
        return PathBuf::from(program);
    }
    let path = env
        .iter()
        .rev()
        .find(|(n, _)| n == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/usr/bin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = PathBuf::from(dir).join(program);
        if matches!(root.kind(&candidate.to_string_lossy()), Ok(Kind::File)) {
            return candidate;
        }
    }
    PathBuf::from(program)
}

impl Isolation for DirIsolation {
    type Sandbox = DirSandbox;

    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_nofile_limit(true)
    }

    fn create(&self, spec: &ContainerSpec, dir: &Path) -> Result<DirSandbox> {
        if dir.exists() {
            // Left by a backend that died without cleaning up: the handle is free now.
            std::fs::remove_dir_all(dir)
                .map_err(|e| Error::backend(format!("clearing {}", dir.display()), e))?;
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::backend(format!("creating {}", dir.display()), e))?;
        let sandbox = DirSandbox {
            root: dir.to_path_buf(),
        };
        let root = match archive::open_root(dir, "bind mounts") {
            Ok(root) => root,
            Err(err) => {
                let _ = self.destroy(&sandbox);
                return Err(err);
            }
        };
        for mount in &spec.bind_mounts {
            // Without mounts, a bind mount is a link from the container path to the host.
            let made = Path::new(&mount.dst_path)
                .parent()
                .map(|parent| root.mkdir_all(&parent.to_string_lossy()).map(drop))
                .unwrap_or(Ok(()))
                .and_then(|()| root.replace_symlink(&mount.dst_path, Path::new(&mount.src_path)));
            if let Err(err) = made {
                let _ = self.destroy(&sandbox);
                return Err(Error::backend(format!("linking {}", mount.dst_path), err));
            }
        }
        Ok(sandbox)
    }

    fn root<'a>(&self, sandbox: &'a DirSandbox) -> &'a Path {
        &sandbox.root
    }

    fn command(
        &self,
        sandbox: &DirSandbox,
        spec: &ProcessSpec,
        env: &[(String, String)],
        dir: &str,
        limits: &ResourceLimits,
    ) -> Result<tokio::process::Command> {
        // The host's programs: the process backend's processes run on the host.
        let host = archive::open_root(Path::new("/"), "finding a program")?;
        let program = find_program(&spec.path, env, &host);
        // The working directory is resolved inside the container directory and entered by
        // its descriptor in the child, so no link swapped in meanwhile can lead elsewhere.
        let cwd: OwnedFd = archive::open_root(&sandbox.root, "the working directory")?
            .resolve(dir)
            .map_err(|e| Error::backend(format!("opening working directory {dir}"), e))?
            .into();
        let mut command = tokio::process::Command::new(program);
        command
            .args(&spec.args)
            .env_clear()
            .envs(env.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            .process_group(0);
        // SAFETY: the closure runs in the forked child before exec and only calls
        // fchdir(2), which is async-signal-safe; it touches no locks or allocations.
        unsafe {
            command.pre_exec(move || nix::unistd::fchdir(&cwd).map_err(std::io::Error::from));
        }
        if let Some(user) = &spec.user {
            let (uid, gid) = host_user(user)?;
            command.uid(uid).gid(gid);
        }
        if let Some(nofile) = spec.limits.nofile.or(limits.nofile) {
            // SAFETY: the closure runs in the forked child before exec and only calls
            // setrlimit(2), which is async-signal-safe; it touches no locks or allocations.
            unsafe {
                command.pre_exec(move || {
                    setrlimit(Resource::RLIMIT_NOFILE, nofile, nofile).map_err(std::io::Error::from)
                });
            }
        }
        Ok(command)
    }

    fn signal_target(&self) -> SignalTarget {
        SignalTarget::Group
    }

    fn kill_all(&self, _sandbox: &DirSandbox) {
        // Every process leads its own group, which the host backend kills by handle;
        // nothing else belongs to the container.
    }

    fn destroy(&self, sandbox: &DirSandbox) -> Result<()> {
        match std::fs::remove_dir_all(&sandbox.root) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(Error::backend(
                format!("removing {}", sandbox.root.display()),
                err,
            )),
        }
    }

    fn usage(&self, _sandbox: &DirSandbox, pids: &[i32]) -> Usage {
        group_usage(pids)
    }

    fn disk_bytes(&self, sandbox: &DirSandbox) -> u64 {
        archive::disk_usage(&sandbox.root)
    }

    fn oom_kills(&self, _sandbox: &DirSandbox) -> u64 {
        0
    }
}

/// Memory and CPU of the processes in the process groups led by `leaders`.
fn group_usage(leaders: &[i32]) -> Usage {
    let mut usage = Usage::default();
    if leaders.is_empty() {
        return usage;
    }
    let Ok(all) = procfs::process::all_processes() else {
        return usage;
    };
    let page = procfs::page_size();
    let ticks = procfs::ticks_per_second().max(1);
    let mut cpu_ticks = 0u64;
    for process in all.flatten() {
        let Ok(stat) = process.stat() else { continue };
        if leaders.contains(&stat.pgrp) {
            usage.memory_bytes += stat.rss * page;
            cpu_ticks += stat.utime + stat.stime;
        }
    }
    usage.cpu_time = Duration::from_millis(cpu_ticks * 1000 / ticks);
    usage
}

/// Resolves a host user name or numeric uid to (uid, gid).
fn host_user(user: &str) -> Result<(u32, u32)> {
    if let Ok(uid) = user.parse::<u32>() {
        return Ok((uid, uid));
    }
    match nix::unistd::User::from_name(user) {
        Ok(Some(found)) => Ok((found.uid.as_raw(), found.gid.as_raw())),
        Ok(None) => Err(Error::invalid(format!("unknown user: {user}"))),
        Err(err) => Err(Error::backend(format!("looking up user {user}"), err)),
    }
}
