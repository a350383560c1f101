//! Azure Blob Storage as a backend, through a small REST client of our own over the crate's
//! hyper client: Shared Key signed requests ([`sign`]), Put Blob or Put Block + Put Block
//! List uploads with per-block `Content-MD5` ([`upload`]), streamed downloads, ranges, and a
//! read-only service SAS for download URLs.
//!
//! Why not a library: the Azure SDK for Rust's blob crate (`azure_storage_blob`) is pre-1.0,
//! its API still changing, and its clients take an Entra ID token credential or a SAS in the
//! URL, no Shared Key (the older `azure_storage_blobs`, which had it, is superseded);
//! object_store's Azure client signs with Shared Key but sends no `Content-MD5` with its
//! blocks or blobs, so Azure would not check what it stores (and object_store is not a
//! dependency). We need Shared Key (Azurite, account keys), per-block MD5 and service SAS: a
//! few hundred lines.
//!
//! Not here: listing, leases, snapshots, Entra ID or SAS-token credentials.

mod client;
pub mod sign;
mod upload;

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use md5::Digest as _;
use tokio::io::AsyncWriteExt as _;

use self::client::{Call, ErrorAnswer, IDLE_TIMEOUT, Service};
use self::sign::{AccountKey, BlobSas};
use super::object::{DownloadUrl, FileFacts, ObjectMeta, ObjectStore, PutReceipt, StorageError, expiry_unix_ms};
use super::settings::AzureSettings;

const BACKEND: &str = "azure";
/// A SAS starts this long before it is made (clocks differ).
const SAS_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// One container of one storage account. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AzureStore {
    service: Service,
    /// `scheme://host[:port][/path]`: the service's base URL (no trailing `/`).
    base: String,
    /// The path part of `base` (`/devstoreaccount1` for Azurite; empty for Azure).
    base_path: String,
    container: String,
    https: bool,
}

