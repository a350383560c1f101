//! Render jobs against every storage backend, each server started on loopback: a job reads its
//! source from S3 (through the node's cache) and writes every output plus the manifest to
//! each backend in turn, each object's SHA-256 matching what the job reports and each
//! download URL working; the node killed mid-upload and restarted finishes the job with each
//! object once and whole; secrets never appear in what the service says or logs; and the CLI
//! reads `--input-s3` from an `s3://` URL and from a presigned one.

mod storage_support;
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use storage_support::azurite::Azurite;
use storage_support::conformance::{http_get, sha256_file};
use storage_support::fake_gcs::FakeGcs;
use storage_support::faults::{FaultProxy, Mode};
use storage_support::moto::Moto;
use storage_support::sshd::Sshd;
use support::grpc::{client, create_request, runtime, watch};
use support::server::{Server, ServerOptions};
use support::*;
use tessera::proto as pb;
use tessera::storage::{FileFacts, ObjectStore, StorageSettings};

const BUCKET_SOURCE_KEY: &str = "sources/call one.zip";
/// moto takes any credentials: these are unique, so the logs can be searched for them.
const S3_ACCESS_KEY: &str = "AKIA-TESSERA-GREP-ME";
const S3_SECRET: &str = "s3-secret-that-must-never-be-shown";

/// `block` with the credentials above.
fn with_s3_keys(mut block: serde_json::Value, kind: &str) -> serde_json::Value {
    block["type"] = serde_json::json!(kind);
    block["accessKey"] = serde_json::json!(S3_ACCESS_KEY);
    block["secret"] = serde_json::json!(S3_SECRET);
    block
}

/// A small synthetic call, as a zipped raw archive.
fn call_archive(dir: &Path) -> std::path::PathBuf {
    support::call(dir, "call", 2, 3000)
}

async fn put(store: &dyn ObjectStore, key: &str, path: &Path) {
    let facts = FileFacts { size_bytes: std::fs::metadata(path).expect("size").len(), sha256: sha256_file(path) };
    store.put_file(key, path, &facts).await.unwrap_or_else(|e| panic!("put {key}: {e}"));
}

fn job_spec(source: &str, source_storage: &serde_json::Value, storage: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "spec": {
            "sources": [{"rawArchive": source}],
            "video": {"width": 320, "height": 180, "fps": 15},
            "outputs": [{"kind": "composite"}, {"kind": "composite_audio"}, {"kind": "audio_only"}],
            "storage": storage,
            "sourceStorage": source_storage,
        }
    })
}

/// The object key of a reported output: the prefix and the last part of its location.
fn key_of(output: &pb::OutputFile, prefix: &str) -> String {
    let name = output.location.rsplit('/').next().expect("a file name");
    format!("{prefix}/{}", percent_encoding::percent_decode_str(name).decode_utf8_lossy())
}

/// Every output of `job` is in `store` whole, with its download URL working (where the
/// backend signs one), and the manifest beside them.
async fn check_outputs(job: &pb::RenderJob, settings: &StorageSettings, prefix: &str, scratch: &Path) {
    let store = tessera::storage::open(settings).await.expect("open the backend");
    let kind = store.kind();
    assert_eq!(job.state(), pb::JobState::Completed, "{kind}: {job:?}");
    assert_eq!(job.outputs.len(), 4, "{kind}: composite, composite audio, two audio_only");
    let mut locations: Vec<&str> = job.outputs.iter().map(|o| o.location.as_str()).collect();
    locations.sort_unstable();
    locations.dedup();
    assert_eq!(locations.len(), job.outputs.len(), "{kind}: each object once");
    for output in &job.outputs {
        let key = key_of(output, prefix);
        assert_eq!(output.location, store.location(&key), "{kind}: the location names the object");
        let got = scratch.join(format!("{kind}-got"));
        store.get_file(&key, &got, u64::MAX).await.unwrap_or_else(|e| panic!("{kind}: get {key}: {e}"));
        assert_eq!(sha256_file(&got), output.sha256, "{kind}: {key} is what the job reported");
        assert_eq!(std::fs::metadata(&got).expect("size").len(), output.size_bytes);
        if matches!(kind, "s3" | "digitalocean" | "azure" | "gcs") {
            let now = tessera::storage::object::expiry_unix_ms(Duration::ZERO);
            assert!(output.url_expires_at_unix_ms > now + 3_000_000, "{kind}: the URL lives an hour: {output:?}");
            let (status, body) = http_get(&output.url).await;
            assert_eq!(status, 200, "{kind}: the download URL of {key}");
            assert_eq!(body.len() as u64, output.size_bytes, "{kind}: downloaded through the URL");
        }
    }
    let manifest = store.stat(&format!("{prefix}/manifest.json")).await.expect("stat manifest");
    assert!(manifest.is_some_and(|m| m.size_bytes > 100), "{kind}: the manifest is uploaded beside the outputs");
}

