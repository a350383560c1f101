//! The render plan: every segment scanned and placed on the call clock, tracks grouped into
//! the visuals a layout arranges (one per participant session camera, one per screenshare).

use std::path::PathBuf;

use crate::error::quoted;
use crate::ingest::packets::{MediaPackets, PacketSource};
use crate::ingest::track_files::TrackFileSet;
use crate::ingest::{CallInfo, IngestError, PacketScan, Recording, Segment, TrackKind};
use crate::media::MediaError;
use crate::media::decode::{DecodeSpec, feed_error};
use crate::media::file_decode::probe;
use crate::outputs::TrackFilter;
use crate::timeline::{AnchorSource, CallTimeline, ClockInputs, ParticipantSpan, SegmentClock, SegmentSpan, TrackSpan};

/// Sessions appearing within this much of each other are placed in participant-id order.
const JOIN_ORDER_SLOT_MS: f64 = 100.0;
/// Audio packets carry 20 ms in WebRTC; the last one ends that long after its timestamp.
const AUDIO_TAIL_MS: f64 = 20.0;
/// Metadata times further than this from what the packets show are reported.
const METADATA_SLACK_MS: f64 = 2000.0;
/// A path delay measured longer than this is not believed (sender reports from a wrong
/// clock); at most this much is taken off arrival-placed segments.
const MAX_NETWORK_DELAY_MS: f64 = 1000.0;

#[derive(Debug, Clone)]
pub struct SegmentPlan {
    pub spec: DecodeSpec,
    pub clock: SegmentClock,
    pub span: SegmentSpan,
    pub scan: PacketScan,
    /// The RFC 6464 audio level extension's id in the segment's SDP, if it names one.
    pub audio_level_ext: Option<u8>,
}

impl SegmentPlan {
    /// The segment's media packets, read from its rtpdump again (the scan of the plan kept
    /// only what it learned, not the packets).
    pub fn packets(&self) -> Result<Box<dyn PacketSource>, MediaError> {
        let spec = &self.spec;
        let packets = MediaPackets::open(&spec.rtpdump_path, spec.payload_type, spec.clock_rate_hz, spec.aux.clone())
            .map_err(|err| feed_error(format!("reading {}", spec.rtpdump_path.display()), err))?;
        Ok(Box::new(packets))
    }

    /// The call time of a PTS from this segment's pipeline: back to RTP ticks (PTS count at
    /// the nominal rate from `first_ticks`, the first packet fed), then through the segment's
    /// drift-corrected clock.
    pub fn call_ms_of_pts(&self, first_ticks: Option<i64>, pts_ms: f64) -> f64 {
        let first = first_ticks.unwrap_or(self.scan.first_ticks);
        self.clock.call_ms_f(first as f64 + pts_ms * f64::from(self.clock.clock_rate_hz) / 1000.0)
    }
}

/// A track that is one medium of a media file (a track-file source).
#[derive(Debug, Clone, PartialEq)]
pub struct FileTrack {
    pub path: PathBuf,
    /// Where the file's time 0 lies on the call clock.
    pub start_offset_ms: f64,
}

#[derive(Debug, Clone)]
pub struct TrackPlan {
    pub participant_id: String,
    pub user_session_id: String,
    pub track_id: String,
    pub kind: TrackKind,
    pub screenshare: bool,
    /// A recorded track's segments (none for a file track).
    pub segments: Vec<SegmentPlan>,
    /// A file track's file.
    pub file: Option<FileTrack>,
    pub span: TrackSpan,
}

/// Something the layout places: a participant session's camera, or a screenshare.
#[derive(Debug, Clone)]
pub struct Visual {
    pub participant_id: String,
    pub user_session_id: String,
    pub screenshare: bool,
    pub span: ParticipantSpan,
    /// Indices into [`RenderPlan::tracks`] of this visual's video tracks.
    pub video_tracks: Vec<usize>,
    /// Indices into [`RenderPlan::tracks`] of the audio heard with it (the session's
    /// microphone for a camera, the screenshare's audio for a screenshare): its speaking level.
    pub audio_tracks: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct RenderPlan {
    pub call: CallInfo,
    pub tracks: Vec<TrackPlan>,
    /// In display order: by first appearance (to the nearest 100 ms), then participant and
    /// session id.
    pub visuals: Vec<Visual>,
    pub timeline: CallTimeline,
    /// Distinct participant ids.
    pub participant_count: usize,
}

impl RenderPlan {
    /// Scans every segment of `recording` (validating each rtpdump completely) and places it.
    pub fn build(recording: &Recording) -> Result<RenderPlan, IngestError> {
        RenderPlan::build_filtered(recording, &TrackFilter::default())
    }

