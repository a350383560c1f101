//! `tessera synth`: writes a raw recording in Stream's format (`*_timing_metadata.json`, `.sdp`,
//! rtptools `.rtpdump`) with known content, as a directory, `.tar.gz` or `.zip`. Each
//! participant is a solid colour that flashes white at scheduled call times, and a tone that
//! beeps at the same times, so tests can check layout positions and audio/video sync.
//! Screenshares are a greyer colour and a higher tone (see [`plan::ScreenshareSender`]). A talk
//! schedule makes microphones talk in turns (for active speaker tests), and audio packets can
//! carry RFC 6464 audio levels.

mod events;
mod impair;
mod media;
mod package;
pub mod plan;
mod rng;

use std::path::{Path, PathBuf};

pub use events::{SynthAction, SynthEvent, TalkTurn};
pub use package::OutputFormat;
pub use plan::{NetworkSpec, SynthParticipant, SynthPlan, SynthSpec};

use crate::ingest::metadata::{FrameDimension, SegmentMetadata, Segments, TimingMetadata, TrackType};
use crate::ingest::sdp::{AUDIO_LEVEL_URI, Codec, ExtMap, MediaKind, RtpMap, write_sdp_with_extmaps};
use crate::media::MediaError;
use impair::Impairments;
use media::{AUDIO_PT, AudioLevels, Look, TrackPackets, video_payload_type};
use plan::{MID_GOP_KEYFRAME_MS, RtcpMode, SplitMix, SynthSession};

/// Payload types of the auxiliary streams (RTX is the primary's + 1).
const RED_PT: u8 = 63;
const ULPFEC_PT: u8 = 127;
/// The header extension ID of the RFC 6464 audio levels (with [`SynthSpec::audio_level_ext`]).
pub const AUDIO_LEVEL_EXT_ID: u8 = 1;

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
    InvalidArgument { field: &'static str, value: String, reason: String },
}

/// What was written.
#[derive(Debug, Clone)]
pub struct SynthOutput {
    pub path: PathBuf,
    pub plan: SynthPlan,
    /// The packets of cameras and microphones that the network lost, by capture time.
    pub lost: Vec<LostPacket>,
}

/// A packet of a camera or microphone track that the network lost.
#[derive(Debug, Clone, PartialEq)]
pub struct LostPacket {
    pub participant_id: String,
    pub kind: MediaKind,
    /// When its media was captured, ms since call start.
    pub call_ms: u64,
}

