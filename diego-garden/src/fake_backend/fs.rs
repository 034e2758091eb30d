//! The in-memory file tree of a fake container, with tar in and out.

use std::collections::BTreeMap;
use std::io::Read;

use bytes::Bytes;

use crate::error::{Error, Result};

/// A node of the tree.
#[derive(Debug, Clone)]
enum Node {
    Dir,
    File { data: Bytes, mode: u32 },
}

/// Files and directories by normalized absolute path (`/` is implied).
#[derive(Debug, Default)]
pub(crate) struct FakeFs {
    nodes: BTreeMap<String, Node>,
}

/// Normalizes a container path: absolute, no `.`/`..`/empty components. `..` above the
/// root stays at the root, as in a real filesystem.
pub(crate) fn normalize(base: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{base}/{path}")
    };
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

impl FakeFs {
    fn ensure_dirs(&mut self, path: &str) {
        let mut prefix = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            prefix.push('/');
            prefix.push_str(part);
            self.nodes.entry(prefix.clone()).or_insert(Node::Dir);
        }
    }

    /// Creates a directory and its parents.
    pub(crate) fn mkdir_all(&mut self, path: &str) {
        self.ensure_dirs(&normalize("/", path));
    }

    /// Reads a file.
    pub(crate) fn read(&self, path: &str) -> Option<Bytes> {
        match self.nodes.get(&normalize("/", path)) {
            Some(Node::File { data, .. }) => Some(data.clone()),
            _ => None,
        }
    }

    /// Writes a file, creating its parents.
    pub(crate) fn write(&mut self, path: &str, data: Bytes) {
        let path = normalize("/", path);
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.ensure_dirs(parent);
        }
        self.nodes.insert(path, Node::File { data, mode: 0o644 });
    }

    /// Bytes held by files.
    pub(crate) fn disk_bytes(&self) -> u64 {
        self.nodes
            .values()
            .map(|node| match node {
                Node::File { data, .. } => data.len() as u64,
                Node::Dir => 0,
            })
            .sum()
    }

    /// Unpacks a tar archive into directory `dest`.
    pub(crate) fn unpack(&mut self, dest: &str, archive: &[u8]) -> Result<()> {
        let dest = normalize("/", dest);
        self.ensure_dirs(&dest);
        let mut archive = tar::Archive::new(archive);
        let entries = archive
            .entries()
            .map_err(|e| Error::backend("reading a tar archive", e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::backend("reading a tar entry", e))?;
            let raw = entry
                .path()
                .map_err(|e| Error::backend("reading a tar entry path", e))?
                .to_string_lossy()
                .into_owned();
            if raw.split('/').any(|part| part == "..") {
                return Err(Error::invalid(format!(
                    "tar entry escapes its directory: {raw}"
                )));
            }
            let path = normalize(&dest, &raw);
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                self.ensure_dirs(&path);
            } else if kind.is_file() {
                let mode = entry.header().mode().unwrap_or(0o644);
                let mut data = Vec::new();
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| Error::backend("reading a tar entry", e))?;
                if let Some((parent, _)) = path.rsplit_once('/') {
                    self.ensure_dirs(parent);
                }
                self.nodes.insert(
                    path,
                    Node::File {
                        data: Bytes::from(data),
                        mode,
                    },
                );
            }
            // Links and special files have no meaning in the fake; they are skipped.
        }
        Ok(())
    }

    /// Packs the file or directory at `path` into a tar archive whose top entry is its
    /// base name.
    pub(crate) fn pack(&self, path: &str) -> Result<Vec<u8>> {
        let path = normalize("/", path);
        let top = path
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or(".")
            .to_string();
        let mut builder = tar::Builder::new(Vec::new());
        let mut append = |name: &str, node: &Node| -> std::io::Result<()> {
            let mut header = tar::Header::new_gnu();
            match node {
                Node::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    builder.append_data(&mut header, format!("{name}/"), std::io::empty())
                }
                Node::File { data, mode } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, name, &data[..])
                }
            }
        };
        let wrap = |e: std::io::Error| Error::backend("writing a tar archive", e);
        match self.nodes.get(&path) {
            Some(node @ Node::File { .. }) => append(&top, node).map_err(wrap)?,
            Some(Node::Dir) => self.pack_dir(&path, &top, &mut append).map_err(wrap)?,
            None if path == "/" => self.pack_dir(&path, &top, &mut append).map_err(wrap)?,
            None => return Err(Error::PathNotFound { path }),
        }
        builder.into_inner().map_err(wrap)
    }

    fn pack_dir(
        &self,
        path: &str,
        top: &str,
        append: &mut dyn FnMut(&str, &Node) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        append(top, &Node::Dir)?;
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        for (child, node) in self.nodes.range(prefix.clone()..) {
            let Some(rest) = child.strip_prefix(&prefix) else {
                break;
            };
            append(&format!("{top}/{rest}"), node)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize_inside_the_root() {
        assert_eq!(normalize("/a", "b/../c/./d"), "/a/c/d");
        assert_eq!(normalize("/a", "/x"), "/x");
        assert_eq!(normalize("/", "../../etc"), "/etc");
    }

    #[test]
    fn pack_then_unpack_round_trips() {
        let mut fs = FakeFs::default();
        fs.write("/data/a.txt", Bytes::from_static(b"hello"));
        fs.write("/data/sub/b.txt", Bytes::from_static(b"bee"));
        let tar = fs.pack("/data").unwrap();
        let mut other = FakeFs::default();
        other.unpack("/copy", &tar).unwrap();
        assert_eq!(
            other.read("/copy/data/a.txt").unwrap(),
            Bytes::from_static(b"hello")
        );
        assert_eq!(
            other.read("/copy/data/sub/b.txt").unwrap(),
            Bytes::from_static(b"bee")
        );
        assert_eq!(other.disk_bytes(), 8);
        assert!(matches!(fs.pack("/nope"), Err(Error::PathNotFound { .. })));
    }
}
