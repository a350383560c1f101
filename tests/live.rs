//! The live pass end to end, in process: senders push pictures and samples already on the call
//! clock at real-time pace into a live call, and the composite it writes shows them where and
//! when they were captured: a late joiner appears, a leaver goes, a flash and a beep land on
//! time, a pause leaves a cut of its length, and a stop ends the file.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{Frames, assert_beeps_on_time, assert_flashes_on_time, decode_audio, f64_field, ffprobe};
use tessera::ingest::{CallInfo, TrackKind};
use tessera::media::decode::VideoFrame;
use tessera::media::encode::EncodeSettings;
use tessera::outputs::{IndividualKind, OutputSet};
use tessera::render::live::{LiveCall, LiveInput, LiveSettings, LiveState, LiveTrackInfo, StopReason, TrackSender};
use tessera::render::source::PlacedAudio;
use tessera::render::staging::Staging;
use tessera::render::{FileReady, RenderInput, RenderRequest, render};
use tessera::timeline::Stamped;

const OUT: (usize, usize) = (320, 180);
const FPS: u32 = 30;
const SEND_FPS: f64 = 15.0;
const CHUNK_MS: u64 = 10;
const BEEP_HZ: f64 = 1000.0;

/// Call times (ms) of the script.
const BLUE_JOINS_MS: u64 = 1000;
const BEEP_MS: u64 = 1500;
const FLASH_MS: u64 = 2000;
const BLUE_LEAVES_MS: u64 = 2500;
const PAUSE_MS: u64 = 3000;
const RESUME_MS: u64 = 3500;
const SECOND_FLASH_MS: u64 = 3800; // on a 15 fps frame, like every time here
const STOP_MS: u64 = 4200;

fn solid(rgb: [u8; 3]) -> VideoFrame {
    let (w, h) = (160_usize, 90_usize);
    let [y, u, v] = tessera::gpu::rgb_to_yuv_limited(rgb, tessera::gpu::ColorMatrix::Bt709);
    let mut data = vec![y; w * h];
    data.extend(std::iter::repeat_n(u, (w / 2) * (h / 2)));
    data.extend(std::iter::repeat_n(v, (w / 2) * (h / 2)));
    VideoFrame::packed_i420(w as u32, h as u32, data, true)
}

fn info(participant: &str, track: &str, kind: TrackKind) -> LiveTrackInfo {
    LiveTrackInfo {
        participant_id: participant.into(),
        user_session_id: format!("{participant}-session"),
        track_id: track.into(),
        kind,
        screenshare: false,
        display_name: participant.to_uppercase(),
    }
}

fn stamped(at_ms: f64, item: VideoFrame) -> Stamped<VideoFrame> {
    Stamped { at_ms, show_from_ms: at_ms, show_until_ms: at_ms + 2000.0, item }
}

/// Red's microphone: a quiet 300 Hz tone, and a beep from `BEEP_MS` for 200 ms.
fn red_audio(from_ms: u64) -> PlacedAudio {
    let frames = (CHUNK_MS * 48) as usize;
    let position = from_ms * 48;
    let mut samples = Vec::with_capacity(frames * 2);
    for i in 0..frames as u64 {
        let t = (position + i) as f64 / 48_000.0;
        let beep = (BEEP_MS..BEEP_MS + 200).contains(&((position + i) / 48));
        let (amplitude, hz) = if beep { (0.5, BEEP_HZ) } else { (0.05, 300.0) };
        let s = amplitude * (std::f64::consts::TAU * hz * t).sin();
        samples.extend([s as f32, s as f32]);
    }
    PlacedAudio { position, samples }
}

