//! Fetching artifacts over HTTP(S) for download steps: [`Downloader`] (reqwest with
//! rustls), checksums, the shared on-disk [`DownloadCache`], and turning what was fetched
//! into a tar stream for the container.
//!
//! It knows URLs, files and archives; it must not know Tasks, LRPs or actions.

mod archive;
mod cache;
mod checksum;

use std::path::{Path, PathBuf};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

pub(crate) use self::archive::first_file;
pub use self::archive::ArchiveKind;
pub use self::cache::{CacheLease, CacheStats, DownloadCache, Validators};
use self::checksum::{verify, Hasher};
pub use self::checksum::{Checksum, ChecksumAlgorithm};
use crate::executor::config::DownloadCacheConfig;

/// What a download brought.
enum Downloaded {
    /// A new file.
    File {
        path: PathBuf,
        size: u64,
        validators: Validators,
    },
    /// The cached copy is current.
    NotModified,
}

/// Why a fetch did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FetchError {
    /// Cancelled by the caller.
    Cancelled,
    /// Failed; the text says why.
    Failed(String),
}

/// Downloads files, through the cache when a key is given.
#[derive(Debug)]
pub struct Downloader {
    client: reqwest::Client,
    cache: Option<DownloadCache>,
    scratch: PathBuf,
}

/// A fetched file: a cache lease, or a temporary removed on drop.
#[derive(Debug)]
pub(crate) struct Fetched {
    path: PathBuf,
    size: u64,
    _lease: Option<CacheLease>,
    temporary: bool,
}

impl Fetched {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for Fetched {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A tar file ready to stream into a container; a temporary one is removed on drop.
#[derive(Debug)]
pub(crate) struct TarFile {
    pub(crate) path: PathBuf,
    pub(crate) kind: ArchiveKind,
    temporary: bool,
}

impl Drop for TarFile {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Downloader {
    /// A downloader caching in `cache` (when given) and staging other files in
    /// `scratch` (created when missing).
    pub fn new(cache: Option<&DownloadCacheConfig>, scratch: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&scratch)?;
        let cache = cache.map(DownloadCache::new).transpose()?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Downloader {
            client,
            cache,
            scratch,
        })
    }

    /// The shared cache, if any.
    pub fn cache(&self) -> Option<&DownloadCache> {
        self.cache.as_ref()
    }

    /// The HTTP client (shared with uploads).
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Fetches `url`, through the cache under `cache_key` when it is not empty.
    pub(crate) async fn fetch(
        &self,
        url: &str,
        cache_key: &str,
        checksum: Option<&Checksum>,
        cancel: &CancellationToken,
    ) -> Result<Fetched, FetchError> {
        let cache = match (&self.cache, cache_key.is_empty()) {
            (Some(cache), false) => cache,
            _ => {
                return match self
                    .download(url, &self.scratch, checksum, None, cancel)
                    .await?
                {
                    Downloaded::File { path, size, .. } => Ok(Fetched {
                        path,
                        size,
                        _lease: None,
                        temporary: true,
                    }),
                    Downloaded::NotModified => Err(FetchError::Failed(
                        "the server answered 304 Not Modified to an unconditional request"
                            .to_string(),
                    )),
                };
            }
        };
        let _key_guard = tokio::select! {
            guard = cache.lock_key(cache_key) => guard,
            () = cancel.cancelled() => return Err(FetchError::Cancelled),
        };
        if let Some(lease) = cache.get(cache_key) {
            let valid = match checksum {
                None => true,
                Some(expected) => {
                    let path = lease.path().to_path_buf();
                    let algorithm = expected.algorithm;
                    let actual = tokio::task::spawn_blocking(move || file_digest(&path, algorithm))
                        .await
                        .map_err(|e| FetchError::Failed(e.to_string()))?
                        .map_err(|e| FetchError::Failed(e.to_string()))?;
                    verify(expected, &actual).is_ok()
                }
            };
            if valid && lease.validators().is_empty() {
                return Ok(Fetched {
                    path: lease.path().to_path_buf(),
                    size: lease.size(),
                    _lease: Some(lease),
                    temporary: false,
                });
            }
            if valid {
                // Ask the server whether it changed (Diego's cached downloader does).
                let validators = lease.validators().clone();
                match self
                    .download(url, cache.dir(), checksum, Some(&validators), cancel)
                    .await?
                {
                    Downloaded::NotModified => {
                        return Ok(Fetched {
                            path: lease.path().to_path_buf(),
                            size: lease.size(),
                            _lease: Some(lease),
                            temporary: false,
                        })
                    }
                    Downloaded::File {
                        path,
                        size,
                        validators,
                    } => {
                        drop(lease);
                        return self.keep(cache, cache_key, path, size, validators);
                    }
                }
            }
            drop(lease);
            cache.remove(cache_key);
        }
        match self
            .download(url, cache.dir(), checksum, None, cancel)
            .await?
        {
            Downloaded::File {
                path,
                size,
                validators,
            } => self.keep(cache, cache_key, path, size, validators),
            Downloaded::NotModified => Err(FetchError::Failed(
                "the server answered 304 Not Modified to an unconditional request".to_string(),
            )),
        }
    }

