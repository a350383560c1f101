//! Uploads. A file under 8 MiB goes in one multipart request whose object resource declares
//! its MD5 and CRC32C (GCS refuses a body that does not match them). A larger one goes in a
//! resumable session, 8 MiB chunks (a multiple of 256 KiB) streamed from the file while the
//! next chunk is read and hashed; the last chunk carries `X-Goog-Hash` with the whole file's
//! CRC32C and MD5, so GCS verifies before it finalises. Before anything is finalised, the size
//! and SHA-256 read from the file are compared with what the caller expects; on a mismatch
//! nothing is sent (small) or the session is cancelled (large), so no object appears.
//!
//! After the upload, the object GCS reports must have the size, MD5 and CRC32C computed here.
//! If it does not (a service or emulator that did not check), the bad object has already
//! replaced the old one: it is deleted (that generation only) and the upload fails.
//!
//! A chunk that fails ends the attempt (the session is cancelled); the next attempt starts a
//! new session from the first byte. The session's status is never queried to resume it: some
//! emulators (fake-gcs-server) finalise the partial object on a status query.

use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gcloud_storage::http::objects::Object;
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::upload::{UploadObjectRequest, UploadType};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, HeaderMap, RANGE};
use sha2::Digest as _;

use super::error::{self, Missing};
use super::{BACKEND, GcsStore, crc32c_base64, meta_of};
use crate::storage::object::{FileFacts, ObjectStore as _, PutReceipt, StorageError};

/// Chunk size of a resumable upload, and the size from which one is used.
pub(super) const CHUNK_BYTES: u64 = 8 << 20;
const CONTENT_TYPE: &str = "application/octet-stream";
/// Cancelling an abandoned session is a courtesy: it expires on its own.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);
const VERIFIED: &str = "MD5 and CRC32C by GCS; size, MD5 and CRC32C of the stored object compared";

/// The running hashes of what was read from the file.
#[derive(Clone)]
struct Hashes {
    md5: md5::Md5,
    sha256: sha2::Sha256,
    crc32c: u32,
    size: u64,
}

/// What was read: size, SHA-256 (lower-case hex), MD5 and CRC32C (base64, as GCS gives them).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Digests {
    size: u64,
    sha256: String,
    md5: String,
    crc32c: String,
}

impl Hashes {
    fn new() -> Hashes {
        Hashes { md5: md5::Md5::new(), sha256: sha2::Sha256::new(), crc32c: 0, size: 0 }
    }

    fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.sha256.update(data);
        self.crc32c = crc32c::crc32c_append(self.crc32c, data);
        self.size += data.len() as u64;
    }

    fn digests(&self) -> Digests {
        use base64::Engine as _;
        let hashes = self.clone();
        Digests {
            size: hashes.size,
            sha256: hashes.sha256.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            md5: base64::engine::general_purpose::STANDARD.encode(hashes.md5.finalize()),
            crc32c: crc32c_base64(hashes.crc32c),
        }
    }
}

impl Digests {
    /// The file read is the one the caller described.
    fn check(&self, expected: &FileFacts, location: &str) -> Result<(), StorageError> {
        if self.size == expected.size_bytes && self.sha256.eq_ignore_ascii_case(&expected.sha256) {
            return Ok(());
        }
        Err(StorageError::Mismatch {
            backend: BACKEND,
            location: location.to_owned(),
            reason: format!(
                "read {} bytes, sha256 {} from the file; expected {} bytes, sha256 {}",
                self.size, self.sha256, expected.size_bytes, expected.sha256
            ),
        })
    }
}

