//! [`LinuxSyscall`]: the real system calls, the default of every LinuxBackend.

use std::ffi::CStr;
use std::io;
use std::os::raw::{c_int, c_ulong};
use std::path::{Path, PathBuf};

use super::{Errno, MountPoint, Signal, Syscall};
use crate::host::root::ContainerRoot;

/// The kernel's system calls (and `std::fs` for the host-side file operations).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LinuxSyscall;

/// A C string pointer, or null.
fn ptr_or_null(s: Option<&CStr>) -> *const libc::c_char {
    s.map_or(std::ptr::null(), CStr::as_ptr)
}

impl Syscall for LinuxSyscall {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }

    fn write(&self, path: &Path, contents: &str) -> io::Result<()> {
        std::fs::write(path, contents)
    }

    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn is_dir(&self, path: &Path) -> io::Result<bool> {
        std::fs::metadata(path).map(|meta| meta.is_dir())
    }

    fn mount_point(&self, root: &Path, path: &str, kind: MountPoint) -> io::Result<PathBuf> {
        let root = ContainerRoot::open(root)?;
        let handle = match root.resolve(path) {
            Ok(handle) => handle,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                match kind {
                    MountPoint::Dir(mode) => {
                        let made = root.mkdir_all(path)?;
                        let dir = crate::host::root::reopen(
                            &made,
                            pathrs::flags::OpenFlags::O_RDONLY
                                | pathrs::flags::OpenFlags::O_DIRECTORY,
                        )?;
                        nix::sys::stat::fchmod(
                            &dir,
                            nix::sys::stat::Mode::from_bits_truncate(mode),
                        )?;
                    }
                    MountPoint::File => {
                        if let Some(parent) = Path::new(path).parent() {
                            root.mkdir_all(&parent.to_string_lossy())?;
                        }
                        root.touch(path, 0o644)?;
                    }
                }
                root.resolve(path)?
            }
            Err(err) => return Err(err),
        };
        root.host_path(&handle)
    }

    fn kill(&self, pid: i32, signal: Signal) -> io::Result<()> {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)?;
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
        // SAFETY: valid C strings or null, as mount(2) takes them.
        let ret = unsafe {
            libc::mount(
                ptr_or_null(source),
                target.as_ptr(),
                ptr_or_null(fstype),
                flags,
                ptr_or_null(data).cast(),
            )
        };
        Errno::result(ret).map(drop)
    }

    fn umount2(&self, target: &CStr, flags: c_int) -> Result<(), Errno> {
        // SAFETY: a valid C string.
        Errno::result(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
    }

    fn write_file(&self, path: &CStr, data: &[u8]) -> Result<(), Errno> {
        // SAFETY: plain system calls on a valid C string and buffer.
        unsafe {
            let fd = Errno::result(libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC))?;
            let written = libc::write(fd, data.as_ptr().cast(), data.len());
            let error = Errno::last();
            libc::close(fd);
            if written < 0 {
                return Err(error);
            }
        }
        Ok(())
    }

    fn setns(&self, fd: c_int, nstype: c_int) -> Result<(), Errno> {
        // SAFETY: setns(2) takes plain integers.
        Errno::result(unsafe { libc::setns(fd, nstype) }).map(drop)
    }

    fn unshare(&self, flags: c_int) -> Result<(), Errno> {
        // SAFETY: unshare(2) takes a plain integer.
        Errno::result(unsafe { libc::unshare(flags) }).map(drop)
    }

    fn sethostname(&self, name: &[u8]) -> Result<(), Errno> {
        // SAFETY: a valid buffer of `name.len()` bytes.
        Errno::result(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
    }

    fn create_file(&self, path: &CStr, mode: libc::mode_t) -> Result<(), Errno> {
        // SAFETY: a valid C string.
        unsafe {
            let fd = Errno::result(libc::open(
                path.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                mode,
            ))?;
            libc::close(fd);
        }
        Ok(())
    }

    fn symlink(&self, target: &CStr, link: &CStr) -> Result<(), Errno> {
        // SAFETY: valid C strings.
        Errno::result(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }).map(drop)
    }

    fn mkdir(&self, path: &CStr, mode: libc::mode_t) -> Result<(), Errno> {
        // SAFETY: a valid C string.
        Errno::result(unsafe { libc::mkdir(path.as_ptr(), mode) }).map(drop)
    }

    fn chdir(&self, path: &CStr) -> Result<(), Errno> {
        // SAFETY: a valid C string.
        Errno::result(unsafe { libc::chdir(path.as_ptr()) }).map(drop)
    }

    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> Result<(), Errno> {
        // SAFETY: valid C strings; libc has no wrapper for pivot_root(2).
        let ret =
            unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
        Errno::result(ret as c_int).map(drop)
    }

    fn set_nofile(&self, limit: u64) -> Result<(), Errno> {
        let limit = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: a valid rlimit.
        Errno::result(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }).map(drop)
    }

    fn set_id(&self, uid: u32, gid: u32) -> Result<(), Errno> {
        // SAFETY: plain system calls; setgroups(2) with an empty list.
        unsafe {
            Errno::result(libc::setgroups(0, std::ptr::null()))?;
            Errno::result(libc::setgid(gid))?;
            Errno::result(libc::setuid(uid))?;
        }
        Ok(())
    }
}
