//! Amazon S3 and S3-compatible services (DigitalOcean Spaces, an emulator) with aws-sdk-s3.
//! A file under 16 MiB is one PutObject carrying its SHA-256 (`ChecksumSHA256`), which S3
//! checks against the body; a larger one is a multipart upload ([`multipart`]) whose parts
//! each carry theirs, and which is aborted on any failure, so nothing half-written is left.
//! Does not own retries: one call is one attempt of ours (the SDK's own standard retry sits
//! inside it).

mod errors;
mod multipart;

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::object::{DownloadUrl, FileFacts, ObjectMeta, ObjectStore, PutReceipt, StorageError, expiry_unix_ms};
use super::settings::S3Settings;
use errors::Context;

/// Files at least this large go up in parts of (at least) this size.
const PART_SIZE: u64 = 16 << 20;
/// Parts being sent at once (bounds memory: this many parts, plus the one being read).
const PARTS_IN_FLIGHT: usize = 4;
/// S3's limit on parts in one upload.
const MAX_PARTS: u64 = 10_000;
const DEFAULT_REGION: &str = "us-east-1";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One attempt of one request, a 16 MiB part included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);
/// The user metadata key holding the file's full SHA-256 (hex).
const SHA256_METADATA: &str = "sha256";

/// A bucket of S3 or of an S3-compatible service.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    /// "s3" or "digitalocean".
    kind: &'static str,
    bucket: String,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store").field("kind", &self.kind).field("bucket", &self.bucket).finish_non_exhaustive()
    }
}

