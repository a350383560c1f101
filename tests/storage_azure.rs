//! Storage tests for the azure backend against Azurite on loopback: the conformance suite
//! (Azurite checks SAS signatures, so a tampered download URL must be refused), the fault
//! suite through a fault proxy, and refusals (a wrong account key, a missing container) that
//! name the backend and never show the key.

mod storage_support;

use std::sync::Arc;

use storage_support::azurite::{ACCOUNT_KEY, Azurite};
use storage_support::conformance::{Capabilities, conformance, write_pattern};
use storage_support::faults::{FaultProxy, fault_suite};
use tessera::storage::azure::AzureStore;
use tessera::storage::{Backend, FileFacts, ObjectStore, Secret, StorageError, StorageSettings};

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("storage-azure-").tempdir().expect("scratch directory")
}

/// `settings` with another account key or container.
fn altered(mut settings: StorageSettings, key: Option<&str>, container: Option<&str>) -> StorageSettings {
    let Backend::Azure(azure) = &mut settings.backend else { panic!("azure settings") };
    if let Some(key) = key {
        azure.account_key = Secret::new(key);
    }
    if let Some(container) = container {
        azure.container = container.to_owned();
    }
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_conformance() {
    let azurite = Azurite::start();
    let store = tessera::storage::open(&azurite.settings("conformance")).await.expect("open azure");
    let scratch = scratch();
    conformance(&*store, "conformance", scratch.path(), Capabilities { download_url: true, signature_checked: true })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_faults() {
    let mut azurite = Azurite::start();
    let proxy = FaultProxy::start(azurite.port()).await;
    let store: Arc<dyn ObjectStore> =
        tessera::storage::open(&azurite.settings_via(proxy.port(), "faults")).await.expect("open azure");
    let scratch = scratch();
    fault_suite("azure", store, &mut azurite, &proxy, true, "faults", scratch.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_refusals_name_the_backend_and_hide_the_key() {
    let azurite = Azurite::start();
    let scratch = scratch();
    let file = scratch.path().join("refused.bin");
    let facts = write_pattern(&file, 10_000, 7);
    let check = |err: &StorageError, what: &str| {
        let text = err.to_string();
        assert!(matches!(err, StorageError::Refused { .. }), "{what}: refused, got {text}");
        assert!(!err.is_transient(), "{what}: not retried");
        assert!(text.contains("azure") && text.contains("refused.bin"), "{what}: names backend and object: {text}");
        assert!(!text.contains(ACCOUNT_KEY), "{what}: the key never shows: {text}");
    };

    // A wrong (well-formed) account key.
    let wrong_key = "d3JvbmcgYWNjb3VudCBrZXkgb2YgYW55IGxlbmd0aCB3aWxsIGRvIGZvciB0aGlzIHRlc3Q=";
    let store = AzureStore::connect(&azure(altered(azurite.settings("refused"), Some(wrong_key), None)))
        .await
        .expect("connect");
    let err = store.put_file("refused/refused.bin", &file, &facts).await.expect_err("wrong key");
    check(&err, "put with a wrong key");
    // Azure says AuthenticationFailed; Azurite AuthorizationFailure.
    assert!(err.to_string().contains("HTTP 403"), "{err}");
    assert!(!err.to_string().contains(wrong_key));
    let err = store.stat("refused/refused.bin").await.expect_err("stat with a wrong key");
    check(&err, "stat with a wrong key");

    // A container that does not exist.
    let store = AzureStore::connect(&azure(altered(azurite.settings("refused"), None, Some("no-such-container"))))
        .await
        .expect("connect");
    let err = store.put_file("refused/refused.bin", &file, &facts).await.expect_err("missing container");
    check(&err, "put into a missing container");
    assert!(err.to_string().contains("ContainerNotFound"), "{err}");
    let err = store.get_file("refused/refused.bin", &scratch.path().join("got"), 1 << 20).await.expect_err("get");
    check(&err, "get from a missing container");
    let err = store.stat("refused/refused.bin").await.expect_err("stat in a missing container");
    check(&err, "stat in a missing container");

    // A key that is not base64 is a settings error, before anything is sent.
    let err = AzureStore::connect(&azure(altered(azurite.settings("refused"), Some("not base64!"), None)))
        .await
        .expect_err("bad key");
    assert!(matches!(err, StorageError::Settings { field: "secret", .. }), "{err}");
    assert!(!err.to_string().contains("not base64!"), "{err}");
}

/// The harness's job-level `Storage` block checks into the same settings as `settings()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_storage_block_matches_settings() {
    let azurite = Azurite::start();
    let block: tessera::proto::Storage =
        serde_json::from_value(azurite.storage_block("calls/2026")).expect("a Storage block");
    let settings = tessera::storage::settings::remote_settings(&block, &Default::default()).expect("valid block");
    assert_eq!(settings, azurite.settings("calls/2026"));
    let store = tessera::storage::open(&settings).await.expect("open");
    assert_eq!(store.stat("calls/2026/none.mp4").await.expect("stat"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_download_url_is_a_read_only_sas() {
    let azurite = Azurite::start();
    let store = AzureStore::connect(&azure(azurite.settings("sas"))).await.expect("connect");
    let scratch = scratch();
    let file = scratch.path().join("sas.bin");
    let facts = write_pattern(&file, 1000, 8);
    store.put_file("sas/a b.bin", &file, &facts).await.expect("put");
    let url = store.download_url("sas/a b.bin", std::time::Duration::from_secs(60)).await.expect("url").expect("a URL");
    assert!(url.url.starts_with(&format!("{}/tessera-test/sas/a%20b.bin?", Azurite::endpoint(azurite.port()))));
    assert!(url.url.contains("sp=r&") && url.url.contains("spr=https%2Chttp&"), "{}", url.url);
    // Read-only: a PUT with the same SAS is refused.
    let client = tessera::storage::http::client().expect("client");
    let request = http::Request::put(&url.url)
        .header("x-ms-blob-type", "BlockBlob")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"overwritten")))
        .expect("request");
    let status = client.request(request).await.expect("PUT").status().as_u16();
    assert_eq!(status, 403, "a read SAS cannot write");
    // A SAS that has expired is refused.
    let expired = store.download_url("sas/a b.bin", std::time::Duration::ZERO).await.expect("url").expect("a URL");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _) = storage_support::conformance::http_get(&expired.url).await;
    assert_eq!(status, 403, "an expired SAS is refused");
}

/// Bytes flipped on the way to Azurite are caught by the service's own MD5 check of each
/// Put Blob and Put Block (`Mismatch`, retried), and nothing is committed: the previous blob
/// stays whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_corruption_in_transit_is_caught() {
    let azurite = Azurite::start();
    let direct = AzureStore::connect(&azure(azurite.settings("corrupt"))).await.expect("connect");
    let scratch = scratch();
    let good = scratch.path().join("good.bin");
    let good_facts = write_pattern(&good, 5000, 21);
    let key = "corrupt/object.bin";
    direct.put_file(key, &good, &good_facts).await.expect("put the first version");
    let corrupting = corrupting_proxy(azurite.port()).await;
    for (name, size_bytes) in [("small.bin", 100_000u64), ("blocks.bin", 20 << 20)] {
        let file = scratch.path().join(name);
        let facts = write_pattern(&file, size_bytes, 22);
        // A fresh store (no pooled connection): each connection's first request is corrupted.
        let store = AzureStore::connect(&azure(azurite.settings_via(corrupting, "corrupt"))).await.expect("connect");
        let err = store.put_file(key, &file, &facts).await.expect_err("corrupted on the way");
        assert!(matches!(err, StorageError::Mismatch { .. }), "{name}: {err}");
        eprintln!("{name}: {err}");
        assert!(err.to_string().contains("azure") && err.to_string().contains(key), "{err}");
        assert_unchanged(&direct, key, &good_facts, scratch.path(), name).await;
    }
    // Blocks sent, then a SHA-256 other than the expected one: the list is never committed.
    let large = scratch.path().join("large.bin");
    let large_facts = write_pattern(&large, 9 << 20, 23);
    let wrong = FileFacts { sha256: "0".repeat(64), ..large_facts };
    let err = direct.put_file(key, &large, &wrong).await.expect_err("wrong sha256");
    assert!(matches!(err, StorageError::Mismatch { .. }), "{err}");
    assert_unchanged(&direct, key, &good_facts, scratch.path(), "wrong sha256 in blocks").await;
}

async fn assert_unchanged(store: &AzureStore, key: &str, facts: &FileFacts, scratch: &std::path::Path, what: &str) {
    let got = scratch.join("got.bin");
    let meta = store.get_file(key, &got, u64::MAX).await.expect("the first version is still there");
    assert_eq!(meta.size_bytes, facts.size_bytes, "{what}: the previous blob stays");
    assert_eq!(storage_support::conformance::sha256_file(&got), facts.sha256, "{what}: the previous blob stays");
}

/// A loopback proxy to `upstream` that flips one byte of the body of the first request on
/// each connection (the 101st byte after the request head). Returns its port.
async fn corrupting_proxy(upstream: u16) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else { return };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let (mut head, mut target, mut offset, mut flipped) = (Vec::new(), None::<usize>, 0usize, false);
                    loop {
                        let n = match client_read.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if target.is_none() {
                            head.extend_from_slice(&buf[..n]);
                            target = head.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4 + 100);
                        }
                        if let Some(t) = target.filter(|t| !flipped && (offset..offset + n).contains(t)) {
                            buf[t - offset] ^= 0xff;
                            flipped = true;
                        }
                        offset += n;
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = server_write.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    let _ = client_write.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    port
}

fn azure(settings: StorageSettings) -> tessera::storage::settings::AzureSettings {
    match settings.backend {
        Backend::Azure(azure) => azure,
        other => panic!("not azure: {other:?}"),
    }
}
