//! Minimal SDP parsing for the single-stream `.sdp` files that accompany each `.rtpdump`.
//!
//! Only the first `m=` section is used. `a=rtpmap`, `a=fmtp` and `a=extmap` (RFC 8285) lines are
//! read from the session level and from that section; everything else is ignored.

use thiserror::Error;

/// Errors from [`parse_sdp`] and [`SessionDescription::primary`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SdpError {
    /// No `m=` line at all.
    #[error("SDP has no m= line")]
    NoMediaLine,
    /// No `a=rtpmap` line for any payload type of the `m=` line.
    #[error("SDP has no a=rtpmap line for any payload type of its m= line ({payload_types:?})")]
    NoRtpmap { payload_types: Vec<u8> },
    /// A line that could not be parsed.
    #[error("SDP line {line_number} `{line}`: {reason}")]
    BadLine { line_number: usize, line: String, reason: String },
    /// No payload type of the `m=` line maps to a supported codec.
    #[error("SDP has no supported codec (OPUS, VP8, VP9, H264, AV1); found {encodings:?}")]
    UnknownCodec { encodings: Vec<String> },
    /// The primary codec belongs to the other media kind.
    #[error("SDP m= line is {media} but payload type {payload_type} is {encoding_name}")]
    MediaMismatch { media: &'static str, payload_type: u8, encoding_name: String },
    /// The rtpmap gives the codec a clock rate its RTP payload format does not allow.
    #[error(
        "SDP rtpmap clock rate {clock_rate_hz} of payload type {payload_type} ({encoding_name}): \
         {encoding_name} over RTP requires {required_hz}"
    )]
    WrongClockRate { payload_type: u8, encoding_name: String, clock_rate_hz: u32, required_hz: u32 },
}

/// Media kind of the `m=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `m=audio`.
    Audio,
    /// `m=video`.
    Video,
}

impl MediaKind {
    /// `"audio"` or `"video"`, as in the `m=` line.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// Media codecs tessera can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Opus audio.
    Opus,
    /// VP8 video.
    Vp8,
    /// VP9 video.
    Vp9,
    /// H.264 video.
    H264,
    /// AV1 video.
    Av1,
}

const CODECS: [Codec; 5] = [Codec::Opus, Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Av1];

impl Codec {
    /// How far the decoded media lags the RTP timestamps it was sent with. Opus: libopus's
    /// lookahead (2.5 ms + 4 ms of delay compensation, 312 samples at 48 kHz, the pre-skip an
    /// Ogg file would carry). libwebrtc stamps each packet with the capture time of the input
    /// it encoded and nothing in RTP carries a pre-skip, so the decoder's output starts 6.5 ms
    /// before the time its timestamp names.
    pub fn decoder_delay_ms(&self) -> f64 {
        match self {
            Codec::Opus => 6.5,
            _ => 0.0,
        }
    }

    /// Codec for an rtpmap encoding name, case-insensitively.
    pub fn from_encoding_name(name: &str) -> Option<Codec> {
        CODECS.into_iter().find(|c| c.encoding_name().eq_ignore_ascii_case(name))
    }

    /// Codec for a MIME type such as `video/VP8`, case-insensitively.
    pub fn from_mime_type(mime: &str) -> Option<Codec> {
        CODECS.into_iter().find(|c| c.mime_type().eq_ignore_ascii_case(mime))
    }

    /// Upper-case encoding name: `OPUS`, `VP8`, `VP9`, `H264`, `AV1`.
    pub fn encoding_name(&self) -> &'static str {
        match self {
            Codec::Opus => "OPUS",
            Codec::Vp8 => "VP8",
            Codec::Vp9 => "VP9",
            Codec::H264 => "H264",
            Codec::Av1 => "AV1",
        }
    }

    /// MIME type as Stream's metadata writes it, e.g. `audio/opus`, `video/VP8`.
    pub fn mime_type(&self) -> &'static str {
        match self {
            Codec::Opus => "audio/opus",
            Codec::Vp8 => "video/VP8",
            Codec::Vp9 => "video/VP9",
            Codec::H264 => "video/H264",
            Codec::Av1 => "video/AV1",
        }
    }

    /// The RTP clock rate the codec's payload format requires (RFC 7587 for Opus: 48 kHz
    /// whatever the sampling rate; 90 kHz for video).
    pub fn clock_rate_hz(&self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            _ => 90_000,
        }
    }

    /// Audio for Opus, video otherwise.
    pub fn media_kind(&self) -> MediaKind {
        match self {
            Codec::Opus => MediaKind::Audio,
            _ => MediaKind::Video,
        }
    }
}

