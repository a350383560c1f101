//! Streaming reader and writer for the rtptools "dump" format (`.rtpdump`).
//!
//! Layout: a text preamble `#!rtpplay1.0 a.b.c.d/port\n`, a 16-byte big-endian file header
//! (start_sec, start_usec, source IPv4, port, 2 padding bytes), then records of an 8-byte
//! header (length including the header, original packet length or 0 for RTCP, offset in ms
//! since the start) followed by `length - 8` packet bytes.

use std::io::{self, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};

use thiserror::Error;

/// Magic at the start of the preamble line.
const MAGIC: &[u8] = b"#!rtpplay1.0 ";
/// Longest valid preamble: magic + "255.255.255.255/65535\n".
const MAX_PREAMBLE_LEN: usize = 13 + 15 + 1 + 5 + 1;
/// How many preamble bytes an error message shows.
const SHOWN_PREAMBLE_BYTES: usize = 40;
/// Size of the binary file header.
const FILE_HEADER_LEN: usize = 16;
/// Size of a record header.
const RECORD_HEADER_LEN: usize = 8;
/// Largest packet a record can hold (the length field is u16 and includes the header).
pub const MAX_PACKET_LEN: usize = u16::MAX as usize - RECORD_HEADER_LEN;

/// Errors reading or writing rtpdump files.
#[derive(Debug, Error)]
pub enum RtpDumpError {
    /// The first line is not `#!rtpplay1.0 a.b.c.d/port`.
    #[error("bad rtpdump preamble: expected \"#!rtpplay1.0 a.b.c.d/port\\n\", found \"{found}\"")]
    BadPreamble { found: String },
    /// The file ends inside the 16-byte binary header.
    #[error("rtpdump file header truncated: expected 16 bytes, got {got_bytes}")]
    TruncatedHeader { got_bytes: usize },
    /// A record declares length 0.
    #[error("rtpdump record {record_index} at byte {byte_offset} has length 0")]
    ZeroLength { record_index: u64, byte_offset: u64 },
    /// A record declares a length shorter than its own 8-byte header.
    #[error(
        "rtpdump record {record_index} at byte {byte_offset} has length {length}, less than the 8-byte record header"
    )]
    RecordTooShort { record_index: u64, byte_offset: u64, length: u16 },
    /// The file ends inside a record.
    #[error(
        "rtpdump record {record_index} at byte {byte_offset} truncated: expected {expected_bytes} bytes, got {got_bytes}"
    )]
    TruncatedRecord { record_index: u64, byte_offset: u64, expected_bytes: usize, got_bytes: usize },
    /// A packet to write does not fit in a record.
    #[error("packet of {len} bytes does not fit in an rtpdump record (max 65527)")]
    PacketTooLarge { len: usize },
    /// An RTP packet to write is empty (it would read back as RTCP).
    #[error("cannot write an empty RTP packet to an rtpdump file")]
    EmptyRtpPacket,
    /// Underlying I/O failure.
    #[error("rtpdump I/O error: {0}")]
    Io(#[from] io::Error),
}

/// The binary file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpDumpHeader {
    /// Recording start, seconds since the Unix epoch.
    pub start_sec: u32,
    /// Recording start, microseconds part.
    pub start_usec: u32,
    /// Source address.
    pub source: Ipv4Addr,
    /// Source port.
    pub port: u16,
}

/// Whether a record holds RTP or RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// RTP packet; `original_len` is the packet's length on the wire.
    Rtp {
        /// Original packet length (`plen`).
        original_len: u16,
    },
    /// RTCP packet (`plen == 0`).
    Rtcp,
}

/// One record of an rtpdump file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpDumpRecord {
    /// Milliseconds since the file's start time.
    pub offset_ms: u32,
    /// RTP or RTCP.
    pub kind: RecordKind,
    /// The packet bytes.
    pub data: Vec<u8>,
}

/// Streaming rtpdump reader. Reads are buffered internally; memory use is one record.
#[derive(Debug)]
pub struct RtpDumpReader<R: Read> {
    reader: BufReader<R>,
    header: RtpDumpHeader,
    next_index: u64,
    byte_offset: u64,
    failed: bool,
}

