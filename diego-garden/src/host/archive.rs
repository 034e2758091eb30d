//! Files in and out of a container root as tar streams, every entry made or read through
//! a [`ContainerRoot`] (see the `root` module): an entry's path, a link in the way, or a
//! link swapped in while the archive is unpacked or packed never leads outside the root.
//!
//! Unpacking strips a leading `/` and refuses names with `..`; symbolic links are made as
//! they are (they resolve inside the root when followed), hard links point inside the
//! destination; device nodes are not made. Packing reads regular files through the
//! descriptor it checked, records links, FIFOs and devices as entries without opening
//! them, and skips sockets.
//!
//! This module knows tar and container paths; it must not know containers or processes.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use nix::sys::stat::FileStat;
use nix::sys::time::TimeSpec;
use pathrs::flags::OpenFlags;
use pathrs::Handle;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::root::{self, ContainerRoot, Kind, MAX_WALK_DEPTH};
use crate::backend::ByteStream;
use crate::error::{Error, Result};

/// Opens the root of a container for `what`.
pub(crate) fn open_root(host_root: &Path, what: &str) -> Result<ContainerRoot> {
    ContainerRoot::open(host_root).map_err(|e| {
        Error::backend(
            format!(
                "opening the container root {} for {what}",
                host_root.display()
            ),
            e,
        )
    })
}

/// Unpacks a tar stream into the container directory `dest` (created when missing) of the
/// container whose root is the host directory `host_root`.
pub(crate) async fn unpack(host_root: PathBuf, dest: String, tar: ByteStream) -> Result<()> {
    let reader = StreamReader::new(tar);
    let bridge = SyncIoBridge::new(reader);
    tokio::task::spawn_blocking(move || -> Result<()> {
        let root = open_root(&host_root, "stream_in")?;
        unpack_into(&root, &dest, bridge)
    })
    .await
    .map_err(|e| Error::backend("unpacking a tar stream", e))?
}

/// The container path of `name` (an archive path) under `dest`: a leading `/` and `.`
/// components dropped; `None` for the destination itself; an error for `..`.
fn entry_path(dest: &str, name: &Path) -> Result<Option<String>> {
    let mut path = dest.trim_end_matches('/').to_string();
    let mut any = false;
    for component in name.components() {
        match component {
            Component::Normal(part) => {
                path.push('/');
                path.push_str(&part.to_string_lossy());
                any = true;
            }
            Component::ParentDir => {
                return Err(Error::invalid(format!(
                    "tar entry {} reaches outside its destination",
                    name.display()
                )))
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(any.then_some(path))
}

/// Unpacks the tar archive `reader` into the container directory `dest` of `root`.
pub(crate) fn unpack_into(root: &ContainerRoot, dest: &str, reader: impl Read) -> Result<()> {
    let failed = |what: String| move |e: io::Error| Error::backend(what, e);
    root.mkdir_all(dest)
        .map_err(failed(format!("creating {dest}")))?;
    let mut archive = tar::Archive::new(reader);
    // Directory modes and times are set last, so that a read-only one still takes its
    // entries.
    let mut dirs: Vec<(String, u32, u64)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(failed(format!("reading a tar stream into {dest}")))?;
    for entry in entries {
        let mut entry = entry.map_err(failed(format!("reading a tar stream into {dest}")))?;
        let name = entry
            .path()
            .map_err(failed(format!("reading a tar entry name into {dest}")))?
            .into_owned();
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644);
        let mtime = entry.header().mtime().unwrap_or(0);
        let Some(path) = entry_path(dest, &name)? else {
            if kind.is_dir() {
                dirs.push((dest.to_string(), mode, mtime));
            }
            continue;
        };
        let old_style_dir = entry.header().as_ustar().is_none()
            && entry.path_bytes().ends_with(b"/")
            && !kind.is_symlink()
            && !kind.is_hard_link();
        let made = if kind.is_dir() || old_style_dir {
            dirs.push((path.clone(), mode, mtime));
            root.mkdir_all(&path).map(drop)
        } else if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            Ok(())
        } else if kind.is_character_special() || kind.is_block_special() {
            tracing::debug!(path, "not making a device node from a tar stream");
            Ok(())
        } else {
            in_parent(root, &path, |root| {
                if kind.is_symlink() || kind.is_hard_link() {
                    let target = entry.link_name()?.ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "a link entry without a target")
                    })?;
                    if kind.is_symlink() {
                        root.replace_symlink(&path, &target)
                    } else {
                        let target = entry_path(dest, &target)
                            .map_err(io::Error::other)?
                            .ok_or_else(|| {
                                io::Error::new(io::ErrorKind::InvalidData, "a hard link to .")
                            })?;
                        root.replace_hard_link(&path, &target)
                    }
                } else if kind.is_fifo() {
                    root.replace_fifo(&path, mode)
                } else {
                    // Regular, contiguous, GNU sparse, or unknown (a regular file, as
                    // POSIX says).
                    let mut file = root.replace_file(&path, 0o600)?;
                    io::copy(&mut entry, &mut file)?;
                    set_mode_and_time(&file, mode, mtime)
                }
            })
        };
        made.map_err(failed(format!("unpacking {path}")))?;
    }
    for (path, mode, mtime) in dirs.into_iter().rev() {
        let dir = root
            .resolve(&path)
            .and_then(|handle| root::reopen(&handle, OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY))
            .map_err(failed(format!("opening {path}")))?;
        set_mode_and_time(&dir, mode, mtime)
            .map_err(failed(format!("setting the mode of {path}")))?;
    }
    Ok(())
}

