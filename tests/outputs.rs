//! Every output kind from one synthetic call with camera, screenshare and audio-only
//! participants: the Stream-compatible commands (`process-all`, `extract-*`, `mux-av`,
//! `mix-audio`, `list-tracks`), the audio-only composites and the composite video codecs.
//! Each file is checked with ffprobe (codec, streams, duration), decoded where timing matters,
//! and found in manifest.json with its size and SHA-256.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;
use tessera::ingest::sdp::Codec;
use tessera::synth::plan::BEEP_HZ;
use tessera::synth::{SynthAction, SynthEvent, SynthPlan, SynthSpec, synth};

const CALL_MS: u64 = 6000;
/// alice: camera (VP8) + microphone, a screenshare from 1 s to 4 s, her microphone muted
/// from 2 s to 3 s. bob: camera (H.264) + microphone, camera off from 2 s to 3 s. carol:
/// microphone only.
fn spec() -> SynthSpec {
    let event = |participant: &str, action| SynthEvent { participant: participant.into(), action };
    SynthSpec {
        participants: 3,
        duration_ms: CALL_MS,
        width: 320,
        height: 180,
        fps: 15,
        video_codecs: vec![Codec::Vp8, Codec::H264],
        events: vec![
            event("alice", SynthAction::Screenshare { from_ms: 1000, to_ms: 4000 }),
            event("alice", SynthAction::MuteAudio { from_ms: 2000, to_ms: 3000 }),
            event("bob", SynthAction::MuteVideo { from_ms: 2000, to_ms: 3000 }),
            event("carol", SynthAction::AudioOnly),
        ],
        ..SynthSpec::default()
    }
}

struct Call {
    plan: SynthPlan,
    input: PathBuf,
    dir: tempfile::TempDir,
}

fn call() -> Call {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    synth(&spec(), &input).expect("synth");
    Call { plan: SynthPlan::new(&spec()), input, dir }
}

