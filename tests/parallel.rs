//! The composite video rendered in slices (`--parallelism`, a job's `parallelism`): a synth
//! call with late joiners rendered by four slice workers, one of which dies halfway through
//! (SIGABRT, by the test hook) and is rendered again, has every flash on the frame and every
//! beep within 1 ms of the single-worker render, the same number of frames and the same
//! duration; its audio is the same samples. CI renders a one-minute call; the ten
//! minutes is `PARALLEL_CALL_S=600` (in `scripts/long-runs.sh`). A job asking for parallelism
//! through the service (each slice a grandchild of the server: its job's render process starts
//! them) completes with its progress growing, and leaves no slice process when
//! cancelled; `tessera render` renders a job's slices the same way.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::grpc::{self, client, runtime, small_composite_job, wait_final};
use support::server::{Server, ServerOptions, render_processes};
use support::*;
use tessera::layout::Layout;
use tessera::proto::{self as pb, JobState, render_job_event::Event};
use tessera::synth::plan::BEEP_HZ;
use tessera::synth::{SynthPlan, SynthSpec, synth};

const FPS: u32 = 15;
const FRAME_MS: f64 = 1000.0 / FPS as f64;
const OUT: (u32, u32) = (160, 90);
const CAMERA: (u32, u32) = (64, 36);

fn call_ms() -> u64 {
    std::env::var("PARALLEL_CALL_S").ok().and_then(|s| s.parse::<u64>().ok()).map_or(60_000, |s| s * 1000)
}

fn spec(duration_ms: u64) -> SynthSpec {
    SynthSpec {
        participants: 3,
        duration_ms,
        width: CAMERA.0,
        height: CAMERA.1,
        fps: FPS,
        // The second and third join later: a slice must know who came when.
        join_stagger_ms: 4000,
        ..SynthSpec::default()
    }
}

/// Renders `input` into `out` with `extra` flags (and `env`); returns the MP4 and stderr.
fn render(input: &Path, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> (PathBuf, String) {
    let size = format!("{}x{}", OUT.0, OUT.1);
    let fps = FPS.to_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .args(["raw", "composite", "--input-file"])
        .arg(input)
        .arg("--output")
        .arg(out)
        .args(["--size", &size, "--fps", &fps, "--preset", "ultrafast"])
        .args(extra)
        .env("WGPU_BACKEND", std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "vulkan".into()))
        .env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()));
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run tessera");
    assert!(output.status.success(), "render failed: {}", text(&output));
    let mp4 = files_in(out).into_iter().find(|f| f.extension().is_some_and(|e| e == "mp4")).expect("an mp4");
    (mp4, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Frame count and duration of each stream, as ffprobe reads them.
fn streams(mp4: &Path) -> Vec<(String, u64, f64)> {
    let probe = ffprobe(mp4);
    probe["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| {
            let frames = s["nb_frames"].as_str().and_then(|n| n.parse().ok()).expect("nb_frames");
            (s["codec_type"].as_str().expect("type").to_owned(), frames, f64_field(s, "duration"))
        })
        .collect()
}

