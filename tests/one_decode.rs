//! One decode feeds every output: a render asking for the composite video, an MP3 mix and
//! individual files re-encoded to another codec decodes each recorded segment once (the
//! individual files in the sender's codec are remuxed, which reads without decoding).

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use support::*;
use tessera::ingest::sdp::Codec;
use tessera::synth::{SynthSpec, synth};

#[test]
fn every_segment_is_decoded_once_for_all_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = SynthSpec {
        participants: 2,
        duration_ms: 3000,
        width: 320,
        height: 180,
        video_codecs: vec![Codec::Vp8, Codec::H264],
        ..SynthSpec::default()
    };
    let input = dir.path().join("call");
    synth(&spec, &input).expect("synth");
    let out = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["raw", "composite", "--input-dir"])
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .args(["--size", "320x180", "--fps", "15", "--audio-only", "mp3"])
        .args(["--individual", "audio_video", "--individual-codec", "h264", "--individual-audio-format", "m4a"])
        .env("RUST_LOG", "tessera=debug")
        .output()
        .expect("run tessera");
    assert!(output.status.success(), "{}", text(&output));
    let log = String::from_utf8_lossy(&output.stderr);
    let mut decodes: BTreeMap<String, usize> = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("segment pipeline started")) {
        if let Some(path) = line.split("pipeline=decoding ").nth(1) {
            *decodes.entry(path.split_whitespace().next().unwrap_or("").to_owned()).or_default() += 1;
        }
    }
    let rtpdumps = files_in(&input)
        .into_iter()
        .flat_map(|participant| files_in(&participant))
        .filter(|p| p.extension().is_some_and(|e| e == "rtpdump"))
        .count();
    assert!(rtpdumps >= 4, "two participants, audio and video each");
    assert_eq!(decodes.len(), rtpdumps, "every segment decoded: {decodes:?}");
    assert!(decodes.values().all(|&n| n == 1), "each segment decoded once: {decodes:?}");
    // The outputs: the composite, the mix, alice re-encoded (VP8 -> H.264, MP4), bob remuxed.
    let names: Vec<String> =
        files_in(&out).iter().filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned())).collect();
    assert_eq!(names.iter().filter(|n| n.ends_with(".mp4")).count(), 2, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.ends_with(".mp3")).count(), 1, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.ends_with(".mkv")).count(), 1, "{names:?}");
}

/// A re-encoded file learns the sender's picture size from the pass's first picture of it: a
/// late joiner's file aligned to the call is black until the join, at the sender's size.
#[test]
fn a_reencoded_late_joiner_is_black_until_the_join_at_the_senders_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = SynthSpec {
        participants: 2,
        duration_ms: 4000,
        width: 320,
        height: 180,
        video_codecs: vec![Codec::Vp8, Codec::Vp8],
        join_stagger_ms: 1500,
        ..SynthSpec::default()
    };
    let plan = tessera::synth::SynthPlan::new(&spec);
    let input = dir.path().join("call");
    synth(&spec, &input).expect("synth");
    let out = dir.path().join("out");
    let output = tessera(&[
        "raw",
        "composite",
        "--input-dir",
        input.to_str().expect("utf-8"),
        "--output",
        out.to_str().expect("utf-8"),
        "--fps",
        "30",
        "--no-video",
        "--individual",
        "video_only",
        "--individual-codec",
        "h264",
        "--align-to-call",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let bob = files_in(&out)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains("_bob_")))
        .expect("bob's file");
    let probe = ffprobe(&bob);
    let video = stream(&probe, "video");
    assert_eq!((video["width"].as_u64(), video["height"].as_u64()), (Some(320), Some(180)), "the sender's size");
    let duration_s = f64_field(&probe["format"], "duration");
    assert!((duration_s - 4.0).abs() < 0.1, "aligned to the 4 s call: {duration_s} s");
    let frames = Frames::decode(&bob, 160, 90);
    let black = frames.mean_rgb(15, 80, 45, 3);
    assert!(black.iter().all(|c| *c < 24.0), "black before bob joins: {black:?}");
    let rgb = plan.participants[1].rgb;
    let shown = frames.mean_rgb(90, 80, 45, 3);
    for c in 0..3 {
        assert!((shown[c] - f64::from(rgb[c])).abs() <= 16.0, "bob's colour at 3 s: {shown:?} vs {rgb:?}");
    }
}
