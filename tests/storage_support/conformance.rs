//! One conformance suite every storage backend passes: put small and large (in parts), get,
//! byte ranges, stat, overwrite, delete, names with spaces and Unicode, and the download URL
//! (fetched over HTTP; where the server checks signatures, a tampered URL is refused).

use std::path::Path;
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use tessera::storage::{FileFacts, ObjectStore, StorageError};

/// What the backend under test offers.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    /// `download_url` returns a URL.
    pub download_url: bool,
    /// The server checks the URL's signature (a tampered one is refused).
    pub signature_checked: bool,
}

/// The large object's size: `STORAGE_LARGE_MB` (default 100).
pub fn large_mb() -> u64 {
    std::env::var("STORAGE_LARGE_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(100)
}

/// Writes `size_bytes` of reproducible, incompressible-looking bytes to `path`; returns facts.
pub fn write_pattern(path: &Path, size_bytes: u64, seed: u64) -> FileFacts {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create pattern file"));
    let mut hasher = Sha256::new();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size_bytes;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let word = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n]).expect("write pattern");
        hasher.update(&block[..n]);
        left -= n as u64;
    }
    file.flush().expect("flush pattern");
    FileFacts { size_bytes, sha256: hex(&hasher.finalize()) }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_file(path: &Path) -> String {
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path).expect("open");
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut file, &mut buf).expect("read");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex(&hasher.finalize())
}

/// GETs `url` with tessera's own HTTP client: (status, body).
pub async fn http_get(url: &str) -> (u16, Vec<u8>) {
    use http_body_util::BodyExt as _;
    let client = tessera::storage::http::client().expect("http client");
    let request = http::Request::get(url).body(http_body_util::Full::new(bytes::Bytes::new())).expect("request");
    let response = tokio::time::timeout(Duration::from_secs(120), client.request(request))
        .await
        .expect("GET in time")
        .expect("GET");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.expect("body").to_bytes().to_vec();
    (status, body)
}

/// `url` with one character of its signature changed.
fn tampered(url: &str) -> String {
    for marker in ["X-Amz-Signature=", "sig=", "X-Goog-Signature="] {
        if let Some(at) = url.find(marker) {
            let i = at + marker.len();
            let mut chars: Vec<char> = url.chars().collect();
            // Byte index == char index: the query is ASCII.
            chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
            return chars.into_iter().collect();
        }
    }
    panic!("no signature parameter in the URL");
}