fn run_ok(args: &[&str]) -> String {
    let out = tessera(args);
    assert!(out.status.success(), "tessera {args:?} failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stream_command(command: &str, call: &Call, out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["raw", command, "--input-dir", call.input.to_str().expect("utf-8"), "--output"];
    args.push(out.to_str().expect("utf-8"));
    args.extend_from_slice(extra);
    run_ok(&args)
}

/// The files in `dir` by name (manifest.json aside).
fn outputs(dir: &Path) -> BTreeMap<String, PathBuf> {
    files_in(dir)
        .into_iter()
        .filter_map(|p| Some((p.file_name()?.to_str()?.to_owned(), p.clone())))
        .filter(|(name, _)| name != "manifest.json")
        .collect()
}

fn individual_name(call: &Call, participant: &str, kind: &str) -> String {
    let p = call.plan.participants.iter().find(|p| p.participant_id == participant).expect("participant");
    format!(
        "individual_{}_{}_{}_{}_{kind}_{}.mkv",
        call.plan.call_type, call.plan.call_id, participant, p.user_session_id, call.plan.spec.call_start_unix_ms
    )
}

/// (codec_type, codec_name) of every stream, in order.
fn streams(path: &Path) -> Vec<(String, String)> {
    let probe = ffprobe(path);
    probe["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| (s["codec_type"].as_str().unwrap_or("").to_owned(), s["codec_name"].as_str().unwrap_or("").to_owned()))
        .collect()
}

fn duration_s(path: &Path) -> f64 {
    f64_field(&ffprobe(path)["format"], "duration")
}

/// The video as 32x18 RGB frames at a constant 10 fps (frame k shows call time k x 100 ms of the
/// file: a held picture is repeated).
fn at_10_fps(path: &Path) -> Frames {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vf", "fps=10,scale=32:18:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "ffmpeg failed on {}", path.display());
    Frames { width: 32, height: 18, data: out.stdout }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("").to_owned()
}

/// Every file on disk is in the manifest with the right size and hash, and nothing else is.
fn check_manifest(out: &Path) -> serde_json::Value {
    let manifest = manifest(out);
    let listed = manifest["outputs"].as_array().expect("outputs");
    let files = outputs(out);
    assert_eq!(listed.len(), files.len(), "manifest lists every file: {manifest}");
    for entry in listed {
        let name = entry["file"].as_str().expect("file");
        let path = files.get(name).unwrap_or_else(|| panic!("{name} is listed but not on disk"));
        assert_eq!(entry["size_bytes"].as_u64(), Some(std::fs::metadata(path).expect("stat").len()), "{name}");
        assert_eq!(entry["sha256"].as_str(), Some(sha256(path).as_str()), "{name}");
        assert!(entry["streams"].as_array().is_some_and(|s| !s.is_empty()), "{entry}");
    }
    manifest
}

#[test]
fn process_all_writes_every_individual_kind_remuxed() {
    let call = call();
    let out = call.dir.path().join("all");
    let before = files_in(&call.input);
    stream_command("process-all", &call, &out, &[]);
    assert_eq!(files_in(&call.input), before, "nothing is written into the input directory");
    let files = outputs(&out);
    let name = |p: &str, kind: &str| individual_name(&call, p, kind);
    let opus = || ("audio".to_owned(), "opus".to_owned());
    let video = |codec: &str| ("video".to_owned(), codec.to_owned());
    let expected: Vec<(String, Vec<(String, String)>)> = vec![
        (name("alice", "audio_only"), vec![opus()]),
        (name("alice", "video_only"), vec![video("vp8")]),
        (name("alice", "audio_video"), vec![opus(), video("vp8")]),
        (name("alice", "shared_audio_only"), vec![opus()]),
        (name("alice", "shared_video_only"), vec![video("vp8")]),
        (name("alice", "shared_audio_video"), vec![opus(), video("vp8")]),
        (name("bob", "audio_only"), vec![opus()]),
        (name("bob", "video_only"), vec![video("h264")]),
        (name("bob", "audio_video"), vec![opus(), video("h264")]),
        (name("carol", "audio_only"), vec![opus()]),
        // The fallback rule: audio_video asked for, carol has only audio.
        (name("carol", "audio_video"), vec![opus()]),
    ];
    for (file, want) in &expected {
        let path = files.get(file).unwrap_or_else(|| panic!("{file} missing; have {:?}", files.keys()));
        assert_eq!(&streams(path), want, "{file}");
        // Camera and microphone files last the call (6 s), screenshare files the screenshare (3 s).
        let expected_s = if file.contains("_shared_") { 3.0 } else { CALL_MS as f64 / 1000.0 };
        let duration = duration_s(path);
        assert!((duration - expected_s).abs() < 0.15, "{file} lasts {duration} s, expected {expected_s} s");
    }
    let mix = format!(
        "composite_{}_{}_audio_{}.mkv",
        call.plan.call_type, call.plan.call_id, call.plan.spec.call_start_unix_ms
    );
    assert!(files.contains_key(&mix), "the mix: {mix} in {:?}", files.keys());
    assert_eq!(files.len(), expected.len() + 1, "{:?}", files.keys());

    // Remuxed, not re-encoded: the sender's resolution.
    let probe = ffprobe(&files[&name("bob", "video_only")]);
    let v = stream(&probe, "video");
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(320), Some(180)));

    // alice's microphone: 6 s long with the muted second filled with silence, beeps on time.
    let manifest = check_manifest(&out);
    let entry = |file: &str| {
        manifest["outputs"].as_array().and_then(|o| o.iter().find(|e| e["file"] == file)).cloned().expect("entry")
    };
    let alice_audio = &files[&name("alice", "audio_only")];
    let samples = decode_audio(alice_audio);
    let decoded_ms = samples.len() as f64 / 48.0;
    let offset_ms = entry(&name("alice", "audio_only"))["offset_ms"].as_f64().expect("offset");
    assert!((decoded_ms + offset_ms - CALL_MS as f64).abs() < 60.0, "decoded {decoded_ms} ms from {offset_ms} ms");
    let alice = &call.plan.participants[0];
    for &flash in &alice.flashes_ms {
        let onset =
            beep_onset_ms(&samples, BEEP_HZ, flash as f64 - offset_ms - 300.0, flash as f64 - offset_ms + 300.0)
                .unwrap_or_else(|| panic!("alice's beep at {flash} ms missing"));
        assert!((onset + offset_ms - flash as f64).abs() < 25.0, "beep at {flash}: heard at {}", onset + offset_ms);
    }
    let muted = tone_at(&samples, alice.tone_hz, 2300.0 - offset_ms, 400.0);
    let talking = tone_at(&samples, alice.tone_hz, 4300.0 - offset_ms, 400.0);
    assert!(muted < talking * 0.05, "the mute is silence: {muted} vs {talking}");

    // bob's camera was off for a second: black there, his colour around it (remuxed, only the
    // black frame was encoded here).
    let bob_video = at_10_fps(&files[&name("bob", "video_only")]);
    let bob = &call.plan.participants[1];
    for (t_ms, black) in [(1500.0, false), (2500.0, true), (3500.0, false)] {
        let rgb = bob_video.mean_rgb((t_ms / 100.0) as usize, 4, 9, 2);
        let dark = rgb.iter().all(|c| *c < 30.0);
        assert_eq!(dark, black, "bob's video at {t_ms} ms is {rgb:?} (his colour {:?})", bob.rgb);
    }

    // The screenshare files cover the screenshare, not the call.
    let shared = duration_s(&files[&name("alice", "shared_video_only")]);
    assert!((shared - 3.0).abs() < 0.25, "screenshare video lasts {shared} s");
    let shared_entry = entry(&name("alice", "shared_audio_video"));
    assert!((shared_entry["offset_ms"].as_f64().expect("offset") - 1000.0).abs() < 50.0, "{shared_entry}");
    assert_eq!(shared_entry["participant_id"], "alice");
    assert_eq!(shared_entry["kind"], "screenshare_audio_video");
    assert!(shared_entry["streams"].as_array().expect("streams").iter().all(|s| s["remuxed"] == true));
}

