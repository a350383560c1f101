//! Google Cloud Storage as a backend, through the `gcloud-storage` crate (JSON API). Objects
//! are `gs://{bucket}/{key}`. Uploads are checked by GCS (declared MD5 and CRC32C) and again
//! here against the object it reports ([`upload`]); downloads stream to disk with their CRC32C
//! checked; download URLs are V4-signed with the service-account key.
//!
//! Credentials, in order: the service-account key JSON of the block (its token comes from the
//! key's `token_uri`); with no key and an explicit endpoint, anonymous access (an emulator);
//! with neither, the Google credential chain (`GOOGLE_APPLICATION_CREDENTIALS`, the metadata
//! server: production only). The crate ignores `STORAGE_EMULATOR_HOST`: the endpoint of the
//! block is the only one used.

mod error;
mod upload;

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use gcloud_storage::client::google_cloud_auth::credentials::CredentialsFile;
use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::objects::Object;
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::download::Range as ByteRange;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::sign::{PathStyle, SignedURLError, SignedURLMethod, SignedURLOptions, URLStyle};
use tokio::io::AsyncWriteExt as _;
use tokio_stream::StreamExt as _;

use self::error::Missing;
use super::object::{DownloadUrl, FileFacts, ObjectMeta, ObjectStore, PutReceipt, StorageError, expiry_unix_ms};
use super::settings::{GcsSettings, MAX_URL_EXPIRY};

const BACKEND: &str = "gcs";
/// A server that does not accept the connection in this time is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A connection that stays silent this long (no answer to a chunk, a stalled download) is dead.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

pub struct GcsStore {
    bucket: String,
    client: Client,
    /// The same connections as `client`'s, for what the crate does not send for us (the
    /// chunks of a resumable upload, which go to the session URI).
    http: reqwest::Client,
    /// `None`: no signing identity (anonymous access): no download URLs.
    signing: Option<Signing>,
}

impl std::fmt::Debug for GcsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsStore").field("bucket", &self.bucket).field("signing", &self.signing).finish_non_exhaustive()
    }
}

/// Where signed URLs point.
#[derive(Debug, Clone)]
struct Signing {
    /// `host[:port]` of the configured endpoint; `None`: storage.googleapis.com.
    host: Option<String>,
    /// The endpoint is plain `http://` (an emulator on loopback).
    insecure: bool,
}

/// Path-style URLs on the configured endpoint's host (the crate's own style always names
/// storage.googleapis.com).
struct EndpointStyle {
    host: String,
}

impl URLStyle for EndpointStyle {
    fn host(&self, _bucket: &str) -> String {
        self.host.clone()
    }

    fn path(&self, bucket: &str, object: &str) -> String {
        if object.is_empty() { bucket.to_owned() } else { format!("{bucket}/{object}") }
    }
}