    /// Puts a downloaded file into the cache (or keeps it as a temporary when it does
    /// not fit).
    fn keep(
        &self,
        cache: &DownloadCache,
        cache_key: &str,
        path: PathBuf,
        size: u64,
        validators: Validators,
    ) -> Result<Fetched, FetchError> {
        match cache.insert(cache_key, &path, size, validators) {
            Ok(Some(lease)) => Ok(Fetched {
                path: lease.path().to_path_buf(),
                size,
                _lease: Some(lease),
                temporary: false,
            }),
            Ok(None) => Ok(Fetched {
                path,
                size,
                _lease: None,
                temporary: true,
            }),
            Err(err) => {
                let _ = std::fs::remove_file(&path);
                Err(FetchError::Failed(format!("caching the download: {err}")))
            }
        }
    }

    /// Downloads `url` into a new file in `dir`, verifying `checksum`; conditionally when
    /// `validators` are given.
    async fn download(
        &self,
        url: &str,
        dir: &Path,
        checksum: Option<&Checksum>,
        validators: Option<&Validators>,
        cancel: &CancellationToken,
    ) -> Result<Downloaded, FetchError> {
        let path = dir.join(unique_name("download"));
        let result = self
            .download_to(url, &path, checksum, validators, cancel)
            .await;
        if !matches!(result, Ok(Some(_))) {
            let _ = tokio::fs::remove_file(&path).await;
        }
        Ok(match result? {
            Some((size, validators)) => Downloaded::File {
                path,
                size,
                validators,
            },
            None => Downloaded::NotModified,
        })
    }

    /// `None` when the server said the cached copy is current.
    async fn download_to(
        &self,
        url: &str,
        path: &Path,
        checksum: Option<&Checksum>,
        validators: Option<&Validators>,
        cancel: &CancellationToken,
    ) -> Result<Option<(u64, Validators)>, FetchError> {
        let mut request = self.client.get(url);
        if let Some(validators) = validators {
            if let Some(etag) = &validators.etag {
                request = request.header(reqwest::header::IF_NONE_MATCH, etag);
            }
            if let Some(modified) = &validators.last_modified {
                request = request.header(reqwest::header::IF_MODIFIED_SINCE, modified);
            }
        }
        let response = tokio::select! {
            response = request.send() => response,
            () = cancel.cancelled() => return Err(FetchError::Cancelled),
        }
        .map_err(|e| FetchError::Failed(describe_reqwest(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED && validators.is_some() {
            return Ok(None);
        }
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let new_validators = Validators {
            etag: header(reqwest::header::ETAG),
            last_modified: header(reqwest::header::LAST_MODIFIED),
        };
        if !status.is_success() {
            return Err(FetchError::Failed(format!(
                "Download failed: Status code {}",
                status.as_u16()
            )));
        }
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| FetchError::Failed(format!("creating {}: {e}", path.display())))?;
        let mut hasher = checksum.map(|c| Hasher::new(c.algorithm));
        let mut body = response.bytes_stream();
        let mut size: u64 = 0;
        loop {
            let chunk = tokio::select! {
                chunk = body.next() => chunk,
                () = cancel.cancelled() => return Err(FetchError::Cancelled),
            };
            let Some(chunk) = chunk else { break };
            let chunk = chunk.map_err(|e| FetchError::Failed(describe_reqwest(&e)))?;
            if let Some(hasher) = &mut hasher {
                hasher.update(&chunk);
            }
            size += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| FetchError::Failed(format!("writing {}: {e}", path.display())))?;
        }
        file.flush()
            .await
            .map_err(|e| FetchError::Failed(format!("writing {}: {e}", path.display())))?;
        if let (Some(expected), Some(hasher)) = (checksum, hasher) {
            verify(expected, &hasher.hex()).map_err(FetchError::Failed)?;
        }
        Ok(Some((size, new_validators)))
    }

    /// Makes a tar of a fetched file (see the `archive` module); a plain file becomes one
    /// entry named `plain_name`.
    pub(crate) async fn prepare_tar(
        &self,
        fetched: &Fetched,
        plain_name: &str,
    ) -> Result<TarFile, String> {
        let source = fetched.path().to_path_buf();
        let scratch = self.scratch.clone();
        let name = plain_name.to_string();
        let prepared =
            tokio::task::spawn_blocking(move || archive::prepare(&source, &scratch, &name))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("unpacking the download: {e}"))?;
        Ok(TarFile {
            path: prepared.path,
            kind: prepared.kind,
            temporary: prepared.temporary,
        })
    }
}

fn file_digest(path: &Path, algorithm: ChecksumAlgorithm) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Hasher::new(algorithm);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.hex())
}

/// A reqwest error with its causes, in one line.
pub(crate) fn describe_reqwest(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