fn validate(spec: &SynthSpec) -> Result<(), SynthError> {
    let invalid = |field, value: String, reason: &str| {
        Err(SynthError::InvalidArgument { field, value, reason: reason.to_owned() })
    };
    if spec.participants == 0 || spec.participants > 64 {
        return invalid("participants", spec.participants.to_string(), "must be 1 to 64");
    }
    if spec.duration_ms < 500 || spec.duration_ms > 24 * 3_600_000 {
        return invalid("duration", format!("{} ms", spec.duration_ms), "must be 0.5 s to 24 h");
    }
    if spec.width < 16
        || spec.height < 16
        || !spec.width.is_multiple_of(2)
        || !spec.height.is_multiple_of(2)
        || spec.width > 3840
        || spec.height > 2160
    {
        return invalid("size", format!("{}x{}", spec.width, spec.height), "must be even, 16x16 to 3840x2160");
    }
    if spec.fps == 0 || spec.fps > 60 {
        return invalid("fps", spec.fps.to_string(), "must be 1 to 60");
    }
    if let Some(turn) = spec.talk.iter().find(|t| t.from_ms >= t.to_ms) {
        let value = format!("{}:{}-{}", turn.participant, turn.from_ms, turn.to_ms);
        return invalid("talk", value, "the range ends before it starts");
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
    let named = spec.events.iter().map(|e| ("event", &e.participant));
    for (field, participant) in named.chain(spec.talk.iter().map(|t| ("talk", &t.participant))) {
        if !plan.participants.iter().any(|p| &p.participant_id == participant) {
            let names: Vec<&str> = plan.participants.iter().map(|p| p.participant_id.as_str()).collect();
            return Err(SynthError::InvalidArgument {
                field,
                value: participant.clone(),
                reason: format!("no such participant (this call has {})", names.join(", ")),
            });
        }
    }
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
    let mut lost = Vec::new();
    for participant in &plan.participants {
        write_participant(&plan, participant, &root, &mut lost)?;
    }
    if staging.is_some() {
        package::package(&root, output, format)?;
    }
    Ok(SynthOutput { path: output.to_path_buf(), plan, lost })
}

fn write_participant(
    plan: &SynthPlan,
    p: &SynthParticipant,
    root: &Path,
    lost: &mut Vec<LostPacket>,
) -> Result<(), SynthError> {
    let dir = root.join(&p.participant_id);
    std::fs::create_dir_all(&dir).map_err(|source| SynthError::Io { path: dir.clone(), source })?;
    for session in &p.sessions {
        write_session(plan, p, session, &dir, lost)?;
    }
    Ok(())
}

/// Per-track seed for the network impairments.
fn track_seed(plan: &SynthPlan, p: &SynthParticipant, kind: u64, segment: usize) -> u64 {
    let mut rng = SplitMix::new(plan.spec.seed ^ (p.video_ssrc as u64) << 8 ^ kind << 40 ^ (segment as u64) << 48);
    rng.next_u64()
}

fn impairments(plan: &SynthPlan, seed: u64, primary_pt: u8, audio: bool, segment_start_ms: u64) -> Impairments {
    let n = &plan.spec.network;
    // Call times of the sender restarts, as arrival times in this segment's dump.
    let in_dump = |t: Option<u64>| t.and_then(|t| u32::try_from(t.checked_sub(segment_start_ms)?).ok());
    Impairments {
        loss_pct: if audio || !n.loss_audio_only { n.loss_pct } else { 0.0 },
        burst_max_packets: n.burst_max_packets,
        reorder_pct: n.reorder_pct,
        reorder_depth_packets: n.reorder_depth_packets,
        duplicate_pct: n.duplicate_pct,
        rtx_payload_type: n.rtx_recover_pct.map(|_| primary_pt + 1),
        rtx_recover_pct: n.rtx_recover_pct.unwrap_or(0.0),
        rtx_delay_packets: 0,
        red_payload_type: (audio && n.red).then_some(RED_PT),
        fec_payload_type: (!audio && n.fec).then_some(ULPFEC_PT),
        fec_every_packets: 0,
        ssrc_change_at_ms: in_dump(n.ssrc_change_at_ms),
        timestamp_jump_at_ms: in_dump(n.timestamp_jump_at_ms),
        timestamp_jump_ticks: if audio { 48_000 * 600 } else { 90_000 * 600 },
        seed,
    }
}

/// The SDP of a track: its codec plus the rtx / red / ulpfec streams the network spec uses.
fn sdp(plan: &SynthPlan, kind: MediaKind, codec: Codec) -> String {
    let n = &plan.spec.network;
    let mut maps = Vec::new();
    if kind == MediaKind::Audio {
        if n.red {
            maps.push(RtpMap::new(RED_PT, "red", 48_000, Some(2), &[("111/111", "")]));
        }
        maps.push(RtpMap::new(AUDIO_PT, "opus", 48_000, Some(2), &[("minptime", "10"), ("useinbandfec", "1")]));
    } else {
        let fmtp: &[(&str, &str)] =
            if codec == Codec::H264 { &[("packetization-mode", "1"), ("profile-level-id", "42e01f")] } else { &[] };
        maps.push(RtpMap::new(video_payload_type(codec), codec.encoding_name(), 90_000, None, fmtp));
    }
    let primary = if kind == MediaKind::Audio { AUDIO_PT } else { video_payload_type(codec) };
    if n.rtx_recover_pct.is_some() {
        // RED audio is retransmitted as RED: the RTX stream's apt names the RED payload type.
        let apt = if kind == MediaKind::Audio && n.red { RED_PT } else { primary }.to_string();
        let rate = if kind == MediaKind::Audio { 48_000 } else { 90_000 };
        maps.push(RtpMap::new(primary + 1, "rtx", rate, None, &[("apt", apt.as_str())]));
    }
    if kind == MediaKind::Video && n.fec {
        maps.push(RtpMap::new(ULPFEC_PT, "ulpfec", 90_000, None, &[]));
    }
    let mut extmaps = Vec::new();
    if kind == MediaKind::Audio && plan.spec.audio_level_ext {
        extmaps.push(ExtMap { id: AUDIO_LEVEL_EXT_ID, uri: AUDIO_LEVEL_URI.to_owned() });
    }
    write_sdp_with_extmaps(kind, &maps, &extmaps)
}

/// What differs between a session's microphone, camera, screenshare and screenshare audio tracks.
struct TrackSpec<'a> {
    kind: MediaKind,
    /// Files are `{participant}_{session}_{name}_{segment}.sdp` / `.rtpdump`.
    name: &'static str,
    /// Tells the tracks' network impairments apart.
    seed_kind: u64,
    codec: Codec,
    payload_type: u8,
    clock_rate_hz: u32,
    track_type: TrackType,
    spans: &'a [(u64, u64)],
    rtp_base: u32,
    ssrc: u32,
    look: Look,
    /// Sequence numbers of segment k start at `sequence_base + k * sequence_step`.
    sequence_base: u16,
    sequence_step: u16,
    skip_before_ms: u64,
    max_frame_dimension: Option<FrameDimension>,
    first_key_frame_offset_ms: Option<i64>,
}