impl<R: Read> RtpDumpReader<R> {
    /// Reads and validates the preamble line and the binary file header.
    pub fn new(reader: R) -> Result<Self, RtpDumpError> {
        let mut reader = BufReader::new(reader);
        let preamble = read_preamble(&mut reader)?;
        let mut raw = [0u8; FILE_HEADER_LEN];
        let got_bytes = read_full(&mut reader, &mut raw)?;
        if got_bytes < FILE_HEADER_LEN {
            return Err(RtpDumpError::TruncatedHeader { got_bytes });
        }
        let [s0, s1, s2, s3, u0, u1, u2, u3, a, b, c, d, p0, p1, _, _] = raw;
        let header = RtpDumpHeader {
            start_sec: u32::from_be_bytes([s0, s1, s2, s3]),
            start_usec: u32::from_be_bytes([u0, u1, u2, u3]),
            source: Ipv4Addr::new(a, b, c, d),
            port: u16::from_be_bytes([p0, p1]),
        };
        Ok(Self { reader, header, next_index: 0, byte_offset: (preamble + FILE_HEADER_LEN) as u64, failed: false })
    }

    /// The binary file header.
    pub fn header(&self) -> &RtpDumpHeader {
        &self.header
    }

    /// Reads the next record; `Ok(None)` at a clean end of file.
    pub fn next_record(&mut self) -> Result<Option<RtpDumpRecord>, RtpDumpError> {
        let record_index = self.next_index;
        let byte_offset = self.byte_offset;
        let mut head = [0u8; RECORD_HEADER_LEN];
        let got = read_full(&mut self.reader, &mut head)?;
        if got == 0 {
            return Ok(None);
        }
        if got < RECORD_HEADER_LEN {
            return Err(RtpDumpError::TruncatedRecord {
                record_index,
                byte_offset,
                expected_bytes: RECORD_HEADER_LEN,
                got_bytes: got,
            });
        }
        let [l0, l1, p0, p1, o0, o1, o2, o3] = head;
        let length = u16::from_be_bytes([l0, l1]);
        let plen = u16::from_be_bytes([p0, p1]);
        let offset_ms = u32::from_be_bytes([o0, o1, o2, o3]);
        if length == 0 {
            return Err(RtpDumpError::ZeroLength { record_index, byte_offset });
        }
        let record_len = usize::from(length);
        if record_len < RECORD_HEADER_LEN {
            return Err(RtpDumpError::RecordTooShort { record_index, byte_offset, length });
        }
        let mut data = vec![0u8; record_len - RECORD_HEADER_LEN];
        let got = read_full(&mut self.reader, &mut data)?;
        if got < data.len() {
            return Err(RtpDumpError::TruncatedRecord {
                record_index,
                byte_offset,
                expected_bytes: record_len,
                got_bytes: RECORD_HEADER_LEN + got,
            });
        }
        self.next_index += 1;
        self.byte_offset += u64::from(length);
        let kind = if plen == 0 { RecordKind::Rtcp } else { RecordKind::Rtp { original_len: plen } };
        Ok(Some(RtpDumpRecord { offset_ms, kind, data }))
    }
}

impl<R: Read> Iterator for RtpDumpReader<R> {
    type Item = Result<RtpDumpRecord, RtpDumpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_record() {
            Ok(record) => record.map(Ok),
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }
}

/// Reads the preamble line and returns its length in bytes (newline included).
fn read_preamble<R: Read>(reader: &mut R) -> Result<usize, RtpDumpError> {
    let mut line = Vec::with_capacity(MAX_PREAMBLE_LEN);
    let mut one = [0u8; 1];
    loop {
        if read_full(reader, &mut one)? == 0 {
            return Err(bad_preamble(&line));
        }
        line.push(one[0]);
        if one[0] == b'\n' {
            break;
        }
        if line.len() >= MAX_PREAMBLE_LEN || !MAGIC.starts_with(&line[..line.len().min(13)]) {
            return Err(bad_preamble(&line));
        }
    }
    let body = line.strip_prefix(MAGIC).and_then(|rest| rest.strip_suffix(b"\n")).ok_or_else(|| bad_preamble(&line))?;
    if parse_address(body).is_none() {
        return Err(bad_preamble(&line));
    }
    Ok(line.len())
}

/// Parses `a.b.c.d/port` with 1-3 digits per octet and 1-5 port digits.
fn parse_address(text: &[u8]) -> Option<SocketAddrV4> {
    let text = std::str::from_utf8(text).ok()?;
    let (ip, port) = text.split_once('/')?;
    let all_digits = |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(port, 5) || ip.split('.').count() != 4 || !ip.split('.').all(|o| all_digits(o, 3)) {
        return None;
    }
    let mut octets = [0u8; 4];
    for (slot, octet) in octets.iter_mut().zip(ip.split('.')) {
        *slot = octet.parse().ok()?;
    }
    Some(SocketAddrV4::new(Ipv4Addr::from(octets), port.parse().ok()?))
}

