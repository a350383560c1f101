//! Publishing a job's finished files to its storage. A job renders into its own working
//! directory; each file is uploaded under its object name (`{path_prefix}/{file name}`),
//! checked by the backend against the size and SHA-256 the render measured, and only then
//! reported. A failed attempt is retried with backoff; the working copy stays until the
//! object is verified. Backends never leave a half-written object under the final name, so a
//! job run again after a crash replaces its objects instead of adding copies.

use std::path::Path;
use std::sync::Arc;

use super::object::{DownloadUrl, FileFacts, ObjectStore, StorageError};
use super::retry::{RetryPolicy, retrying};
use super::settings::StorageSettings;
use crate::error::{Classify, Fault};
use crate::proto as pb;
use crate::render::manifest::OutputEntry;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "uploading {file} to {location} failed after {attempts} attempts: {source} (the rendered file is kept at {kept})"
    )]
    Failed {
        file: String,
        location: String,
        attempts: u32,
        #[source]
        source: StorageError,
        kept: String,
    },
}

impl Classify for PublishError {
    fn fault(&self) -> Fault {
        match self {
            // Wrong credentials or a bucket that is not there: the job's storage block.
            PublishError::Failed { source, .. } if source.fault().is_callers() => Fault::BadInput("upload_refused"),
            PublishError::Failed { .. } => Fault::Internal("upload_failed"),
        }
    }
}

/// A file in place and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub location: String,
    /// The download URL, where the backend has one.
    pub url: Option<DownloadUrl>,
    /// What the backend verified.
    pub verified: String,
}

/// Where a job's files go: an open backend and its block's settings.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub store: Arc<dyn ObjectStore>,
    pub settings: StorageSettings,
    pub policy: RetryPolicy,
}

impl Publisher {
    pub async fn open(settings: StorageSettings, policy: RetryPolicy) -> Result<Publisher, StorageError> {
        let store = super::open(&settings).await?;
        Ok(Publisher { store, settings, policy })
    }

    /// Uploads `staged` as `file_name` (checked against `expected`), then signs its download URL.
    pub async fn publish(
        &self,
        staged: &Path,
        file_name: &str,
        expected: &FileFacts,
    ) -> Result<Published, PublishError> {
        let key = self.settings.key(file_name);
        let location = self.store.location(&key);
        let failed = |gave_up: super::retry::GaveUp| PublishError::Failed {
            file: file_name.to_owned(),
            location: location.clone(),
            attempts: gave_up.attempts,
            source: gave_up.error,
            kept: staged.display().to_string(),
        };
        let receipt =
            retrying(&self.policy, "upload", || self.store.put_file(&key, staged, expected)).await.map_err(failed)?;
        tracing::info!(%location, size_bytes = expected.size_bytes, verified = %receipt.verified, "uploaded and verified");
        let url = retrying(&self.policy, "sign", || self.store.download_url(&key, self.settings.url_expiry))
            .await
            .map_err(failed)?;
        Ok(Published { location, url, verified: receipt.verified })
    }
}

/// The event/`RenderJob.outputs` entry of a published file.
pub fn output_file(entry: &OutputEntry, published: &Published) -> pb::OutputFile {
    pb::OutputFile {
        kind: entry.kind.clone(),
        participant_id: entry.participant_id.clone().unwrap_or_default(),
        url: published.url.as_ref().map(|u| u.url.clone()).unwrap_or_default(),
        size_bytes: entry.size_bytes,
        sha256: entry.sha256.clone(),
        duration_ms: entry.duration_ms.round() as i64,
        call_offset_ms: entry.offset_ms.round() as i64,
        location: published.location.clone(),
        url_expires_at_unix_ms: published.url.as_ref().and_then(|u| u.expires_at_unix_ms).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::manifest::file_facts;
    use crate::storage::settings::Backend;
    use std::time::Duration;

    fn publisher(dir: &Path) -> Publisher {
        let settings = StorageSettings {
            backend: Backend::Local { dir: dir.to_path_buf() },
            path_prefix: String::new(),
            url_expiry: Duration::from_secs(60),
        };
        let policy =
            RetryPolicy { attempts: 3, first_backoff: Duration::from_millis(1), max_backoff: Duration::from_millis(2) };
        Publisher { store: Arc::new(crate::storage::local::LocalStore::new(dir.to_path_buf())), settings, policy }
    }

    #[tokio::test]
    async fn a_file_is_checked_and_replaces_an_earlier_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let staged = dir.path().join("work/a.mp4");
        std::fs::create_dir_all(staged.parent().expect("parent")).expect("mkdir");
        std::fs::write(&staged, b"rendered").expect("write");
        let (size_bytes, sha256) = file_facts(&staged).expect("facts");
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).expect("mkdir");
        std::fs::write(out.join("a.mp4"), b"from a run that crashed").expect("old");
        let published =
            publisher(&out).publish(&staged, "a.mp4", &FileFacts { size_bytes, sha256 }).await.expect("publish");
        assert!(published.location.starts_with("file:///") && published.location.ends_with("/out/a.mp4"));
        assert_eq!(published.url.as_ref().map(|u| u.url.as_str()), Some(published.location.as_str()));
        assert_eq!(std::fs::read(out.join("a.mp4")).expect("read"), b"rendered");
        let names: Vec<_> = std::fs::read_dir(&out).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names.len(), 1, "no temporary or duplicate left: {names:?}");
        assert!(staged.exists(), "the working copy is the caller's to remove");
    }

    #[tokio::test]
    async fn a_mismatch_is_retried_then_reported_with_the_kept_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let staged = dir.path().join("a.mp4");
        std::fs::write(&staged, b"rendered").expect("write");
        let expected = FileFacts { size_bytes: 8, sha256: "not-the-hash".into() };
        let err = publisher(&dir.path().join("out")).publish(&staged, "a.mp4", &expected).await.expect_err("mismatch");
        let message = err.to_string();
        assert!(message.contains("after 3 attempts") && message.contains("kept at"), "{message}");
        assert!(!dir.path().join("out/a.mp4").exists(), "nothing under the final name");
    }
}
