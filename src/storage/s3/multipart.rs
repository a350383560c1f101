//! Large files as S3 multipart uploads: stale uploads of the key are aborted first, the file
//! is read in parts (a few in flight, so memory stays bounded), each part carries its own
//! SHA-256, the whole file is hashed as it is read and checked against what the caller
//! expects before the upload is completed, and any failure aborts the upload.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;
use tokio::task::JoinSet;

use super::errors::{Context, OwnedContext};
use super::{MAX_PARTS, PART_SIZE, PARTS_IN_FLIGHT, S3Store, SHA256_METADATA, hex};
use crate::storage::object::{FileFacts, ObjectStore as _, PutReceipt, StorageError};

/// Pages of the stale-upload listing looked at, at most (1000 uploads each).
const MAX_LISTING_PAGES: usize = 10;

impl S3Store {
    /// Uploads a file of at least [`PART_SIZE`] in parts.
    pub(super) async fn put_multipart(
        &self,
        key: &str,
        path: &Path,
        expected: &FileFacts,
    ) -> Result<PutReceipt, StorageError> {
        let location = self.location(key);
        let cx = self.context("put", &location);
        self.abort_stale(key, &cx).await;
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .metadata(SHA256_METADATA, &expected.sha256)
            .send()
            .await
            .map_err(|err| cx.sdk(&err))?;
        let Some(upload_id) = created.upload_id().map(str::to_owned) else {
            return Err(cx.unavailable("CreateMultipartUpload answered without an upload id"));
        };
        let uploaded = self.upload_and_complete(key, path, expected, &upload_id, &cx).await;
        if let Err(err) = &uploaded {
            tracing::debug!(backend = self.kind, %location, error = %err, "aborting a failed multipart upload");
            // Best effort: the server may be the thing that failed.
            let aborted =
                self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(&upload_id).send().await;
            if let Err(err) = aborted {
                tracing::debug!(backend = self.kind, %location, error = %cx.sdk(&err), "abort of a failed upload failed");
            }
        }
        let composite = uploaded?;
        let (meta, read_back) = self.check_stored(key, expected, &composite, &cx).await?;
        let verified = if read_back {
            "ChecksumSHA256 per part by S3, their composite read back by HEAD, SHA-256 of the whole file while \
             sending, size by HEAD"
        } else {
            "ChecksumSHA256 per part by S3, SHA-256 of the whole file while sending, size by HEAD"
        };
        Ok(PutReceipt { meta, verified: verified.into() })
    }

    /// Aborts the unfinished multipart uploads of exactly `key` (a node stopped mid-upload
    /// leaves them, and they hold storage until aborted). Best effort: credentials allowed to
    /// upload but not to list or abort uploads still upload.
    async fn abort_stale(&self, key: &str, cx: &Context<'_>) {
        let mut markers: (Option<String>, Option<String>) = (None, None);
        for _ in 0..MAX_LISTING_PAGES {
            let listing = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(key)
                .set_key_marker(markers.0.take())
                .set_upload_id_marker(markers.1.take())
                .send()
                .await;
            let listing = match listing {
                Ok(listing) => listing,
                Err(err) => {
                    let error = cx.sdk(&err);
                    tracing::debug!(backend = self.kind, location = cx.location, %error, "stale uploads not listed");
                    return;
                }
            };
            for upload in listing.uploads() {
                let (Some(stale_key), Some(upload_id)) = (upload.key(), upload.upload_id()) else { continue };
                if stale_key != key {
                    continue;
                }
                let aborted = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .send()
                    .await;
                match aborted {
                    Ok(_) => tracing::debug!(backend = self.kind, location = cx.location, "stale upload aborted"),
                    Err(err) => {
                        let error = cx.sdk(&err);
                        tracing::debug!(backend = self.kind, location = cx.location, %error, "stale upload not aborted");
                    }
                }
            }
            if listing.is_truncated() != Some(true) {
                break;
            }
            markers =
                (listing.next_key_marker().map(str::to_owned), listing.next_upload_id_marker().map(str::to_owned));
            if markers.0.is_none() && markers.1.is_none() {
                break;
            }
        }
    }

