//! A render that stops making progress never holds its job slot for good: the watchdog fails it
//! (`stalled`) after `jobs.stall_timeout_s`, a cancel ends it, and SIGTERM still exits. Its
//! partial files and working directory are removed. No input stalls a render (an encoder that
//! fails ends it with its error), so the stall is made by the encoder's test hook.

mod support;

use std::path::{Path, PathBuf};

use support::grpc::*;
use support::server::*;
use tessera::proto::{self as pb, render_job_event::Event};
use tessera::synth::{SynthSpec, synth};

fn call(dir: &Path) -> PathBuf {
    let path = dir.join("call.zip");
    let spec = SynthSpec { participants: 2, duration_ms: 4000, width: 160, height: 90, ..SynthSpec::default() };
    synth(&spec, &path).expect("synth");
    path
}

fn stalling_server(dir: &Path, stall_timeout_s: u64) -> Server {
    let options = ServerOptions {
        max_concurrent: 1,
        shutdown_grace_s: 0,
        stall_timeout_s: Some(stall_timeout_s),
        env: vec![("TESSERA_TEST_STALL_ENCODER_AFTER_FRAMES".into(), "5".into())],
        ..ServerOptions::default()
    };
    Server::start(dir, &options)
}

fn submit(rt: &tokio::runtime::Runtime, server: &Server, name: &str, archive: &Path, out: &Path) -> String {
    let outputs = serde_json::json!([{"kind": "composite"}]);
    let job = create_request(&job_json(name, archive, out, (320, 180), outputs));
    rt.block_on(async { client(&server.addr).await.create_render_job(job).await.expect("create").into_inner().id })
}

fn state(event: &pb::RenderJobEvent) -> Option<pb::JobState> {
    match event.event {
        Some(Event::StateChanged(s)) => pb::JobState::try_from(s).ok(),
        _ => None,
    }
}

fn is_final(event: &pb::RenderJobEvent) -> bool {
    matches!(state(event), Some(pb::JobState::Completed | pb::JobState::Failed | pb::JobState::Cancelled))
}

fn final_state(events: &[pb::RenderJobEvent]) -> Option<pb::JobState> {
    events.iter().filter_map(state).next_back()
}

fn failure(rt: &tokio::runtime::Runtime, server: &Server, id: &str) -> pb::Failure {
    let job = rt.block_on(async {
        client(&server.addr).await.get_render_job(pb::GetRenderJobRequest { id: id.into() }).await.expect("get")
    });
    job.into_inner().failure.expect("a failure record")
}

#[test]
fn a_stalled_render_fails_frees_its_slot_and_can_be_cancelled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = call(dir.path());
    let rt = runtime();

    // The watchdog fails a stalled job, and the next one gets the only slot.
    let server = stalling_server(&dir.path().join("server-a"), 2);
    for name in ["first", "second"] {
        let out = dir.path().join(name);
        let id = submit(&rt, &server, name, &archive, &out);
        let events = rt.block_on(watch(&server.addr, &id, 0, is_final));
        assert_eq!(final_state(&events), Some(pb::JobState::Failed), "{name}: {events:?}\n{}", server.logs());
        let failure = failure(&rt, &server, &id);
        assert_eq!(failure.code, "stalled", "{name}: {failure:?}");
        assert!(failure.message.contains("stalled") && failure.message.contains("encoding"), "{failure:?}");
        assert!(names_in(&out).is_empty(), "{name}: nothing published: {:?}", names_in(&out));
        assert!(!server.data_dir().join("work").join(&id).exists(), "{name}: working files removed");
    }
    drop(server);

    // With a long stall timeout, a cancel ends the stalled job, and SIGTERM exits.
    let mut server = stalling_server(&dir.path().join("server-b"), 3600);
    let out = dir.path().join("cancelled");
    let id = submit(&rt, &server, "cancelled", &archive, &out);
    rt.block_on(watch(&server.addr, &id, 0, |e| matches!(&e.event, Some(Event::Progress(_)))));
    rt.block_on(async {
        client(&server.addr)
            .await
            .cancel_render_job(pb::CancelRenderJobRequest { id: id.clone() })
            .await
            .expect("cancel")
    });
    let events = rt.block_on(watch(&server.addr, &id, 0, is_final));
    assert_eq!(final_state(&events), Some(pb::JobState::Cancelled), "{events:?}\n{}", server.logs());
    assert!(names_in(&out).is_empty(), "nothing published: {:?}", names_in(&out));
    assert!(!server.data_dir().join("work").join(&id).exists(), "working files removed");

    let next = submit(&rt, &server, "next", &archive, &dir.path().join("next"));
    rt.block_on(watch(&server.addr, &next, 0, |e| matches!(&e.event, Some(Event::Progress(_)))));
    let status = server.terminate();
    assert!(status.success(), "SIGTERM exits with a stalled job running: {status:?}\n{}", server.logs());
    assert!(server.logs().contains("queued again"), "{}", server.logs());
}
