//! The system calls of the [`LinuxBackend`](super::LinuxBackend), behind one trait (after
//! youki's libcontainer `Syscall`), so that what the backend plans (cgroup directories and
//! the files written in them, the overlay and the mount plan of a container's root,
//! namespace setup) is tested without root against a recording implementation, and only
//! [`LinuxSyscall`] needs a real kernel.
//!
//! Two kinds of calls. Those the backend makes on the host take paths and may allocate
//! (`std::fs` semantics). Those a container process's forked child makes between `fork`
//! and `exec` take C strings prepared beforehand and return an [`Errno`]: the real
//! implementation makes one raw system call each and never allocates, as such a child
//! must not.
//!
//! This module knows files, mounts, namespaces and credentials; it must not know
//! containers, cgroups or what a mount is for.

mod linux;
#[cfg(test)]
pub(crate) mod recording;

pub(crate) use self::linux::LinuxSyscall;

use std::ffi::CStr;
use std::fmt::Debug;
use std::io;
use std::os::raw::{c_int, c_ulong};
use std::path::{Path, PathBuf};

pub(crate) use nix::errno::Errno;
pub(crate) use nix::sys::signal::Signal;

/// What a missing mount point is made as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MountPoint {
    /// A directory (and its missing parents) with these permission bits.
    Dir(u32),
    /// An empty file, in missing parents.
    File,
}

/// The system calls the LinuxBackend makes (see the module docs).
pub(crate) trait Syscall: Send + Sync + Debug + 'static {
    // On the host, from the backend (`std::fs` semantics; may allocate).

    /// Makes a directory and its missing parents (`std::fs::create_dir_all`).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty directory (`rmdir`).
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything under it (`std::fs::remove_dir_all`).
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Writes `contents` to a file, made or truncated (`std::fs::write`): cgroup files,
    /// sysctls.
    fn write(&self, path: &Path, contents: &str) -> io::Result<()>;
    /// Reads a whole file as text.
    fn read_to_string(&self, path: &Path) -> io::Result<String>;
    /// Whether something is at `path` (following links).
    fn exists(&self, path: &Path) -> bool;
    /// Whether `path` is a directory; an error when nothing is there.
    fn is_dir(&self, path: &Path) -> io::Result<bool>;
    /// Makes the mount point `path` (a container path) in the container root `root` unless
    /// something is there, resolving it inside the root as the `host::root` module does
    /// (no link leads out of the root), and returns its host path.
    fn mount_point(&self, root: &Path, path: &str, kind: MountPoint) -> io::Result<PathBuf>;
    /// Sends `signal` to process `pid`.
    fn kill(&self, pid: i32, signal: Signal) -> io::Result<()>;

    // Raw calls: on the host (the overlay) and in the forked child. The real
    // implementation makes exactly the system call and does not allocate.

    /// `mount(2)`.
    fn mount(
        &self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: c_ulong,
        data: Option<&CStr>,
    ) -> Result<(), Errno>;
    /// `umount2(2)`.
    fn umount2(&self, target: &CStr, flags: c_int) -> Result<(), Errno>;
    /// Writes `data` to the existing file at `path` (`open(O_WRONLY)`, `write`, `close`):
    /// joining a cgroup, `oom_score_adj`.
    fn write_file(&self, path: &CStr, data: &[u8]) -> Result<(), Errno>;
    /// `setns(2)`: joins the namespace open as `fd`.
    fn setns(&self, fd: c_int, nstype: c_int) -> Result<(), Errno>;
    /// `unshare(2)`.
    fn unshare(&self, flags: c_int) -> Result<(), Errno>;
    /// `sethostname(2)`.
    fn sethostname(&self, name: &[u8]) -> Result<(), Errno>;
    /// Makes the file `path` when missing (`open(O_CREAT | O_WRONLY)`, `close`).
    fn create_file(&self, path: &CStr, mode: libc::mode_t) -> Result<(), Errno>;
    /// `symlink(2)`: a link at `link` pointing to `target`.
    fn symlink(&self, target: &CStr, link: &CStr) -> Result<(), Errno>;
    /// `mkdir(2)`.
    fn mkdir(&self, path: &CStr, mode: libc::mode_t) -> Result<(), Errno>;
    /// `chdir(2)`.
    fn chdir(&self, path: &CStr) -> Result<(), Errno>;
    /// `pivot_root(2)`.
    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> Result<(), Errno>;
    /// `setrlimit(RLIMIT_NOFILE)`, soft and hard limit alike.
    fn set_nofile(&self, limit: u64) -> Result<(), Errno>;
    /// Drops the supplementary groups, then `setgid(gid)` and `setuid(uid)`.
    fn set_id(&self, uid: u32, gid: u32) -> Result<(), Errno>;
}
