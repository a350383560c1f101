//! Video frames from RTP packets: which packet starts a frame and which frame is a keyframe
//! (VP8, VP9, H.264, AV1 payload formats), and a gate that lets through only whole frames a
//! decoder can use. After any loss the gate holds everything back until the next keyframe, so
//! a decoder never sees a broken reference chain: the picture freezes on the last good frame
//! instead of showing corruption. The same rule drops the frames before a segment's first
//! keyframe.

use super::packets::MediaPacket;
use super::sdp::Codec;

/// A frame that never ends (no marker bit) is dropped once it holds this many packets.
const MAX_FRAME_PACKETS: usize = 8192;

/// True when `payload` is the first packet of a frame.
pub fn starts_frame(codec: Codec, payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else { return false };
    match codec {
        // S bit and partition index 0.
        Codec::Vp8 => b0 & 0x10 != 0 && b0 & 0x07 == 0,
        // B bit: beginning of a frame.
        Codec::Vp9 => b0 & 0x08 != 0,
        // Anything but the continuation of a fragmented NAL unit.
        Codec::H264 => match b0 & 0x1f {
            28 | 29 => payload.get(1).is_some_and(|fu| fu & 0x80 != 0),
            _ => true,
        },
        // Z bit clear: the first OBU element is not a continuation.
        Codec::Av1 => b0 & 0x80 == 0,
        Codec::Opus => true,
    }
}

/// True when `payload` carries (the start of) a keyframe.
pub fn is_keyframe_packet(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Vp8 => vp8_keyframe(payload),
        // P bit clear (not inter-predicted) on the frame's first packet.
        Codec::Vp9 => payload.first().is_some_and(|b0| b0 & 0x08 != 0 && b0 & 0x40 == 0),
        Codec::H264 => h264_has_idr(payload),
        // N bit: the first packet of a new coded video sequence.
        Codec::Av1 => payload.first().is_some_and(|b0| b0 & 0x08 != 0),
        Codec::Opus => true,
    }
}

/// RFC 7741: skip the payload descriptor, then bit 0 of the VP8 frame tag is 0 on keyframes.
fn vp8_keyframe(payload: &[u8]) -> bool {
    vp8_frame_start(payload).and_then(|index| payload.get(index)).is_some_and(|tag| tag & 0x01 == 0)
}

/// Where the VP8 frame starts in `payload` (after the RFC 7741 payload descriptor), when the
/// packet starts a frame (S set, partition 0).
pub(crate) fn vp8_frame_start(payload: &[u8]) -> Option<usize> {
    let b0 = *payload.first()?;
    if b0 & 0x10 == 0 || b0 & 0x07 != 0 {
        return None;
    }
    let mut index = 1;
    if b0 & 0x80 != 0 {
        let x = *payload.get(1)?;
        index = 2;
        if x & 0x80 != 0 {
            let picture_id = *payload.get(index)?;
            index += if picture_id & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            index += 1;
        }
        if x & 0x30 != 0 {
            index += 1;
        }
    }
    Some(index)
}

/// An IDR slice in a single NAL unit, a STAP-A aggregate, or the first fragment of a FU-A.
fn h264_has_idr(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else { return false };
    match b0 & 0x1f {
        5 => true,
        24 => {
            let mut rest = payload.get(1..).unwrap_or(&[]);
            while let Some((size, after)) = rest.split_first_chunk::<2>() {
                let size = usize::from(u16::from_be_bytes(*size));
                let Some(nal) = after.get(..size) else { return false };
                if nal.first().is_some_and(|h| h & 0x1f == 5) {
                    return true;
                }
                rest = after.get(size..).unwrap_or(&[]);
            }
            false
        }
        28 => payload.get(1).is_some_and(|fu| fu & 0x80 != 0 && fu & 0x1f == 5),
        _ => false,
    }
}

/// What the gate let through and held back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateStats {
    pub frames_delivered: u64,
    /// Frames dropped: incomplete, or waiting for a keyframe after loss or at the start.
    pub frames_dropped: u64,
    /// Extended RTP timestamp of the first keyframe delivered.
    pub first_keyframe_ticks: Option<i64>,
    /// Times the picture froze waiting for a keyframe after loss.
    pub freezes: u64,
}

/// Assembles packets (in sequence order) into frames and lets through only decodable ones.
#[derive(Debug)]
pub struct FrameGate {
    codec: Codec,
    pending: Vec<MediaPacket>,
    pending_broken: bool,
    waiting_for_keyframe: bool,
    stats: GateStats,
}

