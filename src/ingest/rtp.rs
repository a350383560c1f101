//! RTP fixed-header parsing (RFC 3550), header extension elements (RFC 8285) and RTP/RTCP
//! demultiplexing (RFC 5761).
//!
//! Only the header is parsed: the payload is described by an offset and a length into the
//! original packet so that callers can slice it without copying.

use thiserror::Error;

/// Size of the fixed RTP header in bytes.
const FIXED_HEADER_LEN: usize = 12;

/// Errors from [`parse_rtp`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RtpError {
    /// The packet is shorter than the 12-byte fixed header.
    #[error("RTP packet is {len} bytes, shorter than the 12-byte fixed header")]
    TooShort { len: usize },
    /// The version field is not 2.
    #[error("RTP version is {version}, expected 2 (first byte 0x{first_byte:02x})")]
    BadVersion { version: u8, first_byte: u8 },
    /// The CSRC list runs past the end of the packet.
    #[error("RTP packet is {len} bytes but its {csrc_count} CSRCs need {needed_bytes} bytes")]
    TruncatedCsrc { csrc_count: u8, needed_bytes: usize, len: usize },
    /// The header extension runs past the end of the packet.
    #[error(
        "RTP header extension at byte {extension_offset} needs {needed_bytes} bytes in total, packet is {len} bytes"
    )]
    TruncatedExtension { extension_offset: usize, needed_bytes: usize, len: usize },
    /// The padding count is zero or larger than the space after the headers.
    #[error("RTP padding count {padding_len} is invalid: {available_bytes} bytes follow the headers")]
    BadPadding { padding_len: u8, available_bytes: usize },
}

/// Header fields of one RTP packet plus the location of its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacketInfo {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Offset of the payload in the packet, after CSRCs and the header extension.
    pub payload_offset: usize,
    /// Length of the payload, padding excluded.
    pub payload_len: usize,
}

impl RtpPacketInfo {
    /// The payload bytes within `packet` (the same slice passed to [`parse_rtp`]).
    pub fn payload<'a>(&self, packet: &'a [u8]) -> Option<&'a [u8]> {
        packet.get(self.payload_offset..self.payload_offset.checked_add(self.payload_len)?)
    }
}

/// Parses the RTP header of `packet`.
///
/// Handles the CSRC list, a header extension (any profile) and padding (last byte is the pad
/// count, which includes itself).
pub fn parse_rtp(packet: &[u8]) -> Result<RtpPacketInfo, RtpError> {
    let len = packet.len();
    let (Some(&b0), Some(&b1)) = (packet.first(), packet.get(1)) else {
        return Err(RtpError::TooShort { len });
    };
    if len < FIXED_HEADER_LEN {
        return Err(RtpError::TooShort { len });
    }
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion { version, first_byte: b0 });
    }
    let has_padding = b0 & 0x20 != 0;
    let has_extension = b0 & 0x10 != 0;
    let csrc_count = b0 & 0x0f;
    let sequence = u16::from_be_bytes([byte(packet, 2), byte(packet, 3)]);
    let timestamp = be_u32(packet, 4);
    let ssrc = be_u32(packet, 8);

    let mut offset = FIXED_HEADER_LEN + 4 * usize::from(csrc_count);
    if offset > len {
        return Err(RtpError::TruncatedCsrc { csrc_count, needed_bytes: offset, len });
    }
    if has_extension {
        let extension_offset = offset;
        if offset + 4 > len {
            return Err(RtpError::TruncatedExtension { extension_offset, needed_bytes: offset + 4, len });
        }
        let words = u16::from_be_bytes([byte(packet, offset + 2), byte(packet, offset + 3)]);
        offset += 4 + 4 * usize::from(words);
        if offset > len {
            return Err(RtpError::TruncatedExtension { extension_offset, needed_bytes: offset, len });
        }
    }
    let available_bytes = len - offset;
    let mut payload_len = available_bytes;
    if has_padding {
        let padding_len = packet.last().copied().unwrap_or(0);
        if padding_len == 0 || usize::from(padding_len) > available_bytes {
            return Err(RtpError::BadPadding { padding_len, available_bytes });
        }
        payload_len -= usize::from(padding_len);
    }
    Ok(RtpPacketInfo {
        marker: b1 & 0x80 != 0,
        payload_type: b1 & 0x7f,
        sequence,
        timestamp,
        ssrc,
        payload_offset: offset,
        payload_len,
    })
}

