//! `manifest.json`, the job's sync report, written beside its outputs: every output file with
//! its offset on the call clock, and per participant session and track a timing summary
//! (segments, gaps, loss, concealment, keyframe waits, clock anchor and drift correction, and
//! every metadata field that could not be used).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::PartialFile;
use super::plan::{RenderPlan, SegmentPlan, TrackPlan};
use crate::ingest::TrackKind;
use crate::ingest::damage::RecordDamage;
use crate::timeline::{AnchorSource, RateSource};

pub const MANIFEST_FILE_NAME: &str = "manifest.json";

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub call: CallEntry,
    pub outputs: Vec<OutputEntry>,
    pub participants: Vec<ParticipantEntry>,
}

#[derive(Debug, Serialize)]
pub struct CallEntry {
    pub call_type: String,
    pub call_id: String,
    pub call_session_id: String,
    pub call_start_unix_ms: i64,
    pub duration_ms: f64,
}

/// One file the job wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputEntry {
    pub file: String,
    /// `composite`, `composite_audio`, or an individual kind (`audio_only`, ...).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_session_id: Option<String>,
    pub streams: Vec<StreamEntry>,
    /// The video encoder element, for encoded video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<String>,
    /// Where the file's t=0 lies on the call clock.
    pub offset_ms: f64,
    pub duration_ms: f64,
    pub size_bytes: u64,
    pub sha256: String,
}

/// One stream of an output file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamEntry {
    pub kind: String,
    /// As ffprobe names it (`h264`, `opus`, `aac`, ...).
    pub codec: String,
    /// The source track, for a stream copied from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_id: Option<String>,
    /// True when the media is the sender's own, remuxed; false when encoded here.
    pub remuxed: bool,
}

/// Size and SHA-256 (lower-case hex) of a file.
pub fn file_facts(path: &Path) -> std::io::Result<(u64, String)> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0_u8; 1 << 16];
    let mut size = 0_u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buffer[..n]);
    }
    let hex: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok((size, hex))
}

#[derive(Debug, Serialize)]
pub struct ParticipantEntry {
    pub participant_id: String,
    pub user_session_id: String,
    pub tracks: Vec<TrackEntry>,
}

#[derive(Debug, Serialize)]
pub struct TrackEntry {
    pub track_id: String,
    pub kind: &'static str,
    pub screenshare: bool,
    pub start_ms: f64,
    pub end_ms: f64,
    /// Gaps between segments (mute, republish), on the call clock.
    pub gaps: Vec<Span>,
    pub packets_lost_pct: f64,
    pub concealed_ms: f64,
    /// How far the segments' ends moved by correcting sender clock drift, summed.
    pub drift_corrected_ms: f64,
    /// Damaged rtpdump records skipped, summed over the segments, and by reason.
    pub records_skipped: u64,
    pub records_skipped_reasons: BTreeMap<&'static str, u64>,
    pub segments: Vec<SegmentEntry>,
}