/// Pushes the script at real-time pace: each picture and chunk when the call clock reaches its
/// capture time. Returns the call times it paused and resumed at.
fn send_script(call: &Arc<LiveCall>) -> (f64, f64) {
    assert!(call.wait_started(Duration::from_secs(60)), "the call's clock starts once the pass is ready");
    let (mut paused_ms, mut resumed_ms) = (0.0, 0.0);
    let red_cam = call.join_video(info("red", "cam", TrackKind::Video)).expect("red camera");
    let red_mic = call.join_audio(info("red", "mic", TrackKind::Audio)).expect("red microphone");
    let mut blue_cam: Option<TrackSender<Stamped<VideoFrame>>> = None;
    let (red, blue, white) = (solid([220, 20, 20]), solid([20, 20, 220]), solid([255, 255, 255]));
    let frame_ms = 1000.0 / SEND_FPS;
    let (mut next_frame, mut next_chunk) = (0_u64, 0_u64);
    while next_chunk < STOP_MS {
        let now = call.now_ms();
        if now < next_chunk as f64 && now < next_frame as f64 * frame_ms {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        if next_chunk as f64 <= now {
            red_mic.blocking_send(red_audio(next_chunk)).expect("red audio");
            next_chunk += CHUNK_MS;
        }
        let at_ms = (next_frame as f64 * frame_ms).round();
        if at_ms <= now {
            let flashing = [FLASH_MS, SECOND_FLASH_MS].iter().any(|&f| (f as f64..f as f64 + 200.0).contains(&at_ms));
            red_cam.blocking_send(stamped(at_ms, if flashing { white.clone() } else { red.clone() })).expect("red");
            if at_ms >= BLUE_JOINS_MS as f64 && at_ms < BLUE_LEAVES_MS as f64 {
                let cam = blue_cam
                    .get_or_insert_with(|| call.join_video(info("blue", "cam", TrackKind::Video)).expect("blue"));
                cam.blocking_send(stamped(at_ms, blue.clone())).expect("blue picture");
            } else if at_ms >= BLUE_LEAVES_MS as f64 {
                blue_cam = None;
            }
            next_frame += 1;
        }
        if now >= PAUSE_MS as f64 && now < RESUME_MS as f64 && call.state() == LiveState::Running {
            paused_ms = call.now_ms();
            call.pause().expect("pause");
        }
        if now >= RESUME_MS as f64 && call.state() == LiveState::Paused {
            resumed_ms = call.now_ms();
            call.resume().expect("resume");
        }
    }
    call.stop(StopReason::ApiCall).expect("stop");
    (paused_ms, resumed_ms)
}

#[test]
fn a_live_call_is_composed_as_it_happens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let call_info = CallInfo {
        call_type: "default".into(),
        call_id: "live-test".into(),
        call_session_id: String::new(),
        call_start_unix_ms: 0,
    };
    // A generous latency: the test shares two cores with others, and a late picture would miss its tick.
    let settings = LiveSettings { latency_ms: 1000, hold_ms: 2000, idle_timeout_ms: None, max_duration_ms: None };
    let call = LiveCall::new(call_info, settings);
    let mut encode = EncodeSettings::new(OUT.0 as u32, OUT.1 as u32, FPS);
    encode.quality.preset = "ultrafast".into();
    // Each file as it is announced, with the call time it was.
    let announced: Arc<Mutex<Vec<(String, f64)>>> = Arc::default();
    let on_file = {
        let (announced, call) = (Arc::clone(&announced), Arc::clone(&call));
        FileReady::new(move |entry| announced.lock().expect("lock").push((entry.file.clone(), call.now_ms())))
    };
    let request = RenderRequest {
        input: RenderInput::Live(LiveInput(Arc::clone(&call))),
        output_dir: dir.path().join("out"),
        work_dir: dir.path().to_path_buf(),
        staging: Staging::default(),
        encode,
        outputs: OutputSet { individual: vec![IndividualKind::AudioVideo], ..OutputSet::composite() },
        filter: Default::default(),
        cancel: Default::default(),
        stall_timeout_s: 60,
        max_call_span_h: 24,
        on_file: Some(on_file),
        parallel: None,
    };
    let renderer = std::thread::spawn(move || render(&request, |_| {}));
    let (paused_ms, resumed_ms) = send_script(&call);
    let summary = renderer.join().expect("render thread").expect("live render");
    assert_eq!(summary.participants, 2);
    assert_eq!(call.state(), LiveState::Ended { reason: StopReason::ApiCall });

    let video =
        &summary.output_dir.join(&summary.outputs.iter().find(|o| o.kind == "composite").expect("composite").file);
    // The cut: the output ticks whose call time lies in the pause.
    let frame_ms = 1000.0 / f64::from(FPS);
    let ticks_before = |t_ms: f64| (t_ms / frame_ms).ceil();
    let cut_ms = (ticks_before(resumed_ms) - ticks_before(paused_ms)) * frame_ms;
    eprintln!("paused from {paused_ms:.1} to {resumed_ms:.1} ms: a cut of {cut_ms:.1} ms");
    let duration_s = f64_field(&ffprobe(video)["format"], "duration");
    eprintln!("composite lasts {duration_s} s");
    let expected_s = (STOP_MS as f64 - cut_ms) / 1000.0;
    assert!((duration_s - expected_s).abs() < 0.1, "duration {duration_s} s, expected about {expected_s} s");

    let frames = Frames::decode(video, OUT.0, OUT.1);
    let at = |t_ms: f64, x: usize, y: usize| frames.mean_rgb((t_ms / frame_ms).round() as usize, x, y, 3);
    let is = |rgb: [f64; 3], want: [u8; 3]| rgb.iter().zip(want).all(|(c, w)| (c - f64::from(w)).abs() < 40.0);
    let (centre, left, right) = ((160, 90), (80, 90), (240, 90));
    assert!(is(at(700.0, centre.0, centre.1), [220, 20, 20]), "red alone fills the canvas: {:?}", at(700.0, 160, 90));
    assert!(is(at(1800.0, left.0, left.1), [220, 20, 20]), "red on the left: {:?}", at(1800.0, 80, 90));
    assert!(is(at(1800.0, right.0, right.1), [20, 20, 220]), "blue joined on the right: {:?}", at(1800.0, 240, 90));
    assert!(is(at(2950.0, centre.0, centre.1), [220, 20, 20]), "blue left: {:?}", at(2950.0, 160, 90));
    assert_flashes_on_time(&frames, "red", &[FLASH_MS], left, frame_ms);
    // After the pause, call time t is file time t - cut.
    let after_pause_ms = (SECOND_FLASH_MS as f64 - cut_ms).round() as u64;
    assert_flashes_on_time(&frames, "red after the pause", &[after_pause_ms], centre, frame_ms);
    assert_beeps_on_time(&decode_audio(video), BEEP_HZ, "red", &[BEEP_MS], 20.0);
    check_individual_files(&summary, &announced.lock().expect("lock"), cut_ms);
}

