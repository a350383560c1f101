//! Storage tests for the sftp backend, against a real OpenSSH sshd on loopback: the
//! conformance suite (key and password authentication), the fault suite through a proxy,
//! host key verification (pinned key or fingerprint, known-hosts file, trust on first use, a
//! changed key) and refused credentials.

mod storage_support;

use std::path::Path;
use std::sync::Arc;

use storage_support::conformance::{Capabilities, conformance, sha256_file, write_pattern};
use storage_support::faults::{FaultProxy, fault_suite};
use storage_support::sshd::{PASSPHRASE, PASSWORD, Sshd, USER, free_port};
use tessera::storage::settings::{DEFAULT_URL_EXPIRY, NodeStorage, SftpAuth, SftpSettings, remote_settings};
use tessera::storage::{Backend, ObjectStore, Secret, StorageError, StorageSettings};

/// The backend's logs on the test's output, filtered by `RUST_LOG` (e.g. `tessera=debug`).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

const NO_URLS: Capabilities = Capabilities { download_url: false, signature_checked: false };

async fn open(settings: SftpSettings) -> Result<Arc<dyn ObjectStore>, StorageError> {
    tessera::storage::open(&StorageSettings {
        backend: Backend::Sftp(settings),
        path_prefix: String::new(),
        url_expiry: DEFAULT_URL_EXPIRY,
    })
    .await
}

fn key_auth(sshd: &Sshd) -> SftpAuth {
    SftpAuth::Key { private_key: Secret::new(sshd.private_key()), passphrase: None }
}

/// Files under `dir` whose name marks an unfinished upload.
fn partial_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n.to_string_lossy().contains(".partial-")) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_with_key_authentication() {
    logs();
    let sshd = Sshd::start();
    let prefix = sshd.prefix("conformance");
    let store = tessera::storage::open(&sshd.settings(&prefix)).await.expect("open");
    let scratch = tempfile::tempdir().expect("scratch");
    conformance(&*store, &prefix, scratch.path(), NO_URLS).await;
    let leftovers = partial_files(&sshd.home().join(&prefix));
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_authentication_round_trip() {
    logs();
    let sshd = Sshd::start();
    let prefix = sshd.prefix("password");
    let store = tessera::storage::open(&sshd.password_settings(&prefix)).await.expect("open with a password");
    let scratch = tempfile::tempdir().expect("scratch");
    let key = format!("{prefix}/deeper/still/récit 1.bin");
    assert_eq!(store.location(&key), format!("sftp://127.0.0.1:{}/{key}", sshd.port()));
    assert_eq!(store.stat(&key).await.expect("stat missing"), None);

    let file = scratch.path().join("one.bin");
    let facts = write_pattern(&file, 3 << 20, 21);
    let receipt = store.put_file(&key, &file, &facts).await.expect("put");
    assert_eq!(receipt.meta.size_bytes, facts.size_bytes);
    assert_eq!(receipt.verified, "size and SHA-256 read back over SFTP");
    let on_disk = sshd.home().join(&key);
    assert_eq!(sha256_file(&on_disk), facts.sha256, "the file on the server");

    let got = scratch.path().join("one.got");
    let meta = store.get_file(&key, &got, u64::MAX).await.expect("get");
    assert_eq!(meta.size_bytes, facts.size_bytes);
    assert_eq!(sha256_file(&got), facts.sha256);
    let original = std::fs::read(&file).expect("read");
    let range = store.get_range(&key, 1_000_000..1_500_000).await.expect("range");
    assert!(range[..] == original[1_000_000..1_500_000], "byte range");
    let empty = store.get_range(&key, 5 << 20..6 << 20).await.expect("range past the end");
    assert!(empty.is_empty());

    let smaller = scratch.path().join("two.bin");
    let smaller_facts = write_pattern(&smaller, 1234, 22);
    store.put_file(&key, &smaller, &smaller_facts).await.expect("overwrite");
    assert_eq!(store.stat(&key).await.expect("stat").map(|m| m.size_bytes), Some(1234));
    store.delete(&key).await.expect("delete");
    assert_eq!(store.stat(&key).await.expect("stat deleted"), None);
    store.delete(&key).await.expect("delete again");

    let empty_file = scratch.path().join("empty.bin");
    let empty_facts = write_pattern(&empty_file, 0, 24);
    let empty_key = format!("{prefix}/empty.bin");
    store.put_file(&empty_key, &empty_file, &empty_facts).await.expect("put an empty file");
    store.get_file(&empty_key, &got, 0).await.expect("get an empty file with a zero limit");
    assert_eq!(std::fs::metadata(&got).expect("got").len(), 0);
    let err = store.get_range(&key, 0..10).await.expect_err("range of a missing object");
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains(&store.location(&key)), "{err}");
    assert!(partial_files(&sshd.home().join(&prefix)).is_empty());
}

