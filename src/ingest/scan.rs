//! A first pass over a segment's `.rtpdump`: validates every record and RTP header, and
//! measures the segment (first and last timestamps, arrival times, loss, recovery, frames a
//! decoder could not use) without decoding.

use super::frames::{FrameGate, GateStats};
use super::packets::{MediaPackets, PacketStats};
use super::sdp::MediaKind;
use super::{IngestError, Segment};

/// What the first pass learned about a segment's media packets (its primary payload type).
#[derive(Debug, Clone, PartialEq)]
pub struct PacketScan {
    /// The first packet in sequence order: raw RTP timestamp, extended timestamp, arrival ms.
    pub first_timestamp: u32,
    pub first_ticks: i64,
    pub first_arrival_ms: u32,
    /// Smallest and largest extended timestamps.
    pub min_ticks: i64,
    pub max_ticks: i64,
    /// Arrival ms of the packet with the largest timestamp.
    pub last_arrival_ms: u32,
    pub packets: PacketStats,
    /// Video only: frames let through and dropped by the keyframe gate.
    pub frames: Option<GateStats>,
    /// Audio only: RTP ticks of media missing after recovery (each lost packet counts as the
    /// packet duration around it), which the decoder conceals.
    pub concealed_ticks: i64,
}

/// Reads the whole `.rtpdump` of `segment` once, streaming.
pub fn scan_rtpdump(segment: &Segment) -> Result<PacketScan, IngestError> {
    let path = segment.rtpdump_path.as_path();
    let mut packets = MediaPackets::open(path, segment.payload_type, segment.clock_rate_hz, segment.aux.clone())?;
    let mut gate = (segment.codec.media_kind() == MediaKind::Video).then(|| FrameGate::new(segment.codec));
    let mut scan: Option<PacketScan> = None;
    let mut previous_ticks: Option<i64> = None;
    while let Some(packet) = packets.next_packet()? {
        let s = scan.get_or_insert(PacketScan {
            first_timestamp: packet.ticks as u32,
            first_ticks: packet.ticks,
            first_arrival_ms: packet.arrival_ms,
            min_ticks: packet.ticks,
            max_ticks: packet.ticks,
            last_arrival_ms: packet.arrival_ms,
            packets: PacketStats::default(),
            frames: None,
            concealed_ticks: 0,
        });
        s.min_ticks = s.min_ticks.min(packet.ticks);
        if packet.ticks >= s.max_ticks {
            s.max_ticks = packet.ticks;
            s.last_arrival_ms = packet.arrival_ms;
        }
        if packet.lost_before > 0 && gate.is_none() {
            // The missing packets span from the previous packet's end to this one's start.
            if let Some(previous) = previous_ticks {
                let per_packet = (packet.ticks - previous) / (packet.lost_before as i64 + 1);
                s.concealed_ticks += per_packet * packet.lost_before as i64;
            }
        }
        previous_ticks = Some(packet.ticks);
        if let Some(gate) = gate.as_mut() {
            gate.push(packet);
        }
    }
    let mut scan = scan.ok_or_else(|| IngestError::NoMediaPackets {
        path: path.to_path_buf(),
        payload_type: segment.payload_type,
        codec: segment.codec.encoding_name(),
    })?;
    if let Some(gate) = gate.as_mut() {
        gate.finish();
        scan.frames = Some(gate.stats());
    }
    scan.packets = packets.stats();
    Ok(scan)
}
