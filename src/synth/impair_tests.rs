use std::collections::{HashMap, HashSet};

use super::*;

const SSRC: u32 = 0x1234_5678;
type Packets = Vec<(u32, Vec<u8>)>;

fn input(n: u32) -> Packets {
    let payload = |i: u32| [i.to_be_bytes(), [0xa5; 4], [0xa5; 4], [0xa5; 4], [0xa5; 4]].concat();
    let packet = |i: u32| {
        build_rtp(i.is_multiple_of(7), 111, 65000u16.wrapping_add(i as u16), 1_000_000 + 960 * i, SSRC, &payload(i))
    };
    (0..n).map(|i| (i * 20, packet(i))).collect()
}

/// Runs `packets` through; checks arrival times never decrease; returns output, stats and most packets held.
fn run(imp: Impairments, packets: &Packets) -> (Packets, ImpairStats, usize) {
    let (mut im, mut out, mut max_held) = (Impairer::new(&imp), Vec::new(), 0);
    for (arrival_ms, p) in packets {
        out.extend(im.push(*arrival_ms, p).unwrap());
        max_held = max_held.max(im.held());
    }
    out.extend(im.finish());
    assert!(out.windows(2).all(|w| w[0].0 <= w[1].0), "arrival times decrease");
    (out, im.stats(), max_held)
}

fn info(p: &[u8]) -> RtpPacketInfo {
    parse_rtp(p).unwrap()
}

fn body(p: &[u8]) -> &[u8] {
    info(p).payload(p).unwrap()
}

/// Index of a test packet, from its payload.
fn index(p: &[u8]) -> u32 {
    u32::from_be_bytes(body(p)[..4].try_into().unwrap())
}

fn imp(seed: u64) -> Impairments {
    Impairments { seed, ..Default::default() }
}

#[test]
fn identity_passes_everything_unchanged() {
    let packets = input(500);
    let identity = Impairments { rtx_payload_type: Some(97), ..imp(3) };
    assert!(Impairer::new(&identity).is_identity());
    assert!(!Impairer::new(&Impairments { loss_pct: 1.0, ..imp(3) }).is_identity());
    assert_eq!(run(identity, &packets).0, packets);
}

#[test]
fn loss_comes_in_bounded_bursts() {
    for burst in [1, 4] {
        let (out, stats, _) = run(Impairments { loss_pct: 10.0, burst_max_packets: burst, ..imp(11) }, &input(2000));
        let kept: Vec<u32> = out.iter().map(|(_, p)| index(p)).collect();
        assert!((160..=240).contains(&stats.dropped), "{stats:?}");
        assert_eq!((kept.len() as u64 + stats.dropped, kept[0], kept.last()), (2000, 0, Some(&1999)));
        assert_eq!(kept.windows(2).map(|w| w[1] - w[0] - 1).max(), Some(burst));
    }
}

#[test]
fn everything_at_once_is_deterministic() {
    let all = |seed| Impairments {
        loss_pct: 8.0,
        burst_max_packets: 3,
        reorder_pct: 10.0,
        reorder_depth_packets: 8,
        duplicate_pct: 3.0,
        rtx_payload_type: Some(97),
        rtx_recover_pct: 80.0,
        red_payload_type: Some(63),
        fec_payload_type: Some(100),
        ssrc_change_at_ms: Some(15_000),
        timestamp_jump_at_ms: Some(25_000),
        timestamp_jump_ticks: 90_000,
        ..imp(seed)
    };
    let packets = input(2000);
    let (out, s, _) = run(all(5), &packets);
    assert!(out == run(all(5), &packets).0 && out != run(all(6), &packets).0);
    assert!([s.dropped, s.recovered_by_rtx, s.reordered, s.duplicated, s.fec_packets].iter().all(|n| *n > 0));
    assert_eq!((s.packets_in, s.red_wrapped), (2000, 2000));
}

#[test]
fn reorder_displacement_is_bounded() {
    let (out, stats, _) = run(Impairments { reorder_pct: 20.0, reorder_depth_packets: 5, ..imp(2) }, &input(2000));
    let order: Vec<u32> = out.iter().map(|(_, p)| index(p)).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..2000).collect::<Vec<_>>());
    assert!(order.iter().enumerate().all(|(pos, &i)| (pos as i64 - i64::from(i)).abs() <= 5));
    assert!(stats.reordered > 300 && order.windows(2).any(|w| w[0] > w[1]), "{stats:?}");
}

