//! Upload speed per storage backend, each against its server on loopback (moto for S3 and
//! DigitalOcean, Azurite, fake-gcs-server, OpenSSH's sshd; local disk): one file of UPLOAD_MB
//! (default 1024 with `cargo bench`, a 16 MiB smoke run otherwise) put through the backend,
//! verified as a job's output is (the backend's own checks, see the README's table), against a
//! plain `std::fs::copy` of the same file as the baseline. Run with
//! `cargo bench --bench upload` (the servers come from scripts/install-deps.sh).

#[path = "../tests/storage_support/mod.rs"]
mod storage_support;

use std::path::Path;
use std::time::Instant;

use storage_support::azurite::Azurite;
use storage_support::conformance::write_pattern;
use storage_support::fake_gcs::FakeGcs;
use storage_support::moto::Moto;
use storage_support::sshd::Sshd;
use tessera::storage::settings::{Backend, StorageSettings};
use tessera::storage::{FileFacts, open};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn put(
    runtime: &tokio::runtime::Runtime,
    name: &str,
    settings: &StorageSettings,
    file: &Path,
    facts: &FileFacts,
    copy_s: f64,
) {
    let started = Instant::now();
    let receipt = runtime.block_on(async {
        let store = open(settings).await.unwrap_or_else(|e| panic!("{name}: open: {e}"));
        let receipt =
            store.put_file("bench/upload.bin", file, facts).await.unwrap_or_else(|e| panic!("{name}: put: {e}"));
        let _ = store.delete("bench/upload.bin").await;
        receipt
    });
    let wall_s = started.elapsed().as_secs_f64();
    let mb = facts.size_bytes as f64 / f64::from(1 << 20);
    println!(
        "{name:<13} {wall_s:>7.2} s  {:>7.1} MiB/s  {:>5.2}x the copy  verified: {}",
        mb / wall_s,
        wall_s / copy_s,
        receipt.verified
    );
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let mb: u64 = env_or("UPLOAD_MB", if bench { 1024 } else { 16 });
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("upload.bin");
    let facts = write_pattern(&file, mb << 20, 7);
    let started = Instant::now();
    std::fs::copy(&file, dir.path().join("copy.bin")).expect("copy");
    let copy_s = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(dir.path().join("copy.bin"));
    println!("{mb} MiB per backend; baseline std::fs::copy: {copy_s:.2} s");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let local = StorageSettings {
        backend: Backend::Local { dir: dir.path().join("local") },
        path_prefix: String::new(),
        url_expiry: std::time::Duration::from_secs(3600),
    };
    put(&runtime, "local", &local, &file, &facts, copy_s);
    {
        let moto = Moto::start();
        put(&runtime, "s3", &moto.settings(""), &file, &facts, copy_s);
        put(&runtime, "digitalocean", &moto.settings_as("digitalocean", moto.port(), ""), &file, &facts, copy_s);
    }
    {
        let azurite = Azurite::start();
        put(&runtime, "azure", &azurite.settings(""), &file, &facts, copy_s);
    }
    {
        let gcs = FakeGcs::start();
        put(&runtime, "gcs", &gcs.settings(""), &file, &facts, copy_s);
    }
    {
        let sshd = Sshd::start();
        put(&runtime, "sftp", &sshd.settings(&sshd.prefix("bench")), &file, &facts, copy_s);
    }
}
