//! A long call whose senders' clocks drift (+100 and -80 ppm: 180 ms and 144 ms off at the end
//! of the half hour CI runs, 720 ms and 576 ms after two hours, if uncorrected): at the start,
//! the middle and the end every beep is heard within 20 ms of its scheduled call time and every
//! flash shows on the first output frame at or after the sender's frame's true call time
//! (within one frame of the schedule). Peak memory of the long render stays that of a
//! ten-minute one. `LONG_CALL_S` sets the call's length: CI runs the short form (1800 s); the
//! full form, `LONG_CALL_S=7200` (two hours, about 14 minutes here), is in `scripts/long-runs.sh`.

mod support;

use std::path::{Path, PathBuf};

use support::*;
use tessera::ingest::sdp::Codec;
use tessera::layout::Layout;
use tessera::synth::plan::BEEP_HZ;
use tessera::synth::{SynthAction, SynthEvent, SynthParticipant, SynthPlan, SynthSpec, synth};

const FPS: u32 = 25;
const FRAME_MS: f64 = 1000.0 / FPS as f64;
const OUT: (u32, u32) = (160, 90);
const SHORT_MS: u64 = 600_000;
/// The call CI renders: half an hour (three times the short call, for the memory check).
const DEFAULT_LONG_MS: u64 = 1_800_000;
/// Each checked window is this long.
const WINDOW_MS: u64 = 30_000;

fn long_ms() -> u64 {
    std::env::var("LONG_CALL_S").ok().and_then(|s| s.parse::<u64>().ok()).map_or(DEFAULT_LONG_MS, |s| s * 1000)
}

fn spec(duration_ms: u64) -> SynthSpec {
    SynthSpec {
        participants: 2,
        duration_ms,
        width: 64,
        height: 36,
        fps: FPS,
        video_codecs: vec![Codec::Vp8],
        events: vec![
            SynthEvent { participant: "alice".into(), action: SynthAction::Drift { ppm: 100.0 } },
            SynthEvent { participant: "bob".into(), action: SynthAction::Drift { ppm: -80.0 } },
        ],
        ..SynthSpec::default()
    }
}

/// Synthesises and renders a call; returns the MP4, the output directory and peak RSS (MiB).
fn render(dir: &Path, duration_ms: u64) -> (PathBuf, PathBuf, f64) {
    let input = dir.join(format!("call{duration_ms}"));
    synth(&spec(duration_ms), &input).expect("synth");
    let out = dir.join(format!("out{duration_ms}"));
    let size = format!("{}x{}", OUT.0, OUT.1);
    let fps = FPS.to_string();
    let output = composite("--input-dir", &input, &out, &["--size", &size, "--fps", &fps, "--preset", "ultrafast"]);
    assert!(output.status.success(), "render failed: {}", text(&output));
    let mp4 = files_in(&out).into_iter().find(|f| f.extension().is_some_and(|e| e == "mp4")).expect("mp4");
    (mp4, out, peak_rss_mib(&String::from_utf8_lossy(&output.stdout)))
}

/// Call time at which the sender's first frame showing the flash at `flash_ms` was taken: its
/// frames are `1/fps` apart on its own (drifting) clock.
fn flash_frame_ms(p: &SynthParticipant, flash_ms: u64) -> f64 {
    let scale = 1.0 + p.drift_ppm * 1e-6;
    let media_ms = (flash_ms - p.video_start_ms) as f64 * scale;
    let n = (media_ms / FRAME_MS - 1e-9).ceil();
    p.video_start_ms as f64 + n * FRAME_MS / scale
}

