//! A render job's spec (the contract's `RenderJobSpec`) checked field by field and turned into
//! the request the renderer runs. Every problem is reported with its field path
//! (`outputs[2].container`), all at once; secrets are never part of a message. Pure.

use std::path::PathBuf;

use crate::error::quoted;
use crate::ingest::track_files::{TrackFile, TrackFileSet, local_path};
use crate::layout::Rgb;
use crate::media::encode::EncodeSettings;
use crate::media::encoders::{CRF_RANGE, PRESETS};
use crate::outputs::{AudioFormat, HardwarePreference, IndividualKind, OutputSet, TrackFilter, VideoCodec};
use crate::proto as pb;
use crate::render::DEFAULT_MAX_CALL_SPAN_H;
use crate::render::live::{LiveCall, LiveInput, LiveSettings};
use crate::render::watchdog::DEFAULT_STALL_TIMEOUT_S;
use crate::render::{CancelFlag, RenderInput, RenderRequest};
pub use crate::storage::fetch::shown_url;
use crate::storage::settings::{NodeStorage, remote_settings};
use crate::storage::source::source_ref;

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path in the spec, e.g. `video.width` or `outputs[1].kind`.
    pub field: String,
    pub reason: String,
}

impl std::fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Every violation of a spec, in field order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidJob(pub Vec<FieldViolation>);

impl crate::error::Classify for InvalidJob {
    fn fault(&self) -> crate::error::Fault {
        crate::error::Fault::BadInput("invalid_spec")
    }
}

/// A track file may start at most this long (a day) after the call.
const MAX_OFFSET_MS: i64 = 86_400_000;
const COMPOSITE: &str = "composite";
const COMPOSITE_AUDIO: &str = "composite_audio";

#[derive(Default)]
pub(super) struct Violations(Vec<FieldViolation>);

impl Violations {
    pub(super) fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.0.push(FieldViolation { field: field.into(), reason: reason.into() });
    }
}

/// `value` or `default` when the proto left it at zero.
fn or_default(value: u32, default: u32) -> u32 {
    if value == 0 { default } else { value }
}

/// Checks `spec` and turns it into a render request. Lengths come first: a spec with an
/// over-long string is refused for that alone ([`super::limits`]).
pub fn validate(spec: &pb::RenderJobSpec) -> Result<RenderRequest, InvalidJob> {
    let too_long = super::limits::spec_lengths(spec);
    if !too_long.is_empty() {
        return Err(InvalidJob(too_long));
    }
    let mut v = Violations::default();
    let input = source(spec, &mut v);
    let mut staging = super::staging::staging(spec, &mut v);
    let default_video = pb::VideoSettings::default();
    let video = spec.video.as_ref().unwrap_or(&default_video);
    let (encode, background_rgb) = video_settings(video, &mut v);
    if let Some(rgb) = background_rgb {
        staging.set_background(rgb);
    }
    let mut encode = encode;
    audio_settings(spec.audio.as_ref(), &mut encode, &mut v);
    let outputs = outputs(spec, encode.codec, &mut v);
    if matches!(input, RenderInput::TrackFiles(_)) && !outputs.individual.is_empty() {
        v.add("outputs", "track files are individual recordings already: ask for composite and composite_audio");
    }
    parallelism(spec.parallelism, &input, &outputs, &mut v);
    let output_dir = storage(spec.storage.as_ref(), &mut v);
    if let Some(webhook) = &spec.webhook {
        webhook_settings(webhook, &mut v);
    }
    if !v.0.is_empty() {
        return Err(InvalidJob(v.0));
    }
    Ok(RenderRequest {
        input,
        output_dir,
        // The service's runner and the CLI put their own here.
        work_dir: std::env::temp_dir(),
        staging,
        encode,
        outputs,
        filter: TrackFilter::default(),
        cancel: CancelFlag::default(),
        stall_timeout_s: DEFAULT_STALL_TIMEOUT_S,
        max_call_span_h: DEFAULT_MAX_CALL_SPAN_H,
        on_file: None,
        parallel: None,
    })
}

