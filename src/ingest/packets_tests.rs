use std::net::{Ipv4Addr, SocketAddrV4};

use super::*;
use crate::ingest::damage::RecordDamage;
use crate::ingest::rtp::build_rtp;
use crate::ingest::rtpdump::RtpDumpWriter;

const PT: u8 = 111;
const RTX_PT: u8 = 97;
const RED_PT: u8 = 63;

/// (arrival ms, packet) records written to a temporary rtpdump.
fn dump(records: &[(u32, Vec<u8>)]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let mut writer = RtpDumpWriter::new(
        std::io::BufWriter::new(file.reopen().expect("reopen")),
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5000),
        0,
        0,
    )
    .expect("writer");
    for (arrival, packet) in records {
        writer.write_rtp(*arrival, packet).expect("write");
    }
    writer.finish().expect("finish");
    file
}

fn read(file: &tempfile::NamedTempFile, aux: AuxiliaryPayloads) -> (Vec<MediaPacket>, PacketStats) {
    let (packets, reader) = read_all(file, aux);
    (packets, reader.stats())
}

/// Every packet of `file`, and the reader after its end.
fn read_all(file: &tempfile::NamedTempFile, aux: AuxiliaryPayloads) -> (Vec<MediaPacket>, MediaPackets) {
    let mut packets = MediaPackets::open(file.path(), PT, 48_000, aux).expect("open");
    let mut out = Vec::new();
    while let Some(p) = packets.next_packet().expect("packet") {
        out.push(p);
    }
    (out, packets)
}

/// Opus-like packets every 20 ms: sequence from `seq0`, timestamps from `ts0` step 960.
fn audio(count: u16, seq0: u16, ts0: u32, ssrc: u32) -> Vec<(u32, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let payload = [0x78, (i & 0xff) as u8, (i >> 8) as u8];
            let packet =
                build_rtp(false, PT, seq0.wrapping_add(i), ts0.wrapping_add(u32::from(i) * 960), ssrc, &payload);
            (u32::from(i) * 20, packet)
        })
        .collect()
}

fn index(p: &MediaPacket) -> u16 {
    u16::from(p.payload[1]) | (u16::from(p.payload[2]) << 8)
}

#[test]
fn wrapping_stream_passes_in_order() {
    let file = dump(&audio(300, 65_500, u32::MAX - 960 * 100, 7));
    let (packets, stats) = read(&file, AuxiliaryPayloads::default());
    assert_eq!(packets.len(), 300);
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(index(p), i as u16);
        assert_eq!(p.sequence, 65_500 + i as i64);
        assert_eq!(p.ticks, i64::from(u32::MAX - 960 * 100) + i as i64 * 960);
        assert_eq!(p.lost_before, 0);
    }
    assert_eq!((stats.damage.records, stats.damage.skipped()), (300, 0));
    assert_eq!(
        PacketStats { damage: RecordDamage::default(), ..stats },
        PacketStats { delivered: 300, ..PacketStats::default() }
    );
}

#[test]
fn reordering_duplicates_and_loss() {
    let mut records = audio(400, 100, 5000, 7);
    records.swap(10, 60); // 50 packets out of place
    let dup = records[100].clone();
    records.insert(103, dup);
    records.retain(|(_, p)| ![200_u16, 201, 250].contains(&parse_rtp(p).expect("rtp").sequence.wrapping_sub(100)));
    let (packets, stats) = read(&dump(&records), AuxiliaryPayloads::default());
    assert!(packets.windows(2).all(|w| w[0].sequence < w[1].sequence), "in sequence order");
    assert_eq!(packets.len(), 397);
    assert_eq!(packets.iter().find(|p| index(p) == 202).map(|p| p.lost_before), Some(2));
    assert_eq!(packets.iter().find(|p| index(p) == 251).map(|p| p.lost_before), Some(1));
    assert_eq!((stats.lost, stats.duplicates_or_late), (3, 1));
}

