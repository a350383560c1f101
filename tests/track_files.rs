//! Track files as a source: a call's individual recordings (one audio and one video file per
//! participant, written by `tessera raw extract-audio` / `extract-video`; one participant's
//! audio and video together in one file written by `mux-av`) given to `tessera render` as a
//! `trackFiles` source with each file's offset on the call clock. The composite shows every
//! participant in place with every flash and beep at its call time.

mod support;

use std::path::Path;

use support::*;
use tessera::ingest::sdp::Codec;
use tessera::layout::{Layout, RectF};
use tessera::synth::plan::BEEP_HZ;
use tessera::synth::{SynthPlan, SynthSpec, synth};

const FPS: f64 = 30.0;
const FRAME_MS: f64 = 1000.0 / FPS;
const SCALE: f64 = 2.0;

fn cells(count: usize) -> Vec<RectF> {
    let layout = Layout::builtin("grid").expect("grid layout");
    layout.place(&vec![Some((640, 360)); count], 640, 360).into_iter().map(|t| t.cell).collect()
}

fn centre(cell: &RectF) -> (usize, usize) {
    let (x, y) = cell.center();
    ((f64::from(x) / SCALE) as usize, (f64::from(y) / SCALE) as usize)
}

/// `(file, participant, offset_ms)` of every file the manifest in `dir` lists.
fn listed_files(dir: &Path) -> Vec<(String, String, f64)> {
    let manifest = manifest(dir);
    manifest["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|entry| {
            (
                dir.join(entry["file"].as_str().expect("file")).display().to_string(),
                entry["participant_id"].as_str().expect("participant").to_owned(),
                entry["offset_ms"].as_f64().expect("offset"),
            )
        })
        .collect()
}

#[test]
fn a_composite_from_track_files_keeps_every_flash_and_beep_on_the_call_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = SynthSpec {
        participants: 3,
        duration_ms: 4000,
        width: 320,
        height: 180,
        video_codecs: vec![Codec::Vp8, Codec::H264, Codec::Vp8],
        join_stagger_ms: 400,
        ..SynthSpec::default()
    };
    let plan = SynthPlan::new(&spec);
    let input = dir.path().join("call");
    synth(&spec, &input).expect("synth");
    let input_arg = input.to_str().expect("utf-8");

    // alice and bob: audio and video apart; carol: both in one file.
    let apart = dir.path().join("apart");
    let together = dir.path().join("together");
    for (command, out, user) in [
        ("extract-audio", &apart, "alice"),
        ("extract-video", &apart.join("v-alice"), "alice"),
        ("extract-audio", &apart.join("a-bob"), "bob"),
        ("extract-video", &apart.join("v-bob"), "bob"),
        ("mux-av", &together, "carol"),
    ] {
        let out_arg = out.to_str().expect("utf-8");
        let result = tessera(&["raw", command, "--input-dir", input_arg, "--output", out_arg, "--user-id", user]);
        assert!(result.status.success(), "{command}: {}", text(&result));
    }
    let mut files = Vec::new();
    for out in [apart.clone(), apart.join("v-alice"), apart.join("a-bob"), apart.join("v-bob"), together] {
        files.extend(listed_files(&out));
    }
    assert_eq!(files.len(), 5, "{files:?}");
    assert!(files.iter().any(|(_, _, offset)| *offset > 300.0), "late joiners' files start late: {files:?}");

    let entries: Vec<String> = files
        .iter()
        .map(|(uri, participant, offset)| {
            format!(r#"{{"uri": "{uri}", "participantId": "{participant}", "startOffsetMs": "{}"}}"#, offset.round())
        })
        .collect();
    let out = dir.path().join("out");
    let job = format!(
        r#"{{
          "requestId": "tracks-1",
          "spec": {{
            "sources": [{{"trackFiles": {{"files": [{files}], "callId": "{call_id}",
                                          "callStartUnixMs": "{start}"}}}}],
            "video": {{"width": 640, "height": 360, "fps": 30}},
            "outputs": [{{"kind": "composite"}}],
            "storage": {{"type": "local", "pathPrefix": "{out}"}}
          }}
        }}"#,
        files = entries.join(", "),
        call_id = plan.call_id,
        start = spec.call_start_unix_ms,
        out = out.display()
    );
    let job_path = dir.path().join("job.json");
    std::fs::write(&job_path, job).expect("write job");
    let result = tessera(&["render", job_path.to_str().expect("utf-8")]);
    assert!(result.status.success(), "render failed: {}", text(&result));
    let mp4 = out.join(format!("composite_default_{}_{}.mp4", plan.call_id, spec.call_start_unix_ms));
    assert!(mp4.is_file(), "{:?}", files_in(&out));

    let probe = ffprobe(&mp4);
    let duration_s = f64_field(&probe["format"], "duration");
    assert!((duration_s * 1000.0 - 4000.0).abs() <= 2.0 * FRAME_MS, "duration {duration_s} s, call 4 s");
    let frames = Frames::decode(&mp4, 320, 180);
    let three = cells(3);
    let frame_at = |t_ms: f64| (t_ms / FRAME_MS).round() as usize;
    for (participant, cell) in plan.participants.iter().zip(&three) {
        let at = centre(cell);
        let got = frames.mean_rgb(frame_at(3500.0), at.0, at.1, 3);
        for c in 0..3 {
            assert!(
                (got[c] - f64::from(participant.rgb[c])).abs() <= 16.0,
                "{} in its cell: {got:?} vs {:?}",
                participant.participant_id,
                participant.rgb
            );
        }
        assert_flashes_on_time(&frames, &participant.participant_id, &participant.flashes_ms, at, FRAME_MS);
    }
    let samples = decode_audio(&mp4);
    for participant in &plan.participants {
        assert_beeps_on_time(&samples, BEEP_HZ, &participant.participant_id, &participant.flashes_ms, FRAME_MS);
    }
}