#[test]
fn stream_commands_filter_validate_and_align() {
    let call = call();
    // extract-audio for one user, padded to the call.
    let out = call.dir.path().join("bob");
    stream_command("extract-audio", &call, &out, &["--user-id", "bob", "--align-to-call"]);
    let files = outputs(&out);
    let bob_audio = individual_name(&call, "bob", "audio_only");
    assert_eq!(files.keys().cloned().collect::<Vec<_>>(), vec![bob_audio.clone()]);
    let samples = decode_audio(&files[&bob_audio]);
    assert!((samples.len() as f64 / 48.0 - CALL_MS as f64).abs() < 60.0, "aligned: {} ms", samples.len() / 48);
    check_manifest(&out);

    // Aligned video: black from the call's start until the screenshare begins, to the call's end.
    let out = call.dir.path().join("aligned-video");
    stream_command("extract-video", &call, &out, &["--user-id", "alice", "--align-to-call"]);
    let shared = outputs(&out).get(&individual_name(&call, "alice", "shared_video_only")).cloned().expect("shared");
    assert!((duration_s(&shared) - CALL_MS as f64 / 1000.0).abs() < 0.1, "aligned: {} s", duration_s(&shared));
    let frames = at_10_fps(&shared);
    assert!(frames.mean_rgb(5, 16, 9, 2).iter().all(|c| *c < 30.0), "black before the screenshare");
    assert!(frames.mean_rgb(20, 16, 9, 2).iter().any(|c| *c > 60.0), "the screenshare at 2 s");
    assert!(frames.mean_rgb(50, 16, 9, 2).iter().all(|c| *c < 30.0), "black after the screenshare");

    // extract-video --fill-gaps=false is accepted; mux-av --media display pairs only the screenshare.
    let out = call.dir.path().join("display");
    stream_command("mux-av", &call, &out, &["--media", "display"]);
    assert_eq!(
        outputs(&out).keys().cloned().collect::<Vec<_>>(),
        vec![individual_name(&call, "alice", "shared_audio_video")]
    );
    let out = call.dir.path().join("video");
    stream_command(
        "extract-video",
        &call,
        &out,
        &["--fill-gaps=false", "--session-id", &call.plan.participants[1].user_session_id],
    );
    assert_eq!(outputs(&out).len(), 1);

    // Bad flags: errors naming the problem, nothing written.
    let input = call.input.to_str().expect("utf-8");
    let bad_out = call.dir.path().join("bad");
    let bad_out = bad_out.to_str().expect("utf-8");
    for (args, want) in [
        (vec!["extract-audio", "--user-id", "nobody"], "list-tracks --format users"),
        (vec!["extract-audio", "--user-id", "bob", "--track-id", "x"], "only one filter"),
        (vec!["mux-av", "--media", "screen"], "screen"),
        (vec!["mix-audio", "--format", "wav"], "wav"),
    ] {
        let mut full = vec!["raw"];
        full.extend(args.iter().copied());
        full.extend(["--input-dir", input, "--output", bad_out]);
        let result = tessera(&full);
        assert!(!result.status.success() && text(&result).contains(want), "{full:?}: {}", text(&result));
    }
    assert!(!Path::new(bad_out).exists() || outputs(Path::new(bad_out)).is_empty());

    // mix-audio --format mp3: the whole call, every participant's beep on time.
    let out = call.dir.path().join("mix");
    stream_command("mix-audio", &call, &out, &["--format", "mp3"]);
    let files = outputs(&out);
    let (name, mp3) = files.iter().next().expect("the mix");
    assert!(name.ends_with(".mp3") && name.contains("_audio_"), "{name}");
    assert_eq!(streams(mp3), vec![("audio".to_owned(), "mp3".to_owned())]);
    let samples = decode_audio(mp3);
    assert!((samples.len() as f64 / 48.0 - CALL_MS as f64).abs() < 80.0, "mix lasts {} ms", samples.len() / 48);
    for p in &call.plan.participants {
        for &flash in &p.flashes_ms {
            let onset = beep_onset_ms(&samples, BEEP_HZ, flash as f64 - 300.0, flash as f64 + 300.0)
                .unwrap_or_else(|| panic!("{}'s beep at {flash} missing from the mix", p.participant_id));
            assert!((onset - flash as f64).abs() < 25.0, "{} beep at {flash}: heard at {onset}", p.participant_id);
        }
    }

    // list-tracks: deterministic, complete.
    let users = run_ok(&["raw", "list-tracks", "--input-dir", input, "--format", "users"]);
    assert_eq!(users.lines().collect::<Vec<_>>(), vec!["alice", "bob", "carol"]);
    let json: serde_json::Value =
        serde_json::from_str(&run_ok(&["raw", "list-tracks", "--input-dir", input, "--format", "json"])).expect("json");
    let tracks = json["tracks"].as_array().expect("tracks");
    assert_eq!(tracks.len(), 2 + 2 + 1 + 2, "{json}");
    assert_eq!(tracks.iter().filter(|t| t["isScreenshare"] == true).count(), 2);
    let table = run_ok(&["raw", "list-tracks", "--input-dir", input, "--track-type", "video"]);
    assert_eq!(table.lines().count(), 1 + 3, "{table}");
}