impl FrameGate {
    pub fn new(codec: Codec) -> FrameGate {
        FrameGate {
            codec,
            pending: Vec::new(),
            pending_broken: false,
            waiting_for_keyframe: true,
            stats: GateStats::default(),
        }
    }

    pub fn stats(&self) -> GateStats {
        self.stats
    }

    /// Takes the next packet; returns the frames (each its packets) that are ready to decode.
    pub fn push(&mut self, packet: MediaPacket) -> Vec<Vec<MediaPacket>> {
        let mut ready = Vec::new();
        if self.pending.first().is_some_and(|first| first.ticks != packet.ticks) {
            // The previous frame ended without its marker packet.
            self.pending_broken = true;
            ready.extend(self.close_frame());
        }
        if self.pending.is_empty() {
            if packet.lost_before > 0 {
                self.lose();
            }
            self.pending_broken = !starts_frame(self.codec, &packet.payload);
        } else if packet.lost_before > 0 {
            self.pending_broken = true;
        }
        let end = packet.marker;
        self.pending.push(packet);
        if self.pending.len() > MAX_FRAME_PACKETS {
            self.pending_broken = true;
            ready.extend(self.close_frame());
        } else if end {
            ready.extend(self.close_frame());
        }
        ready
    }

    /// The end of the stream: a frame still open lacks its marker packet and is dropped
    /// (counted in the stats); every complete frame has already come out of `push`.
    pub fn finish(&mut self) {
        if !self.pending.is_empty() {
            self.pending_broken = true;
            self.close_frame();
        }
    }

    fn lose(&mut self) {
        if !self.waiting_for_keyframe {
            self.stats.freezes += 1;
        }
        self.waiting_for_keyframe = true;
    }

