//! Every condition of real recordings that the call clock must get right, in one call
//! (`SynthSpec::real_world`, `tessera synth --real-world`): recorders that joined mid-GOP, a
//! 60 ms path with 12 ms of jitter, 2% audio loss in bursts, DTX, senders whose clocks drift
//! (+300 and -150 ppm), one sender without RTCP sender reports, and libwebrtc-like Opus
//! senders. Rendered and measured: every flash on the first output frame at or after its
//! capture (within one frame + 10 ms), every beep within 20 ms (beeps the network destroyed
//! excused), each participant's audio and video placed within 10 ms of each other and within
//! 20 ms of where sender reports put them.

mod support;

use support::*;
use tessera::ingest::sdp::{Codec, MediaKind};
use tessera::layout::{Layout, RectF};
use tessera::synth::plan::BEEP_HZ;
use tessera::synth::{LostPacket, SynthParticipant, SynthSpec, synth};

const FPS: u32 = 30;
const FRAME_MS: f64 = 1000.0 / FPS as f64;
const OUT: (u32, u32) = (640, 360);

/// `REAL_WORLD_S` lengthens the call for local runs.
fn duration_ms() -> u64 {
    std::env::var("REAL_WORLD_S").ok().and_then(|s| s.parse::<u64>().ok()).map_or(60_000, |s| s * 1000)
}

fn spec() -> SynthSpec {
    SynthSpec {
        participants: 4,
        duration_ms: duration_ms(),
        width: 320,
        height: 180,
        fps: FPS,
        video_codecs: vec![Codec::H264, Codec::Vp8, Codec::Vp9, Codec::Vp8],
        ..SynthSpec::default()
    }
    .real_world()
}

/// True when the network lost an audio packet of `p` captured near `t_ms`.
fn audio_lost_near(lost: &[LostPacket], p: &SynthParticipant, t_ms: f64) -> bool {
    lost.iter().any(|l| {
        l.participant_id == p.participant_id && l.kind == MediaKind::Audio && (l.call_ms as f64 - t_ms).abs() <= 60.0
    })
}

/// The grid cell showing colour `rgb` in the first seconds. Tiles take their slots in the order
/// their pictures first appear, which the recorders' mid-GOP joins decide.
fn cell_showing(frames: &Frames, rgb: [u8; 3], cells: &[RectF]) -> Option<RectF> {
    let near = |got: [f64; 3]| got.iter().zip(rgb).all(|(g, e)| (g - f64::from(e)).abs() <= 24.0);
    (15..90).step_by(5).find_map(|frame| {
        cells.iter().copied().find(|cell| {
            let (x, y) = cell.center();
            near(frames.mean_rgb(frame, (x / 4.0) as usize, (y / 4.0) as usize, 2))
        })
    })
}

fn track_start(manifest: &serde_json::Value, participant: &str, kind: &str) -> f64 {
    tracks(manifest, participant, kind)
        .into_iter()
        .find(|t| t["screenshare"] == false)
        .and_then(|t| t["start_ms"].as_f64())
        .unwrap_or_else(|| panic!("{participant}: no {kind} track"))
}

