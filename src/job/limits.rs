//! How long a string in a request may be, and how many outputs and track files a job may name.
//! Checked before anything else, so no other check ever sees (or echoes) an over-long value.
//! The violations name the field, the length and the limit, never the value. Pure.

use super::spec::FieldViolation;
use crate::proto as pb;

/// Names of things: layout, codec, preset, colour, output kind and container, storage type,
/// region, auth method.
pub const MAX_NAME_BYTES: usize = 64;
/// Ids: `requestId`, call type and id, participant and session ids, bucket, host, user name;
/// display names.
pub const MAX_ID_BYTES: usize = 256;
/// `storage.pathPrefix`.
pub const MAX_PATH_BYTES: usize = 4096;
/// Source paths and URLs, track file URIs, the webhook URL, the storage endpoint (a presigned
/// URL is long).
pub const MAX_URL_BYTES: usize = 8192;
/// Keys, secrets, passwords, private keys (a PEM key is a few KiB).
pub const MAX_SECRET_BYTES: usize = 16384;
/// An inline layout (a layout file is a few KiB).
pub const MAX_LAYOUT_BYTES: usize = 65536;
/// Outputs of one job.
pub const MAX_OUTPUTS: usize = 32;
/// Track files of one source.
pub const MAX_TRACK_FILES: usize = 1024;

/// The violation of `field` when `value` is longer than `max_bytes`.
fn too_long(field: impl Into<String>, value: &str, max_bytes: usize) -> Option<FieldViolation> {
    (value.len() > max_bytes).then(|| FieldViolation {
        field: field.into(),
        reason: format!("{} bytes, over the limit of {max_bytes} bytes", value.len()),
    })
}

/// The violations of a PushMedia hello's ids over [`MAX_ID_BYTES`].
pub fn hello_lengths(hello: &pb::PushHello) -> Vec<FieldViolation> {
    [
        ("hello.job_id", &hello.job_id),
        ("hello.participant_id", &hello.participant_id),
        ("hello.session_id", &hello.session_id),
        ("hello.display_name", &hello.display_name),
        ("hello.track_id", &hello.track_id),
        ("hello.clock_domain", &hello.clock_domain),
    ]
    .into_iter()
    .filter_map(|(field, value)| too_long(field, value, MAX_ID_BYTES))
    .collect()
}

/// The violation of a `request_id` over [`MAX_ID_BYTES`].
pub fn request_id(request_id: &str) -> Option<FieldViolation> {
    too_long("request_id", request_id, MAX_ID_BYTES)
}

