use std::net::{Ipv4Addr, SocketAddrV4};

use super::*;
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
    let mut packets = MediaPackets::open(file.path(), PT, 48_000, aux).expect("open");
    let mut out = Vec::new();
    while let Some(p) = packets.next_packet().expect("packet") {
        out.push(p);
    }
    (out, packets.stats())
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
    assert_eq!(stats, PacketStats { delivered: 300, ..PacketStats::default() });
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
