//! Live jobs through the service: `tessera push` of a synth call into a running server gives a
//! composite with every participant in place and every flash and beep at its call time (the
//! live call starts a moment before the push: one offset for all of them), and the RPCs of a
//! live job (PushMedia's errors, pause and resume, stop reasons, auto-stop) behave.

mod support;

use std::time::Duration;

use support::grpc::{client, runtime};
use support::server::{Server, ServerOptions};
use support::*;
use tessera::ingest::sdp::Codec;
use tessera::layout::{Layout, RectF};
use tessera::proto::{self as pb, JobState, push_media_request::Message};
use tessera::synth::plan::BEEP_HZ;
use tessera::synth::{SynthPlan, SynthSpec, synth};

const OUT: (u32, u32) = (640, 360);
const FRAME_MS: f64 = 1000.0 / 30.0;
const SCALE: f64 = 4.0;

fn centre(cell: &RectF) -> (usize, usize) {
    let (x, y) = cell.center();
    ((f64::from(x) / SCALE) as usize, (f64::from(y) / SCALE) as usize)
}

fn cells(count: usize) -> Vec<RectF> {
    let layout = Layout::builtin("grid").expect("grid layout");
    layout.place(&vec![Some((320, 180)); count], OUT.0, OUT.1).into_iter().map(|t| t.cell).collect()
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn near(rgb: [f64; 3], want: [u8; 3]) -> bool {
    rgb.iter().zip(want).all(|(c, w)| (c - f64::from(w)).abs() <= 24.0)
}

#[test]
fn a_pushed_synth_call_is_composed_live_in_place_and_in_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = SynthSpec {
        participants: 2,
        duration_ms: 5000,
        video_codecs: vec![Codec::Vp8, Codec::H264],
        join_stagger_ms: 1500,
        width: 320,
        height: 180,
        ..SynthSpec::default()
    };
    let plan = SynthPlan::new(&spec);
    let input = dir.path().join("call");
    synth(&spec, &input).expect("synth");
    let server = Server::start(&dir.path().join("server"), &ServerOptions::default());
    let size = format!("{}x{}", OUT.0, OUT.1);
    let url = format!("http://{}", server.addr);
    let input_path = input.to_str().expect("utf-8");
    let args = ["push", "--server", &url, "--input-file", input_path, "--size", &size, "--preset", "ultrafast"];
    // A generous latency: the test shares two cores with others, and a late picture would miss
    // its tick.
    let outputs = ["--outputs", "composite,composite_audio,audio_video"];
    let output = tessera(&[&args[..], &outputs, &["--storage-prefix", "pushed", "--latency-ms", "1000"]].concat());
    assert!(output.status.success(), "push failed: {}\n{}", text(&output), server.logs());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.lines().next().is_some_and(|l| l.starts_with("job-")), "the job id first: {stdout}");
    assert!(stdout.contains("composite_audio"), "both composites listed: {stdout}");
    let stored = files_in(&dir.path().join("pushed"));
    let named = |prefix: &'static str| stored.iter().filter(move |f| file_name(f).starts_with(prefix));
    let mp4 = named("composite_").find(|f| file_name(f).ends_with(".mp4")).expect("the composite in the job's storage");
    // Each participant's own file, encoded from what was pushed: its colour, its sound.
    for participant in &plan.participants {
        let who = &participant.participant_id;
        let file = named("individual_")
            .find(|f| file_name(f).contains(who.as_str()) && file_name(f).contains("audio_video"))
            .unwrap_or_else(|| panic!("{who}'s file in {stored:?}"));
        let probe = ffprobe(file);
        assert_eq!(probe["streams"].as_array().map(Vec::len), Some(2), "{who}: video and audio");
        let frames = Frames::decode(file, 80, 45);
        // (A frame may be a flash: two of three will be the colour.)
        let rgbs: Vec<[f64; 3]> = (1..4).map(|q| frames.mean_rgb(frames.count() * q / 4, 40, 22, 4)).collect();
        let shown = rgbs.iter().filter(|rgb| near(**rgb, participant.rgb)).count();
        assert!(shown >= 2, "{who}'s file shows {who}: {rgbs:?}");
        assert!(!decode_audio(file).iter().all(|s| *s == 0.0), "{who}'s file has {who}'s sound");
    }

    // The recording's call time 0 is a little after the live call's: one offset for everything.
    let samples = decode_audio(mp4);
    let (first, who) = plan
        .participants
        .iter()
        .flat_map(|p| p.flashes_ms.iter().map(move |&f| (f, p)))
        .min_by_key(|(f, _)| *f)
        .expect("a beep");
    let heard = beep_onset_ms(&samples, BEEP_HZ, first as f64 - 100.0, first as f64 + 700.0).expect("the first beep");
    let offset_ms = heard - first as f64;
    eprintln!("{} beeps first at {first} ms, heard at {heard:.1} ms: offset {offset_ms:.1} ms", who.participant_id);
    assert!((0.0..=500.0).contains(&offset_ms), "the live call started {offset_ms:.1} ms before the push");
    let shifted = |times: &[u64]| times.iter().map(|&t| (t as f64 + offset_ms).round() as u64).collect::<Vec<_>>();

    let frames = Frames::decode(mp4, (f64::from(OUT.0) / SCALE) as usize, (f64::from(OUT.1) / SCALE) as usize);
    let frame_at = |t_ms: f64| (t_ms / FRAME_MS).round() as usize;
    let p = &plan.participants;
    let alone = frames.mean_rgb(frame_at(offset_ms + 800.0), 80, 45, 2);
    assert!(near(alone, p[0].rgb), "{} alone fills the canvas: {alone:?}", p[0].participant_id);
    let two = cells(2);
    for (participant, cell) in p.iter().zip(&two) {
        let got = frames.mean_rgb(frame_at(offset_ms + 2600.0), centre(cell).0, centre(cell).1, 2);
        assert!(near(got, participant.rgb), "{} in its cell: {got:?}", participant.participant_id);
    }
    for (participant, cell) in p.iter().zip(&two) {
        let who = &participant.participant_id;
        // Flashes after both joined, where the two-tile grid stands.
        let flashes: Vec<u64> = participant.flashes_ms.iter().copied().filter(|&f| f >= 2000).collect();
        for (&flash, &expected) in flashes.iter().zip(&shifted(&flashes)) {
            let onset = (frame_at(expected as f64 - 300.0)..frame_at(expected as f64 + 300.0))
                .find(|&i| frames.mean_rgb(i, centre(cell).0, centre(cell).1, 1).iter().all(|c| *c > 225.0))
                .unwrap_or_else(|| panic!("{who}: no flash near {expected} ms"));
            let onset_ms = onset as f64 * FRAME_MS;
            eprintln!("{who} flash at {flash} ms (+offset {expected} ms) shows at {onset_ms:.1} ms");
            assert!((onset_ms - expected as f64).abs() <= FRAME_MS + 10.0, "{who}: flash at {onset_ms:.1} ms");
        }
        assert_beeps_on_time(&samples, BEEP_HZ, who, &shifted(&participant.flashes_ms), 20.0);
    }
}