impl S3Store {
    /// Builds the client; nothing is sent yet. Static credentials need nothing else (no
    /// instance metadata is probed); without them, the standard AWS chain is loaded.
    pub async fn connect(settings: &S3Settings) -> Result<S3Store, StorageError> {
        let mut builder = match &settings.credentials {
            Some((key_id, secret)) => {
                let region = if settings.region.is_empty() { DEFAULT_REGION } else { settings.region.as_str() };
                aws_sdk_s3::config::Builder::new()
                    .behavior_version(BehaviorVersion::latest())
                    .region(Region::new(region.to_owned()))
                    .credentials_provider(Credentials::new(key_id, secret.expose(), None, None, "tessera"))
            }
            None => {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if !settings.region.is_empty() {
                    loader = loader.region(Region::new(settings.region.clone()));
                }
                let shared = loader.load().await;
                let mut builder = aws_sdk_s3::config::Builder::from(&shared);
                if shared.region().is_none() {
                    builder = builder.region(Region::new(DEFAULT_REGION));
                }
                // Path-style addressing with an endpoint from the environment or a profile
                // too (the SDK itself picks the endpoint up; this only sees whether there is
                // one).
                if settings.endpoint.is_none() && (shared.endpoint_url().is_some() || env_endpoint().is_some()) {
                    builder = builder.force_path_style(true);
                }
                builder
            }
        };
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.endpoint_url(endpoint).force_path_style(true);
        }
        let config = builder
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            )
            .retry_config(RetryConfig::standard())
            .build();
        Ok(S3Store { client: Client::from_conf(config), kind: settings.kind, bucket: settings.bucket.clone() })
    }

    fn context<'a>(&self, op: &'static str, location: &'a str) -> Context<'a> {
        Context { backend: self.kind, op, location }
    }

    /// One PutObject of a file under [`PART_SIZE`], read whole and checked first.
    async fn put_single(&self, key: &str, path: &Path, expected: &FileFacts) -> Result<PutReceipt, StorageError> {
        let location = self.location(key);
        let cx = self.context("put", &location);
        // At most one byte more than expected: enough to see that the file grew.
        let file = tokio::fs::File::open(path).await.map_err(StorageError::io(path))?;
        let mut body = Vec::with_capacity(usize::try_from(expected.size_bytes).unwrap_or(0));
        file.take(expected.size_bytes + 1).read_to_end(&mut body).await.map_err(StorageError::io(path))?;
        let body = Bytes::from(body);
        let (sha256, body) = tokio::task::spawn_blocking(move || (Sha256::digest(&body), body))
            .await
            .map_err(|err| cx.unavailable(format!("hashing failed: {err}")))?;
        let hex = hex(&sha256);
        if body.len() as u64 != expected.size_bytes || hex != expected.sha256 {
            return Err(cx.mismatch(format!(
                "the local file has {} bytes, sha256 {hex}; expected {} bytes, {}",
                body.len(),
                expected.size_bytes,
                expected.sha256
            )));
        }
        let checksum = base64::engine::general_purpose::STANDARD.encode(sha256);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(body.len() as i64)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(&checksum)
            .metadata(SHA256_METADATA, &expected.sha256)
            .body(ByteStream::from(body))
            // The signed checksum header covers the body: no second SHA-256 for the signature.
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|err| cx.sdk(&err))?;
        let (meta, read_back) = self.check_stored(key, expected, &checksum, &cx).await?;
        let verified = if read_back {
            "SHA-256 of the file checked before sending, ChecksumSHA256 by S3 and read back by HEAD, size by HEAD"
        } else {
            "SHA-256 of the file checked before sending, ChecksumSHA256 by S3, size by HEAD"
        };
        Ok(PutReceipt { meta, verified: verified.into() })
    }

    /// HEADs the object just written: it exists, has the expected size and an entity tag, and
    /// where the service reports a SHA-256 (of the body, or S3's composite of the parts'),
    /// it is `checksum` (base64). Returns whether one was reported.
    async fn check_stored(
        &self,
        key: &str,
        expected: &FileFacts,
        checksum: &str,
        cx: &Context<'_>,
    ) -> Result<(ObjectMeta, bool), StorageError> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|err| cx.sdk(&err));
        let out = match head {
            Ok(out) => out,
            Err(StorageError::NotFound { .. }) => {
                return Err(cx.mismatch("the object is missing right after it was written"));
            }
            Err(other) => return Err(other),
        };
        let meta = meta_of(out.content_length(), out.e_tag());
        if meta.size_bytes != expected.size_bytes {
            return Err(cx.mismatch(format!(
                "the object has {} bytes after the upload; expected {}",
                meta.size_bytes, expected.size_bytes
            )));
        }
        if meta.etag.is_none() {
            return Err(cx.mismatch("the object has no entity tag after the upload"));
        }
        let reported = out.checksum_sha256().map(without_part_count);
        if let Some(reported) = reported
            && reported != checksum
        {
            return Err(cx.mismatch(format!("the object's SHA-256 is {reported}; sent {checksum} (base64)")));
        }
        Ok((meta, reported.is_some()))
    }

    async fn head(&self, key: &str, cx: &Context<'_>) -> Result<Option<ObjectMeta>, StorageError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(meta_of(out.content_length(), out.e_tag()))),
            Err(err) => match cx.sdk(&err) {
                StorageError::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    async fn put_file(&self, key: &str, path: &Path, expected: &FileFacts) -> Result<PutReceipt, StorageError> {
        let size_bytes = tokio::fs::metadata(path).await.map_err(StorageError::io(path))?.len();
        tracing::debug!(backend = self.kind, location = %self.location(key), size_bytes, "put");
        if size_bytes != expected.size_bytes {
            let location = self.location(key);
            return Err(self
                .context("put", &location)
                .mismatch(format!("the local file has {size_bytes} bytes; expected {}", expected.size_bytes)));
        }
        if size_bytes < PART_SIZE {
            self.put_single(key, path, expected).await
        } else {
            self.put_multipart(key, path, expected).await
        }
    }

    async fn get_file(&self, key: &str, dest: &Path, max_bytes: u64) -> Result<ObjectMeta, StorageError> {
        let location = self.location(key);
        let cx = self.context("get", &location);
        tracing::debug!(backend = self.kind, %location, max_bytes, "get");
        let out = self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(|err| cx.sdk(&err))?;
        let too_large =
            || StorageError::TooLarge { backend: self.kind, location: location.clone(), limit_bytes: max_bytes };
        if out.content_length().and_then(|n| u64::try_from(n).ok()).is_some_and(|n| n > max_bytes) {
            return Err(too_large());
        }
        let etag = out.e_tag().map(unquoted);
        let mut body = out.body;
        let mut file = tokio::fs::File::create(dest).await.map_err(StorageError::io(dest))?;
        let mut written = 0_u64;
        let copied: Result<(), StorageError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|err| cx.stream(&err))?;
                written += chunk.len() as u64;
                if written > max_bytes {
                    return Err(too_large());
                }
                file.write_all(&chunk).await.map_err(StorageError::io(dest))?;
            }
            file.flush().await.map_err(StorageError::io(dest))
        }
        .await;
        if let Err(err) = copied {
            drop(file);
            let _ = tokio::fs::remove_file(dest).await;
            return Err(err);
        }
        Ok(ObjectMeta { size_bytes: written, etag })
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let location = self.location(key);
        let cx = self.context("get range", &location);
        tracing::debug!(backend = self.kind, %location, start = range.start, end = range.end, "get range");
        if range.end <= range.start {
            return Ok(Bytes::new());
        }
        let sent = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={}-{}", range.start, range.end - 1))
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            // The range starts at or past the end.
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 416) => return Ok(Bytes::new()),
            Err(err) => return Err(cx.sdk(&err)),
        };
        let partial = out.content_range().is_some();
        let bytes = out.body.collect().await.map_err(|err| cx.stream(&err))?.into_bytes();
        if partial {
            return Ok(bytes);
        }
        // A server that ignores the range answers with the whole object.
        let len = bytes.len() as u64;
        let (start, end) = (range.start.min(len), range.end.min(len));
        Ok(bytes.slice(start as usize..end as usize))
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let location = self.location(key);
        tracing::debug!(backend = self.kind, %location, "stat");
        self.head(key, &self.context("stat", &location)).await
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let location = self.location(key);
        let cx = self.context("delete", &location);
        tracing::debug!(backend = self.kind, %location, "delete");
        match self.client.delete_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(err) => match cx.sdk(&err) {
                StorageError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn download_url(&self, key: &str, expires_in: Duration) -> Result<Option<DownloadUrl>, StorageError> {
        let location = self.location(key);
        let cx = self.context("sign", &location);
        tracing::debug!(backend = self.kind, %location, expires_in_s = expires_in.as_secs(), "download url");
        let presigning = PresigningConfig::expires_in(expires_in)
            .map_err(|err| StorageError::Settings { field: "url_expiry_s", reason: err.to_string() })?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|err| cx.sdk(&err))?;
        Ok(Some(DownloadUrl { url: presigned.uri().to_owned(), expires_at_unix_ms: Some(expiry_unix_ms(expires_in)) }))
    }
}

