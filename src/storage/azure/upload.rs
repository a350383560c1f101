//! Putting a file: below [`BLOCK_BYTES`] one Put Blob with its `Content-MD5` (Azure checks
//! it); else the file in blocks (Put Block with each block's `Content-MD5`, a few in flight)
//! committed by one Put Block List. The file is read once, on a blocking thread, its SHA-256
//! and MD5 computed on the way; a SHA-256 other than the expected one commits nothing.
//! Uncommitted blocks never show under the name: a failed upload leaves the previous blob.
//! At the end Get Blob Properties must report the size, MD5 and SHA-256 sent.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, StatusCode};
use md5::Digest as _;
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{AzureStore, BACKEND, header, meta_of};
use crate::storage::object::{FileFacts, ObjectStore as _, PutReceipt, StorageError};

/// Files below this go in one Put Blob; larger ones in blocks of this size (or larger, to
/// stay within Azure's 50,000 blocks a blob).
pub const BLOCK_BYTES: u64 = 8 << 20;
const MAX_BLOCKS: u64 = 50_000;
/// Blocks being sent at once.
const IN_FLIGHT: usize = 4;
/// Blocks read ahead of the ones being sent.
const READ_AHEAD: usize = 2;
/// The blob's metadata entry holding the SHA-256 (`x-ms-meta-sha256`).
const SHA256_META: &str = "x-ms-meta-sha256";

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One block as read.
struct Block {
    index: usize,
    bytes: Bytes,
    /// Base64 MD5 of `bytes`.
    md5: String,
}

/// The whole file as read.
struct Totals {
    size_bytes: u64,
    md5: String,
    sha256: String,
}

pub async fn put_file(
    store: &AzureStore,
    key: &str,
    path: &Path,
    expected: &FileFacts,
) -> Result<PutReceipt, StorageError> {
    let location = store.location(key);
    let size_bytes = tokio::fs::metadata(path).await.map_err(StorageError::io(path))?.len();
    if size_bytes != expected.size_bytes {
        return Err(StorageError::Mismatch {
            backend: BACKEND,
            location,
            reason: format!("the file has {size_bytes} bytes; expected {}", expected.size_bytes),
        });
    }
    let (md5, how) = if size_bytes < BLOCK_BYTES {
        (put_blob(store, key, path, expected).await?, "Content-MD5 by Azure")
    } else {
        let block_bytes = BLOCK_BYTES.max(size_bytes.div_ceil(MAX_BLOCKS));
        (put_blocks(store, key, path, expected, block_bytes).await?, "per-block Content-MD5 by Azure")
    };
    // What the service now holds under the name.
    let headers = store.properties("put", key).await?.ok_or_else(|| StorageError::Mismatch {
        backend: BACKEND,
        location: location.clone(),
        reason: "the blob is not there after its upload".into(),
    })?;
    let meta = meta_of(&headers);
    let stored_md5 = header(&headers, "content-md5").unwrap_or("");
    let stored_sha256 = header(&headers, SHA256_META).unwrap_or("");
    if meta.size_bytes != expected.size_bytes || stored_md5 != md5 || stored_sha256 != expected.sha256 {
        return Err(StorageError::Mismatch {
            backend: BACKEND,
            location,
            reason: format!(
                "the service holds {} bytes, MD5 {stored_md5:?}, sha256 {stored_sha256:?}; sent {} bytes, MD5 {md5}, sha256 {}",
                meta.size_bytes, expected.size_bytes, expected.sha256
            ),
        });
    }
    Ok(PutReceipt { meta, verified: format!("{how}; size, blob MD5 and SHA-256 by properties") })
}

fn sha256_mismatch(location: String, got: &str, expected: &FileFacts) -> StorageError {
    StorageError::Mismatch {
        backend: BACKEND,
        location,
        reason: format!("the file read has sha256 {got}; expected {}", expected.sha256),
    }
}

/// Put Blob of a small file (read whole); returns its MD5 (base64).
async fn put_blob(store: &AzureStore, key: &str, path: &Path, expected: &FileFacts) -> Result<String, StorageError> {
    let file = path.to_path_buf();
    let (bytes, md5, sha256) = blocking(path, move || {
        let bytes = std::fs::read(&file)?;
        let md5 = base64(&md5::Md5::digest(&bytes));
        let sha256 = hex(&Sha256::digest(&bytes));
        Ok((Bytes::from(bytes), md5, sha256))
    })
    .await?;
    if sha256 != expected.sha256 {
        return Err(sha256_mismatch(store.location(key), &sha256, expected));
    }
    let call = store
        .call("put", Method::PUT, key)
        .header("x-ms-blob-type", "BlockBlob")
        .header("content-md5", md5.clone())
        .header(SHA256_META, expected.sha256.clone())
        .body(bytes);
    store.service.send(call, &[StatusCode::CREATED]).await?;
    Ok(md5)
}