#[test]
fn a_job_writes_every_output_and_the_manifest_to_each_backend_reading_its_source_from_s3() {
    require_tool("ffprobe");
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = call_archive(dir.path());
    let rt = runtime();
    let moto = Moto::start();
    let azurite = Azurite::start();
    let gcs = FakeGcs::start();
    let sshd = Sshd::start();
    let sftp_prefix = sshd.prefix("jobs");
    rt.block_on(async {
        let source_store = tessera::storage::open(&moto.settings("")).await.expect("s3");
        put(&*source_store, BUCKET_SOURCE_KEY, &archive).await;
    });
    let source_url = format!("s3://{}/{BUCKET_SOURCE_KEY}", storage_support::moto::BUCKET);
    let source_block = with_s3_keys(moto.storage_block(""), "s3");
    let local_out = dir.path().join("outputs");
    let backends: Vec<(&str, serde_json::Value, StorageSettings, String)> = vec![
        ("s3", with_s3_keys(moto.storage_block("jobs/s3"), "s3"), moto.settings(""), "jobs/s3".into()),
        (
            "digitalocean",
            with_s3_keys(moto.storage_block("jobs/do"), "digitalocean"),
            moto.settings_as("digitalocean", moto.port(), ""),
            "jobs/do".into(),
        ),
        ("azure", azurite.storage_block("jobs/azure"), azurite.settings(""), "jobs/azure".into()),
        ("gcs", gcs.storage_block("jobs/gcs"), gcs.settings(""), "jobs/gcs".into()),
        ("sftp", sshd.storage_block(&sftp_prefix), sshd.settings(""), sftp_prefix.clone()),
    ];
    let server_dir = dir.path().join("server");
    let options = ServerOptions {
        storage_config: "retry_first_backoff_ms = 100\nretry_max_backoff_ms = 1000\nurl_expiry_s = 7200\n".into(),
        ..ServerOptions::default()
    };
    let server = Server::start(&server_dir, &options);
    let gcs_key = gcs.service_account_json();
    let gcs_key: serde_json::Value = serde_json::from_str(&gcs_key).expect("key JSON");
    let gcs_private =
        gcs_key["private_key"].as_str().expect("private key").lines().nth(3).expect("a key line").to_owned();
    let secrets = [
        S3_ACCESS_KEY,
        S3_SECRET,
        storage_support::azurite::ACCOUNT_KEY,
        storage_support::sshd::PASSWORD,
        &gcs_private,
    ];
    rt.block_on(async {
        let mut ids = Vec::new();
        for (kind, block, _, _) in &backends {
            let job = client(&server.addr)
                .await
                .create_render_job(create_request(&job_spec(&source_url, &source_block, block)))
                .await
                .unwrap_or_else(|e| panic!("{kind}: create: {e}"))
                .into_inner();
            ids.push(job.id);
        }
        let local = serde_json::json!({"type": "local", "pathPrefix": local_out.display().to_string()});
        let local_job = client(&server.addr)
            .await
            .create_render_job(create_request(&job_spec(&source_url, &source_block, &local)))
            .await
            .expect("create local")
            .into_inner();
        for (id, (kind, _, settings, prefix)) in ids.iter().zip(&backends) {
            let events = watch(&server.addr, id, 0, |e| {
                matches!(e.event, Some(pb::render_job_event::Event::StateChanged(s)) if s >= pb::JobState::Completed as i32)
            })
            .await;
            let ready = events.iter().filter(|e| matches!(e.event, Some(pb::render_job_event::Event::OutputReady(_)))).count();
            let job = client(&server.addr)
                .await
                .get_render_job(pb::GetRenderJobRequest { id: id.clone() })
                .await
                .expect("get")
                .into_inner();
            assert_eq!(ready, job.outputs.len(), "{kind}: one output_ready per file: {:?}", job.failure);
            check_outputs(&job, settings, prefix, dir.path()).await;
            eprintln!("{kind}: {} outputs verified", job.outputs.len());
            // What the service tells about the job never holds a credential (the access key
            // id is part of every presigned S3 URL, by AWS's design, so it is left out here).
            let told = format!("{job:?} {events:?}");
            for secret in secrets.iter().filter(|s| **s != S3_ACCESS_KEY) {
                assert!(!told.contains(secret), "{kind}: a secret in GetRenderJob or the events");
            }
        }
        watch(&server.addr, &local_job.id, 0, |e| {
            matches!(e.event, Some(pb::render_job_event::Event::StateChanged(s)) if s >= pb::JobState::Completed as i32)
        })
        .await;
        let job = client(&server.addr)
            .await
            .get_render_job(pb::GetRenderJobRequest { id: local_job.id.clone() })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(job.state(), pb::JobState::Completed, "{:?}", job.failure);
        for output in &job.outputs {
            assert!(output.location.starts_with("file:///") && output.url == output.location, "{output:?}");
            let path = Path::new(output.location.trim_start_matches("file://"));
            assert_eq!(sha256_file(path), output.sha256);
        }
    });
    // The source was downloaded once and then served from the node's cache.
    let logs = server.logs();
    let downloads = logs.matches("\"how\":\"Downloaded\"").count() + logs.matches("how=Downloaded").count();
    let hits = logs.matches("\"how\":\"Hit\"").count() + logs.matches("how=Hit").count();
    assert!(downloads >= 1 && hits >= 1 && downloads + hits == 6, "cache: {downloads} downloads, {hits} hits\n{logs}");
    // Secrets and the signatures of the download URLs never appear in the logs.
    for secret in secrets {
        assert!(!logs.contains(secret), "a secret in the logs");
    }
    assert!(
        !logs.contains("X-Amz-Signature=") && !logs.contains("X-Goog-Signature=") && !logs.contains("sig="),
        "a signed URL in the logs"
    );
    let tails: Vec<&str> = logs.lines().filter(|l| l.contains("upload_tail_ms")).collect();
    eprintln!("render end to last output verified:\n{}", tails.join("\n"));
    drop(server);
}