#[test]
fn composite_codecs_and_audio_only_formats() {
    let call = call();
    let input = call.input.to_str().expect("utf-8");
    let small = ["--size", "320x180", "--fps", "15"];
    // VP9 + Opus in WebM, with every audio-only format beside it.
    let out = call.dir.path().join("webm");
    let mut args = vec!["raw", "composite", "--input-dir", input, "--output", out.to_str().expect("utf-8")];
    args.extend(small);
    args.extend(["--codec", "vp9", "--audio-only", "mp3,m4a,ogg"]);
    run_ok(&args);
    let files = outputs(&out);
    let by_ext = |ext: &str| files.iter().find(|(n, _)| n.ends_with(ext)).map(|(_, p)| p.clone()).expect(ext);
    assert_eq!(streams(&by_ext(".webm")), vec![("video".into(), "vp9".into()), ("audio".into(), "opus".into())]);
    for (ext, codec) in [(".mp3", "mp3"), (".m4a", "aac"), (".ogg", "opus")] {
        let path = by_ext(ext);
        assert_eq!(streams(&path), vec![("audio".to_owned(), codec.to_owned())], "{ext}");
        let samples = decode_audio(&path);
        assert!((samples.len() as f64 / 48.0 - CALL_MS as f64).abs() < 80.0, "{ext}: {} ms", samples.len() / 48);
        let flash = call.plan.participants[1].flashes_ms[0] as f64;
        let onset = beep_onset_ms(&samples, BEEP_HZ, flash - 300.0, flash + 300.0).expect("beep");
        assert!((onset - flash).abs() < 25.0, "{ext}: beep at {flash} heard at {onset}");
    }
    let manifest = check_manifest(&out);
    let composite =
        manifest["outputs"].as_array().and_then(|o| o.iter().find(|e| e["kind"] == "composite")).expect("c");
    assert_eq!(composite["encoder"], "vp9enc");

    // H.265 and AV1 in MP4.
    for (codec, encoder, probe_name) in [("h265", "x265enc", "hevc"), ("av1", "av1enc", "av1")] {
        let out = call.dir.path().join(codec);
        let mut args = vec!["raw", "composite", "--input-dir", input, "--output", out.to_str().expect("utf-8")];
        args.extend(small);
        args.extend(["--codec", codec, "--hardware", "off"]);
        let stdout = run_ok(&args);
        assert!(stdout.contains(encoder), "{stdout}");
        let files = outputs(&out);
        let mp4 = files.values().next().expect("composite");
        assert_eq!(streams(mp4), vec![("video".into(), probe_name.into()), ("audio".into(), "aac".into())]);
        assert!((duration_s(mp4) - CALL_MS as f64 / 1000.0).abs() < 0.2, "{codec}");
    }

    // Individual files in another codec: re-encoded where the codec changes, remuxed where not.
    let out = call.dir.path().join("transcoded");
    let mut args = vec!["raw", "composite", "--input-dir", input, "--output", out.to_str().expect("utf-8")];
    args.extend(small);
    args.extend(["--no-video", "--individual", "audio_video", "--individual-codec", "h264"]);
    args.extend(["--individual-audio-format", "m4a"]);
    run_ok(&args);
    let files = outputs(&out);
    let named = |participant: &str, ext: &str| {
        let stem = individual_name(&call, participant, "audio_video");
        files.get(&stem.replace(".mkv", ext)).cloned().unwrap_or_else(|| panic!("{stem} as {ext}: {:?}", files.keys()))
    };
    let alice = named("alice", ".mp4");
    assert_eq!(streams(&alice), vec![("video".into(), "h264".into()), ("audio".into(), "aac".into())]);
    let probe = ffprobe(&alice);
    assert_eq!(stream(&probe, "video")["width"].as_u64(), Some(320), "the sender's size");
    let samples = decode_audio(&alice);
    let flash = call.plan.participants[0].flashes_ms[0] as f64;
    let onset = beep_onset_ms(&samples, BEEP_HZ, flash - 300.0, flash + 300.0).expect("alice's beep");
    assert!((onset - flash).abs() < 25.0, "re-encoded beep at {flash} heard at {onset}");
    assert_eq!(streams(&named("bob", ".mkv")), vec![("audio".into(), "opus".into()), ("video".into(), "h264".into())]);
    assert_eq!(streams(&named("carol", ".m4a")), vec![("audio".to_owned(), "aac".to_owned())]);
    let manifest = check_manifest(&out);
    for entry in manifest["outputs"].as_array().expect("outputs") {
        let remuxed = entry["file"].as_str().is_some_and(|f| f.ends_with(".mkv"));
        assert!(entry["streams"].as_array().expect("streams").iter().all(|s| s["remuxed"] == remuxed), "{entry}");
    }

    // `--hardware require` on a node without a working hardware encoder fails, naming them.
    let out = call.dir.path().join("hw");
    let mut args = vec!["raw", "composite", "--input-dir", input, "--output", out.to_str().expect("utf-8")];
    args.extend(small);
    args.extend(["--hardware", "require"]);
    let result = tessera(&args);
    if result.status.success() {
        let manifest = support::manifest(&out);
        let encoder = manifest["outputs"][0]["encoder"].as_str().unwrap_or("").to_owned();
        assert!(!encoder.starts_with("x264"), "require gave a software encoder: {encoder}");
    } else {
        let message = text(&result);
        assert!(message.contains("no working h264 encoder (hardware: require; tried: nvh264enc"), "{message}");
        assert!(outputs(&out).is_empty());
    }
}