/// One `a=rtpmap` line with the parameters of its `a=fmtp` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name as written (e.g. `opus`, `VP8`, `rtx`).
    pub encoding_name: String,
    /// RTP clock rate.
    pub clock_rate_hz: u32,
    /// Channel count (audio), if given.
    pub channels: Option<u32>,
    /// `a=fmtp` parameters for this payload type, in order; a bare key has an empty value.
    pub fmtp: Vec<(String, String)>,
}

/// The URI of the RFC 6464 client-to-mixer audio level header extension.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// One `a=extmap` line (RFC 8285): an RTP header extension and the local ID its packets use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtMap {
    /// The element ID in the packets (1..=14 one-byte, up to 255 two-byte).
    pub id: u8,
    /// The URI naming the extension, e.g. [`AUDIO_LEVEL_URI`].
    pub uri: String,
}

/// The parts of an SDP tessera needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// Media kind of the first `m=` line.
    pub media: MediaKind,
    /// Payload types of the `m=` line, in order.
    pub payload_types: Vec<u8>,
    /// rtpmaps for payload types on the `m=` line, in SDP order.
    pub rtpmaps: Vec<RtpMap>,
    /// Header extensions of the session level and the `m=` section, in SDP order.
    pub extmaps: Vec<ExtMap>,
}

/// The media stream to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimaryStream<'a> {
    /// Its codec.
    pub codec: Codec,
    /// Its rtpmap.
    pub rtpmap: &'a RtpMap,
}

/// Encodings that carry redundancy or retransmissions of the primary stream.
fn is_auxiliary(encoding: &str) -> bool {
    let e = encoding.to_ascii_lowercase();
    e == "rtx" || e == "red" || e == "ulpfec" || e.starts_with("flexfec")
}

impl SessionDescription {
    /// The first payload type of the `m=` line whose encoding is a supported media codec.
    pub fn primary(&self) -> Result<PrimaryStream<'_>, SdpError> {
        let rtpmap = self
            .payload_types
            .iter()
            .filter_map(|pt| self.rtpmap(*pt))
            .find(|map| Codec::from_encoding_name(&map.encoding_name).is_some());
        let Some((rtpmap, codec)) = rtpmap.and_then(|m| Some((m, Codec::from_encoding_name(&m.encoding_name)?))) else {
            let encodings =
                self.payload_types.iter().filter_map(|pt| self.rtpmap(*pt)).map(|m| m.encoding_name.clone()).collect();
            return Err(SdpError::UnknownCodec { encodings });
        };
        if codec.media_kind() != self.media {
            return Err(SdpError::MediaMismatch {
                media: self.media.as_str(),
                payload_type: rtpmap.payload_type,
                encoding_name: rtpmap.encoding_name.clone(),
            });
        }
        if rtpmap.clock_rate_hz != codec.clock_rate_hz() {
            return Err(SdpError::WrongClockRate {
                payload_type: rtpmap.payload_type,
                encoding_name: rtpmap.encoding_name.chars().take(32).collect(),
                clock_rate_hz: rtpmap.clock_rate_hz,
                required_hz: codec.clock_rate_hz(),
            });
        }
        Ok(PrimaryStream { codec, rtpmap })
    }

    /// Payload types (in `m=` order) of rtx, red, ulpfec and flexfec streams.
    pub fn auxiliary_payload_types(&self) -> Vec<u8> {
        self.payload_types
            .iter()
            .copied()
            .filter(|pt| self.rtpmap(*pt).is_some_and(|m| is_auxiliary(&m.encoding_name)))
            .collect()
    }

    /// The rtpmap of payload type `pt`, if any.
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|m| m.payload_type == pt)
    }

    /// The element ID of the RFC 6464 audio level extension ([`AUDIO_LEVEL_URI`]) in an audio
    /// description, if it maps one.
    pub fn audio_level_extension(&self) -> Option<u8> {
        if self.media != MediaKind::Audio {
            return None;
        }
        self.extmaps.iter().find(|e| e.uri.eq_ignore_ascii_case(AUDIO_LEVEL_URI)).map(|e| e.id)
    }
}

