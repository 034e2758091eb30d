//! The mount plan of a container process: the ordered steps its init takes, in a mount
//! namespace of its own, to build the container's view from the overlay root (the mount
//! table made private, the hostname, `/proc`, a minimal `/dev` with the host's character
//! devices bound in, `/dev/shm`, `/dev/pts`, the bind mounts) and pivot into it.
//!
//! The plan is built in the backend as a value ([`root_steps`]) and taken in the forked
//! child through a [`Syscall`], one call per step, without allocating. This module must
//! not know processes, cgroups or networks.

use std::ffi::{CStr, CString};
use std::os::raw::{c_int, c_ulong};
use std::path::{Path, PathBuf};

use super::syscall::{Errno, Syscall};
use super::{cstr, cstring};
use crate::error::Result;

/// The host's devices bound into the container's `/dev`.
pub(crate) const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// One step of a mount plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MountStep {
    /// `mount(2)`; a step marked `optional` may fail without failing the plan.
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
        optional: bool,
    },
    /// `sethostname(2)` (the namespace's own).
    SetHostname(Vec<u8>),
    /// An empty file to bind a device onto.
    CreateFile { path: CString, mode: libc::mode_t },
    /// A symbolic link at `link` to `target`.
    Symlink { target: CString, link: CString },
    /// A directory.
    Mkdir { path: CString, mode: libc::mode_t },
    /// `chdir(2)`.
    Chdir(CString),
    /// `pivot_root(2)`.
    PivotRoot { new_root: CString, put_old: CString },
    /// `umount2(2)`.
    Unmount { target: CString, flags: c_int },
}

impl MountStep {
    fn mount(
        source: Option<&CStr>,
        target: CString,
        fstype: Option<&CStr>,
        flags: c_ulong,
        data: Option<&CStr>,
    ) -> MountStep {
        MountStep::Mount {
            source: source.map(CStr::to_owned),
            target,
            fstype: fstype.map(CStr::to_owned),
            flags,
            data: data.map(CStr::to_owned),
            optional: false,
        }
    }

    /// The same mount, whose failure does not fail the plan.
    fn optional(mut self) -> MountStep {
        if let MountStep::Mount { optional, .. } = &mut self {
            *optional = true;
        }
        self
    }

    /// Takes the step (in the forked child: one call, no allocation).
    pub(crate) fn run<S: Syscall + ?Sized>(&self, sys: &S) -> std::result::Result<(), Errno> {
        match self {
            MountStep::Mount {
                source,
                target,
                fstype,
                flags,
                data,
                optional,
            } => {
                let mounted = sys.mount(
                    source.as_deref(),
                    target,
                    fstype.as_deref(),
                    *flags,
                    data.as_deref(),
                );
                if *optional {
                    Ok(())
                } else {
                    mounted
                }
            }
            MountStep::SetHostname(name) => sys.sethostname(name),
            MountStep::CreateFile { path, mode } => sys.create_file(path, *mode),
            MountStep::Symlink { target, link } => sys.symlink(target, link),
            MountStep::Mkdir { path, mode } => sys.mkdir(path, *mode),
            MountStep::Chdir(path) => sys.chdir(path),
            MountStep::PivotRoot { new_root, put_old } => sys.pivot_root(new_root, put_old),
            MountStep::Unmount { target, flags } => sys.umount2(target, *flags),
        }
    }
}

/// The plan for a container whose overlay is mounted at `root` (a host path), with this
/// hostname and these bind mounts (host source, target under `root`, read-only).
pub(crate) fn root_steps(
    root: &Path,
    hostname: &[u8],
    binds: &[(PathBuf, PathBuf, bool)],
) -> Result<Vec<MountStep>> {
    let under_root = |sub: &str| cstring(&root.join(sub));
    let mut steps = vec![
        // Nothing mounted from here on propagates to the host.
        MountStep::mount(
            None,
            c"/".to_owned(),
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
        ),
        MountStep::SetHostname(hostname.to_vec()),
        MountStep::mount(
            Some(c"proc"),
            under_root("proc")?,
            Some(c"proc"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            None,
        ),
        MountStep::mount(
            Some(c"tmpfs"),
            under_root("dev")?,
            Some(c"tmpfs"),
            libc::MS_NOSUID | libc::MS_STRICTATIME,
            Some(c"mode=755,size=65536k"),
        ),
    ];
    for name in DEVICES {
        let target = under_root(&format!("dev/{name}"))?;
        steps.push(MountStep::CreateFile {
            path: target.clone(),
            mode: 0o666,
        });
        steps.push(MountStep::mount(
            Some(&cstr(&format!("/dev/{name}"))?),
            target,
            None,
            libc::MS_BIND,
            None,
        ));
    }
    for (target, link) in [
        ("/proc/self/fd", "dev/fd"),
        ("/proc/self/fd/0", "dev/stdin"),
        ("/proc/self/fd/1", "dev/stdout"),
        ("/proc/self/fd/2", "dev/stderr"),
        ("pts/ptmx", "dev/ptmx"),
    ] {
        steps.push(MountStep::Symlink {
            target: cstr(target)?,
            link: under_root(link)?,
        });
    }
    let shm = under_root("dev/shm")?;
    steps.push(MountStep::Mkdir {
        path: shm.clone(),
        mode: 0o1777,
    });
    steps.push(MountStep::mount(
        Some(c"shm"),
        shm,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some(c"mode=1777,size=65536k"),
    ));
    let pts = under_root("dev/pts")?;
    steps.push(MountStep::Mkdir {
        path: pts.clone(),
        mode: 0o755,
    });
    // A private devpts is nice to have; hosts that refuse it still run processes.
    steps.push(
        MountStep::mount(
            Some(c"devpts"),
            pts,
            Some(c"devpts"),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            Some(c"newinstance,ptmxmode=0666,mode=0620"),
        )
        .optional(),
    );
    for (source, target, read_only) in binds {
        let target = cstring(target)?;
        steps.push(MountStep::mount(
            Some(&cstring(source)?),
            target.clone(),
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        ));
        if *read_only {
            steps.push(MountStep::mount(
                None,
                target,
                None,
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_REC,
                None,
            ));
        }
    }
    // Into the root: `pivot_root(".", ".")` stacks the old root on the new one, and the
    // detached unmount drops it.
    steps.extend([
        MountStep::Chdir(cstring(root)?),
        MountStep::PivotRoot {
            new_root: c".".to_owned(),
            put_old: c".".to_owned(),
        },
        MountStep::Unmount {
            target: c".".to_owned(),
            flags: libc::MNT_DETACH,
        },
        MountStep::Chdir(c"/".to_owned()),
    ]);
    Ok(steps)
}
