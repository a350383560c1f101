//! Tests of the SDP parser (`sdp.rs`).

use super::*;

const CHROME_VIDEO: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
    m=video 9 UDP/TLS/RTP/SAVPF 97 98 96 99 100 101\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
    a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=rtpmap:98 red/90000\r\n\
    a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:99 ulpfec/90000\r\n\
    a=rtpmap:100 flexfec-03/90000\r\na=rtpmap:101 H264/90000\r\n\
    a=fmtp:101 packetization-mode=1; profile-level-id=42e01f;level-asymmetry-allowed\r\n\
    a=rtpmap:120 VP9/90000\r\nm=audio 9 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n";

fn bad_line(text: &str) -> (usize, String, String) {
    match parse_sdp(text) {
        Err(SdpError::BadLine { line_number, line, reason }) => (line_number, line, reason),
        other => panic!("expected BadLine, got {other:?}"),
    }
}

#[test]
fn a_clock_rate_the_codec_does_not_allow_is_refused_with_both_rates() {
    for (line, rate, required) in
        [("opus/8000/2", 8000, 48_000), ("H264/48000", 48_000, 90_000), ("VP8/9000", 9000, 90_000)]
    {
        let media = if line.starts_with("opus") { "audio" } else { "video" };
        let text = format!("v=0\r\nm={media} 9 RTP/AVP 96\r\na=rtpmap:96 {line}\r\n");
        let err = parse_sdp(&text).unwrap().primary().unwrap_err();
        assert!(
            matches!(err, SdpError::WrongClockRate { clock_rate_hz, required_hz, .. }
                if clock_rate_hz == rate && required_hz == required),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("rtpmap clock rate") && message.contains(&required.to_string()), "{message}");
    }
}

#[test]
fn primary_skips_rtx_red_fec() {
    let sdp = parse_sdp(CHROME_VIDEO).unwrap();
    assert_eq!(sdp.media, MediaKind::Video);
    assert_eq!(sdp.payload_types, vec![97, 98, 96, 99, 100, 101]);
    assert_eq!(sdp.rtpmaps.len(), 6, "PT 120 is not on the m= line; audio section ignored");
    let primary = sdp.primary().unwrap();
    assert_eq!((primary.codec, primary.rtpmap.payload_type), (Codec::Vp8, 96));
    assert_eq!(primary.rtpmap.clock_rate_hz, 90_000);
    assert_eq!(sdp.auxiliary_payload_types(), vec![97, 98, 99, 100]);
    let h264 = sdp.rtpmap(101).unwrap();
    let want = [("packetization-mode", "1"), ("profile-level-id", "42e01f"), ("level-asymmetry-allowed", "")];
    let want: Vec<_> = want.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(h264.fmtp, want);
    assert_eq!(sdp.rtpmap(97).unwrap().fmtp, vec![("apt".into(), "96".into())]);
}

#[test]
fn write_then_parse_round_trip() {
    let fmtp = vec![("minptime".to_string(), "10".to_string()), ("stereo".into(), "".into())];
    let text =
        write_sdp(MediaKind::Audio, &[RtpMap { fmtp: fmtp.clone(), ..RtpMap::new(111, "opus", 48_000, Some(2), &[]) }]);
    let sdp = parse_sdp(&text).unwrap();
    let map =
        RtpMap { payload_type: 111, encoding_name: "opus".into(), clock_rate_hz: 48_000, channels: Some(2), fmtp };
    assert_eq!(
        sdp,
        SessionDescription {
            media: MediaKind::Audio,
            payload_types: vec![111],
            rtpmaps: vec![map],
            extmaps: Vec::new()
        }
    );
    assert_eq!(sdp.primary().unwrap().codec, Codec::Opus);
    let text = write_sdp(MediaKind::Video, &[RtpMap::new(96, "AV1", 90_000, None, &[])]);
    assert!(!text.contains("a=fmtp"));
    let sdp = parse_sdp(&text.replace("\r\n", "\n")).unwrap();
    assert_eq!((sdp.primary().unwrap().codec, sdp.rtpmaps[0].channels), (Codec::Av1, None));
}

#[test]
fn extmaps_name_the_audio_level_extension() {
    let text = "v=0\r\na=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\nm=audio 9 RTP/AVP 111\r\n\
        a=rtpmap:111 opus/48000/2\r\na=extmap:1/recvonly urn:ietf:params:rtp-hdrext:ssrc-audio-level vad=on\r\n\
        a=extmap:0 bad\r\na=extmap:x urn:y\r\na=extmap:3\r\na=extmap:1 urn:duplicate\r\n\
        m=video 9 RTP/AVP 96\r\na=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n";
    let sdp = parse_sdp(text).unwrap();
    let ids: Vec<(u8, &str)> = sdp.extmaps.iter().map(|e| (e.id, e.uri.as_str())).collect();
    assert_eq!(ids, vec![(14, "urn:ietf:params:rtp-hdrext:toffset"), (1, AUDIO_LEVEL_URI)]);
    assert_eq!(sdp.audio_level_extension(), Some(1));
    let video = parse_sdp(&text.replace(
        "m=audio 9 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2",
        "m=video 9 RTP/AVP 96\r\na=rtpmap:96 VP8/90000",
    ))
    .unwrap();
    assert_eq!(video.audio_level_extension(), None, "only audio carries audio levels");
    let maps = [RtpMap::new(111, "opus", 48_000, Some(2), &[])];
    let extmap = ExtMap { id: 1, uri: AUDIO_LEVEL_URI.to_owned() };
    let written = write_sdp_with_extmaps(MediaKind::Audio, &maps, std::slice::from_ref(&extmap));
    assert!(written.ends_with("a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"), "{written}");
    assert_eq!(parse_sdp(&written).unwrap().extmaps, vec![extmap]);
    assert_eq!(write_sdp_with_extmaps(MediaKind::Audio, &maps, &[]), write_sdp(MediaKind::Audio, &maps));
    assert_eq!(parse_sdp(&write_sdp(MediaKind::Audio, &maps)).unwrap().audio_level_extension(), None);
}

