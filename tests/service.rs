//! `tessera serve` end to end, with the real binary: the README's grpcurl commands run as
//! written against a server (create, watch to completion, get, list, cancel, node status,
//! health, reflection), the outputs checked with ffprobe; a Python grpcio client over TLS with
//! a bearer token; a server killed mid-job that finishes the job after restart without
//! duplicate files, and a graceful shutdown that queues the running job again; 50 jobs on a
//! node running 2 at a time, every event seen on the watch streams and on the signed webhook.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use support::grpc::*;
use support::server::*;
use support::*;
use tessera::proto::{self as pb, render_job_event::Event};

/// The grpcurl lines of the README, in order.
fn readme_grpcurl_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README");
    let block = readme
        .split("<!-- grpcurl:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- grpcurl:end -->").next())
        .expect("the README's grpcurl block");
    block.lines().filter(|l| l.starts_with("grpcurl ")).map(str::to_owned).collect()
}

/// Runs a README line in `cwd` against `addr`, with `JOB_ID` replaced.
fn run_readme_line(line: &str, cwd: &Path, addr: &str, job_id: &str) -> String {
    let command = line.replace("localhost:50051", addr).replace("JOB_ID", job_id);
    let bin = venv_tool("grpcurl").parent().expect("bin dir").to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash").args(["-c", &command]).current_dir(cwd).env("PATH", path).output().expect("bash");
    assert!(out.status.success(), "`{command}` failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn state_of(event: &serde_json::Value) -> Option<&str> {
    event["stateChanged"].as_str()
}

/// Events in order with seq 1, 2, 3, ...; QUEUED, RUNNING, progress, UPLOADING, one
/// output_ready per file, COMPLETED.
fn assert_complete_story(events: &[serde_json::Value], files: usize) {
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_str().and_then(|s| s.parse().ok()).expect("seq")).collect();
    assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>(), "no gap, no repeat");
    let states: Vec<&str> = events.iter().filter_map(state_of).collect();
    assert_eq!(states, ["JOB_STATE_QUEUED", "JOB_STATE_RUNNING", "JOB_STATE_UPLOADING", "JOB_STATE_COMPLETED"]);
    let ready = events.iter().filter(|e| e.get("outputReady").is_some()).count();
    assert_eq!(ready, files, "one output_ready per file");
    // Files are uploaded (and announced) as the render finishes them, so output_ready comes
    // after RUNNING, possibly before UPLOADING (the render's end), and always before COMPLETED.
    let running = events.iter().position(|e| state_of(e) == Some("JOB_STATE_RUNNING")).expect("running");
    let completed = events.iter().position(|e| state_of(e) == Some("JOB_STATE_COMPLETED")).expect("completed");
    assert!(events[..running].iter().all(|e| e.get("outputReady").is_none()), "no file is ready before the run");
    assert!(events[completed..].iter().all(|e| e.get("outputReady").is_none()), "every file is ready before COMPLETED");
}

