//! End to end: a synthetic call in Stream's raw format -> `tessera raw composite` -> an MP4
//! checked with ffprobe and measured with ffmpeg: streams, size, fps, duration, each
//! participant's colour in its grid cell, late joiners, and every flash and beep on time.

mod support;

use std::path::Path;

use support::*;
use tessera::ingest::sdp::Codec;
use tessera::layout::{Layout, RectF};
use tessera::synth::plan::BEEP_HZ;
use tessera::synth::{SynthPlan, SynthSpec, synth};

const FPS: f64 = 30.0;
const FRAME_MS: f64 = 1000.0 / FPS;
/// Decoded frames are scaled down by this for analysis.
const SCALE: f64 = 4.0;

fn cells(count: usize, width: u32, height: u32) -> Vec<RectF> {
    let layout = Layout::builtin("grid").expect("grid layout");
    layout.place(&vec![Some((640, 360)); count], width, height).into_iter().map(|t| t.cell).collect()
}

fn centre(cell: &RectF) -> (usize, usize) {
    let (x, y) = cell.center();
    ((f64::from(x) / SCALE) as usize, (f64::from(y) / SCALE) as usize)
}

fn assert_colour(frames: &Frames, index: usize, at: (usize, usize), expected: [u8; 3], what: &str) {
    let got = frames.mean_rgb(index, at.0, at.1, 3);
    for c in 0..3 {
        assert!(
            (got[c] - f64::from(expected[c])).abs() <= 16.0,
            "{what}: frame {index} at {at:?} is {got:?}, expected {expected:?}"
        );
    }
}

fn frame_at(t_ms: f64) -> usize {
    (t_ms / FRAME_MS).round() as usize
}

fn render(input_flag: &str, input: &Path, out: &Path, extra: &[&str]) -> std::path::PathBuf {
    let output = composite(input_flag, input, out, extra);
    assert!(output.status.success(), "render failed: {}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("real time"), "one-line summary expected: {stdout}");
    let files = files_in(out);
    let names: Vec<String> =
        files.iter().filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
    assert_eq!(names.len(), 2, "the composite and manifest.json are written: {names:?}");
    assert!(names.contains(&"manifest.json".to_owned()), "{names:?}");
    files.into_iter().find(|f| f.extension().is_some_and(|e| e == "mp4")).expect("mp4")
}

#[test]
fn four_participants_grid_is_in_place_and_in_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = SynthSpec {
        participants: 4,
        duration_ms: 6000,
        video_codecs: vec![Codec::Vp8, Codec::H264, Codec::Vp9, Codec::Vp8],
        join_stagger_ms: 300,
        ..SynthSpec::default()
    };
    let plan = SynthPlan::new(&spec);
    let input = dir.path().join("call");
    synth(&spec, &input).expect("synth");
    let out = dir.path().join("out");
    let mp4 = render("--input-dir", &input, &out, &[]);
    assert_eq!(
        mp4.file_name().and_then(|n| n.to_str()),
        Some(format!("composite_default_{}_{}.mp4", plan.call_id, spec.call_start_unix_ms).as_str())
    );

    // Streams, codecs, size, fps, duration.
    let probe = ffprobe(&mp4);
    let video = stream(&probe, "video");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!((video["width"].as_u64(), video["height"].as_u64()), (Some(1920), Some(1080)));
    assert_eq!(video["r_frame_rate"], "30/1");
    let audio = stream(&probe, "audio");
    assert_eq!(audio["codec_name"], "aac");
    assert_eq!(audio["sample_rate"], "48000");
    assert_eq!(audio["channels"].as_u64(), Some(2));
    let duration_s = f64_field(&probe["format"], "duration");
    assert!((duration_s * 1000.0 - 6000.0).abs() <= FRAME_MS, "duration {duration_s} s, call 6 s");
    assert!((f64_field(video, "duration") * 1000.0 - 6000.0).abs() <= FRAME_MS);

    let frames = Frames::decode(&mp4, 480, 270);
    assert_eq!(frames.count(), 180);

    // Late joiners appear when they join: alice alone, then alice and bob, then all four.
    let p = &plan.participants;
    assert_colour(&frames, frame_at(150.0), centre(&cells(1, 1920, 1080)[0]), p[0].rgb, "alice alone");
    let two = cells(2, 1920, 1080);
    assert_colour(&frames, frame_at(450.0), centre(&two[0]), p[0].rgb, "alice of two");
    assert_colour(&frames, frame_at(450.0), centre(&two[1]), p[1].rgb, "bob of two");
    let four = cells(4, 1920, 1080);
    for (participant, cell) in p.iter().zip(&four) {
        assert_colour(&frames, frame_at(2800.0), centre(cell), participant.rgb, &participant.participant_id);
    }

    // Every flash on time, within one frame.
    let mut checked = 0;
    for (participant, cell) in p.iter().zip(&four) {
        let who = &participant.participant_id;
        checked += assert_flashes_on_time(&frames, who, &participant.flashes_ms, centre(cell), FRAME_MS);
    }
    assert!(checked >= 8, "checked {checked} flashes");

    // Every beep on time, within one frame.
    let samples = decode_audio(&mp4);
    assert!((samples.len() as f64 / 48.0 - 6000.0).abs() <= FRAME_MS, "audio is {} samples", samples.len());
    for participant in p {
        assert_beeps_on_time(&samples, BEEP_HZ, &participant.participant_id, &participant.flashes_ms, FRAME_MS);
    }
}

