//! [`RecordingSyscall`]: writes down every call that changes something, in order, for
//! unit tests that run without root. It keeps a small model of the files and directories
//! it was given or made, so that what the backend reads back (a cgroup's usage, whether a
//! directory is there) answers as a host would; nothing touches the real host.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CStr, OsStr};
use std::io;
use std::os::raw::{c_int, c_ulong};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::{Errno, MountPoint, Signal, Syscall};

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    CreateDirAll(PathBuf),
    RemoveDir(PathBuf),
    RemoveDirAll(PathBuf),
    Write(PathBuf, String),
    MountPoint {
        root: PathBuf,
        path: String,
        kind: MountPoint,
    },
    Kill(i32, Signal),
    Mount {
        source: Option<String>,
        target: PathBuf,
        fstype: Option<String>,
        flags: c_ulong,
        data: Option<String>,
    },
    Umount2(PathBuf, c_int),
    WriteFile(PathBuf, String),
    SetNs(c_int, c_int),
    Unshare(c_int),
    SetHostname(String),
    CreateFile(PathBuf, libc::mode_t),
    Symlink {
        target: PathBuf,
        link: PathBuf,
    },
    Mkdir(PathBuf, libc::mode_t),
    Chdir(PathBuf),
    PivotRoot(PathBuf, PathBuf),
    SetNofile(u64),
    SetId(u32, u32),
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    files: BTreeMap<PathBuf, String>,
    dirs: BTreeSet<PathBuf>,
    /// Calls on these paths fail (`EACCES`); they are recorded all the same.
    failing: BTreeSet<PathBuf>,
    /// Mounts on these targets fail (`EACCES`).
    failing_mounts: BTreeSet<PathBuf>,
}

/// Records calls instead of making them (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct RecordingSyscall {
    state: Mutex<State>,
}

fn path(c: &CStr) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(c.to_bytes()))
}

fn text(c: &CStr) -> String {
    c.to_string_lossy().into_owned()
}

fn denied() -> io::Error {
    io::Error::from(Errno::EACCES)
}

fn not_found() -> io::Error {
    io::Error::from(Errno::ENOENT)
}

impl RecordingSyscall {
    /// A recorder that knows no file.
    pub(crate) fn new() -> RecordingSyscall {
        RecordingSyscall::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes a directory (and its parents) known, unrecorded.
    pub(crate) fn with_dir(self, dir: impl AsRef<Path>) -> Self {
        {
            let mut state = self.state();
            for ancestor in dir.as_ref().ancestors() {
                state.dirs.insert(ancestor.to_path_buf());
            }
        }
        self
    }

    /// Makes a file (and its directory) known, unrecorded.
    pub(crate) fn with_file(self, file: impl AsRef<Path>, contents: &str) -> Self {
        self.put_file(file, contents);
        self
    }

    /// Puts a file (and its directory) in the model, unrecorded, as the kernel fills a
    /// cgroup's files.
    pub(crate) fn put_file(&self, file: impl AsRef<Path>, contents: &str) {
        let file = file.as_ref();
        let mut state = self.state();
        for ancestor in file.ancestors().skip(1) {
            state.dirs.insert(ancestor.to_path_buf());
        }
        state.files.insert(file.to_path_buf(), contents.to_string());
    }

    /// Makes every call on `path` fail with `EACCES`.
    pub(crate) fn fail_at(self, path: impl AsRef<Path>) -> Self {
        self.state().failing.insert(path.as_ref().to_path_buf());
        self
    }

    /// Makes mounts on `target` fail with `EACCES`.
    pub(crate) fn fail_mount_at(self, target: impl AsRef<Path>) -> Self {
        self.state()
            .failing_mounts
            .insert(target.as_ref().to_path_buf());
        self
    }

    /// The calls so far, in order.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The calls so far, forgetting them.
    pub(crate) fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.state().calls)
    }

    /// What the model holds at `file`.
    pub(crate) fn file(&self, file: impl AsRef<Path>) -> Option<String> {
        self.state().files.get(file.as_ref()).cloned()
    }

    /// Records `call`; `Err(EACCES)` when `at` is made to fail.
    fn record(&self, call: Call, at: &Path) -> Result<MutexGuard<'_, State>, Errno> {
        let mut state = self.state();
        state.calls.push(call);
        if state.failing.contains(at) {
            return Err(Errno::EACCES);
        }
        Ok(state)
    }
}

