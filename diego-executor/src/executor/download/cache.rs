//! [`DownloadCache`]: downloaded files kept on disk by cache key, bounded in bytes,
//! least recently used evicted first, one download at a time per key.
//!
//! It knows files and keys; it must not know Tasks, LRPs or containers.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::checksum::sha256_hex;
use crate::executor::config::DownloadCacheConfig;

/// Counters of a [`DownloadCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries kept.
    pub entries: usize,
    /// Bytes kept.
    pub bytes: u64,
    /// Lookups that found an entry.
    pub hits: u64,
    /// Lookups that found none.
    pub misses: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
}

#[derive(Debug)]
struct Entry {
    path: PathBuf,
    size: u64,
    last_used: u64,
    leases: u32,
    validators: Validators,
}

/// What the server said identifies a cached file's version (sent back on a later use to
/// ask whether it changed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` header.
    pub etag: Option<String>,
    /// The `Last-Modified` header.
    pub last_modified: Option<String>,
}

impl Validators {
    /// Whether there is anything to revalidate with.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    bytes: u64,
    tick: u64,
    hits: u64,
    misses: u64,
    evictions: u64,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    key_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A size-bounded LRU cache of downloaded files, shared by every container of a cell.
///
/// Entries in use (leased) are never evicted. An entry whose server sent an `ETag` or
/// `Last-Modified` is revalidated with a conditional request on each use (as Diego's
/// cached downloader does); one without is trusted until evicted.
#[derive(Debug, Clone)]
pub struct DownloadCache {
    inner: Arc<Inner>,
}

/// A cached file held in use: it is not evicted while the lease lives.
#[derive(Debug)]
pub struct CacheLease {
    inner: Arc<Inner>,
    key: String,
    path: PathBuf,
    size: u64,
    validators: Validators,
}

impl CacheLease {
    /// The server's validators of the cached file.
    pub fn validators(&self) -> &Validators {
        &self.validators
    }