/// The file in blocks, then the block list; returns the whole file's MD5 (base64).
async fn put_blocks(
    store: &AzureStore,
    key: &str,
    path: &Path,
    expected: &FileFacts,
    block_bytes: u64,
) -> Result<String, StorageError> {
    // This attempt's own block ids: blocks a failed attempt left (or still sends) are never
    // part of this one's list. All ids of a blob must have one length.
    let upload_id = uuid::Uuid::new_v4().simple().to_string();
    let block_id = |index: usize| base64(format!("tessera-{upload_id}-{index:06}").as_bytes());
    let (sender, mut receiver) = mpsc::channel::<Block>(READ_AHEAD);
    let file = path.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || read_blocks(&file, block_bytes, &sender));
    let mut in_flight: JoinSet<Result<(), StorageError>> = JoinSet::new();
    let mut ids = Vec::new();
    loop {
        while in_flight.len() >= IN_FLIGHT {
            joined(store, key, in_flight.join_next().await)?;
        }
        let Some(block) = receiver.recv().await else { break };
        let id = block_id(block.index);
        ids.push(id.clone());
        let (store, key) = (store.clone(), key.to_owned());
        in_flight.spawn(async move { put_block(&store, &key, id, block).await });
    }
    while let Some(result) = in_flight.join_next().await {
        joined(store, key, Some(result))?;
    }
    let totals = match reader.await {
        Ok(Ok(totals)) => totals,
        Ok(Err(source)) => return Err(StorageError::Io { path: path.to_path_buf(), source }),
        Err(err) => return Err(task_failed(store, key, &err.to_string())),
    };
    if totals.size_bytes != expected.size_bytes {
        return Err(StorageError::Mismatch {
            backend: BACKEND,
            location: store.location(key),
            reason: format!("read {} bytes; expected {}", totals.size_bytes, expected.size_bytes),
        });
    }
    if totals.sha256 != expected.sha256 {
        return Err(sha256_mismatch(store.location(key), &totals.sha256, expected));
    }
    put_block_list(store, key, &ids, &totals.md5, &expected.sha256).await?;
    Ok(totals.md5)
}

fn joined(
    store: &AzureStore,
    key: &str,
    result: Option<Result<Result<(), StorageError>, tokio::task::JoinError>>,
) -> Result<(), StorageError> {
    match result {
        None | Some(Ok(Ok(()))) => Ok(()),
        Some(Ok(Err(err))) => Err(err),
        Some(Err(err)) => Err(task_failed(store, key, &err.to_string())),
    }
}

fn task_failed(store: &AzureStore, key: &str, reason: &str) -> StorageError {
    StorageError::Unavailable {
        backend: BACKEND,
        op: "put",
        location: store.location(key),
        reason: format!("an upload task failed: {reason}"),
    }
}

async fn put_block(store: &AzureStore, key: &str, id: String, block: Block) -> Result<(), StorageError> {
    let call = store
        .call("put block", Method::PUT, key)
        .query("comp", "block")
        .query("blockid", id)
        .header("content-md5", block.md5)
        .body(block.bytes);
    store.service.send(call, &[StatusCode::CREATED]).await?;
    Ok(())
}

async fn put_block_list(
    store: &AzureStore,
    key: &str,
    ids: &[String],
    md5: &str,
    sha256: &str,
) -> Result<(), StorageError> {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for id in ids {
        // Base64: nothing to escape.
        xml.push_str("<Latest>");
        xml.push_str(id);
        xml.push_str("</Latest>");
    }
    xml.push_str("</BlockList>");
    let body = Bytes::from(xml);
    let call = store
        .call("put block list", Method::PUT, key)
        .query("comp", "blocklist")
        .header("content-type", "application/xml")
        .header("content-md5", base64(&md5::Md5::digest(&body)))
        .header("x-ms-blob-content-md5", md5.to_owned())
        .header(SHA256_META, sha256.to_owned())
        .body(body);
    store.service.send(call, &[StatusCode::CREATED]).await?;
    Ok(())
}

/// Reads `path` in blocks into `sender`; stops early when nobody listens any more.
fn read_blocks(path: &Path, block_bytes: u64, sender: &mpsc::Sender<Block>) -> std::io::Result<Totals> {
    let mut file = std::fs::File::open(path)?;
    let mut whole_md5 = md5::Md5::new();
    let mut sha256 = Sha256::new();
    let mut size_bytes = 0u64;
    for index in 0.. {
        let mut buffer = Vec::with_capacity(usize::try_from(block_bytes).unwrap_or(usize::MAX));
        (&mut file).take(block_bytes).read_to_end(&mut buffer)?;
        if buffer.is_empty() {
            break;
        }
        size_bytes += buffer.len() as u64;
        whole_md5.update(&buffer);
        sha256.update(&buffer);
        let md5 = base64(&md5::Md5::digest(&buffer));
        if sender.blocking_send(Block { index, bytes: Bytes::from(buffer), md5 }).is_err() {
            return Err(std::io::Error::other("the upload stopped"));
        }
    }
    Ok(Totals { size_bytes, md5: base64(&whole_md5.finalize()), sha256: hex(&sha256.finalize()) })
}

/// Runs file work off the async threads.
async fn blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    let path: PathBuf = path.to_path_buf();
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|source| StorageError::Io { path, source }),
        Err(err) => Err(StorageError::Io { path, source: std::io::Error::other(format!("file task failed: {err}")) }),
    }
}
