//! `tessera render JOB.json`: the job spec a control plane sends to CreateRenderJob, run
//! without a server. A synthetic call rendered from a job file into the outputs it names, and
//! bad job files refused with the path of every bad field, secrets never echoed.

mod support;

use std::path::Path;

use support::*;
use tessera::synth::{SynthSpec, synth};

fn write_job(dir: &Path, json: &str) -> String {
    let path = dir.join("job.json");
    std::fs::write(&path, json).expect("write job");
    path.to_str().expect("utf-8").to_owned()
}

#[test]
fn a_job_file_renders_the_outputs_it_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    synth(&SynthSpec { participants: 2, duration_ms: 3000, width: 160, height: 90, ..SynthSpec::default() }, &input)
        .expect("synth");
    let out = dir.path().join("out");
    let job = format!(
        r##"{{
          "requestId": "job-1",
          "spec": {{
            "sources": [{{"rawArchive": "{input}"}}],
            "video": {{"width": 320, "height": 180, "fps": 15, "codec": "vp8", "backgroundRgb": "#003300"}},
            "outputs": [{{"kind": "composite"}}, {{"kind": "composite_audio", "container": "ogg"}},
                        {{"kind": "audio_only"}}],
            "storage": {{"type": "local", "pathPrefix": "{out}"}}
          }}
        }}"##,
        input = input.display(),
        out = out.display()
    );
    let path = write_job(dir.path(), &job);
    let result = tessera(&["render", &path]);
    assert!(result.status.success(), "{}", text(&result));
    assert!(String::from_utf8_lossy(&result.stdout).contains("job job-1"), "{}", text(&result));
    let manifest = manifest(&out);
    let outputs = manifest["outputs"].as_array().expect("outputs");
    let kinds: Vec<&str> = outputs.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(kinds, vec!["composite", "composite_audio", "audio_only", "audio_only"]);
    let webm = out.join(outputs[0]["file"].as_str().expect("file"));
    let probe = ffprobe(&webm);
    assert_eq!(stream(&probe, "video")["codec_name"], "vp8");
    assert_eq!(stream(&probe, "video")["width"].as_u64(), Some(320));
    // The background colour asked for, in a corner no tile covers.
    let frames = Frames::decode_window(&webm, 32, 18, Some((1000.0, 100.0)));
    let corner = frames.mean_rgb(0, 0, 0, 0);
    assert!(corner[1] > corner[0] + 20.0 && corner[1] > corner[2] + 20.0, "green background: {corner:?}");
    assert_eq!(stream(&ffprobe(&out.join(outputs[1]["file"].as_str().expect("file"))), "audio")["codec_name"], "opus");
}

#[test]
fn bad_job_files_name_every_bad_field_and_never_echo_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_job(
        dir.path(),
        r#"{"spec": {"sources": [{"rawArchive": "/nowhere/call.zip"}], "video": {"width": 333},
            "outputs": [{"kind": "individual"}],
            "storage": {"type": "sftp", "host": "127.0.0.1", "password": "hunter2"}}}"#,
    );
    let result = tessera(&["render", &path]);
    let message = text(&result);
    assert!(!result.status.success(), "{message}");
    for field in ["video.width", "outputs[0].kind", "storage.username"] {
        assert!(message.contains(field), "{field} named: {message}");
    }
    assert!(!message.contains("hunter2"), "{message}");

    let path = write_job(dir.path(), r#"{"spec": {"video": {"fps": 30, "framerate": 25}}}"#);
    let result = tessera(&["render", &path]);
    assert!(!result.status.success() && text(&result).contains("spec.video.framerate"), "{}", text(&result));

    // A valid spec whose archive does not exist: the ingest error names the path.
    let out = dir.path().join("out");
    let path = write_job(
        dir.path(),
        &format!(
            r#"{{"spec": {{"sources": [{{"rawArchive": "/nowhere/call.zip"}}], "outputs": [{{"kind": "composite"}}],
                "storage": {{"pathPrefix": "{}"}}}}}}"#,
            out.display()
        ),
    );
    let result = tessera(&["render", &path]);
    assert!(!result.status.success() && text(&result).contains("/nowhere/call.zip"), "{}", text(&result));
}