impl AzureStore {
    /// Checks the settings; sends nothing.
    pub async fn connect(settings: &AzureSettings) -> Result<AzureStore, StorageError> {
        let key = AccountKey::new(&settings.account, settings.account_key.expose()).ok_or_else(|| {
            StorageError::Settings { field: "secret", reason: "the azure account key is not base64".into() }
        })?;
        if settings.container.trim().is_empty() {
            return Err(StorageError::Settings { field: "bucket", reason: "the azure container is empty".into() });
        }
        let base = match &settings.endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None => format!("https://{}.blob.core.windows.net", settings.account),
        };
        let uri: http::Uri = base.parse().map_err(|_| StorageError::Settings {
            field: "endpoint",
            reason: format!("azure endpoint {base} is not a URL"),
        })?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(StorageError::Settings {
                field: "endpoint",
                reason: format!("azure endpoint {base} is not a URL"),
            });
        };
        let origin = format!("{scheme}://{authority}");
        let base_path = uri.path().trim_end_matches('/').to_owned();
        let client = super::http::client().map_err(|err| StorageError::Settings {
            field: "type",
            reason: format!("azure: the TLS client cannot be set up: {err}"),
        })?;
        Ok(AzureStore {
            service: Service { client, origin, key },
            https: scheme == "https",
            base,
            base_path,
            container: settings.container.clone(),
        })
    }

    /// Creates the container; one that exists already is fine.
    pub async fn create_container_if_missing(&self) -> Result<(), StorageError> {
        let location = format!("{}/{}", self.base, self.container);
        let path = format!("{}/{}", self.base_path, sign::encode_component(&self.container));
        let call = Call::new("create container", location, Method::PUT, path).query("restype", "container");
        let response = self.service.send_any(&call).await?;
        if response.status() == StatusCode::CREATED {
            return Ok(());
        }
        let answer = ErrorAnswer::read(response).await;
        if answer.status == StatusCode::CONFLICT && answer.code.as_deref() == Some("ContainerAlreadyExists") {
            return Ok(());
        }
        Err(client::classify(call.op, &call.location, answer.status, answer.code.as_deref(), answer.message.as_deref()))
    }

    /// The URL path of a blob, encoded.
    fn blob_path(&self, key: &str) -> String {
        format!("{}/{}/{}", self.base_path, sign::encode_component(&self.container), sign::encode_path(key))
    }

    fn call(&self, op: &'static str, method: Method, key: &str) -> Call {
        Call::new(op, self.location(key), method, self.blob_path(key))
    }

    /// Get Blob Properties: the headers, or `None` when there is no such blob.
    async fn properties(&self, op: &'static str, key: &str) -> Result<Option<HeaderMap>, StorageError> {
        let call = self.call(op, Method::HEAD, key);
        let response = self.service.send_any(&call).await?;
        if response.status() == StatusCode::OK {
            return Ok(Some(response.headers().clone()));
        }
        match self.service.failure(&call, response).await {
            StorageError::NotFound { .. } => Ok(None),
            err => Err(err),
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn meta_of(headers: &HeaderMap) -> ObjectMeta {
    ObjectMeta {
        size_bytes: header(headers, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0),
        etag: header(headers, "etag").map(|v| v.trim_matches('"').to_owned()),
    }
}

#[async_trait::async_trait]
impl ObjectStore for AzureStore {
    fn kind(&self) -> &'static str {
        BACKEND
    }

    fn location(&self, key: &str) -> String {
        format!("{}/{}/{}", self.base, self.container, sign::encode_path(key))
    }

    async fn put_file(&self, key: &str, path: &Path, expected: &FileFacts) -> Result<PutReceipt, StorageError> {
        let receipt = upload::put_file(self, key, path, expected).await?;
        tracing::debug!(location = %self.location(key), size_bytes = receipt.meta.size_bytes, "azure put");
        Ok(receipt)
    }

    async fn get_file(&self, key: &str, dest: &Path, max_bytes: u64) -> Result<ObjectMeta, StorageError> {
        let location = self.location(key);
        let too_large =
            || StorageError::TooLarge { backend: BACKEND, location: location.clone(), limit_bytes: max_bytes };
        let response = self.service.send(self.call("get", Method::GET, key), &[StatusCode::OK]).await?;
        let mut meta = meta_of(response.headers());
        let declared = header(response.headers(), "content-length").and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|d| d > max_bytes) {
            return Err(too_large());
        }
        let stored_md5 = header(response.headers(), "content-md5").map(str::to_owned);
        let result = async {
            let file = tokio::fs::File::create(dest).await.map_err(StorageError::io(dest))?;
            let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
            let mut body = response.into_body();
            let mut md5 = md5::Md5::new();
            let mut received: u64 = 0;
            loop {
                let frame = match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
                    Ok(Some(Ok(frame))) => frame,
                    Ok(None) => break,
                    Ok(Some(Err(err))) => return Err(interrupted(&location, &client::error_chain(&err))),
                    Err(_) => return Err(interrupted(&location, "no data for 60 s")),
                };
                let Ok(data) = frame.into_data() else { continue };
                received += data.len() as u64;
                if received > max_bytes {
                    return Err(too_large());
                }
                md5.update(&data);
                file.write_all(&data).await.map_err(StorageError::io(dest))?;
            }
            file.flush().await.map_err(StorageError::io(dest))?;
            if let Some(declared) = declared.filter(|d| *d != received) {
                return Err(interrupted(&location, &format!("got {received} of {declared} bytes")));
            }
            let got = upload::base64(&md5.finalize());
            match stored_md5 {
                Some(stored) if stored != got => Err(StorageError::Mismatch {
                    backend: BACKEND,
                    location: location.clone(),
                    reason: format!("the downloaded bytes' MD5 {got} is not the stored Content-MD5 {stored}"),
                }),
                _ => Ok(received),
            }
        }
        .await;
        match result {
            Ok(received) => meta.size_bytes = received,
            Err(err) => {
                let _ = tokio::fs::remove_file(dest).await;
                return Err(err);
            }
        }
        tracing::debug!(%location, size_bytes = meta.size_bytes, "azure get");
        Ok(meta)
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        let wanted = range.end - range.start;
        let call = self
            .call("get range", Method::GET, key)
            .header("x-ms-range", format!("bytes={}-{}", range.start, range.end - 1));
        let location = call.location.clone();
        let response = self.service.send_any(&call).await?;
        let status = response.status();
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            return Ok(Bytes::new());
        }
        if status != StatusCode::PARTIAL_CONTENT && status != StatusCode::OK {
            return Err(self.service.failure(&call, response).await);
        }
        // A server that ignores the range (200) sends the whole object: skip and cut.
        let skip = if status == StatusCode::OK { range.start } else { 0 };
        let limit = usize::try_from(wanted.saturating_add(skip)).unwrap_or(usize::MAX);
        let body = Limited::new(response.into_body(), limit.saturating_add(1));
        let bytes = match tokio::time::timeout(IDLE_TIMEOUT * 5, body.collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(err)) => return Err(interrupted(&location, &err.to_string())),
            Err(_) => return Err(interrupted(&location, "the range did not arrive in time")),
        };
        let start = usize::try_from(skip).unwrap_or(usize::MAX).min(bytes.len());
        let end = start.saturating_add(usize::try_from(wanted).unwrap_or(usize::MAX)).min(bytes.len());
        tracing::debug!(%location, start = range.start, bytes = end - start, "azure get range");
        Ok(bytes.slice(start..end))
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let meta = self.properties("stat", key).await?.as_ref().map(meta_of);
        tracing::debug!(location = %self.location(key), exists = meta.is_some(), "azure stat");
        Ok(meta)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let call = self.call("delete", Method::DELETE, key).header("x-ms-delete-snapshots", "include");
        let response = self.service.send_any(&call).await?;
        tracing::debug!(location = %call.location, status = response.status().as_u16(), "azure delete");
        if response.status().is_success() {
            return Ok(());
        }
        match self.service.failure(&call, response).await {
            StorageError::NotFound { .. } => Ok(()),
            err => Err(err),
        }
    }

    async fn download_url(&self, key: &str, expires_in: Duration) -> Result<Option<DownloadUrl>, StorageError> {
        let now = time::OffsetDateTime::now_utc();
        let sas = BlobSas {
            container: &self.container,
            blob: key,
            start: now - SAS_CLOCK_SKEW,
            expiry: now + expires_in,
            https_only: self.https,
        };
        let query = sign::blob_sas_query(&self.service.key, &sas);
        tracing::debug!(location = %self.location(key), expires_in_s = expires_in.as_secs(), "azure download url");
        Ok(Some(DownloadUrl {
            url: format!("{}?{query}", self.location(key)),
            expires_at_unix_ms: Some(expiry_unix_ms(expires_in)),
        }))
    }
}

/// A body that stopped halfway.
fn interrupted(location: &str, reason: &str) -> StorageError {
    StorageError::Unavailable {
        backend: BACKEND,
        op: "get",
        location: location.to_owned(),
        reason: format!("the download broke off: {reason}"),
    }
}