#[test]
fn bad_track_files_are_refused_with_their_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_media = dir.path().join("notes.txt");
    std::fs::write(&not_media, "not a media file").expect("write");
    let job = format!(
        r#"{{"spec": {{
            "sources": [{{"trackFiles": {{"files": [
                {{"uri": "https://example.invalid/a.mkv", "participantId": "a"}},
                {{"uri": "{path}", "participantId": ""}},
                {{"uri": "{path}", "participantId": "c", "startOffsetMs": "-5"}}]}}}}],
            "outputs": [{{"kind": "composite"}}, {{"kind": "audio_only"}}],
            "storage": {{"type": "local", "pathPrefix": "{out}"}}
        }}}}"#,
        path = not_media.display(),
        out = dir.path().join("out").display()
    );
    let job_path = dir.path().join("job.json");
    std::fs::write(&job_path, job).expect("write job");
    let result = tessera(&["render", job_path.to_str().expect("utf-8")]);
    assert!(!result.status.success());
    let message = text(&result);
    for field in [
        "sources[0].track_files.files[0].uri",
        "sources[0].track_files.files[1].participant_id",
        "sources[0].track_files.files[2].start_offset_ms",
        "outputs: track files are individual recordings already",
    ] {
        assert!(message.contains(field), "`{field}` not named in: {message}");
    }

    // A file that is not media: the render fails naming it.
    let job = format!(
        r#"{{"spec": {{
            "sources": [{{"trackFiles": {{"files": [{{"uri": "{path}", "participantId": "a"}}]}}}}],
            "outputs": [{{"kind": "composite"}}],
            "storage": {{"type": "local", "pathPrefix": "{out}"}}
        }}}}"#,
        path = not_media.display(),
        out = dir.path().join("out").display()
    );
    std::fs::write(&job_path, job).expect("write job");
    let result = tessera(&["render", job_path.to_str().expect("utf-8")]);
    assert!(!result.status.success());
    assert!(text(&result).contains("notes.txt"), "{}", text(&result));
}
