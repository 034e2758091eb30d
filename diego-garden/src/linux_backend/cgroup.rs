//! Cgroups of Linux containers: detection of v1 (or hybrid) and v2 hierarchies, limits
//! for memory, pids and CPU weight, usage, OOM counts, killing, removal.
//!
//! Written here rather than taken from libcgroups or cgroups-rs because our processes join
//! their cgroup from inside the forked child, before they fork again (so nothing escapes
//! the limits), and that child may only make raw system calls: it needs the
//! `cgroup.procs` paths up front, which those crates keep private.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::syscall::{Signal, Syscall};
use crate::error::{Error, Result};
use crate::spec::ResourceLimits;

/// The controllers a container uses.
const V1_CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "cpuacct"];

/// Which cgroup hierarchy the host mounts.
#[derive(Debug, Clone)]
pub(crate) enum CgroupLayout {
    /// cgroup v1 (also on hybrid hosts, where the controllers are v1): controller name →
    /// mount point.
    V1(Vec<(String, PathBuf)>),
    /// cgroup v2 (unified): its mount point.
    V2(PathBuf),
    /// No usable cgroup hierarchy: no limits.
    None,
}

impl CgroupLayout {
    /// Reads `/proc/self/mountinfo`.
    pub(crate) fn detect(sys: &dyn Syscall) -> CgroupLayout {
        match sys.read_to_string(Path::new("/proc/self/mountinfo")) {
            Ok(mountinfo) => CgroupLayout::from_mountinfo(&mountinfo),
            Err(_) => CgroupLayout::None,
        }
    }

    /// The layout a mount table (in `/proc/self/mountinfo`'s format) shows: v1 when the
    /// memory controller is mounted as v1 (a cgroup2 mount beside it, as on hybrid hosts,
    /// is then not used), else v2 when cgroup2 is mounted.
    pub(crate) fn from_mountinfo(mountinfo: &str) -> CgroupLayout {
        let mut v1 = Vec::new();
        let mut v2 = None;
        for line in mountinfo.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(sep) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let (Some(mount_point), Some(fstype), Some(super_opts)) =
                (fields.get(4), fields.get(sep + 1), fields.get(sep + 3))
            else {
                continue;
            };
            match *fstype {
                "cgroup" => {
                    for opt in super_opts.split(',') {
                        if V1_CONTROLLERS.contains(&opt)
                            && !v1.iter().any(|(c, _): &(String, PathBuf)| c == opt)
                        {
                            v1.push((opt.to_string(), PathBuf::from(unescape(mount_point))));
                        }
                    }
                }
                "cgroup2" => v2 = Some(PathBuf::from(unescape(mount_point))),
                _ => {}
            }
        }
        if v1.iter().any(|(c, _)| c == "memory") {
            CgroupLayout::V1(v1)
        } else if let Some(root) = v2 {
            CgroupLayout::V2(root)
        } else {
            CgroupLayout::None
        }
    }

    /// Whether a controller is available.
    pub(crate) fn has(&self, sys: &dyn Syscall, controller: &str) -> bool {
        match self {
            CgroupLayout::V1(mounts) => mounts.iter().any(|(c, _)| c == controller),
            CgroupLayout::V2(root) => sys
                .read_to_string(&root.join("cgroup.controllers"))
                .map(|s| s.split_whitespace().any(|c| c == controller))
                .unwrap_or(false),
            CgroupLayout::None => false,
        }
    }
}

