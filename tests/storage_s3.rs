//! Storage tests for the s3 backend (and digitalocean, the same code under another name)
//! against moto on loopback: the shared conformance and fault suites, stale multipart
//! uploads, what moto checks (credentials, checksums, presigned signatures) and what a
//! missing bucket gives.
//!
//! What moto 5.2.5 does not check, found here: credentials (any key id and secret are
//! accepted), presigned URL signatures (a tampered one still answers 200; an unsigned GET is
//! refused), and `ChecksumSHA256` (a wrong one is accepted and stored as sent). It does
//! compute the composite SHA-256 of a multipart upload from the bytes it received, which
//! the backend reads back and compares.

mod storage_support;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata as _;
use aws_sdk_s3::primitives::ByteStream;
use storage_support::conformance::{self, Capabilities, http_get, sha256_file, write_pattern};
use storage_support::faults::{FaultProxy, fault_suite};
use storage_support::moto::{BUCKET, Moto};
use tessera::storage::{Backend, ObjectStore, Secret, StorageError, StorageSettings};

/// moto does not check presigned signatures (see the module comment).
const MOTO_CHECKS_SIGNATURES: bool = false;

async fn open(settings: &StorageSettings) -> Arc<dyn ObjectStore> {
    tessera::storage::open(settings).await.expect("open the s3 store")
}

fn with_s3(
    mut settings: StorageSettings,
    change: impl FnOnce(&mut tessera::storage::settings::S3Settings),
) -> StorageSettings {
    let Backend::S3(s3) = &mut settings.backend else { panic!("s3 settings") };
    change(s3);
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_conformance() {
    let moto = Moto::start();
    let store = open(&moto.settings("conformance")).await;
    assert_eq!(store.kind(), "s3");
    let scratch = tempfile::tempdir().expect("scratch");
    let caps = Capabilities { download_url: true, signature_checked: MOTO_CHECKS_SIGNATURES };
    conformance::conformance(&*store, "conformance", scratch.path(), caps).await;
}

/// DigitalOcean Spaces is S3 under another name and endpoint: a subset of the suite through
/// the same moto, single and multipart puts, gets, a range and a presigned URL included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digitalocean_through_its_endpoint() {
    let moto = Moto::start();
    let store = open(&moto.settings_as("digitalocean", moto.port(), "spaces")).await;
    assert_eq!(store.kind(), "digitalocean");
    let scratch = tempfile::tempdir().expect("scratch");
    let got = scratch.path().join("got");
    for (name, size) in [("small.mp4", 300_000_u64), ("parts.mp4", (20 << 20) + 5)] {
        let key = format!("spaces/{name}");
        let file = scratch.path().join(name);
        let facts = write_pattern(&file, size, size);
        let receipt = store.put_file(&key, &file, &facts).await.expect("put");
        assert_eq!(receipt.meta.size_bytes, size);
        assert_eq!(store.stat(&key).await.expect("stat").map(|m| m.size_bytes), Some(size));
        store.get_file(&key, &got, u64::MAX).await.expect("get");
        assert_eq!(sha256_file(&got), facts.sha256, "{name} read back");
        let range = store.get_range(&key, 100..228).await.expect("range");
        assert_eq!(&range[..], &std::fs::read(&file).expect("read")[100..228]);
        let url = store.download_url(&key, Duration::from_secs(300)).await.expect("sign").expect("a URL");
        assert!(url.url.starts_with(&format!("{}/{BUCKET}/spaces/", moto.endpoint())), "path style: {}", url.url);
        let (status, body) = http_get(&url.url).await;
        assert_eq!(status, 200, "presigned GET");
        assert_eq!(body.len() as u64, size);
        store.delete(&key).await.expect("delete");
        assert_eq!(store.stat(&key).await.expect("stat"), None);
    }
    let err = store.get_file("spaces/missing.mp4", &got, 10).await.expect_err("missing");
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("digitalocean"), "the error names the backend: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_faults() {
    let mut moto = Moto::start();
    let proxy = FaultProxy::start(moto.port()).await;
    let store = open(&moto.settings_via(proxy.port(), "faults")).await;
    let scratch = tempfile::tempdir().expect("scratch");
    fault_suite("s3", store, &mut moto, &proxy, true, "faults", scratch.path()).await;
}

