//! Stream's per-participant-session `*_timing_metadata.json`: schema, parsing and validation.
//!
//! Unknown keys are ignored. The RTCP fields treat 0 as absent (see [`SegmentMetadata::rtcp_first`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{prefix_within, quoted};

/// Largest timing metadata file read, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 << 20;

/// Longest call type and id (call, call session, participant, user session, track), in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest `base_filename`, in bytes: a file name's 255 less `.rtpdump`.
pub const MAX_BASE_FILENAME_BYTES: usize = 247;
/// Longest codec, track type and call start time, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// serde's messages repeat a bad value: longer ones are cut to this many bytes.
const MAX_JSON_MESSAGE_BYTES: usize = 200;

/// Errors from [`parse_timing_metadata`]. Values from the file are quoted short
/// ([`quoted`]), whatever their length.
#[derive(Debug, Error)]
pub enum MetadataError {
    /// Not valid JSON for the schema; serde's message names the field, line and column.
    #[error("invalid timing metadata at {}: {}", quoted(field), json_message(source))]
    Json {
        /// Where in the document, e.g. `segments.video[0].codec` (`.` for the whole document).
        field: String,
        #[source]
        source: serde_json::Error,
    },
    /// The file is larger than any real one.
    #[error("the timing metadata file is over the limit of {max_bytes} bytes ({size_bytes} bytes read)")]
    TooLarge { size_bytes: usize, max_bytes: usize },
    /// A string longer than its limit.
    #[error("`{field}` is {shown}: over the limit of {max_bytes} bytes")]
    TooLong {
        field: String,
        /// The value as [`quoted`] shows it (the whole string is not kept).
        shown: String,
        max_bytes: usize,
    },
    /// `call_start_time` is not RFC 3339.
    #[error("call_start_time {} is not an RFC 3339 time: {reason}", quoted(value))]
    BadStartTime { value: String, reason: String },
    /// A required string is empty.
    #[error("`{field}` is empty")]
    EmptyField { field: String },
    /// A `base_filename` that could name a path outside its folder.
    #[error("`{field}` is {}: {reason}", quoted(value))]
    BadBaseFilename { field: String, value: String, reason: &'static str },
}

/// serde's message, cut when it repeats a long value; the position stays.
fn json_message(err: &serde_json::Error) -> String {
    let message = err.to_string();
    if message.len() <= MAX_JSON_MESSAGE_BYTES {
        return message;
    }
    let position =
        if err.line() > 0 { format!(" at line {} column {}", err.line(), err.column()) } else { String::new() };
    format!("{}… ({} bytes){position}", prefix_within(&message, MAX_JSON_MESSAGE_BYTES), message.len())
}

/// One participant session's timing metadata.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TimingMetadata {
    /// Call type, e.g. `default`.
    pub call_type: String,
    /// Call id.
    pub call_id: String,
    /// SFU call session id (empty when absent).
    #[serde(default)]
    pub call_session_id: String,
    /// Call start, RFC 3339.
    pub call_start_time: String,
    /// User id.
    pub participant_id: String,
    /// The user's session id.
    pub user_session_id: String,
    /// Audio and video segments.
    #[serde(default)]
    pub segments: Segments,
}

/// The segment lists.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Segments {
    /// Audio segments.
    #[serde(default)]
    pub audio: Vec<SegmentMetadata>,
    /// Video segments.
    #[serde(default)]
    pub video: Vec<SegmentMetadata>,
}

