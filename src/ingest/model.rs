//! The call model: participant sessions, their tracks and segments, each segment bound to its
//! `.rtpdump` and `.sdp` files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::archive::{self, ArchiveKind, ExtractLimits};
use super::metadata::{self, SegmentMetadata, TimingMetadata, TrackType};
use super::redundancy::AuxiliaryPayloads;
use super::scan::{PacketScan, scan_rtpdump};
use super::sdp::{self, Codec, MediaKind};
use super::{IngestError, PathShown};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrackKind {
    Audio,
    Video,
}

impl TrackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Audio => "audio",
            TrackKind::Video => "video",
        }
    }
}

/// What every metadata file of one call agrees on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub call_type: String,
    pub call_id: String,
    pub call_session_id: String,
    pub call_start_unix_ms: i64,
}

/// One segment: an uninterrupted run of RTP packets in one `.rtpdump`.
#[derive(Debug, Clone)]
pub struct Segment {
    pub meta: SegmentMetadata,
    pub rtpdump_path: PathBuf,
    pub sdp_path: PathBuf,
    pub codec: Codec,
    pub payload_type: u8,
    pub clock_rate_hz: u32,
    pub channels: Option<u32>,
    pub fmtp: Vec<(String, String)>,
    /// RTX, RED and FEC payload types named in the SDP: unwrapped or passed over, never
    /// decoded as media.
    pub aux: AuxiliaryPayloads,
    /// The header extension ID of the RFC 6464 audio levels its packets carry, when the SDP
    /// maps one (see [`super::audio_level`]).
    pub audio_level_ext: Option<u8>,
}

#[derive(Debug, Clone)]
pub struct Track {
    pub track_id: String,
    pub kind: TrackKind,
    pub screenshare: bool,
    /// Sorted by `first_rtp_unix_timestamp`.
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
pub struct ParticipantSession {
    pub participant_id: String,
    pub user_session_id: String,
    pub metadata_path: PathBuf,
    /// Sorted by kind, screenshare flag and track id.
    pub tracks: Vec<Track>,
}

/// A raw recording, opened and validated. An archive's files are extracted (only those read)
/// into a directory of their own in the caller's work directory, removed when this value is
/// dropped; errors name them as `ARCHIVE!ENTRY`.
#[derive(Debug)]
pub struct Recording {
    pub source: PathBuf,
    pub call: CallInfo,
    /// Sorted by participant id, then session id.
    pub participants: Vec<ParticipantSession>,
    extracted: Option<tempfile::TempDir>,
}

impl Recording {
    /// [`Recording::open_in`] the system's temporary directory.
    pub fn open(input: &Path) -> Result<Recording, IngestError> {
        Recording::open_in(input, &std::env::temp_dir())
    }

    /// Opens a recording from a directory (read in place), a `.zip` or a `.tar.gz` (extracted
    /// into a new `tessera-ingest-*` directory under `work_dir`, which is created if missing).
    pub fn open_in(input: &Path, work_dir: &Path) -> Result<Recording, IngestError> {
        let kind = archive::detect_kind(input)?;
        let extracted = match kind {
            ArchiveKind::Directory => None,
            ArchiveKind::Zip | ArchiveKind::TarGz => {
                let io = |source| IngestError::Io { path: work_dir.to_path_buf(), source };
                std::fs::create_dir_all(work_dir).map_err(io)?;
                let dir = tempfile::Builder::new().prefix("tessera-ingest-").tempdir_in(work_dir).map_err(io)?;
                archive::extract(input, dir.path(), &ExtractLimits::default())?;
                Some(dir)
            }
        };
        let shown = PathShown { extracted: extracted.as_ref().map(|d| d.path()), source: input };
        let root = shown.extracted.unwrap_or(input);
        let opened = archive::list_files(root)
            .map_err(IngestError::from)
            .and_then(|files| build_model(input, &files))
            .map_err(|err| err.shown(&shown));
        let (call, participants) = opened?;
        Ok(Recording { source: input.to_path_buf(), call, participants, extracted })
    }

    pub fn tracks(&self) -> impl Iterator<Item = (&ParticipantSession, &Track)> {
        self.participants.iter().flat_map(|p| p.tracks.iter().map(move |t| (p, t)))
    }

