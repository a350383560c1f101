//! A long call with drifting sender clocks: every beep stays within 20 ms of its scheduled
//! call time at the start, the middle and the end, and every flash shows on its frame.
//! Uncorrected, 100 ppm over this call would put the end 60 ms off.

mod support;

use support::*;
use tessera::ingest::sdp::Codec;
use tessera::synth::plan::BEEP_HZ;
use tessera::synth::{SynthAction, SynthEvent, SynthPlan, SynthSpec, synth};

const DURATION_MS: u64 = 600_000;
const FPS: u32 = 25;

#[test]
fn ten_minutes_with_drifting_clocks_stay_in_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = SynthSpec {
        participants: 2,
        duration_ms: DURATION_MS,
        width: 64,
        height: 36,
        fps: FPS,
        video_codecs: vec![Codec::Vp8],
        events: vec![
            SynthEvent { participant: "alice".into(), action: SynthAction::Drift { ppm: 100.0 } },
            SynthEvent { participant: "bob".into(), action: SynthAction::Drift { ppm: -80.0 } },
        ],
        ..SynthSpec::default()
    };
    let plan = SynthPlan::new(&spec);
    let input = dir.path().join("call");
    synth(&spec, &input).expect("synth");
    let out = dir.path().join("out");
    let fps = FPS.to_string();
    let mp4 = render_ok(&input, &out, &["--size", "160x90", "--fps", &fps, "--preset", "ultrafast"]);
    let samples = decode_audio(&mp4);
    assert!((samples.len() as f64 / 48.0 - DURATION_MS as f64).abs() <= 80.0, "audio {} samples", samples.len());
    let windows =
        [(1_000, 20_000), (DURATION_MS / 2 - 10_000, DURATION_MS / 2 + 10_000), (DURATION_MS - 20_000, DURATION_MS)];
    let mut worst: f64 = 0.0;
    for p in &plan.participants {
        for &(from, to) in &windows {
            for &beep_ms in p.flashes_ms.iter().filter(|f| **f >= from && **f < to) {
                let heard = beep_onset_ms(&samples, BEEP_HZ, beep_ms as f64 - 240.0, beep_ms as f64 + 240.0)
                    .unwrap_or_else(|| panic!("{}: no beep near {beep_ms} ms", p.participant_id));
                let error = heard - beep_ms as f64;
                worst = worst.max(error.abs());
                assert!(error.abs() <= 20.0, "{}: beep at {beep_ms} ms heard at {heard:.1} ms", p.participant_id);
            }
        }
    }
    eprintln!("worst beep error over {} s: {worst:.1} ms", DURATION_MS / 1000);
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