impl Syscall for RecordingSyscall {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self
            .record(Call::CreateDirAll(dir.to_path_buf()), dir)
            .map_err(io::Error::from)?;
        for ancestor in dir.ancestors() {
            state.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    /// As on cgroupfs: a directory without subdirectories goes with its files.
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self
            .record(Call::RemoveDir(dir.to_path_buf()), dir)
            .map_err(io::Error::from)?;
        if !state.dirs.contains(dir) {
            return Err(not_found());
        }
        if state.dirs.iter().any(|d| d.parent() == Some(dir)) {
            return Err(io::Error::from(Errno::ENOTEMPTY));
        }
        state.dirs.remove(dir);
        state.files.retain(|file, _| file.parent() != Some(dir));
        Ok(())
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self
            .record(Call::RemoveDirAll(dir.to_path_buf()), dir)
            .map_err(io::Error::from)?;
        if !state.dirs.contains(dir) {
            return Err(not_found());
        }
        state.dirs.retain(|d| !d.starts_with(dir));
        state.files.retain(|file, _| !file.starts_with(dir));
        Ok(())
    }

    fn write(&self, file: &Path, contents: &str) -> io::Result<()> {
        let mut state = self
            .record(Call::Write(file.to_path_buf(), contents.to_string()), file)
            .map_err(io::Error::from)?;
        if !file.parent().is_some_and(|dir| state.dirs.contains(dir)) {
            return Err(not_found());
        }
        state.files.insert(file.to_path_buf(), contents.to_string());
        Ok(())
    }

    fn read_to_string(&self, file: &Path) -> io::Result<String> {
        let state = self.state();
        if state.failing.contains(file) {
            return Err(denied());
        }
        state.files.get(file).cloned().ok_or_else(not_found)
    }

    fn exists(&self, at: &Path) -> bool {
        let state = self.state();
        state.dirs.contains(at) || state.files.contains_key(at)
    }

    fn is_dir(&self, at: &Path) -> io::Result<bool> {
        let state = self.state();
        if state.dirs.contains(at) {
            Ok(true)
        } else if state.files.contains_key(at) {
            Ok(false)
        } else {
            Err(not_found())
        }
    }

    /// Modelled as a plain join: the recorder's roots hold no links.
    fn mount_point(&self, root: &Path, path: &str, kind: MountPoint) -> io::Result<PathBuf> {
        let at = path
            .split('/')
            .filter(|part| !part.is_empty() && *part != ".")
            .fold(root.to_path_buf(), |at, part| at.join(part));
        let call = Call::MountPoint {
            root: root.to_path_buf(),
            path: path.to_string(),
            kind,
        };
        let mut state = self.record(call, &at).map_err(io::Error::from)?;
        if !state.dirs.contains(&at) && !state.files.contains_key(&at) {
            let skip = usize::from(kind == MountPoint::File);
            let parents: Vec<PathBuf> = at.ancestors().skip(skip).map(Path::to_path_buf).collect();
            state.dirs.extend(parents);
            if kind == MountPoint::File {
                state.files.insert(at.clone(), String::new());
            }
        }
        Ok(at)
    }

    /// A killed process leaves every cgroup's `cgroup.procs`.
    fn kill(&self, pid: i32, signal: Signal) -> io::Result<()> {
        let mut state = self.state();
        state.calls.push(Call::Kill(pid, signal));
        for (file, contents) in state.files.iter_mut() {
            if file.file_name() == Some(OsStr::new("cgroup.procs")) {
                *contents = contents
                    .lines()
                    .filter(|line| line.trim().parse() != Ok(pid))
                    .map(|line| format!("{line}\n"))
                    .collect();
            }
        }
        Ok(())
    }