fn bad_preamble(line: &[u8]) -> RtpDumpError {
    let shown = line.get(..SHOWN_PREAMBLE_BYTES).unwrap_or(line);
    RtpDumpError::BadPreamble { found: shown.escape_ascii().to_string() }
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// rtpdump writer. Pass a buffered writer (e.g. `BufWriter<File>`) for efficiency.
#[derive(Debug)]
pub struct RtpDumpWriter<W: Write> {
    writer: W,
    scratch: Vec<u8>,
}

impl<W: Write> RtpDumpWriter<W> {
    /// Writes the preamble and file header.
    pub fn new(mut writer: W, source: SocketAddrV4, start_sec: u32, start_usec: u32) -> Result<Self, RtpDumpError> {
        let mut head = format!("#!rtpplay1.0 {}/{}\n", source.ip(), source.port()).into_bytes();
        head.extend_from_slice(&start_sec.to_be_bytes());
        head.extend_from_slice(&start_usec.to_be_bytes());
        head.extend_from_slice(&source.ip().octets());
        head.extend_from_slice(&source.port().to_be_bytes());
        head.extend_from_slice(&[0, 0]);
        writer.write_all(&head)?;
        Ok(Self { writer, scratch: Vec::new() })
    }

    /// Appends an RTP record.
    pub fn write_rtp(&mut self, offset_ms: u32, packet: &[u8]) -> Result<(), RtpDumpError> {
        if packet.is_empty() {
            return Err(RtpDumpError::EmptyRtpPacket);
        }
        let plen = u16::try_from(packet.len()).map_err(|_| RtpDumpError::PacketTooLarge { len: packet.len() })?;
        self.write_record(offset_ms, plen, packet)
    }

    /// Appends an RTCP record (`plen == 0`).
    pub fn write_rtcp(&mut self, offset_ms: u32, packet: &[u8]) -> Result<(), RtpDumpError> {
        self.write_record(offset_ms, 0, packet)
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> Result<W, RtpDumpError> {
        self.writer.flush()?;
        Ok(self.writer)
    }

    fn write_record(&mut self, offset_ms: u32, plen: u16, packet: &[u8]) -> Result<(), RtpDumpError> {
        let length = packet
            .len()
            .checked_add(RECORD_HEADER_LEN)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(RtpDumpError::PacketTooLarge { len: packet.len() })?;
        self.scratch.clear();
        self.scratch.extend_from_slice(&length.to_be_bytes());
        self.scratch.extend_from_slice(&plen.to_be_bytes());
        self.scratch.extend_from_slice(&offset_ms.to_be_bytes());
        self.scratch.extend_from_slice(packet);
        self.writer.write_all(&self.scratch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Preamble (27) + file header (16), then records of 21, 12 and 20 bytes.
    fn sample() -> Vec<u8> {
        let source = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 7), 5004);
        let mut w = RtpDumpWriter::new(Vec::new(), source, 1_769_590_800, 250_000).unwrap();
        w.write_rtp(0, &[0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0xaa]).unwrap();
        w.write_rtcp(5, &[0x80, 200, 0, 0]).unwrap();
        w.write_rtp(20, &[0x80, 111, 0, 2, 0, 0, 3, 0xc0, 0, 0, 0, 9]).unwrap();
        w.finish().unwrap()
    }

    fn first_err(bytes: &[u8]) -> String {
        match RtpDumpReader::new(bytes) {
            Ok(mut r) => format!("{:?}", r.find_map(Result::err).unwrap()),
            Err(e) => format!("{e:?}"),
        }
    }

    #[test]
    fn write_then_read_round_trip() {
        let bytes = sample();
        assert!(bytes.starts_with(b"#!rtpplay1.0 10.0.0.7/5004\n"));
        let mut r = RtpDumpReader::new(&bytes[..]).unwrap();
        let (ip, port) = (Ipv4Addr::new(10, 0, 0, 7), 5004);
        let want = RtpDumpHeader { start_sec: 1_769_590_800, start_usec: 250_000, source: ip, port };
        assert_eq!(r.header(), &want);
        let first = r.next_record().unwrap().unwrap();
        assert_eq!((first.offset_ms, first.kind, first.data.len()), (0, RecordKind::Rtp { original_len: 13 }, 13));
        let rest: Vec<_> = r.map(Result::unwrap).collect();
        assert_eq!((rest[0].kind, rest[0].offset_ms, &rest[0].data[..]), (RecordKind::Rtcp, 5, &[0x80, 200, 0, 0][..]));
        assert_eq!((rest.len(), rest[1].offset_ms), (2, 20));
    }

    #[test]
    fn preamble_and_header_errors() {
        let bad = |b: &[u8], found: &str| assert_eq!(first_err(b), format!("BadPreamble {{ found: {found:?} }}"));
        bad(b"", "");
        bad(b"GIF89a", "G");
        bad(b"#!rtpplay1.0 1.2.3/5\n", "#!rtpplay1.0 1.2.3/5\\n");
        bad(b"#!rtpplay1.0 1.2.3.256/5\n", "#!rtpplay1.0 1.2.3.256/5\\n");
        bad(b"#!rtpplay1.0 1.2.3.4/123456\n", "#!rtpplay1.0 1.2.3.4/123456\\n");
        bad(b"#!rtpplay1.0 1.2.3.4/5", "#!rtpplay1.0 1.2.3.4/5");
        bad(&[b"#!rtpplay1.0 ".as_slice(), &[b'1'; 60]].concat(), &format!("#!rtpplay1.0 {}", "1".repeat(22)));
        assert_eq!(first_err(&sample()[..30]), "TruncatedHeader { got_bytes: 3 }");
        assert!(RtpDumpError::TruncatedHeader { got_bytes: 3 }.to_string().contains("got 3"));
    }

    #[test]
    fn record_errors_have_index_and_offset() {
        let mut bytes = sample();
        let (second, third) = (43 + 21, 43 + 21 + 12);
        bytes.truncate(third + 10);
        let want =
            format!("TruncatedRecord {{ record_index: 2, byte_offset: {third}, expected_bytes: 20, got_bytes: 10 }}");
        assert_eq!(first_err(&bytes), want);
        bytes.truncate(third + 3);
        let want =
            format!("TruncatedRecord {{ record_index: 2, byte_offset: {third}, expected_bytes: 8, got_bytes: 3 }}");
        assert_eq!(first_err(&bytes), want);
        bytes[second..second + 2].copy_from_slice(&[0, 0]);
        assert_eq!(first_err(&bytes), format!("ZeroLength {{ record_index: 1, byte_offset: {second} }}"));
        let err = RtpDumpReader::new(&bytes[..]).unwrap().find_map(Result::err).unwrap();
        assert_eq!(err.to_string(), format!("rtpdump record 1 at byte {second} has length 0"));
        bytes[second + 1] = 7;
        let want = format!("RecordTooShort {{ record_index: 1, byte_offset: {second}, length: 7 }}");
        assert_eq!(first_err(&bytes), want);
        let mut r = RtpDumpReader::new(&bytes[..]).unwrap();
        assert!(r.next().unwrap().is_ok() && r.next().unwrap().is_err());
        assert!(r.next().is_none(), "iterator stops after the first error");
    }

    #[test]
    fn writer_rejects_bad_packets() {
        let mut w = RtpDumpWriter::new(Vec::new(), SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1), 0, 0).unwrap();
        let big = vec![0u8; MAX_PACKET_LEN + 1];
        assert_eq!(format!("{:?}", w.write_rtp(0, &big)), "Err(PacketTooLarge { len: 65528 })");
        assert_eq!(format!("{:?}", w.write_rtcp(0, &big)), "Err(PacketTooLarge { len: 65528 })");
        assert!(matches!(w.write_rtp(0, &[]), Err(RtpDumpError::EmptyRtpPacket)));
        w.write_rtp(0, &big[..MAX_PACKET_LEN]).unwrap();
        let bytes = w.finish().unwrap();
        let rec = RtpDumpReader::new(&bytes[..]).unwrap().next().unwrap().unwrap();
        assert_eq!(rec.data.len(), MAX_PACKET_LEN);
        let err = RtpDumpReader::new(FailingReader).unwrap_err();
        assert!(matches!(err, RtpDumpError::Io(_)), "{err:?}");
    }

    #[derive(Debug)]
    struct FailingReader;
    impl Read for FailingReader {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }

    #[test]
    fn every_truncation_is_error_or_clean_prefix() {
        let bytes = sample();
        let boundaries = [43, 43 + 21, 43 + 21 + 12, bytes.len()];
        for len in 0..=bytes.len() {
            let Ok(reader) = RtpDumpReader::new(&bytes[..len]) else {
                assert!(len < 43, "header failed at {len}");
                continue;
            };
            let clean = reader.collect::<Vec<_>>().iter().all(Result::is_ok);
            assert_eq!(clean, boundaries.contains(&len), "at length {len}");
        }
    }

    #[test]
    fn fuzz_reader_never_panics() {
        let seed = sample();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..20_000 {
            let mut input = seed.clone();
            if i % 4 == 0 {
                input = (0..next() % 96).map(|_| next() as u8).collect();
            } else {
                for _ in 0..=next() % 4 {
                    let at = (next() as usize) % input.len();
                    input[at] = next() as u8;
                }
                input.truncate((next() as usize) % (seed.len() + 8));
            }
            if let Ok(reader) = RtpDumpReader::new(&input[..]) {
                reader.take(100).for_each(drop);
            }
        }
    }
}
