//! Root filesystems of Linux containers: which directory a rootfs spec names (a
//! directory, a tarball unpacked once and shared, a preloaded name), and the per-container
//! overlay (read-only lower layer, writable upper layer).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::cstring;
use super::syscall::{Errno, Syscall};
use crate::error::{Error, Result};

/// Resolves rootfs specs to lower directories, unpacking tarballs once into a cache.
#[derive(Debug)]
pub(crate) struct RootfsResolver {
    default: String,
    preloaded: BTreeMap<String, PathBuf>,
    cache_dir: PathBuf,
    unpacking: Mutex<()>,
}

fn is_tarball(path: &Path) -> bool {
    let name = path.file_name().and_then(OsStr::to_str).unwrap_or("");
    name.ends_with(".tar") || name.ends_with(".tar.gz") || name.ends_with(".tgz")
}

impl RootfsResolver {
    pub(crate) fn new(
        default: String,
        preloaded: BTreeMap<String, PathBuf>,
        cache_dir: PathBuf,
    ) -> Self {
        RootfsResolver {
            default,
            preloaded,
            cache_dir,
            unpacking: Mutex::new(()),
        }
    }

    /// The read-only directory for `spec` (blocking: may unpack a tarball).
    pub(crate) fn resolve(&self, spec: &str) -> Result<PathBuf> {
        let spec = if spec.is_empty() {
            self.default.as_str()
        } else {
            spec
        };
        if spec.is_empty() {
            return Err(Error::invalid(
                "no rootfs given and the backend has no default",
            ));
        }
        let path = if let Some(name) = spec.strip_prefix("preloaded:") {
            self.preloaded
                .get(name)
                .cloned()
                .ok_or_else(|| Error::invalid(format!("unknown preloaded rootfs: {name}")))?
        } else if let Some(path) = spec.strip_prefix("file://") {
            PathBuf::from(path)
        } else if spec.starts_with('/') {
            PathBuf::from(spec)
        } else {
            return Err(Error::Unsupported {
                what: format!("rootfs {spec} (use a directory, a tarball, or preloaded:<name>)"),
            });
        };
        let meta = std::fs::metadata(&path)
            .map_err(|e| Error::backend(format!("reading rootfs {}", path.display()), e))?;
        if meta.is_dir() {
            Ok(path)
        } else if is_tarball(&path) {
            self.unpacked(&path, &meta)
        } else {
            Err(Error::invalid(format!(
                "rootfs {} is neither a directory nor a tarball",
                path.display()
            )))
        }
    }

    /// The cache directory of a tarball, unpacking it the first time.
    fn unpacked(&self, tarball: &Path, meta: &std::fs::Metadata) -> Result<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        tarball.hash(&mut hasher);
        meta.mtime().hash(&mut hasher);
        meta.size().hash(&mut hasher);
        let dir = self.cache_dir.join(format!("{:016x}", hasher.finish()));
        let _guard = self.unpacking.lock().unwrap_or_else(|p| p.into_inner());
        if dir.is_dir() {
            return Ok(dir);
        }
        let partial = self
            .cache_dir
            .join(format!("{:016x}.partial", hasher.finish()));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial)
            .map_err(|e| Error::backend(format!("creating {}", partial.display()), e))?;
        let result = (|| -> std::io::Result<()> {
            let file = std::fs::File::open(tarball)?;
            let name = tarball.to_string_lossy();
            let reader: Box<dyn std::io::Read> = if name.ends_with(".gz") || name.ends_with(".tgz")
            {
                Box::new(flate2::read::GzDecoder::new(file))
            } else {
                Box::new(file)
            };
            let mut archive = tar::Archive::new(reader);
            archive.set_preserve_permissions(true);
            archive.set_preserve_ownerships(true);
            archive.unpack(&partial)?;
            std::fs::rename(&partial, &dir)
        })();
        if let Err(err) = result {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(Error::backend(
                format!("unpacking rootfs {}", tarball.display()),
                err,
            ));
        }
        Ok(dir)
    }
}

/// A container's overlay: `<dir>/rootfs` over `lower`, writing to `<dir>/upper`.
#[derive(Debug)]
pub(crate) struct Overlay {
    sys: Arc<dyn Syscall>,
    pub(crate) root: PathBuf,
    pub(crate) upper: PathBuf,
}

impl Overlay {
    /// Mounts it (blocking).
    pub(crate) fn mount(sys: &Arc<dyn Syscall>, dir: &Path, lower: &Path) -> Result<Overlay> {
        let root = dir.join("rootfs");
        let upper = dir.join("upper");
        let work = dir.join("work");
        for d in [&root, &upper, &work] {
            sys.create_dir_all(d)
                .map_err(|e| Error::backend(format!("creating {}", d.display()), e))?;
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        // A NUL byte in a path or the options is EINVAL, as from nix's `mount`.
        let mounted = match (cstring(&root), std::ffi::CString::new(options)) {
            (Ok(target), Ok(data)) => {
                sys.mount(Some(c"overlay"), &target, Some(c"overlay"), 0, Some(&data))
            }
            _ => Err(Errno::EINVAL),
        };
        mounted.map_err(|e| {
            Error::backend(format!("mounting the overlay at {}", root.display()), e)
        })?;
        Ok(Overlay {
            sys: Arc::clone(sys),
            root,
            upper,
        })
    }

    /// Unmounts it (lazily: per-process copies in mount namespaces go with their
    /// processes).
    pub(crate) fn unmount(&self) -> Result<()> {
        let unmounted = cstring(&self.root)
            .map_err(|_| Errno::EINVAL)
            .and_then(|root| self.sys.umount2(&root, libc::MNT_DETACH));
        match unmounted {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
            Err(err) => Err(Error::backend(
                format!("unmounting {}", self.root.display()),
                err,
            )),
        }
    }
}