/// The S3 endpoint the environment names, if any (the SDK reads these itself).
fn env_endpoint() -> Option<String> {
    let ignored = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if ignored {
        return None;
    }
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

fn meta_of(content_length: Option<i64>, etag: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        size_bytes: content_length.and_then(|n| u64::try_from(n).ok()).unwrap_or_default(),
        etag: etag.map(unquoted),
    }
}

/// A composite checksum without its `-{parts}` suffix (S3 adds it; moto's HEAD does not).
fn without_part_count(checksum: &str) -> &str {
    match checksum.rsplit_once('-') {
        Some((value, parts)) if !parts.is_empty() && parts.bytes().all(|b| b.is_ascii_digit()) => value,
        _ => checksum,
    }
}

/// An entity tag without its quotes.
fn unquoted(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::settings::Secret;

    fn settings(kind: &'static str) -> S3Settings {
        S3Settings {
            kind,
            bucket: "recordings".into(),
            region: String::new(),
            endpoint: Some("http://127.0.0.1:9".into()),
            credentials: Some(("AKIDEXAMPLE".into(), Secret::new("very-secret-key"))),
        }
    }

    #[tokio::test]
    async fn locations_name_the_bucket_and_never_a_secret() {
        for kind in ["s3", "digitalocean"] {
            let store = S3Store::connect(&settings(kind)).await.expect("connect");
            assert_eq!(store.kind(), kind);
            assert_eq!(store.location("calls/a b.mp4"), "s3://recordings/calls/a b.mp4");
            assert!(!format!("{store:?}").contains("very-secret-key"));
        }
    }

    #[tokio::test]
    async fn a_presigned_url_is_signed_and_expires() {
        let store = S3Store::connect(&settings("s3")).await.expect("connect");
        let url = store.download_url("calls/a.mp4", Duration::from_secs(600)).await.expect("sign").expect("a URL");
        assert!(url.url.starts_with("http://127.0.0.1:9/recordings/calls/a.mp4?"), "path style: {}", url.url);
        assert!(url.url.contains("X-Amz-Signature="), "{}", url.url);
        assert!(url.url.contains("X-Amz-Expires=600"), "{}", url.url);
        let now = expiry_unix_ms(Duration::ZERO);
        assert!(url.expires_at_unix_ms.is_some_and(|at| (at - now - 600_000).abs() < 5_000));
        let err = store.download_url("a.mp4", Duration::from_secs(8 * 24 * 3600)).await.expect_err("too long");
        assert!(matches!(err, StorageError::Settings { .. }), "{err}");
    }

    #[test]
    fn composite_checksums_lose_their_part_count() {
        assert_eq!(without_part_count("q83vEjRWeJA=-3"), "q83vEjRWeJA=");
        assert_eq!(without_part_count("q83vEjRWeJA="), "q83vEjRWeJA=");
        assert_eq!(without_part_count("abc-"), "abc-");
    }

    #[tokio::test]
    async fn a_closed_port_is_unavailable_and_named() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let closed = S3Settings { endpoint: Some(format!("http://127.0.0.1:{port}")), ..settings("digitalocean") };
        let store = S3Store::connect(&closed).await.expect("connect");
        let err = store.stat("a.mp4").await.expect_err("nothing listens there");
        assert!(matches!(err, StorageError::Unavailable { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("digitalocean") && text.contains("s3://recordings/a.mp4"), "{text}");
        assert!(!text.contains("very-secret-key"), "{text}");
    }
}
