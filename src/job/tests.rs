use super::parse_job;
use super::spec::{redacted, remote_source, validate};
use crate::outputs::{AudioFormat, HardwarePreference, IndividualKind, VideoCodec};
use crate::proto as pb;

const GOOD: &str = r##"{
  "requestId": "call-42",
  "spec": {
    "sources": [{"rawArchive": "/data/call.zip"}],
    "video": {"width": 1280, "height": 720, "fps": 25, "codec": "vp9", "hardware": "HARDWARE_OFF",
              "crf": 30, "keyframe_interval_ms": 1000, "backgroundRgb": "#203040"},
    "audio": {"bitrateKbps": 96},
    "outputs": [
      {"kind": "composite"},
      {"kind": "composite_audio", "container": "m4a"},
      {"kind": "audio_video", "codec": "h264", "alignToCall": true},
      {"kind": "screenshare_video_only", "codec": "h264", "alignToCall": true}
    ],
    "storage": {"type": "local", "pathPrefix": "/out", "secret": "hunter2"}
  }
}"##;

fn spec(json: &str) -> pb::RenderJobSpec {
    parse_job(json.as_bytes()).expect("parses").spec.expect("a spec")
}

#[test]
fn a_full_job_becomes_a_render_request() {
    let job = parse_job(GOOD.as_bytes()).expect("parses");
    assert_eq!(job.request_id, "call-42");
    let request = validate(job.spec.as_ref().expect("spec")).expect("valid");
    assert_eq!(request.input, crate::render::RenderInput::Archive("/data/call.zip".into()));
    assert_eq!(request.output_dir.to_str(), Some("/out"));
    assert_eq!((request.encode.width, request.encode.height, request.encode.fps), (1280, 720, 25));
    assert_eq!(request.encode.hardware, HardwarePreference::Off);
    assert_eq!(request.encode.quality.crf, 30);
    assert_eq!(request.encode.quality.keyframe_interval_frames, 25);
    assert_eq!(request.encode.audio_bitrate_kbps, 96);
    let background = request.staging.first_layout().map(|l| l.background);
    assert_eq!(background, Some(crate::layout::Rgb([0x20, 0x30, 0x40])));
    let outputs = &request.outputs;
    assert_eq!(outputs.composite_video, Some(VideoCodec::Vp9));
    assert_eq!(outputs.composite_audio, vec![AudioFormat::M4a]);
    assert_eq!(outputs.individual, vec![IndividualKind::AudioVideo, IndividualKind::ScreenshareVideoOnly]);
    assert_eq!(outputs.individual_video_codec, Some(VideoCodec::H264));
    assert!(outputs.align_to_call);
}

#[test]
fn defaults_fill_what_the_spec_leaves_out() {
    let request = validate(&spec(
        r#"{"spec": {"sources": [{"raw_archive": "call"}], "outputs": [{"kind": "composite"}],
            "storage": {"path_prefix": "out"}}}"#,
    ))
    .expect("valid");
    assert_eq!((request.encode.width, request.encode.height, request.encode.fps), (1920, 1080, 30));
    assert_eq!(request.encode.codec, VideoCodec::H264);
    assert_eq!(request.encode.quality.preset, "veryfast");
    assert_eq!(request.encode.quality.crf, 23);
    assert_eq!(request.encode.quality.keyframe_interval_frames, 60);
    assert_eq!(request.staging.layouts.len(), 1);
    assert_eq!(request.staging.first_layout().map(|l| l.name.as_str()), Some("grid"));
}

#[test]
fn a_lossless_crf_is_refused_by_name() {
    let err = validate(&spec(&GOOD.replace(r#""crf": 30"#, r#""crf": 0"#))).expect_err("crf 0");
    let fields: Vec<&str> = err.0.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, vec!["video.crf"]);
}

#[test]
fn every_bad_field_is_reported_with_its_path() {
    let err = validate(&spec(
        r#"{"spec": {
            "sources": [{"rawArchive": "ftp://bucket/call.zip"}],
            "layout": "mosaic",
            "video": {"width": 1001, "fps": 500, "codec": "h266", "preset": "warp", "crf": 60,
                      "backgroundRgb": "blue"},
            "audio": {"sampleRateHz": 44100, "channels": 6},
            "outputs": [{"kind": "composite", "container": "mkv"}, {"kind": "composite_audio", "container": "wav"},
                        {"kind": "everything"}, {"kind": "audio_only", "codec": "vp8"},
                        {"kind": "video_only", "codec": "h264"}],
            "storage": {"type": "s3", "secret": "hunter2"},
            "webhook": {"url": "ftp://example.invalid/hook", "signingSecret": "s3cret"}
        }}"#,
    ))
    .expect_err("invalid");
    let fields: Vec<&str> = err.0.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "sources[0].raw_archive",
            "layout",
            "video.width",
            "video.fps",
            "video.codec",
            "video.preset",
            "video.crf",
            "video.background_rgb",
            "audio.sample_rate_hz",
            "audio.channels",
            "outputs[0].container",
            "outputs[1].container",
            "outputs[2].kind",
            "outputs[4].codec",
            "storage.bucket",
            "storage.access_key",
            "webhook.url",
            "webhook.signing_secret",
        ]
    );
    let message = err.to_string();
    assert!(message.contains("`wav`") && message.contains("h266") && message.contains("1001"), "{message}");
    assert!(!message.contains("hunter2") && !message.contains("s3cret"), "secrets never appear: {message}");
}

