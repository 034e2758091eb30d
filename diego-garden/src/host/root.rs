//! Paths inside a container's root directory, resolved by the kernel.
//!
//! Every file a host backend reads, writes or creates on behalf of a container (files in
//! and out, working directories, the container's `/etc/passwd`, mount points, programs)
//! is reached through a [`ContainerRoot`]: a directory file descriptor of the container's
//! root and `pathrs` (cyphar's libpathrs), which resolves each path with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` and, on kernels without `openat2`, with
//! its own walk of `O_PATH | O_NOFOLLOW` descriptors. A symbolic link, `..` or an absolute
//! link target resolves as if the root were `/` (a container's `/etc/passwd ->
//! /usr/share/passwd` stays in the container), however the container swaps its links
//! while we work: no container path is ever joined onto a host path and handed to a host
//! `open`. What is created is created by one call relative to the descriptor of its
//! parent, never following a final link; regular files are opened through the descriptor
//! that was checked, so a FIFO or a device swapped in is never opened.
//!
//! This module knows directories, files and links under one root; it must not know
//! containers, tar archives or processes.

use std::ffi::OsStr;
use std::fs::{File, Permissions};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, SFlag};
use pathrs::flags::OpenFlags;
use pathrs::{Handle, InodeType, Root};

/// Deepest directory nesting walked below one directory (each level holds a descriptor).
pub(crate) const MAX_WALK_DEPTH: usize = 128;

/// The kind of an inode, from its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A unix socket.
    Socket,
}

impl Kind {
    /// The kind of the inode `stat` describes.
    pub(crate) fn of(stat: &FileStat) -> Kind {
        let format = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
        match format {
            SFlag::S_IFDIR => Kind::Dir,
            SFlag::S_IFLNK => Kind::Symlink,
            SFlag::S_IFIFO => Kind::Fifo,
            SFlag::S_IFCHR => Kind::CharDevice,
            SFlag::S_IFBLK => Kind::BlockDevice,
            SFlag::S_IFSOCK => Kind::Socket,
            _ => Kind::File,
        }
    }

    /// The kind in words.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::File => "regular file",
            Kind::Dir => "directory",
            Kind::Symlink => "symbolic link",
            Kind::Fifo => "FIFO",
            Kind::CharDevice => "character device",
            Kind::BlockDevice => "block device",
            Kind::Socket => "socket",
        }
    }
}

/// The root directory of one container, opened once per operation (see the module docs).
#[derive(Debug)]
pub(crate) struct ContainerRoot {
    root: Root,
}

impl ContainerRoot {
    /// Opens the host directory that container path `/` maps to. `host_dir` belongs to the
    /// backend (the container cannot change it); everything below it is the container's.
    pub(crate) fn open(host_dir: &Path) -> io::Result<ContainerRoot> {
        Ok(ContainerRoot {
            root: Root::open(host_dir).map_err(io_error)?,
        })
    }

    /// A handle (`O_PATH`) on what `path` names, following links inside the root.
    pub(crate) fn resolve(&self, path: &str) -> io::Result<Handle> {
        self.root.resolve(path).map_err(io_error)
    }

    /// The kind of what `path` names, following links inside the root.
    pub(crate) fn kind(&self, path: &str) -> io::Result<Kind> {
        Ok(Kind::of(&stat(self.resolve(path)?)?))
    }

    /// Makes the directory `path` and its missing parents (mode 0755 less the umask) and
    /// returns a handle on it; links on the way resolve inside the root.
    pub(crate) fn mkdir_all(&self, path: &str) -> io::Result<Handle> {
        self.root
            .mkdir_all(path, &Permissions::from_mode(0o755))
            .map_err(io_error)
    }

