use super::arrival::ArrivalFloor;
use super::*;

#[test]
fn timestamps_unwrap_forward_and_backward_across_the_32_bit_edge() {
    let mut u = TimestampUnwrapper::new();
    assert_eq!(u.unwrap(u32::MAX - 959), i64::from(u32::MAX - 959));
    assert_eq!(u.unwrap(0), i64::from(u32::MAX) + 1);
    assert_eq!(u.unwrap(960), i64::from(u32::MAX) + 961);
    // a reordered packet from before the wrap stays before it
    assert_eq!(u.unwrap(u32::MAX - 959), i64::from(u32::MAX - 959));
}

#[test]
fn sequence_numbers_unwrap() {
    let mut u = SequenceUnwrapper::new();
    assert_eq!(u.unwrap(65534), 65534);
    assert_eq!(u.unwrap(65535), 65535);
    assert_eq!(u.unwrap(0), 65536);
    assert_eq!(u.unwrap(65535), 65535);
    assert_eq!(u.unwrap(1), 65537);
}

fn inputs(rate_hz: u32, first_rtp: (u32, i64), rtcp_first: Option<(u32, i64)>) -> ClockInputs {
    ClockInputs {
        clock_rate_hz: rate_hz,
        call_start_unix_ms: 1_000_000,
        first_rtp,
        rtcp_first,
        rtcp_last: None,
        first_packet: (i64::from(first_rtp.0), 0),
        last_packet: (i64::from(first_rtp.0) + i64::from(rate_hz), 1000),
        discontinuous: false,
        arrival_floor: vec![(i64::from(first_rtp.0), 0), (i64::from(first_rtp.0) + i64::from(rate_hz), 1000)],
        decoder_delay_ms: 0.0,
    }
}

#[test]
fn without_sender_reports_the_first_packets_jitter_is_taken_off() {
    // The first packet (+500 ms) came 9 ms later than the least delayed packets would have.
    let mut i = inputs(48_000, (0, 1_000_500), None);
    i.arrival_floor = vec![(0, 0), (48_000, 991), (96_000, 1992)];
    let clock = SegmentClock::from_inputs(&i);
    assert_eq!(clock.anchor_source, AnchorSource::FirstPacketArrival);
    assert!((clock.call_ms(0) - 491.0).abs() < 1e-9, "{}", clock.call_ms(0));
    assert!(clock.notes.iter().any(|n| n.contains("arrived 9 ms later")), "{:?}", clock.notes);
    assert_eq!(clock.transit_ms, None);
}

#[test]
fn without_sender_reports_drift_is_measured_through_jitter() {
    // Two minutes of 20 ms packets from a -150 ppm sender, each 40 to 52 ms on the network.
    let (ppm, seconds) = (-150.0, 120_u32);
    let mut floor = ArrivalFloor::new(48_000);
    let mut rng = 7_u64;
    let arrival = |k: u32, rng: &mut u64| {
        *rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let jitter_ms = (*rng >> 33) % 13;
        (f64::from(k * 20) / (1.0 + ppm * 1e-6)).round() as u32 + 40 + jitter_ms as u32
    };
    let packets = seconds * 50;
    let first_arrival = arrival(0, &mut rng);
    floor.push(0, first_arrival);
    let mut last = (0, first_arrival);
    for k in 1..packets {
        last = (i64::from(k) * 960, arrival(k, &mut rng));
        floor.push(last.0, last.1);
    }
    let mut i = inputs(48_000, (0, 1_000_000 + i64::from(first_arrival)), None);
    i.first_packet = (0, first_arrival);
    i.last_packet = last;
    i.arrival_floor = floor.finish();
    let clock = SegmentClock::from_inputs(&i);
    assert_eq!(clock.rate_source, RateSource::PacketArrivals);
    assert!((clock.drift_ppm() - ppm).abs() < 15.0, "{}", clock.drift_ppm());
    // Placed by arrival (40 ms of path left in: the call's other tracks take that off), the
    // last packet lands where the first one's path says, 18 ms of drift corrected.
    let true_end_ms = f64::from((packets - 1) * 20) / (1.0 + ppm * 1e-6) + 40.0;
    assert!((clock.call_ms(last.0) - true_end_ms).abs() < 3.0, "{} vs {true_end_ms}", clock.call_ms(last.0));
}

#[test]
fn sender_reports_reveal_the_paths_delay_and_opus_its_lookahead() {
    // Captured at +460 (the SR), arrived at +500, +1501 and +2540: the path takes 40 ms.
    let mut i = inputs(90_000, (90_000, 1_000_500), Some((180_000, 1_001_460)));
    i.arrival_floor = vec![(90_000, 0), (180_000, 1001), (270_000, 2040)];
    let clock = SegmentClock::from_inputs(&i);
    assert_eq!(clock.transit_ms, Some(40.0));
    i.decoder_delay_ms = 6.5;
    let clock = SegmentClock::from_inputs(&i);
    assert!((clock.call_ms(90_000) - 453.5).abs() < 1e-9);
}

#[test]
fn segment_clock_uses_rtcp_when_present() {
    // The first packet arrived at +500 ms after a 40 ms network delay that RTCP reveals: the
    // SR says rtp 90_000 + 90*1000 was sent at +1460.
    let clock = SegmentClock::from_inputs(&inputs(90_000, (90_000, 1_000_500), Some((180_000, 1_001_460))));
    assert_eq!(clock.anchor_source, AnchorSource::RtcpSenderReport);
    assert!((clock.call_ms(90_000) - 460.0).abs() < 1e-9);
    assert!((clock.call_ms(180_000) - 1460.0).abs() < 1e-9);
    assert!(clock.notes.is_empty(), "{:?}", clock.notes);
}