/// Parses an SDP. Tolerates `\r\n`, unknown and session-level lines; uses the first `m=`
/// section, which must be audio or video. An `a=extmap` line that cannot be read is passed
/// over (the extensions are optional).
pub fn parse_sdp(text: &str) -> Result<SessionDescription, SdpError> {
    let mut media: Option<(MediaKind, Vec<u8>)> = None;
    let mut rtpmaps: Vec<RtpMap> = Vec::new();
    let mut extmaps: Vec<ExtMap> = Vec::new();
    let mut fmtps: Vec<(u8, Vec<(String, String)>)> = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.trim_end_matches('\r').trim();
        let bad = |reason: String| SdpError::BadLine {
            line_number: index + 1,
            line: line.chars().take(200).collect(),
            reason,
        };
        if let Some(rest) = line.strip_prefix("m=") {
            if media.is_some() {
                break; // only the first media section is used
            }
            media = Some(parse_media_line(rest).map_err(bad)?);
        } else if let Some(rest) = line.strip_prefix("a=rtpmap:") {
            let map = parse_rtpmap(rest).map_err(bad)?;
            if rtpmaps.iter().any(|m| m.payload_type == map.payload_type) {
                let reason = format!("second rtpmap for payload type {}", map.payload_type);
                return Err(bad(reason));
            }
            rtpmaps.push(map);
        } else if let Some(rest) = line.strip_prefix("a=fmtp:") {
            fmtps.push(parse_fmtp(rest).map_err(bad)?);
        } else if let Some(extmap) = line.strip_prefix("a=extmap:").and_then(parse_extmap)
            && !extmaps.iter().any(|e| e.id == extmap.id)
        {
            extmaps.push(extmap);
        }
    }
    let (media, payload_types) = media.ok_or(SdpError::NoMediaLine)?;
    rtpmaps.retain(|m| payload_types.contains(&m.payload_type));
    if rtpmaps.is_empty() {
        return Err(SdpError::NoRtpmap { payload_types });
    }
    for (pt, params) in fmtps {
        if let Some(map) = rtpmaps.iter_mut().find(|m| m.payload_type == pt) {
            map.fmtp.extend(params);
        }
    }
    Ok(SessionDescription { media, payload_types, rtpmaps, extmaps })
}

/// `<id>[/<direction>] <uri> [<attributes>]`; `None` when the ID is not 1..=255 or the URI is
/// missing.
fn parse_extmap(rest: &str) -> Option<ExtMap> {
    let mut words = rest.split_whitespace();
    let value = words.next()?;
    let id_text = value.split('/').next()?;
    let id = id_text.parse::<u8>().ok().filter(|id| *id >= 1)?;
    let uri = words.next()?.to_owned();
    Some(ExtMap { id, uri })
}

fn parse_payload_type(text: &str) -> Result<u8, String> {
    match text.parse::<u8>() {
        Ok(pt) if pt <= 127 => Ok(pt),
        _ => Err(format!("payload type `{text}` is not a number in 0..=127")),
    }
}

/// `<media> <port>[/<count>] <proto> <fmt>...`
fn parse_media_line(rest: &str) -> Result<(MediaKind, Vec<u8>), String> {
    let mut words = rest.split_whitespace();
    let kind = match words.next() {
        Some("audio") => MediaKind::Audio,
        Some("video") => MediaKind::Video,
        other => {
            let found = other.unwrap_or("");
            return Err(format!("media `{found}` is not audio or video"));
        }
    };
    let port = words.next().unwrap_or("");
    let port_number = port.split('/').next().unwrap_or("");
    if port_number.parse::<u16>().is_err() {
        return Err(format!("port `{port}` is not a number"));
    }
    if words.next().is_none() {
        return Err("missing transport protocol".to_owned());
    }
    let payload_types = words.map(parse_payload_type).collect::<Result<Vec<_>, _>>()?;
    if payload_types.is_empty() {
        return Err("no payload types".to_owned());
    }
    Ok((kind, payload_types))
}