#[derive(Debug, Serialize)]
pub struct Span {
    pub from_ms: f64,
    pub to_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct SegmentEntry {
    pub rtpdump: String,
    pub start_ms: f64,
    pub end_ms: f64,
    pub packets: u64,
    pub packets_lost: u64,
    pub packets_recovered: u64,
    pub duplicates_or_late: u64,
    pub skipped_packets: u64,
    /// Damaged records of the rtpdump skipped (see [`crate::ingest::damage`]), and by reason
    /// (`not_rtp_v2`, `too_short`, `bad_rtp_header`, `length_past_record`,
    /// `arrival_out_of_range`, `truncated`, `bad_record_length`).
    pub records_skipped: u64,
    pub records_skipped_reasons: BTreeMap<&'static str, u64>,
    pub ssrc_changes: u32,
    pub timestamp_discontinuities: u32,
    pub concealed_ms: f64,
    /// Video: frames dropped waiting for a keyframe (at the start or after loss) and freezes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames_dropped: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freezes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_keyframe_offset_ms: Option<f64>,
    pub anchor: AnchorSource,
    pub rate_source: RateSource,
    pub drift_ppm: f64,
    pub drift_corrected_ms: f64,
    pub notes: Vec<String>,
}

fn segment_entry(segment: &SegmentPlan) -> SegmentEntry {
    let scan = &segment.scan;
    let clock = &segment.clock;
    let ticks = scan.max_ticks - scan.min_ticks;
    let nominal_ms = ticks as f64 * 1000.0 / f64::from(clock.clock_rate_hz);
    let frames = scan.frames;
    SegmentEntry {
        rtpdump: segment.spec.rtpdump_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        start_ms: segment.span.start_ms,
        end_ms: segment.span.end_ms,
        packets: scan.packets.delivered,
        packets_lost: scan.packets.lost,
        packets_recovered: scan.packets.recovered,
        duplicates_or_late: scan.packets.duplicates_or_late,
        skipped_packets: scan.packets.skipped,
        records_skipped: scan.packets.damage.skipped(),
        records_skipped_reasons: reasons(&scan.packets.damage),
        ssrc_changes: scan.packets.ssrc_changes,
        timestamp_discontinuities: scan.packets.discontinuities,
        concealed_ms: clock.ticks_to_ms(scan.concealed_ticks),
        frames_dropped: frames.map(|f| f.frames_dropped),
        freezes: frames.map(|f| f.freezes),
        first_keyframe_offset_ms: frames
            .and_then(|f| f.first_keyframe_ticks)
            .map(|k| clock.ticks_to_ms(k - scan.min_ticks)),
        anchor: clock.anchor_source,
        rate_source: clock.rate_source,
        drift_ppm: clock.drift_ppm(),
        drift_corrected_ms: nominal_ms - clock.ticks_to_ms(ticks),
        notes: clock.notes.clone(),
    }
}

fn reasons(damage: &RecordDamage) -> BTreeMap<&'static str, u64> {
    damage.reasons().map(|(reason, count)| (reason.as_str(), count)).collect()
}

fn track_entry(track: &TrackPlan) -> TrackEntry {
    let segments: Vec<SegmentEntry> = track.segments.iter().map(segment_entry).collect();
    let gaps = track
        .segments
        .windows(2)
        .filter(|w| w[1].span.start_ms > w[0].span.end_ms)
        .map(|w| Span { from_ms: w[0].span.end_ms, to_ms: w[1].span.start_ms })
        .collect();
    let (delivered, lost) = segments.iter().fold((0, 0), |(d, l), s| (d + s.packets, l + s.packets_lost));
    let mut records_skipped_reasons = BTreeMap::new();
    for (reason, count) in segments.iter().flat_map(|s| &s.records_skipped_reasons) {
        *records_skipped_reasons.entry(*reason).or_insert(0) += count;
    }
    TrackEntry {
        track_id: track.track_id.clone(),
        kind: track.kind.as_str(),
        screenshare: track.screenshare,
        start_ms: track.span.start_ms(),
        end_ms: track.span.end_ms(),
        gaps,
        packets_lost_pct: if delivered + lost > 0 { lost as f64 * 100.0 / (delivered + lost) as f64 } else { 0.0 },
        concealed_ms: if track.kind == TrackKind::Audio { segments.iter().map(|s| s.concealed_ms).sum() } else { 0.0 },
        drift_corrected_ms: segments.iter().map(|s| s.drift_corrected_ms).sum(),
        records_skipped: segments.iter().map(|s| s.records_skipped).sum(),
        records_skipped_reasons,
        segments,
    }
}

impl Manifest {
    pub fn new(plan: &RenderPlan, outputs: Vec<OutputEntry>) -> Manifest {
        let mut participants: Vec<ParticipantEntry> = Vec::new();
        for track in &plan.tracks {
            let entry = track_entry(track);
            match participants
                .iter_mut()
                .find(|p| p.participant_id == track.participant_id && p.user_session_id == track.user_session_id)
            {
                Some(p) => p.tracks.push(entry),
                None => participants.push(ParticipantEntry {
                    participant_id: track.participant_id.clone(),
                    user_session_id: track.user_session_id.clone(),
                    tracks: vec![entry],
                }),
            }
        }
        Manifest {
            call: CallEntry {
                call_type: plan.call.call_type.clone(),
                call_id: plan.call.call_id.clone(),
                call_session_id: plan.call.call_session_id.clone(),
                call_start_unix_ms: plan.call.call_start_unix_ms,
                duration_ms: plan.timeline.duration_ms,
            },
            outputs,
            participants,
        }
    }

    /// Writes `manifest.json` into `dir`, complete or not at all.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let path = dir.join(MANIFEST_FILE_NAME);
        let partial = PartialFile::new(&path)?;
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(partial.path(), json)?;
        partial.commit()
    }
}