#[test]
fn remuxed_video_keeps_the_senders_orientation_when_it_turns_portrait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    let rotate =
        |participant: &str| SynthEvent { participant: participant.into(), action: SynthAction::Rotate { at_ms: 2000 } };
    let spec = SynthSpec {
        participants: 2,
        duration_ms: 4000,
        width: 320,
        height: 180,
        fps: 15,
        video_codecs: vec![Codec::H264, Codec::Vp8],
        events: vec![rotate("alice"), rotate("bob")],
        ..SynthSpec::default()
    };
    synth(&spec, &input).expect("synth");
    let out = dir.path().join("out");
    let args = [
        "raw",
        "extract-video",
        "--input-dir",
        input.to_str().expect("utf-8"),
        "--output",
        out.to_str().expect("utf-8"),
    ];
    run_ok(&args);
    let files = outputs(&out);
    assert_eq!(files.len(), 2);
    for path in files.values() {
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v", "-show_entries", "frame=width,height", "-of", "csv=p=0"])
            .arg(path)
            .output()
            .expect("ffprobe frames");
        let sizes: Vec<String> = String::from_utf8_lossy(&probe.stdout)
            .lines()
            .map(|l| l.trim_end_matches(',').to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        let landscape = sizes.iter().filter(|s| s.as_str() == "320,180").count();
        let portrait = sizes.iter().filter(|s| s.as_str() == "180,320").count();
        assert_eq!(landscape + portrait, sizes.len(), "{}: {sizes:?}", path.display());
        assert!(
            (25..=35).contains(&landscape) && (25..=35).contains(&portrait),
            "{}: {landscape} + {portrait}",
            path.display()
        );
    }
    check_manifest(&out);
}

