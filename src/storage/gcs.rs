//! PLACEHOLDER: replaced by the gcs backend.

use super::object::StorageError;
use super::settings::GcsSettings;

#[derive(Debug)]
pub struct GcsStore;

impl GcsStore {
    pub async fn connect(_settings: &GcsSettings) -> Result<GcsStore, StorageError> {
        Err(StorageError::Settings { field: "type", reason: "gcs is not built yet".into() })
    }
}

fn not_built() -> StorageError {
    StorageError::Settings { field: "type", reason: "gcs is not built yet".into() }
}

#[async_trait::async_trait]
impl super::ObjectStore for GcsStore {
    fn kind(&self) -> &'static str {
        "gcs"
    }
    fn location(&self, key: &str) -> String {
        key.to_owned()
    }
    async fn put_file(
        &self,
        _: &str,
        _: &std::path::Path,
        _: &super::FileFacts,
    ) -> Result<super::PutReceipt, StorageError> {
        Err(not_built())
    }
    async fn get_file(&self, _: &str, _: &std::path::Path, _: u64) -> Result<super::ObjectMeta, StorageError> {
        Err(not_built())
    }
    async fn get_range(&self, _: &str, _: std::ops::Range<u64>) -> Result<bytes::Bytes, StorageError> {
        Err(not_built())
    }
    async fn stat(&self, _: &str) -> Result<Option<super::ObjectMeta>, StorageError> {
        Err(not_built())
    }
    async fn delete(&self, _: &str) -> Result<(), StorageError> {
        Err(not_built())
    }
    async fn download_url(&self, _: &str, _: std::time::Duration) -> Result<Option<super::DownloadUrl>, StorageError> {
        Err(not_built())
    }
}