/// A node killed mid-upload leaves a multipart upload behind; the next put of that key
/// aborts it (and leaves another key's alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_multipart_uploads_are_aborted() {
    let moto = Moto::start();
    let client = moto.client();
    let key = "stale/big.mp4";
    let neighbour = "stale/big.mp4.other";
    for k in [key, key, neighbour] {
        let created = client.create_multipart_upload().bucket(BUCKET).key(k).send().await.expect("create upload");
        let upload_id = created.upload_id().expect("upload id");
        client
            .upload_part()
            .bucket(BUCKET)
            .key(k)
            .upload_id(upload_id)
            .part_number(1)
            .body(ByteStream::from(vec![7_u8; 1 << 20]))
            .send()
            .await
            .expect("upload a part");
    }
    let uploads = |client: aws_sdk_s3::Client| async move {
        let listing = client.list_multipart_uploads().bucket(BUCKET).send().await.expect("list uploads");
        let mut keys: Vec<String> = listing.uploads().iter().filter_map(|u| u.key().map(str::to_owned)).collect();
        keys.sort();
        keys
    };
    assert_eq!(uploads(client.clone()).await, [key, key, neighbour]);

    let store = open(&moto.settings("stale")).await;
    let scratch = tempfile::tempdir().expect("scratch");
    let file = scratch.path().join("big.mp4");
    let facts = write_pattern(&file, (16 << 20) + 1, 5);
    store.put_file(key, &file, &facts).await.expect("put");
    assert_eq!(uploads(client.clone()).await, [neighbour], "the stale uploads of the key are gone, the other stays");
    let got = scratch.path().join("got");
    store.get_file(key, &got, u64::MAX).await.expect("get");
    assert_eq!(sha256_file(&got), facts.sha256);
}

/// What each put verifies against moto: a single put's SHA-256 and a multipart upload's
/// composite of its parts' are read back by HEAD (moto computes the composite itself from
/// the bytes it received). And what moto does with a wrong `ChecksumSHA256`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksums_against_moto() {
    let moto = Moto::start();
    let store = open(&moto.settings("sums")).await;
    let scratch = tempfile::tempdir().expect("scratch");
    for (name, size, read_back) in [
        ("one.bin", 1_000_u64, "ChecksumSHA256 by S3 and read back"),
        ("parts.bin", (33 << 20) + 1, "composite read back"),
    ] {
        let file = scratch.path().join(name);
        let facts = write_pattern(&file, size, 9);
        let receipt = store.put_file(&format!("sums/{name}"), &file, &facts).await.expect("put");
        eprintln!("s3: put {name} ({size} bytes) verified: {}", receipt.verified);
        assert!(receipt.verified.contains(read_back), "{name}: {}", receipt.verified);
    }

    // A wrong ChecksumSHA256 sent with the SDK: moto 5.2.5 takes it (and stores it as sent).
    let wrong = moto
        .client()
        .put_object()
        .bucket(BUCKET)
        .key("sums/wrong.bin")
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .checksum_sha256("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=") // SHA-256 of nothing
        .body(ByteStream::from_static(b"not nothing"))
        .send()
        .await;
    match wrong {
        Ok(_) => eprintln!("s3: moto accepted a wrong ChecksumSHA256: it does not verify it"),
        Err(err) => {
            let code = err.code().unwrap_or_default().to_owned();
            eprintln!("s3: moto refused a wrong ChecksumSHA256: {code}");
            assert!(matches!(code.as_str(), "BadDigest" | "InvalidDigest" | "InvalidRequest"), "{code}");
        }
    }
    // Reading that object back, the SDK checks the body against the stored checksum.
    let err = store.get_file("sums/wrong.bin", &scratch.path().join("wrong"), 1 << 20).await;
    match err {
        Err(StorageError::Mismatch { .. }) => eprintln!("s3: the download of it failed its checksum: Mismatch"),
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("a body that does not match its stored checksum is a Mismatch: {other:?}"),
    }
    assert!(!scratch.path().join("wrong").exists(), "a failed download leaves no file");
}