#[test]
fn a_failed_track_fails_the_command_and_the_others_are_still_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    let spec = SynthSpec {
        participants: 2,
        duration_ms: 2000,
        width: 160,
        height: 90,
        video_codecs: vec![Codec::Vp8, Codec::H264],
        ..SynthSpec::default()
    };
    synth(&spec, &input).expect("synth");
    // bob's camera claims to be AV1, which this GStreamer cannot depayload.
    for path in files_in(&input.join("bob")) {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
        if name.ends_with("_video_0.sdp") || name.ends_with("_timing_metadata.json") {
            let text = std::fs::read_to_string(&path).expect("read");
            std::fs::write(&path, text.replace("H264/90000", "AV1/90000").replace("video/H264", "video/AV1"))
                .expect("write");
        }
    }
    let out = dir.path().join("out");
    let result = tessera(&[
        "raw",
        "extract-video",
        "--input-dir",
        input.to_str().expect("utf-8"),
        "--output",
        out.to_str().expect("utf-8"),
    ]);
    let message = text(&result);
    assert!(!result.status.success(), "{message}");
    assert!(message.contains("video_only of bob") && message.contains("rtpav1depay"), "{message}");
    let files = outputs(&out);
    assert_eq!(files.len(), 1, "alice's file is written: {:?}", files.keys());
    assert!(files.keys().all(|f| f.contains("_alice_")));
    check_manifest(&out);
}
