//! A first pass over a segment's `.rtpdump`: validates every record and RTP header, and
//! measures the segment (first and last RTP timestamp, packets, loss) without decoding.

use std::io::BufReader;
use std::path::Path;

use super::rtp::{is_rtcp, parse_rtp};
use super::rtpdump::{RecordKind, RtpDumpReader};
use super::{IngestError, Segment};
use crate::timeline::{SequenceUnwrapper, TimestampUnwrapper};

/// What the first pass learned about a segment's media packets (its primary payload type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketScan {
    pub packets: u64,
    /// RTP timestamp of the first media packet in file order.
    pub first_timestamp: u32,
    /// Smallest and largest unwrapped timestamps, relative to `first_timestamp`.
    pub min_ticks: i64,
    pub max_ticks: i64,
    /// Packets missing from the sequence-number range.
    pub lost_packets: u64,
    /// Packets of other payload types (RTX, RED, FEC, ...) and RTCP records, skipped.
    pub skipped_packets: u64,
}

/// Reads the whole `.rtpdump` of `segment` once, streaming.
pub fn scan_rtpdump(segment: &Segment) -> Result<PacketScan, IngestError> {
    let path = segment.rtpdump_path.as_path();
    let file = std::fs::File::open(path).map_err(|source| IngestError::Io { path: path.to_path_buf(), source })?;
    let mut reader = RtpDumpReader::new(BufReader::new(file)).map_err(|source| rtpdump_error(path, source))?;
    let mut timestamps = TimestampUnwrapper::new();
    let mut sequences = SequenceUnwrapper::new();
    let mut scan: Option<PacketScan> = None;
    let (mut min_seq, mut max_seq) = (i64::MAX, i64::MIN);
    let mut skipped = 0_u64;
    let mut record_index = 0_u64;
    while let Some(record) = reader.next_record().map_err(|source| rtpdump_error(path, source))? {
        record_index += 1;
        if matches!(record.kind, RecordKind::Rtcp) || is_rtcp(&record.data) {
            skipped += 1;
            continue;
        }
        let info = parse_rtp(&record.data).map_err(|source| IngestError::Rtp {
            path: path.to_path_buf(),
            record_index: record_index - 1,
            source,
        })?;
        if info.payload_type != segment.payload_type {
            skipped += 1;
            continue;
        }
        let ticks = timestamps.unwrap(info.timestamp);
        let seq = sequences.unwrap(info.sequence);
        min_seq = min_seq.min(seq);
        max_seq = max_seq.max(seq);
        let s = scan.get_or_insert(PacketScan {
            packets: 0,
            first_timestamp: info.timestamp,
            min_ticks: 0,
            max_ticks: 0,
            lost_packets: 0,
            skipped_packets: 0,
        });
        let relative = ticks - i64::from(s.first_timestamp);
        s.packets += 1;
        s.min_ticks = s.min_ticks.min(relative);
        s.max_ticks = s.max_ticks.max(relative);
    }
    let mut scan = scan.ok_or_else(|| IngestError::NoMediaPackets {
        path: path.to_path_buf(),
        payload_type: segment.payload_type,
        codec: segment.codec.encoding_name(),
    })?;
    let expected = u64::try_from(max_seq - min_seq + 1).unwrap_or(0);
    scan.lost_packets = expected.saturating_sub(scan.packets);
    scan.skipped_packets = skipped;
    Ok(scan)
}

fn rtpdump_error(path: &Path, source: super::rtpdump::RtpDumpError) -> IngestError {
    IngestError::Rtpdump { path: path.to_path_buf(), source }
}
