//! Where outputs go and where remote sources come from: one interface ([`ObjectStore`]) and
//! its backends (local disk, S3 and DigitalOcean Spaces, Azure Blob, GCS, SFTP), retries with
//! backoff, publishing a job's files (verified, nothing half-written), reading sources from
//! storage into the node's cache, and the plain http(s) client for presigned URLs and webhooks.

pub mod azure;
pub mod cache;
pub mod fetch;
pub mod gcs;
pub mod http;
pub mod local;
pub mod object;
pub mod publish;
pub mod retry;
pub mod s3;
pub mod settings;
pub mod sftp;
pub mod source;

use std::sync::Arc;

pub use object::{DownloadUrl, FileFacts, ObjectMeta, ObjectStore, PutReceipt, StorageError};
pub use settings::{Backend, NodeStorage, Secret, StorageSettings, object_key};

/// Opens the backend `settings` name. Nothing is sent yet for most backends (SFTP connects
/// and checks the host key here).
pub async fn open(settings: &StorageSettings) -> Result<Arc<dyn ObjectStore>, StorageError> {
    Ok(match &settings.backend {
        Backend::Local { dir } => Arc::new(local::LocalStore::new(dir.clone())),
        Backend::S3(s3) => Arc::new(s3::S3Store::connect(s3).await?),
        Backend::Azure(azure) => Arc::new(azure::AzureStore::connect(azure).await?),
        Backend::Gcs(gcs) => Arc::new(gcs::GcsStore::connect(gcs).await?),
        Backend::Sftp(sftp) => Arc::new(sftp::SftpStore::connect(sftp).await?),
    })
}
