//! The one storage interface every backend implements: put a file (streamed in parts when
//! large, integrity checked), get a file or a byte range, stat, delete, a download URL. One
//! call is one attempt; [`super::retry`] retries the transient failures.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

use crate::error::{Classify, Fault};

/// What the caller knows of a local file it uploads: the backend checks the object against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub size_bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// An object as the backend reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectMeta {
    pub size_bytes: u64,
    /// The backend's entity tag (or, where it has none, something that changes with the
    /// content: SFTP's size and modification time). Quotes removed.
    pub etag: Option<String>,
}

/// A finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutReceipt {
    pub meta: ObjectMeta,
    /// What the backend verified, for the logs: e.g. "ChecksumSHA256 by S3", "per-block MD5 +
    /// Content-MD5 by Azure", "size and SHA-256 read back".
    pub verified: String,
}

/// A download URL and when it stops working (`None`: it does not expire, e.g. `file://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadUrl {
    pub url: String,
    pub expires_at_unix_ms: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Passing: connection refused or reset, a timeout, 5xx, throttling. Retried.
    #[error("{backend} {op} {location}: {reason}")]
    Unavailable { backend: &'static str, op: &'static str, location: String, reason: String },
    /// Refused for good by the backend: credentials, permissions, no such bucket.
    #[error("{backend} {op} {location}: refused: {reason}")]
    Refused { backend: &'static str, op: &'static str, location: String, reason: String },
    #[error("{backend}: {location} does not exist")]
    NotFound { backend: &'static str, location: String },
    /// The object the backend holds is not what was sent. Retried (the upload is repeated).
    #[error("{backend}: {location}: integrity check failed: {reason}")]
    Mismatch { backend: &'static str, location: String, reason: String },
    #[error("{backend}: {location} is larger than the limit of {limit_bytes} bytes")]
    TooLarge { backend: &'static str, location: String, limit_bytes: u64 },
    /// The storage settings themselves are wrong (a missing bucket name, a bad key).
    #[error("storage settings: {field}: {reason}")]
    Settings { field: &'static str, reason: String },
    /// An SFTP server's host key is not the one expected (or unknown, without trust on first use).
    #[error("sftp: the host key of {host} ({fingerprint}) {reason}")]
    HostKey { host: String, fingerprint: String, reason: String },
    /// This node's own file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cancelled")]
    Cancelled,
}

impl StorageError {
    /// Worth another attempt.
    pub fn is_transient(&self) -> bool {
        matches!(self, StorageError::Unavailable { .. } | StorageError::Mismatch { .. })
    }

    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
        move |source| StorageError::Io { path: path.to_path_buf(), source }
    }
}

impl Classify for StorageError {
    fn fault(&self) -> Fault {
        match self {
            StorageError::Refused { .. } | StorageError::Settings { .. } | StorageError::HostKey { .. } => {
                Fault::BadInput("storage_refused")
            }
            StorageError::NotFound { .. } => Fault::BadInput("source_unavailable"),
            StorageError::TooLarge { .. } => Fault::BadInput("source_too_large"),
            StorageError::Unavailable { .. } => Fault::Internal("storage_unavailable"),
            StorageError::Mismatch { .. } => Fault::Internal("integrity"),
            StorageError::Io { .. } => Fault::Internal("io"),
            StorageError::Cancelled => Fault::Internal("cancelled"),
        }
    }
}

/// One place objects live: a bucket, a container, a directory on a host. Keys are the full
/// object names (`{path_prefix}/{file name}`, see [`super::object_key`]).
///
/// Every method is one attempt. `put_file` leaves nothing half-written under `key`: the object
/// appears whole (S3 multipart complete, Azure block list commit, GCS resumable finalisation,
/// SFTP rename) or the previous object (if any) stays.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// The backend's type: "local", "s3", "digitalocean", "azure", "gcs", "sftp".
    fn kind(&self) -> &'static str;

    /// The object's canonical address: `s3://bucket/key`, `gs://bucket/key`, the Azure blob
    /// URL, `sftp://host/path`, `file:///path`. Never carries a secret.
    fn location(&self, key: &str) -> String;

    /// Uploads `path` as `key` and checks the stored object against `expected`.
    async fn put_file(&self, key: &str, path: &Path, expected: &FileFacts) -> Result<PutReceipt, StorageError>;

    /// Downloads `key` to `dest` (created or replaced); at most `max_bytes`.
    async fn get_file(&self, key: &str, dest: &Path, max_bytes: u64) -> Result<ObjectMeta, StorageError>;

    /// Bytes `range` of `key` (end exclusive; clipped at the object's end).
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError>;

    /// `None` when there is no such object.
    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError>;

    /// Removes `key`; removing what is not there is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// A URL anyone holding it can download `key` from until it expires (presigned, SAS);
    /// `None` where the backend has no such thing (SFTP).
    async fn download_url(&self, key: &str, expires_in: Duration) -> Result<Option<DownloadUrl>, StorageError>;
}

/// Milliseconds since the Unix epoch, `expires_in` from now.
pub fn expiry_unix_ms(expires_in: Duration) -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from((now + expires_in).as_millis()).unwrap_or(i64::MAX)
}
