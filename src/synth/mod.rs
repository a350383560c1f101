//! `tessera synth`: writes a raw recording in Stream's format (`*_timing_metadata.json`, `.sdp`,
//! rtptools `.rtpdump`) with known content, as a directory, `.tar.gz` or `.zip`. Each
//! participant is a solid colour that flashes white at scheduled call times, and a tone that
//! beeps at the same times, so tests can check layout positions and audio/video sync.

mod media;
mod package;
pub mod plan;

use std::path::{Path, PathBuf};

pub use package::OutputFormat;
pub use plan::{SynthParticipant, SynthPlan, SynthSpec};

use crate::ingest::metadata::{FrameDimension, SegmentMetadata, Segments, TimingMetadata, TrackType};
use crate::ingest::sdp::{Codec, MediaKind, write_sdp};
use crate::media::MediaError;
use media::{AUDIO_PT, TrackPackets, video_payload_type};

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("synth cannot encode {codec} (GStreamer on this machine has no RTP payloader for it)")]
    UnsupportedCodec { codec: &'static str },
    #[error("invalid {field} `{value}`: {reason}")]
    InvalidArgument { field: &'static str, value: String, reason: &'static str },
}

/// What was written.
#[derive(Debug, Clone)]
pub struct SynthOutput {
    pub path: PathBuf,
    pub plan: SynthPlan,
}

fn validate(spec: &SynthSpec) -> Result<(), SynthError> {
    let invalid = |field, value: String, reason| Err(SynthError::InvalidArgument { field, value, reason });
    if spec.participants == 0 || spec.participants > 64 {
        return invalid("participants", spec.participants.to_string(), "must be 1 to 64");
    }
    if spec.duration_ms < 500 || spec.duration_ms > 24 * 3_600_000 {
        return invalid("duration", format!("{} ms", spec.duration_ms), "must be 0.5 s to 24 h");
    }
    if spec.width < 16
        || spec.height < 16
        || spec.width % 2 != 0
        || spec.height % 2 != 0
        || spec.width > 3840
        || spec.height > 2160
    {
        return invalid("size", format!("{}x{}", spec.width, spec.height), "must be even, 16x16 to 3840x2160");
    }
    if spec.fps == 0 || spec.fps > 60 {
        return invalid("fps", spec.fps.to_string(), "must be 1 to 60");
    }
    if spec.join_stagger_ms.saturating_mul(spec.participants as u64) >= spec.duration_ms {
        return invalid(
            "join stagger",
            format!("{} ms", spec.join_stagger_ms),
            "the last participant would join after the call ends",
        );
    }
    Ok(())
}

/// Writes a synthetic recording to `output` (a directory, or a `.tar.gz` / `.zip` file).
pub fn synth(spec: &SynthSpec, output: &Path) -> Result<SynthOutput, SynthError> {
    validate(spec)?;
    let plan = SynthPlan::new(spec);
    let format = OutputFormat::from_path(output);
    let staging = match format {
        OutputFormat::Directory => None,
        _ => Some(
            tempfile::Builder::new()
                .prefix("tessera-synth-")
                .tempdir()
                .map_err(|source| SynthError::Io { path: std::env::temp_dir(), source })?,
        ),
    };
    let root = staging.as_ref().map_or_else(|| output.to_path_buf(), |d| d.path().to_path_buf());
    std::fs::create_dir_all(&root).map_err(|source| SynthError::Io { path: root.clone(), source })?;
    for participant in &plan.participants {
        write_participant(&plan, participant, &root)?;
    }
    if staging.is_some() {
        package::package(&root, output, format)?;
    }
    Ok(SynthOutput { path: output.to_path_buf(), plan })
}