#[test]
fn duplicates_are_identical_and_close() {
    let (out, stats, _) = run(Impairments { duplicate_pct: 10.0, ..imp(3) }, &input(2000));
    let (mut first, mut copies, mut max_index) = (HashMap::<u32, usize>::new(), 0, 0);
    for (pos, (_, p)) in out.iter().enumerate() {
        let i = index(p);
        if let Some(&at) = first.get(&i) {
            assert!(&out[at].1 == p && max_index - i <= 3, "copy of {i} after {max_index}");
            copies += 1;
        }
        first.entry(i).or_insert(pos);
        max_index = max_index.max(i);
    }
    assert!(copies > 150 && copies == stats.duplicated && out.len() as u64 == 2000 + copies, "{stats:?}");
}

#[test]
fn rtx_carries_dropped_originals() {
    let packets = input(2000);
    let rtx_on = Impairments { rtx_payload_type: Some(97), rtx_recover_pct: 70.0, ..imp(4) };
    let (out, stats, _) = run(Impairments { loss_pct: 10.0, burst_max_packets: 3, ..rtx_on }, &packets);
    let originals: HashMap<u16, &Vec<u8>> = packets.iter().map(|(_, p)| (info(p).sequence, p)).collect();
    let (rtx, media): (Vec<_>, Vec<_>) = out.iter().map(|(_, p)| p).partition(|p| info(p).payload_type == 97);
    let media: HashSet<u16> = media.iter().map(|p| info(p).sequence).collect();
    assert_eq!(rtx.len() as u64, stats.recovered_by_rtx);
    assert!((55..=85).contains(&(stats.recovered_by_rtx * 100 / stats.dropped)), "{stats:?}");
    let mut recovered = HashSet::new();
    for (k, p) in rtx.iter().enumerate() {
        let (i, (osn, original)) = (info(p), body(p).split_at(2));
        let osn = u16::from_be_bytes([osn[0], osn[1]]);
        assert_eq!((i.ssrc == SSRC, i.sequence), (false, info(rtx[0]).sequence.wrapping_add(k as u16)));
        assert!(!media.contains(&osn) && recovered.insert(osn), "OSN {osn}");
        assert_eq!(&build_rtp(i.marker, 111, osn, i.timestamp, SSRC, original), originals[&osn]);
    }
}

/// RED blocks as (payload type, timestamp offset, data), the primary last.
fn parse_red(payload: &[u8]) -> Vec<(u8, u32, Vec<u8>)> {
    let (mut headers, mut at, mut blocks) = (Vec::new(), 0, Vec::new());
    while payload[at] & 0x80 != 0 {
        let b = &payload[at..at + 4];
        headers.push((
            b[0] & 0x7f,
            u32::from(b[1]) << 6 | u32::from(b[2] >> 2),
            usize::from(b[2] & 3) << 8 | usize::from(b[3]),
        ));
        at += 4;
    }
    let primary_pt = payload[at] & 0x7f;
    at += 1;
    for (pt, offset, len) in headers {
        blocks.push((pt, offset, payload[at..at + len].to_vec()));
        at += len;
    }
    blocks.push((primary_pt, 0, payload[at..].to_vec()));
    blocks
}

#[test]
fn red_carries_the_previous_payload() {
    let mut packets = input(300);
    packets[100].1 = build_rtp(false, 111, 65100, 1_000_000 + 96_000, SSRC, &[7; 1100]);
    let (out, stats, _) = run(Impairments { red_payload_type: Some(63), loss_pct: 10.0, ..imp(9) }, &packets);
    let by_seq: HashMap<u16, usize> = packets.iter().enumerate().map(|(k, (_, p))| (info(p).sequence, k)).collect();
    let written: HashSet<u16> = out.iter().map(|(_, p)| info(p).sequence).collect();
    let mut recovered_by_red = 0;
    for (_, p) in &out {
        let (red, k) = (info(p), by_seq[&info(p).sequence]);
        let orig = info(&packets[k].1);
        assert_eq!((red.payload_type, red.marker, red.timestamp, red.ssrc), (63, orig.marker, orig.timestamp, SSRC));
        let blocks = parse_red(body(p));
        assert_eq!(blocks.last(), Some(&(111, 0, body(&packets[k].1).to_vec())));
        assert_eq!(blocks.len() == 2, k > 0 && k != 101, "packet {k}");
        if blocks.len() == 2 {
            assert_eq!(blocks[0], (111, 960, body(&packets[k - 1].1).to_vec()));
            recovered_by_red += usize::from(!written.contains(&info(&packets[k - 1].1).sequence));
        }
    }
    assert!(recovered_by_red > 10 && stats.red_wrapped == 300, "{recovered_by_red} {stats:?}");
}