    /// Sends the parts, checks the whole file, completes the upload. Returns S3's composite
    /// checksum of the upload (base64 SHA-256 of the parts' SHA-256s, without `-{parts}`).
    async fn upload_and_complete(
        &self,
        key: &str,
        path: &Path,
        expected: &FileFacts,
        upload_id: &str,
        cx: &Context<'_>,
    ) -> Result<String, StorageError> {
        let part_size = part_size(expected.size_bytes);
        let mut file = tokio::fs::File::open(path).await.map_err(StorageError::io(path))?;
        let mut whole = Sha256::new();
        let mut read_bytes = 0_u64;
        let mut in_flight: JoinSet<Result<SentPart, StorageError>> = JoinSet::new();
        let mut done: Vec<SentPart> = Vec::new();
        for part_number in 1.. {
            let part = read_part(&mut file, part_size, path).await?;
            if part.is_empty() {
                break;
            }
            read_bytes += part.len() as u64;
            if read_bytes > expected.size_bytes || part_number > MAX_PARTS as i32 {
                return Err(cx.mismatch(format!(
                    "the local file grew past the {} bytes expected while it was sent",
                    expected.size_bytes
                )));
            }
            if in_flight.len() >= PARTS_IN_FLIGHT {
                done.push(joined(in_flight.join_next().await, cx)?);
            }
            // The part hashes and goes while the whole file's hash takes it in.
            in_flight.spawn(self.clone().send_part(
                key.to_owned(),
                upload_id.to_owned(),
                part_number,
                part.clone(),
                cx.owned(),
            ));
            whole = tokio::task::spawn_blocking(move || {
                whole.update(&part);
                whole
            })
            .await
            .map_err(|err| cx.unavailable(format!("hashing the file failed: {err}")))?;
        }
        while let Some(result) = in_flight.join_next().await {
            done.push(joined(Some(result), cx)?);
        }
        let sha256 = hex(&whole.finalize());
        if read_bytes != expected.size_bytes || sha256 != expected.sha256 {
            return Err(cx.mismatch(format!(
                "the local file read {read_bytes} bytes, sha256 {sha256}; expected {} bytes, {}",
                expected.size_bytes, expected.sha256
            )));
        }
        done.sort_by_key(|sent| sent.part.part_number());
        let mut composite = Sha256::new();
        for sent in &done {
            composite.update(&sent.digest);
        }
        let parts = done.into_iter().map(|sent| sent.part).collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|err| cx.sdk(&err))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(composite.finalize()))
    }

    /// Hashes one part and sends it with its SHA-256 (`ChecksumSHA256`, which S3 checks; the
    /// payload itself is not signed a second time: the signed checksum header covers it).
    async fn send_part(
        self,
        key: String,
        upload_id: String,
        part_number: i32,
        part: Bytes,
        cx: OwnedContext,
    ) -> Result<SentPart, StorageError> {
        let cx = cx.borrow();
        let (part, digest) = tokio::task::spawn_blocking(move || {
            let digest = Sha256::digest(&part).to_vec();
            (part, digest)
        })
        .await
        .map_err(|err| cx.unavailable(format!("hashing part {part_number} failed: {err}")))?;
        let checksum = base64::engine::general_purpose::STANDARD.encode(&digest);
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number)
            .content_length(part.len() as i64)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(&checksum)
            .body(ByteStream::from(part))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|err| cx.sdk(&err))?;
        let Some(etag) = out.e_tag() else {
            return Err(cx.unavailable(format!("part {part_number} was answered without an entity tag")));
        };
        Ok(SentPart {
            part: CompletedPart::builder().part_number(part_number).e_tag(etag).checksum_sha256(checksum).build(),
            digest,
        })
    }
}

/// A part S3 has taken, and its SHA-256.
struct SentPart {
    part: CompletedPart,
    digest: Vec<u8>,
}

/// Parts big enough that the file fits in [`MAX_PARTS`], whole MiB, at least [`PART_SIZE`].
fn part_size(size_bytes: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    PART_SIZE.max(size_bytes.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB)
}

/// The next `part_size` bytes of `file` (fewer at its end; none past it).
async fn read_part(file: &mut tokio::fs::File, part_size: u64, path: &Path) -> Result<Bytes, StorageError> {
    let capacity = usize::try_from(part_size).unwrap_or(usize::MAX);
    let mut buf = BytesMut::with_capacity(capacity);
    while buf.len() < capacity {
        let n = file.read_buf(&mut buf).await.map_err(StorageError::io(path))?;
        if n == 0 {
            break;
        }
    }
    Ok(buf.freeze())
}

/// One finished part task.
fn joined(
    result: Option<Result<Result<SentPart, StorageError>, tokio::task::JoinError>>,
    cx: &Context<'_>,
) -> Result<SentPart, StorageError> {
    match result {
        Some(Ok(part)) => part,
        Some(Err(err)) => Err(cx.unavailable(format!("a part upload task failed: {err}"))),
        None => Err(cx.unavailable("a part upload task went missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_16_mib_until_the_file_needs_bigger_ones() {
        assert_eq!(part_size(100 << 20), 16 << 20);
        assert_eq!(part_size(16 << 20), 16 << 20);
        // 10,000 parts of 16 MiB hold 160,000 MiB; beyond that the parts grow.
        assert_eq!(part_size(200_000 << 20), 20 << 20);
        assert!(part_size(5 << 40) * MAX_PARTS >= 5 << 40);
    }
}
