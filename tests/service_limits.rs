//! `tessera serve` at its edges: what comes from outside is bounded (a huge request id, a
//! hostile archive's huge call id, an escaping path prefix), outputs stay under the node's
//! output root, and the node says it is going away as soon as shutdown begins.

mod support;

use std::path::Path;

use support::grpc::*;
use support::server::*;
use support::*;
use tessera::proto as pb;
use tessera::synth::{SynthSpec, synth};

/// The status `grpc.health.v1.Health/Check` gives for `service`, or the error.
async fn health_of(addr: &str, service: &str) -> Result<i32, String> {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).map_err(|e| e.to_string())?;
    let mut health = HealthClient::new(channel.connect().await.map_err(|e| e.to_string())?);
    let request = HealthCheckRequest { service: service.into() };
    health.check(request).await.map(|r| r.into_inner().status).map_err(|e| e.to_string())
}

#[test]
fn health_turns_not_serving_as_soon_as_shutdown_begins() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = call(dir.path(), "call", 2, 120_000);
    let options = ServerOptions { max_concurrent: 1, shutdown_grace_s: 120, ..ServerOptions::default() };
    let mut server = Server::start(&dir.path().join("server"), &options);
    let rt = runtime();
    let outputs = serde_json::json!([{"kind": "composite"}]);
    let job = create_request(&job_json("drain", &archive, &dir.path().join("out"), (320, 180), outputs));
    let id =
        rt.block_on(async { client(&server.addr).await.create_render_job(job).await.expect("create").into_inner().id });
    assert_eq!(rt.block_on(health_of(&server.addr, "")), Ok(ServingStatus::Serving as i32));
    rt.block_on(watch(&server.addr, &id, 0, |e| is_progress_past(e, 0.0)));
    server.send_term();
    // The job runs on within its grace period; meanwhile the node says it is going away.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let overall = rt.block_on(health_of(&server.addr, ""));
        seen.push(overall.clone());
        if overall == Ok(ServingStatus::NotServing as i32) || overall.is_err() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still serving: {seen:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(seen.last(), Some(&Ok(ServingStatus::NotServing as i32)), "{seen:?}");
    let service = rt.block_on(health_of(&server.addr, "tessera.v1.RenderService"));
    assert_eq!(service, Ok(ServingStatus::NotServing as i32));
    let job = rt.block_on(async {
        client(&server.addr).await.get_render_job(pb::GetRenderJobRequest { id: id.clone() }).await
    });
    assert_eq!(job.expect("get").into_inner().state(), pb::JobState::Running, "the job is still running");
    // No need to wait for the whole call.
    rt.block_on(async { client(&server.addr).await.cancel_render_job(pb::CancelRenderJobRequest { id }).await })
        .expect("cancel");
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}\n{}", server.logs());
}

#[test]
fn outside_input_is_bounded_and_outputs_stay_under_the_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = call(dir.path(), "call", 2, 1000);
    let options = ServerOptions { default_output_root: true, ..ServerOptions::default() };
    let server = Server::start(&dir.path().join("server"), &options);
    let rt = runtime();
    let outputs = serde_json::json!([{"kind": "composite"}]);
    let request = |request_id: &str, source: &Path, prefix: &str| {
        let mut json = job_json(request_id, source, Path::new("/unused"), (160, 90), outputs.clone());
        json["spec"]["storage"]["pathPrefix"] = prefix.into();
        create_request(&json)
    };
    let create = |request: pb::CreateRenderJobRequest| {
        rt.block_on(async { client(&server.addr).await.create_render_job(request).await.map(|r| r.into_inner()) })
    };

    // A huge request id is refused, naming the field and the limit, without echoing it.
    let err = create(request(&"r".repeat(3 << 20), &archive, "big")).expect_err("a 3 MB request id");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("request_id") && err.message().contains("limit of 256 bytes"), "{}", err.message());
    assert!(err.message().len() < 300, "{} bytes", err.message().len());

    // Outputs never leave the node's output root.
    let outside = dir.path().join("elsewhere").display().to_string();
    for prefix in ["../../..", outside.as_str()] {
        let err = create(request("escape", &archive, prefix)).expect_err(prefix);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{prefix}");
        assert!(err.message().contains("storage.path_prefix") && err.message().contains("output root"), "{err:?}");
    }

    // Without storage.local_root, a relative path_prefix lands under data_dir/outputs.
    let job = create(request("relative", &archive, "acme/call-1")).expect("created");
    let events = rt.block_on(watch(&server.addr, &job.id, 0, |_| false));
    let done = rt.block_on(async {
        client(&server.addr).await.get_render_job(pb::GetRenderJobRequest { id: job.id.clone() }).await
    });
    let done = done.expect("get").into_inner();
    assert_eq!(done.state(), pb::JobState::Completed, "{events:?}");
    let published = server.data_dir().join("outputs/acme/call-1");
    assert_eq!(names_in(&published).len(), 2, "composite + manifest in {}", published.display());
    assert!(!server.data_dir().join("../acme").exists() && !dir.path().join("acme").exists());

    // A metadata file with a huge call_id fails the job with a short message: the job record
    // stays small, and Get, Watch and List still work.
    let hostile = dir.path().join("hostile");
    synth(&SynthSpec { participants: 2, duration_ms: 1000, width: 160, height: 90, ..SynthSpec::default() }, &hostile)
        .expect("synth");
    let huge_call_id = "c".repeat(4 << 20);
    for participant in files_in(&hostile) {
        for file in files_in(&participant).into_iter().filter(|f| f.to_string_lossy().ends_with("_metadata.json")) {
            let mut json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
            json["call_id"] = huge_call_id.clone().into();
            std::fs::write(&file, serde_json::to_vec(&json).expect("json")).expect("write");
        }
    }
    let job = create(request("hostile", &hostile, "hostile")).expect("created");
    let events = rt.block_on(watch(&server.addr, &job.id, 0, |_| false));
    let failed = rt.block_on(async {
        let mut api = client(&server.addr).await;
        let listed = api.list_render_jobs(pb::ListRenderJobsRequest::default()).await.expect("list").into_inner();
        assert_eq!(listed.jobs.len(), 2, "both jobs listed");
        api.get_render_job(pb::GetRenderJobRequest { id: job.id.clone() }).await.expect("get").into_inner()
    });
    let failure = failed.failure.clone().expect("failure");
    assert_eq!((failed.state(), failure.cause()), (pb::JobState::Failed, pb::failure::Cause::BadInput));
    assert!(failure.message.contains("`call_id`") && failure.message.contains("limit of 256 bytes"), "{failure:?}");
    assert!(failure.message.len() < 1000, "a short message: {} bytes", failure.message.len());
    use prost::Message as _;
    assert!(failed.encoded_len() < 16 << 10, "the job record is {} bytes", failed.encoded_len());
    assert!(events.iter().all(|e| e.encoded_len() < 4 << 10), "every event is small");
}