impl GcsStore {
    /// Builds the client. With a key, its access token is fetched here (from the key's
    /// `token_uri`), so bad credentials fail now.
    pub async fn connect(settings: &GcsSettings) -> Result<GcsStore, StorageError> {
        // Fails only when a provider is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let bucket_location = format!("gs://{}", settings.bucket);
        // No idle pool: each request opens its own connection. The requests are few and
        // large (8 MiB chunks), and a pooled connection to a server that restarted, or through
        // a proxy whose state changed, is a stale one.
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| StorageError::Settings {
                field: "type",
                reason: format!("{BACKEND} {bucket_location}: no HTTP client: {}", error::chain(&err)),
            })?;
        let mut config = ClientConfig { http: Some(http.clone().into()), ..ClientConfig::default() };
        if let Some(endpoint) = &settings.endpoint {
            config.storage_endpoint = endpoint.clone();
        }
        let how;
        let config = match (&settings.service_account_json, &settings.endpoint) {
            (Some(key), _) => {
                how = "service-account key";
                let credentials = credentials_file(key.expose(), &bucket_location)?;
                config
                    .with_credentials(credentials)
                    .await
                    .map_err(|err| error::from_auth("connect", &bucket_location, &err))?
            }
            (None, Some(_)) => {
                how = "anonymous";
                config.anonymous()
            }
            (None, None) => {
                how = "credential chain";
                config.with_auth().await.map_err(|err| error::from_auth("connect", &bucket_location, &err))?
            }
        };
        let signing = (config.default_google_access_id.is_some() && config.default_sign_by.is_some())
            .then(|| signing_for(settings.endpoint.as_deref()));
        tracing::debug!(bucket = %settings.bucket, endpoint = ?settings.endpoint, how, signs = signing.is_some(), "gcs client ready");
        Ok(GcsStore { bucket: settings.bucket.clone(), client: Client::new(config), http, signing })
    }

    fn get_request(&self, key: &str, generation: Option<i64>) -> GetObjectRequest {
        GetObjectRequest { bucket: self.bucket.clone(), object: key.to_owned(), generation, ..Default::default() }
    }

    /// Streams one generation of `key` to `dest`, at most `max_bytes`, checking the CRC32C.
    async fn download(&self, key: &str, object: &Object, dest: &Path, max_bytes: u64) -> Result<(), StorageError> {
        let location = self.location(key);
        let generation = (object.generation != 0).then_some(object.generation);
        let stream = self
            .client
            .download_streamed_object(&self.get_request(key, generation), &ByteRange::default())
            .await
            .map_err(|err| error::from_gcs("get", &location, err, Missing::Object))?;
        let mut stream = std::pin::pin!(stream);
        let file = tokio::fs::File::create(dest).await.map_err(StorageError::io(dest))?;
        let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let (mut written, mut crc) = (0_u64, 0_u32);
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|err| error::from_gcs("get", &location, err, Missing::Object))?;
            written += piece.len() as u64;
            if written > max_bytes {
                return Err(StorageError::TooLarge { backend: BACKEND, location, limit_bytes: max_bytes });
            }
            crc = crc32c::crc32c_append(crc, &piece);
            file.write_all(&piece).await.map_err(StorageError::io(dest))?;
        }
        file.flush().await.map_err(StorageError::io(dest))?;
        let size = u64::try_from(object.size).unwrap_or(0);
        if written != size {
            return Err(StorageError::Unavailable {
                backend: BACKEND,
                op: "get",
                location,
                reason: format!("the download ended after {written} of {size} bytes"),
            });
        }
        // A gzip-encoded object is served decompressed: its CRC32C is of the stored bytes.
        let transcoded = object.content_encoding.as_deref() == Some("gzip");
        let got = crc32c_base64(crc);
        match &object.crc32c {
            Some(stored) if !transcoded && *stored != got => Err(StorageError::Mismatch {
                backend: BACKEND,
                location,
                reason: format!("downloaded CRC32C {got}, stored {stored}"),
            }),
            _ => Ok(()),
        }
    }
}

/// The key JSON, parsed here so that a parse error never quotes it.
fn credentials_file(json: &str, location: &str) -> Result<CredentialsFile, StorageError> {
    serde_json::from_str::<CredentialsFile>(json).map_err(|err| StorageError::Settings {
        field: "secret",
        reason: format!(
            "{BACKEND} {location}: the secret is not a Google credentials JSON ({:?} error at line {}, column {})",
            err.classify(),
            err.line(),
            err.column()
        ),
    })
}

fn signing_for(endpoint: Option<&str>) -> Signing {
    match endpoint.and_then(|e| e.parse::<http::Uri>().ok()) {
        Some(uri) => {
            Signing { host: uri.authority().map(|a| a.as_str().to_owned()), insecure: uri.scheme_str() == Some("http") }
        }
        None => Signing { host: None, insecure: false },
    }
}

fn meta_of(object: &Object) -> ObjectMeta {
    // The generation changes with every upload; the JSON API's etag changes with metadata too.
    let etag = if object.generation != 0 {
        Some(object.generation.to_string())
    } else {
        Some(object.etag.trim_matches('"').to_owned()).filter(|e| !e.is_empty())
    };
    ObjectMeta { size_bytes: u64::try_from(object.size).unwrap_or(0), etag }
}

/// GCS's form of a CRC32C: base64 of the big-endian bytes.
fn crc32c_base64(crc: u32) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

fn sign_error(location: &str, err: SignedURLError) -> StorageError {
    match err {
        SignedURLError::SignBlob(err) => error::from_gcs("sign", location, err, Missing::Bucket),
        other => StorageError::Settings { field: "secret", reason: format!("{BACKEND} sign {location}: {other}") },
    }
}