#[test]
fn segment_clock_falls_back_to_first_packet_and_says_so() {
    let clock = SegmentClock::from_inputs(&inputs(48_000, (1000, 1_002_500), None));
    assert_eq!(clock.anchor_source, AnchorSource::FirstPacketArrival);
    assert!((clock.call_ms(1000 + 48_000) - 3500.0).abs() < 1e-9);
    assert!(clock.notes[0].contains("absent or 0"), "{:?}", clock.notes);
    // A report 5 s away from what the arrival times allow is not believed.
    let clock = SegmentClock::from_inputs(&inputs(48_000, (1000, 1_002_500), Some((49_000, 1_008_500))));
    assert_eq!(clock.anchor_source, AnchorSource::FirstPacketArrival);
    assert!((clock.call_ms(1000) - 2500.0).abs() < 1e-9);
    assert!(clock.notes[0].contains("+5000 ms") && clock.notes[0].contains("inconsistent"), "{:?}", clock.notes);
    // NTP-epoch milliseconds are converted.
    let ntp = 1_003_500 + 2_208_988_800_000;
    let clock = SegmentClock::from_inputs(&inputs(48_000, (1000, 1_002_500), Some((49_000, ntp))));
    assert_eq!(clock.anchor_source, AnchorSource::RtcpSenderReport);
    assert!((clock.call_ms(1000) - 2500.0).abs() < 1e-9);
    assert!(clock.notes[0].contains("NTP epoch"));
}

#[test]
fn segment_clock_handles_wrap_between_anchor_and_packet() {
    let base = u32::MAX - 47_999; // one second before the wrap at 48 kHz
    let clock = SegmentClock::from_inputs(&inputs(48_000, (base, 1_010_000), None));
    assert!((clock.call_ms(i64::from(base) + 96_000) - 12_000.0).abs() < 1e-9);
    // RTCP taken before the first packet (the SR's rtp is smaller)
    let clock =
        SegmentClock::from_inputs(&inputs(48_000, (base, 1_010_000), Some((base.wrapping_sub(4800), 1_009_900))));
    assert_eq!(clock.anchor_source, AnchorSource::RtcpSenderReport);
    assert!((clock.call_ms(i64::from(base)) - 10_000.0).abs() < 1e-9);
}

#[test]
fn drift_is_measured_from_sender_reports_across_wraps() {
    // A 90 kHz sender 100 ppm fast over two hours: its timestamps wrap once in between.
    let (ppm, hours_ms) = (100.0, 7_200_000_i64);
    let rate = 90.0 * (1.0 + ppm * 1e-6);
    let first = u32::MAX - 900_000;
    let last = first.wrapping_add((hours_ms as f64 * rate).round() as u32);
    let mut i = inputs(90_000, (first, 1_000_000), Some((first, 1_000_000)));
    i.rtcp_last = Some((last, 1_000_000 + hours_ms));
    i.last_packet = (i64::from(first) + (hours_ms as f64 * rate) as i64, hours_ms as u32);
    i.arrival_floor = vec![i.first_packet, i.last_packet];
    let clock = SegmentClock::from_inputs(&i);
    assert_eq!(clock.rate_source, RateSource::SenderReports);
    assert!((clock.drift_ppm() - ppm).abs() < 0.1, "{}", clock.drift_ppm());
    let end_ticks = i64::from(first) + (hours_ms as f64 * rate).round() as i64;
    assert!((clock.call_ms(end_ticks) - hours_ms as f64).abs() < 1.0);
    // Without reports, the arrival times give nearly the same rate.
    i.rtcp_first = None;
    i.rtcp_last = None;
    let clock = SegmentClock::from_inputs(&i);
    assert_eq!(clock.rate_source, RateSource::PacketArrivals);
    assert!((clock.call_ms(end_ticks) - hours_ms as f64).abs() < 2.0);
    // A short call's arrival jitter is not mistaken for drift.
    let clock = SegmentClock::from_inputs(&inputs(90_000, (0, 1_000_000), None));
    assert_eq!(clock.rate_source, RateSource::Nominal);
    // Reports that contradict each other wildly are not used for the rate.
    let mut i = inputs(48_000, (0, 1_000_000), Some((0, 1_000_000)));
    i.rtcp_last = Some((48_000 * 60, 1_000_000 + 30_000));
    let clock = SegmentClock::from_inputs(&i);
    assert_eq!(clock.rate_source, RateSource::Nominal);
    assert!(clock.notes.iter().any(|n| n.contains("ppm")), "{:?}", clock.notes);
}

#[test]
fn spans_and_timeline() {
    let a = TrackSpan {
        segments: vec![
            SegmentSpan { start_ms: 100.0, end_ms: 900.0 },
            SegmentSpan { start_ms: 1200.0, end_ms: 2000.0 },
        ],
    };
    let b = TrackSpan { segments: vec![SegmentSpan { start_ms: 50.0, end_ms: 2500.0 }] };
    assert_eq!(a.segment_at(1000.0), None);
    assert_eq!(a.segment_at(1200.0), Some(1));
    let p = ParticipantSpan::from_tracks([&a, &b]).expect("span");
    assert_eq!((p.start_ms, p.end_ms), (50.0, 2500.0));
    assert!(p.contains(50.0) && !p.contains(2500.0));
    let timeline = CallTimeline::new([&a, &b]);
    assert_eq!(timeline.duration_ms, 2500.0);
    assert_eq!(timeline.frame_count(30), 75);
    assert!((CallTimeline::frame_time_ms(3, 30) - 100.0).abs() < 1e-9);
    assert_eq!(ParticipantSpan::from_tracks([&TrackSpan { segments: vec![] }]), None);
}