#[test]
fn the_readme_grpcurl_commands_run_a_job_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let short = call(dir.path(), "short", 2, 3000);
    let long = call(dir.path(), "long", 2, 60_000);
    let server = Server::start(&dir.path().join("server"), &ServerOptions::default());
    let out = dir.path().join("out");
    let outputs = serde_json::json!([{"kind": "composite"}, {"kind": "composite_audio"}, {"kind": "audio_video"}]);
    std::fs::write(
        dir.path().join("job.json"),
        job_json("readme-1", &short, &out, (640, 360), outputs.clone()).to_string(),
    )
    .expect("job.json");

    let lines = readme_grpcurl_lines();
    assert_eq!(lines.len(), 9, "{lines:?}");
    let mut job_id = String::new();
    let mut long_out = PathBuf::new();
    for line in &lines {
        // What follows the address: `list`, `describe`, or the method.
        let rpc =
            line.split("localhost:50051").nth(1).and_then(|r| r.split_whitespace().next()).expect("rpc").to_owned();
        let mut id = job_id.clone();
        if rpc.ends_with("CancelRenderJob") {
            // Cancel a job that is still rendering.
            long_out = dir.path().join("long-out");
            let long_job = job_json("readme-long", &long, &long_out, (1280, 720), outputs.clone());
            let (ok, created, err) = grpcurl(&[
                "-plaintext",
                "-d",
                &long_job.to_string(),
                &server.addr,
                "tessera.v1.RenderService/CreateRenderJob",
            ]);
            assert!(ok, "{err}");
            id = json_objects(&created)[0]["id"].as_str().expect("id").to_owned();
            wait_for_progress(&server.addr, &id);
        }
        let printed = run_readme_line(line, dir.path(), &server.addr, &id);
        match rpc.as_str() {
            "list" => {
                for service in
                    ["tessera.v1.RenderService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]
                {
                    assert!(printed.lines().any(|l| l == service), "{service} in {printed}");
                }
            }
            "describe" => {
                for method in [
                    "CreateRenderJob",
                    "GetRenderJob",
                    "ListRenderJobs",
                    "CancelRenderJob",
                    "WatchRenderJob",
                    "GetNodeStatus",
                ] {
                    assert!(printed.contains(&format!("rpc {method}")), "{method} in {printed}");
                }
            }
            "grpc.health.v1.Health/Check" => assert!(printed.contains("SERVING"), "{printed}"),
            "tessera.v1.RenderService/CreateRenderJob" => {
                let job = &json_objects(&printed)[0];
                assert_eq!(job["state"], "JOB_STATE_QUEUED");
                job_id = job["id"].as_str().expect("id").to_owned();
                // The same request id is the same job.
                let again = run_readme_line(line, dir.path(), &server.addr, "");
                assert_eq!(json_objects(&again)[0]["id"], job["id"]);
            }
            "tessera.v1.RenderService/WatchRenderJob" => assert_complete_story(&json_objects(&printed), 4),
            "tessera.v1.RenderService/GetRenderJob" => {
                let job = &json_objects(&printed)[0];
                assert_eq!(job["state"], "JOB_STATE_COMPLETED", "{job}");
                assert_eq!(job["outputs"].as_array().map(Vec::len), Some(4), "{job}");
                assert_eq!(job["progress"]["fraction"], 1.0);
                assert!(job["encoder"].as_str().is_some_and(|e| !e.is_empty()), "{job}");
                for key in ["invokedAtUnixMs", "startedAtUnixMs", "stoppedAtUnixMs"] {
                    assert!(job[key].as_str().is_some_and(|t| t.parse::<i64>().is_ok_and(|t| t > 0)), "{key}: {job}");
                }
            }
            "tessera.v1.RenderService/ListRenderJobs" => {
                let listed = &json_objects(&printed)[0];
                let ids: Vec<&str> =
                    listed["jobs"].as_array().expect("jobs").iter().filter_map(|j| j["id"].as_str()).collect();
                assert_eq!(ids, [job_id.as_str()], "only the completed job");
            }
            "tessera.v1.RenderService/CancelRenderJob" => {
                let (ok, watched, err) = grpcurl(&[
                    "-plaintext",
                    "-d",
                    &format!(r#"{{"id": "{id}"}}"#),
                    &server.addr,
                    "tessera.v1.RenderService/WatchRenderJob",
                ]);
                assert!(ok, "{err}");
                let events = json_objects(&watched);
                assert_eq!(events.last().and_then(state_of), Some("JOB_STATE_CANCELLED"), "{watched}");
                assert!(names_in(&long_out).is_empty(), "a cancelled job publishes nothing: {:?}", names_in(&long_out));
                assert!(!server.data_dir().join("work").join(&id).exists(), "its working files are gone");
            }
            "tessera.v1.RenderService/GetNodeStatus" => {
                let node = &json_objects(&printed)[0];
                assert_eq!(node["maxConcurrentJobs"], 2);
                assert_eq!(node["acceptingJobs"], true);
                assert_eq!(node["videoEncoder"], printed_encoder(&server.addr, &job_id).as_str());
            }
            other => panic!("a README command this test does not check: {other}"),
        }
    }

    // The files: as the job asked, whole, nothing else.
    let names = names_in(&out);
    assert_eq!(names.len(), 5, "4 outputs + manifest.json: {names:?}");
    let mp4 = out.join(names.iter().find(|n| n.ends_with(".mp4")).expect("mp4"));
    let probe = ffprobe(&mp4);
    let video = stream(&probe, "video");
    assert_eq!(
        (video["codec_name"].as_str(), video["width"].as_u64(), video["height"].as_u64()),
        (Some("h264"), Some(640), Some(360))
    );
    assert!((f64_field(&probe["format"], "duration") - 3.0).abs() < 0.1, "{probe}");
    assert_eq!(
        stream(&ffprobe(&out.join(names.iter().find(|n| n.ends_with(".mp3")).expect("mp3"))), "audio")["codec_name"],
        "mp3"
    );
    for mkv in names.iter().filter(|n| n.ends_with(".mkv")) {
        let probe = ffprobe(&out.join(mkv));
        stream(&probe, "audio");
        stream(&probe, "video");
    }

    assert_eq!(server.metric("tessera_jobs{state=\"completed\"}"), 1.0);
    assert_eq!(server.metric("tessera_jobs{state=\"cancelled\"}"), 1.0);
    assert_eq!(server.metric("tessera_queue_depth"), 0.0);
    let encoder = printed_encoder(&server.addr, &job_id);
    assert!(server.metrics().contains(&format!("tessera_encoder_info{{encoder=\"{encoder}\"")));
    // Our log lines are JSON (native libraries may write other lines to stderr), and every
    // line logged for a job carries its id.
    let logs = server.logs();
    let ours: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| l.starts_with('{') && l.ends_with('}'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}")))
        .collect();
    let for_jobs = ["started", "rendered", "completed"];
    let job_lines: Vec<&serde_json::Value> =
        ours.iter().filter(|l| for_jobs.contains(&l["fields"]["message"].as_str().unwrap_or(""))).collect();
    assert!(job_lines.len() >= 3, "{logs}");
    for line in job_lines {
        assert!(line["span"]["job_id"].as_str().is_some_and(|id| id.starts_with("job-")), "{line}");
    }
}

/// The encoder GetRenderJob names for a job.
fn printed_encoder(addr: &str, id: &str) -> String {
    let (ok, printed, err) =
        grpcurl(&["-plaintext", "-d", &format!(r#"{{"id": "{id}"}}"#), addr, "tessera.v1.RenderService/GetRenderJob"]);
    assert!(ok, "{err}");
    json_objects(&printed)[0]["encoder"].as_str().expect("encoder").to_owned()
}

/// Waits until the job has reported some progress (over plaintext gRPC).
fn wait_for_progress(addr: &str, id: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (ok, printed, err) = grpcurl(&[
            "-plaintext",
            "-d",
            &format!(r#"{{"id": "{id}"}}"#),
            addr,
            "tessera.v1.RenderService/GetRenderJob",
        ]);
        assert!(ok, "{err}");
        let job = &json_objects(&printed)[0];
        if job["progress"]["fraction"].as_f64().is_some_and(|f| f > 0.05) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "no progress: {job}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_python_client_over_tls_with_a_bearer_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = call(dir.path(), "call", 2, 2000);
    let (cert, key) = certificate(dir.path());
    let token = "test-token-0123456789";
    let options =
        ServerOptions { bearer_tokens: vec![token.into()], tls: Some((cert.clone(), key)), ..ServerOptions::default() };
    let server = Server::start(&dir.path().join("server"), &options);
    let out = dir.path().join("out");
    let job = dir.path().join("job.json");
    let outputs = serde_json::json!([{"kind": "composite"}, {"kind": "audio_only"}]);
    std::fs::write(&job, job_json("py-1", &archive, &out, (320, 180), outputs).to_string()).expect("job");

    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/grpc_client.py");
    let target = server.addr.replace("127.0.0.1", "localhost");
    let run = Command::new(venv_tool("python"))
        .arg(&client)
        .args([&target, job.to_str().expect("utf-8"), "--token", token, "--cacert", cert.to_str().expect("utf-8")])
        .output()
        .expect("python");
    assert!(run.status.success(), "python client: {}", text(&run));
    let seen: serde_json::Value = serde_json::from_slice(&run.stdout).expect("client JSON");
    assert_eq!(seen["job"]["state"], "JOB_STATE_COMPLETED", "{seen}");
    assert_complete_story(seen["events"].as_array().expect("events"), 3);
    assert_eq!(seen["listed"].as_array().map(Vec::len), Some(1));
    assert_eq!(seen["node"]["maxConcurrentJobs"], 2);
    assert_eq!(seen["invalid"]["code"], "INVALID_ARGUMENT");
    let details = seen["invalid"]["details"].as_str().expect("details");
    assert!(details.contains("sources:") && details.contains("outputs:") && details.contains("storage:"), "{details}");
    assert_eq!(names_in(&out).len(), 4, "{:?}", names_in(&out));

    // grpcurl: TLS is required, and the token for RenderService; health and reflection
    // answer without one.
    let cacert = cert.to_str().expect("utf-8");
    let (ok, _, err) = grpcurl(&["-plaintext", &target, "list"]);
    assert!(!ok, "plaintext refused: {err}");
    let (ok, printed, err) = grpcurl(&["-cacert", cacert, &target, "list"]);
    assert!(ok && printed.contains("tessera.v1.RenderService"), "{err}");
    let (ok, printed, err) = grpcurl(&["-cacert", cacert, &target, "grpc.health.v1.Health/Check"]);
    assert!(ok && printed.contains("SERVING"), "{err}");
    let (ok, _, err) = grpcurl(&["-cacert", cacert, &target, "tessera.v1.RenderService/GetNodeStatus"]);
    assert!(!ok && err.contains("Unauthenticated"), "{err}");
    let wrong = "authorization: Bearer not-the-token-0123456789";
    let (ok, _, err) = grpcurl(&["-cacert", cacert, "-H", wrong, &target, "tessera.v1.RenderService/GetNodeStatus"]);
    assert!(!ok && err.contains("Unauthenticated"), "{err}");
    let auth = format!("authorization: Bearer {token}");

    // A missing archive is refused before the job exists; a broken one fails the job as the
    // caller's fault.
    let grpc = |args: &[&str]| {
        let mut all = vec!["-cacert", cacert, "-H", auth.as_str()];
        all.extend_from_slice(args);
        grpcurl(&all)
    };
    let missing = job_json(
        "py-missing",
        &dir.path().join("nope.zip"),
        &dir.path().join("out2"),
        (320, 180),
        serde_json::json!([{"kind": "composite"}]),
    );
    let (ok, _, err) = grpc(&["-d", &missing.to_string(), &target, "tessera.v1.RenderService/CreateRenderJob"]);
    assert!(
        !ok && err.contains("InvalidArgument") && err.contains("sources[0].raw_archive") && err.contains("nope.zip"),
        "{err}"
    );
    let broken_zip = dir.path().join("broken.zip");
    std::fs::write(&broken_zip, b"PK\x03\x04 this is not really a zip").expect("write");
    let broken = job_json(
        "py-broken",
        &broken_zip,
        &dir.path().join("out2"),
        (320, 180),
        serde_json::json!([{"kind": "composite"}]),
    );
    let (ok, created, err) = grpc(&["-d", &broken.to_string(), &target, "tessera.v1.RenderService/CreateRenderJob"]);
    assert!(ok, "{err}");
    let id = json_objects(&created)[0]["id"].as_str().expect("id").to_owned();
    let (ok, watched, err) =
        grpc(&["-d", &format!(r#"{{"id": "{id}"}}"#), &target, "tessera.v1.RenderService/WatchRenderJob"]);
    assert!(ok, "{err}");
    let events = json_objects(&watched);
    let failed = events.iter().find_map(|e| e.get("failed")).unwrap_or_else(|| panic!("a failed event: {watched}"));
    assert_eq!(failed["cause"], "CAUSE_BAD_INPUT", "{failed}");
    assert!(failed["message"].as_str().is_some_and(|m| m.contains("broken.zip")), "{failed}");
    assert_eq!(events.last().and_then(state_of), Some("JOB_STATE_FAILED"));
}

#[test]
fn a_crash_mid_job_and_a_shutdown_mid_job_still_complete_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = call(dir.path(), "call", 2, 20_000);
    let options = ServerOptions { max_concurrent: 1, shutdown_grace_s: 0, ..ServerOptions::default() };
    let mut server = Server::start(&dir.path().join("server"), &options);
    let rt = runtime();
    let outputs = serde_json::json!([{"kind": "composite"}, {"kind": "composite_audio"}, {"kind": "audio_video"}]);

    for (case, stop) in [("crash", "kill"), ("shutdown", "term")] {
        let out = dir.path().join(case);
        let job = create_request(&job_json(case, &archive, &out, (960, 540), outputs.clone()));
        let id = rt.block_on(async {
            client(&server.addr).await.create_render_job(job).await.expect("create").into_inner().id
        });
        let before = rt.block_on(watch(&server.addr, &id, 0, |e| is_progress_past(e, 0.2)));
        assert!(before.last().is_some_and(|e| is_progress_past(e, 0.2)), "{case}: {before:?}");
        if stop == "kill" {
            server.kill();
        } else {
            let status = server.terminate();
            assert!(status.success(), "a graceful shutdown exits 0: {status:?}\n{}", server.logs());
            assert!(server.logs().contains("queued again"), "{}", server.logs());
        }
        server.restart();
        let after_seq = before.last().map_or(0, |e| e.seq);
        let after = rt.block_on(watch(&server.addr, &id, after_seq, |_| false));
        let states: Vec<i32> = after
            .iter()
            .filter_map(|e| match e.event {
                Some(Event::StateChanged(s)) => Some(s),
                _ => None,
            })
            .collect();
        use pb::JobState::*;
        assert_eq!(states, [Queued, Running, Uploading, Completed].map(|s| s as i32), "{case}: {after:?}");
        assert_eq!(after.first().map(|e| e.seq), Some(after_seq + 1), "{case}: numbering goes on");
        // Watching a finished job from its last event ends at once; from 0 it replays it all.
        let last_seq = after.last().map_or(0, |e| e.seq);
        let rest = rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(10), watch(&server.addr, &id, last_seq, |_| false))
                .await
        });
        assert_eq!(rest.expect("the stream ends").len(), 0, "{case}");
        let replay = rt.block_on(watch(&server.addr, &id, 0, |_| false));
        assert_eq!(replay.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=last_seq).collect::<Vec<_>>(), "{case}");

        let job = rt.block_on(async {
            client(&server.addr)
                .await
                .get_render_job(pb::GetRenderJobRequest { id: id.clone() })
                .await
                .expect("get")
                .into_inner()
        });
        assert_eq!(job.outputs.len(), 4, "{case}: each file once: {:?}", job.outputs);
        let names = names_in(&out);
        assert_eq!(names.len(), 5, "{case}: 4 files + manifest, no copies or partial files: {names:?}");
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest")).expect("json");
        for file in manifest["outputs"].as_array().expect("outputs") {
            let name = file["file"].as_str().expect("file");
            let published =
                job.outputs.iter().find(|o| o.url.ends_with(name)).unwrap_or_else(|| panic!("{name} published"));
            assert_eq!(std::fs::metadata(out.join(name)).expect("file").len(), published.size_bytes, "{name}");
        }
        let mp4 = out.join(names.iter().find(|n| n.ends_with(".mp4")).expect("mp4"));
        assert!((f64_field(&ffprobe(&mp4)["format"], "duration") - 20.0).abs() < 0.1, "{case}: the whole call");
        assert!(!server.data_dir().join("work").join(&id).exists(), "{case}: working files removed");
    }
}

#[test]
fn fifty_jobs_on_two_slots_complete_and_no_event_is_lost() {
    const JOBS: usize = 50;
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = call(dir.path(), "call", 2, 1000);
    let server = Server::start(&dir.path().join("server"), &ServerOptions::default());
    let rt = runtime();
    let received: Received = Arc::default();
    let hook = rt.block_on(webhook_receiver(received.clone()));
    let outputs = serde_json::json!([{"kind": "composite"}, {"kind": "composite_audio"}]);

    let watched: Vec<(String, Vec<pb::RenderJobEvent>)> = rt.block_on(async {
        let mut tasks = Vec::new();
        for n in 0..JOBS {
            let mut json = job_json(
                &format!("load-{n}"),
                &archive,
                &dir.path().join(format!("out-{n}")),
                (160, 90),
                outputs.clone(),
            );
            json["spec"]["webhook"] = serde_json::json!({"url": hook, "signingSecret": SECRET});
            let id = client(&server.addr)
                .await
                .create_render_job(create_request(&json))
                .await
                .expect("create")
                .into_inner()
                .id;
            let addr = server.addr.clone();
            tasks.push(tokio::spawn(async move {
                let events = watch(&addr, &id, 0, |_| false).await;
                (id, events)
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.push(task.await.expect("watch task"));
        }
        all
    });

    let mut busy: Vec<(i64, i32)> = Vec::new();
    for (id, events) in &watched {
        let json: Vec<serde_json::Value> = events.iter().map(|e| serde_json::to_value(e).expect("json")).collect();
        assert_complete_story(&json, 2);
        for e in events {
            match e.event {
                Some(Event::StateChanged(s)) if s == pb::JobState::Running as i32 => busy.push((e.at_unix_ms, 1)),
                Some(Event::StateChanged(s)) if s == pb::JobState::Completed as i32 => busy.push((e.at_unix_ms, -1)),
                _ => {}
            }
        }
        let _ = id;
    }
    busy.sort();
    let most = busy.iter().scan(0, |running, (_, d)| {
        *running += d;
        Some(*running)
    });
    assert!(most.max() <= Some(2), "never more than 2 jobs at once");

    // Every event of every job reached the webhook, signed, as it was on the watch stream.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let expected: usize = watched.iter().map(|(_, events)| events.len()).sum();
    while received.lock().expect("lock").len() < expected && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), expected, "webhook events");
    for (id, events) in &watched {
        for event in events {
            let (body, valid) =
                received.get(&(id.clone(), event.seq)).unwrap_or_else(|| panic!("{id} #{} not delivered", event.seq));
            assert!(valid, "signature of {id} #{}", event.seq);
            // Both through JSON text (serde_json's float parsing is not exact).
            let watched: serde_json::Value =
                serde_json::from_str(&serde_json::to_string(event).expect("json")).expect("json");
            assert_eq!(body, &watched, "the webhook got the watched event");
        }
    }
    rt.block_on(async {
        // The server records a delivery once the receiver has answered: give it a moment.
        let mut api = client(&server.addr).await;
        for (id, events) in &watched {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let job =
                    api.get_render_job(pb::GetRenderJobRequest { id: id.clone() }).await.expect("get").into_inner();
                let status = job.webhook.unwrap_or_default();
                let seen = (status.delivered as usize, status.failed, status.last_event_seq);
                if seen == (events.len(), 0, events.len() as u64) {
                    break;
                }
                assert!(tokio::time::Instant::now() < deadline, "{id}: webhook status {seen:?}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    });
    assert_eq!(server.metric("tessera_jobs{state=\"completed\"}"), JOBS as f64);
    let delivered = server.metric("tessera_webhook_deliveries_total{outcome=\"delivered\"}");
    assert_eq!(delivered, expected as f64);
    assert!(server.metric("tessera_webhook_attempts_total") > delivered, "some deliveries were retried");
}

#[test]
fn an_http_source_is_fetched_and_its_signed_url_never_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = call(dir.path(), "call", 2, 1000);
    let server = Server::start(&dir.path().join("server"), &ServerOptions::default());
    let rt = runtime();
    let base = rt.block_on(archive_server(archive));
    let outputs = serde_json::json!([{"kind": "composite"}]);
    let run = |name: &str, url: String| {
        let mut json = job_json(name, Path::new("/unused"), &dir.path().join(name), (160, 90), outputs.clone());
        json["spec"]["sources"][0]["rawArchive"] = url.into();
        rt.block_on(async {
            let mut api = client(&server.addr).await;
            let id = api.create_render_job(create_request(&json)).await.expect("create").into_inner().id;
            watch(&server.addr, &id, 0, |_| false).await;
            api.get_render_job(pb::GetRenderJobRequest { id }).await.expect("get").into_inner()
        })
    };
    let direct = run("direct", format!("{base}/call.zip?sig=s3cr3t"));
    assert_eq!(direct.state(), pb::JobState::Completed, "{direct:?}");
    assert_eq!(names_in(&dir.path().join("direct")).len(), 2, "composite + manifest");
    let shown = &direct.spec.as_ref().expect("spec").sources[0];
    assert_eq!(shown.kind, Some(pb::source::Kind::RawArchive(format!("{base}/call.zip?(redacted)"))));
    let moved = run("moved", format!("{base}/moved.zip"));
    assert_eq!(moved.state(), pb::JobState::Completed, "a redirect is followed: {moved:?}");
    let missing = run("missing", format!("{base}/missing.zip?sig=s3cr3t"));
    let failure = missing.failure.clone().expect("failure");
    assert_eq!((missing.state(), failure.cause()), (pb::JobState::Failed, pb::failure::Cause::BadInput), "{missing:?}");
    assert!(failure.message.contains("HTTP 404") && failure.code == "source_unavailable", "{failure:?}");
    assert!(
        !format!("{missing:?}{direct:?}").contains("s3cr3t") && !server.logs().contains("s3cr3t"),
        "the signature never shows"
    );
}