    /// Like [`RenderPlan::build`], with only the tracks `filter` lets through.
    pub fn build_filtered(recording: &Recording, filter: &TrackFilter) -> Result<RenderPlan, IngestError> {
        let call_start = recording.call.call_start_unix_ms;
        let mut tracks = Vec::new();
        for (session, track) in recording.tracks() {
            if !filter.matches(&session.participant_id, &session.user_session_id, &track.track_id) {
                continue;
            }
            let mut segments = Vec::with_capacity(track.segments.len());
            for segment in &track.segments {
                let mut scan = recording.scan(segment)?;
                let meta = &segment.meta;
                let mut clock = SegmentClock::from_inputs(&ClockInputs {
                    clock_rate_hz: segment.clock_rate_hz,
                    call_start_unix_ms: call_start,
                    first_rtp: (meta.first_rtp_rtp_timestamp, meta.first_rtp_unix_timestamp),
                    rtcp_first: meta.rtcp_first(),
                    rtcp_last: meta.rtcp_last(),
                    first_packet: (scan.first_ticks, scan.first_arrival_ms),
                    last_packet: (scan.max_ticks, scan.last_arrival_ms),
                    discontinuous: scan.packets.ssrc_changes + scan.packets.discontinuities > 0,
                    // Only the clock needs the envelope: the plan does not keep it.
                    arrival_floor: std::mem::take(&mut scan.arrival_floor),
                    decoder_delay_ms: segment.codec.decoder_delay_ms(),
                });
                clock.notes.extend(metadata_notes(segment, &scan));
                let span = segment_span(&clock, &scan, track.kind);
                segments.push(SegmentPlan {
                    spec: DecodeSpec {
                        rtpdump_path: segment.rtpdump_path.clone(),
                        codec: scan.codec,
                        payload_type: segment.payload_type,
                        clock_rate_hz: segment.clock_rate_hz,
                        // The SDP's format parameters belong to the codec it named.
                        fmtp: if scan.codec == segment.codec { segment.fmtp.clone() } else { Vec::new() },
                        aux: segment.aux.clone(),
                    },
                    audio_level_ext: segment.audio_level_ext,
                    clock,
                    span,
                    scan,
                });
            }
            segments.sort_by(|a, b| a.span.start_ms.total_cmp(&b.span.start_ms));
            let span = track_span(&segments);
            tracks.push(TrackPlan {
                participant_id: session.participant_id.clone(),
                user_session_id: session.user_session_id.clone(),
                track_id: track.track_id.clone(),
                kind: track.kind,
                screenshare: track.screenshare,
                segments,
                file: None,
                span,
            });
        }
        take_off_network_delay(&mut tracks);
        let ids = recording.participants.iter().map(|p| p.participant_id.as_str());
        Ok(RenderPlan::assemble(recording.call.clone(), ids, tracks))
    }

    /// Probes every file of `set` and places each of its media on the call clock: the file's
    /// time 0 at its start offset, for the file's duration.
    pub fn from_track_files(set: &TrackFileSet) -> Result<RenderPlan, MediaError> {
        let mut tracks = Vec::new();
        for (index, file) in set.files.iter().enumerate() {
            let streams = probe(&file.path)?;
            let start_ms = file.start_offset_ms as f64;
            let span = TrackSpan { segments: vec![SegmentSpan { start_ms, end_ms: start_ms + streams.duration_ms }] };
            for (present, kind) in [(streams.video, TrackKind::Video), (streams.audio, TrackKind::Audio)] {
                if present {
                    tracks.push(TrackPlan {
                        participant_id: file.participant_id.clone(),
                        user_session_id: file.user_session_id.clone(),
                        track_id: set.track_id(index, kind),
                        kind,
                        screenshare: file.screenshare,
                        segments: Vec::new(),
                        file: Some(FileTrack { path: file.path.clone(), start_offset_ms: start_ms }),
                        span: span.clone(),
                    });
                }
            }
        }
        let ids: Vec<String> = tracks.iter().map(|t| t.participant_id.clone()).collect();
        Ok(RenderPlan::assemble(set.call.clone(), ids.iter().map(String::as_str), tracks))
    }