/// The blocks the job-level tests send reach the server (both authentication methods).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_blocks_reach_the_server() {
    logs();
    let sshd = Sshd::start();
    let scratch = tempfile::tempdir().expect("scratch");
    let file = scratch.path().join("block.bin");
    let facts = write_pattern(&file, 100_000, 23);
    for (name, block) in [
        ("password", sshd.storage_block(&sshd.prefix("block-password"))),
        ("key", sshd.storage_block_key(&sshd.prefix("block-key"))),
    ] {
        let block: tessera::proto::Storage = serde_json::from_value(block).expect("a Storage block");
        let settings = remote_settings(&block, &NodeStorage::default()).expect("valid block");
        let store = tessera::storage::open(&settings).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let key = settings.key("out.bin");
        store.put_file(&key, &file, &facts).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sha256_file(&sshd.home().join(&key)), facts.sha256, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_suite_through_a_proxy() {
    logs();
    let mut sshd = Sshd::start();
    let proxy = FaultProxy::start(sshd.port()).await;
    let prefix = sshd.prefix("faults");
    let store = tessera::storage::open(&sshd.settings_via(proxy.port(), &prefix)).await.expect("open via the proxy");
    let scratch = tempfile::tempdir().expect("scratch");
    fault_suite("sftp", store, &mut sshd, &proxy, false, &prefix, scratch.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_host_key_is_refused() {
    logs();
    let sshd = Sshd::start();
    let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ other-host";
    let other_fingerprint = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU";
    for wrong in [other, other_fingerprint] {
        let settings =
            SftpSettings { host_key: Some(wrong.into()), ..sshd.sftp_settings(sshd.port(), key_auth(&sshd)) };
        let err = open(settings).await.expect_err("a wrong host key");
        let StorageError::HostKey { host, fingerprint, reason } = &err else { panic!("not a host key error: {err}") };
        assert_eq!(*host, format!("127.0.0.1:{}", sshd.port()));
        assert_eq!(*fingerprint, sshd.host_key_fingerprint(), "the server's key, as ssh-keygen prints it");
        assert_eq!(reason, "is not the expected key");
        let message = err.to_string();
        assert!(
            message.starts_with("sftp: ") && message.contains(host.as_str()) && message.contains(fingerprint.as_str()),
            "{message}"
        );
        assert!(!err.is_transient(), "a host key refusal is final");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_key_fingerprint_is_accepted() {
    logs();
    let sshd = Sshd::start();
    let prefix = sshd.prefix("fingerprint");
    let settings = SftpSettings {
        host_key: Some(sshd.host_key_fingerprint()),
        ..sshd.sftp_settings(sshd.port(), key_auth(&sshd))
    };
    let store = open(settings).await.expect("the right fingerprint");
    assert_eq!(store.stat(&format!("{prefix}/nothing")).await.expect("stat"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_known_hosts_file_decides() {
    logs();
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().expect("dir");
    let known = dir.path().join("known_hosts");
    std::fs::write(
        &known,
        format!(
            "# comment\nexample.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ\n[127.0.0.1]:{} {}\n",
            sshd.port(),
            sshd.host_key()
        ),
    )
    .expect("write known_hosts");
    let settings = |path: &Path| SftpSettings {
        host_key: None,
        known_hosts: Some(path.to_path_buf()),
        ..sshd.sftp_settings(sshd.port(), key_auth(&sshd))
    };
    open(settings(&known)).await.expect("the key is in the known-hosts file");

    // Only another host's key (and the default port's entry is not this port's): unknown.
    let other = dir.path().join("other_hosts");
    std::fs::write(&other, format!("127.0.0.1 {}\n", sshd.host_key())).expect("write");
    for path in [other.as_path(), &dir.path().join("missing")] {
        let err = open(settings(path)).await.expect_err("unknown host key");
        let StorageError::HostKey { host, fingerprint, reason } = &err else { panic!("not a host key error: {err}") };
        assert_eq!(*host, format!("127.0.0.1:{}", sshd.port()));
        assert_eq!(*fingerprint, sshd.host_key_fingerprint());
        assert_eq!(*reason, format!("is unknown (not in {}) and trust on first use is off", path.display()));
    }
    assert!(!dir.path().join("missing").exists(), "nothing is learned without trust on first use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_on_first_use_learns_the_key_and_a_changed_key_is_refused() {
    logs();
    let mut sshd = Sshd::start();
    let prefix = sshd.prefix("tofu");
    let dir = tempfile::tempdir().expect("dir");
    let known = dir.path().join("ssh/known_hosts");
    let settings = |trust_on_first_use: bool| SftpSettings {
        host_key: None,
        known_hosts: Some(known.clone()),
        trust_on_first_use,
        ..sshd.sftp_settings(sshd.port(), key_auth(&sshd))
    };
    let first = open(settings(true)).await.expect("trusted on first use");
    let learned = std::fs::read_to_string(&known).expect("the key was learned");
    let key_part = sshd.host_key().split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(learned, format!("[127.0.0.1]:{} {key_part}\n", sshd.port()));
    open(settings(false)).await.expect("known now, even without trust on first use");

    let old_fingerprint = sshd.host_key_fingerprint();
    sshd.change_host_key();
    assert_ne!(sshd.host_key_fingerprint(), old_fingerprint);
    let settings = |trust_on_first_use: bool| SftpSettings {
        host_key: None,
        known_hosts: Some(known.clone()),
        trust_on_first_use,
        ..sshd.sftp_settings(sshd.port(), key_auth(&sshd))
    };
    for trust_on_first_use in [true, false] {
        let err = open(settings(trust_on_first_use)).await.expect_err("a changed host key");
        let StorageError::HostKey { fingerprint, reason, .. } = &err else { panic!("not a host key error: {err}") };
        assert_eq!(*fingerprint, sshd.host_key_fingerprint());
        assert!(reason.starts_with("changed"), "{reason}");
    }
    // The store opened before the change reconnects, and meets the same refusal.
    let err = first.stat(&format!("{prefix}/x")).await.expect_err("a changed host key on reconnecting");
    assert!(matches!(err, StorageError::HostKey { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&known).expect("read"), learned, "a changed key is never learned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused() {
    logs();
    let sshd = Sshd::start();
    let wrong = "not-the-password-3141";
    let err = open(sshd.sftp_settings(sshd.port(), SftpAuth::Password(Secret::new(wrong))))
        .await
        .expect_err("a wrong password");
    assert!(matches!(err, StorageError::Refused { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&format!("authentication of {USER} at 127.0.0.1:{} failed", sshd.port())), "{message}");
    assert!(message.contains("sftp"), "{message}");
    assert!(!message.contains(wrong) && !message.contains(PASSWORD), "no password in {message}");

    // A key the server does not know.
    let stranger = tempfile::tempdir().expect("dir");
    let path = stranger.path().join("id");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    let unknown_key = std::fs::read_to_string(&path).expect("read key");
    let auth = SftpAuth::Key { private_key: Secret::new(&unknown_key), passphrase: None };
    let err = open(sshd.sftp_settings(sshd.port(), auth)).await.expect_err("an unknown key");
    assert!(matches!(err, StorageError::Refused { .. }), "{err}");
    assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_a_passphrase() {
    logs();
    let sshd = Sshd::start();
    let with = |passphrase: Option<&str>| SftpAuth::Key {
        private_key: Secret::new(sshd.private_key_with_passphrase()),
        passphrase: passphrase.map(Secret::new),
    };
    let store = open(sshd.sftp_settings(sshd.port(), with(Some(PASSPHRASE)))).await.expect("the right passphrase");
    assert_eq!(store.stat(&format!("{}/x", sshd.prefix("passphrase"))).await.expect("stat"), None);
    for passphrase in [Some("bad-passphrase-2718"), None] {
        let err = open(sshd.sftp_settings(sshd.port(), with(passphrase))).await.expect_err("no usable key");
        assert!(matches!(err, StorageError::Settings { field: "private_key", .. }), "{err}");
        let message = err.to_string();
        assert!(!message.contains("bad-passphrase") && !message.contains(PASSPHRASE), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_listening_is_unavailable() {
    logs();
    let sshd = Sshd::start();
    let port = free_port();
    let err = open(sshd.sftp_settings(port, key_auth(&sshd))).await.expect_err("nothing listens");
    assert!(matches!(err, StorageError::Unavailable { .. }), "{err}");
    assert!(err.is_transient());
    assert!(err.to_string().contains(&format!("sftp connect sftp://127.0.0.1:{port}/")), "{err}");
}