pub(super) async fn put(
    store: &GcsStore,
    key: &str,
    path: &Path,
    expected: &FileFacts,
) -> Result<PutReceipt, StorageError> {
    let location = store.location(key);
    let size = tokio::fs::metadata(path).await.map_err(StorageError::io(path))?.len();
    if size != expected.size_bytes {
        return Err(StorageError::Mismatch {
            backend: BACKEND,
            location,
            reason: format!("the file has {size} bytes; expected {}", expected.size_bytes),
        });
    }
    let started = Instant::now();
    let (object, digests, how) = if size < CHUNK_BYTES {
        let (object, digests) = small(store, key, path, expected, &location).await?;
        (object, digests, "multipart")
    } else {
        let (object, digests) = resumable(store, key, path, size, expected, &location).await?;
        (object, digests, "resumable")
    };
    check_stored(store, key, &location, &object, &digests).await?;
    tracing::debug!(%location, size_bytes = size, how, elapsed_ms = started.elapsed().as_millis() as u64, "gcs put");
    Ok(PutReceipt { meta: meta_of(&object), verified: VERIFIED.into() })
}

fn resource(key: &str, sha256: &str) -> Object {
    Object {
        name: key.to_owned(),
        content_type: Some(CONTENT_TYPE.into()),
        metadata: Some([("sha256".to_owned(), sha256.to_ascii_lowercase())].into_iter().collect()),
        ..Object::default()
    }
}

/// One multipart request, its MD5 and CRC32C declared.
async fn small(
    store: &GcsStore,
    key: &str,
    path: &Path,
    expected: &FileFacts,
    location: &str,
) -> Result<(Object, Digests), StorageError> {
    let source = path.to_path_buf();
    let (data, digests) = blocking(path, move || {
        let mut data = Vec::new();
        std::fs::File::open(&source)?.take(CHUNK_BYTES).read_to_end(&mut data)?;
        let mut hashes = Hashes::new();
        hashes.update(&data);
        Ok((data, hashes.digests()))
    })
    .await?;
    digests.check(expected, location)?;
    let resource = Object {
        md5_hash: Some(digests.md5.clone()),
        crc32c: Some(digests.crc32c.clone()),
        ..resource(key, &digests.sha256)
    };
    let request = UploadObjectRequest { bucket: store.bucket.clone(), ..Default::default() };
    let object = store
        .client
        .upload_object(&request, data, &UploadType::Multipart(Box::new(resource)))
        .await
        .map_err(|err| error::from_gcs("put", location, err, Missing::Bucket))?;
    Ok((object, digests))
}

/// A resumable session, cancelled when the attempt fails.
async fn resumable(
    store: &GcsStore,
    key: &str,
    path: &Path,
    size: u64,
    expected: &FileFacts,
    location: &str,
) -> Result<(Object, Digests), StorageError> {
    let request = UploadObjectRequest { bucket: store.bucket.clone(), ..Default::default() };
    let session = store
        .client
        .prepare_resumable_upload(&request, &UploadType::Multipart(Box::new(resource(key, &expected.sha256))))
        .await
        .map_err(|err| error::from_gcs("put", location, err, Missing::Bucket))?;
    let session_uri = session.url().to_owned();
    let result = send_chunks(store, &session_uri, path, size, expected, location).await;
    if result.is_err() {
        let cancel = store.http.delete(&session_uri).header(CONTENT_LENGTH, 0).send();
        let _ = tokio::time::timeout(CANCEL_TIMEOUT, cancel).await;
    }
    result
}

/// The file, read a chunk at a time on a blocking thread, hashed as it is read.
struct ChunkReader {
    file: std::fs::File,
    hashes: Hashes,
}

impl ChunkReader {
    fn read(mut self, len: u64) -> (ChunkReader, std::io::Result<Bytes>) {
        let mut chunk = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        let read = std::io::Read::by_ref(&mut self.file).take(len).read_to_end(&mut chunk);
        let result = read.map(|_| {
            self.hashes.update(&chunk);
            Bytes::from(chunk)
        });
        (self, result)
    }
}

type PendingChunk = tokio::task::JoinHandle<(ChunkReader, std::io::Result<Bytes>)>;

fn read_next(reader: ChunkReader, len: u64) -> PendingChunk {
    tokio::task::spawn_blocking(move || reader.read(len))
}

