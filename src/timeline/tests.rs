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

#[test]
fn segment_clock_uses_rtcp_when_present() {
    // call starts at 1_000_000 ms; first packet arrived at +500 ms with a 40 ms network delay
    // that RTCP reveals: the SR says rtp 90_000 + 90*1000 was sent at +1460.
    let clock = SegmentClock::new(90_000, 1_000_000, (90_000, 1_000_500), Some((180_000, 1_001_460)));
    assert_eq!(clock.anchor_source, AnchorSource::RtcpSenderReport);
    assert!((clock.call_ms(90_000) - 460.0).abs() < 1e-9);
    assert!((clock.call_ms(180_000) - 1460.0).abs() < 1e-9);
}

#[test]
fn segment_clock_falls_back_to_first_packet() {
    let clock = SegmentClock::new(48_000, 0, (1000, 2500), None);
    assert_eq!(clock.anchor_source, AnchorSource::FirstPacketArrival);
    assert!((clock.call_ms(1000 + 48_000) - 3500.0).abs() < 1e-9);
}

#[test]
fn segment_clock_handles_wrap_between_anchor_and_packet() {
    let base = u32::MAX - 47_999; // one second before the wrap at 48 kHz
    let clock = SegmentClock::new(48_000, 0, (base, 10_000), None);
    assert!((clock.call_ms(base.wrapping_add(96_000)) - 12_000.0).abs() < 1e-9);
    // RTCP taken before the first packet (the SR's rtp is smaller)
    let clock = SegmentClock::new(48_000, 0, (base, 10_000), Some((base.wrapping_sub(4800), 9_900)));
    assert!((clock.call_ms(base) - 10_000.0).abs() < 1e-9);
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