#[test]
fn a_call_rendered_in_slices_has_the_single_renders_flashes_beeps_and_length() {
    require_tool("ffprobe");
    let dir = tempfile::tempdir().expect("tempdir");
    let duration_ms = call_ms();
    let input = dir.path().join("call.zip");
    synth(&spec(duration_ms), &input).expect("synth");
    let (single, _) = render(&input, &dir.path().join("single"), &[], &[]);
    let (sliced, logs) =
        render(&input, &dir.path().join("sliced"), &["--parallelism", "4"], &[("TESSERA_TEST_ABORT_SLICE", "2")]);
    assert!(logs.contains("a slice's worker died: rendering it again"), "slice 2 died and ran again:\n{logs}");
    assert!(logs.contains("SIGABRT"), "{logs}");
    // The slices' frames summed: only all of them together make the whole.
    let whole = format!("progress: composite 100% ({0:.1} / {0:.1} s of media)", duration_ms as f64 / 1000.0);
    assert!(logs.contains(&whole), "{logs}");

    let (a, b) = (streams(&single), streams(&sliced));
    eprintln!("single: {a:?}\nsliced: {b:?}");
    assert_eq!(a, b, "the same streams, frames and durations");
    let frames = a.iter().find(|s| s.0 == "video").expect("video").1;
    assert_eq!(frames, duration_ms * u64::from(FPS) / 1000, "every frame of the call");

    let audio = (decode_audio(&single), decode_audio(&sliced));
    assert_eq!(audio.0.len(), audio.1.len());
    assert!(audio.0 == audio.1, "the mix is encoded once, as a single render encodes it: the same samples");

    let plan = SynthPlan::new(&spec(duration_ms));
    let layout = Layout::builtin("grid").expect("grid");
    let pictures: Vec<_> = plan.participants.iter().map(|_| Some(CAMERA)).collect();
    let cells: Vec<_> = layout.place(&pictures, OUT.0, OUT.1).into_iter().map(|t| t.cell).collect();
    let video = (
        Frames::decode(&single, OUT.0 as usize, OUT.1 as usize),
        Frames::decode(&sliced, OUT.0 as usize, OUT.1 as usize),
    );
    assert_eq!(video.0.count(), video.1.count());
    let (mut checked, mut worst_beep_ms) = (0, 0.0_f64);
    for (p, cell) in plan.participants.iter().zip(&cells) {
        let (x, y) = cell.center();
        // Flashes once everyone is on stage (the grid's cells are then these).
        let last_join = plan.participants.iter().map(|p| p.join_ms).max().unwrap_or(0);
        for &flash_ms in p.flashes_ms.iter().filter(|f| **f > last_join + 1000 && **f + 500 < duration_ms) {
            let onset = |frames: &Frames| {
                let first = ((flash_ms as f64 - 300.0) / FRAME_MS) as usize;
                (first..first + 12)
                    .find(|&i| frames.mean_rgb(i, x as usize, y as usize, 1).iter().all(|c| *c > 225.0))
                    .unwrap_or_else(|| panic!("{}: no flash near {flash_ms} ms", p.participant_id))
            };
            let (one, many) = (onset(&video.0), onset(&video.1));
            assert!(one.abs_diff(many) <= 1, "{}: flash {flash_ms} ms on frame {one} vs {many}", p.participant_id);
            assert_eq!(one, many, "{}: flash {flash_ms} ms on the same frame", p.participant_id);
            let beep = |samples: &[f32]| {
                beep_onset_ms(samples, BEEP_HZ, flash_ms as f64 - 240.0, flash_ms as f64 + 240.0)
                    .unwrap_or_else(|| panic!("{}: no beep near {flash_ms} ms", p.participant_id))
            };
            let (heard_one, heard_many) = (beep(&audio.0), beep(&audio.1));
            assert!((heard_one - heard_many).abs() <= 1.0, "beep {flash_ms}: {heard_one} vs {heard_many} ms");
            worst_beep_ms = worst_beep_ms.max((heard_one - heard_many).abs());
            checked += 1;
        }
    }
    assert!(checked as u64 >= duration_ms / 10_000, "checked only {checked} flashes");
    eprintln!("{checked} flashes on the same frame, beeps at most {worst_beep_ms:.3} ms apart");
}

/// A server, and a job asking it for a composite of a synthetic call of `duration_ms` in 3
/// slices, its outputs under `dir/{prefix}`.
fn parallel_job(dir: &Path, duration_ms: u64, prefix: &str) -> (Server, serde_json::Value) {
    let input = dir.join("call");
    synth(&SynthSpec { participants: 2, duration_ms, width: 64, height: 36, ..SynthSpec::default() }, &input)
        .expect("synth");
    let server = Server::start(&dir.join("server"), &ServerOptions::default());
    let mut job = small_composite_job(&input, prefix);
    job["spec"]["parallelism"] = serde_json::json!(3);
    (server, job)
}

#[test]
fn a_job_asking_for_parallelism_renders_its_slices_in_render_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, job) = parallel_job(dir.path(), 12_000, "parallel");
    let rt = runtime();
    rt.block_on(async {
        let mut c = client(&server.addr).await;
        let id = c.create_render_job(grpc::create_request(&job)).await.expect("create").into_inner().id;
        let done = wait_final(&mut c, &id).await;
        assert_eq!(done.state(), JobState::Completed, "{done:?}\n{}", server.logs());
        let events = grpc::watch(
            &server.addr,
            &id,
            0,
            |e| matches!(e.event, Some(Event::StateChanged(s)) if s == JobState::Completed as i32),
        )
        .await;
        let composite: Vec<i64> = events
            .iter()
            .filter_map(|e| match &e.event {
                Some(Event::Progress(p)) if p.phase == "composite" => Some(p.media_time_done_ms),
                _ => None,
            })
            .collect();
        // The slices' frames summed (stored at most once a second): it only grows.
        assert!(!composite.is_empty() && composite.windows(2).all(|w| w[0] <= w[1]), "{composite:?}");
    });
    // The job's render process, and one per slice.
    let started = server.logs().matches("render process started").count();
    assert_eq!(started, 4, "{}", server.logs());
    let mp4 = files_in(&dir.path().join("parallel")).into_iter().find(|f| f.extension().is_some_and(|e| e == "mp4"));
    let mp4 = mp4.expect("the composite");
    assert_eq!(streams(&mp4).iter().map(|s| (s.0.as_str(), s.1)).collect::<Vec<_>>()[0], ("video", 120));
}

