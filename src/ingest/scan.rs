//! A first pass over a segment's `.rtpdump`: validates every record and RTP header (refusing a
//! file whose damaged records pass the threshold of [`super::damage`]), and measures the segment (first and last timestamps, arrival times, loss, recovery, frames a
//! decoder could not use) without decoding.

use super::codec_sniff::CodecVotes;
use super::frames::{FrameGate, GateStats};
use super::packets::{MAX_CONCEALED_MS, MediaPackets, PacketOrigin, PacketStats};
use super::sdp::Codec;
use super::sdp::MediaKind;
use super::{IngestError, Segment};
use crate::timeline::arrival::{ArrivalFloor, FloorPoint};

/// What the first pass learned about a segment's media packets (its primary payload type).
#[derive(Debug, Clone, PartialEq)]
pub struct PacketScan {
    /// The first packet in sequence order: extended timestamp, arrival ms.
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
    /// Audio only: RTP ticks of media missing after recovery that the decoder conceals (see
    /// [`crate::ingest::packets::MediaPacket::missing_before`]).
    pub concealed_ticks: i64,
    /// The lower envelope of the arrival times (see [`crate::timeline::arrival`]).
    pub arrival_floor: Vec<FloorPoint>,
    /// The codec the packets carry: the SDP's, unless the payloads show another codec's
    /// keyframes and never the SDP codec's (see [`super::codec_sniff`]).
    pub codec: Codec,
}

/// Reads the whole `.rtpdump` of `segment` once, streaming; a second time as the codec its
/// payloads really carry when they contradict the SDP.
pub fn scan_rtpdump(segment: &Segment) -> Result<PacketScan, IngestError> {
    let scan = scan_as(segment)?;
    if scan.codec == segment.codec {
        return Ok(scan);
    }
    // The SDP's format parameters belong to the codec it named.
    let real = Segment { codec: scan.codec, fmtp: Vec::new(), ..segment.clone() };
    scan_as(&real)
}

fn scan_as(segment: &Segment) -> Result<PacketScan, IngestError> {
    let path = segment.rtpdump_path.as_path();
    let mut packets = MediaPackets::open(path, segment.payload_type, segment.clock_rate_hz, segment.aux.clone())?;
    let mut gate = (segment.codec.media_kind() == MediaKind::Video).then(|| FrameGate::new(segment.codec));
    let mut scan: Option<PacketScan> = None;
    let mut previous_ticks: Option<i64> = None;
    let mut floor = ArrivalFloor::new(segment.clock_rate_hz);
    let mut votes = CodecVotes::default();
    let max_concealed_ticks = MAX_CONCEALED_MS * i64::from(segment.clock_rate_hz) / 1000;
    while let Some(packet) = packets.next_packet()? {
        let s = scan.get_or_insert(PacketScan {
            first_ticks: packet.ticks,
            first_arrival_ms: packet.arrival_ms,
            min_ticks: packet.ticks,
            max_ticks: packet.ticks,
            last_arrival_ms: packet.arrival_ms,
            packets: PacketStats::default(),
            frames: None,
            concealed_ticks: 0,
            arrival_floor: Vec::new(),
            codec: segment.codec,
        });
        if gate.is_some() {
            votes.push(&packet.payload);
        }
        if packet.origin == PacketOrigin::Media {
            floor.push(packet.ticks, packet.arrival_ms);
        }
        s.min_ticks = s.min_ticks.min(packet.ticks);
        if packet.ticks >= s.max_ticks {
            s.max_ticks = packet.ticks;
            s.last_arrival_ms = packet.arrival_ms;
        }
        if let Some(previous) = previous_ticks.filter(|_| gate.is_none())
            && let Some((_, missing)) = packet.missing_before(previous, max_concealed_ticks)
        {
            s.concealed_ticks += missing;
        }
        previous_ticks = Some(packet.ticks);
        if let Some(gate) = gate.as_mut() {
            gate.push(packet);
        }
    }
    if let Some(err) = packets.damage_error() {
        return Err(err);
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
    scan.arrival_floor = floor.finish();
    scan.codec = votes.contradicts(segment.codec).unwrap_or(segment.codec);
    Ok(scan)
}