/// One continuous publishing interval of a track, stored as one `.rtpdump` + `.sdp`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SegmentMetadata {
    /// Substring of the segment's `.rtpdump` file name.
    pub base_filename: String,
    /// MIME-style codec, e.g. `audio/opus`.
    pub codec: String,
    /// Track id.
    pub track_id: String,
    /// Track type.
    pub track_type: TrackType,
    /// RTP timestamp of the first RTP packet.
    pub first_rtp_rtp_timestamp: u32,
    /// Unix ms of the first RTP packet.
    pub first_rtp_unix_timestamp: i64,
    /// RTP timestamp of the last RTP packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rtp_rtp_timestamp: Option<u32>,
    /// Unix ms of the last RTP packet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rtp_unix_timestamp: Option<i64>,
    /// RTP timestamp in the first RTCP sender report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_rtcp_rtp_timestamp: Option<u32>,
    /// Unix ms of the first RTCP sender report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_rtcp_ntp_timestamp: Option<i64>,
    /// RTP timestamp in the last RTCP sender report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rtcp_rtp_timestamp: Option<u32>,
    /// Unix ms of the last RTCP sender report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rtcp_ntp_timestamp: Option<i64>,
    /// Ms from the first packet to the first keyframe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_key_frame_offset_ms: Option<i64>,
    /// Largest frame size seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_frame_dimension: Option<FrameDimension>,
}

/// A frame size in pixels.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct FrameDimension {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Stream's `TRACK_TYPE_*` names; anything else is kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TrackType {
    /// `TRACK_TYPE_AUDIO`.
    Audio,
    /// `TRACK_TYPE_VIDEO`.
    Video,
    /// `TRACK_TYPE_SCREEN_SHARE`.
    ScreenShare,
    /// `TRACK_TYPE_SCREEN_SHARE_AUDIO`.
    ScreenShareAudio,
    /// Any other string.
    Other(String),
}

impl TrackType {
    /// The JSON name.
    pub fn as_str(&self) -> &str {
        match self {
            TrackType::Audio => "TRACK_TYPE_AUDIO",
            TrackType::Video => "TRACK_TYPE_VIDEO",
            TrackType::ScreenShare => "TRACK_TYPE_SCREEN_SHARE",
            TrackType::ScreenShareAudio => "TRACK_TYPE_SCREEN_SHARE_AUDIO",
            TrackType::Other(name) => name,
        }
    }

    /// Parses a JSON name.
    pub fn from_name(name: &str) -> TrackType {
        match name {
            "TRACK_TYPE_AUDIO" => TrackType::Audio,
            "TRACK_TYPE_VIDEO" => TrackType::Video,
            "TRACK_TYPE_SCREEN_SHARE" => TrackType::ScreenShare,
            "TRACK_TYPE_SCREEN_SHARE_AUDIO" => TrackType::ScreenShareAudio,
            other => TrackType::Other(other.to_owned()),
        }
    }

    /// Audio or screenshare audio.
    pub fn is_audio(&self) -> bool {
        matches!(self, TrackType::Audio | TrackType::ScreenShareAudio)
    }

    /// Screenshare video or screenshare audio.
    pub fn is_screenshare(&self) -> bool {
        matches!(self, TrackType::ScreenShare | TrackType::ScreenShareAudio)
    }
}

impl Serialize for TrackType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TrackType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Ok(TrackType::from_name(&name))
    }
}

/// `(rtp, ntp)` when both are present and non-zero.
fn rtcp_pair(rtp: Option<u32>, ntp: Option<i64>) -> Option<(u32, i64)> {
    match (rtp, ntp) {
        (Some(rtp), Some(ntp)) if rtp != 0 && ntp != 0 => Some((rtp, ntp)),
        _ => None,
    }
}

impl SegmentMetadata {
    /// First sender report as (RTP timestamp, Unix ms); `None` when absent or either is 0.
    pub fn rtcp_first(&self) -> Option<(u32, i64)> {
        rtcp_pair(self.first_rtcp_rtp_timestamp, self.first_rtcp_ntp_timestamp)
    }

    /// Last sender report as (RTP timestamp, Unix ms); `None` when absent or either is 0.
    pub fn rtcp_last(&self) -> Option<(u32, i64)> {
        rtcp_pair(self.last_rtcp_rtp_timestamp, self.last_rtcp_ntp_timestamp)
    }
}