/// The most slices one composite is rendered in at once.
pub const MAX_PARALLELISM: u32 = 64;

fn parallelism(workers: u32, input: &RenderInput, outputs: &OutputSet, v: &mut Violations) {
    if workers <= 1 {
        return;
    }
    if workers > MAX_PARALLELISM {
        v.add("parallelism", format!("{workers} is more than {MAX_PARALLELISM}"));
    }
    if matches!(input, RenderInput::Live(_)) {
        v.add("parallelism", "a live call is rendered as it happens, not in slices: leave it at 0 or 1");
    }
    if let Some(codec) = outputs.composite_video.filter(|c| c.webm()) {
        v.add("parallelism", format!("slices are joined into MP4; the {} composite goes in WebM", codec.codec_name()));
    }
}

fn source(spec: &pb::RenderJobSpec, v: &mut Violations) -> RenderInput {
    let nothing = RenderInput::Archive(PathBuf::new());
    if spec.sources.len() != 1 {
        v.add("sources", format!("exactly one source is needed, got {}", spec.sources.len()));
        return nothing;
    }
    match spec.sources.first().and_then(|s| s.kind.as_ref()) {
        Some(pb::source::Kind::RawArchive(path)) if path.is_empty() => {
            v.add("sources[0].raw_archive", "empty");
        }
        Some(pb::source::Kind::RawArchive(url)) if ["s3://", "gs://", "sftp://"].iter().any(|s| url.starts_with(s)) => {
            // Credentials may come from the node: an sftp source without a job block is
            // checked at admission.
            let blocks: Vec<&pb::Storage> = spec.source_storage.iter().collect();
            let node = NodeStorage { trust_on_first_use: true, ..NodeStorage::default() };
            match source_ref(url, &blocks, &node) {
                Ok(_) => return RenderInput::Archive(PathBuf::from(url)),
                Err(_) if url.starts_with("sftp://") && !blocks.iter().any(|b| b.r#type == "sftp") => {
                    return RenderInput::Archive(PathBuf::from(url));
                }
                Err(err) => v.add("sources[0].raw_archive", err.to_string()),
            }
        }
        Some(pb::source::Kind::RawArchive(url)) if url.contains("://") => match url.parse::<http::Uri>() {
            Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {
                return RenderInput::Archive(PathBuf::from(url));
            }
            _ => v.add(
                "sources[0].raw_archive",
                format!(
                    "{} is not a local path or an s3://, gs://, sftp://, http:// or https:// URL",
                    quoted(&shown_url(url))
                ),
            ),
        },
        Some(pb::source::Kind::RawArchive(path)) => return RenderInput::Archive(PathBuf::from(path)),
        Some(pb::source::Kind::TrackFiles(files)) => return track_files(files, v),
        Some(pb::source::Kind::Live(live)) => return live_source(live, v),
        None => v.add("sources[0]", "give raw_archive, track_files or live"),
    }
    nothing
}

/// The longest latency a live job may ask for: each track's queue holds this much media.
const MAX_LIVE_LATENCY_MS: u32 = 10_000;
/// The longest a stalled track's last picture may be held.
const MAX_LIVE_HOLD_MS: u32 = 60_000;