fn write_session(
    plan: &SynthPlan,
    p: &SynthParticipant,
    session: &SynthSession,
    dir: &Path,
    lost: &mut Vec<LostPacket>,
) -> Result<(), SynthError> {
    let spec = &plan.spec;
    let session_short = session.user_session_id.get(..8).unwrap_or(&session.user_session_id);
    let camera = Look { rgb: p.rgb, tone_hz: p.tone_hz, rotate_at_ms: p.rotate_at_ms, beeps: true, talks: true };
    let share = &p.screenshare;
    let screen = Look { rgb: share.rgb, tone_hz: share.tone_hz, rotate_at_ms: None, beeps: false, talks: false };
    let audio = TrackSpec {
        kind: MediaKind::Audio,
        name: "audio",
        seed_kind: 1,
        codec: Codec::Opus,
        payload_type: AUDIO_PT,
        clock_rate_hz: 48_000,
        track_type: TrackType::Audio,
        spans: &session.audio_segments,
        rtp_base: p.audio_rtp_base,
        ssrc: p.audio_ssrc,
        look: camera,
        sequence_base: 2000,
        sequence_step: 1000,
        skip_before_ms: 0,
        max_frame_dimension: None,
        first_key_frame_offset_ms: None,
    };
    let video = TrackSpec {
        kind: MediaKind::Video,
        name: "video",
        seed_kind: 2,
        codec: p.video_codec,
        payload_type: video_payload_type(p.video_codec),
        clock_rate_hz: 90_000,
        track_type: TrackType::Video,
        spans: &session.video_segments,
        rtp_base: p.video_rtp_base,
        ssrc: p.video_ssrc,
        look: camera,
        sequence_base: 1000,
        sequence_step: 5000,
        skip_before_ms: if spec.start_mid_gop { 500 } else { 0 },
        max_frame_dimension: Some(FrameDimension {
            width: spec.width.max(spec.height),
            height: spec.height.max(spec.width),
        }),
        first_key_frame_offset_ms: Some(if spec.start_mid_gop { MID_GOP_KEYFRAME_MS as i64 } else { 0 }),
    };
    // A screenshare starts with a keyframe and never rotates.
    let screenshare = TrackSpec {
        name: "screenshare",
        seed_kind: 3,
        track_type: TrackType::ScreenShare,
        spans: &session.screenshare_segments,
        rtp_base: share.video_rtp_base,
        ssrc: share.video_ssrc,
        look: screen,
        sequence_base: 30_000,
        skip_before_ms: 0,
        max_frame_dimension: Some(FrameDimension { width: spec.width, height: spec.height }),
        first_key_frame_offset_ms: Some(0),
        ..video
    };
    let screenshare_audio = TrackSpec {
        name: "screenshare_audio",
        seed_kind: 4,
        track_type: TrackType::ScreenShareAudio,
        spans: &session.screenshare_segments,
        rtp_base: share.audio_rtp_base,
        ssrc: share.audio_ssrc,
        look: screen,
        sequence_base: 40_000,
        ..audio
    };
    let mut segments = Segments::default();
    for track in [&audio, &video, &screenshare, &screenshare_audio] {
        let (written, track_lost) = write_track(plan, p, session_short, track, dir)?;
        if track.track_type == TrackType::Audio || track.track_type == TrackType::Video {
            lost.extend(track_lost.into_iter().map(|call_ms| LostPacket {
                participant_id: p.participant_id.clone(),
                kind: track.kind,
                call_ms,
            }));
        }
        match track.kind {
            MediaKind::Audio => segments.audio.extend(written),
            MediaKind::Video => segments.video.extend(written),
        }
    }
    let metadata = TimingMetadata {
        call_type: plan.call_type.clone(),
        call_id: plan.call_id.clone(),
        call_session_id: plan.call_session_id.clone(),
        call_start_time: rfc3339(spec.call_start_unix_ms),
        participant_id: p.participant_id.clone(),
        user_session_id: session.user_session_id.clone(),
        segments,
    };
    let json = serde_json::to_vec_pretty(&metadata)
        .map_err(|e| SynthError::Write { path: dir.to_path_buf(), reason: e.to_string() })?;
    write_file(&dir.join(format!("{}_{}_timing_metadata.json", p.participant_id, session_short)), &json)
}