async fn send_chunks(
    store: &GcsStore,
    session_uri: &str,
    path: &Path,
    size: u64,
    expected: &FileFacts,
    location: &str,
) -> Result<(Object, Digests), StorageError> {
    let file = tokio::fs::File::open(path).await.map_err(StorageError::io(path))?.into_std().await;
    let mut pending = Some(read_next(ChunkReader { file, hashes: Hashes::new() }, size.min(CHUNK_BYTES)));
    let mut offset = 0_u64;
    while let Some(task) = pending.take() {
        let (reader, chunk) = task.await.map_err(|err| join_failed(path, &err))?;
        let chunk = chunk.map_err(StorageError::io(path))?;
        if chunk.is_empty() {
            return Err(mismatch(location, format!("the file ended after {offset} of {size} bytes")));
        }
        let end = offset + chunk.len() as u64;
        let last = end >= size;
        let digests = if last {
            // Everything is read: the last chance to stop before GCS finalises.
            let digests = reader.hashes.digests();
            digests.check(expected, location)?;
            Some(digests)
        } else {
            // Read and hash the next chunk while this one is on the wire.
            pending = Some(read_next(reader, (size - end).min(CHUNK_BYTES)));
            None
        };
        let (status, headers, body) =
            put_chunk(store, session_uri, chunk, offset, size, digests.as_ref(), location).await?;
        match (status, digests) {
            (308, None) => check_persisted(&headers, end, location)?,
            (200 | 201, Some(digests)) => {
                let object = serde_json::from_slice::<Object>(&body).map_err(|err| StorageError::Unavailable {
                    backend: BACKEND,
                    op: "put",
                    location: location.to_owned(),
                    reason: format!("the upload finished, but its answer is not an object resource: {err}"),
                })?;
                return Ok((object, digests));
            }
            (308, Some(_)) => {
                return Err(StorageError::Unavailable {
                    backend: BACKEND,
                    op: "put",
                    location: location.to_owned(),
                    reason: "the last chunk was accepted but the upload did not finish".into(),
                });
            }
            (200 | 201, None) => {
                // Finalised short of the end: a partial object stands under the key.
                if let Ok(object) = serde_json::from_slice::<Object>(&body) {
                    let _ = delete_generation(store, &object.name, object.generation).await;
                }
                return Err(mismatch(location, format!("the upload was finalised after {end} of {size} bytes")));
            }
            (status, _) => {
                return Err(error::from_status("put", location, status, &message_of(&body), Missing::Session));
            }
        }
        offset = end;
    }
    Err(mismatch(location, "no chunk was sent".into()))
}

/// Sends `chunk` (at `offset` of `size`) to the session; the last carries the whole file's hashes.
async fn put_chunk(
    store: &GcsStore,
    session_uri: &str,
    chunk: Bytes,
    offset: u64,
    size: u64,
    last: Option<&Digests>,
    location: &str,
) -> Result<(u16, HeaderMap, Bytes), StorageError> {
    let len = chunk.len() as u64;
    let mut request = store
        .http
        .put(session_uri)
        .header(CONTENT_RANGE, format!("bytes {offset}-{}/{size}", offset + len - 1))
        .header(CONTENT_LENGTH, len)
        .body(chunk);
    if let Some(digests) = last {
        request = request.header("X-Goog-Hash", format!("crc32c={},md5={}", digests.crc32c, digests.md5));
    }
    let failed = |err| error::from_reqwest("put", location, err, Missing::Session);
    let response = request.send().await.map_err(failed)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(failed)?;
    Ok((status, headers, body))
}

/// After a 308, the server's `Range: bytes=0-N` must cover everything sent so far.
fn check_persisted(headers: &HeaderMap, end: u64, location: &str) -> Result<(), StorageError> {
    let kept = headers
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit('-').next())
        .and_then(|last| last.trim().parse::<u64>().ok())
        .map_or(0, |last| last + 1);
    if kept == end {
        return Ok(());
    }
    Err(StorageError::Unavailable {
        backend: BACKEND,
        op: "put",
        location: location.to_owned(),
        reason: format!("the server kept {kept} of the {end} bytes sent; the upload starts again"),
    })
}