fn live_job(idle_timeout_s: u32) -> serde_json::Value {
    serde_json::json!({
        "spec": {
            "sources": [{"live": {"latencyMs": 200, "idleTimeoutS": idle_timeout_s}}],
            "video": {"width": 320, "height": 180, "preset": "ultrafast"},
            "outputs": [{"kind": "composite"}],
            "storage": {"type": "local", "pathPrefix": "rpc"}
        }
    })
}

fn hello(job_id: &str, kind: pb::PushedTrackKind) -> pb::PushMediaRequest {
    let hello = pb::PushHello {
        job_id: job_id.into(),
        participant_id: "ann".into(),
        display_name: "Ann".into(),
        kind: kind as i32,
        ..Default::default()
    };
    pb::PushMediaRequest { message: Some(Message::Hello(hello)) }
}

fn grey_frame(capture_time_us: i64, y_len: usize) -> pb::PushMediaRequest {
    let frame = pb::PushedVideoFrame {
        format: pb::PixelFormat::I420 as i32,
        width: 64,
        height: 36,
        planes: vec![vec![128; y_len], vec![128; 32 * 18], vec![128; 32 * 18]],
        strides: vec![64, 32, 32],
        capture_time_us,
        ..Default::default()
    };
    pb::PushMediaRequest { message: Some(Message::Video(frame)) }
}