#[test]
fn the_node_killed_mid_upload_finishes_the_job_with_each_object_once_and_whole() {
    require_tool("ffprobe");
    let dir = tempfile::tempdir().expect("tempdir");
    let input = support::call(dir.path(), "call", 2, 3000);
    let rt = runtime();
    let moto = Moto::start();
    let azurite = Azurite::start();
    let gcs = FakeGcs::start();
    let sshd = Sshd::start();
    let prefix = sshd.prefix("killed");
    // Uploads crawl through a proxy, so the node is killed while one is under way.
    let proxies: Vec<FaultProxy> = rt.block_on(async {
        let mut proxies = Vec::new();
        for port in [moto.port(), azurite.port(), gcs.port(), sshd.port()] {
            proxies.push(FaultProxy::start(port).await);
        }
        proxies
    });
    let via = |port: u16| format!("http://127.0.0.1:{port}");
    let mut s3_block = with_s3_keys(moto.storage_block("killed/s3"), "s3");
    s3_block["endpoint"] = serde_json::json!(via(proxies[0].port()));
    let mut azure_block = azurite.storage_block("killed/azure");
    azure_block["endpoint"] = serde_json::json!(Azurite::endpoint(proxies[1].port()));
    let mut gcs_block = gcs.storage_block("killed/gcs");
    gcs_block["endpoint"] = serde_json::json!(via(proxies[2].port()));
    let mut sftp_block = sshd.storage_block(&prefix);
    sftp_block["port"] = serde_json::json!(proxies[3].port());
    let server_dir = dir.path().join("server");
    let options = ServerOptions {
        storage_config: "retry_first_backoff_ms = 100\nretry_max_backoff_ms = 1000\n".into(),
        ..ServerOptions::default()
    };
    let mut server = Server::start(&server_dir, &options);
    let source = input.display().to_string();
    let none = serde_json::Value::Null;
    for (kind, block, proxy, settings, key_prefix) in [
        ("s3", &s3_block, &proxies[0], moto.settings_via(proxies[0].port(), ""), "killed/s3".to_owned()),
        ("azure", &azure_block, &proxies[1], azurite.settings_via(proxies[1].port(), ""), "killed/azure".to_owned()),
        ("gcs", &gcs_block, &proxies[2], gcs.settings_via(proxies[2].port(), ""), "killed/gcs".to_owned()),
        ("sftp", &sftp_block, &proxies[3], sshd.settings_via(proxies[3].port(), ""), prefix.clone()),
    ] {
        proxy.set(Mode::Slow { bytes_per_s: 24 * 1024 });
        let mut spec = job_spec(&source, &none, block);
        spec["spec"].as_object_mut().expect("spec").remove("sourceStorage");
        let id = rt.block_on(async {
            client(&server.addr).await.create_render_job(create_request(&spec)).await.expect("create").into_inner().id
        });
        // Killed at the first file verified: the others are still on their way.
        rt.block_on(watch(&server.addr, &id, 0, |e| {
            matches!(e.event, Some(pb::render_job_event::Event::OutputReady(_)))
        }));
        server.kill();
        proxy.set(Mode::Pass);
        server.restart();
        rt.block_on(async {
            watch(&server.addr, &id, 0, |e| {
                matches!(e.event, Some(pb::render_job_event::Event::StateChanged(s)) if s >= pb::JobState::Completed as i32)
            })
            .await;
            let job = client(&server.addr)
                .await
                .get_render_job(pb::GetRenderJobRequest { id: id.clone() })
                .await
                .expect("get")
                .into_inner();
            check_outputs(&job, &settings, &key_prefix, dir.path()).await;
        });
        eprintln!("{kind}: killed mid-upload, completed after the restart");
    }
    // No temporary file is left on the SFTP server, and no unfinished multipart upload in S3.
    let leftovers: Vec<String> = std::fs::read_dir(sshd.home().join(&prefix))
        .expect("sftp dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial"))
        .collect();
    assert!(leftovers.is_empty() || leftovers.iter().all(|n| n.starts_with('.')), "sftp leftovers: {leftovers:?}");
    let uploads = rt.block_on(async {
        moto.client()
            .list_multipart_uploads()
            .bucket(storage_support::moto::BUCKET)
            .prefix("killed/s3/")
            .send()
            .await
            .expect("list uploads")
    });
    assert!(uploads.uploads().is_empty(), "no unfinished multipart upload: {:?}", uploads.uploads());
}