/// Mount points in mountinfo escape spaces and such as `\040`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let code = std::str::from_utf8(&bytes[i + 1..i + 4])
                .ok()
                .and_then(|digits| u8::from_str_radix(digits, 8).ok());
            if let Some(code) = code {
                out.push(code);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One container's cgroup (a directory per v1 hierarchy, or one v2 directory).
#[derive(Debug)]
pub(crate) struct Cgroup {
    sys: Arc<dyn Syscall>,
    v2: bool,
    /// (controller, directory); v2: one entry named "unified".
    dirs: Vec<(String, PathBuf)>,
}

fn write(sys: &dyn Syscall, path: &Path, value: &str) -> Result<()> {
    sys.write(path, value)
        .map_err(|e| Error::backend(format!("writing {value:?} to {}", path.display()), e))
}

fn read_u64(sys: &dyn Syscall, path: &Path) -> Option<u64> {
    sys.read_to_string(path).ok()?.trim().parse().ok()
}

fn keyed(sys: &dyn Syscall, path: &Path, key: &str) -> Option<u64> {
    let text = sys.read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// cgroup v1 `cpu.shares` for a v2-scale weight (1..=10000), as runc converts.
fn shares_for_weight(weight: u64) -> u64 {
    2 + (weight.clamp(1, 10_000) - 1) * 262_142 / 9_999
}

impl Cgroup {
    /// Creates `<parent>/<name>` in every hierarchy and applies `limits`. On failure it
    /// removes what it made.
    pub(crate) fn create(
        sys: &Arc<dyn Syscall>,
        layout: &CgroupLayout,
        parent: &str,
        name: &str,
        limits: &ResourceLimits,
    ) -> Result<Cgroup> {
        let relative = Path::new(parent).join(name);
        let (v2, dirs) = match layout {
            CgroupLayout::None => (false, Vec::new()),
            CgroupLayout::V1(mounts) => {
                let mut dirs: Vec<(String, PathBuf)> = Vec::new();
                for (controller, mount) in mounts {
                    dirs.push((controller.clone(), mount.join(&relative)));
                }
                (false, dirs)
            }
            CgroupLayout::V2(root) => {
                // Controllers must be enabled down to the parent.
                let mut dir = root.clone();
                for part in Path::new(parent).components() {
                    let _ = sys.write(&dir.join("cgroup.subtree_control"), "+memory +pids +cpu");
                    dir.push(part);
                    sys.create_dir_all(&dir)
                        .map_err(|e| Error::backend(format!("creating {}", dir.display()), e))?;
                }
                let _ = sys.write(&dir.join("cgroup.subtree_control"), "+memory +pids +cpu");
                (true, vec![("unified".to_string(), root.join(&relative))])
            }
        };
        let cgroup = Cgroup {
            sys: Arc::clone(sys),
            v2,
            dirs,
        };
        if let Err(err) = cgroup.make(limits) {
            let _ = cgroup.remove();
            return Err(err);
        }
        Ok(cgroup)
    }

    fn make(&self, limits: &ResourceLimits) -> Result<()> {
        let sys = &*self.sys;
        for (_, dir) in &self.dirs {
            if sys.exists(dir) {
                // Left by a backend that died: empty it and start afresh.
                kill_procs(sys, dir);
                let _ = sys.remove_dir(dir);
            }
            sys.create_dir_all(dir)
                .map_err(|e| Error::backend(format!("creating cgroup {}", dir.display()), e))?;
        }
        if self.v2 {
            let dir = &self.dirs[0].1;
            if let Some(memory) = limits.memory_bytes {
                write(sys, &dir.join("memory.max"), &memory.to_string())?;
                let _ = sys.write(&dir.join("memory.swap.max"), "0");
            }
            if let Some(pids) = limits.pids {
                write(sys, &dir.join("pids.max"), &pids.to_string())?;
            }
            if let Some(weight) = limits.cpu_weight {
                write(sys, &dir.join("cpu.weight"), &weight.to_string())?;
            }
        } else {
            if let (Some(memory), Some(dir)) = (limits.memory_bytes, self.dir("memory")) {
                write(sys, &dir.join("memory.limit_in_bytes"), &memory.to_string())?;
                // Without swap accounting the file is absent; with it, no swapping past
                // the limit either.
                let _ = sys.write(
                    &dir.join("memory.memsw.limit_in_bytes"),
                    &memory.to_string(),
                );
            }
            if let (Some(pids), Some(dir)) = (limits.pids, self.dir("pids")) {
                write(sys, &dir.join("pids.max"), &pids.to_string())?;
            }
            if let (Some(weight), Some(dir)) = (limits.cpu_weight, self.dir("cpu")) {
                write(
                    sys,
                    &dir.join("cpu.shares"),
                    &shares_for_weight(weight).to_string(),
                )?;
            }
        }
        Ok(())
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| c == controller || c == "unified")
            .map(|(_, d)| d.as_path())
    }

    /// The files a process writes `0` (itself) to, to join: `tasks` in each v1 hierarchy,
    /// `cgroup.procs` in v2.
    ///
    /// In v1, moving the calling thread through `tasks` skips the global
    /// threadgroup lock (a percpu rwsem whose write side waits for an RCU grace period)
    /// that a `cgroup.procs` write takes; a freshly forked child has a single thread, so
    /// moving it moves the whole process, and everything it forks follows.
    pub(crate) fn join_files(&self) -> Vec<PathBuf> {
        let name = if self.v2 { "cgroup.procs" } else { "tasks" };
        let mut files: Vec<PathBuf> = self.dirs.iter().map(|(_, d)| d.join(name)).collect();
        files.sort();
        files.dedup();
        files
    }

    /// Memory in use, in bytes.
    pub(crate) fn memory_bytes(&self) -> u64 {
        let Some(dir) = self.dir("memory") else {
            return 0;
        };
        if self.v2 {
            read_u64(&*self.sys, &dir.join("memory.current")).unwrap_or(0)
        } else {
            read_u64(&*self.sys, &dir.join("memory.usage_in_bytes")).unwrap_or(0)
        }
    }

    /// CPU time used.
    pub(crate) fn cpu_time(&self) -> Duration {
        if self.v2 {
            let Some(dir) = self.dir("cpu") else {
                return Duration::ZERO;
            };
            Duration::from_micros(
                keyed(&*self.sys, &dir.join("cpu.stat"), "usage_usec").unwrap_or(0),
            )
        } else {
            let Some(dir) = self.dir("cpuacct") else {
                return Duration::ZERO;
            };
            Duration::from_nanos(read_u64(&*self.sys, &dir.join("cpuacct.usage")).unwrap_or(0))
        }
    }

    /// How many processes the kernel killed for memory in this cgroup.
    pub(crate) fn oom_kills(&self) -> u64 {
        let Some(dir) = self.dir("memory") else {
            return 0;
        };
        if self.v2 {
            keyed(&*self.sys, &dir.join("memory.events"), "oom_kill").unwrap_or(0)
        } else {
            keyed(&*self.sys, &dir.join("memory.oom_control"), "oom_kill").unwrap_or(0)
        }
    }

    /// Kills every process in the cgroup, until none is left (or a few seconds passed).
    pub(crate) fn kill_all(&self) {
        if self.v2 {
            if let Some((_, dir)) = self.dirs.first() {
                let _ = self.sys.write(&dir.join("cgroup.kill"), "1");
            }
        }
        for (_, dir) in &self.dirs {
            kill_procs(&*self.sys, dir);
        }
    }

    /// Kills what is left and removes the directories.
    pub(crate) fn remove(&self) -> Result<()> {
        self.kill_all();
        let mut failed = None;
        for (_, dir) in &self.dirs {
            if !self.sys.exists(dir) {
                continue;
            }
            let mut removed = false;
            for _ in 0..200 {
                match self.sys.remove_dir(dir) {
                    Ok(()) => {
                        removed = true;
                        break;
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        removed = true;
                        break;
                    }
                    Err(_) => {
                        kill_procs(&*self.sys, dir);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            if !removed {
                failed = Some(dir.clone());
            }
        }
        match failed {
            None => Ok(()),
            Some(dir) => Err(Error::backend(
                format!("removing cgroup {}", dir.display()),
                "it still has processes",
            )),
        }
    }
}

/// Sends SIGKILL to every process listed in `dir/cgroup.procs`, until the list is empty
/// (at most about two seconds).
fn kill_procs(sys: &dyn Syscall, dir: &Path) {
    let procs = dir.join("cgroup.procs");
    for _ in 0..200 {
        let Ok(text) = sys.read_to_string(&procs) else {
            return;
        };
        let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = sys.kill(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Removes the parent directory `parent` of every hierarchy when empty (best effort).
pub(crate) fn remove_parent(sys: &dyn Syscall, layout: &CgroupLayout, parent: &str) {
    let roots: Vec<PathBuf> = match layout {
        CgroupLayout::V1(mounts) => mounts.iter().map(|(_, m)| m.clone()).collect(),
        CgroupLayout::V2(root) => vec![root.clone()],
        CgroupLayout::None => Vec::new(),
    };
    for root in roots {
        let _ = sys.remove_dir(&root.join(parent));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_convert_to_shares_like_runc() {
        assert_eq!(shares_for_weight(1), 2);
        assert_eq!(shares_for_weight(10_000), 262_144);
        assert_eq!(shares_for_weight(100), 2 + 99 * 262_142 / 9_999);
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
