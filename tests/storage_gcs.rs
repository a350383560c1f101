//! The gcs backend against fake-gcs-server on loopback: the conformance suite (with a
//! service-account key whose token comes from a loopback stub, so download URLs are signed),
//! the fault suite through a fault proxy, anonymous access, and how failures are classified.
//! fake-gcs-server 1.54 does not check V4 signatures (a tampered URL still answers 200) nor
//! the MD5/CRC32C declared with an upload; the backend compares the stored object's hashes
//! itself.

mod storage_support;

use std::sync::Arc;
use std::time::Duration;

use storage_support::conformance::{Capabilities, conformance, http_get, write_pattern};
use storage_support::fake_gcs::{BUCKET, CLIENT_EMAIL, FakeGcs, free_port};
use storage_support::faults::{FaultProxy, fault_suite};
use tessera::storage::{ObjectStore, StorageError};

async fn open(settings: &tessera::storage::StorageSettings) -> Arc<dyn ObjectStore> {
    tessera::storage::open(settings).await.unwrap_or_else(|e| panic!("open gcs: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_a_service_account_key() {
    let server = FakeGcs::start();
    let store = open(&server.settings("conformance")).await;
    assert!(server.token_requests() >= 1, "the key's token came from the loopback stub");
    assert_eq!(store.location("a/b c.mp4"), format!("gs://{BUCKET}/a/b c.mp4"));
    let scratch = tempfile::tempdir().expect("scratch");
    // fake-gcs-server serves a signed URL without checking its signature.
    let caps = Capabilities { download_url: true, signature_checked: false };
    conformance(&*store, "conformance", scratch.path(), caps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_through_a_proxy() {
    // Each retry is logged (a warning): RUST_LOG=tessera=debug shows every request too.
    tessera::telemetry::init("warn");
    // The proxy first, forwarding to the port the server will take: the server's upload
    // session URIs then name the proxy.
    let port = free_port();
    let proxy = FaultProxy::start(port).await;
    let mut server = FakeGcs::start_on(port, Some(proxy.port()));
    let store = open(&server.settings_via(proxy.port(), "faults")).await;
    let scratch = tempfile::tempdir().expect("scratch");
    fault_suite("gcs", store, &mut server, &proxy, true, "faults", scratch.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_signs_urls_and_its_token_comes_from_loopback() {
    let server = FakeGcs::start();
    let before = server.token_requests();
    let store = open(&server.settings("signed")).await;
    assert_eq!(server.token_requests(), before + 1, "one token fetched at connect, from the stub");
    let scratch = tempfile::tempdir().expect("scratch");
    let file = scratch.path().join("a.bin");
    let facts = write_pattern(&file, 1000, 5);
    store.put_file("signed/a b.bin", &file, &facts).await.expect("put with the token");
    let url = store.download_url("signed/a b.bin", Duration::from_secs(3600)).await.expect("sign").expect("a URL");
    let prefix = format!("http://127.0.0.1:{}/{BUCKET}/signed/a%20b.bin?", server.port());
    assert!(url.url.starts_with(&prefix), "path-style on the endpoint: {}", url.url);
    for part in ["X-Goog-Algorithm=GOOG4-RSA-SHA256", "X-Goog-Expires=3600", "X-Goog-Signature="] {
        assert!(url.url.contains(part), "{part} in {}", url.url);
    }
    let credential = format!("X-Goog-Credential={}", CLIENT_EMAIL.replace('@', "%40"));
    assert!(url.url.contains(&credential), "signed as the key's client_email: {}", url.url);
    let (status, body) = http_get(&url.url).await;
    assert_eq!((status, body.len()), (200, 1000));
    // The Storage block a render job would carry reaches the same settings.
    let block: tessera::proto::Storage = serde_json::from_value(server.storage_block("signed")).expect("block");
    let from_block = tessera::storage::settings::remote_settings(&block, &Default::default()).expect("valid block");
    assert_eq!(from_block, server.settings("signed"));
    // Longer than 7 days is cut to 7 days.
    let week = store.download_url("signed/a b.bin", Duration::from_secs(30 * 86400)).await.expect("sign").expect("URL");
    assert!(week.url.contains("X-Goog-Expires=604800"), "{}", week.url);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_access_has_no_download_url() {
    let server = FakeGcs::start();
    let store = open(&server.anonymous_settings("anonymous")).await;
    assert_eq!(server.token_requests(), 0, "no token without a key");
    let scratch = tempfile::tempdir().expect("scratch");
    let file = scratch.path().join("a.bin");
    let facts = write_pattern(&file, 5000, 6);
    let receipt = store.put_file("anonymous/a.bin", &file, &facts).await.expect("put");
    assert_eq!(receipt.meta.size_bytes, 5000);
    assert!(store.download_url("anonymous/a.bin", Duration::from_secs(600)).await.expect("no error").is_none());

    // An empty file is an object too.
    let empty = scratch.path().join("empty.bin");
    let empty_facts = write_pattern(&empty, 0, 9);
    store.put_file("anonymous/empty.bin", &empty, &empty_facts).await.expect("put empty");
    assert_eq!(store.stat("anonymous/empty.bin").await.expect("stat").map(|m| m.size_bytes), Some(0));
    let got = scratch.path().join("empty.got");
    store.get_file("anonymous/empty.bin", &got, 0).await.expect("get empty");
    assert_eq!(std::fs::metadata(&got).expect("got").len(), 0);
    assert!(store.get_range("anonymous/empty.bin", 0..10).await.expect("range of empty").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_classified() {
    let server = FakeGcs::start();
    let scratch = tempfile::tempdir().expect("scratch");
    let file = scratch.path().join("a.bin");
    let facts = write_pattern(&file, 3000, 7);

    // No such bucket: refused, for good.
    let mut settings = server.anonymous_settings("x");
    if let tessera::storage::Backend::Gcs(gcs) = &mut settings.backend {
        gcs.bucket = "no-such-bucket".into();
    }
    let store = open(&settings).await;
    let err = store.put_file("x/a.bin", &file, &facts).await.expect_err("no bucket");
    assert!(matches!(err, StorageError::Refused { .. }), "missing bucket: {err}");
    assert!(err.to_string().contains("gs://no-such-bucket/x/a.bin"), "{err}");

    // Nobody listening: passing, and the message names the backend and the object.
    let mut settings = server.anonymous_settings("x");
    if let tessera::storage::Backend::Gcs(gcs) = &mut settings.backend {
        gcs.endpoint = Some(format!("http://127.0.0.1:{}", free_port()));
    }
    let store = open(&settings).await;
    let err = store.stat("x/a.bin").await.expect_err("nobody there");
    assert!(matches!(err, StorageError::Unavailable { .. }), "refused connection: {err}");
    assert!(err.to_string().contains("gcs") && err.to_string().contains(&format!("gs://{BUCKET}/x/a.bin")), "{err}");
    let err = store.put_file("x/a.bin", &file, &facts).await.expect_err("nobody there");
    assert!(matches!(err, StorageError::Unavailable { .. }), "refused connection: {err}");

    // A key whose token is refused: refused at connect, without the key in the message.
    server.refuse_tokens(true);
    let err = tessera::storage::open(&server.settings("x")).await.expect_err("token refused");
    assert!(matches!(err, StorageError::Refused { .. }), "token refused: {err}");
    assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
    server.refuse_tokens(false);

    // A secret that is not a key JSON: a settings error that does not quote it.
    let mut settings = server.settings("x");
    if let tessera::storage::Backend::Gcs(gcs) = &mut settings.backend {
        gcs.service_account_json = Some(tessera::storage::Secret::new("not json hunter2"));
    }
    let err = tessera::storage::open(&settings).await.expect_err("bad key");
    assert!(matches!(err, StorageError::Settings { field: "secret", .. }), "bad key: {err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");

    // A large upload whose file is not what the caller expects: nothing appears.
    let store = open(&server.settings("x")).await;
    let large = scratch.path().join("large.bin");
    let large_facts = write_pattern(&large, 9 << 20, 8);
    let wrong = tessera::storage::FileFacts { sha256: "0".repeat(64), ..large_facts };
    let err = store.put_file("x/large.bin", &large, &wrong).await.expect_err("wrong sha256");
    assert!(matches!(err, StorageError::Mismatch { .. }), "{err}");
    assert_eq!(store.stat("x/large.bin").await.expect("stat"), None, "no object after a cancelled session");
}
