//! Each job renders in a child process of the server: a crash inside it (here a SIGABRT sent
//! to it mid-render, as an assertion in GStreamer or a GPU driver raises; a SIGSEGV sent by
//! `kill` would not do, Rust's stack-overflow handler lets the first one pass) fails that job
//! with the signal named, and the server goes on serving the next job.

mod support;

use std::time::{Duration, Instant};

use support::grpc::{self, client, runtime, small_composite_job, wait_final};
use support::server::{Server, ServerOptions, render_processes};
use tessera::proto::{self as pb, JobState};
use tessera::synth::{SynthSpec, synth};

#[test]
fn a_crash_in_a_render_fails_its_job_and_the_server_serves_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = dir.path().join("long");
    synth(&SynthSpec { participants: 2, duration_ms: 60_000, width: 160, height: 90, ..SynthSpec::default() }, &long)
        .expect("synth");
    let short = dir.path().join("short");
    synth(&SynthSpec { participants: 2, duration_ms: 1000, width: 160, height: 90, ..SynthSpec::default() }, &short)
        .expect("synth");
    let server = Server::start(&dir.path().join("server"), &ServerOptions::default());
    let rt = runtime();
    rt.block_on(async {
        let mut c = client(&server.addr).await;
        let crashing =
            c.create_render_job(grpc::create_request(&small_composite_job(&long, "crash"))).await.expect("create");
        let id = crashing.into_inner().id;
        // Its render process, once it renders.
        let deadline = Instant::now() + Duration::from_secs(60);
        let worker = loop {
            if let Some(&pid) = render_processes(server.pid()).first() {
                break pid;
            }
            assert!(Instant::now() < deadline, "no render process: {}", server.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = std::process::Command::new("kill").args(["-ABRT", &worker.to_string()]).status().expect("kill");
        assert!(status.success());
        let failed = wait_final(&mut c, &id).await;
        assert_eq!(failed.state(), JobState::Failed, "{failed:?}\n{}", server.logs());
        let failure = failed.failure.expect("a failure");
        assert_eq!(failure.cause(), pb::failure::Cause::Internal);
        assert!(failure.message.contains("SIGABRT"), "the signal named: {}", failure.message);

        // The server is still there and renders the next job.
        let next =
            c.create_render_job(grpc::create_request(&small_composite_job(&short, "after"))).await.expect("create");
        let done = wait_final(&mut c, &next.into_inner().id).await;
        assert_eq!(done.state(), JobState::Completed, "{done:?}\n{}", server.logs());
    });
}