/// Writes every segment of one track (`.sdp` + `.rtpdump`) and returns their metadata and the
/// capture times (ms since call start) of the packets the network lost.
fn write_track(
    plan: &SynthPlan,
    p: &SynthParticipant,
    session_short: &str,
    track: &TrackSpec<'_>,
    dir: &Path,
) -> Result<(Vec<SegmentMetadata>, Vec<u64>), SynthError> {
    let spec = &plan.spec;
    let audio = track.kind == MediaKind::Audio;
    let scale = 1.0 + p.drift_ppm * 1e-6;
    let first_ms = track.spans.first().map_or(0, |s| s.0);
    let mut segments = Vec::with_capacity(track.spans.len());
    let mut lost = Vec::new();
    for (k, &(from_ms, to_ms)) in track.spans.iter().enumerate() {
        let name = format!("{}_{session_short}_{}_{k}", p.participant_id, track.name);
        write_file(&dir.join(format!("{name}.sdp")), sdp(plan, track.kind, track.codec).as_bytes())?;
        // RTP timestamps of a track continue across its segments (mute keeps the sender's clock).
        let ticks_since_first =
            ((from_ms - first_ms) as f64 * scale * (f64::from(track.clock_rate_hz) / 1000.0)) as u32;
        let job = media::SegmentJob {
            participant: p,
            ssrc: track.ssrc,
            look: track.look,
            from_ms,
            to_ms,
            rtp_base: track.rtp_base.wrapping_add(ticks_since_first),
            sequence_base: track.sequence_base.wrapping_add(track.sequence_step.wrapping_mul(k as u16)),
            options: media::DumpOptions {
                start_unix_ms: spec.call_start_unix_ms + from_ms as i64,
                drift_ppm: p.drift_ppm,
                skip_before_ms: track.skip_before_ms,
                impairments: impairments(
                    plan,
                    track_seed(plan, p, track.seed_kind, k),
                    track.payload_type,
                    audio,
                    from_ms,
                ),
                delay_ms: spec.network.delay_ms,
                jitter_ms: spec.network.jitter_ms,
                timestamp_shift_ticks: media::stamp_shift_ticks(track.codec),
                audio_levels: (audio && spec.audio_level_ext).then(|| AudioLevels::new(AUDIO_LEVEL_EXT_ID)),
            },
        };
        let rtpdump = dir.join(format!("{name}.rtpdump"));
        let packets = if audio {
            media::write_audio(job, spec.dtx, &rtpdump)?
        } else {
            media::write_video(job, spec.width, spec.height, spec.fps, &rtpdump)?
        };
        let facts = SegmentFacts {
            base_filename: &name,
            codec: track.codec,
            clock_rate_hz: track.clock_rate_hz,
            track_id: format!("{session_short}:{}:0", track.track_type.as_str()),
            track_type: track.track_type.clone(),
        };
        let mut metadata = segment(plan, facts, from_ms, p, &packets);
        metadata.max_frame_dimension = track.max_frame_dimension;
        metadata.first_key_frame_offset_ms = track.first_key_frame_offset_ms;
        segments.push(metadata);
        lost.extend(packets.lost_ms.iter().map(|ms| from_ms + ms));
    }
    Ok((segments, lost))
}