#[test]
fn zip_and_tar_gz_archives_render() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = SynthSpec { participants: 2, duration_ms: 2000, ..SynthSpec::default() };
    let plan = SynthPlan::new(&spec);
    for name in ["call.zip", "call.tar.gz"] {
        let archive = dir.path().join(name);
        synth(&spec, &archive).expect("synth");
        assert!(archive.is_file());
        let out = dir.path().join(format!("out-{name}"));
        let mp4 = render("--input-file", &archive, &out, &["--size", "640x360", "--fps", "30"]);
        let probe = ffprobe(&mp4);
        assert_eq!(stream(&probe, "video")["width"].as_u64(), Some(640));
        let frames = Frames::decode(&mp4, 160, 90);
        let two = cells(2, 640, 360);
        for (participant, cell) in plan.participants.iter().zip(&two) {
            let (x, y) = cell.center();
            assert_colour(&frames, 15, ((x / 4.0) as usize, (y / 4.0) as usize), participant.rgb, name);
        }
    }
}

#[test]
fn memory_does_not_grow_with_call_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut peaks = Vec::new();
    for seconds in [3_u64, 15] {
        let spec =
            SynthSpec { participants: 2, duration_ms: seconds * 1000, width: 320, height: 180, ..SynthSpec::default() };
        let input = dir.path().join(format!("call{seconds}"));
        synth(&spec, &input).expect("synth");
        let out = dir.path().join(format!("out{seconds}"));
        let output = composite("--input-dir", &input, &out, &["--size", "320x180"]);
        assert!(output.status.success(), "{}", text(&output));
        peaks.push(peak_rss_mib(&String::from_utf8_lossy(&output.stdout)));
    }
    eprintln!("peak RSS: 3 s call {} MiB, 15 s call {} MiB", peaks[0], peaks[1]);
    assert!(
        peaks[1] <= peaks[0] * 1.15 + 16.0,
        "peak RSS grew from {} MiB to {} MiB with a 5x longer call",
        peaks[0],
        peaks[1]
    );
}

#[test]
fn twenty_five_participants_fill_a_five_by_five_grid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = SynthSpec { participants: 25, duration_ms: 1500, width: 160, height: 90, ..SynthSpec::default() };
    let plan = SynthPlan::new(&spec);
    let input = dir.path().join("call.zip");
    synth(&spec, &input).expect("synth");
    let out = dir.path().join("out");
    let mp4 = render("--input-file", &input, &out, &["--size", "1280x720"]);
    let frames = Frames::decode(&mp4, 320, 180);
    let grid = cells(25, 1280, 720);
    assert_eq!(grid.len(), 25);
    for (participant, cell) in plan.participants.iter().zip(&grid) {
        assert_colour(&frames, frame_at(600.0), centre(cell), participant.rgb, &participant.participant_id);
    }
}

/// Frames of the video stream of `path`, counted by decoding, and its picture size.
fn probe_video(path: &Path) -> (u64, u64, u64) {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=width,height,nb_read_frames", "-of", "json"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let stream = &json["streams"][0];
    let number =
        |key: &str| stream[key].as_u64().or_else(|| stream[key].as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
    (number("width"), number("height"), number("nb_read_frames"))
}

/// H.264 at widths whose rows GStreamer pads to a multiple of 4 bytes (2 more than a multiple
/// of 4): the composite and a sender of such a width re-encoded to H.264 both finish, at the
/// right size, with every frame.
#[test]
fn h264_at_widths_gstreamer_pads() {
    require_tool("ffprobe");
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    let spec = SynthSpec {
        participants: 2,
        duration_ms: 2000,
        width: 322,
        height: 180,
        fps: 15,
        video_codecs: vec![Codec::Vp8],
        ..SynthSpec::default()
    };
    synth(&spec, &input).expect("synth");
    for (w, h) in [(322_u64, 180_u64), (326, 180)] {
        let out = dir.path().join(format!("out-{w}"));
        let mp4 = render_ok(&input, &out, &["--size", &format!("{w}x{h}"), "--codec", "h264", "--fps", "30"]);
        assert_eq!(probe_video(&mp4), (w, h, 60), "{w}x{h} composite");
        assert!(files_in(&out).iter().all(|f| !f.to_string_lossy().ends_with(".partial")), "no partial file");
    }
    let out = dir.path().join("individual");
    let extra = ["--no-video", "--individual", "video_only", "--individual-codec", "h264", "--fps", "30"];
    let run = composite("--input-dir", &input, &out, &extra);
    assert!(run.status.success(), "re-encode failed: {}", text(&run));
    let mp4s: Vec<_> = files_in(&out).into_iter().filter(|f| f.extension().is_some_and(|e| e == "mp4")).collect();
    assert!(!mp4s.is_empty(), "re-encoded files: {:?}", files_in(&out));
    for mp4 in &mp4s {
        let (w, h, frames) = probe_video(mp4);
        assert_eq!((w, h), (322, 180), "{}", mp4.display());
        assert!(frames >= 55, "{}: {frames} frames", mp4.display());
    }
}
