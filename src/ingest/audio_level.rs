//! RFC 6464 client-to-mixer audio levels: the level a sender measured for each audio packet,
//! carried in an RTP header extension (`a=extmap:N urn:ietf:params:rtp-hdrext:ssrc-audio-level`),
//! read without decoding. One byte: the voice-activity bit, then the level in -dBov (0 loudest,
//! 127 digital silence).
//!
//! [`segment_levels`] reads a segment's `.rtpdump` and places each level on the same extended
//! timestamp scale as [`super::packets::MediaPacket::ticks`], so the render maps them through
//! the segment's clock like its decoded audio; [`window_level`] then gives the level of one
//! output tick from those placed levels.

use std::io::BufReader;
use std::path::Path;

use super::IngestError;
use super::packets::Rebaser;
use super::redundancy::{AuxiliaryPayloads, parse_red};
use super::rtp::{find_extension, is_rtcp, parse_rtp};
use super::rtpdump::{RecordKind, RtpDumpReader};

/// The -dBov value RFC 6464 gives digital silence.
pub const SILENCE_MINUS_DBOV: u8 = 127;
/// How much audio one packet carries when placed levels are windowed (WebRTC's Opus frame).
pub const PACKET_MS: f64 = 20.0;

/// One packet's audio level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioLevel {
    /// The level in -dBov: 0 is the loudest a stream can be, 127 silence.
    pub minus_dbov: u8,
    /// The sender's voice activity flag (meaningful when the SDP's extmap says `vad=on`).
    pub voice: bool,
}

impl AudioLevel {
    /// The level in an extension element's data (its first byte), if there is one.
    pub fn parse(data: &[u8]) -> Option<AudioLevel> {
        let byte = *data.first()?;
        Some(AudioLevel { minus_dbov: byte & 0x7f, voice: byte & 0x80 != 0 })
    }

    /// The element's one byte: the voice bit, then the 7-bit level.
    pub fn to_byte(self) -> u8 {
        (u8::from(self.voice) << 7) | self.minus_dbov.min(SILENCE_MINUS_DBOV)
    }

    /// The level of samples whose RMS (full scale 1.0, as [`crate::audio::level::rms`]) is
    /// `rms`, rounded to whole dB and clamped to 0..=127 (RFC 6464 §3).
    pub fn from_rms(rms: f32, voice: bool) -> AudioLevel {
        let minus_dbov = if rms > 0.0 && rms.is_finite() {
            (-20.0 * rms.min(1.0).log10()).round().clamp(0.0, f32::from(SILENCE_MINUS_DBOV)) as u8
        } else {
            SILENCE_MINUS_DBOV
        };
        AudioLevel { minus_dbov, voice }
    }

    /// The level in dBov (0 or below).
    pub fn dbov(self) -> f32 {
        -f32::from(self.minus_dbov)
    }

    /// The level as a linear RMS (full scale 1.0, as [`crate::audio::level::rms`]); digital
    /// silence (127) reads 0.
    pub fn linear(self) -> f32 {
        if self.minus_dbov >= SILENCE_MINUS_DBOV {
            return 0.0;
        }
        10f32.powf(self.dbov() / 20.0)
    }
}

/// The audio level of one RTP packet carried in its header extension element `ext_id`.
pub fn packet_audio_level(packet: &[u8], ext_id: u8) -> Option<AudioLevel> {
    AudioLevel::parse(find_extension(packet, ext_id)?)
}

/// One packet's level, placed on its segment's extended timestamp scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelPoint {
    /// Extended RTP timestamp, as [`super::packets::MediaPacket::ticks`] of the same packet.
    pub ticks: i64,
    pub level: AudioLevel,
}