    /// The cached file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Drop for CacheLease {
    fn drop(&mut self) {
        let mut state = self.inner.state.lock();
        if let Some(entry) = state.entries.get_mut(&self.key) {
            if entry.path == self.path {
                entry.leases = entry.leases.saturating_sub(1);
            }
        }
    }
}

impl DownloadCache {
    /// A cache in `config.dir` (created; files left there by an earlier run are removed).
    pub fn new(config: &DownloadCacheConfig) -> io::Result<Self> {
        std::fs::create_dir_all(&config.dir)?;
        for entry in std::fs::read_dir(&config.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(DownloadCache {
            inner: Arc::new(Inner {
                dir: config.dir.clone(),
                max_bytes: config.max_bytes,
                state: Mutex::new(State::default()),
                key_locks: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The cache's directory (downloads are staged here so they move in atomically).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Counters.
    pub fn stats(&self) -> CacheStats {
        let state = self.inner.state.lock();
        CacheStats {
            entries: state.entries.len(),
            bytes: state.bytes,
            hits: state.hits,
            misses: state.misses,
            evictions: state.evictions,
        }
    }

    /// Waits until no one else fetches `key`; hold the guard while looking up and
    /// filling the entry.
    pub async fn lock_key(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.inner.key_locks.lock();
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
            Arc::clone(locks.entry(key.to_string()).or_default())
        };
        lock.lock_owned().await
    }

    /// The entry of `key`, leased, counting a hit or a miss.
    pub fn get(&self, key: &str) -> Option<CacheLease> {
        let mut state = self.inner.state.lock();
        state.tick += 1;
        let tick = state.tick;
        match state.entries.get_mut(key) {
            Some(entry) => {
                entry.last_used = tick;
                entry.leases += 1;
                let lease = CacheLease {
                    inner: Arc::clone(&self.inner),
                    key: key.to_string(),
                    path: entry.path.clone(),
                    size: entry.size,
                    validators: entry.validators.clone(),
                };
                state.hits += 1;
                Some(lease)
            }
            None => {
                state.misses += 1;
                None
            }
        }
    }

    /// Drops the entry of `key` (its file is removed once no lease holds it open).
    pub fn remove(&self, key: &str) {
        let removed = {
            let mut state = self.inner.state.lock();
            let removed = state.entries.remove(key);
            if let Some(entry) = &removed {
                state.bytes -= entry.size;
            }
            removed
        };
        if let Some(entry) = removed {
            let _ = std::fs::remove_file(entry.path);
        }
    }

    /// Moves the downloaded file `file` (in [`dir`](Self::dir)) in as the entry of `key`,
    /// evicting least recently used entries for room. `Ok(None)` when it can never fit
    /// (the file is left where it is).
    pub fn insert(
        &self,
        key: &str,
        file: &Path,
        size: u64,
        validators: Validators,
    ) -> io::Result<Option<CacheLease>> {
        if size > self.inner.max_bytes {
            return Ok(None);
        }
        let path = self.inner.dir.join(sha256_hex(key));
        let mut doomed: Vec<PathBuf> = Vec::new();
        let lease = {
            let mut state = self.inner.state.lock();
            // A replaced entry's file is replaced by the rename below; open handles
            // keep reading the old content.
            if let Some(old) = state.entries.remove(key) {
                state.bytes -= old.size;
            }
            while state.bytes + size > self.inner.max_bytes {
                let victim = state
                    .entries
                    .iter()
                    .filter(|(_, e)| e.leases == 0)
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| k.clone());
                let Some(victim) = victim else {
                    // Everything left is in use: do not cache this one.
                    return Ok(None);
                };
                if let Some(entry) = state.entries.remove(&victim) {
                    state.bytes -= entry.size;
                    state.evictions += 1;
                    doomed.push(entry.path);
                }
            }
            std::fs::rename(file, &path)?;
            state.tick += 1;
            let tick = state.tick;
            state.entries.insert(
                key.to_string(),
                Entry {
                    path: path.clone(),
                    size,
                    last_used: tick,
                    leases: 1,
                    validators: validators.clone(),
                },
            );
            state.bytes += size;
            CacheLease {
                inner: Arc::clone(&self.inner),
                key: key.to_string(),
                path,
                size,
                validators,
            }
        };
        for path in doomed {
            let _ = std::fs::remove_file(path);
        }
        Ok(Some(lease))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(name: &str, max_bytes: u64) -> DownloadCache {
        let dir = std::env::temp_dir().join(format!("dl-cache-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        DownloadCache::new(&DownloadCacheConfig { dir, max_bytes }).unwrap()
    }

    fn put(cache: &DownloadCache, key: &str, size: usize) -> Option<CacheLease> {
        let staged = cache.dir().join(format!("staged-{key}"));
        std::fs::write(&staged, vec![b'x'; size]).unwrap();
        cache
            .insert(key, &staged, size as u64, Validators::default())
            .unwrap()
    }

    #[test]
    fn least_recently_used_goes_first_and_leases_pin() {
        let cache = cache("lru", 100);
        drop(put(&cache, "a", 40));
        drop(put(&cache, "b", 40));
        drop(cache.get("a")); // a is now more recent than b
        drop(put(&cache, "c", 40)); // evicts b
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some());
        let stats = cache.stats();
        assert_eq!((stats.entries, stats.bytes, stats.evictions), (2, 80, 1));

        // Both entries leased: a new one does not fit and is not cached.
        let a = cache.get("a").unwrap();
        let c = cache.get("c").unwrap();
        assert!(put(&cache, "d", 40).is_none());
        assert!(std::fs::read(a.path()).is_ok());
        drop((a, c));
        assert!(put(&cache, "d", 40).is_some());
        // Too big ever.
        assert!(put(&cache, "huge", 101).is_none());
        let _ = std::fs::remove_dir_all(cache.dir());
    }

    #[tokio::test]
    async fn one_fetch_per_key_at_a_time() {
        let cache = cache("locks", 100);
        let guard = cache.lock_key("k").await;
        let other = cache.clone();
        let waiter = tokio::spawn(async move {
            let _g = other.lock_key("k").await;
            other.get("k").is_some()
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(put(&cache, "k", 10));
        drop(guard);
        assert!(waiter.await.unwrap(), "the waiter sees the filled entry");
        let _ = std::fs::remove_dir_all(cache.dir());
    }
}
