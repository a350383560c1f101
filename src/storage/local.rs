//! Local disk as a backend: keys are paths under one directory. A file is copied under a
//! hidden partial name, checked (size and SHA-256 read back) and renamed into place, so a file
//! under its final name is always whole.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use super::object::{DownloadUrl, FileFacts, ObjectMeta, ObjectStore, PutReceipt, StorageError};
use crate::render::PartialFile;
use crate::render::manifest::file_facts;

const BACKEND: &str = "local";

#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    pub fn new(dir: PathBuf) -> LocalStore {
        LocalStore { dir }
    }

    /// The file of `key`; a key that would leave the directory is refused.
    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        let relative = Path::new(key);
        if key.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(StorageError::Settings {
                field: "key",
                reason: format!("{key:?} is not a plain relative name"),
            });
        }
        Ok(self.dir.join(relative))
    }

    fn absolute(&self, key: &str) -> Result<PathBuf, StorageError> {
        let path = self.path(key)?;
        Ok(std::path::absolute(&path).unwrap_or(path))
    }
}

fn meta_of(path: &Path, metadata: &std::fs::Metadata) -> ObjectMeta {
    let modified_ns =
        metadata.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    let _ = path;
    ObjectMeta { size_bytes: metadata.len(), etag: Some(format!("{}-{modified_ns}", metadata.len())) }
}

fn not_found(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::NotFound
}

#[async_trait::async_trait]
impl ObjectStore for LocalStore {
    fn kind(&self) -> &'static str {
        BACKEND
    }

    fn location(&self, key: &str) -> String {
        match self.absolute(key) {
            Ok(path) => format!("file://{}", path.display()),
            Err(_) => format!("file://{}/{key}", self.dir.display()),
        }
    }

    async fn put_file(&self, key: &str, path: &Path, expected: &FileFacts) -> Result<PutReceipt, StorageError> {
        let target = self.path(key)?;
        let source = path.to_path_buf();
        let expected = expected.clone();
        let location = self.location(key);
        let put = move || -> Result<PutReceipt, StorageError> {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(StorageError::io(parent))?;
            }
            let partial = PartialFile::new(&target).map_err(StorageError::io(&target))?;
            let temporary = partial.path().to_path_buf();
            std::fs::copy(&source, &temporary).map_err(StorageError::io(&temporary))?;
            let (size_bytes, sha256) = file_facts(&temporary).map_err(StorageError::io(&temporary))?;
            if size_bytes != expected.size_bytes || sha256 != expected.sha256 {
                return Err(StorageError::Mismatch {
                    backend: BACKEND,
                    location,
                    reason: format!(
                        "read back {size_bytes} bytes, sha256 {sha256}; expected {} bytes, {}",
                        expected.size_bytes, expected.sha256
                    ),
                });
            }
            partial.commit().map_err(StorageError::io(&target))?;
            let metadata = std::fs::metadata(&target).map_err(StorageError::io(&target))?;
            Ok(PutReceipt { meta: meta_of(&target, &metadata), verified: "size and SHA-256 read back".into() })
        };
        blocking(put).await
    }

    async fn get_file(&self, key: &str, dest: &Path, max_bytes: u64) -> Result<ObjectMeta, StorageError> {
        let source = self.path(key)?;
        let dest = dest.to_path_buf();
        let location = self.location(key);
        blocking(move || {
            let metadata = match std::fs::metadata(&source) {
                Err(err) if not_found(&err) => return Err(StorageError::NotFound { backend: BACKEND, location }),
                other => other.map_err(StorageError::io(&source))?,
            };
            if metadata.len() > max_bytes {
                return Err(StorageError::TooLarge { backend: BACKEND, location, limit_bytes: max_bytes });
            }
            std::fs::copy(&source, &dest).map_err(StorageError::io(&dest))?;
            Ok(meta_of(&source, &metadata))
        })
        .await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let source = self.path(key)?;
        let location = self.location(key);
        blocking(move || {
            let mut file = match std::fs::File::open(&source) {
                Err(err) if not_found(&err) => return Err(StorageError::NotFound { backend: BACKEND, location }),
                other => other.map_err(StorageError::io(&source))?,
            };
            file.seek(SeekFrom::Start(range.start)).map_err(StorageError::io(&source))?;
            let mut bytes = Vec::new();
            file.take(range.end.saturating_sub(range.start))
                .read_to_end(&mut bytes)
                .map_err(StorageError::io(&source))?;
            Ok(Bytes::from(bytes))
        })
        .await
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let path = self.path(key)?;
        blocking(move || match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => Ok(Some(meta_of(&path, &metadata))),
            Ok(_) => Ok(None),
            Err(err) if not_found(&err) => Ok(None),
            Err(source) => Err(StorageError::Io { path, source }),
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key)?;
        blocking(move || match std::fs::remove_file(&path) {
            Err(err) if not_found(&err) => Ok(()),
            other => other.map_err(|source| StorageError::Io { path, source }),
        })
        .await
    }

    async fn download_url(&self, key: &str, _expires_in: Duration) -> Result<Option<DownloadUrl>, StorageError> {
        Ok(Some(DownloadUrl { url: self.location(key), expires_at_unix_ms: None }))
    }
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work).await.map_err(|err| StorageError::Io {
        path: PathBuf::new(),
        source: std::io::Error::other(format!("file task failed: {err}")),
    })?
}