/// The audio levels that the packets of one segment's `.rtpdump` carry in extension element
/// `ext_id` (the SDP's [`super::sdp::SessionDescription::audio_level_extension`]), sorted by
/// timestamp, one per media packet. Media packets of `payload_type` and RED packets whose
/// primary block is of it count; RTX retransmissions and packets without the element add
/// nothing. Timestamps are unwrapped and carried across SSRC changes and jumps as
/// [`super::packets::MediaPackets`] does, so `SegmentClock::call_ms(ticks)` places a level where
/// the decoded audio of its packet plays. Records that cannot be read are passed over (the
/// segment's scan has judged the file already); an unreadable file is an error.
pub fn segment_levels(
    rtpdump_path: &Path,
    payload_type: u8,
    clock_rate_hz: u32,
    aux: &AuxiliaryPayloads,
    ext_id: u8,
) -> Result<Vec<LevelPoint>, IngestError> {
    let file = std::fs::File::open(rtpdump_path)
        .map_err(|source| IngestError::Io { path: rtpdump_path.to_path_buf(), source })?;
    let mut reader = RtpDumpReader::new(BufReader::new(file))
        .map_err(|source| IngestError::Rtpdump { path: rtpdump_path.to_path_buf(), source })?;
    let mut rebaser = Rebaser::new(clock_rate_hz);
    let mut points: Vec<LevelPoint> = Vec::new();
    // A record the reader cannot read ends the file, as for the media packets.
    while let Ok(Some(record)) = reader.next_record() {
        if matches!(record.kind, RecordKind::Rtcp) || is_rtcp(&record.data) {
            continue;
        }
        let Ok(info) = parse_rtp(&record.data) else { continue };
        let primary = info.payload_type == payload_type
            || (aux.red.contains(&info.payload_type)
                && info
                    .payload(&record.data)
                    .and_then(parse_red)
                    .and_then(|blocks| blocks.last().map(|b| b.payload_type == payload_type && b.distance == 0))
                    .unwrap_or(false));
        if !primary {
            continue;
        }
        let (_, ticks) = rebaser.place(info.ssrc, info.sequence, info.timestamp, record.offset_ms);
        if let Some(level) = packet_audio_level(&record.data, ext_id) {
            points.push(LevelPoint { ticks, level });
        }
    }
    points.sort_by_key(|p| p.ticks);
    points.dedup_by_key(|p| p.ticks);
    Ok(points)
}