#[async_trait::async_trait]
impl ObjectStore for GcsStore {
    fn kind(&self) -> &'static str {
        BACKEND
    }

    fn location(&self, key: &str) -> String {
        format!("gs://{}/{key}", self.bucket)
    }

    async fn put_file(&self, key: &str, path: &Path, expected: &FileFacts) -> Result<PutReceipt, StorageError> {
        upload::put(self, key, path, expected).await
    }

    async fn get_file(&self, key: &str, dest: &Path, max_bytes: u64) -> Result<ObjectMeta, StorageError> {
        let location = self.location(key);
        let object = self
            .client
            .get_object(&self.get_request(key, None))
            .await
            .map_err(|err| error::from_gcs("get", &location, err, Missing::Object))?;
        let meta = meta_of(&object);
        if meta.size_bytes > max_bytes {
            return Err(StorageError::TooLarge { backend: BACKEND, location, limit_bytes: max_bytes });
        }
        if let Err(err) = self.download(key, &object, dest, max_bytes).await {
            let _ = tokio::fs::remove_file(dest).await;
            return Err(err);
        }
        tracing::debug!(%location, size_bytes = meta.size_bytes, "gcs get");
        Ok(meta)
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        let location = self.location(key);
        let wanted = ByteRange(Some(range.start), Some(range.end - 1));
        let body = match self.client.download_object(&self.get_request(key, None), &wanted).await {
            Ok(body) => Bytes::from(body),
            // Starts at or past the end.
            Err(err) if error::status_of(&err) == Some(416) => Bytes::new(),
            Err(err) => return Err(error::from_gcs("range", &location, err, Missing::Object)),
        };
        tracing::debug!(%location, start = range.start, end = range.end, got = body.len(), "gcs range");
        let asked = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
        if body.len() > asked {
            // The whole object: the server ignored the range.
            let end = usize::try_from(range.end).unwrap_or(usize::MAX).min(body.len());
            let start = usize::try_from(range.start).unwrap_or(usize::MAX).min(end);
            return Ok(body.slice(start..end));
        }
        Ok(body)
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let location = self.location(key);
        let found = match self.client.get_object(&self.get_request(key, None)).await {
            Ok(object) => Some(meta_of(&object)),
            Err(err) => match error::from_gcs("stat", &location, err, Missing::Object) {
                StorageError::NotFound { .. } => None,
                other => return Err(other),
            },
        };
        tracing::debug!(%location, found = found.is_some(), "gcs stat");
        Ok(found)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let location = self.location(key);
        let request = DeleteObjectRequest { bucket: self.bucket.clone(), object: key.to_owned(), ..Default::default() };
        match self.client.delete_object(&request).await {
            Ok(()) => {}
            Err(err) => match error::from_gcs("delete", &location, err, Missing::Object) {
                StorageError::NotFound { .. } => {}
                other => return Err(other),
            },
        }
        tracing::debug!(%location, "gcs delete");
        Ok(())
    }

    /// A V4-signed GET URL, for at most 7 days. `None` when there is nothing to sign with:
    /// anonymous access (an emulator without a key) has no signing identity.
    async fn download_url(&self, key: &str, expires_in: Duration) -> Result<Option<DownloadUrl>, StorageError> {
        let Some(signing) = &self.signing else {
            return Ok(None);
        };
        let location = self.location(key);
        let expires = expires_in.clamp(Duration::from_secs(1), MAX_URL_EXPIRY);
        let style: Box<dyn URLStyle + Send + Sync> = match &signing.host {
            Some(host) => Box::new(EndpointStyle { host: host.clone() }),
            None => Box::new(PathStyle {}),
        };
        let options = SignedURLOptions {
            method: SignedURLMethod::GET,
            expires,
            style,
            insecure: signing.insecure,
            ..SignedURLOptions::default()
        };
        let url = self
            .client
            .signed_url(&self.bucket, key, None, None, options)
            .await
            .map_err(|err| sign_error(&location, err))?;
        tracing::debug!(%location, expires_s = expires.as_secs(), "gcs signed a download URL");
        Ok(Some(DownloadUrl { url, expires_at_unix_ms: Some(expiry_unix_ms(expires)) }))
    }
}