    /// The contents of the regular file `path`, at most `limit` bytes: anything else (a
    /// FIFO, a device, a directory) is refused without being opened, a larger file without
    /// being read.
    pub(crate) fn read_limited(&self, path: &str, limit: u64) -> io::Result<Vec<u8>> {
        let handle = self.resolve(path)?;
        let stat = stat(&handle)?;
        let kind = Kind::of(&stat);
        if kind != Kind::File {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a regular file but a {}", kind.name()),
            ));
        }
        let too_large = |size: u64| {
            io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("{size} bytes, more than the limit of {limit}"),
            )
        };
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        if size > limit {
            return Err(too_large(size));
        }
        let file = reopen(&handle, OpenFlags::O_RDONLY)?;
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.take(limit.saturating_add(1)).read_to_end(&mut data)?;
        if data.len() as u64 > limit {
            // It grew since it was measured.
            return Err(too_large(data.len() as u64));
        }
        Ok(data)
    }

    /// Makes an empty regular file at `path` unless something is there (not following a
    /// final link; the parent resolves inside the root).
    pub(crate) fn touch(&self, path: &str, mode: u32) -> io::Result<()> {
        let made = self.root.create_file(
            path,
            OpenFlags::O_WRONLY | OpenFlags::O_NONBLOCK | OpenFlags::O_CLOEXEC,
            &Permissions::from_mode(mode & 0o777),
        );
        match made.map_err(io_error) {
            Ok(_) => Ok(()),
            Err(err) if err.raw_os_error() == Some(libc::ELOOP) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// The host path of what `handle` (from this root) refers to, as the kernel names it;
    /// an error when that is not below the root (it was moved out meanwhile).
    pub(crate) fn host_path(&self, handle: &Handle) -> io::Result<PathBuf> {
        let of = |fd: std::os::fd::BorrowedFd<'_>| {
            std::fs::read_link(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(&fd)
            ))
        };
        let root = of(self.root.as_fd())?;
        let path = of(handle.as_fd())?;
        if path.starts_with(&root) {
            Ok(path)
        } else {
            Err(io::Error::other(format!(
                "{} is not below the container root {}",
                path.display(),
                root.display()
            )))
        }
    }

    /// Replaces whatever non-directory is at `path` with a new empty regular file (mode
    /// `mode` less the umask) open for writing. The parent resolves inside the root; the
    /// file itself is made with `O_EXCL | O_NOFOLLOW`, so a link put there in between is
    /// an error, never followed.
    pub(crate) fn replace_file(&self, path: &str, mode: u32) -> io::Result<File> {
        self.remove_non_dir(path)?;
        self.root
            .create_file(
                path,
                OpenFlags::O_WRONLY | OpenFlags::O_EXCL | OpenFlags::O_CLOEXEC,
                &Permissions::from_mode(mode & 0o777),
            )
            .map_err(io_error)
    }

    /// Replaces whatever non-directory is at `path` with a symbolic link to `target`
    /// (any text: it is resolved inside the root whenever it is followed).
    pub(crate) fn replace_symlink(&self, path: &str, target: &Path) -> io::Result<()> {
        self.replace_with(path, &InodeType::Symlink(target.to_path_buf()))
    }

    /// Replaces whatever non-directory is at `path` with a hard link to the container path
    /// `target` (itself not followed when it is a link).
    pub(crate) fn replace_hard_link(&self, path: &str, target: &str) -> io::Result<()> {
        self.replace_with(path, &InodeType::Hardlink(PathBuf::from(target)))
    }

    /// Replaces whatever non-directory is at `path` with a FIFO.
    pub(crate) fn replace_fifo(&self, path: &str, mode: u32) -> io::Result<()> {
        self.replace_with(path, &InodeType::Fifo(Permissions::from_mode(mode & 0o777)))
    }

    fn replace_with(&self, path: &str, inode: &InodeType) -> io::Result<()> {
        self.remove_non_dir(path)?;
        self.root.create(path, inode).map_err(io_error)
    }

    /// Removes the non-directory at `path` (not following a final link); nothing there is
    /// fine, a directory is an error.
    fn remove_non_dir(&self, path: &str) -> io::Result<()> {
        match self.root.remove_file(path).map_err(io_error) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err),
        }
    }
}

/// Opens the inode `handle` refers to anew, with `flags` (no new path lookup: the same
/// inode that was checked).
pub(crate) fn reopen(handle: &Handle, flags: OpenFlags) -> io::Result<File> {
    handle
        .reopen(flags | OpenFlags::O_CLOEXEC | OpenFlags::O_NOCTTY)
        .map_err(io_error)
}

/// `fstat` of a descriptor (an `O_PATH` one too).
pub(crate) fn stat(fd: impl AsFd) -> io::Result<FileStat> {
    nix::sys::stat::fstat(fd).map_err(io::Error::from)
}

/// The entry `name` (one component, no `/`) of the directory `dir`, as an `O_PATH`
/// handle on the entry itself: a link is not followed, `..` and names with `/` are refused.
pub(crate) fn child(dir: impl AsFd, name: &OsStr) -> io::Result<Handle> {
    if name.is_empty() || name == "." || name == ".." || name.as_bytes().contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a directory entry name: {name:?}"),
        ));
    }
    let fd: OwnedFd = nix::fcntl::openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)?;
    Ok(Handle::from_fd(fd))
}

