//! Ingest: open a raw call recording (directory, `.zip` or `.tar.gz`), parse its timing
//! metadata, SDP and rtpdump files, and group the segments into tracks per participant session.

pub mod archive;
pub mod audio_level;
mod codec_sniff;
pub mod damage;
pub mod frames;
pub mod metadata;
mod model;
pub mod packets;
pub mod redundancy;
pub mod rtp;
pub mod rtpdump;
mod scan;
pub mod sdp;
mod shown;
pub mod track_files;

pub use model::{CallInfo, ParticipantSession, Recording, Segment, Track, TrackKind};
pub use scan::{PacketScan, scan_rtpdump};
pub use shown::PathShown;

use std::path::PathBuf;

use crate::error::quoted;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    #[error(
        "{path}: no timing metadata file (`timing_metadata.json` or `*_timing_metadata.json`) found in the recording"
    )]
    NoMetadata { path: PathBuf },
    #[error("{path}: {source}")]
    Metadata {
        path: PathBuf,
        #[source]
        source: metadata::MetadataError,
    },
    #[error(
        "{path}: field `{field}` is {} but another metadata file of this recording says {}",
        quoted(value),
        quoted(expected)
    )]
    MixedCalls { path: PathBuf, field: &'static str, value: String, expected: String },
    #[error(
        "{path}: segment `{field}` (base_filename {}) matches no .rtpdump file in the recording",
        quoted(base_filename)
    )]
    MissingRtpdump { path: PathBuf, field: String, base_filename: String },
    #[error(
        "{path}: segment `{field}` (base_filename {}) matches several .rtpdump files: {candidates}",
        quoted(base_filename)
    )]
    AmbiguousRtpdump { path: PathBuf, field: String, base_filename: String, candidates: String },
    #[error("{path}: missing SDP file for {rtpdump}")]
    MissingSdp { path: PathBuf, rtpdump: PathBuf },
    #[error("{path}: {source}")]
    Sdp {
        path: PathBuf,
        #[source]
        source: sdp::SdpError,
    },
    #[error("{path}: the SDP describes {sdp_kind} but the metadata says track_type {}", quoted(track_type))]
    KindMismatch { path: PathBuf, sdp_kind: &'static str, track_type: String },
    #[error("{path}: {source}")]
    Rtpdump {
        path: PathBuf,
        #[source]
        source: rtpdump::RtpDumpError,
    },
    #[error(
        "{path}: too damaged to render: {skipped} of {records} records unusable{}, more than the {}% tolerated; first bad record {first_record_index} ({}): {first_detail}",
        unread_note(*unread_bytes, *file_bytes),
        damage::MAX_DAMAGED_PCT,
        first_reason.as_str()
    )]
    Damaged {
        path: PathBuf,
        skipped: u64,
        records: u64,
        unread_bytes: u64,
        file_bytes: u64,
        first_record_index: u64,
        first_reason: damage::DamageReason,
        first_detail: String,
    },
    #[error("{path}: contains no RTP packet with payload type {payload_type} (the SDP's {codec})")]
    NoMediaPackets { path: PathBuf, payload_type: u8, codec: &'static str },
    /// Media placed further from the call's start than the call span limit allows.
    #[error(
        "{path}: {who}'s media is placed {:.1} h to {:.1} h from the call's start, beyond the call span limit of \
         {limit_h} h (its first_rtp_unix_timestamp or the call's call_start_time is wrong)",
        start_ms / 3_600_000.0,
        end_ms / 3_600_000.0
    )]
    CallTooLong { path: PathBuf, who: String, start_ms: f64, end_ms: f64, limit_h: u64 },
}

/// ", reading stopped with N of M bytes unread" when a bad record length stopped the reading.
fn unread_note(unread_bytes: u64, file_bytes: u64) -> String {
    if unread_bytes == 0 {
        return String::new();
    }
    format!(", reading stopped with {unread_bytes} of {file_bytes} bytes unread")
}

/// A recording that cannot be read is the caller's: whatever is wrong, it is in the archive.
impl crate::error::Classify for IngestError {
    fn fault(&self) -> crate::error::Fault {
        match self {
            IngestError::CallTooLong { .. } => crate::error::Fault::BadInput("call_too_long"),
            _ => crate::error::Fault::BadInput("bad_input"),
        }
    }
}
