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
#[path = "sdp_tests.rs"]
mod tests;