#[test]
fn a_cancelled_parallel_job_leaves_no_slice_process_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, job) = parallel_job(dir.path(), 120_000, "cancelled");
    let rt = runtime();
    rt.block_on(async {
        let mut c = client(&server.addr).await;
        let id = c.create_render_job(grpc::create_request(&job)).await.expect("create").into_inner().id;
        // The job's render process, then its three slice workers.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let slices = loop {
            let slices: Vec<u32> = render_processes(server.pid()).into_iter().flat_map(render_processes).collect();
            if slices.len() == 3 {
                break slices;
            }
            assert!(std::time::Instant::now() < deadline, "no slice workers: {}", server.logs());
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        c.cancel_render_job(pb::CancelRenderJobRequest { id: id.clone() }).await.expect("cancel");
        let ended = wait_final(&mut c, &id).await;
        assert_eq!(ended.state(), JobState::Cancelled, "{ended:?}\n{}", server.logs());
        let alive: Vec<&u32> = slices.iter().filter(|pid| Path::new(&format!("/proc/{pid}")).exists()).collect();
        assert!(alive.is_empty(), "slice workers still running: {alive:?}\n{}", server.logs());
    });
    assert!(!server.logs().contains("rendering it again"), "a cancelled slice is not retried: {}", server.logs());
}

#[test]
fn tessera_render_honours_a_jobs_parallelism() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    synth(&SynthSpec { participants: 2, duration_ms: 8000, width: 64, height: 36, ..SynthSpec::default() }, &input)
        .expect("synth");
    let out = dir.path().join("out");
    let mut job = small_composite_job(&input, &out.display().to_string());
    job["spec"]["parallelism"] = serde_json::json!(2);
    let file = dir.path().join("job.json");
    std::fs::write(&file, job.to_string()).expect("job file");
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("render")
        .arg(&file)
        .env("TESSERA_TEST_ABORT_SLICE", "1")
        .env("WGPU_BACKEND", std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "vulkan".into()))
        .env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()))
        .output()
        .expect("run tessera");
    assert!(output.status.success(), "{}", text(&output));
    // Slice 1's worker aborted and was run again: the job was rendered in slices.
    assert!(text(&output).contains("a slice's worker died: rendering it again"), "{}", text(&output));
    let mp4 = files_in(&out).into_iter().find(|f| f.extension().is_some_and(|e| e == "mp4")).expect("the composite");
    assert_eq!(streams(&mp4)[0].0, "video");
    assert_eq!(streams(&mp4)[0].1, 80, "8 s at 10 fps");
}

#[test]
fn a_job_in_slices_takes_its_nodes_slots_while_it_renders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    synth(&SynthSpec { participants: 2, duration_ms: 30_000, width: 64, height: 36, ..SynthSpec::default() }, &input)
        .expect("synth");
    let short = dir.path().join("short");
    synth(&SynthSpec { participants: 2, duration_ms: 1000, width: 64, height: 36, ..SynthSpec::default() }, &short)
        .expect("synth");
    // Two slots: the job in two slices takes both, the next job waits for them.
    let server = Server::start(&dir.path().join("server"), &ServerOptions { max_concurrent: 2, ..Default::default() });
    let mut sliced = small_composite_job(&input, "sliced");
    sliced["spec"]["parallelism"] = serde_json::json!(2);
    let rt = runtime();
    rt.block_on(async {
        let mut c = client(&server.addr).await;
        let first = c.create_render_job(grpc::create_request(&sliced)).await.expect("create").into_inner().id;
        let next = small_composite_job(&short, "next");
        let second = c.create_render_job(grpc::create_request(&next)).await.expect("create").into_inner().id;
        let (a, b) = (wait_final(&mut c, &first).await, wait_final(&mut c, &second).await);
        assert_eq!((a.state(), b.state()), (JobState::Completed, JobState::Completed), "{}", server.logs());
        assert!(
            b.started_at_unix_ms >= a.stopped_at_unix_ms,
            "the next job started at {} while the job in slices ran until {}",
            b.started_at_unix_ms,
            a.stopped_at_unix_ms
        );
    });
}
