//! A first pass over a segment's `.rtpdump`: validates every record and RTP header, and
//! measures the segment (first and last RTP timestamp, packets, loss) without decoding.

use super::packets::MediaPackets;
use super::{IngestError, Segment};

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
    let mut packets = MediaPackets::open(path, segment.payload_type)?;
    let mut scan: Option<PacketScan> = None;
    let (mut min_seq, mut max_seq) = (i64::MAX, i64::MIN);
    while let Some(packet) = packets.next_packet()? {
        min_seq = min_seq.min(packet.sequence);
        max_seq = max_seq.max(packet.sequence);
        let s = scan.get_or_insert(PacketScan {
            packets: 0,
            first_timestamp: packet.info.timestamp,
            min_ticks: 0,
            max_ticks: 0,
            lost_packets: 0,
            skipped_packets: 0,
        });
        let relative = packet.ticks - i64::from(s.first_timestamp);
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
    scan.skipped_packets = packets.skipped;
    Ok(scan)
}