fn write_participant(plan: &SynthPlan, p: &SynthParticipant, root: &Path) -> Result<(), SynthError> {
    let spec = &plan.spec;
    let dir = root.join(&p.participant_id);
    std::fs::create_dir_all(&dir).map_err(|source| SynthError::Io { path: dir.clone(), source })?;
    let session_short = p.user_session_id.get(..8).unwrap_or(&p.user_session_id);
    let stem = |kind: &str| format!("{}_{}_{}_0", p.participant_id, session_short, kind);

    let audio_stem = stem("audio");
    let audio_sdp = write_sdp(
        MediaKind::Audio,
        AUDIO_PT,
        "opus",
        48_000,
        Some(2),
        &[("minptime".into(), "10".into()), ("useinbandfec".into(), "1".into())],
    );
    write_file(&dir.join(format!("{audio_stem}.sdp")), audio_sdp.as_bytes())?;
    let audio = media::write_audio(p, spec.call_start_unix_ms, &dir.join(format!("{audio_stem}.rtpdump")))?;

    let video_stem = stem("video");
    let codec = p.video_codec;
    let fmtp: Vec<(String, String)> = if codec == Codec::H264 {
        vec![("packetization-mode".into(), "1".into()), ("profile-level-id".into(), "42e01f".into())]
    } else {
        Vec::new()
    };
    let video_sdp = write_sdp(MediaKind::Video, video_payload_type(codec), codec.encoding_name(), 90_000, None, &fmtp);
    write_file(&dir.join(format!("{video_stem}.sdp")), video_sdp.as_bytes())?;
    let video = media::write_video(
        p,
        spec.width,
        spec.height,
        spec.fps,
        spec.call_start_unix_ms,
        &dir.join(format!("{video_stem}.rtpdump")),
    )?;

    let call_start = spec.call_start_unix_ms;
    let metadata = TimingMetadata {
        call_type: plan.call_type.clone(),
        call_id: plan.call_id.clone(),
        call_session_id: plan.call_session_id.clone(),
        call_start_time: rfc3339(call_start),
        participant_id: p.participant_id.clone(),
        user_session_id: p.user_session_id.clone(),
        segments: Segments {
            audio: vec![segment(
                &audio_stem,
                Codec::Opus,
                format!("{}:TRACK_TYPE_AUDIO:0", session_short),
                TrackType::Audio,
                48_000,
                call_start + p.audio_start_ms as i64,
                &audio,
                None,
            )],
            video: vec![segment(
                &video_stem,
                codec,
                format!("{}:TRACK_TYPE_VIDEO:0", session_short),
                TrackType::Video,
                90_000,
                call_start + p.video_start_ms as i64,
                &video,
                Some(FrameDimension { width: spec.width, height: spec.height }),
            )],
        },
    };
    let json = serde_json::to_vec_pretty(&metadata)
        .map_err(|e| SynthError::Write { path: dir.clone(), reason: e.to_string() })?;
    write_file(&dir.join(format!("{}_{}_timing_metadata.json", p.participant_id, session_short)), &json)
}

/// Timing metadata for one segment; the sender reports say what the media timestamps say,
/// one second after the first packet and at the last packet.
#[expect(clippy::too_many_arguments, reason = "one plain record of the metadata fields")]
fn segment(
    base_filename: &str,
    codec: Codec,
    track_id: String,
    track_type: TrackType,
    clock_rate_hz: u32,
    start_unix_ms: i64,
    packets: &TrackPackets,
    max_frame_dimension: Option<FrameDimension>,
) -> SegmentMetadata {
    let ticks_per_ms = clock_rate_hz / 1000;
    let last_unix = start_unix_ms + packets.last_pts_ms as i64;
    let has_rtcp = packets.last_pts_ms >= 1000;
    SegmentMetadata {
        base_filename: base_filename.to_owned(),
        codec: codec.mime_type().to_owned(),
        track_id,
        track_type,
        first_rtp_rtp_timestamp: packets.first_timestamp,
        first_rtp_unix_timestamp: start_unix_ms,
        last_rtp_rtp_timestamp: Some(packets.last_timestamp),
        last_rtp_unix_timestamp: Some(last_unix),
        first_rtcp_rtp_timestamp: has_rtcp.then(|| packets.first_timestamp.wrapping_add(1000 * ticks_per_ms)),
        first_rtcp_ntp_timestamp: has_rtcp.then_some(start_unix_ms + 1000),
        last_rtcp_rtp_timestamp: has_rtcp.then_some(packets.last_timestamp),
        last_rtcp_ntp_timestamp: has_rtcp.then_some(last_unix),
        first_key_frame_offset_ms: max_frame_dimension.map(|_| 0),
        max_frame_dimension,
    }
}

fn rfc3339(unix_ms: i64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), SynthError> {
    std::fs::write(path, bytes).map_err(|source| SynthError::Io { path: path.to_path_buf(), source })
}