#[test]
fn rtx_and_red_restore_lost_packets() {
    let mut records = audio(50, 1, 0, 7);
    // Packet 10 lost, retransmitted as RTX 100 ms later with its own SSRC and sequence.
    let (_, lost) = records.remove(10);
    let info = parse_rtp(&lost).expect("rtp");
    let mut rtx_payload = info.sequence.to_be_bytes().to_vec();
    rtx_payload.extend_from_slice(info.payload(&lost).expect("payload"));
    records.insert(14, (300, build_rtp(false, RTX_PT, 9000, info.timestamp, 99, &rtx_payload)));
    // Packet 30 lost, carried as redundancy in packet 31's RED wrapper.
    let (_, lost30) = records.remove(30);
    let p30 = parse_rtp(&lost30).expect("rtp");
    let (arrival, next) = records.remove(30);
    let n = parse_rtp(&next).expect("rtp");
    let (old, new) = (p30.payload(&lost30).expect("payload"), n.payload(&next).expect("payload"));
    let mut red = vec![0x80 | PT, (960 >> 6) as u8, ((960 & 0x3f) << 2) as u8, old.len() as u8, PT];
    red.extend_from_slice(old);
    red.extend_from_slice(new);
    records.insert(30, (arrival, build_rtp(false, RED_PT, n.sequence, n.timestamp, 7, &red)));
    // A FEC packet and an RTCP record are passed over.
    records.push((999, build_rtp(false, 127, 1, 0, 7, &[0; 20])));
    records.push((999, vec![0x80, 200, 0, 6, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    let aux =
        AuxiliaryPayloads { rtx: vec![RTX_PT], red: vec![RED_PT], ignored: vec![127], ..AuxiliaryPayloads::default() };
    let (packets, stats) = read(&dump(&records), aux);
    let indices: Vec<u16> = packets.iter().map(index).collect();
    assert_eq!(indices, (0..50).collect::<Vec<_>>());
    assert_eq!(packets[10].origin, PacketOrigin::Rtx);
    assert_eq!(packets[10].ticks, 10 * 960);
    assert_eq!(packets[30].origin, PacketOrigin::Red);
    assert_eq!(packets[30].ticks, 30 * 960);
    assert_eq!((stats.lost, stats.recovered, stats.skipped), (0, 2, 2));
    // Without the SDP's rtx/red lines the same dump reports the loss instead.
    let (packets, stats) = read(&dump(&records), AuxiliaryPayloads::default());
    assert_eq!(packets.len(), 47, "packet 31 came inside the RED wrapper");
    assert_eq!(stats.lost, 3);
}

#[test]
fn ssrc_change_and_timestamp_jump_continue_from_arrival_time() {
    let mut records = audio(100, 10, 1000, 7);
    // At packet 100 (2000 ms) the sender restarts: new SSRC, sequence and timestamp base.
    for (arrival, packet) in audio(100, 40_000, 3_000_000_000, 8) {
        records.push((arrival + 2000, packet));
    }
    // At 4000 ms the timestamps jump 20 minutes ahead, same SSRC and sequence.
    for (arrival, packet) in audio(100, 40_100, 3_000_000_000 + 100 * 960 + 48_000 * 1200, 8) {
        records.push((arrival + 4000, packet));
    }
    let (packets, stats) = read(&dump(&records), AuxiliaryPayloads::default());
    assert_eq!(packets.len(), 300);
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.sequence, 10 + i as i64, "packet {i}");
        assert_eq!(p.ticks, 1000 + i as i64 * 960, "packet {i}");
    }
    assert_eq!((stats.ssrc_changes, stats.discontinuities, stats.lost), (1, 1, 0));
}

#[test]
fn dtx_gaps_are_not_discontinuities() {
    // 2 s of speech, then 10 s of DTX (a packet every 400 ms), then speech again.
    let mut records = Vec::new();
    let mut seq = 0_u16;
    let mut push = |records: &mut Vec<(u32, Vec<u8>)>, t_ms: u32| {
        records.push((t_ms, build_rtp(false, PT, seq, 77 + t_ms * 48, 7, &[0x78, 0, 0])));
        seq += 1;
    };
    (0..100).for_each(|i| push(&mut records, i * 20));
    (0..25).for_each(|i| push(&mut records, 2000 + i * 400));
    (0..100).for_each(|i| push(&mut records, 12_000 + i * 20));
    let (packets, stats) = read(&dump(&records), AuxiliaryPayloads::default());
    assert_eq!(packets.len(), 225);
    assert_eq!(packets.last().map(|p| p.ticks), Some(77 + (12_000 + 99 * 20) * 48));
    assert_eq!((stats.lost, stats.discontinuities), (0, 0));
}

#[test]
fn memory_is_bounded_by_the_window() {
    let file = dump(&audio(3000, 0, 0, 7));
    let mut packets = MediaPackets::open(file.path(), PT, 48_000, AuxiliaryPayloads::default()).expect("open");
    while packets.next_packet().expect("packet").is_some() {
        assert!(packets.window.len() <= REORDER_WINDOW_PACKETS);
    }
}

/// The bytes of `file`, and the byte offset of each of its records.
fn dump_bytes(file: &tempfile::NamedTempFile) -> (Vec<u8>, Vec<usize>) {
    let bytes = std::fs::read(file.path()).expect("read");
    let mut at = bytes.iter().position(|b| *b == b'\n').expect("preamble") + 1 + 16;
    let mut starts = Vec::new();
    while at < bytes.len() {
        starts.push(at);
        at += usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
    }
    (bytes, starts)
}

fn rewrite(file: &tempfile::NamedTempFile, bytes: &[u8]) {
    std::fs::write(file.path(), bytes).expect("write");
}

fn set_arrival(bytes: &mut [u8], record_at: usize, arrival_ms: u32) {
    bytes[record_at + 4..record_at + 8].copy_from_slice(&arrival_ms.to_be_bytes());
}

const HOURS_5_MS: u32 = 5 * 3_600_000;

#[test]
fn damaged_records_are_skipped_and_counted_by_reason() {
    let mut records = audio(200, 0, 0, 7);
    records.insert(50, (1000, vec![0x80, PT, 0, 1])); // too short for an RTP header
    let file = dump(&records);
    let (mut bytes, starts) = dump_bytes(&file);
    bytes[starts[10] + 8] = 0x40; // RTP version 1: a torn write
    bytes[starts[20] + 2..starts[20] + 4].copy_from_slice(&100_u16.to_be_bytes()); // snap length
    set_arrival(&mut bytes, starts[30], 600 + HOURS_5_MS);
    bytes[starts[40] + 8] = 0x8f; // 15 CSRCs in a 15-byte packet
    bytes.truncate(bytes.len() - 5); // the last record cut short
    rewrite(&file, &bytes);
    let (packets, reader) = read_all(&file, AuxiliaryPayloads::default());
    let stats = reader.stats();
    let lost: Vec<u16> = (0..200).filter(|i| !packets.iter().any(|p| index(p) == *i)).collect();
    assert_eq!(lost, [10, 20, 30, 40, 199]);
    assert_eq!(stats.lost, 4, "the last record is not lost: it was never there");
    assert!(packets.iter().all(|p| p.arrival_ms < 4000));
    let reasons: Vec<(&str, u64)> = stats.damage.reasons().map(|(r, n)| (r.as_str(), n)).collect();
    let want = [
        ("not_rtp_v2", 1),
        ("too_short", 1),
        ("bad_rtp_header", 1),
        ("length_past_record", 1),
        ("arrival_out_of_range", 1),
    ];
    assert_eq!(reasons[..5], want);
    assert_eq!(reasons[5..], [("truncated", 1)]);
    assert_eq!((stats.damage.records, stats.damage.skipped(), stats.damage.unread_bytes), (201, 6, 0));
    // 6 of 201 records is more than 1%: the scan refuses the file, naming the first.
    let err = reader.damage_error().expect("too damaged").to_string();
    assert!(err.contains("6 of 201 records") && err.contains("record 10 (not_rtp_v2)"), "{err}");
    assert!(err.contains("RTP version is 1"), "{err}");
    let fault = crate::error::Classify::fault(&reader.damage_error().expect("too damaged"));
    assert_eq!(fault, crate::error::Fault::BadInput("bad_input"));
}

#[test]
fn one_damaged_record_in_a_hundred_and_more_is_tolerated() {
    let file = dump(&audio(150, 0, 0, 7));
    let (mut bytes, starts) = dump_bytes(&file);
    bytes[starts[75] + 8] = 0x00;
    rewrite(&file, &bytes);
    let (packets, reader) = read_all(&file, AuxiliaryPayloads::default());
    assert_eq!((packets.len(), reader.stats().damage.skipped()), (149, 1));
    assert!(reader.damage_error().is_none());
}

#[test]
fn an_arrival_time_far_off_is_judged_by_the_next_record() {
    // The first record hours off: skipped, the second starts the stream.
    let file = dump(&audio(100, 0, 0, 7));
    let (mut bytes, starts) = dump_bytes(&file);
    set_arrival(&mut bytes, starts[0], HOURS_5_MS);
    set_arrival(&mut bytes, starts[99], HOURS_5_MS);
    rewrite(&file, &bytes);
    let (packets, stats) = read(&file, AuxiliaryPayloads::default());
    assert_eq!((packets.len(), stats.damage.count(DamageReason::ArrivalOutOfRange)), (98, 2));
    assert_eq!(packets.first().map(index), Some(1));
    assert_eq!(packets.last().map(index), Some(98), "the last record hours off is skipped too");
    // A real two-hour pause (every record after it agrees): nothing skipped.
    let mut records = audio(100, 0, 0, 7);
    records.iter_mut().skip(50).for_each(|(arrival, _)| *arrival += 2 * 3_600_000);
    let (packets, stats) = read(&dump(&records), AuxiliaryPayloads::default());
    assert_eq!((packets.len(), stats.damage.skipped()), (100, 0));
}

#[test]
fn a_bad_record_length_stops_the_reading() {
    let file = dump(&audio(200, 0, 0, 7));
    let (mut bytes, starts) = dump_bytes(&file);
    let file_bytes = bytes.len() as u64;
    bytes[starts[199]..starts[199] + 2].copy_from_slice(&[0, 3]);
    rewrite(&file, &bytes);
    let (packets, reader) = read_all(&file, AuxiliaryPayloads::default());
    let damage = reader.stats().damage;
    assert_eq!((packets.len(), damage.count(DamageReason::BadRecordLength)), (199, 1));
    assert_eq!(damage.unread_bytes, file_bytes - starts[199] as u64);
    assert!(reader.damage_error().is_none(), "the last record only");
    // Early in the file, most of it is left unread: refused.
    bytes[starts[100]..starts[100] + 2].copy_from_slice(&[0, 0]);
    rewrite(&file, &bytes);
    let (packets, reader) = read_all(&file, AuxiliaryPayloads::default());
    assert_eq!((packets.len(), reader.stats().damage.records), (100, 101));
    let err = reader.damage_error().expect("too damaged").to_string();
    assert!(err.contains("record 100 (bad_record_length)") && err.contains("bytes unread"), "{err}");
}

#[test]
fn fuzz_damaged_files_never_fail_or_panic() {
    let file = dump(&audio(60, 0, 0, 7));
    let (seed, _) = dump_bytes(&file);
    let header_len = seed.iter().position(|b| *b == b'\n').expect("preamble") + 1 + 16;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..600 {
        let mut bytes = seed.clone();
        if round % 5 == 0 {
            // Random bytes after an intact header.
            bytes.truncate(header_len);
            bytes.extend((0..next() % 2000).map(|_| next() as u8));
        } else {
            for _ in 0..=next() % 6 {
                let at = header_len + (next() as usize) % (bytes.len() - header_len);
                bytes[at] = next() as u8;
            }
            bytes.truncate(header_len + (next() as usize) % (seed.len() - header_len + 1));
        }
        rewrite(&file, &bytes);
        let mut packets = MediaPackets::open(file.path(), PT, 48_000, AuxiliaryPayloads::default()).expect("open");
        while let Some(packet) = packets.next_packet().unwrap_or_else(|e| panic!("round {round}: {e}")) {
            assert!(packet.payload.len() < 2000);
        }
        let damage = packets.stats().damage;
        assert!(damage.skipped() <= damage.records, "round {round}");
        let _ = packets.damage_error().map(|e| e.to_string());
    }
}