/// The level of the output tick `[from_ms, until_ms)` from levels placed on the call clock
/// (`(call_ms, linear)` sorted by time, each for the [`PACKET_MS`] of audio from its time): the
/// RMS of the levels of the packets overlapping the tick, 0 when none does (a sender in DTX
/// sends nothing while silent).
pub fn window_level(placed: &[(f64, f32)], from_ms: f64, until_ms: f64) -> f32 {
    let first = placed.partition_point(|(at_ms, _)| at_ms + PACKET_MS <= from_ms);
    let (sum, count) = placed
        .get(first..)
        .unwrap_or_default()
        .iter()
        .take_while(|(at_ms, _)| *at_ms < until_ms)
        .fold((0.0_f64, 0_u32), |(sum, count), (_, level)| (sum + f64::from(*level).powi(2), count + 1));
    if count == 0 {
        return 0.0;
    }
    (sum / f64::from(count)).sqrt() as f32
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use super::*;
    use crate::ingest::packets::MediaPackets;
    use crate::ingest::rtp::{build_rtp, with_one_byte_extension};
    use crate::ingest::rtpdump::RtpDumpWriter;

    #[test]
    fn levels_convert_both_ways() {
        assert_eq!(AudioLevel::parse(&[0x85]), Some(AudioLevel { minus_dbov: 5, voice: true }));
        assert_eq!(AudioLevel::parse(&[0x7f, 0]), Some(AudioLevel { minus_dbov: 127, voice: false }));
        assert_eq!(AudioLevel::parse(&[]), None);
        assert_eq!(AudioLevel { minus_dbov: 30, voice: true }.to_byte(), 0x9e);
        assert_eq!(AudioLevel::from_rms(1.0, false).minus_dbov, 0);
        assert_eq!(AudioLevel::from_rms(0.5, false).minus_dbov, 6);
        assert_eq!(AudioLevel::from_rms(0.0, false).minus_dbov, 127);
        assert_eq!(AudioLevel::from_rms(1e-9, false).minus_dbov, 127);
        assert_eq!(AudioLevel::from_rms(f32::NAN, false).minus_dbov, 127);
        assert_eq!(AudioLevel { minus_dbov: 127, voice: false }.linear(), 0.0);
        assert!((AudioLevel { minus_dbov: 20, voice: false }.linear() - 0.1).abs() < 1e-6);
        assert_eq!(AudioLevel { minus_dbov: 20, voice: false }.dbov(), -20.0);
        for minus_dbov in 0..127 {
            let level = AudioLevel { minus_dbov, voice: false };
            assert_eq!(AudioLevel::from_rms(level.linear(), false), level);
        }
    }

    #[test]
    fn a_tick_reads_the_packets_it_overlaps() {
        let placed = [(0.0, 0.1), (20.0, 0.3), (40.0, 0.0), (100.0, 0.2)];
        assert_eq!(window_level(&placed, 0.0, 20.0), 0.1);
        let both = window_level(&placed, 10.0, 30.0);
        assert!((both - ((0.01 + 0.09) / 2.0_f32).sqrt()).abs() < 1e-6, "{both}");
        assert_eq!(window_level(&placed, 60.0, 100.0), 0.0, "no packet: silence");
        assert_eq!(window_level(&placed, 100.0, 133.3), 0.2);
        assert_eq!(window_level(&[], 0.0, 33.3), 0.0);
    }

    fn write_dump(path: &Path, packets: &[(u32, Vec<u8>)]) {
        let file = std::fs::File::create(path).expect("create");
        let mut writer = RtpDumpWriter::new(file, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5000), 0, 0).expect("writer");
        for (arrival_ms, packet) in packets {
            writer.write_rtp(*arrival_ms, packet).expect("write");
        }
        writer.finish().expect("finish");
    }

    #[test]
    fn levels_land_on_the_media_packets_ticks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audio.rtpdump");
        let level = |n: u32| AudioLevel { minus_dbov: (n % 100) as u8, voice: n.is_multiple_of(2) };
        let mut packets = Vec::new();
        // Timestamps wrapping around, one packet late, one without the element, an SSRC change
        // half way, a packet of another payload type.
        for n in 0..60_u32 {
            let ssrc = if n < 30 { 7 } else { 8 };
            let ts = if n < 30 { (u32::MAX - 2000).wrapping_add(n * 960) } else { 5000 + n * 960 };
            let packet = build_rtp(false, 111, 100 + n as u16, ts, ssrc, &[n as u8; 10]);
            let packet = if n == 12 {
                packet
            } else {
                with_one_byte_extension(&packet, &[(1, &[level(n).to_byte()])]).expect("extension")
            };
            packets.push((n * 20, packet));
        }
        packets.swap(5, 6);
        packets.push((1300, build_rtp(false, 0, 1, 1, 9, b"pcmu")));
        write_dump(&path, &packets);
        let aux = AuxiliaryPayloads::default();
        let points = segment_levels(&path, 111, 48_000, &aux, 1).expect("levels");
        assert_eq!(points.len(), 59);
        let mut media = MediaPackets::open(&path, 111, 48_000, aux).expect("open");
        let mut expected = Vec::new();
        while let Some(packet) = media.next_packet().expect("packet") {
            let n = u32::from(packet.payload[0]);
            if n != 12 {
                expected.push(LevelPoint { ticks: packet.ticks, level: level(n) });
            }
        }
        assert_eq!(points, expected);
        assert!(segment_levels(&path, 111, 48_000, &AuxiliaryPayloads::default(), 2).expect("levels").is_empty());
        assert!(matches!(
            segment_levels(&dir.path().join("missing.rtpdump"), 111, 48_000, &AuxiliaryPayloads::default(), 1),
            Err(IngestError::Io { .. })
        ));
    }

    #[test]
    fn red_packets_carry_the_level_of_their_primary_block() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("red.rtpdump");
        let mut packets = Vec::new();
        for n in 0..10_u32 {
            // RED: one redundant block (the previous packet), then the primary block.
            let mut payload = vec![0x80 | 111, (960 >> 6) as u8, 0, 3]; // offset 960 ticks, 3 bytes
            payload.push(111);
            payload.extend_from_slice(&[9, 9, 9]);
            payload.extend_from_slice(&[n as u8; 4]);
            let packet = build_rtp(false, 63, n as u16, 1000 + n * 960, 5, &payload);
            let level = AudioLevel { minus_dbov: 40 + n as u8, voice: true }.to_byte();
            packets.push((n * 20, with_one_byte_extension(&packet, &[(2, &[level])]).expect("extension")));
        }
        write_dump(&path, &packets);
        let aux = AuxiliaryPayloads { red: vec![63], ..AuxiliaryPayloads::default() };
        let points = segment_levels(&path, 111, 48_000, &aux, 2).expect("levels");
        let ticks: Vec<i64> = points.iter().map(|p| p.ticks).collect();
        assert_eq!(ticks, (0..10).map(|n| 1000 + n * 960).collect::<Vec<i64>>());
        assert_eq!(points[3].level, AudioLevel { minus_dbov: 43, voice: true });
        assert!(segment_levels(&path, 111, 48_000, &AuxiliaryPayloads::default(), 2).expect("levels").is_empty());
    }
}
