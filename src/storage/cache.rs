//! The node's cache of downloaded sources, as Stream's CLI keeps one: each source (by its
//! location, a URL without its query) is stored once with its ETag and revalidated on the next
//! use (a `stat` of the object, or an `If-None-Match` GET for a URL), so a recording rendered
//! again is not downloaded again. Downloads go to a partial name and are renamed into place;
//! a job gets a hard link (or a copy) of the cached file, so evicting an entry never
//! disturbs a running job. The least recently used entries are evicted beyond the size limit.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use super::fetch::{FetchError, Fetched, fetch, shown_url};
use super::object::StorageError;
use super::retry::{RetryPolicy, retrying};
use super::source::SourceRef;
use crate::error::{Classify, Fault};
use crate::render::CancelFlag;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("reading the source failed after {attempts} attempts: {source}")]
    GaveUp {
        attempts: u32,
        #[source]
        source: StorageError,
    },
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

impl Classify for CacheError {
    fn fault(&self) -> Fault {
        let fault = match self {
            CacheError::Storage(err) | CacheError::GaveUp { source: err, .. } => err.fault(),
            CacheError::Fetch(err) => err.fault(),
        };
        match fault {
            Fault::BadInput(_) => Fault::BadInput("source_unavailable"),
            Fault::Internal("cancelled") => fault,
            Fault::Internal(_) | Fault::Unavailable(_) => Fault::Internal("source_unavailable"),
            other => other,
        }
    }
}

/// How a source came to the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cached {
    /// The cached copy is current (same ETag).
    Hit,
    Downloaded,
}

#[derive(Debug, Clone)]
pub struct SourceCache {
    dir: PathBuf,
    max_bytes: u64,
}

impl SourceCache {
    pub fn new(dir: PathBuf, max_bytes: u64) -> SourceCache {
        SourceCache { dir, max_bytes }
    }

    /// Brings `source` to `dest` (at most `max_bytes`), from the cache when current.
    pub async fn fetch(
        &self,
        source: &SourceRef,
        dest: &Path,
        max_bytes: u64,
        policy: &RetryPolicy,
        cancel: &CancelFlag,
    ) -> Result<Cached, CacheError> {
        let identity = match source {
            SourceRef::Http(url) => shown_url(url),
            SourceRef::Stored { settings, key } => {
                let store = super::open(settings).await?;
                store.location(key)
            }
        };
        let entry = self.dir.join(hex(&Sha256::digest(identity.as_bytes())));
        std::fs::create_dir_all(&entry).map_err(StorageError::io(&entry))?;
        let (data, etag_file) = (entry.join("data"), entry.join("etag"));
        let cached_etag = std::fs::read_to_string(&etag_file).ok().filter(|_| data.exists());
        let partial = entry.join(format!("data.partial-{}", uuid::Uuid::new_v4()));
        let outcome = match source {
            SourceRef::Http(url) => {
                let client = super::http::client()
                    .map_err(|e| FetchError::BadUrl { url: shown_url(url), reason: format!("TLS set-up: {e}") })?;
                match fetch(&client, url, &partial, max_bytes, cancel, cached_etag.as_deref()).await {
                    Ok(Fetched::NotModified) => None,
                    Ok(Fetched::Downloaded { etag, .. }) => Some(etag),
                    Err(err) => {
                        let _ = std::fs::remove_file(&partial);
                        return Err(err.into());
                    }
                }
            }
            SourceRef::Stored { settings, key } => {
                let store = super::open(settings).await?;
                let gave_up = |g: super::retry::GaveUp| CacheError::GaveUp { attempts: g.attempts, source: g.error };
                let meta = retrying(policy, "stat source", || store.stat(key))
                    .await
                    .map_err(gave_up)?
                    .ok_or_else(|| StorageError::NotFound { backend: store.kind(), location: identity.clone() })?;
                if meta.size_bytes > max_bytes {
                    return Err(StorageError::TooLarge {
                        backend: store.kind(),
                        location: identity.clone(),
                        limit_bytes: max_bytes,
                    }
                    .into());
                }
                let current = meta.etag.is_some()
                    && cached_etag == meta.etag
                    && std::fs::metadata(&data).is_ok_and(|m| m.len() == meta.size_bytes);
                if current {
                    None
                } else {
                    let got = retrying(policy, "download source", || store.get_file(key, &partial, max_bytes)).await;
                    if let Err(g) = got {
                        let _ = std::fs::remove_file(&partial);
                        return Err(gave_up(g));
                    }
                    Some(meta.etag)
                }
            }
        };
        cancel.check().map_err(|_| StorageError::Cancelled)?;
        let result = match outcome {
            None => Cached::Hit,
            Some(etag) => {
                // The ETag is written after the data is in place: a crash between leaves an
                // entry that is downloaded again, never a wrong one taken as current.
                let _ = std::fs::remove_file(&etag_file);
                std::fs::rename(&partial, &data).map_err(StorageError::io(&data))?;
                if let Some(etag) = etag {
                    std::fs::write(&etag_file, etag).map_err(StorageError::io(&etag_file))?;
                }
                Cached::Downloaded
            }
        };
        let _ = std::fs::remove_file(dest);
        if std::fs::hard_link(&data, dest).is_err() {
            std::fs::copy(&data, dest).map_err(StorageError::io(dest))?;
        }
        // The entry was used now: it is the last to be evicted.
        let _ = std::fs::File::options().append(true).open(&etag_file).and_then(|f| f.set_modified(SystemTime::now()));
        self.evict(&entry);
        Ok(result)
    }