/// `<pt> <encoding>/<clock>[/<channels>]`
fn parse_rtpmap(rest: &str) -> Result<RtpMap, String> {
    let (pt, spec) = rest.trim().split_once(char::is_whitespace).ok_or("expected `<pt> <encoding>/<clock rate>`")?;
    let payload_type = parse_payload_type(pt)?;
    let mut parts = spec.trim().split('/');
    let encoding_name = parts.next().unwrap_or("").to_owned();
    if encoding_name.is_empty() {
        return Err("empty encoding name".to_owned());
    }
    let clock = parts.next().unwrap_or("");
    let clock_rate_hz = match clock.parse::<u32>() {
        Ok(hz) if hz > 0 => hz,
        _ => return Err(format!("clock rate `{clock}` is not a positive number")),
    };
    let channels = match parts.next() {
        None => None,
        Some(ch) => match ch.parse::<u32>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("channel count `{ch}` is not a positive number")),
        },
    };
    if let Some(extra) = parts.next() {
        return Err(format!("unexpected `/{extra}` after the channel count"));
    }
    Ok(RtpMap { payload_type, encoding_name, clock_rate_hz, channels, fmtp: Vec::new() })
}

/// `<pt> k=v;k=v`
fn parse_fmtp(rest: &str) -> Result<(u8, Vec<(String, String)>), String> {
    let rest = rest.trim();
    let (pt, params) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let params = params
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect();
    Ok((parse_payload_type(pt)?, params))
}

/// Writes a minimal SDP with one media section carrying `maps` (primary first, then any
/// rtx / red / ulpfec streams) that [`parse_sdp`] reads back.
pub fn write_sdp(kind: MediaKind, maps: &[RtpMap]) -> String {
    write_sdp_with_extmaps(kind, maps, &[])
}

/// [`write_sdp`] with an `a=extmap` line for each of `extmaps` after the rtpmaps (none: the
/// same text as [`write_sdp`]).
pub fn write_sdp_with_extmaps(kind: MediaKind, maps: &[RtpMap], extmaps: &[ExtMap]) -> String {
    let mut sdp = String::from("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=tessera\r\n");
    sdp.push_str("c=IN IP4 127.0.0.1\r\nt=0 0\r\n");
    let pts: Vec<String> = maps.iter().map(|m| m.payload_type.to_string()).collect();
    sdp.push_str(&format!("m={} 5000 RTP/AVP {}\r\n", kind.as_str(), pts.join(" ")));
    for map in maps {
        let pt = map.payload_type;
        sdp.push_str(&format!("a=rtpmap:{pt} {}/{}", map.encoding_name, map.clock_rate_hz));
        if let Some(ch) = map.channels {
            sdp.push_str(&format!("/{ch}"));
        }
        sdp.push_str("\r\n");
        if !map.fmtp.is_empty() {
            let params: Vec<String> =
                map.fmtp.iter().map(|(k, v)| if v.is_empty() { k.clone() } else { format!("{k}={v}") }).collect();
            sdp.push_str(&format!("a=fmtp:{pt} {}\r\n", params.join(";")));
        }
    }
    for extmap in extmaps {
        sdp.push_str(&format!("a=extmap:{} {}\r\n", extmap.id, extmap.uri));
    }
    sdp
}

impl RtpMap {
    /// An rtpmap line's contents with its fmtp parameters.
    pub fn new(
        payload_type: u8,
        encoding_name: &str,
        clock_rate_hz: u32,
        channels: Option<u32>,
        fmtp: &[(&str, &str)],
    ) -> RtpMap {
        RtpMap {
            payload_type,
            encoding_name: encoding_name.to_owned(),
            clock_rate_hz,
            channels,
            fmtp: fmtp.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
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
        let text = write_sdp(
            MediaKind::Audio,
            &[RtpMap { fmtp: fmtp.clone(), ..RtpMap::new(111, "opus", 48_000, Some(2), &[]) }],
        );
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
}