    fn mount(
        &self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: c_ulong,
        data: Option<&CStr>,
    ) -> Result<(), Errno> {
        let call = Call::Mount {
            source: source.map(text),
            target: path(target),
            fstype: fstype.map(text),
            flags,
            data: data.map(text),
        };
        let state = self.record(call, &path(target))?;
        if state.failing_mounts.contains(&path(target)) {
            return Err(Errno::EACCES);
        }
        Ok(())
    }

    fn umount2(&self, target: &CStr, flags: c_int) -> Result<(), Errno> {
        self.record(Call::Umount2(path(target), flags), &path(target))
            .map(drop)
    }

    fn write_file(&self, file: &CStr, data: &[u8]) -> Result<(), Errno> {
        let call = Call::WriteFile(path(file), String::from_utf8_lossy(data).into_owned());
        self.record(call, &path(file)).map(drop)
    }

    fn setns(&self, fd: c_int, nstype: c_int) -> Result<(), Errno> {
        self.record(Call::SetNs(fd, nstype), Path::new(""))
            .map(drop)
    }

    fn unshare(&self, flags: c_int) -> Result<(), Errno> {
        self.record(Call::Unshare(flags), Path::new("")).map(drop)
    }

    fn sethostname(&self, name: &[u8]) -> Result<(), Errno> {
        let call = Call::SetHostname(String::from_utf8_lossy(name).into_owned());
        self.record(call, Path::new("")).map(drop)
    }

    fn create_file(&self, file: &CStr, mode: libc::mode_t) -> Result<(), Errno> {
        let mut state = self.record(Call::CreateFile(path(file), mode), &path(file))?;
        state.files.entry(path(file)).or_default();
        Ok(())
    }

    fn symlink(&self, target: &CStr, link: &CStr) -> Result<(), Errno> {
        let call = Call::Symlink {
            target: path(target),
            link: path(link),
        };
        self.record(call, &path(link)).map(drop)
    }

    fn mkdir(&self, dir: &CStr, mode: libc::mode_t) -> Result<(), Errno> {
        let mut state = self.record(Call::Mkdir(path(dir), mode), &path(dir))?;
        state.dirs.insert(path(dir));
        Ok(())
    }

    fn chdir(&self, dir: &CStr) -> Result<(), Errno> {
        self.record(Call::Chdir(path(dir)), &path(dir)).map(drop)
    }

    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> Result<(), Errno> {
        let call = Call::PivotRoot(path(new_root), path(put_old));
        self.record(call, &path(new_root)).map(drop)
    }

    fn set_nofile(&self, limit: u64) -> Result<(), Errno> {
        self.record(Call::SetNofile(limit), Path::new("")).map(drop)
    }

    fn set_id(&self, uid: u32, gid: u32) -> Result<(), Errno> {
        self.record(Call::SetId(uid, gid), Path::new("")).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_answers_reads_and_refuses_what_a_host_would() {
        let sys = RecordingSyscall::new().with_file("/cg/a/cgroup.procs", "7\n8\n");
        let procs = Path::new("/cg/a/cgroup.procs");
        assert_eq!(sys.read_to_string(procs).unwrap(), "7\n8\n");
        // No directory, no file.
        assert!(sys.write(Path::new("/nowhere/file"), "1").is_err());
        // A killed process leaves the cgroup.
        sys.kill(7, Signal::SIGKILL).unwrap();
        assert_eq!(sys.file(procs).as_deref(), Some("8\n"));
        // A directory with a subdirectory stays; one with files only goes with them.
        sys.create_dir_all(Path::new("/cg/a/b")).unwrap();
        let err = sys.remove_dir(Path::new("/cg/a")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTEMPTY));
        sys.remove_dir(Path::new("/cg/a/b")).unwrap();
        sys.remove_dir(Path::new("/cg/a")).unwrap();
        assert!(!sys.exists(procs));
        assert_eq!(
            sys.calls(),
            vec![
                Call::Write("/nowhere/file".into(), "1".into()),
                Call::Kill(7, Signal::SIGKILL),
                Call::CreateDirAll("/cg/a/b".into()),
                Call::RemoveDir("/cg/a".into()),
                Call::RemoveDir("/cg/a/b".into()),
                Call::RemoveDir("/cg/a".into()),
            ]
        );
    }
}