#[test]
fn missing_sources_outputs_and_storage_are_reported() {
    let err = validate(&spec(r#"{"spec": {}}"#)).expect_err("invalid");
    let fields: Vec<&str> = err.0.iter().map(|v| v.field.as_str()).collect();
    // No storage is the node's to judge: it may have a default (see admission).
    assert_eq!(fields, vec!["sources", "outputs"]);
}

#[test]
fn unknown_json_fields_are_refused_with_their_path() {
    let (field, reason) = parse_job(br#"{"spec": {"video": {"widht": 640}}}"#).expect_err("unknown field");
    assert_eq!(field, "spec.video.widht");
    assert!(reason.contains("widht"), "{reason}");
    let (field, _) = parse_job(br#"{"spec": {"outputs": [{"kind": 3}]}}"#).expect_err("wrong type");
    assert_eq!(field, "spec.outputs[0].kind");
}

#[test]
fn secrets_are_redacted() {
    let spec = spec(GOOD);
    let shown = serde_json::to_string(&redacted(&spec)).expect("json");
    assert!(!shown.contains("hunter2") && shown.contains("(redacted)"), "{shown}");
    assert!(serde_json::to_string(&spec).expect("json").contains("hunter2"), "the original is untouched");
}

#[test]
fn http_sources_are_taken_and_their_query_is_never_shown() {
    let mut job = spec(GOOD);
    job.sources[0].kind =
        Some(pb::source::Kind::RawArchive("https://bucket.example/call.zip?X-Amz-Signature=abc".into()));
    validate(&job).expect("an https source is valid");
    assert_eq!(remote_source(&job), Some("https://bucket.example/call.zip?X-Amz-Signature=abc"));
    let shown = serde_json::to_string(&redacted(&job)).expect("json");
    assert!(!shown.contains("abc") && shown.contains("call.zip?(redacted)"), "{shown}");
    job.sources[0].kind = Some(pb::source::Kind::RawArchive("ftp://bucket.example/call.zip".into()));
    let err = validate(&job).expect_err("ftp");
    assert_eq!(err.0[0].field, "sources[0].raw_archive");
    job.sources[0].kind = Some(pb::source::Kind::RawArchive("/data/call.zip".into()));
    assert_eq!(remote_source(&job), None);
}

#[test]
fn strings_from_requests_have_length_limits_and_are_quoted_short() {
    let mut job = spec(GOOD);
    let huge = "x".repeat(3 << 20);
    job.layout = huge.clone();
    job.layout_inline = huge.clone();
    job.layout_timeline = vec![pb::LayoutChange { at_ms: 5, layout: "grid".into(), layout_inline: huge.clone() }];
    job.participants = vec![pb::Participant { id: "alice".into(), name: huge.clone(), ..Default::default() }];
    if let Some(storage) = job.storage.as_mut() {
        storage.path_prefix = format!("/{huge}");
        storage.secret = huge.clone();
    }
    job.outputs[0].kind = huge.clone();
    job.webhook = Some(pb::Webhook { url: format!("https://a.example/{huge}"), signing_secret: "s".repeat(16) });
    let err = validate(&job).expect_err("too long");
    let fields: Vec<&str> = err.0.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "layout",
            "layout_inline",
            "layout_timeline[0].layout_inline",
            "participants[0].name",
            "outputs[0].kind",
            "storage.path_prefix",
            "storage.secret",
            "webhook.url"
        ]
    );
    let message = err.to_string();
    assert!(message.len() < 1500, "a short message: {} bytes", message.len());
    assert!(message.contains("storage.path_prefix: 3145729 bytes, over the limit of 4096 bytes"), "{message}");
    assert!(!message.contains("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), "{message}");
    let mut files = spec(GOOD);
    files.sources[0].kind = Some(pb::source::Kind::TrackFiles(pb::TrackFiles {
        call_id: "c".repeat(257),
        files: vec![pb::TrackFile { uri: "/data/a.mkv".into(), participant_id: "p".repeat(257), ..Default::default() }],
        ..Default::default()
    }));
    files.outputs.truncate(2);
    let fields: Vec<String> = validate(&files).expect_err("too long").0.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["sources[0].track_files.call_id", "sources[0].track_files.files[0].participant_id"]);
}