/// The object GCS reports is what was read from the file; else it is removed.
async fn check_stored(
    store: &GcsStore,
    key: &str,
    location: &str,
    object: &Object,
    digests: &Digests,
) -> Result<(), StorageError> {
    let mut problems = Vec::new();
    if u64::try_from(object.size).ok() != Some(digests.size) {
        problems.push(format!("size {} (sent {})", object.size, digests.size));
    }
    if let Some(md5) = object.md5_hash.as_ref().filter(|md5| **md5 != digests.md5) {
        problems.push(format!("MD5 {md5} (sent {})", digests.md5));
    }
    if let Some(crc) = object.crc32c.as_ref().filter(|crc| **crc != digests.crc32c) {
        problems.push(format!("CRC32C {crc} (sent {})", digests.crc32c));
    }
    if object.md5_hash.is_none() && object.crc32c.is_none() {
        problems.push("neither MD5 nor CRC32C reported".into());
    }
    if problems.is_empty() {
        return Ok(());
    }
    let removed = delete_generation(store, key, object.generation).await;
    let after = if removed { "it was deleted" } else { "deleting it failed" };
    Err(mismatch(location, format!("the stored object has {}; {after}", problems.join(", "))))
}

/// Deletes `key` if its generation is still `generation` (a newer upload stays).
async fn delete_generation(store: &GcsStore, key: &str, generation: i64) -> bool {
    let request = DeleteObjectRequest {
        bucket: store.bucket.clone(),
        object: key.to_owned(),
        if_generation_match: (generation != 0).then_some(generation),
        ..Default::default()
    };
    store.client.delete_object(&request).await.is_ok()
}

fn mismatch(location: &str, reason: String) -> StorageError {
    StorageError::Mismatch { backend: BACKEND, location: location.to_owned(), reason }
}

/// The `error.message` of a JSON error answer, else the start of the body.
fn message_of(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        message: String,
    }
    match serde_json::from_slice::<Wrapper>(body) {
        Ok(wrapper) => wrapper.error.message,
        Err(_) => String::from_utf8_lossy(body).chars().take(200).collect(),
    }
}

fn join_failed(path: &Path, err: &tokio::task::JoinError) -> StorageError {
    StorageError::Io { path: path.to_path_buf(), source: std::io::Error::other(format!("file task failed: {err}")) }
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work).await.map_err(|err| join_failed(path, &err))?.map_err(StorageError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_in_the_forms_gcs_uses() {
        let mut hashes = Hashes::new();
        hashes.update(b"hello ");
        hashes.update(b"world");
        let digests = hashes.digests();
        // What fake-gcs-server (and GCS) report for "hello world".
        assert_eq!(digests.md5, "XrY7u+Ae7tCTyyK7j1rNww==");
        assert_eq!(digests.crc32c, "yZRlqg==");
        assert_eq!(digests.sha256, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
        assert_eq!(digests.size, 11);
        let facts = FileFacts { size_bytes: 11, sha256: digests.sha256.to_uppercase() };
        assert!(digests.check(&facts, "gs://b/k").is_ok());
        let wrong = FileFacts { size_bytes: 11, sha256: "0".repeat(64) };
        assert!(matches!(digests.check(&wrong, "gs://b/k"), Err(StorageError::Mismatch { .. })));
    }

    #[test]
    fn a_short_range_means_the_chunk_was_not_all_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(RANGE, "bytes=0-8388607".parse().expect("header"));
        assert!(check_persisted(&headers, 8 << 20, "gs://b/k").is_ok());
        assert!(check_persisted(&headers, 16 << 20, "gs://b/k").is_err());
        assert!(check_persisted(&HeaderMap::new(), 8 << 20, "gs://b/k").is_err());
    }

    #[test]
    fn error_bodies_are_read() {
        assert_eq!(message_of(br#"{"error":{"code":400,"message":"bad hash"}}"#), "bad hash");
        assert_eq!(message_of(b"<Error>x</Error>"), "<Error>x</Error>");
    }
}