#[test]
fn a_long_call_with_drifting_clocks_stays_in_sync_in_flat_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long_ms = long_ms();
    let (_, _, short_peak) = render(dir.path(), SHORT_MS);
    let (mp4, out, long_peak) = render(dir.path(), long_ms);
    eprintln!("peak RSS: {} s call {short_peak} MiB, {} s call {long_peak} MiB", SHORT_MS / 1000, long_ms / 1000);
    assert!(long_peak <= short_peak * 1.15 + 16.0, "peak RSS grew from {short_peak} to {long_peak} MiB");

    let plan = SynthPlan::new(&spec(long_ms));
    let layout = Layout::builtin("grid").expect("grid");
    let cells: Vec<_> =
        layout.place(&[Some((64, 36)), Some((64, 36))], OUT.0, OUT.1).into_iter().map(|t| t.cell).collect();
    let mid = long_ms / 2 / 1000 * 1000;
    let windows = [0, mid - WINDOW_MS / 2, long_ms - WINDOW_MS];
    let (mut worst_beep, mut worst_flash, mut checked) = (0.0_f64, 0.0_f64, 0);
    for from in windows {
        let window = Some((from as f64, WINDOW_MS as f64));
        let samples = decode_audio_window(&mp4, window);
        // `from` lies on the frame grid: the first frame decoded is the one at `from`.
        let frames = Frames::decode_window(&mp4, OUT.0 as usize, OUT.1 as usize, window);
        for (p, cell) in plan.participants.iter().zip(&cells) {
            let (x, y) = cell.center();
            for &flash_ms in p.flashes_ms.iter().filter(|f| **f >= from + 500 && **f + 500 <= from + WINDOW_MS) {
                let local = (flash_ms - from) as f64;
                let heard = beep_onset_ms(&samples, BEEP_HZ, local - 240.0, local + 240.0)
                    .unwrap_or_else(|| panic!("{}: no beep near {flash_ms} ms", p.participant_id))
                    + from as f64;
                let beep_error = heard - flash_ms as f64;
                assert!(beep_error.abs() <= 20.0, "{}: beep at {flash_ms} ms heard at {heard:.1} ms", p.participant_id);
                worst_beep = worst_beep.max(beep_error.abs());

                let first = ((local - 300.0) / FRAME_MS) as usize;
                let onset = (first..first + 16)
                    .find(|&i| frames.mean_rgb(i, x as usize, y as usize, 1).iter().all(|c| *c > 225.0))
                    .unwrap_or_else(|| panic!("{}: no flash near {flash_ms} ms", p.participant_id));
                let onset_ms = from as f64 + onset as f64 * FRAME_MS;
                let taken_ms = flash_frame_ms(p, flash_ms);
                // The first output frame at or after the sender's frame (the clock estimate may
                // be a few ms off the synthetic truth), and within a frame of the schedule.
                assert!(
                    onset_ms >= taken_ms - 3.0 && onset_ms < taken_ms + FRAME_MS + 3.0,
                    "{}: flash frame taken at {taken_ms:.1} ms shows at {onset_ms:.1} ms",
                    p.participant_id
                );
                assert!(
                    (onset_ms - flash_ms as f64).abs() <= FRAME_MS,
                    "{}: flash {flash_ms} at {onset_ms}",
                    p.participant_id
                );
                worst_flash = worst_flash.max((onset_ms - taken_ms).abs());
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "checked only {checked} flash/beep pairs");
    eprintln!(
        "{checked} flash/beep pairs over {} s: worst beep error {worst_beep:.1} ms, worst flash delay after its \
         frame {worst_flash:.1} ms",
        long_ms / 1000
    );
    let manifest = manifest(&out);
    let drift: Vec<f64> = manifest["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .flat_map(|p| p["tracks"].as_array().expect("tracks").iter())
        .flat_map(|t| t["segments"].as_array().expect("segments").iter())
        .map(|s| s["drift_ppm"].as_f64().expect("drift_ppm"))
        .collect();
    eprintln!("measured drift (ppm): {drift:?}");
    assert!(
        drift.iter().any(|d| (d - 100.0).abs() < 10.0) && drift.iter().any(|d| (d + 80.0).abs() < 10.0),
        "{drift:?}"
    );
}
