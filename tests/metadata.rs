//! Metadata that contradicts the packets is noted in the manifest and the call placed by the
//! packets, or refused by name: an SDP naming the wrong codec, a first RTP timestamp that is
//! not the first packet's, an end time ten years away, and a participant placed ten years into
//! the call (past the call span limit).

mod support;

use std::path::{Path, PathBuf};

use support::*;
use tessera::ingest::sdp::Codec;
use tessera::synth::plan::{BEEP_HZ, RtcpMode};
use tessera::synth::{SynthPlan, SynthSpec, synth};

const TEN_YEARS_MS: i64 = 10 * 365 * 86_400_000;

fn spec() -> SynthSpec {
    SynthSpec {
        participants: 2,
        duration_ms: 5000,
        width: 320,
        height: 180,
        video_codecs: vec![Codec::Vp8, Codec::H264],
        rtcp: RtcpMode::Absent,
        ..SynthSpec::default()
    }
}

fn alice_file(input: &Path, suffix: &str) -> PathBuf {
    files_in(&input.join("alice"))
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no alice *{suffix}"))
}

/// Rewrites alice's metadata: `edit` gets her first segment of `list` ("audio" or "video").
fn edit_alice_segment(input: &Path, list: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = alice_file(input, "_timing_metadata.json");
    let mut meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    edit(&mut meta["segments"][list][0]);
    std::fs::write(&path, serde_json::to_vec_pretty(&meta).expect("json")).expect("write");
}

fn notes(manifest: &serde_json::Value, participant: &str, kind: &str) -> String {
    tracks(manifest, participant, kind).iter().map(|t| t["segments"][0]["notes"].to_string()).collect()
}

#[test]
fn an_sdp_naming_the_wrong_codec_is_decoded_as_the_payload_is() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    synth(&spec(), &input).expect("synth");
    // Bob sends H.264; his SDP now says VP8 under the same payload type.
    let sdp = files_in(&input.join("bob")).into_iter().find(|p| p.to_string_lossy().ends_with("_video_0.sdp"));
    let sdp = sdp.expect("bob's video sdp");
    let text = std::fs::read_to_string(&sdp).expect("sdp");
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("a=fmtp:102"))
        .map(|l| l.replace("H264/90000", "VP8/90000"))
        .collect::<Vec<_>>()
        .join("\r\n");
    std::fs::write(&sdp, text + "\r\n").expect("write");
    let out = dir.path().join("out");
    let mp4 = render_ok(&input, &out, &["--size", "640x360"]);
    let frames = Frames::decode(&mp4, 160, 90);
    let noted = notes(&manifest(&out), "bob", "video");
    let bob = &SynthPlan::new(&spec()).participants[1];
    // Bob's tile (the right half) shows his colour, not the placeholder.
    let [r, g, b] = frames.mean_rgb((3000.0 / (1000.0 / 30.0)) as usize, 120, 45, 2);
    let [br, bg, bb] = bob.rgb.map(f64::from);
    assert!(
        (r - br).abs() < 25.0 && (g - bg).abs() < 25.0 && (b - bb).abs() < 25.0,
        "bob's tile is {r} {g} {b}: {noted}"
    );
    assert!(noted.contains("the SDP says VP8 but the packets carry H264"), "{noted}");
}

#[test]
fn a_first_rtp_timestamp_that_is_not_the_first_packets_is_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    synth(&spec(), &input).expect("synth");
    // Alice's first_rtp_rtp_timestamp runs 19 s backwards (her audio: 48 kHz).
    edit_alice_segment(&input, "audio", |segment| {
        let ts = segment["first_rtp_rtp_timestamp"].as_u64().expect("ts") as u32;
        segment["first_rtp_rtp_timestamp"] = ts.wrapping_sub(19 * 48_000).into();
    });
    // And her video's last packet is said to come ten years later.
    edit_alice_segment(&input, "video", |segment| {
        let last = segment["last_rtp_unix_timestamp"].as_i64().expect("last");
        segment["last_rtp_unix_timestamp"] = (last + TEN_YEARS_MS).into();
    });
    let out = dir.path().join("out");
    let mp4 = render_ok(&input, &out, &["--size", "640x360"]);
    let samples = decode_audio(&mp4);
    assert!((samples.len() as f64 / 48.0 - 5000.0).abs() < 100.0, "the call keeps its length");
    let alice = &SynthPlan::new(&spec()).participants[0];
    assert_beeps_on_time(&samples, BEEP_HZ, "alice", &alice.flashes_ms, 20.0);
    let manifest = manifest(&out);
    let audio = notes(&manifest, "alice", "audio");
    assert!(audio.contains("first_rtp_rtp_timestamp") && audio.contains("the packet's used"), "{audio}");
    let video = notes(&manifest, "alice", "video");
    assert!(video.contains("last_rtp_unix_timestamp") && video.contains("not used"), "{video}");
}

#[test]
fn a_participant_placed_ten_years_into_the_call_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    synth(&spec(), &input).expect("synth");
    for list in ["audio", "video"] {
        edit_alice_segment(&input, list, |segment| {
            let first = segment["first_rtp_unix_timestamp"].as_i64().expect("first");
            segment["first_rtp_unix_timestamp"] = (first + TEN_YEARS_MS).into();
        });
    }
    let out = dir.path().join("out");
    for extra in [&[][..], &["--max-call-span-h", "2"][..]] {
        let mut args = vec!["--size", "160x90"];
        args.extend_from_slice(extra);
        let output = composite("--input-dir", &input, &out, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "refused: {}", text(&output));
        assert!(stderr.contains("alice") && stderr.contains("call span limit"), "{stderr}");
        assert!(stderr.contains(".rtpdump"), "names the file: {stderr}");
        assert!(files_in(&out).is_empty(), "nothing written: {:?}", files_in(&out));
    }
}
