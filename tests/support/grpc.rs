//! Loopback peers and clients of the service tests: a Rust gRPC client (tonic), a signed
//! webhook receiver, an archive server, a self-signed certificate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use tessera::proto::{self as pb, render_service_client::RenderServiceClient};

/// A self-signed certificate for localhost and 127.0.0.1.
pub fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is required by this test (run scripts/install-deps.sh)");
    assert!(out.status.success(), "openssl: {}", super::text(&out));
    (cert, key)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime")
}

pub async fn client(addr: &str) -> RenderServiceClient<tonic::transport::Channel> {
    RenderServiceClient::connect(format!("http://{addr}")).await.expect("connect")
}

pub fn create_request(json: &serde_json::Value) -> pb::CreateRenderJobRequest {
    serde_json::from_value(json.clone()).expect("CreateRenderJobRequest")
}

/// Follows a job's events after `after_seq` until `until` says stop (or the stream ends).
pub async fn watch(
    addr: &str,
    id: &str,
    after_seq: u64,
    mut until: impl FnMut(&pb::RenderJobEvent) -> bool,
) -> Vec<pb::RenderJobEvent> {
    let mut stream = client(addr)
        .await
        .watch_render_job(pb::WatchRenderJobRequest { id: id.into(), after_seq })
        .await
        .expect("watch")
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.message().await.expect("event") {
        let stop = until(&event);
        events.push(event);
        if stop {
            break;
        }
    }
    events
}

/// What the webhook receiver got: (job id, seq) -> (event JSON, signature valid).
pub type Received = Arc<Mutex<BTreeMap<(String, u64), (serde_json::Value, bool)>>>;

pub const SECRET: &str = "load-test-secret-0123456789";

/// A webhook receiver on loopback that answers 503 to every 5th request (to be retried).
pub async fn webhook_receiver(received: Received) -> String {
    use axum::http::{HeaderMap, StatusCode};
    use hmac::{KeyInit, Mac};
    let requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (received, requests) = (received.clone(), requests.clone());
            async move {
                if requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 5 == 4 {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let header =
                    |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
                mac.update(format!("{}.", header("x-tessera-timestamp")).as_bytes());
                mac.update(&body);
                let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
                let valid = header("x-tessera-signature") == format!("v1={expected}");
                let event: serde_json::Value = serde_json::from_slice(&body).expect("event JSON");
                let key = (
                    event["jobId"].as_str().expect("jobId").to_owned(),
                    event["seq"].as_str().and_then(|s| s.parse().ok()).expect("seq"),
                );
                received.lock().expect("lock").insert(key, (event, valid));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("webhook receiver") });
    format!("http://{addr}/hook")
}

/// Serves `archive` at `/call.zip?sig=s3cr3t` (403 without the signature), a redirect to it at
/// `/moved.zip`, 404 elsewhere.
pub async fn archive_server(archive: PathBuf) -> String {
    use axum::http::{StatusCode, Uri, header};
    use axum::response::IntoResponse;
    let bytes = axum::body::Bytes::from(std::fs::read(&archive).expect("archive"));
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let bytes = bytes.clone();
        async move {
            match (uri.path(), uri.query()) {
                ("/call.zip", Some("sig=s3cr3t")) => (StatusCode::OK, bytes).into_response(),
                ("/call.zip", _) => StatusCode::FORBIDDEN.into_response(),
                ("/moved.zip", _) => (StatusCode::FOUND, [(header::LOCATION, "/call.zip?sig=s3cr3t")]).into_response(),
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("archive server") });
    format!("http://{addr}")
}

/// True for a progress event at or past `fraction`.
pub fn is_progress_past(event: &pb::RenderJobEvent, fraction: f64) -> bool {
    matches!(&event.event, Some(pb::render_job_event::Event::Progress(p)) if p.fraction >= fraction)
}

/// A raw-archive job rendering a small composite (160x90, 10 fps) to local storage under
/// `prefix`.
pub fn small_composite_job(input: &Path, prefix: &str) -> serde_json::Value {
    serde_json::json!({
        "spec": {
            "sources": [{"rawArchive": input.display().to_string()}],
            "video": {"width": 160, "height": 90, "fps": 10, "preset": "ultrafast"},
            "outputs": [{"kind": "composite"}],
            "storage": {"type": "local", "pathPrefix": prefix}
        }
    })
}

pub fn is_final(state: pb::JobState) -> bool {
    matches!(state, pb::JobState::Completed | pb::JobState::Failed | pb::JobState::Cancelled)
}

/// Polls job `id` until it ends (two minutes at most); returns it then.
pub async fn wait_final(c: &mut RenderServiceClient<tonic::transport::Channel>, id: &str) -> pb::RenderJob {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let job = c.get_render_job(pb::GetRenderJobRequest { id: id.into() }).await.expect("get").into_inner();
        if is_final(job.state()) {
            return job;
        }
        assert!(std::time::Instant::now() < deadline, "job {id} did not end");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
