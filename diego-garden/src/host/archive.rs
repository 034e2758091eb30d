//! Files in and out of a container directory on the host: tar streams and the resolution
//! of container paths that must never leave the container's root.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::backend::ByteStream;
use crate::error::{Error, Result};

/// Most symbolic links followed while resolving one path (as the kernel's `ELOOP`).
const MAX_SYMLINKS: usize = 40;

/// The host path of `container_path` under `root`, following symbolic links as if `root`
/// were `/`: no link or `..` leads outside `root`.
pub(crate) fn resolve_in_root(root: &Path, container_path: &str) -> Result<PathBuf> {
    let mut pending: VecDeque<OsString> = Path::new(container_path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(resolved.iter());
        candidate.push(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Error::invalid(format!(
                        "too many symbolic links in {container_path}"
                    )));
                }
                let target = std::fs::read_link(&candidate).map_err(|e| {
                    Error::backend(format!("reading link {}", candidate.display()), e)
                })?;
                if target.is_absolute() {
                    resolved.clear();
                }
                let mut parts: Vec<OsString> = target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(p) => Some(p.to_os_string()),
                        Component::ParentDir => Some(OsString::from("..")),
                        _ => None,
                    })
                    .collect();
                while let Some(p) = parts.pop() {
                    pending.push_front(p);
                }
            }
            _ => resolved.push(part),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(resolved.iter());
    Ok(out)
}

/// Unpacks a tar stream into the host directory `dest` (created when missing).
pub(crate) async fn unpack(dest: PathBuf, tar: ByteStream) -> Result<()> {
    let reader = StreamReader::new(tar);
    let bridge = SyncIoBridge::new(reader);
    tokio::task::spawn_blocking(move || -> Result<()> {
        std::fs::create_dir_all(&dest)
            .map_err(|e| Error::backend(format!("creating {}", dest.display()), e))?;
        let mut archive = tar::Archive::new(bridge);
        archive.set_preserve_permissions(true);
        archive.set_overwrite(true);
        archive.unpack(&dest).map_err(|e| {
            Error::backend(format!("unpacking a tar stream into {}", dest.display()), e)
        })
    })
    .await
    .map_err(|e| Error::backend("unpacking a tar stream", e))?
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

/// Packs the host file or directory `path` as a tar stream whose top entry is `name`.
/// Fails with `PathNotFound` (reporting `container_path`) when it does not exist.
pub(crate) fn pack(path: PathBuf, name: String, container_path: &str) -> Result<ByteStream> {
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::PathNotFound {
                path: container_path.to_string(),
            })
        }
        Err(err) => return Err(Error::backend(format!("reading {}", path.display()), err)),
    };
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let mut builder = tar::Builder::new(writer);
        builder.follow_symlinks(false);
        let result = if meta.is_dir() {
            builder.append_dir_all(&name, &path)
        } else {
            builder.append_path_with_name(&path, &name)
        }
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

/// The base name a `stream_out` archive uses for `container_path`.
pub(crate) fn top_name(container_path: &str) -> String {
    Path::new(container_path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".to_string())
}

/// Bytes used by the files under `path` (not following links; 0 when missing).
pub(crate) fn disk_usage(path: &Path) -> u64 {
    fn walk(path: &Path, total: &mut u64, depth: usize) {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                if depth < 256 {
                    walk(&entry.path(), total, depth + 1);
                }
            } else {
                *total += meta.len();
            }
        }
    }
    let mut total = 0;
    walk(path, &mut total, 0);
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_cannot_leave_the_root() {
        let root = std::env::temp_dir().join(format!("garden-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("a/etc")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("a/up")).unwrap();
        assert_eq!(
            resolve_in_root(&root, "/a/etc/passwd").unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(resolve_in_root(&root, "a/up/x").unwrap(), root.join("x"));
        assert_eq!(resolve_in_root(&root, "/../../x").unwrap(), root.join("x"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
