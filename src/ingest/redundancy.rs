//! The payload types WebRTC sends beside the media: retransmissions (RTX, RFC 4588), redundant
//! audio (RED, RFC 2198) and forward error correction (ULPFEC / FlexFEC). RTX and RED carry
//! copies of media packets and are unwrapped back into them; FEC packets are recognised and
//! passed over.

use super::sdp::SessionDescription;

/// How the auxiliary payload types of a segment relate to its primary payload type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuxiliaryPayloads {
    /// RTX payload types whose `apt` is the primary payload type.
    pub rtx: Vec<u8>,
    /// RTX payload types whose `apt` is a RED payload type (retransmitted RED packets).
    pub rtx_red: Vec<u8>,
    /// RED payload types (their blocks are checked against the primary payload type).
    pub red: Vec<u8>,
    /// Other auxiliary payload types: FEC, RTX of other streams. Passed over.
    pub ignored: Vec<u8>,
}

impl AuxiliaryPayloads {
    /// Classifies the SDP's rtx / red / ulpfec / flexfec payload types for `primary_pt`.
    pub fn from_sdp(description: &SessionDescription, primary_pt: u8) -> AuxiliaryPayloads {
        let mut aux = AuxiliaryPayloads::default();
        let is_red = |pt: u8| description.rtpmap(pt).is_some_and(|m| m.encoding_name.eq_ignore_ascii_case("red"));
        for pt in description.auxiliary_payload_types() {
            let Some(map) = description.rtpmap(pt) else { continue };
            let encoding = map.encoding_name.to_ascii_lowercase();
            let apt = map.fmtp.iter().find(|(k, _)| k.eq_ignore_ascii_case("apt")).and_then(|(_, v)| v.parse().ok());
            match encoding.as_str() {
                "rtx" if apt == Some(primary_pt) => aux.rtx.push(pt),
                "rtx" if apt.is_some_and(is_red) => aux.rtx_red.push(pt),
                "red" => aux.red.push(pt),
                _ => aux.ignored.push(pt),
            }
        }
        aux
    }
}

/// Splits an RTX payload into the original sequence number and the original payload.
pub fn unwrap_rtx(payload: &[u8]) -> Option<(u16, &[u8])> {
    let (osn, rest) = payload.split_first_chunk::<2>()?;
    (!rest.is_empty()).then(|| (u16::from_be_bytes(*osn), rest))
}

/// One block of a RED packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedBlock<'a> {
    pub payload_type: u8,
    /// How many RTP ticks before the RED packet's timestamp this block's media starts.
    pub timestamp_offset_ticks: u32,
    /// Blocks after this one in the packet: the primary block has 0, the block just before it
    /// 1, ... (a redundant block `k` back is taken to be the packet `k` sequence numbers back).
    pub distance: u16,
    pub data: &'a [u8],
}

/// Parses a RED payload (RFC 2198) into its blocks, oldest first, primary last. `None` when
/// the headers are malformed or the lengths do not add up.
pub fn parse_red(payload: &[u8]) -> Option<Vec<RedBlock<'_>>> {
    let mut headers: Vec<(u8, u32, Option<usize>)> = Vec::new();
    let mut pos = 0;
    loop {
        let first = *payload.get(pos)?;
        let pt = first & 0x7f;
        if first & 0x80 == 0 {
            headers.push((pt, 0, None));
            pos += 1;
            break;
        }
        let b = payload.get(pos + 1..pos + 4)?;
        let offset = (u32::from(b[0]) << 6) | (u32::from(b[1]) >> 2);
        let length = (usize::from(b[1] & 0x03) << 8) | usize::from(b[2]);
        headers.push((pt, offset, Some(length)));
        pos += 4;
        if headers.len() > 32 {
            return None;
        }
    }
    let count = headers.len();
    let mut blocks = Vec::with_capacity(count);
    for (index, (payload_type, timestamp_offset_ticks, length)) in headers.into_iter().enumerate() {
        let end = match length {
            Some(len) => pos.checked_add(len)?,
            None => payload.len(),
        };
        let data = payload.get(pos..end)?;
        pos = end;
        let distance = u16::try_from(count - 1 - index).ok()?;
        blocks.push(RedBlock { payload_type, timestamp_offset_ticks, distance, data });
    }
    Some(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::sdp::parse_sdp;

    #[test]
    fn classifies_sdp_payload_types() {
        let sdp = "v=0\r\nm=video 9 RTP/AVP 96 97 98 99 127\r\na=rtpmap:96 VP8/90000\r\n\
                   a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=rtpmap:98 VP9/90000\r\n\
                   a=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\na=rtpmap:127 ulpfec/90000\r\n";
        let description = parse_sdp(sdp).expect("sdp");
        let aux = AuxiliaryPayloads::from_sdp(&description, 96);
        assert_eq!(aux, AuxiliaryPayloads { rtx: vec![97], rtx_red: vec![], red: vec![], ignored: vec![99, 127] });
        let audio = "v=0\r\nm=audio 9 RTP/AVP 63 111\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n\
                     a=rtpmap:111 opus/48000/2\r\n";
        let aux = AuxiliaryPayloads::from_sdp(&parse_sdp(audio).expect("sdp"), 111);
        assert_eq!(aux.red, vec![63]);
    }

    #[test]
    fn rtx_unwraps() {
        assert_eq!(unwrap_rtx(&[0x12, 0x34, 9, 9]), Some((0x1234, &[9_u8, 9][..])));
        assert_eq!(unwrap_rtx(&[0x12, 0x34]), None, "padding-only RTX carries no packet");
        assert_eq!(unwrap_rtx(&[0x12]), None);
    }

    #[test]
    fn red_parses_redundant_and_primary_blocks() {
        // One redundant block: PT 111, offset 960, 3 bytes; then primary PT 111.
        let offset = 960_u32;
        let len = 3_usize;
        let mut payload = vec![0x80 | 111, (offset >> 6) as u8, (((offset & 0x3f) << 2) as u8) | (len >> 8) as u8];
        payload.push((len & 0xff) as u8);
        payload.push(111);
        payload.extend_from_slice(&[1, 2, 3, 4, 5]);
        let blocks = parse_red(&payload).expect("red");
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            blocks[0],
            RedBlock { payload_type: 111, timestamp_offset_ticks: 960, distance: 1, data: &[1, 2, 3] }
        );
        assert_eq!(blocks[1], RedBlock { payload_type: 111, timestamp_offset_ticks: 0, distance: 0, data: &[4, 5] });
        // Lengths past the end, and headers that never end, are refused.
        assert_eq!(parse_red(&payload[..6]), None);
        assert_eq!(parse_red(&[0x80 | 111, 0, 0]), None);
        assert_eq!(parse_red(&[]), None);
    }

    #[test]
    fn red_parser_survives_random_bytes() {
        let mut state = 7_u64;
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len % 64)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (state >> 56) as u8
                })
                .collect();
            let _ = parse_red(&bytes);
            let _ = unwrap_rtx(&bytes);
        }
    }
}