    /// Removes the least recently used entries (never `keep`) until the cache fits its limit.
    fn evict(&self, keep: &Path) {
        let Ok(read) = std::fs::read_dir(&self.dir) else { return };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = read
            .flatten()
            .filter(|e| e.path() != keep)
            .map(|e| {
                let path = e.path();
                let size = std::fs::metadata(path.join("data")).map(|m| m.len()).unwrap_or(0);
                let used = std::fs::metadata(path.join("etag"))
                    .or_else(|_| std::fs::metadata(path.join("data")))
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                (used, size, path)
            })
            .collect();
        let kept = std::fs::metadata(keep.join("data")).map(|m| m.len()).unwrap_or(0);
        let mut total: u64 = kept + entries.iter().map(|(_, size, _)| size).sum::<u64>();
        entries.sort();
        for (_, size, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_dir_all(&path).is_ok() {
                tracing::info!(entry = %path.display(), size_bytes = size, "evicted from the source cache");
                total -= size;
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::settings::{Backend, StorageSettings};

    fn local(dir: &Path, key: &str) -> SourceRef {
        let settings = StorageSettings {
            backend: Backend::Local { dir: dir.to_path_buf() },
            path_prefix: String::new(),
            url_expiry: std::time::Duration::from_secs(60),
        };
        SourceRef::Stored { settings, key: key.into() }
    }

    #[tokio::test]
    async fn a_current_copy_is_not_downloaded_again_and_a_changed_one_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store");
        std::fs::create_dir_all(&store).expect("mkdir");
        std::fs::write(store.join("call.zip"), b"first").expect("write");
        let cache = SourceCache::new(dir.path().join("cache"), 1 << 20);
        let policy = RetryPolicy::default();
        let cancel = CancelFlag::default();
        let dest = dir.path().join("job-1.zip");
        let source = local(&store, "call.zip");
        assert_eq!(cache.fetch(&source, &dest, 1 << 20, &policy, &cancel).await.expect("fetch"), Cached::Downloaded);
        assert_eq!(std::fs::read(&dest).expect("read"), b"first");
        let dest2 = dir.path().join("job-2.zip");
        assert_eq!(cache.fetch(&source, &dest2, 1 << 20, &policy, &cancel).await.expect("fetch"), Cached::Hit);
        std::fs::write(store.join("call.zip"), b"second, longer").expect("rewrite");
        let dest3 = dir.path().join("job-3.zip");
        assert_eq!(cache.fetch(&source, &dest3, 1 << 20, &policy, &cancel).await.expect("fetch"), Cached::Downloaded);
        assert_eq!(std::fs::read(&dest3).expect("read"), b"second, longer");
        assert_eq!(std::fs::read(&dest).expect("read"), b"first", "a job's copy is its own");
    }

    #[tokio::test]
    async fn the_least_recently_used_entries_go_beyond_the_limit_and_missing_sources_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store");
        std::fs::create_dir_all(&store).expect("mkdir");
        for name in ["a", "b", "c"] {
            std::fs::write(store.join(name), vec![0u8; 400]).expect("write");
        }
        let cache_dir = dir.path().join("cache");
        let cache = SourceCache::new(cache_dir.clone(), 1000);
        let (policy, cancel) = (RetryPolicy::default(), CancelFlag::default());
        for name in ["a", "b", "c"] {
            cache
                .fetch(&local(&store, name), &dir.path().join(format!("{name}.out")), 1000, &policy, &cancel)
                .await
                .expect("fetch");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(std::fs::read_dir(&cache_dir).expect("ls").count(), 2, "the oldest entry was evicted");
        let err = cache
            .fetch(&local(&store, "missing"), &dir.path().join("m"), 1000, &policy, &cancel)
            .await
            .expect_err("missing");
        assert!(matches!(err, CacheError::Storage(StorageError::NotFound { .. })), "{err}");
        assert!(err.fault().is_callers());
    }
}
