//! Turning a downloaded file into a tar stream for `stream_in`: tar as it is, tgz
//! decompressed, zip repacked, any other file wrapped as a single entry.
//!
//! Blocking code (run it on a blocking thread). It knows archive formats only.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// What a downloaded file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A tar archive.
    Tar,
    /// A gzip-compressed tar archive.
    Tgz,
    /// A zip archive.
    Zip,
    /// Anything else: copied as one file.
    Plain,
}

/// Looks at the first bytes of `path`.
pub(crate) fn detect(path: &Path) -> io::Result<ArchiveKind> {
    let mut file = File::open(path)?;
    let mut head = [0u8; 512];
    let mut filled = 0;
    while filled < head.len() {
        let n = file.read(&mut head[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let head = &head[..filled];
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        ArchiveKind::Tgz
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        ArchiveKind::Zip
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        ArchiveKind::Tar
    } else {
        ArchiveKind::Plain
    })
}

/// A tar file ready to stream, and whether it is a temporary made for this use.
#[derive(Debug)]
pub(crate) struct PreparedTar {
    pub(crate) path: PathBuf,
    pub(crate) temporary: bool,
    pub(crate) kind: ArchiveKind,
}

/// Makes a tar of `source` in `scratch` (unless it is one already). A plain file becomes
/// one entry named `plain_name`.
pub(crate) fn prepare(source: &Path, scratch: &Path, plain_name: &str) -> io::Result<PreparedTar> {
    let kind = detect(source)?;
    if kind == ArchiveKind::Tar {
        return Ok(PreparedTar {
            path: source.to_path_buf(),
            temporary: false,
            kind,
        });
    }
    let target = scratch.join(format!("prepared-{}-{}.tar", std::process::id(), unique()));
    let result = write_tar(kind, source, &target, plain_name);
    if let Err(err) = result {
        let _ = std::fs::remove_file(&target);
        return Err(err);
    }
    Ok(PreparedTar {
        path: target,
        temporary: true,
        kind,
    })
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn write_tar(kind: ArchiveKind, source: &Path, target: &Path, plain_name: &str) -> io::Result<()> {
    let out = File::create(target)?;
    match kind {
        ArchiveKind::Tar => Ok(()),
        ArchiveKind::Tgz => {
            let mut decoder = flate2::read::GzDecoder::new(File::open(source)?);
            let mut out = out;
            io::copy(&mut decoder, &mut out)?;
            out.sync_all()
        }
        ArchiveKind::Zip => {
            let mut zip = zip::ZipArchive::new(File::open(source)?).map_err(io::Error::other)?;
            let mut builder = tar::Builder::new(out);
            for i in 0..zip.len() {
                let mut entry = zip.by_index(i).map_err(io::Error::other)?;
                let Some(name) = entry.enclosed_name() else {
                    return Err(io::Error::other(format!(
                        "zip entry escapes its directory: {}",
                        entry.name()
                    )));
                };
                let name = name.to_string_lossy().into_owned();
                let mut header = tar::Header::new_gnu();
                if entry.is_dir() {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(entry.unix_mode().unwrap_or(0o755) & 0o7777);
                    header.set_size(0);
                    builder.append_data(&mut header, format!("{name}/"), io::empty())?;
                } else if entry.is_file() {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(entry.unix_mode().unwrap_or(0o644) & 0o7777);
                    header.set_size(entry.size());
                    builder.append_data(&mut header, &name, &mut entry)?;
                }
            }
            builder.into_inner()?.sync_all()
        }
        ArchiveKind::Plain => {
            let mut file = File::open(source)?;
            let size = file.seek(SeekFrom::End(0))?;
            file.seek(SeekFrom::Start(0))?;
            let mut builder = tar::Builder::new(out);
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(size);
            builder.append_data(&mut header, plain_name, file)?;
            builder.into_inner()?.sync_all()
        }
    }
}

/// The bytes of the first regular file of a tar archive, refusing more than `limit`.
pub(crate) fn first_file(archive: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries()? {
        let entry = entry?;
        if entry.header().entry_type().is_file() {
            let size = entry.header().size()?;
            if size > limit {
                return Err(io::Error::other(format!(
                    "file is {size} bytes, more than {limit}"
                )));
            }
            let mut data = Vec::with_capacity(size as usize);
            entry.take(limit + 1).read_to_end(&mut data)?;
            return Ok(data);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "no file in the archive",
    ))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("archive-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(path: &Path) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(File::open(path).unwrap());
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (name, data)
            })
            .collect()
    }

    fn tar_bytes() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "app/hello.txt", &b"hello"[..])
            .unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn every_kind_becomes_a_tar() {
        let dir = scratch("kinds");
        let tar_path = dir.join("a.tar");
        std::fs::write(&tar_path, tar_bytes()).unwrap();
        let tgz_path = dir.join("a.tgz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar_bytes()).unwrap();
        std::fs::write(&tgz_path, gz.finish().unwrap()).unwrap();
        let zip_path = dir.join("a.zip");
        let mut zw = zip::ZipWriter::new(File::create(&zip_path).unwrap());
        zw.add_directory("app/", zip::write::SimpleFileOptions::default())
            .unwrap();
        zw.start_file("app/hello.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        zw.write_all(b"hello").unwrap();
        zw.finish().unwrap();
        let plain_path = dir.join("blob");
        std::fs::write(&plain_path, b"just bytes").unwrap();

        let tar = prepare(&tar_path, &dir, "x").unwrap();
        assert_eq!((tar.kind, tar.temporary), (ArchiveKind::Tar, false));
        assert_eq!(
            entries(&tar.path),
            [("app/hello.txt".into(), b"hello".to_vec())]
        );
        let tgz = prepare(&tgz_path, &dir, "x").unwrap();
        assert_eq!((tgz.kind, tgz.temporary), (ArchiveKind::Tgz, true));
        assert_eq!(
            entries(&tgz.path),
            [("app/hello.txt".into(), b"hello".to_vec())]
        );
        let zip = prepare(&zip_path, &dir, "x").unwrap();
        assert_eq!(zip.kind, ArchiveKind::Zip);
        assert_eq!(
            entries(&zip.path),
            [
                ("app/".into(), vec![]),
                ("app/hello.txt".into(), b"hello".to_vec())
            ]
        );
        let plain = prepare(&plain_path, &dir, "config.yml").unwrap();
        assert_eq!(plain.kind, ArchiveKind::Plain);
        assert_eq!(
            entries(&plain.path),
            [("config.yml".into(), b"just bytes".to_vec())]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn first_file_respects_the_limit() {
        let bytes = tar_bytes();
        assert_eq!(first_file(&bytes, 5).unwrap(), b"hello");
        assert!(first_file(&bytes, 4).is_err());
        let empty = tar::Builder::new(Vec::new()).into_inner().unwrap();
        assert!(first_file(&empty, 10).is_err());
    }
}