/// moto accepts any credentials (it does not check them unless told to), so a wrong key is
/// not refused there; a missing bucket is, and the error says which backend and bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals() {
    let moto = Moto::start();
    let scratch = tempfile::tempdir().expect("scratch");
    let small = scratch.path().join("small.bin");
    let small_facts = write_pattern(&small, 10_000, 1);
    let large = scratch.path().join("large.bin");
    let large_facts = write_pattern(&large, 16 << 20, 2);

    let wrong_key = with_s3(moto.settings("refusals"), |s3| {
        s3.credentials = Some(("AKIDNOBODY".into(), Secret::new("not-the-secret")));
    });
    match open(&wrong_key).await.put_file("refusals/a.bin", &small, &small_facts).await {
        Ok(_) => eprintln!("s3: moto accepted wrong credentials: it does not check them"),
        Err(err) => {
            assert!(matches!(err, StorageError::Refused { .. }), "wrong credentials: {err}");
            assert!(!err.to_string().contains("not-the-secret"), "{err}");
        }
    }

    let missing = with_s3(moto.settings("refusals"), |s3| s3.bucket = "no-such-bucket".into());
    let store = open(&missing).await;
    let refused = |what: &str, err: StorageError| {
        let text = err.to_string();
        assert!(matches!(err, StorageError::Refused { .. }), "{what} in a missing bucket is refused: {text}");
        assert!(!err.is_transient(), "{what}: not retried");
        assert!(text.contains("s3") && text.contains("no-such-bucket"), "{what}: names s3 and the bucket: {text}");
        eprintln!("s3: {what} in a missing bucket: {text}");
    };
    refused("put", store.put_file("refusals/a.bin", &small, &small_facts).await.expect_err("put"));
    refused("multipart put", store.put_file("refusals/b.bin", &large, &large_facts).await.expect_err("put large"));
    refused("get", store.get_file("refusals/a.bin", &scratch.path().join("got"), 100).await.expect_err("get"));
    refused("range", store.get_range("refusals/a.bin", 0..10).await.expect_err("range"));
    refused("delete", store.delete("refusals/a.bin").await.expect_err("delete"));
}

/// Nothing listens: unavailable (retried), and the error names the backend and the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let moto_less = StorageSettings {
        backend: Backend::S3(tessera::storage::settings::S3Settings {
            kind: "s3",
            bucket: BUCKET.into(),
            region: String::new(),
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            credentials: Some(("test".into(), Secret::new("test"))),
        }),
        path_prefix: String::new(),
        url_expiry: Duration::from_secs(60),
    };
    let store = open(&moto_less).await;
    let err = store.stat("a.bin").await.expect_err("nothing listens");
    assert!(matches!(err, StorageError::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains(&format!("s3://{BUCKET}/a.bin")), "{err}");
}

/// A large file that is not what the caller measured: every part goes up, the whole-file
/// SHA-256 differs, the upload is aborted: no object, no upload left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_mismatch_leaves_nothing() {
    let moto = Moto::start();
    let store = open(&moto.settings("mismatch")).await;
    let scratch = tempfile::tempdir().expect("scratch");
    let file = scratch.path().join("big.bin");
    let facts = write_pattern(&file, (16 << 20) + 3, 8);
    let wrong = tessera::storage::FileFacts { sha256: "0".repeat(64), ..facts };
    let err = store.put_file("mismatch/big.bin", &file, &wrong).await.expect_err("integrity");
    assert!(matches!(err, StorageError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("s3://tessera-test/mismatch/big.bin"), "{err}");
    assert_eq!(store.stat("mismatch/big.bin").await.expect("stat"), None, "no object");
    let listing = moto.client().list_multipart_uploads().bucket(BUCKET).send().await.expect("list uploads");
    assert!(listing.uploads().is_empty(), "the upload was aborted: {:?}", listing.uploads());
}