#[test]
fn fec_follows_every_tenth_packet() {
    let (out, stats, _) = run(Impairments { fec_payload_type: Some(100), ..imp(1) }, &input(2000));
    assert_eq!((stats.fec_packets, out.len()), (200, 2200));
    for (k, group) in out.chunks(11).enumerate() {
        let (fec, last, first) = (info(&group[10].1), info(&group[9].1), info(&group[0].1));
        assert_eq!((fec.payload_type, fec.ssrc, fec.timestamp), (100, SSRC, last.timestamp));
        assert_eq!(fec.sequence, info(&out[10].1).sequence.wrapping_add(k as u16));
        let mut xor = [0u8; 20];
        for (_, p) in &group[..10] {
            xor.iter_mut().zip(body(p)).for_each(|(x, b)| *x ^= b);
        }
        let fec_body = body(&group[10].1);
        assert_eq!((&fec_body[2..4], &fec_body[12..14]), (&first.sequence.to_be_bytes()[..], &[0xff, 0xc0][..]));
        assert_eq!(&fec_body[14..], xor);
    }
}

#[test]
fn ssrc_change_and_timestamp_jump_rewrite_headers() {
    let packets = input(2000);
    let (out, _, _) = run(Impairments { ssrc_change_at_ms: Some(20_000), ..imp(8) }, &packets);
    let (before, after) = (info(&out[999].1), info(&out[1000].1));
    assert!(out[..1000] == packets[..1000] && after.ssrc != SSRC);
    assert_ne!(
        (after.sequence, after.timestamp),
        (before.sequence.wrapping_add(1), before.timestamp.wrapping_add(960))
    );
    for (w, k) in out[1000..].windows(2).zip(1001..) {
        let (a, b) = (info(&w[0].1), info(&w[1].1));
        let expected = (after.ssrc, a.sequence.wrapping_add(1), a.timestamp.wrapping_add(960), body(&packets[k].1));
        assert_eq!((b.ssrc, b.sequence, b.timestamp, body(&w[1].1)), expected);
    }
    let jump = Impairments { timestamp_jump_at_ms: Some(10_000), timestamp_jump_ticks: 123_456, ..imp(8) };
    let (out, _, _) = run(jump, &packets);
    for k in 1..2000 {
        let (a, b, orig) = (info(&out[k - 1].1), info(&out[k].1), info(&packets[k].1));
        assert_eq!(b.timestamp.wrapping_sub(a.timestamp), 960 + if k == 500 { 123_456 } else { 0 });
        assert_eq!((b.ssrc, b.sequence, body(&out[k].1)), (SSRC, orig.sequence, body(&packets[k].1)));
    }
}

#[test]
fn memory_stays_bounded() {
    let reorder = Impairments { reorder_pct: 30.0, reorder_depth_packets: 100, duplicate_pct: 5.0, ..imp(12) };
    let rtx = Impairments { loss_pct: 5.0, rtx_payload_type: Some(97), rtx_recover_pct: 100.0, ..reorder };
    let (out, stats, max_held) = run(rtx, &input(100_000));
    assert!(max_held <= 110, "held {max_held}");
    assert_eq!(out.len() as u64, 100_000 + stats.duplicated);
}

#[test]
fn clamps_parameters_and_rejects_garbage() {
    let imp = Impairments { loss_pct: 400.0, reorder_pct: f64::NAN, reorder_depth_packets: 0, ..imp(0) };
    assert!(Impairer::new(&imp).push(0, &[1, 2, 3]).is_err());
    let (out, stats, _) = run(imp, &input(2000));
    assert_eq!((stats.dropped, stats.reordered, out.len()), (999, 0, 1001));
}