/// The individual files of that call: each participant's own pictures and sound from when it
/// joined, on the same clock as the composite (with the same cut), and a leaver's file ready
/// while the call still goes on.
fn check_individual_files(summary: &tessera::render::RenderSummary, announced: &[(String, f64)], cut_ms: f64) {
    let frame_ms = 1000.0 / f64::from(FPS);
    let of = |who: &str| {
        summary
            .outputs
            .iter()
            .find(|o| o.kind == "audio_video" && o.participant_id.as_deref() == Some(who))
            .unwrap_or_else(|| panic!("{who}'s audio_video file in {:?}", summary.outputs))
    };
    let (red, blue) = (of("red"), of("blue"));
    assert!(red.file.ends_with(".mp4") && blue.file.ends_with(".mp4"), "{} {}", red.file, blue.file);
    for entry in [red, blue] {
        let probe = ffprobe(&summary.output_dir.join(&entry.file));
        let kinds: Vec<&str> =
            probe["streams"].as_array().expect("streams").iter().filter_map(|s| s["codec_type"].as_str()).collect();
        assert_eq!(kinds.len(), 2, "{}: video and audio: {kinds:?}", entry.file);
        let duration_s = f64_field(&probe["format"], "duration");
        assert!(
            (duration_s * 1000.0 - entry.duration_ms).abs() < 100.0,
            "{}: {duration_s} s vs {}",
            entry.file,
            entry.duration_ms
        );
    }
    // Red from the call's start to its end, with the pause's cut; blue from its joining to its
    // leaving.
    assert!(red.offset_ms.abs() < 1.0, "red's file starts with the call: {}", red.offset_ms);
    let red_expected_ms = STOP_MS as f64 - cut_ms;
    assert!(
        (red.duration_ms - red_expected_ms).abs() < 100.0,
        "red's file lasts {} ms, expected {red_expected_ms}",
        red.duration_ms
    );
    assert!(
        (blue.offset_ms - BLUE_JOINS_MS as f64).abs() <= frame_ms + 1.0,
        "blue's file starts at {}",
        blue.offset_ms
    );
    let blue_ms = (BLUE_LEAVES_MS - BLUE_JOINS_MS) as f64;
    assert!(
        (blue.duration_ms - blue_ms).abs() <= 3.0 * frame_ms,
        "blue's file lasts {} ms, expected {blue_ms}",
        blue.duration_ms
    );

    // Red's own picture fills its file (160x90, the size it sent), flashing on time; its beep too.
    let red_path = summary.output_dir.join(&red.file);
    let frames = Frames::decode(&red_path, 160, 90);
    assert_flashes_on_time(&frames, "red's file", &[FLASH_MS], (80, 45), frame_ms);
    assert_beeps_on_time(&decode_audio(&red_path), BEEP_HZ, "red's file", &[BEEP_MS], 20.0);
    let blue_frames = Frames::decode(&summary.output_dir.join(&blue.file), 160, 90);
    let mid = blue_frames.mean_rgb(10, 80, 45, 3);
    assert!(mid.iter().zip([20.0, 20.0, 220.0]).all(|(c, w)| (c - w).abs() < 40.0), "blue's file is blue: {mid:?}");

    // Blue's file was announced once blue left, before the call ended.
    let when = |file: &str| {
        announced.iter().find(|(f, _)| f == file).map(|(_, t)| *t).unwrap_or_else(|| panic!("{file} announced"))
    };
    let composite = summary.outputs.iter().find(|o| o.kind == "composite").expect("composite");
    eprintln!(
        "blue's file announced at {:.0} ms of the call, the composite at {:.0} ms",
        when(&blue.file),
        when(&composite.file)
    );
    assert!(when(&blue.file) < when(&composite.file), "blue's file ready while the call went on");
    assert_eq!(announced.len(), summary.outputs.len(), "each file announced once: {announced:?}");
}