#[test]
fn the_cli_reads_input_s3_from_s3_and_from_a_presigned_url_through_its_cache() {
    require_tool("ffprobe");
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = call_archive(dir.path());
    let moto = Moto::start();
    let rt = runtime();
    let presigned = rt.block_on(async {
        let store: Arc<dyn ObjectStore> = tessera::storage::open(&moto.settings("")).await.expect("s3");
        put(&*store, BUCKET_SOURCE_KEY, &archive).await;
        store.download_url(BUCKET_SOURCE_KEY, Duration::from_secs(600)).await.expect("presign").expect("a URL").url
    });
    let cache = dir.path().join("cache");
    let run = |input: &str, out: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["raw", "process-all", "--input-s3", input, "--output"])
            .arg(out)
            .arg("--cache-dir")
            .arg(&cache)
            .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", moto.endpoint())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env("WGPU_BACKEND", "vulkan")
            .env("XDG_RUNTIME_DIR", "/tmp")
            .output()
            .expect("run tessera")
    };
    let s3_url = format!("s3://{}/{BUCKET_SOURCE_KEY}", storage_support::moto::BUCKET);
    let first = run(&s3_url, &dir.path().join("out-1"));
    assert!(first.status.success(), "{}", text(&first));
    assert!(String::from_utf8_lossy(&first.stderr).contains("downloaded"), "{}", text(&first));
    assert!(files_in(&dir.path().join("out-1")).len() >= 4, "{}", text(&first));
    let again = run(&s3_url, &dir.path().join("out-2"));
    assert!(again.status.success(), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("from the cache"), "revalidated by ETag: {}", text(&again));
    let signed = run(&presigned, &dir.path().join("out-3"));
    assert!(signed.status.success(), "{}", text(&signed));
    let signature = presigned.split("X-Amz-Signature=").nth(1).expect("signature");
    assert!(!text(&signed).contains(signature), "the signature is never shown: {}", text(&signed));
    assert_eq!(files_in(&dir.path().join("out-3")).len(), files_in(&dir.path().join("out-1")).len());
    let missing = run(&format!("s3://{}/nope.zip", storage_support::moto::BUCKET), &dir.path().join("out-4"));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"), "{}", text(&missing));
}