/// The "defined by profile" value of an RFC 8285 one-byte header extension.
pub const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// The "defined by profile" value of an RFC 8285 two-byte header extension, with its 4
/// application bits clear (they may carry anything).
pub const TWO_BYTE_PROFILE: u16 = 0x1000;
/// An RFC 8285 one-byte element ID that ends the parsing of the extension block.
const ONE_BYTE_STOP_ID: u8 = 15;

/// The header extension block of an RTP packet: its profile value and its data (a whole
/// number of 32-bit words), or `None` when the packet has no extension or is not valid RTP.
pub fn header_extension(packet: &[u8]) -> Option<(u16, &[u8])> {
    let info = parse_rtp(packet).ok()?;
    let b0 = *packet.first()?;
    if b0 & 0x10 == 0 {
        return None;
    }
    let start = FIXED_HEADER_LEN + 4 * usize::from(b0 & 0x0f);
    let profile = u16::from_be_bytes([*packet.get(start)?, *packet.get(start + 1)?]);
    // parse_rtp checked that the block fits before the payload.
    let data = packet.get(start + 4..info.payload_offset)?;
    Some((profile, data))
}

/// One element of an RFC 8285 header extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionElement<'a> {
    /// The local identifier the SDP's `a=extmap` maps to a URI (1..=14 one-byte, 1..=255 two-byte).
    pub id: u8,
    pub data: &'a [u8],
}

/// The elements of a header extension block (see [`header_extension`]), in order. A block of
/// another profile has none; parsing stops at a one-byte element with ID 15 or at an element
/// whose length runs past the block (what came before it is kept).
pub fn extension_elements(profile: u16, data: &[u8]) -> Vec<ExtensionElement<'_>> {
    let one_byte = profile == ONE_BYTE_PROFILE;
    if !one_byte && profile & 0xfff0 != TWO_BYTE_PROFILE {
        return Vec::new();
    }
    let mut elements = Vec::new();
    let mut pos = 0;
    while let Some(&first) = data.get(pos) {
        if first == 0 {
            pos += 1; // padding
            continue;
        }
        let (id, len, header) = if one_byte {
            if first >> 4 == ONE_BYTE_STOP_ID {
                break;
            }
            (first >> 4, usize::from(first & 0x0f) + 1, 1)
        } else {
            let Some(&len) = data.get(pos + 1) else { break };
            (first, usize::from(len), 2)
        };
        let Some(element) = data.get(pos + header..pos + header + len) else { break };
        elements.push(ExtensionElement { id, data: element });
        pos += header + len;
    }
    elements
}

/// The data of the header extension element `id` of `packet`, if it has one.
pub fn find_extension(packet: &[u8], id: u8) -> Option<&[u8]> {
    let (profile, data) = header_extension(packet)?;
    extension_elements(profile, data).into_iter().find(|e| e.id == id).map(|e| e.data)
}

/// `packet` with an RFC 8285 one-byte header extension holding `elements` (id 1..=14, 1 to 16
/// bytes of data each) inserted after its CSRCs, padded to whole words; `None` when the packet
/// is not valid RTP, already has an extension, or an element is out of range.
pub fn with_one_byte_extension(packet: &[u8], elements: &[(u8, &[u8])]) -> Option<Vec<u8>> {
    parse_rtp(packet).ok()?;
    let b0 = *packet.first()?;
    if b0 & 0x10 != 0 {
        return None;
    }
    let mut block = Vec::new();
    for (id, data) in elements {
        if !(1..ONE_BYTE_STOP_ID).contains(id) || data.is_empty() || data.len() > 16 {
            return None;
        }
        block.push((id << 4) | (data.len() - 1) as u8);
        block.extend_from_slice(data);
    }
    block.resize(block.len().div_ceil(4) * 4, 0);
    let words = u16::try_from(block.len() / 4).ok()?;
    let at = FIXED_HEADER_LEN + 4 * usize::from(b0 & 0x0f);
    let mut out = Vec::with_capacity(packet.len() + 4 + block.len());
    out.extend_from_slice(packet.get(..at)?);
    out[0] |= 0x10;
    out.extend_from_slice(&ONE_BYTE_PROFILE.to_be_bytes());
    out.extend_from_slice(&words.to_be_bytes());
    out.extend_from_slice(&block);
    out.extend_from_slice(packet.get(at..)?);
    Some(out)
}

/// True when `packet` looks like RTCP rather than RTP (RFC 5761 §4): version 2 and a second
/// byte in 192..=223, i.e. RTCP packet types 192..223 such as SR (200) and RR (201).
pub fn is_rtcp(packet: &[u8]) -> bool {
    match (packet.first(), packet.get(1)) {
        (Some(&b0), Some(&b1)) => b0 >> 6 == 2 && (192..=223).contains(&b1),
        _ => false,
    }
}

