//! Which video codec a track's RTP payloads really carry, whatever its SDP says: each codec's
//! keyframes have a signature no other codec's payload format can show at that place.
//!
//! - VP8 (RFC 7741): after the payload descriptor, a keyframe's frame tag is followed by the
//!   start code `9d 01 2a`.
//! - VP9 (RFC 9628): the first packet of a keyframe (B set, P clear) carries the uncompressed
//!   header's sync code `49 83 42` within its first bytes.
//! - H.264 (RFC 6184): a sequence parameter set (NAL type 7), alone or in a STAP-A whose sizes
//!   add up exactly. A VP8 or VP9 payload descriptor from libwebrtc always has its top
//!   bit set (X or I), which H.264 forbids in a NAL header.

use super::frames::vp8_frame_start;
use super::sdp::Codec;

/// The video codecs told apart, in the order their signatures are tried.
const SNIFFED: [Codec; 3] = [Codec::H264, Codec::Vp8, Codec::Vp9];

/// The codec whose keyframe signature `payload` shows, if any.
pub fn keyframe_signature(payload: &[u8]) -> Option<Codec> {
    SNIFFED.into_iter().find(|codec| match codec {
        Codec::H264 => h264_sps(payload),
        Codec::Vp8 => vp8_keyframe_start_code(payload),
        Codec::Vp9 => vp9_sync_code(payload),
        _ => false,
    })
}

/// Counts keyframe signatures over a track's packets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodecVotes {
    counts: [u64; SNIFFED.len()],
}

impl CodecVotes {
    pub fn push(&mut self, payload: &[u8]) {
        if let Some(codec) = keyframe_signature(payload)
            && let Some(index) = SNIFFED.iter().position(|c| *c == codec)
        {
            self.counts[index] += 1;
        }
    }

    pub fn count(&self, codec: Codec) -> u64 {
        SNIFFED.iter().position(|c| *c == codec).map_or(0, |index| self.counts[index])
    }

    /// The codec the payloads are, when it is not `declared`: `declared`'s signature never
    /// appeared and exactly one other codec's did.
    pub fn contradicts(&self, declared: Codec) -> Option<Codec> {
        if !SNIFFED.contains(&declared) || self.count(declared) > 0 {
            return None;
        }
        let mut seen = SNIFFED.into_iter().filter(|c| self.count(*c) > 0);
        match (seen.next(), seen.next()) {
            (Some(codec), None) => Some(codec),
            _ => None,
        }
    }
}

fn h264_sps(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else { return false };
    if b0 & 0x80 != 0 {
        return false;
    }
    match b0 & 0x1f {
        7 => payload.len() >= 4,
        24 => {
            // STAP-A: (size, NAL) pairs that fill the payload exactly, one of them an SPS.
            let mut rest = payload.get(1..).unwrap_or(&[]);
            let mut sps = false;
            while !rest.is_empty() {
                let Some((size, after)) = rest.split_first_chunk::<2>() else { return false };
                let size = usize::from(u16::from_be_bytes(*size));
                let Some(nal) = after.get(..size).filter(|n| !n.is_empty()) else { return false };
                if nal[0] & 0x80 != 0 {
                    return false;
                }
                sps |= nal[0] & 0x1f == 7;
                rest = &after[size..];
            }
            sps
        }
        _ => false,
    }
}

fn vp8_keyframe_start_code(payload: &[u8]) -> bool {
    // The descriptor's reserved bit is clear.
    let Some(index) = vp8_frame_start(payload).filter(|_| payload.first().is_some_and(|b0| b0 & 0x40 == 0)) else {
        return false;
    };
    payload.get(index).is_some_and(|tag| tag & 0x01 == 0)
        && payload.get(index + 3..index + 6) == Some(&[0x9d, 0x01, 0x2a][..])
}

fn vp9_sync_code(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else { return false };
    // B set, P clear: the first packet of a frame that references no other.
    if b0 & 0x08 == 0 || b0 & 0x40 != 0 {
        return false;
    }
    let head = payload.get(1..payload.len().min(32)).unwrap_or(&[]);
    head.windows(3).any(|w| w == [0x49, 0x83, 0x42])
}

#[cfg(test)]
mod tests {
    use super::*;

    const H264_SPS: &[u8] = &[0x67, 0x42, 0xe0, 0x1f, 0x8c];
    /// An access unit delimiter, the SPS and the PPS, as GStreamer's payloader aggregates them.
    const H264_STAP_A: &[u8] = &[0x78, 0, 2, 0x09, 0x10, 0, 3, 0x67, 0x42, 0xe0, 0, 2, 0x68, 0xce];
    /// X=1, S=1; I=1 with a 15-bit picture id; keyframe tag, then the start code.
    const VP8_KEY: &[u8] = &[0x90, 0x80, 0x80, 0x01, 0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01];
    /// I=1, B=1 (picture id 0x1234), then a profile-0 keyframe header.
    const VP9_KEY: &[u8] = &[0x88, 0x92, 0x34, 0x82, 0x49, 0x83, 0x42, 0x00, 0x27, 0xf0];

    #[test]
    fn each_codecs_keyframe_is_recognised_and_no_other() {
        assert_eq!(keyframe_signature(H264_SPS), Some(Codec::H264));
        assert_eq!(keyframe_signature(H264_STAP_A), Some(Codec::H264));
        assert_eq!(keyframe_signature(VP8_KEY), Some(Codec::Vp8));
        assert_eq!(keyframe_signature(VP9_KEY), Some(Codec::Vp9));
        // Delta frames, fragments and garbage carry no signature.
        assert_eq!(keyframe_signature(&[0x41, 0x9a, 0x00]), None);
        assert_eq!(keyframe_signature(&[0x90, 0x80, 0x80, 0x02, 0x11, 0, 0, 0, 0, 0]), None);
        assert_eq!(keyframe_signature(&[0x78, 0, 9, 0x67]), None, "a STAP-A whose sizes do not add up");
        assert_eq!(keyframe_signature(&[]), None);
    }

    #[test]
    fn votes_contradict_the_sdp_only_when_one_other_codec_shows() {
        let mut votes = CodecVotes::default();
        for _ in 0..3 {
            votes.push(H264_STAP_A);
            votes.push(&[0x41, 0x9a]);
        }
        assert_eq!(votes.contradicts(Codec::Vp8), Some(Codec::H264));
        assert_eq!(votes.contradicts(Codec::H264), None);
        votes.push(VP9_KEY);
        assert_eq!(votes.contradicts(Codec::Vp8), None, "two candidates: no guess");
        assert_eq!(CodecVotes::default().contradicts(Codec::Vp8), None, "no keyframe at all: no guess");
        assert_eq!(votes.contradicts(Codec::Opus), None);
    }
}