/// Lists over their limits, then every string of `spec` over its limit, in field order.
pub fn spec_lengths(spec: &pb::RenderJobSpec) -> Vec<FieldViolation> {
    let mut checks: Vec<(String, &str, usize)> = Vec::new();
    let mut violations = Vec::new();
    for (i, source) in spec.sources.iter().enumerate() {
        match &source.kind {
            Some(pb::source::Kind::RawArchive(path)) => {
                checks.push((format!("sources[{i}].raw_archive"), path, MAX_URL_BYTES));
            }
            Some(pb::source::Kind::TrackFiles(files)) => {
                let at = format!("sources[{i}].track_files");
                checks.push((format!("{at}.call_type"), &files.call_type, MAX_ID_BYTES));
                checks.push((format!("{at}.call_id"), &files.call_id, MAX_ID_BYTES));
                if files.files.len() > MAX_TRACK_FILES {
                    violations.push(FieldViolation {
                        field: format!("{at}.files"),
                        reason: format!("{} files, over the limit of {MAX_TRACK_FILES}", files.files.len()),
                    });
                }
                for (j, file) in files.files.iter().enumerate() {
                    checks.push((format!("{at}.files[{j}].uri"), &file.uri, MAX_URL_BYTES));
                    checks.push((format!("{at}.files[{j}].participant_id"), &file.participant_id, MAX_ID_BYTES));
                    checks.push((format!("{at}.files[{j}].session_id"), &file.session_id, MAX_ID_BYTES));
                }
            }
            Some(pb::source::Kind::Live(live)) => {
                checks.push((format!("sources[{i}].live.call_type"), &live.call_type, MAX_ID_BYTES));
                checks.push((format!("sources[{i}].live.call_id"), &live.call_id, MAX_ID_BYTES));
            }
            None => {}
        }
    }
    checks.push(("layout".into(), &spec.layout, MAX_NAME_BYTES));
    checks.push(("layout_inline".into(), &spec.layout_inline, MAX_LAYOUT_BYTES));
    if spec.layout_timeline.len() <= super::staging::MAX_LAYOUT_CHANGES {
        for (i, change) in spec.layout_timeline.iter().enumerate() {
            checks.push((format!("layout_timeline[{i}].layout"), &change.layout, MAX_NAME_BYTES));
            checks.push((format!("layout_timeline[{i}].layout_inline"), &change.layout_inline, MAX_LAYOUT_BYTES));
        }
    }
    if spec.participants.len() <= super::staging::MAX_PARTICIPANTS {
        for (i, p) in spec.participants.iter().enumerate() {
            checks.push((format!("participants[{i}].id"), &p.id, MAX_ID_BYTES));
            checks.push((format!("participants[{i}].name"), &p.name, MAX_ID_BYTES));
            checks.push((format!("participants[{i}].role"), &p.role, MAX_NAME_BYTES));
        }
    }
    if let Some(video) = &spec.video {
        checks.push(("video.codec".into(), &video.codec, MAX_NAME_BYTES));
        checks.push(("video.preset".into(), &video.preset, MAX_NAME_BYTES));
        checks.push(("video.background_rgb".into(), &video.background_rgb, MAX_NAME_BYTES));
    }
    if spec.outputs.len() > MAX_OUTPUTS {
        violations.push(FieldViolation {
            field: "outputs".into(),
            reason: format!("{} outputs, over the limit of {MAX_OUTPUTS}", spec.outputs.len()),
        });
    }
    for (i, output) in spec.outputs.iter().enumerate() {
        checks.push((format!("outputs[{i}].kind"), &output.kind, MAX_NAME_BYTES));
        checks.push((format!("outputs[{i}].container"), &output.container, MAX_NAME_BYTES));
        checks.push((format!("outputs[{i}].codec"), &output.codec, MAX_NAME_BYTES));
    }
    for (name, block) in [("storage", &spec.storage), ("source_storage", &spec.source_storage)] {
        let Some(s) = block else { continue };
        let field = |f: &str| format!("{name}.{f}");
        checks.extend([
            (field("type"), s.r#type.as_str(), MAX_NAME_BYTES),
            (field("bucket"), &s.bucket, MAX_ID_BYTES),
            (field("region"), &s.region, MAX_NAME_BYTES),
            (field("endpoint"), &s.endpoint, MAX_URL_BYTES),
            (field("path_prefix"), &s.path_prefix, MAX_PATH_BYTES),
            (field("access_key"), &s.access_key, MAX_SECRET_BYTES),
            (field("secret"), &s.secret, MAX_SECRET_BYTES),
            (field("host"), &s.host, MAX_ID_BYTES),
            (field("username"), &s.username, MAX_ID_BYTES),
            (field("password"), &s.password, MAX_SECRET_BYTES),
            (field("private_key"), &s.private_key, MAX_SECRET_BYTES),
            (field("auth_method"), &s.auth_method, MAX_NAME_BYTES),
            (field("host_key"), &s.host_key, MAX_URL_BYTES),
        ]);
    }
    if let Some(webhook) = &spec.webhook {
        checks.push(("webhook.url".into(), &webhook.url, MAX_URL_BYTES));
        checks.push(("webhook.signing_secret".into(), &webhook.signing_secret, MAX_SECRET_BYTES));
    }
    violations.extend(checks.into_iter().filter_map(|(field, value, max)| too_long(field, value, max)));
    violations
}