/// Builds a minimal RTP packet: no CSRCs, no extension, no padding. `payload_type` is masked
/// to 7 bits.
pub fn build_rtp(marker: bool, payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut packet = Vec::with_capacity(FIXED_HEADER_LEN + payload.len());
    packet.push(0x80);
    packet.push((u8::from(marker) << 7) | (payload_type & 0x7f));
    packet.extend_from_slice(&sequence.to_be_bytes());
    packet.extend_from_slice(&timestamp.to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

/// Byte at `index`, or 0 when out of range (callers check lengths first).
fn byte(packet: &[u8], index: usize) -> u8 {
    packet.get(index).copied().unwrap_or(0)
}

/// Big-endian u32 at `offset` (callers check lengths first).
fn be_u32(packet: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes([
        byte(packet, offset),
        byte(packet, offset + 1),
        byte(packet, offset + 2),
        byte(packet, offset + 3),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic PRNG for the fuzz loop.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn build_then_parse_round_trip() {
        let packet = build_rtp(true, 111, 65535, 0xdead_beef, 0x0102_0304, b"hello");
        let info = parse_rtp(&packet).unwrap();
        assert_eq!(
            info,
            RtpPacketInfo {
                marker: true,
                payload_type: 111,
                sequence: 65535,
                timestamp: 0xdead_beef,
                ssrc: 0x0102_0304,
                payload_offset: 12,
                payload_len: 5,
            }
        );
        assert_eq!(info.payload(&packet), Some(&b"hello"[..]));
        assert!(!is_rtcp(&packet));
    }

    #[test]
    fn csrc_extension_and_padding() {
        let mut packet = build_rtp(false, 96, 7, 9000, 42, &[]);
        packet[0] = 0x80 | 0x20 | 0x10 | 2; // padding, extension, 2 CSRCs
        packet.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]); // CSRCs
        packet.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]); // 1-word extension
        packet.extend_from_slice(b"payload");
        packet.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let info = parse_rtp(&packet).unwrap();
        assert_eq!(info.payload_offset, 12 + 8 + 8);
        assert_eq!(info.payload_len, 7);
        assert_eq!(info.payload(&packet), Some(&b"payload"[..]));
        assert!(!info.marker);
        assert_eq!(info.payload_type, 96);
    }

    #[test]
    fn errors_are_precise() {
        assert_eq!(parse_rtp(&[0x80; 11]), Err(RtpError::TooShort { len: 11 }));
        assert_eq!(parse_rtp(&[]), Err(RtpError::TooShort { len: 0 }));
        let mut packet = build_rtp(false, 96, 1, 1, 1, b"xy");
        packet[0] = 0x40;
        assert_eq!(parse_rtp(&packet), Err(RtpError::BadVersion { version: 1, first_byte: 0x40 }));
        packet[0] = 0x83;
        assert_eq!(parse_rtp(&packet), Err(RtpError::TruncatedCsrc { csrc_count: 3, needed_bytes: 24, len: 14 }));
        packet[0] = 0x90;
        assert_eq!(
            parse_rtp(&packet),
            Err(RtpError::TruncatedExtension { extension_offset: 12, needed_bytes: 16, len: 14 })
        );
        packet.extend_from_slice(&[0, 5]); // extension header claims 5 words
        assert_eq!(
            parse_rtp(&packet),
            Err(RtpError::TruncatedExtension { extension_offset: 12, needed_bytes: 36, len: 16 })
        );
        let mut padded = build_rtp(false, 96, 1, 1, 1, &[1, 2, 9]);
        padded[0] = 0xa0;
        assert_eq!(parse_rtp(&padded), Err(RtpError::BadPadding { padding_len: 9, available_bytes: 3 }));
        padded[14] = 0;
        assert_eq!(parse_rtp(&padded), Err(RtpError::BadPadding { padding_len: 0, available_bytes: 3 }));
        assert!(RtpError::TooShort { len: 3 }.to_string().contains("3 bytes"));
    }

    #[test]
    fn one_and_two_byte_extensions() {
        let plain = build_rtp(false, 111, 5, 960, 7, b"opus");
        let packet = with_one_byte_extension(&plain, &[(1, &[0x85]), (3, &[1, 2, 3])]).unwrap();
        let info = parse_rtp(&packet).unwrap();
        assert_eq!(info.payload(&packet), Some(&b"opus"[..]));
        assert_eq!(info.payload_offset, 12 + 4 + 8);
        let (profile, data) = header_extension(&packet).unwrap();
        assert_eq!(profile, ONE_BYTE_PROFILE);
        let elements = extension_elements(profile, data);
        assert_eq!(
            elements,
            vec![ExtensionElement { id: 1, data: &[0x85] }, ExtensionElement { id: 3, data: &[1, 2, 3] }]
        );
        assert_eq!(find_extension(&packet, 3), Some(&[1u8, 2, 3][..]));
        assert_eq!(find_extension(&packet, 2), None);
        assert_eq!(find_extension(&plain, 1), None);
        assert_eq!(with_one_byte_extension(&packet, &[(1, &[0])]), None, "already has one");
        assert_eq!(with_one_byte_extension(&plain, &[(15, &[0])]), None);
        assert_eq!(with_one_byte_extension(&plain, &[(1, &[])]), None);
        // Padding between elements, and ID 15 stops the parsing.
        assert_eq!(extension_elements(ONE_BYTE_PROFILE, &[0, 0x10, 9, 0, 0xf0, 0x20, 1]).len(), 1);
        // Two-byte: id, length (0 allowed), data; the profile's low 4 bits are free.
        let data = [5, 2, 0xaa, 0xbb, 0, 6, 0, 7, 1, 0xcc];
        let two = extension_elements(0x1003, &data);
        assert_eq!(
            two,
            vec![
                ExtensionElement { id: 5, data: &[0xaa, 0xbb] },
                ExtensionElement { id: 6, data: &[] },
                ExtensionElement { id: 7, data: &[0xcc] }
            ]
        );
        // An element running past the block ends it; an unknown profile has none.
        assert_eq!(extension_elements(0x1000, &[5, 9, 1]), vec![]);
        assert_eq!(extension_elements(ONE_BYTE_PROFILE, &[0x12, 1]), vec![]);
        assert_eq!(extension_elements(0xabcd, &[0x10, 1]), vec![]);
        // With CSRCs the extension follows them.
        let mut csrc = build_rtp(true, 96, 1, 2, 3, b"xy");
        csrc[0] |= 1;
        csrc.splice(12..12, [0, 0, 0, 9]);
        let extended = with_one_byte_extension(&csrc, &[(14, &[7; 16])]).unwrap();
        assert_eq!(find_extension(&extended, 14), Some(&[7u8; 16][..]));
        assert_eq!(parse_rtp(&extended).unwrap().payload(&extended), Some(&b"xy"[..]));
    }

    #[test]
    fn rtcp_demux() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 201, 0, 1]));
        assert!(is_rtcp(&[0x80, 192]));
        assert!(is_rtcp(&[0x80, 223]));
        assert!(!is_rtcp(&[0x80, 224]));
        assert!(!is_rtcp(&[0x80, 191]));
        assert!(!is_rtcp(&[0x40, 200]));
        assert!(!is_rtcp(&[0x80]));
        assert!(!is_rtcp(&[]));
    }

    #[test]
    fn fuzz_parse_rtp_never_panics() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let seed = {
            let mut p = build_rtp(true, 96, 1, 2, 3, &[0u8; 20]);
            p[0] = 0xb2;
            p
        };
        for i in 0..20_000 {
            let packet: Vec<u8> = if i % 2 == 0 {
                let len = (rng.next() % 64) as usize;
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                let mut p = seed.clone();
                for _ in 0..(rng.next() % 4 + 1) {
                    let at = (rng.next() as usize) % p.len();
                    p[at] = rng.next() as u8;
                }
                p.truncate((rng.next() as usize) % (seed.len() + 1));
                p
            };
            if let Ok(info) = parse_rtp(&packet) {
                assert!(info.payload(&packet).is_some());
            }
            if let Some((profile, data)) = header_extension(&packet) {
                for element in extension_elements(profile, data) {
                    assert!(element.data.len() <= data.len());
                }
            }
            let _ = find_extension(&packet, (i % 16) as u8);
            // Random element data behind a valid one-byte or two-byte extension header.
            let words = (rng.next() % 4) as u8;
            let profile: [u8; 2] = if i % 2 == 0 { [0xbe, 0xde] } else { [0x10, rng.next() as u8 & 0x0f] };
            let mut extended = vec![0x90, 111, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, profile[0], profile[1], 0, words];
            extended.extend((0..usize::from(words) * 4 + 2).map(|_| rng.next() as u8));
            if let Some((profile, data)) = header_extension(&extended) {
                let total: usize = extension_elements(profile, data).iter().map(|e| e.data.len()).sum();
                assert!(total <= data.len());
            }
            let _ = with_one_byte_extension(&packet, &[(1, &[0x80])]);
            let _ = is_rtcp(&packet);
        }
    }
}