    fn close_frame(&mut self) -> Option<Vec<MediaPacket>> {
        if self.pending.is_empty() {
            return None;
        }
        let frame = std::mem::take(&mut self.pending);
        if self.pending_broken {
            self.lose();
            self.stats.frames_dropped += 1;
            return None;
        }
        let keyframe = frame.iter().any(|p| is_keyframe_packet(self.codec, &p.payload));
        if keyframe {
            self.waiting_for_keyframe = false;
            if self.stats.first_keyframe_ticks.is_none() {
                self.stats.first_keyframe_ticks = frame.first().map(|p| p.ticks);
            }
        }
        if self.waiting_for_keyframe {
            self.stats.frames_dropped += 1;
            return None;
        }
        self.stats.frames_delivered += 1;
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::packets::PacketOrigin;

    fn packet(sequence: i64, ticks: i64, marker: bool, payload: &[u8], lost_before: u64) -> MediaPacket {
        MediaPacket {
            sequence,
            ticks,
            marker,
            payload: payload.to_vec(),
            arrival_ms: 0,
            lost_before,
            origin: PacketOrigin::Media,
        }
    }

    // VP8 descriptors: X=1, I=1 with a 15-bit picture id, then the frame tag.
    const VP8_KEY_START: &[u8] = &[0x90, 0x80, 0x80, 0x01, 0x10, 0, 0];
    const VP8_DELTA_START: &[u8] = &[0x90, 0x80, 0x80, 0x02, 0x11, 0, 0];
    const VP8_CONTINUATION: &[u8] = &[0x80, 0x80, 0x80, 0x02, 9, 9];

    #[test]
    fn detects_keyframes_per_codec() {
        assert!(is_keyframe_packet(Codec::Vp8, VP8_KEY_START));
        assert!(!is_keyframe_packet(Codec::Vp8, VP8_DELTA_START));
        assert!(!is_keyframe_packet(Codec::Vp8, VP8_CONTINUATION));
        assert!(starts_frame(Codec::Vp8, VP8_DELTA_START) && !starts_frame(Codec::Vp8, VP8_CONTINUATION));
        // Without the X byte.
        assert!(is_keyframe_packet(Codec::Vp8, &[0x10, 0x10]));
        assert!(is_keyframe_packet(Codec::Vp9, &[0x88]) && !is_keyframe_packet(Codec::Vp9, &[0xc8]));
        assert!(!starts_frame(Codec::Vp9, &[0x84]));
        // H.264: IDR alone, in a STAP-A after SPS/PPS, as the first FU-A fragment.
        assert!(is_keyframe_packet(Codec::H264, &[0x65, 1]));
        assert!(is_keyframe_packet(Codec::H264, &[0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 1, 0, 2, 0x65, 1]));
        assert!(!is_keyframe_packet(Codec::H264, &[0x78, 0, 2, 0x67, 1, 0, 9, 0x65]));
        assert!(is_keyframe_packet(Codec::H264, &[0x7c, 0x85, 1]));
        assert!(!is_keyframe_packet(Codec::H264, &[0x7c, 0x05, 1]) && !starts_frame(Codec::H264, &[0x7c, 0x05]));
        assert!(!is_keyframe_packet(Codec::H264, &[0x41, 1]));
        assert!(is_keyframe_packet(Codec::Av1, &[0x18]) && !starts_frame(Codec::Av1, &[0x90]));
        for codec in [Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Av1] {
            assert!(!is_keyframe_packet(codec, &[]) && !starts_frame(codec, &[]));
        }
    }

    /// Frames of two packets each: keyframe at frame 0 and 5, deltas otherwise.
    fn stream(frames: i64, lose: &[i64]) -> Vec<MediaPacket> {
        let mut out = Vec::new();
        let mut lost = 0;
        for f in 0..frames {
            let start = if f % 5 == 0 { VP8_KEY_START } else { VP8_DELTA_START };
            for (k, payload) in [start, VP8_CONTINUATION].into_iter().enumerate() {
                let seq = f * 2 + k as i64;
                if lose.contains(&seq) {
                    lost += 1;
                    continue;
                }
                out.push(packet(seq, f * 3000, k == 1, payload, lost));
                lost = 0;
            }
        }
        out
    }

    fn delivered(packets: Vec<MediaPacket>) -> (Vec<i64>, GateStats) {
        let mut gate = FrameGate::new(Codec::Vp8);
        let mut frames = Vec::new();
        for p in packets {
            frames.extend(gate.push(p).into_iter().map(|f| f[0].ticks / 3000));
        }
        gate.finish();
        (frames, gate.stats())
    }

    #[test]
    fn whole_stream_passes() {
        let (frames, stats) = delivered(stream(10, &[]));
        assert_eq!(frames, (0..10).collect::<Vec<_>>());
        assert_eq!((stats.frames_dropped, stats.first_keyframe_ticks, stats.freezes), (0, Some(0), 0));
    }

    #[test]
    fn loss_freezes_until_the_next_keyframe() {
        // The second packet of frame 2 is lost: frames 2, 3, 4 dropped, 5 is a keyframe.
        let (frames, stats) = delivered(stream(10, &[5]));
        assert_eq!(frames, vec![0, 1, 5, 6, 7, 8, 9]);
        assert_eq!((stats.frames_dropped, stats.freezes), (3, 1));
        // A whole frame lost (both packets of frame 3).
        let (frames, _) = delivered(stream(10, &[6, 7]));
        assert_eq!(frames, vec![0, 1, 2, 5, 6, 7, 8, 9]);
        // The marker packet lost, the next frame intact.
        let (frames, _) = delivered(stream(10, &[3]));
        assert_eq!(frames, vec![0, 5, 6, 7, 8, 9]);
        // The first packet of a keyframe lost: nothing until the following keyframe.
        let (frames, _) = delivered(stream(12, &[10]));
        assert_eq!(frames, vec![0, 1, 2, 3, 4, 10, 11]);
    }

    #[test]
    fn a_segment_starting_mid_gop_waits_for_its_first_keyframe() {
        let packets: Vec<MediaPacket> = stream(12, &[]).into_iter().filter(|p| p.ticks >= 2 * 3000).collect();
        let (frames, stats) = delivered(packets);
        assert_eq!(frames, vec![5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(stats.first_keyframe_ticks, Some(5 * 3000));
        assert_eq!(stats.freezes, 0, "waiting at the start is not a freeze");
    }

    #[test]
    fn random_payloads_never_panic() {
        let mut state = 11_u64;
        let mut gate = FrameGate::new(Codec::H264);
        for i in 0..5000 {
            let len = (i % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (state >> 56) as u8
                })
                .collect();
            for codec in [Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Av1] {
                let _ = (starts_frame(codec, &bytes), is_keyframe_packet(codec, &bytes));
            }
            let _ = gate.push(packet(i, i / 3, bytes.first().is_some_and(|b| b & 1 == 1), &bytes, 0));
        }
    }
}