/// The names in the open directory `dir` (without `.` and `..`), sorted.
pub(crate) fn entries(dir: File) -> io::Result<Vec<std::ffi::OsString>> {
    let mut dir = nix::dir::Dir::from_fd(OwnedFd::from(dir)).map_err(io::Error::from)?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(io::Error::from)?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name != "." && name != ".." {
            names.push(name.to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Bytes used by the regular files under the directory `handle` (not following links;
/// [`MAX_WALK_DEPTH`] levels at most).
pub(crate) fn disk_usage(handle: &Handle) -> u64 {
    fn walk(handle: &Handle, depth: usize) -> u64 {
        let Ok(dir) = reopen(handle, OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY) else {
            return 0;
        };
        let Ok(dup) = dir.try_clone() else { return 0 };
        let Ok(names) = entries(dup) else { return 0 };
        let mut total = 0;
        for name in names {
            let Ok(entry) = child(&dir, &name) else {
                continue;
            };
            let Ok(stat) = stat(&entry) else { continue };
            match Kind::of(&stat) {
                Kind::Dir if depth < MAX_WALK_DEPTH => total += walk(&entry, depth + 1),
                Kind::Dir => {}
                _ => total += u64::try_from(stat.st_size).unwrap_or(0),
            }
        }
        total
    }
    walk(handle, 0)
}

/// A pathrs error as an I/O error: the system call's own error when there is one (so
/// `NotFound` stays `NotFound`), otherwise the whole chain of causes in words.
fn io_error(err: pathrs::error::Error) -> io::Error {
    if let pathrs::error::ErrorKind::OsError(Some(errno)) = err.kind() {
        return io::Error::from_raw_os_error(errno);
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    io::Error::other(text)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;

    /// A fresh directory with a container root `root/` and a host directory `host/` beside
    /// it holding `secret`.
    pub(crate) struct Scratch {
        pub(crate) dir: PathBuf,
    }

    impl Scratch {
        pub(crate) fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "garden-root-{name}-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(dir.join("root/etc")).unwrap();
            std::fs::create_dir_all(dir.join("host")).unwrap();
            std::fs::write(dir.join("host/secret"), "host secret\n").unwrap();
            Scratch { dir }
        }

        pub(crate) fn root(&self) -> PathBuf {
            self.dir.join("root")
        }

        pub(crate) fn host(&self) -> PathBuf {
            self.dir.join("host")
        }

        pub(crate) fn open(&self) -> ContainerRoot {
            ContainerRoot::open(&self.root()).unwrap()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn links_and_dot_dots_resolve_inside_the_root() {
        let s = Scratch::new("links");
        std::fs::write(s.root().join("etc/passwd"), "root:x:0:0::/:/bin/sh\n").unwrap();
        std::fs::create_dir_all(s.root().join("a")).unwrap();
        // A link to the host's directory, by absolute path, and one climbing out.
        symlink(s.host(), s.root().join("a/host")).unwrap();
        symlink("/etc", s.root().join("a/etc")).unwrap();
        symlink("../../../../../..", s.root().join("a/up")).unwrap();
        let root = s.open();
        assert_eq!(
            root.read_limited("/a/etc/passwd", 1024).unwrap(),
            b"root:x:0:0::/:/bin/sh\n"
        );
        assert_eq!(
            root.read_limited("a/up/etc/passwd", 1024).unwrap(),
            b"root:x:0:0::/:/bin/sh\n"
        );
        assert_eq!(
            root.read_limited("/../../etc/passwd", 1024).unwrap(),
            b"root:x:0:0::/:/bin/sh\n"
        );
        let err = root.read_limited("/a/host/secret", 1024).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
        // Made through a link: inside the root, at the link's in-root target.
        root.mkdir_all("/a/up/made/below").unwrap();
        assert!(s.root().join("made/below").is_dir());
        // Through the link to the host's directory (dangling inside the root): refused
        // or made inside, never in the host's directory.
        let _ = root.mkdir_all("/a/host/planted");
        assert!(!s.host().join("planted").exists());
        std::fs::create_dir_all(s.root().join(s.host().strip_prefix("/").unwrap())).unwrap();
        root.mkdir_all("/a/host/planted").unwrap();
        assert!(s
            .root()
            .join(s.host().strip_prefix("/").unwrap())
            .join("planted")
            .is_dir());
        assert!(!s.host().join("planted").exists());
        assert_eq!(root.kind("/a/etc").unwrap(), Kind::Dir);
    }

    #[test]
    fn replacing_never_follows_a_final_link() {
        let s = Scratch::new("replace");
        symlink(s.host().join("secret"), s.root().join("etc/passwd")).unwrap();
        symlink("/etc/passwd", s.root().join("via")).unwrap();
        let root = s.open();
        let mut file = root.replace_file("/etc/passwd", 0o644).unwrap();
        io::Write::write_all(&mut file, b"mine\n").unwrap();
        assert_eq!(
            std::fs::read(s.host().join("secret")).unwrap(),
            b"host secret\n"
        );
        assert_eq!(
            std::fs::read(s.root().join("etc/passwd")).unwrap(),
            b"mine\n"
        );
        assert!(!s.root().join("etc/passwd").is_symlink());
        // A link named as the parent resolves inside the root.
        symlink("/etc", s.root().join("etc-link")).unwrap();
        root.replace_symlink("/etc-link/x", Path::new("/anywhere"))
            .unwrap();
        assert_eq!(
            std::fs::read_link(s.root().join("etc/x")).unwrap(),
            Path::new("/anywhere")
        );
        root.replace_hard_link("/etc/hard", "/etc/passwd").unwrap();
        assert_eq!(std::fs::read(s.root().join("etc/hard")).unwrap(), b"mine\n");
        // A directory is not replaced.
        std::fs::create_dir_all(s.root().join("dir")).unwrap();
        assert!(root.replace_file("/dir", 0o644).is_err());
    }

    #[test]
    fn a_fifo_and_a_huge_sparse_file_are_refused_at_once() {
        let s = Scratch::new("bounded");
        nix::unistd::mkfifo(
            &s.root().join("etc/passwd"),
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let sparse = File::create(s.root().join("etc/group")).unwrap();
        sparse.set_len(10 << 30).unwrap();
        let root = s.open();
        let started = Instant::now();
        let fifo = root.read_limited("/etc/passwd", 1 << 20).unwrap_err();
        assert_eq!(fifo.kind(), io::ErrorKind::InvalidInput, "{fifo}");
        assert!(fifo.to_string().contains("FIFO"), "{fifo}");
        let huge = root.read_limited("/etc/group", 1 << 20).unwrap_err();
        assert_eq!(huge.kind(), io::ErrorKind::FileTooLarge, "{huge}");
        assert!(huge.to_string().contains("10737418240 bytes"), "{huge}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let dir = root.read_limited("/etc", 1 << 20).unwrap_err();
        assert!(dir.to_string().contains("directory"), "{dir}");
        std::fs::write(s.root().join("small"), "12345").unwrap();
        assert_eq!(root.read_limited("/small", 5).unwrap(), b"12345");
        assert_eq!(
            root.read_limited("/small", 4).unwrap_err().kind(),
            io::ErrorKind::FileTooLarge
        );
    }

    /// A link swapped with a directory (renameat2 RENAME_EXCHANGE) by another thread the
    /// whole time never lets a read leave the root or a write land outside it.
    #[test]
    fn a_link_swapped_in_a_loop_never_leads_outside() {
        let s = Scratch::new("swap");
        std::fs::create_dir_all(s.root().join("d")).unwrap();
        std::fs::write(s.root().join("d/secret"), "inside\n").unwrap();
        symlink(s.host(), s.root().join("d-link")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let stop = Arc::clone(&stop);
            let root = s.root();
            std::thread::spawn(move || {
                let mut swaps = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    nix::fcntl::renameat2(
                        nix::fcntl::AT_FDCWD,
                        &root.join("d"),
                        nix::fcntl::AT_FDCWD,
                        &root.join("d-link"),
                        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                    )
                    .unwrap();
                    swaps += 1;
                }
                swaps
            })
        };
        let root = s.open();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut reads = 0;
        for i in 0..5_000 {
            if Instant::now() > deadline {
                break;
            }
            if let Ok(data) = root.read_limited("/d/secret", 1024) {
                assert_eq!(data, b"inside\n", "read the host's file");
                reads += 1;
            }
            if let Ok(mut file) = root.replace_file(&format!("/d/planted-{i}"), 0o644) {
                io::Write::write_all(&mut file, b"x").unwrap();
            }
        }
        stop.store(true, Ordering::Relaxed);
        let swaps = swapper.join().unwrap();
        assert!(swaps > 100, "the link was swapped only {swaps} times");
        assert!(reads > 0, "no read went through");
        let outside: Vec<_> = std::fs::read_dir(s.host())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "secret")
            .collect();
        assert!(outside.is_empty(), "written outside the root: {outside:?}");
    }

    #[test]
    fn disk_usage_counts_files_without_following_links() {
        let s = Scratch::new("usage");
        std::fs::write(s.root().join("etc/a"), vec![0u8; 1000]).unwrap();
        std::fs::create_dir_all(s.root().join("x/y")).unwrap();
        std::fs::write(s.root().join("x/y/b"), vec![0u8; 24]).unwrap();
        symlink(s.host(), s.root().join("x/host")).unwrap();
        let root = s.open();
        let usage = disk_usage(&root.resolve("/").unwrap());
        // The link itself counts its own length, not the host's files.
        let link_len = s.host().as_os_str().len() as u64;
        assert_eq!(usage, 1024 + link_len);
    }
}