    /// Where an archive was extracted (`None` for a directory, read in place).
    pub fn extracted_dir(&self) -> Option<&Path> {
        self.extracted.as_ref().map(tempfile::TempDir::path)
    }

    /// How this recording's files are named to people: an extracted file as `ARCHIVE!ENTRY`.
    pub fn shown(&self) -> PathShown<'_> {
        PathShown { extracted: self.extracted.as_ref().map(|d| d.path()), source: &self.source }
    }

    /// [`scan_rtpdump`], its errors naming the archive entry.
    pub fn scan(&self, segment: &Segment) -> Result<PacketScan, IngestError> {
        scan_rtpdump(segment).map_err(|err| err.shown(&self.shown()))
    }
}

/// The first few of `paths`, and how many more there are (an archive may hold thousands).
fn candidate_list(paths: &[&PathBuf]) -> String {
    const SHOWN: usize = 5;
    let mut list = paths.iter().take(SHOWN).map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    if paths.len() > SHOWN {
        list.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    list
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn build_model(input: &Path, files: &[PathBuf]) -> Result<(CallInfo, Vec<ParticipantSession>), IngestError> {
    let metadata_files: Vec<&PathBuf> =
        files.iter().filter(|p| metadata::is_timing_metadata_name(&file_name(p))).collect();
    if metadata_files.is_empty() {
        return Err(IngestError::NoMetadata { path: input.to_path_buf() });
    }
    let rtpdumps: Vec<&PathBuf> =
        files.iter().filter(|p| file_name(p).to_ascii_lowercase().ends_with(".rtpdump")).collect();

    let mut call: Option<(CallInfo, PathBuf)> = None;
    let mut participants = Vec::new();
    for path in metadata_files {
        let bytes = metadata::read_bounded(path).map_err(|source| IngestError::Io { path: path.clone(), source })?;
        let meta = metadata::parse_timing_metadata(&bytes)
            .map_err(|source| IngestError::Metadata { path: path.clone(), source })?;
        let info = CallInfo {
            call_type: meta.call_type.clone(),
            call_id: meta.call_id.clone(),
            call_session_id: meta.call_session_id.clone(),
            call_start_unix_ms: meta
                .call_start_unix_ms()
                .map_err(|source| IngestError::Metadata { path: path.clone(), source })?,
        };
        match &call {
            None => call = Some((info, path.clone())),
            Some((first, _)) => check_same_call(path, first, &info)?,
        }
        participants.push(session_from_metadata(path, meta, &rtpdumps)?);
    }
    participants.sort_by(|a, b| (&a.participant_id, &a.user_session_id).cmp(&(&b.participant_id, &b.user_session_id)));
    let (call, _) = call.ok_or_else(|| IngestError::NoMetadata { path: input.to_path_buf() })?;
    Ok((call, participants))
}

fn check_same_call(path: &Path, first: &CallInfo, other: &CallInfo) -> Result<(), IngestError> {
    let checks: [(&'static str, String, String); 3] = [
        ("call_type", other.call_type.clone(), first.call_type.clone()),
        ("call_id", other.call_id.clone(), first.call_id.clone()),
        ("call_start_time", other.call_start_unix_ms.to_string(), first.call_start_unix_ms.to_string()),
    ];
    for (field, value, expected) in checks {
        if value != expected {
            return Err(IngestError::MixedCalls { path: path.to_path_buf(), field, value, expected });
        }
    }
    Ok(())
}

fn session_from_metadata(
    path: &Path,
    meta: TimingMetadata,
    rtpdumps: &[&PathBuf],
) -> Result<ParticipantSession, IngestError> {
    let mut tracks: BTreeMap<(TrackKind, bool, String), Vec<Segment>> = BTreeMap::new();
    let lists = [("segments.audio", &meta.segments.audio), ("segments.video", &meta.segments.video)];
    for (list_name, list) in lists {
        for (index, seg) in list.iter().enumerate() {
            let field = format!("{list_name}[{index}]");
            let segment = bind_segment(path, &field, seg, rtpdumps)?;
            let kind = match segment.codec.media_kind() {
                MediaKind::Audio => TrackKind::Audio,
                MediaKind::Video => TrackKind::Video,
            };
            let expected_audio = match &seg.track_type {
                TrackType::Other(_) => kind == TrackKind::Audio,
                t => t.is_audio(),
            };
            if expected_audio != (kind == TrackKind::Audio) {
                return Err(IngestError::KindMismatch {
                    path: segment.sdp_path.clone(),
                    sdp_kind: kind.as_str(),
                    track_type: track_type_name(&seg.track_type),
                });
            }
            let key = (kind, seg.track_type.is_screenshare(), seg.track_id.clone());
            tracks.entry(key).or_default().push(segment);
        }
    }
    let tracks = tracks
        .into_iter()
        .map(|((kind, screenshare, track_id), mut segments)| {
            segments.sort_by_key(|s| s.meta.first_rtp_unix_timestamp);
            Track { track_id, kind, screenshare, segments }
        })
        .collect();
    Ok(ParticipantSession {
        participant_id: meta.participant_id,
        user_session_id: meta.user_session_id,
        metadata_path: path.to_path_buf(),
        tracks,
    })
}

fn track_type_name(track_type: &TrackType) -> String {
    serde_json::to_value(track_type).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The files among `rtpdumps` that a segment's `base_filename` names: those named exactly
/// `<base_filename>.rtpdump` if there are any, else those whose name contains it.
fn rtpdumps_named<'a>(base_filename: &str, rtpdumps: impl Iterator<Item = &'a PathBuf> + Clone) -> Vec<&'a PathBuf> {
    let exact = format!("{base_filename}.rtpdump").to_ascii_lowercase();
    let exact_matches: Vec<&PathBuf> =
        rtpdumps.clone().filter(|p| file_name(p).to_ascii_lowercase() == exact).collect();
    if exact_matches.is_empty() {
        rtpdumps.filter(|p| file_name(p).contains(base_filename)).collect()
    } else {
        exact_matches
    }
}

/// Finds the segment's `.rtpdump`: in the folder of its metadata file `path` first (Stream's
/// documented layout repeats names like `audio_1` in every session folder), else anywhere in
/// the recording; either way the file named exactly `<base_filename>.rtpdump`, else the
/// single file whose name contains `base_filename`.
fn bind_segment(
    path: &Path,
    field: &str,
    seg: &SegmentMetadata,
    rtpdumps: &[&PathBuf],
) -> Result<Segment, IngestError> {
    let folder = path.parent();
    let own_folder = rtpdumps.iter().copied().filter(|p| p.parent() == folder);
    let mut matches = rtpdumps_named(&seg.base_filename, own_folder);
    if matches.is_empty() {
        matches = rtpdumps_named(&seg.base_filename, rtpdumps.iter().copied());
    }
    let rtpdump_path = match matches.as_slice() {
        [] => {
            return Err(IngestError::MissingRtpdump {
                path: path.to_path_buf(),
                field: field.to_owned(),
                base_filename: seg.base_filename.clone(),
            });
        }
        [one] => (*one).clone(),
        many => {
            return Err(IngestError::AmbiguousRtpdump {
                path: path.to_path_buf(),
                field: field.to_owned(),
                base_filename: seg.base_filename.clone(),
                candidates: candidate_list(many),
            });
        }
    };
    let sdp_path = rtpdump_path.with_extension("sdp");
    if !sdp_path.is_file() {
        return Err(IngestError::MissingSdp { path: sdp_path, rtpdump: rtpdump_path });
    }
    let text = std::fs::read(&sdp_path).map_err(|source| IngestError::Io { path: sdp_path.clone(), source })?;
    let text = String::from_utf8_lossy(&text);
    let description = sdp::parse_sdp(&text).map_err(|source| IngestError::Sdp { path: sdp_path.clone(), source })?;
    let primary = description.primary().map_err(|source| IngestError::Sdp { path: sdp_path.clone(), source })?;
    Ok(Segment {
        meta: seg.clone(),
        codec: primary.codec,
        payload_type: primary.rtpmap.payload_type,
        clock_rate_hz: primary.rtpmap.clock_rate_hz,
        channels: primary.rtpmap.channels,
        fmtp: primary.rtpmap.fmtp.clone(),
        aux: AuxiliaryPayloads::from_sdp(&description, primary.rtpmap.payload_type),
        audio_level_ext: description.audio_level_extension(),
        rtpdump_path,
        sdp_path,
    })
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