    /// The plan of placed `tracks`: their timeline and visuals, and how many distinct
    /// participants `participant_ids` name.
    fn assemble<'a>(
        call: CallInfo,
        participant_ids: impl Iterator<Item = &'a str>,
        tracks: Vec<TrackPlan>,
    ) -> RenderPlan {
        let participant_count = participant_ids.collect::<std::collections::BTreeSet<_>>().len();
        let timeline = CallTimeline::new(tracks.iter().map(|t| &t.span));
        let visuals = visuals(&tracks);
        RenderPlan { call, participant_count, tracks, visuals, timeline }
    }
}

/// What the metadata and SDP say that the packets contradict, for the job report (the
/// placement follows the packets).
fn metadata_notes(segment: &Segment, scan: &PacketScan) -> Vec<String> {
    let meta = &segment.meta;
    let mut notes = Vec::new();
    if scan.codec != segment.codec {
        notes.push(format!(
            "the SDP says {} but the packets carry {} keyframes and none of its own: decoded as {}",
            segment.codec.encoding_name(),
            scan.codec.encoding_name(),
            scan.codec.encoding_name()
        ));
    }
    if let Some(last_unix_ms) = meta.last_rtp_unix_timestamp {
        let packets_ms = f64::from(scan.last_arrival_ms.saturating_sub(scan.first_arrival_ms));
        let said_ms = (last_unix_ms - meta.first_rtp_unix_timestamp) as f64;
        if said_ms < 0.0 {
            notes.push(format!(
                "last_rtp_unix_timestamp {last_unix_ms} runs backwards, {:.0} ms before first_rtp_unix_timestamp: not used",
                -said_ms
            ));
        } else if (said_ms - packets_ms).abs() > METADATA_SLACK_MS {
            notes.push(format!(
                "last_rtp_unix_timestamp {last_unix_ms} puts the segment's end {:.0} s from its last packet's arrival: not used",
                (said_ms - packets_ms) / 1000.0
            ));
        }
    }
    notes
}

/// Where a segment lies on the call clock: from its first to its last timestamp (an audio
/// packet's media lasts past its timestamp).
fn segment_span(clock: &SegmentClock, scan: &PacketScan, kind: TrackKind) -> SegmentSpan {
    let tail = if kind == TrackKind::Audio { AUDIO_TAIL_MS } else { 0.0 };
    SegmentSpan { start_ms: clock.call_ms(scan.min_ticks), end_ms: clock.call_ms(scan.max_ticks) + tail }
}

fn track_span(segments: &[SegmentPlan]) -> TrackSpan {
    TrackSpan { segments: segments.iter().map(|s| s.span.clone()).collect() }
}

/// A segment without sender reports is placed by its arrival times, which include the time
/// from capture to the recorder (packetising, encoding, the network path). The call's segments
/// with sender reports show how long that takes (each one's least transit; the median over
/// those of the same kind, else over all): those placed by arrival are moved that much earlier,
/// so they line up with the others. A call without sender reports keeps its arrival times
/// (every participant is equally late).
fn take_off_network_delay(tracks: &mut [TrackPlan]) {
    let transits = |kind: Option<TrackKind>| -> Vec<f64> {
        let mut found: Vec<f64> = tracks
            .iter()
            .filter(|t| kind.is_none_or(|k| t.kind == k))
            .flat_map(|t| &t.segments)
            .filter_map(|s| s.clock.transit_ms)
            .filter(|t| t.is_finite())
            .collect();
        found.sort_by(f64::total_cmp);
        found
    };
    let delays: Vec<(TrackKind, f64, usize)> = [TrackKind::Audio, TrackKind::Video]
        .into_iter()
        .filter_map(|kind| {
            let same = transits(Some(kind));
            let measured = if same.is_empty() { transits(None) } else { same };
            let median = *measured.get(measured.len() / 2)?;
            Some((kind, median.clamp(0.0, MAX_NETWORK_DELAY_MS), measured.len()))
        })
        .collect();
    for track in tracks.iter_mut() {
        let Some(&(_, delay_ms, measured)) = delays.iter().find(|(kind, ..)| *kind == track.kind) else { continue };
        let mut moved = false;
        for segment in &mut track.segments {
            if segment.clock.anchor_source == AnchorSource::FirstPacketArrival {
                segment.clock.advance_by(delay_ms);
                segment.clock.notes.push(format!(
                    "placed {delay_ms:.0} ms before its arrival times: the transit measured on {measured} of the \
                     call's segments with sender reports (median)"
                ));
                segment.span = segment_span(&segment.clock, &segment.scan, track.kind);
                moved = true;
            }
        }
        if moved {
            track.segments.sort_by(|a, b| a.span.start_ms.total_cmp(&b.span.start_ms));
            track.span = track_span(&track.segments);
        }
    }
}

