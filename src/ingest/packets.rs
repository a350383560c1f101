//! The media packets of one `.rtpdump`: RTCP records and other payload types (RTX, RED, FEC)
//! skipped, every RTP header checked, sequence numbers and timestamps unwrapped. Streaming:
//! one record in memory at a time. The first pass (`scan`) and the decoder feeder both read
//! segments through this.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::IngestError;
use super::rtp::{RtpPacketInfo, is_rtcp, parse_rtp};
use super::rtpdump::{RecordKind, RtpDumpReader};
use crate::timeline::{SequenceUnwrapper, TimestampUnwrapper};

/// One RTP packet of the wanted payload type.
#[derive(Debug, Clone)]
pub struct MediaPacket {
    pub info: RtpPacketInfo,
    /// Unwrapped 64-bit sequence number and RTP timestamp.
    pub sequence: i64,
    pub ticks: i64,
    /// The whole RTP packet.
    pub data: Vec<u8>,
}

pub struct MediaPackets {
    path: PathBuf,
    payload_type: u8,
    reader: RtpDumpReader<BufReader<std::fs::File>>,
    sequences: SequenceUnwrapper,
    timestamps: TimestampUnwrapper,
    record_index: u64,
    /// RTCP records and packets of other payload types passed over so far.
    pub skipped: u64,
}

impl MediaPackets {
    pub fn open(path: &Path, payload_type: u8) -> Result<MediaPackets, IngestError> {
        let file = std::fs::File::open(path).map_err(|source| IngestError::Io { path: path.to_path_buf(), source })?;
        let reader = RtpDumpReader::new(BufReader::new(file))
            .map_err(|source| IngestError::Rtpdump { path: path.to_path_buf(), source })?;
        Ok(MediaPackets {
            path: path.to_path_buf(),
            payload_type,
            reader,
            sequences: SequenceUnwrapper::new(),
            timestamps: TimestampUnwrapper::new(),
            record_index: 0,
            skipped: 0,
        })
    }

    /// The next media packet; `Ok(None)` at the end of the file.
    pub fn next_packet(&mut self) -> Result<Option<MediaPacket>, IngestError> {
        loop {
            let record =
                self.reader.next_record().map_err(|source| IngestError::Rtpdump { path: self.path.clone(), source })?;
            let Some(record) = record else { return Ok(None) };
            let record_index = self.record_index;
            self.record_index += 1;
            if matches!(record.kind, RecordKind::Rtcp) || is_rtcp(&record.data) {
                self.skipped += 1;
                continue;
            }
            let info = parse_rtp(&record.data).map_err(|source| IngestError::Rtp {
                path: self.path.clone(),
                record_index,
                source,
            })?;
            if info.payload_type != self.payload_type {
                self.skipped += 1;
                continue;
            }
            let sequence = self.sequences.unwrap(info.sequence);
            let ticks = self.timestamps.unwrap(info.timestamp);
            return Ok(Some(MediaPacket { info, sequence, ticks, data: record.data }));
        }
    }
}