/// A live call whose clock starts now (the runner validates the spec as the job starts).
fn live_source(live: &pb::LiveSource, v: &mut Violations) -> RenderInput {
    let latency_ms = or_default(live.latency_ms, 500);
    if latency_ms > MAX_LIVE_LATENCY_MS {
        v.add("sources[0].live.latency_ms", format!("{latency_ms} is over {MAX_LIVE_LATENCY_MS}"));
    }
    let hold_ms = or_default(live.hold_ms, 2000);
    if hold_ms > MAX_LIVE_HOLD_MS {
        v.add("sources[0].live.hold_ms", format!("{hold_ms} is over {MAX_LIVE_HOLD_MS}"));
    }
    let settings = LiveSettings {
        latency_ms: u64::from(latency_ms),
        hold_ms: u64::from(hold_ms),
        idle_timeout_ms: Some(u64::from(or_default(live.idle_timeout_s, 60)) * 1000),
        max_duration_ms: (live.max_duration_s > 0).then(|| u64::from(live.max_duration_s) * 1000),
    };
    let mut call = TrackFileSet::call(&live.call_type, &live.call_id, super::events::now_unix_ms());
    if live.call_id.is_empty() {
        call.call_id = "live".into();
    }
    RenderInput::Live(LiveInput(LiveCall::new(call, settings)))
}

fn track_files(files: &pb::TrackFiles, v: &mut Violations) -> RenderInput {
    let field = |j: usize, name: &str| format!("sources[0].track_files.files[{j}].{name}");
    if files.files.is_empty() {
        v.add("sources[0].track_files.files", "give at least one file");
    }
    let mut set = TrackFileSet {
        call: TrackFileSet::call(&files.call_type, &files.call_id, files.call_start_unix_ms),
        files: Vec::with_capacity(files.files.len()),
    };
    for (j, file) in files.files.iter().enumerate() {
        let path = local_path(&file.uri);
        match &path {
            _ if file.uri.is_empty() => v.add(field(j, "uri"), "empty"),
            None => v.add(
                field(j, "uri"),
                format!(
                    "{} is not a local path or file:// URL (remote track files are not fetched)",
                    quoted(&shown_url(&file.uri))
                ),
            ),
            Some(_) => {}
        }
        if file.participant_id.is_empty() {
            v.add(field(j, "participant_id"), "empty");
        }
        if !(0..=MAX_OFFSET_MS).contains(&file.start_offset_ms) {
            v.add(field(j, "start_offset_ms"), format!("{} is not within 0 to {MAX_OFFSET_MS}", file.start_offset_ms));
        }
        let session = if file.session_id.is_empty() { &file.participant_id } else { &file.session_id };
        set.files.push(TrackFile {
            path: path.unwrap_or_default(),
            participant_id: file.participant_id.clone(),
            user_session_id: session.clone(),
            screenshare: file.screenshare,
            start_offset_ms: file.start_offset_ms,
        });
    }
    RenderInput::TrackFiles(set)
}

fn video_settings(video: &pb::VideoSettings, v: &mut Violations) -> (EncodeSettings, Option<[u8; 3]>) {
    let (width, height, fps) =
        (or_default(video.width, 1920), or_default(video.height, 1080), or_default(video.fps, 30));
    let mut encode = EncodeSettings::new(width, height, fps);
    for (field, value, max) in [("video.width", width, 7680), ("video.height", height, 4320)] {
        if value < 16 || value > max || !value.is_multiple_of(2) {
            v.add(field, format!("{value} is not an even number of pixels from 16 to {max}"));
        }
    }
    if fps > 120 {
        v.add("video.fps", format!("{fps} is over 120"));
    }
    if !video.codec.is_empty() {
        match video.codec.parse::<VideoCodec>() {
            Ok(codec) => encode.codec = codec,
            Err(reason) => v.add("video.codec", reason),
        }
    }
    if video.bitrate_kbps > 0 {
        encode.quality.bitrate_kbps = Some(video.bitrate_kbps);
    }
    if !video.preset.is_empty() {
        if PRESETS.contains(&video.preset.as_str()) {
            encode.quality.preset = video.preset.clone();
        } else {
            v.add(
                "video.preset",
                format!("unknown preset {} (expected one of {})", quoted(&video.preset), PRESETS.join(", ")),
            );
        }
    }
    encode.hardware = match pb::Hardware::try_from(video.hardware) {
        Ok(pb::Hardware::Auto) => HardwarePreference::Auto,
        Ok(pb::Hardware::Require) => HardwarePreference::Require,
        Ok(pb::Hardware::Off) => HardwarePreference::Off,
        Err(_) => {
            v.add("video.hardware", format!("unknown value {}", video.hardware));
            HardwarePreference::Auto
        }
    };
    if let Some(crf) = video.crf {
        if !CRF_RANGE.contains(&crf) {
            let (low, high) = (CRF_RANGE.start(), CRF_RANGE.end());
            v.add("video.crf", format!("{crf} is outside {low}-{high} (0, lossless, is not offered)"));
        }
        encode.quality.crf = crf;
    }
    let keyframe_ms = or_default(video.keyframe_interval_ms, 2000);
    encode.quality.keyframe_interval_frames = ((u64::from(keyframe_ms) * u64::from(fps)).div_ceil(1000)).max(1) as u32;
    let background = if video.background_rgb.is_empty() {
        None
    } else {
        let rgb = Rgb::parse(&video.background_rgb).map(|rgb| rgb.0);
        if rgb.is_none() {
            v.add("video.background_rgb", format!("{} is not #RRGGBB", quoted(&video.background_rgb)));
        }
        rgb
    };
    (encode, background)
}