/// The identity of a segment in the metadata.
struct SegmentFacts<'a> {
    base_filename: &'a str,
    codec: Codec,
    clock_rate_hz: u32,
    track_id: String,
    track_type: TrackType,
}

/// Timing metadata for one segment whose media starts at call time `from_ms`. The `first_rtp_*`
/// and `last_rtp_*` times are the recorder's arrival times. The sender reports (one second of
/// media after the first packet, and the last packet) say when the media was captured, on the
/// sender's own clock, as the spec's [`RtcpMode`] asks; a sender without reports has none.
fn segment(
    plan: &SynthPlan,
    facts: SegmentFacts<'_>,
    from_ms: u64,
    p: &SynthParticipant,
    packets: &TrackPackets,
) -> SegmentMetadata {
    let (clock_rate_hz, drift_ppm) = (facts.clock_rate_hz, p.drift_ppm);
    let start_unix_ms = plan.spec.call_start_unix_ms + from_ms as i64;
    let last_unix = start_unix_ms + packets.last_arrival_ms as i64;
    let last_capture_unix = start_unix_ms + packets.last_sent_ms as i64;
    let has_rtcp = p.sender_reports && packets.last_arrival_ms >= 1000;
    // A libwebrtc-like Opus stamp names the capture of the input frame, 6.5 ms after the
    // decoded audio it carries.
    let stamp_ms = f64::from(media::stamp_shift_ticks(facts.codec)) * 1000.0 / f64::from(clock_rate_hz.max(1));
    // One second of the sender's media after the first packet arrives 1/(1+drift) s later.
    let report_unix = start_unix_ms + (1000.0 / (1.0 + drift_ppm * 1e-6) + stamp_ms).round() as i64;
    let report_rtp = packets.first_timestamp.wrapping_add(clock_rate_hz);
    // (first rtp, first wall clock, last rtp, last wall clock)
    let (first_rtcp_rtp, first_rtcp_ntp, last_rtcp_rtp, last_rtcp_ntp) = match plan.spec.rtcp {
        RtcpMode::Absent => (None, None, None, None),
        RtcpMode::Zero => (Some(0), Some(0), Some(0), Some(0)),
        _ if !has_rtcp => (None, None, None, None),
        mode => {
            let shift = match mode {
                RtcpMode::Inconsistent => 7000,
                RtcpMode::NtpEpoch => 2_208_988_800_000,
                _ => 0,
            };
            let last_unix = last_capture_unix + shift;
            (Some(report_rtp), Some(report_unix + shift), Some(packets.last_timestamp), Some(last_unix))
        }
    };
    SegmentMetadata {
        base_filename: facts.base_filename.to_owned(),
        codec: facts.codec.mime_type().to_owned(),
        track_id: facts.track_id,
        track_type: facts.track_type,
        first_rtp_rtp_timestamp: packets.first_timestamp,
        first_rtp_unix_timestamp: start_unix_ms + packets.first_arrival_ms as i64,
        last_rtp_rtp_timestamp: Some(packets.last_timestamp),
        last_rtp_unix_timestamp: Some(last_unix),
        first_rtcp_rtp_timestamp: first_rtcp_rtp,
        first_rtcp_ntp_timestamp: first_rtcp_ntp,
        last_rtcp_rtp_timestamp: last_rtcp_rtp,
        last_rtcp_ntp_timestamp: last_rtcp_ntp,
        first_key_frame_offset_ms: None,
        max_frame_dimension: None,
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

#[cfg(test)]
mod tests;
