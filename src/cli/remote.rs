//! The CLI's storage: a remote source (`--input-s3 s3://bucket/key` or a presigned `https://`
//! URL, as Stream's CLI takes it; also `gs://` and `sftp://`) read through the download cache
//! (`--cache-dir`, revalidated by ETag), with credentials from each cloud's standard chain
//! (for S3: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
//! profiles); and a job's outputs published to its storage block.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tessera::render::CancelFlag;
use tessera::render::RenderSummary;
use tessera::render::manifest::{MANIFEST_FILE_NAME, file_facts};
use tessera::storage::cache::{Cached, SourceCache};
use tessera::storage::fetch::shown_url;
use tessera::storage::publish::Publisher;
use tessera::storage::retry::RetryPolicy;
use tessera::storage::source::{SourceRef, source_ref};
use tessera::storage::{FileFacts, NodeStorage, StorageSettings};

/// The cache is unbounded from the CLI's side; the user clears it.
const CLI_CACHE_MAX_BYTES: u64 = u64::MAX;

/// `--cache-dir`, else `$XDG_CACHE_HOME/tessera`, else `~/.cache/tessera`, else a directory
/// under the system's temporary directory.
pub fn cache_dir(given: Option<&Path>) -> PathBuf {
    if let Some(dir) = given {
        return dir.to_path_buf();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")));
    base.unwrap_or_else(std::env::temp_dir).join("tessera")
}

/// What the CLI adds to storage blocks: the user's OpenSSH known-hosts file.
pub fn node_storage() -> NodeStorage {
    let known_hosts = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".ssh/known_hosts"));
    NodeStorage { known_hosts: known_hosts.filter(|p| p.exists()), ..NodeStorage::default() }
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the I/O runtime")
}

/// Brings the remote source `url` into `work_dir` through the cache; returns its path.
pub fn fetch_source(
    url: &str,
    blocks: &[&tessera::proto::Storage],
    cache_dir: &Path,
    work_dir: &Path,
    cancel: &CancelFlag,
) -> anyhow::Result<PathBuf> {
    let shown = shown_url(url);
    let source = source_ref(url, blocks, &node_storage())?.unwrap_or_else(|| SourceRef::Http(url.to_owned()));
    let dest = work_dir.join("source.archive");
    let cache = SourceCache::new(cache_dir.to_path_buf(), CLI_CACHE_MAX_BYTES);
    let how = runtime()?
        .block_on(cache.fetch(&source, &dest, u64::MAX, &RetryPolicy::default(), cancel))
        .map_err(|err| anyhow::anyhow!("reading {shown}: {err}"))?;
    let size = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
    match how {
        Cached::Hit => eprintln!("{shown}: {size} bytes, from the cache in {}", cache_dir.display()),
        Cached::Downloaded => eprintln!("{shown}: downloaded {size} bytes"),
    }
    Ok(dest)
}

/// Uploads the rendered files of `summary` and its manifest to `settings` (each verified by
/// the backend, retried on transient failures) and prints where each one went.
pub fn publish_outputs(settings: StorageSettings, summary: &RenderSummary) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let publisher = Publisher::open(settings, RetryPolicy::default()).await?;
        let manifest = summary.output_dir.join(MANIFEST_FILE_NAME);
        let (size_bytes, sha256) = file_facts(&manifest).with_context(|| manifest.display().to_string())?;
        let files = summary
            .outputs
            .iter()
            .map(|e| (e.file.as_str(), FileFacts { size_bytes: e.size_bytes, sha256: e.sha256.clone() }))
            .chain(std::iter::once((MANIFEST_FILE_NAME, FileFacts { size_bytes, sha256 })));
        for (name, facts) in files {
            let published = publisher.publish(&summary.output_dir.join(name), name, &facts).await?;
            let url = published.url.map(|u| format!(" ({})", shown_url(&u.url))).unwrap_or_default();
            println!("  uploaded {}{url}, {}", published.location, published.verified);
        }
        anyhow::Ok(())
    })
}