fn audio_settings(audio: Option<&pb::AudioSettings>, encode: &mut EncodeSettings, v: &mut Violations) {
    let Some(audio) = audio else { return };
    if !matches!(audio.sample_rate_hz, 0 | 48_000) {
        v.add("audio.sample_rate_hz", format!("{} Hz: outputs are 48000 Hz", audio.sample_rate_hz));
    }
    if !matches!(audio.channels, 0 | 2) {
        v.add("audio.channels", format!("{}: outputs are stereo (2)", audio.channels));
    }
    let kbps = or_default(audio.bitrate_kbps, 128);
    if !(16..=512).contains(&kbps) {
        v.add("audio.bitrate_kbps", format!("{kbps} is not 16 to 512"));
    }
    encode.audio_bitrate_kbps = kbps;
}

fn outputs(spec: &pb::RenderJobSpec, composite_codec: VideoCodec, v: &mut Violations) -> OutputSet {
    let mut set = OutputSet::default();
    if spec.outputs.is_empty() {
        v.add("outputs", "ask for at least one output");
    }
    // The individual outputs' shared settings, and the index of the output that set them.
    let mut individual: Option<(usize, String, String, bool)> = None;
    for (i, output) in spec.outputs.iter().enumerate() {
        let field = |name: &str| format!("outputs[{i}].{name}");
        match output.kind.as_str() {
            COMPOSITE => {
                if set.composite_video.is_some() {
                    v.add(field("kind"), "one composite per job");
                }
                let codec = if output.codec.is_empty() {
                    composite_codec
                } else {
                    output.codec.parse::<VideoCodec>().unwrap_or_else(|reason| {
                        v.add(field("codec"), reason);
                        composite_codec
                    })
                };
                if !output.container.is_empty() && output.container != codec.extension() {
                    v.add(
                        field("container"),
                        format!(
                            "{} goes into {}, not {}",
                            codec.as_str(),
                            codec.extension(),
                            quoted(&output.container)
                        ),
                    );
                }
                set.composite_video = Some(codec);
            }
            COMPOSITE_AUDIO => {
                let container = if output.container.is_empty() { "mp3" } else { output.container.as_str() };
                match container.parse::<AudioFormat>() {
                    Ok(format) if set.composite_audio.contains(&format) => v.add(field("container"), "asked for twice"),
                    Ok(format) => set.composite_audio.push(format),
                    Err(reason) => v.add(field("container"), reason),
                }
            }
            kind => match kind.parse::<IndividualKind>() {
                Ok(kind) => {
                    let settings = (output.codec.clone(), output.container.clone(), output.align_to_call);
                    match &individual {
                        Some((first, codec, container, align))
                            if (codec, container, align) != (&settings.0, &settings.1, &settings.2) =>
                        {
                            v.add(field("codec"), format!("individual outputs share one codec, container and align_to_call (as outputs[{first}])"));
                        }
                        Some(_) => {}
                        None => individual = Some((i, settings.0, settings.1, settings.2)),
                    }
                    if !set.individual.contains(&kind) {
                        set.individual.push(kind);
                    }
                }
                Err(_) => v.add(
                    field("kind"),
                    format!(
                        "unknown output kind {} (expected {COMPOSITE}, {COMPOSITE_AUDIO}, {})",
                        quoted(kind),
                        IndividualKind::ALL.map(IndividualKind::as_str).join(", ")
                    ),
                ),
            },
        }
    }
    if let Some((i, codec, container, align)) = individual {
        set.align_to_call = align;
        if !codec.is_empty() {
            match codec.parse::<VideoCodec>() {
                Ok(codec) => set.individual_video_codec = Some(codec),
                Err(reason) => v.add(format!("outputs[{i}].codec"), reason),
            }
        }
        if !container.is_empty() && container != "mkv" {
            match container.parse::<AudioFormat>() {
                Ok(format) => set.individual_audio_format = Some(format),
                Err(reason) => v.add(format!("outputs[{i}].container"), reason),
            }
        }
    }
    set
}