/// Runs the whole suite under `prefix` (every key it uses starts with it). `scratch` is a
/// directory for local files.
pub async fn conformance(store: &dyn ObjectStore, prefix: &str, scratch: &Path, caps: Capabilities) {
    let key = |name: &str| format!("{prefix}/{name}");

    // Missing objects.
    assert_eq!(store.stat(&key("missing.bin")).await.expect("stat missing"), None, "stat of a missing object");
    let err = store.get_file(&key("missing.bin"), &scratch.join("missing"), 1 << 20).await.expect_err("get missing");
    assert!(matches!(err, StorageError::NotFound { .. }), "get of a missing object: {err}");

    // Small: put, stat, get, range.
    let small = scratch.join("small.bin");
    let small_facts = write_pattern(&small, 64 * 1024 + 3, 1);
    let receipt = store.put_file(&key("small.bin"), &small, &small_facts).await.expect("put small");
    assert_eq!(receipt.meta.size_bytes, small_facts.size_bytes);
    assert!(!receipt.verified.is_empty());
    let meta = store.stat(&key("small.bin")).await.expect("stat").expect("exists");
    assert_eq!(meta.size_bytes, small_facts.size_bytes);
    let got = scratch.join("small.got");
    store.get_file(&key("small.bin"), &got, 1 << 30).await.expect("get small");
    assert_eq!(sha256_file(&got), small_facts.sha256, "small object read back");
    let original = std::fs::read(&small).expect("read");
    let range = store.get_range(&key("small.bin"), 1000..5000).await.expect("range");
    assert_eq!(&range[..], &original[1000..5000], "byte range");
    let tail = store.get_range(&key("small.bin"), 65_000..70_000).await.expect("range past the end");
    assert_eq!(&tail[..], &original[65_000..], "a range past the end is clipped");
    let err = store.get_file(&key("small.bin"), &scratch.join("limited"), 1000).await.expect_err("over the limit");
    assert!(matches!(err, StorageError::TooLarge { .. }), "size limit: {err}");

    // Overwrite: the new content replaces the old, and the entity tag changes.
    let other = scratch.join("other.bin");
    let other_facts = write_pattern(&other, 10_000, 2);
    store.put_file(&key("small.bin"), &other, &other_facts).await.expect("overwrite");
    let meta2 = store.stat(&key("small.bin")).await.expect("stat").expect("exists");
    assert_eq!(meta2.size_bytes, 10_000);
    assert_ne!(meta2.etag, meta.etag, "the entity tag changes with the content");
    store.get_file(&key("small.bin"), &got, 1 << 30).await.expect("get overwritten");
    assert_eq!(sha256_file(&got), other_facts.sha256, "overwritten object");

    // A wrong expectation is caught and leaves nothing under the name.
    let wrong = FileFacts { size_bytes: small_facts.size_bytes, sha256: "0".repeat(64) };
    let err = store.put_file(&key("wrong.bin"), &small, &wrong).await.expect_err("integrity");
    assert!(matches!(err, StorageError::Mismatch { .. }), "integrity check: {err}");
    assert_eq!(store.stat(&key("wrong.bin")).await.expect("stat"), None, "a failed upload leaves no object");

    // Names with spaces and Unicode.
    let odd = key("with space/ünïcødé 名前 (1).mp4");
    store.put_file(&odd, &small, &small_facts).await.expect("put odd name");
    assert_eq!(store.stat(&odd).await.expect("stat odd").map(|m| m.size_bytes), Some(small_facts.size_bytes));
    store.get_file(&odd, &got, 1 << 30).await.expect("get odd name");
    assert_eq!(sha256_file(&got), small_facts.sha256);
    let location = store.location(&odd);
    assert!(!location.is_empty());

    // Download URLs.
    if caps.download_url {
        let url = store.download_url(&odd, Duration::from_secs(600)).await.expect("url").expect("a URL");
        if let Some(expires) = url.expires_at_unix_ms {
            let now = tessera::storage::object::expiry_unix_ms(Duration::ZERO);
            assert!((expires - now - 600_000).abs() < 60_000, "expiry about 10 min from now: {expires} vs {now}");
        }
        let (status, body) = http_get(&url.url).await;
        assert_eq!(status, 200, "download URL answered {status}: {}", String::from_utf8_lossy(&body));
        assert_eq!(hex(&Sha256::digest(&body)), small_facts.sha256, "download URL content");
        if caps.signature_checked {
            let (status, _) = http_get(&tampered(&url.url)).await;
            assert!((400..500).contains(&status), "a tampered URL is refused, got {status}");
        }
    } else {
        assert!(store.download_url(&odd, Duration::from_secs(600)).await.expect("url").is_none());
    }

    // Large, in parts.
    let large = scratch.join("large.bin");
    let large_facts = write_pattern(&large, large_mb() << 20, 3);
    let started = std::time::Instant::now();
    store.put_file(&key("large.bin"), &large, &large_facts).await.expect("put large");
    eprintln!("{}: put {} MiB in {:.2} s", store.kind(), large_mb(), started.elapsed().as_secs_f64());
    let meta = store.stat(&key("large.bin")).await.expect("stat large").expect("exists");
    assert_eq!(meta.size_bytes, large_facts.size_bytes);
    let mid = (large_facts.size_bytes / 2) - 100;
    let range = store.get_range(&key("large.bin"), mid..mid + 200_000).await.expect("range of large");
    let mut expected = vec![0u8; 200_000];
    {
        use std::io::{Read as _, Seek as _};
        let mut file = std::fs::File::open(&large).expect("open");
        file.seek(std::io::SeekFrom::Start(mid)).expect("seek");
        file.read_exact(&mut expected).expect("read");
    }
    assert!(range[..] == expected[..], "range in the middle of the large object");
    let got_large = scratch.join("large.got");
    store.get_file(&key("large.bin"), &got_large, u64::MAX).await.expect("get large");
    assert_eq!(sha256_file(&got_large), large_facts.sha256, "large object read back");
    let _ = std::fs::remove_file(&got_large);

    // Delete, twice.
    for name in ["small.bin", "large.bin"] {
        store.delete(&key(name)).await.expect("delete");
        assert_eq!(store.stat(&key(name)).await.expect("stat deleted"), None, "{name} deleted");
    }
    store.delete(&odd).await.expect("delete odd");
    store.delete(&odd).await.expect("deleting a missing object is fine");
}