#[test]
fn a_real_world_call_stays_in_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    let written = synth(&spec(), &input).expect("synth");
    let plan = &written.plan;
    let out = dir.path().join("out");
    let size = format!("{}x{}", OUT.0, OUT.1);
    let mp4 = render_ok(&input, &out, &["--size", &size, "--fps", &FPS.to_string()]);
    let frames = Frames::decode(&mp4, OUT.0 as usize / 4, OUT.1 as usize / 4);
    let samples = decode_audio(&mp4);
    let manifest = manifest(&out);

    let sizes = vec![Some((320, 180)); plan.participants.len()];
    let cells: Vec<_> =
        Layout::builtin("grid").expect("grid").place(&sizes, OUT.0, OUT.1).into_iter().map(|t| t.cell).collect();
    for p in &plan.participants {
        for kind in ["video", "audio"] {
            let start_ms = track_start(&manifest, &p.participant_id, kind);
            eprintln!("{} {kind} starts at {start_ms:.1} ms", p.participant_id);
        }
    }
    let (mut flashes, mut beeps, mut excused) = (0, 0, 0);
    for p in &plan.participants {
        let cell = cell_showing(&frames, p.rgb, &cells)
            .unwrap_or_else(|| panic!("{}: no tile shows its colour", p.participant_id));
        let (x, y) = cell.center();
        let at = ((x / 4.0) as usize, (y / 4.0) as usize);
        for &flash_ms in &p.flashes_ms {
            let t = flash_ms as f64;
            let first = ((t - 300.0) / FRAME_MS) as usize;
            let onset = (first..first + 18)
                .find(|&i| frames.mean_rgb(i, at.0, at.1, 2).iter().all(|c| *c > 225.0))
                .unwrap_or_else(|| panic!("{}: no flash near {flash_ms} ms", p.participant_id));
            let onset_ms = onset as f64 * FRAME_MS;
            let taken_ms = p.flash_frame_ms(flash_ms, FPS);
            eprintln!("{} flash {flash_ms}: taken {taken_ms:.1} ms, shown {onset_ms:.1} ms", p.participant_id);
            assert!(
                onset_ms >= taken_ms - 10.0 && onset_ms <= taken_ms + FRAME_MS + 10.0,
                "{}: flash taken at {taken_ms:.1} ms shows at {onset_ms:.1} ms",
                p.participant_id
            );
            flashes += 1;

            let heard = beep_onset_ms(&samples, BEEP_HZ, t - 240.0, t + 240.0);
            eprintln!("{} beep {flash_ms}: heard {heard:?}", p.participant_id);
            match heard {
                Some(h) if (h - t).abs() <= 20.0 => beeps += 1,
                _ if audio_lost_near(&written.lost, p, t) => excused += 1,
                other => panic!("{}: beep at {flash_ms} ms heard at {other:?}", p.participant_id),
            }
        }
    }
    eprintln!("{flashes} flashes on time, {beeps} beeps on time, {excused} beeps destroyed by loss");
    assert!(flashes >= 12 && beeps >= 10, "{flashes} flashes, {beeps} beeps checked");

    // Where each participant's media is placed, against where it was captured.
    for p in &plan.participants {
        let video_ms = track_start(&manifest, &p.participant_id, "video") - p.video_start_ms as f64;
        let audio_ms = track_start(&manifest, &p.participant_id, "audio") - p.audio_start_ms as f64;
        eprintln!("{}: video placed {video_ms:+.1} ms, audio {audio_ms:+.1} ms", p.participant_id);
        assert!(video_ms.abs() <= 20.0 && audio_ms.abs() <= 20.0, "{}: placed off", p.participant_id);
        assert!((video_ms - audio_ms).abs() <= 10.0, "{}: lip sync {:.1} ms", p.participant_id, video_ms - audio_ms);
        // Each track's clock runs at the sender's rate, measured from sender reports or, without
        // them, from the arrival times' envelope: placed right at the start, still right at the end.
        for kind in ["audio", "video"] {
            for track in tracks(&manifest, &p.participant_id, kind).into_iter().filter(|t| t["screenshare"] == false) {
                let drift_ppm = track["segments"][0]["drift_ppm"].as_f64().expect("drift_ppm");
                eprintln!("{} {kind}: drift {drift_ppm:+.1} ppm", p.participant_id);
                assert!(
                    (drift_ppm - p.drift_ppm).abs() <= 25.0,
                    "{} {kind}: measured {drift_ppm} ppm",
                    p.participant_id
                );
            }
        }
    }
}

/// A libwebrtc Opus sender (48 kHz, 20 ms frames, in-band FEC, libopus's 312-sample
/// lookahead, packets stamped with the capture time of the input they encode): its decoded
/// audio starts 6.5 ms before its timestamps say, and is placed so that every beep is heard
/// when it was captured, to the resolution of the measurement.
#[test]
fn a_libwebrtc_opus_senders_lookahead_is_compensated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    let spec = SynthSpec { participants: 2, duration_ms: 9000, width: 160, height: 90, ..SynthSpec::default() };
    let written = synth(&spec, &input).expect("synth");
    let out = dir.path().join("out");
    let mp4 = render_ok(&input, &out, &["--size", "320x180"]);
    let samples = decode_audio(&mp4);
    let mut errors_ms = Vec::new();
    for p in &written.plan.participants {
        for &beep_ms in &p.flashes_ms {
            let t = beep_ms as f64;
            let heard = beep_onset_ms(&samples, BEEP_HZ, t - 240.0, t + 240.0).expect("beep heard");
            errors_ms.push(heard - t);
        }
    }
    let mean_ms = errors_ms.iter().sum::<f64>() / errors_ms.len() as f64;
    eprintln!("beep errors (ms): {errors_ms:?}, mean {mean_ms:.2}");
    assert!(errors_ms.len() >= 6);
    // The onset detector reads to 0.5 ms; uncompensated, every beep is 6.5 ms late.
    assert!(mean_ms.abs() <= 2.0, "beeps heard {mean_ms:.2} ms off on average");
    assert!(errors_ms.iter().all(|e| e.abs() <= 3.5), "{errors_ms:?}");
}