impl RenderPlan {
    /// Refuses a plan with media further than `max_span_h` from the call's start, either way
    /// (metadata placing a participant years away would make a render that never ends),
    /// naming the track's first file so placed.
    pub fn check_call_span(&self, max_span_h: u64) -> Result<(), IngestError> {
        let limit_ms = max_span_h as f64 * 3_600_000.0;
        for track in &self.tracks {
            let files = track.segments.iter().map(|s| (&s.spec.rtpdump_path, &s.span));
            let file = track.file.iter().zip(&track.span.segments).map(|(f, span)| (&f.path, span));
            if let Some((path, span)) =
                files.chain(file).find(|(_, span)| span.end_ms > limit_ms || span.start_ms < -limit_ms)
            {
                return Err(IngestError::CallTooLong {
                    path: path.clone(),
                    who: format!("participant {} (track {})", quoted(&track.participant_id), quoted(&track.track_id)),
                    start_ms: span.start_ms,
                    end_ms: span.end_ms,
                    limit_h: max_span_h,
                });
            }
        }
        Ok(())
    }

    /// The visuals of some of this plan's tracks (by index), their track indices into this
    /// plan: what an individual file of those tracks shows.
    pub fn visuals_of(&self, track_indices: &[usize]) -> Vec<Visual> {
        let tracks: Vec<TrackPlan> = track_indices.iter().filter_map(|&i| self.tracks.get(i).cloned()).collect();
        let mut visuals = visuals(&tracks);
        for visual in &mut visuals {
            for index in visual.video_tracks.iter_mut().chain(visual.audio_tracks.iter_mut()) {
                *index = track_indices.get(*index).copied().unwrap_or(usize::MAX);
            }
        }
        visuals
    }
}

fn visuals(tracks: &[TrackPlan]) -> Vec<Visual> {
    let mut visuals: Vec<Visual> = Vec::new();
    // Cameras: one visual per session, spanning all of the session's tracks.
    let mut sessions: Vec<(&str, &str)> = tracks
        .iter()
        .filter(|t| !t.screenshare)
        .map(|t| (t.participant_id.as_str(), t.user_session_id.as_str()))
        .collect();
    sessions.sort_unstable();
    sessions.dedup();
    for (participant, session) in sessions {
        let mine = |t: &&TrackPlan| t.participant_id == participant && t.user_session_id == session && !t.screenshare;
        let Some(span) = ParticipantSpan::from_tracks(tracks.iter().filter(mine).map(|t| &t.span)) else { continue };
        let of_kind = |kind: TrackKind| -> Vec<usize> {
            tracks.iter().enumerate().filter(|(_, t)| mine(t) && t.kind == kind).map(|(i, _)| i).collect()
        };
        visuals.push(Visual {
            participant_id: participant.to_owned(),
            user_session_id: session.to_owned(),
            screenshare: false,
            span,
            video_tracks: of_kind(TrackKind::Video),
            audio_tracks: of_kind(TrackKind::Audio),
        });
    }
    // Screenshares: one visual per screenshare video track.
    for (index, track) in tracks.iter().enumerate() {
        if track.screenshare
            && track.kind == TrackKind::Video
            && let Some(span) = ParticipantSpan::from_tracks([&track.span])
        {
            let audio_tracks = tracks
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    t.screenshare
                        && t.kind == TrackKind::Audio
                        && t.participant_id == track.participant_id
                        && t.user_session_id == track.user_session_id
                })
                .map(|(i, _)| i)
                .collect();
            visuals.push(Visual {
                participant_id: track.participant_id.clone(),
                user_session_id: track.user_session_id.clone(),
                screenshare: true,
                span,
                video_tracks: vec![index],
                audio_tracks,
            });
        }
    }
    // Arrivals within the same slot count as simultaneous: clock estimates put two senders that
    // started together a fraction of a millisecond apart, either way round.
    let slot = |v: &Visual| (v.span.start_ms / JOIN_ORDER_SLOT_MS).round() as i64;
    visuals.sort_by(|a, b| {
        slot(a)
            .cmp(&slot(b))
            .then_with(|| a.screenshare.cmp(&b.screenshare))
            .then_with(|| (&a.participant_id, &a.user_session_id).cmp(&(&b.participant_id, &b.user_session_id)))
    });
    visuals
}