/// Runs `make` once the parent directory of `path` exists.
fn in_parent(
    root: &ContainerRoot,
    path: &str,
    make: impl FnOnce(&ContainerRoot) -> io::Result<()>,
) -> io::Result<()> {
    if let Some(parent) = Path::new(path).parent() {
        root.mkdir_all(&parent.to_string_lossy())?;
    }
    make(root)
}

/// Sets the permission bits and the access and modification times of an open file.
fn set_mode_and_time(file: &std::fs::File, mode: u32, mtime: u64) -> io::Result<()> {
    nix::sys::stat::fchmod(
        file,
        nix::sys::stat::Mode::from_bits_truncate(mode & 0o7777),
    )?;
    let time = TimeSpec::new(i64::try_from(mtime).unwrap_or(i64::MAX), 0);
    nix::sys::stat::futimens(file, &time, &time)?;
    Ok(())
}

struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "tar stream dropped by its reader",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Packs the file or directory at the container path `path` of the container whose root
/// is the host directory `host_root` as a tar stream whose top entry is the base name of
/// `path`. Fails with `PathNotFound` when nothing is there.
pub(crate) fn pack(host_root: &Path, path: &str) -> Result<ByteStream> {
    let root = open_root(host_root, "stream_out")?;
    let top = match root.resolve(path) {
        Ok(top) => top,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(Error::PathNotFound {
                path: path.to_string(),
            })
        }
        Err(err) => return Err(Error::backend(format!("reading {path}"), err)),
    };
    let name = top_name(path);
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let mut builder = tar::Builder::new(writer);
        let result = pack_into(&mut builder, &top, &name)
            .and_then(|()| builder.into_inner())
            .and_then(|mut writer| writer.flush());
        if let Err(err) = result {
            let _ = tx.blocking_send(Err(err));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(stream.boxed())
}

/// Appends what `handle` refers to (and, for a directory, everything under it) as `name`.
pub(crate) fn pack_into<W: Write>(
    builder: &mut tar::Builder<W>,
    handle: &Handle,
    name: &str,
) -> io::Result<()> {
    append(builder, handle, name, 0, true)
}

fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    handle: &Handle,
    name: &str,
    depth: usize,
    top: bool,
) -> io::Result<()> {
    let stat = root::stat(handle)?;
    let kind = Kind::of(&stat);
    let mut header = header_of(&stat, kind)?;
    match kind {
        Kind::File => {
            let file = root::reopen(handle, OpenFlags::O_RDONLY)?;
            let size = header.size()?;
            builder.append_data(&mut header, name, Padded::new(file, size))
        }
        Kind::Dir => {
            builder.append_data(&mut header, name, io::empty())?;
            if depth >= MAX_WALK_DEPTH {
                return Err(io::Error::other(format!(
                    "{name}: more than {MAX_WALK_DEPTH} directory levels"
                )));
            }
            let dir = root::reopen(handle, OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)?;
            for child in root::entries(dir.try_clone()?)? {
                let entry = match root::child(&dir, &child) {
                    Ok(entry) => entry,
                    // Removed meanwhile.
                    Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(err),
                };
                let child_name = format!("{name}/{}", child.to_string_lossy());
                append(builder, &entry, &child_name, depth + 1, false)?;
            }
            Ok(())
        }
        Kind::Symlink => {
            let target = nix::fcntl::readlinkat(handle, OsStr::new(""))?;
            builder.append_link(&mut header, name, target)
        }
        Kind::Fifo | Kind::CharDevice | Kind::BlockDevice => {
            builder.append_data(&mut header, name, io::empty())
        }
        Kind::Socket if top => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} is a socket"),
        )),
        Kind::Socket => Ok(()),
    }
}

/// A tar header for an inode of this kind and status (size only for regular files).
fn header_of(stat: &FileStat, kind: Kind) -> io::Result<tar::Header> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(match kind {
        Kind::File | Kind::Socket => tar::EntryType::Regular,
        Kind::Dir => tar::EntryType::Directory,
        Kind::Symlink => tar::EntryType::Symlink,
        Kind::Fifo => tar::EntryType::Fifo,
        Kind::CharDevice => tar::EntryType::Char,
        Kind::BlockDevice => tar::EntryType::Block,
    });
    header.set_mode(stat.st_mode & 0o7777);
    header.set_uid(u64::from(stat.st_uid));
    header.set_gid(u64::from(stat.st_gid));
    header.set_mtime(u64::try_from(stat.st_mtime).unwrap_or(0));
    header.set_size(match kind {
        Kind::File => u64::try_from(stat.st_size).unwrap_or(0),
        _ => 0,
    });
    if matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
        let major = u32::try_from(nix::sys::stat::major(stat.st_rdev)).unwrap_or(0);
        let minor = u32::try_from(nix::sys::stat::minor(stat.st_rdev)).unwrap_or(0);
        header.set_device_major(major)?;
        header.set_device_minor(minor)?;
    }
    Ok(header)
}

/// Exactly `size` bytes of a file measured before it was read: a file that shrank
/// meanwhile is padded with zeros, one that grew is cut, so the archive stays well formed.
struct Padded<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> Padded<R> {
    fn new(inner: R, size: u64) -> Padded<R> {
        Padded {
            inner: inner.take(size),
            left: size,
        }
    }
}