#[test]
fn codec_names() {
    for codec in CODECS {
        assert_eq!(Codec::from_encoding_name(&codec.encoding_name().to_lowercase()), Some(codec));
        assert_eq!(Codec::from_mime_type(&codec.mime_type().to_uppercase()), Some(codec));
    }
    assert_eq!(Codec::Opus.media_kind(), MediaKind::Audio);
    assert_eq!(Codec::H264.media_kind(), MediaKind::Video);
    assert_eq!((Codec::Vp9.encoding_name(), Codec::Vp9.mime_type()), ("VP9", "video/VP9"));
    assert_eq!(Codec::from_encoding_name("rtx"), None);
    assert_eq!(Codec::from_mime_type("audio/PCMU"), None);
}

#[test]
fn errors_are_precise() {
    assert_eq!(parse_sdp("v=0\na=rtpmap:96 VP8/90000\n"), Err(SdpError::NoMediaLine));
    assert_eq!(parse_sdp("m=audio 1 RTP/AVP 0 8\n"), Err(SdpError::NoRtpmap { payload_types: vec![0, 8] }));
    let app = bad_line("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
    assert_eq!(app.0, 2);
    assert_eq!(app.1, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel");
    assert_eq!(app.2, "media `application` is not audio or video");
    assert_eq!(bad_line("m=video x RTP/AVP 96").2, "port `x` is not a number");
    assert_eq!(bad_line("m=video 9").2, "missing transport protocol");
    assert_eq!(bad_line("m=video 9 RTP/AVP").2, "no payload types");
    assert_eq!(bad_line("m=video 9 RTP/AVP 128").2, "payload type `128` is not a number in 0..=127");
    let cases = [
        ("a=rtpmap:96", "expected `<pt> <encoding>/<clock rate>`"),
        ("a=rtpmap:96 /90000", "empty encoding name"),
        ("a=rtpmap:96 VP8", "clock rate `` is not a positive number"),
        ("a=rtpmap:96 VP8/0", "clock rate `0` is not a positive number"),
        ("a=rtpmap:96 opus/48000/two", "channel count `two` is not a positive number"),
        ("a=rtpmap:96 opus/48000/2/1", "unexpected `/1` after the channel count"),
        ("a=rtpmap:96 VP8/90000\na=rtpmap:96 VP9/90000", "second rtpmap for payload type 96"),
        ("a=fmtp:x apt=1", "payload type `x` is not a number in 0..=127"),
    ];
    for (line, reason) in cases {
        let (n, _, r) = bad_line(&format!("m=video 9 RTP/AVP 96\n{line}"));
        assert_eq!((n >= 2, r.as_str()), (true, reason), "{line}");
    }
    let primary = |t: &str| parse_sdp(t).unwrap().primary().map(|p| p.codec);
    let err = primary("m=video 9 RTP/AVP 97\na=rtpmap:97 rtx/90000");
    assert_eq!(err, Err(SdpError::UnknownCodec { encodings: vec!["rtx".into()] }));
    let err = primary("m=audio 9 RTP/AVP 96\na=rtpmap:96 VP8/90000");
    assert_eq!(err, Err(SdpError::MediaMismatch { media: "audio", payload_type: 96, encoding_name: "VP8".into() }));
    assert_eq!(err.unwrap_err().to_string(), "SDP m= line is audio but payload type 96 is VP8");
}

#[test]
fn fuzz_parse_sdp_never_panics() {
    let mut state = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"m=a:rtpmfxe/ 0123456789\r\nVP8opusRTP;";
    for i in 0..20_000 {
        let mut bytes = CHROME_VIDEO.as_bytes().to_vec();
        if i % 3 == 0 {
            let len = next() % 120;
            bytes = (0..len).map(|_| alphabet[(next() as usize) % alphabet.len()]).collect();
        } else {
            for _ in 0..=next() % 6 {
                let at = (next() as usize) % bytes.len();
                bytes[at] = alphabet[(next() as usize) % alphabet.len()];
            }
        }
        if let Ok(sdp) = parse_sdp(&String::from_utf8_lossy(&bytes)) {
            let _ = (sdp.primary(), sdp.auxiliary_payload_types(), sdp.audio_level_extension());
        }
    }
}
