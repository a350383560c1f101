//! PLACEHOLDER: replaced by the sftp backend.

use super::object::StorageError;
use super::settings::SftpSettings;

#[derive(Debug)]
pub struct SftpStore;

impl SftpStore {
    pub async fn connect(_settings: &SftpSettings) -> Result<SftpStore, StorageError> {
        Err(StorageError::Settings { field: "type", reason: "sftp is not built yet".into() })
    }
}

fn not_built() -> StorageError {
    StorageError::Settings { field: "type", reason: "sftp is not built yet".into() }
}

#[async_trait::async_trait]
impl super::ObjectStore for SftpStore {
    fn kind(&self) -> &'static str {
        "sftp"
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