impl<R: Read> Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let mut n = self.inner.read(buf)?;
        if n == 0 {
            n = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            buf[..n].fill(0);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The base name a `stream_out` archive uses for `container_path`.
pub(crate) fn top_name(container_path: &str) -> String {
    Path::new(container_path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".to_string())
}

/// Bytes used by the files under the host directory `path` (not following links; 0 when
/// missing).
pub(crate) fn disk_usage(path: &Path) -> u64 {
    ContainerRoot::open(path)
        .and_then(|root| root.resolve("/"))
        .map(|top| root::disk_usage(&top))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::symlink;

    use super::*;
    use crate::host::root::tests::Scratch;

    fn tar(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap()
    }

    fn file(builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o640);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, data).unwrap();
    }

    fn link(builder: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, name: &str, to: &str) {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(0);
        header.set_mode(0o777);
        builder.append_link(&mut header, name, to).unwrap();
    }

    /// A raw header: the tar crate's builder refuses `..` and absolute names itself.
    fn raw_file(name: &[u8], data: &[u8]) -> Vec<u8> {
        let mut header = tar::Header::new_old();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut out = header.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out.extend_from_slice(&[0; 1024]);
        out
    }

    #[test]
    fn entries_are_made_inside_the_root_through_links_in_the_archive_and_in_place() {
        let s = Scratch::new("unpack");
        let host = s.host();
        let root_dir = s.root();
        std::fs::create_dir_all(root_dir.join("srv")).unwrap();
        // The in-root targets of the links to the container's /etc and to the host's
        // directory (a dangling link on the way is an error, as for tar in a chroot).
        std::fs::create_dir_all(root_dir.join("etc")).unwrap();
        let host_inside = root_dir.join(host.strip_prefix("/").unwrap());
        std::fs::create_dir_all(&host_inside).unwrap();
        // The container's own absolute link to its /srv: followed inside the root.
        symlink("/srv", root_dir.join("app")).unwrap();
        let archive = tar(|b| {
            link(b, tar::EntryType::Symlink, "etc", "/etc");
            file(b, "etc/passwd", b"written\n");
            link(b, tar::EntryType::Symlink, "out", host.to_str().unwrap());
            file(b, "out/planted", b"x");
            file(b, "dir/file", b"data");
            link(b, tar::EntryType::Link, "dir/hard", "dir/file");
        });
        let root = ContainerRoot::open(&root_dir).unwrap();
        unpack_into(&root, "/app", &archive[..]).unwrap();
        assert_eq!(
            std::fs::read(root_dir.join("etc/passwd")).unwrap(),
            b"written\n"
        );
        assert_eq!(
            std::fs::read(root_dir.join("srv/dir/hard")).unwrap(),
            b"data"
        );
        assert_eq!(std::fs::read(host_inside.join("planted")).unwrap(), b"x");
        assert!(!host.join("planted").exists(), "written to the host");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root_dir.join("srv/dir/file"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn dot_dot_and_absolute_names() {
        let s = Scratch::new("names");
        let root_dir = s.root();
        let root = s.open();
        let err = unpack_into(&root, "/d", &raw_file(b"../../escaped", b"x")[..]).unwrap_err();
        assert!(err.to_string().contains("reaches outside"), "{err}");
        assert!(!s.dir.join("escaped").exists());
        unpack_into(&root, "/d", &raw_file(b"/abs/file", b"y")[..]).unwrap();
        assert_eq!(std::fs::read(root_dir.join("d/abs/file")).unwrap(), b"y");
    }

    fn packed(root_dir: &Path, path: &str) -> Vec<(String, tar::EntryType, Vec<u8>)> {
        let root = ContainerRoot::open(root_dir).unwrap();
        let top = root.resolve(path).unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        pack_into(&mut builder, &top, &top_name(path)).unwrap();
        let bytes = builder.into_inner().unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let kind = e.header().entry_type();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (name, kind, data)
            })
            .collect()
    }

    #[test]
    fn packing_records_links_and_fifos_without_following_or_opening_them() {
        let s = Scratch::new("pack");
        let root_dir = s.root();
        std::fs::create_dir_all(root_dir.join("d/sub")).unwrap();
        std::fs::write(root_dir.join("d/sub/f"), "inside").unwrap();
        symlink(s.host(), root_dir.join("d/host")).unwrap();
        nix::unistd::mkfifo(
            &root_dir.join("d/pipe"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        symlink("/d/sub", root_dir.join("top")).unwrap();
        let entries = packed(&root_dir, "/d");
        let names: Vec<(&str, tar::EntryType)> =
            entries.iter().map(|(n, k, _)| (n.as_str(), *k)).collect();
        assert_eq!(
            names,
            [
                ("d", tar::EntryType::Directory),
                ("d/host", tar::EntryType::Symlink),
                ("d/pipe", tar::EntryType::Fifo),
                ("d/sub", tar::EntryType::Directory),
                ("d/sub/f", tar::EntryType::Regular),
            ]
        );
        assert_eq!(entries[4].2, b"inside");
        // A top that is a link is followed inside the root.
        let entries = packed(&root_dir, "/top");
        assert_eq!(entries[0].0, "top");
        assert_eq!(entries[1].0, "top/f");
    }

    #[test]
    fn a_file_that_shrinks_while_packed_is_padded() {
        let mut padded = Padded::new(&b"abc"[..], 5);
        let mut out = Vec::new();
        padded.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0");
        let mut cut = Padded::new(&b"abcdef"[..], 2);
        let mut out = Vec::new();
        cut.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab");
    }
}