#[test]
fn live_job_rpcs_refuse_bad_media_pause_resume_and_stop_by_themselves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("server"), &ServerOptions::default());
    let rt = runtime();
    rt.block_on(async {
        let mut c = client(&server.addr).await;
        c = c.max_encoding_message_size(tessera::api::MAX_MESSAGE_BYTES);
        let job = c.create_render_job(grpc::create_request(&live_job(1))).await.expect("create").into_inner();
        let id = job.id.clone();
        let state = |job: &pb::RenderJob| job.state();
        let mut running = job;
        for _ in 0..200 {
            running = c.get_render_job(pb::GetRenderJobRequest { id: id.clone() }).await.expect("get").into_inner();
            if state(&running) == JobState::Running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(state(&running), JobState::Running);

        // Unknown job, no hello, a malformed frame: precise errors; the job carries on.
        let pusher = c.clone();
        let push = |requests: Vec<pb::PushMediaRequest>| {
            let mut c = pusher.clone();
            async move { c.push_media(tokio_stream::iter(requests)).await }
        };
        let unknown = push(vec![hello("job-nope", pb::PushedTrackKind::Camera)]).await.expect_err("unknown job");
        assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
        let no_hello = push(vec![grey_frame(0, 64 * 36)]).await.expect_err("no hello");
        assert_eq!(no_hello.code(), tonic::Code::InvalidArgument, "{no_hello:?}");
        let short = push(vec![hello(&id, pb::PushedTrackKind::Camera), grey_frame(0, 100)]).await.expect_err("short");
        assert_eq!(short.code(), tonic::Code::InvalidArgument, "{short:?}");
        assert!(short.message().contains("planes[0]"), "names the plane: {}", short.message());
        let wrong = push(vec![hello(&id, pb::PushedTrackKind::Microphone), grey_frame(0, 64 * 36)]).await;
        assert_eq!(wrong.expect_err("video on audio").code(), tonic::Code::InvalidArgument);

        // Pause and resume are states of the job.
        let paused = c.pause_render_job(pb::PauseRenderJobRequest { id: id.clone() }).await.expect("pause");
        assert_eq!(paused.into_inner().state(), JobState::Paused);
        let again = c.pause_render_job(pb::PauseRenderJobRequest { id: id.clone() }).await.expect_err("twice");
        assert_eq!(again.code(), tonic::Code::FailedPrecondition);
        let resumed = c.resume_render_job(pb::ResumeRenderJobRequest { id: id.clone() }).await.expect("resume");
        assert_eq!(resumed.into_inner().state(), JobState::Running);

        // A sender for a second, then nobody: the job stops by itself (idle timeout 1 s).
        let frames: Vec<pb::PushMediaRequest> = std::iter::once(hello(&id, pb::PushedTrackKind::Camera))
            .chain((0..30).map(|i| grey_frame(i * 33_333, 64 * 36)))
            .collect();
        let paced = tokio_stream::StreamExt::throttle(tokio_stream::iter(frames), Duration::from_millis(33));
        let delivered = c.push_media(paced).await.expect("a good sender").into_inner();
        assert_eq!(delivered.frames, 30);
        let mut done = running;
        for _ in 0..400 {
            done = c.get_render_job(pb::GetRenderJobRequest { id: id.clone() }).await.expect("get").into_inner();
            if state(&done) == JobState::Completed {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(state(&done), JobState::Completed, "{done:?}");
        assert_eq!(done.stop_reason(), pb::JobReason::AllPeersLeft);
        assert_eq!(done.start_reason(), pb::JobReason::ApiCall);
        let late = push(vec![hello(&id, pb::PushedTrackKind::Camera)]).await.expect_err("finished job");
        assert_eq!(late.code(), tonic::Code::FailedPrecondition, "{late:?}");
        let stop = c.stop_render_job(pb::StopRenderJobRequest { id: id.clone() }).await.expect_err("stopped already");
        assert_eq!(stop.code(), tonic::Code::FailedPrecondition);

        // A job stopped by the API says so.
        let job = c.create_render_job(grpc::create_request(&live_job(0))).await.expect("create").into_inner();
        let mut stopped = None;
        for _ in 0..400 {
            match c.stop_render_job(pb::StopRenderJobRequest { id: job.id.clone() }).await {
                Ok(_) => {
                    stopped = Some(());
                    break;
                }
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => panic!("stop: {status:?}"),
            }
        }
        assert!(stopped.is_some(), "the job started");
        for _ in 0..400 {
            let now = c.get_render_job(pb::GetRenderJobRequest { id: job.id.clone() }).await.expect("get").into_inner();
            if state(&now) == JobState::Completed {
                assert_eq!(now.stop_reason(), pb::JobReason::ApiCall);
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the stopped job did not complete");
    });
}

#[test]
fn a_live_job_at_shutdown_stops_and_delivers_what_it_composed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(&dir.path().join("server"), &ServerOptions::default());
    let rt = runtime();
    let id = rt.block_on(async {
        let mut c = client(&server.addr).await;
        c = c.max_encoding_message_size(tessera::api::MAX_MESSAGE_BYTES);
        let job = c.create_render_job(grpc::create_request(&live_job(0))).await.expect("create").into_inner();
        // A second of pictures, held by flow control until the call's clock starts.
        let frames: Vec<pb::PushMediaRequest> = std::iter::once(hello(&job.id, pb::PushedTrackKind::Camera))
            .chain((0..30).map(|i| grey_frame(i * 33_333, 64 * 36)))
            .collect();
        let paced = || tokio_stream::StreamExt::throttle(tokio_stream::iter(frames.clone()), Duration::from_millis(33));
        let mut pushed = None;
        for _ in 0..400 {
            match c.push_media(paced()).await {
                Ok(delivered) => {
                    pushed = Some(delivered.into_inner());
                    break;
                }
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(status) => panic!("push: {status:?}"),
            }
        }
        assert_eq!(pushed.expect("the job started").frames, 30);
        // The call goes on a while after the sender left.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        job.id
    });
    // The node shuts down while the call goes on: the call stops, its files are delivered.
    assert!(server.terminate().success(), "{}", server.logs());
    server.restart();
    rt.block_on(async {
        let mut c = client(&server.addr).await;
        let done = c.get_render_job(pb::GetRenderJobRequest { id: id.clone() }).await.expect("get").into_inner();
        assert_eq!(done.state(), JobState::Completed, "{done:?}\n{}", server.logs());
        assert_eq!(done.stop_reason(), pb::JobReason::NodeShutdown);
        let composite = done.outputs.iter().find(|o| o.kind == "composite").expect("the composite delivered");
        assert!(composite.duration_ms >= 1400, "what was composed is kept: {composite:?}\n{}", server.logs());
    });
}