impl TimingMetadata {
    /// `call_start_time` as Unix milliseconds.
    pub fn call_start_unix_ms(&self) -> Result<i64, MetadataError> {
        let bad = |reason: String| MetadataError::BadStartTime { value: self.call_start_time.clone(), reason };
        let time = OffsetDateTime::parse(&self.call_start_time, &Rfc3339).map_err(|e| bad(e.to_string()))?;
        i64::try_from(time.unix_timestamp_nanos() / 1_000_000).map_err(|_| bad("out of range".to_owned()))
    }
}

/// True for `timing_metadata.json` (Stream's documented layout, one per session folder) and
/// names ending in `_timing_metadata.json` (its flat layout), case-insensitively.
pub fn is_timing_metadata_name(file_name: &str) -> bool {
    const NAME: &str = "timing_metadata.json";
    let bytes = file_name.as_bytes();
    let Some(end) = bytes.len().checked_sub(NAME.len()).and_then(|start| bytes.get(start..)) else {
        return false;
    };
    let before = bytes.len() - NAME.len();
    end.eq_ignore_ascii_case(NAME.as_bytes()) && (before == 0 || bytes.get(before - 1) == Some(&b'_'))
}

/// Reads `path` up to one byte over [`MAX_METADATA_BYTES`] (enough for the parser to refuse it).
pub fn read_bounded(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(MAX_METADATA_BYTES as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Every string of `meta` with its field path and limit.
fn bounded_strings(meta: &TimingMetadata) -> Vec<(String, &str, usize)> {
    let mut strings = vec![
        ("call_type".to_owned(), meta.call_type.as_str(), MAX_ID_BYTES),
        ("call_id".to_owned(), meta.call_id.as_str(), MAX_ID_BYTES),
        ("call_session_id".to_owned(), meta.call_session_id.as_str(), MAX_ID_BYTES),
        ("call_start_time".to_owned(), meta.call_start_time.as_str(), MAX_NAME_BYTES),
        ("participant_id".to_owned(), meta.participant_id.as_str(), MAX_ID_BYTES),
        ("user_session_id".to_owned(), meta.user_session_id.as_str(), MAX_ID_BYTES),
    ];
    for (list, segments) in [("audio", &meta.segments.audio), ("video", &meta.segments.video)] {
        for (index, segment) in segments.iter().enumerate() {
            let path = format!("segments.{list}[{index}]");
            strings.extend([
                (format!("{path}.base_filename"), segment.base_filename.as_str(), MAX_BASE_FILENAME_BYTES),
                (format!("{path}.codec"), segment.codec.as_str(), MAX_NAME_BYTES),
                (format!("{path}.track_id"), segment.track_id.as_str(), MAX_ID_BYTES),
                (format!("{path}.track_type"), segment.track_type.as_str(), MAX_NAME_BYTES),
            ]);
        }
    }
    strings
}

/// Parses and validates a timing metadata file: at most [`MAX_METADATA_BYTES`], every string
/// within its limit ([`MAX_ID_BYTES`], [`MAX_BASE_FILENAME_BYTES`], [`MAX_NAME_BYTES`]).
pub fn parse_timing_metadata(bytes: &[u8]) -> Result<TimingMetadata, MetadataError> {
    if bytes.len() > MAX_METADATA_BYTES {
        return Err(MetadataError::TooLarge { size_bytes: bytes.len(), max_bytes: MAX_METADATA_BYTES });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let meta: TimingMetadata = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let field = err.path().to_string();
        MetadataError::Json { field, source: err.into_inner() }
    })?;
    deserializer.end().map_err(|source| MetadataError::Json { field: ".".to_owned(), source })?;
    if let Some((field, value, max_bytes)) = bounded_strings(&meta).into_iter().find(|(_, v, max)| v.len() > *max) {
        return Err(MetadataError::TooLong { field, shown: quoted(value), max_bytes });
    }
    meta.call_start_unix_ms()?;
    for (field, value) in [
        ("call_id", &meta.call_id),
        ("participant_id", &meta.participant_id),
        ("user_session_id", &meta.user_session_id),
    ] {
        non_empty(field.to_owned(), value)?;
    }
    let lists = [("audio", &meta.segments.audio), ("video", &meta.segments.video)];
    for (list, segments) in lists {
        for (index, segment) in segments.iter().enumerate() {
            let path = format!("segments.{list}[{index}]");
            non_empty(format!("{path}.track_id"), &segment.track_id)?;
            let field = format!("{path}.base_filename");
            non_empty(field.clone(), &segment.base_filename)?;
            let value = &segment.base_filename;
            let reason = if value.contains(['/', '\\']) {
                Some("contains a path separator")
            } else if value == ".." || value == "." {
                Some("is a relative directory name")
            } else if value.contains('\0') {
                Some("contains a NUL byte")
            } else {
                None
            };
            if let Some(reason) = reason {
                let value = value.clone();
                return Err(MetadataError::BadBaseFilename { field, value, reason });
            }
        }
    }
    Ok(meta)
}

fn non_empty(field: String, value: &str) -> Result<(), MetadataError> {
    if value.trim().is_empty() {
        return Err(MetadataError::EmptyField { field });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the reference, §2.
    const EXAMPLE: &str = r#"{
  "call_type": "default",
  "call_id": "weekly-sync",
  "call_session_id": "5a1e6c0e-0000-4000-8000-000000000001",
  "call_start_time": "2026-01-28T09:00:00.000Z",
  "participant_id": "alice",
  "user_session_id": "0b7f2f4e-0000-4000-8000-000000000002",
  "segments": {
    "audio": [
      {
        "base_filename": "alice_0b7f2f4e_audio_0",
        "codec": "audio/opus",
        "track_id": "a1b2c3:TRACK_TYPE_AUDIO:0",
        "track_type": "TRACK_TYPE_AUDIO",
        "first_rtp_rtp_timestamp": 1000000,
        "first_rtp_unix_timestamp": 1769590801234,
        "last_rtp_rtp_timestamp": 3880000,
        "last_rtp_unix_timestamp": 1769590861236,
        "first_rtcp_rtp_timestamp": 1048000,
        "first_rtcp_ntp_timestamp": 1769590802230,
        "last_rtcp_rtp_timestamp": 3832000,
        "last_rtcp_ntp_timestamp": 1769590860231
      }
    ],
    "video": [
      {
        "base_filename": "alice_0b7f2f4e_video_0",
        "codec": "video/VP8",
        "track_id": "a1b2c3:TRACK_TYPE_VIDEO:0",
        "track_type": "TRACK_TYPE_VIDEO",
        "first_rtp_rtp_timestamp": 7200000,
        "first_rtp_unix_timestamp": 1769590801500,
        "last_rtp_rtp_timestamp": 12600000,
        "last_rtp_unix_timestamp": 1769590861500,
        "first_rtcp_rtp_timestamp": 7290000,
        "first_rtcp_ntp_timestamp": 1769590802498,
        "first_key_frame_offset_ms": 40,
        "max_frame_dimension": { "width": 1280, "height": 720 }
      }
    ]
  }
}"#;

    fn err(json: &str) -> String {
        parse_timing_metadata(json.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn reference_example_parses() {
        let meta = parse_timing_metadata(EXAMPLE.as_bytes()).unwrap();
        assert_eq!((meta.call_type.as_str(), meta.participant_id.as_str()), ("default", "alice"));
        assert_eq!(meta.call_start_unix_ms().unwrap(), 1_769_590_800_000);
        let audio = &meta.segments.audio[0];
        assert_eq!(audio.track_type, TrackType::Audio);
        assert_eq!(audio.rtcp_first(), Some((1_048_000, 1_769_590_802_230)));
        assert_eq!(audio.rtcp_last(), Some((3_832_000, 1_769_590_860_231)));
        assert_eq!(audio.max_frame_dimension, None);
        let video = &meta.segments.video[0];
        assert_eq!((video.first_key_frame_offset_ms, video.rtcp_last()), (Some(40), None));
        let dims = FrameDimension { width: 1280, height: 720 };
        assert_eq!(video.max_frame_dimension, Some(dims));
    }

    #[test]
    fn serialize_round_trip_and_absent_options() {
        let mut meta = parse_timing_metadata(EXAMPLE.as_bytes()).unwrap();
        meta.segments.video[0].track_type = TrackType::Other("TRACK_TYPE_HOLOGRAM".into());
        meta.segments.audio[0].track_type = TrackType::ScreenShareAudio;
        let json = serde_json::to_string(&meta).unwrap();
        assert!(!json.contains("last_rtcp_rtp_timestamp\":null"));
        assert!(json.contains("\"TRACK_TYPE_HOLOGRAM\"") && json.contains("SCREEN_SHARE_AUDIO"));
        assert_eq!(parse_timing_metadata(json.as_bytes()).unwrap(), meta);
    }

    #[test]
    fn unknown_keys_defaults_and_zero_rtcp() {
        let json = EXAMPLE
            .replace("\"call_session_id\": \"5a1e6c0e-0000-4000-8000-000000000001\",", "")
            .replace("\"call_type\"", "\"call_end_time\": \"x\", \"drift_ms\": [1], \"call_type\"")
            .replace("\"first_rtcp_ntp_timestamp\": 1769590802230", "\"first_rtcp_ntp_timestamp\": 0")
            .replace("\"last_rtcp_rtp_timestamp\": 3832000", "\"last_rtcp_rtp_timestamp\": null");
        let meta = parse_timing_metadata(json.as_bytes()).unwrap();
        assert_eq!(meta.call_session_id, "");
        assert_eq!((meta.segments.audio[0].rtcp_first(), meta.segments.audio[0].rtcp_last()), (None, None));
        let minimal = r#"{"call_type":"","call_id":"c","call_start_time":"2026-01-28T10:00:00+01:00",
            "participant_id":"p","user_session_id":"s","segments":{}}"#;
        let meta = parse_timing_metadata(minimal.as_bytes()).unwrap();
        assert!(meta.segments.audio.is_empty() && meta.segments.video.is_empty());
        assert_eq!(meta.call_start_unix_ms().unwrap(), 1_769_590_800_000);
    }

    #[test]
    fn track_type_helpers() {
        assert!(TrackType::Audio.is_audio() && TrackType::ScreenShareAudio.is_audio());
        assert!(!TrackType::Video.is_audio() && !TrackType::Other("x".into()).is_audio());
        assert!(TrackType::ScreenShare.is_screenshare() && !TrackType::Audio.is_screenshare());
        assert_eq!(TrackType::from_name("TRACK_TYPE_SCREEN_SHARE"), TrackType::ScreenShare);
        assert!(is_timing_metadata_name("Alice_TIMING_metadata.JSON"));
        assert!(is_timing_metadata_name("timing_metadata.json") && is_timing_metadata_name("Timing_Metadata.json"));
        assert!(!is_timing_metadata_name("xtiming_metadata.json") && !is_timing_metadata_name("é"));
        assert!(
            !is_timing_metadata_name("timing_metadata.json.bak") && !is_timing_metadata_name("éétiming_metadata.json")
        );
    }

    #[test]
    fn errors_are_precise() {
        let e = err(&EXAMPLE.replace("\"first_rtp_rtp_timestamp\": 7200000", "\"first_rtp_rtp_timestamp\": -1"));
        assert!(e.contains("invalid value: integer `-1`, expected u32 at line 31 column 37"), "{e}");
        let e = err(&EXAMPLE.replace("\"track_id\": \"a1b2c3:TRACK_TYPE_VIDEO:0\",", ""));
        assert!(e.contains("missing field `track_id` at line 39 column 7"), "{e}");
        assert!(err("{").contains("EOF while parsing an object at line 1 column 1"));
        let e = err(&EXAMPLE.replace("2026-01-28T09:00:00.000Z", "yesterday"));
        assert!(e.starts_with("call_start_time `yesterday` is not an RFC 3339 time: "), "{e}");
        let e = err(&EXAMPLE.replace("\"alice_0b7f2f4e_video_0\"", "\"\""));
        assert_eq!(e, "`segments.video[0].base_filename` is empty");
        let e = err(&EXAMPLE.replace("\"a1b2c3:TRACK_TYPE_AUDIO:0\"", "\" \""));
        assert_eq!(e, "`segments.audio[0].track_id` is empty");
        assert_eq!(err(&EXAMPLE.replace("\"alice\"", "\"\"")), "`participant_id` is empty");
        assert_eq!(err(&EXAMPLE.replace("\"weekly-sync\"", "\"\"")), "`call_id` is empty");
        let sid = "\"0b7f2f4e-0000-4000-8000-000000000002\"";
        assert_eq!(err(&EXAMPLE.replace(sid, "\"\"")), "`user_session_id` is empty");
        let cases = [
            ("../x", "contains a path separator"),
            ("a\\\\b", "contains a path separator"),
            ("..", "is a relative directory name"),
            ("a\\u0000", "contains a NUL byte"),
        ];
        for (value, reason) in cases {
            let e = err(&EXAMPLE.replace("alice_0b7f2f4e_audio_0", value));
            assert!(e.starts_with("`segments.audio[0].base_filename` is `") && e.ends_with(reason), "{e}");
        }
    }

    #[test]
    fn strings_and_the_file_have_length_limits() {
        let huge = "A".repeat(1 << 20);
        let e = err(&EXAMPLE.replace("weekly-sync", &huge));
        assert!(e.starts_with("`call_id` is `AAAA") && e.contains("(1048576 bytes)") && e.contains("256"), "{e}");
        assert!(e.len() < 200, "a short error: {} bytes", e.len());
        let long = "b".repeat(300);
        for (value, field) in [
            ("\"default\"", "call_type"),
            ("\"5a1e6c0e-0000-4000-8000-000000000001\"", "call_session_id"),
            ("\"alice\"", "participant_id"),
            ("\"0b7f2f4e-0000-4000-8000-000000000002\"", "user_session_id"),
            ("\"a1b2c3:TRACK_TYPE_AUDIO:0\"", "segments.audio[0].track_id"),
            ("\"alice_0b7f2f4e_video_0\"", "segments.video[0].base_filename"),
            ("\"video/VP8\"", "segments.video[0].codec"),
            ("\"2026-01-28T09:00:00.000Z\"", "call_start_time"),
        ] {
            let e = err(&EXAMPLE.replacen(value, &format!("\"{long}\""), 1));
            assert!(e.starts_with(&format!("`{field}` is `bbb")) && e.contains("(300 bytes)"), "{field}: {e}");
        }
        // The file itself: padding makes it valid JSON over the limit.
        let padded = EXAMPLE.replacen('{', &format!("{{{}", " ".repeat(MAX_METADATA_BYTES)), 1);
        let e = err(&padded);
        assert!(e.contains("timing metadata file") && e.contains(&MAX_METADATA_BYTES.to_string()), "{e}");
        // serde's message repeats a bad string: it is cut, its position kept.
        let e = err(&EXAMPLE.replace("1000000,", &format!("\"{huge}\",")));
        assert!(e.len() < 400 && e.contains("first_rtp_rtp_timestamp") && e.contains("line 15"), "{e}");
    }

    #[test]
    fn fuzz_parse_never_panics() {
        let mut state = 0xdead_beef_cafe_f00du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"{}[]\":,0123456789-.eE truenlfas\\u";
        for i in 0..20_000 {
            let mut bytes = EXAMPLE.as_bytes().to_vec();
            if i % 4 == 0 {
                bytes = (0..next() % 80).map(|_| next() as u8).collect();
            } else {
                for _ in 0..=next() % 3 {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = alphabet[(next() as usize) % alphabet.len()];
                }
            }
            if let Ok(meta) = parse_timing_metadata(&bytes) {
                let _ = meta.call_start_unix_ms();
            }
        }
    }
}