fn webhook_settings(webhook: &pb::Webhook, v: &mut Violations) {
    if webhook.url.is_empty() {
        if !webhook.signing_secret.is_empty() {
            v.add("webhook.url", "a signing secret without a URL");
        }
        return;
    }
    match webhook.url.parse::<http::Uri>() {
        Ok(uri) if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() => {}
        _ => v.add("webhook.url", format!("{} is not an http:// or https:// URL", quoted(&shown_url(&webhook.url)))),
    }
    if webhook.signing_secret.len() < 16 {
        v.add("webhook.signing_secret", "events are signed: give a secret of at least 16 bytes");
    }
}

/// The local output directory (empty for remote storage, or none: the node's default);
/// a remote block is checked here for what needs no node.
fn storage(storage: Option<&pb::Storage>, v: &mut Violations) -> PathBuf {
    let Some(storage) = storage else { return PathBuf::new() };
    match storage.r#type.as_str() {
        "local" | "" if storage.path_prefix.is_empty() => {
            v.add("storage.path_prefix", "the output directory is needed")
        }
        "local" | "" => return PathBuf::from(&storage.path_prefix),
        _ => {
            if let Err(violations) = remote_settings(storage, &NodeStorage::default()) {
                for (field, reason) in violations {
                    v.add(format!("storage.{field}"), reason);
                }
            }
        }
    }
    PathBuf::new()
}

/// The source's URL when the job's raw archive is remote (http(s), s3, gs, sftp).
pub fn remote_source(spec: &pb::RenderJobSpec) -> Option<&str> {
    match spec.sources.first()?.kind.as_ref()? {
        pb::source::Kind::RawArchive(url) if url.contains("://") && !url.starts_with("file://") => Some(url),
        _ => None,
    }
}

/// `spec` with every write-only field (keys, secrets, passwords, private keys, the webhook's
/// signing secret) replaced and source URLs without their query: what may be returned or
/// logged.
pub fn redacted(spec: &pb::RenderJobSpec) -> pb::RenderJobSpec {
    let mut spec = spec.clone();
    for source in &mut spec.sources {
        if let Some(pb::source::Kind::RawArchive(url)) = source.kind.as_mut() {
            *url = shown_url(url);
        }
    }
    for storage in spec.storage.iter_mut().chain(spec.source_storage.iter_mut()) {
        for secret in [&mut storage.access_key, &mut storage.secret, &mut storage.password, &mut storage.private_key] {
            if !secret.is_empty() {
                *secret = "(redacted)".into();
            }
        }
    }
    if let Some(webhook) = spec.webhook.as_mut() {
        webhook.url = shown_url(&webhook.url);
        if !webhook.signing_secret.is_empty() {
            webhook.signing_secret = "(redacted)".into();
        }
    }
    spec
}
