//! Feeding a segment's RTP packets into a GStreamer `appsrc` as a clean stream: the media
//! packets in sequence order (see [`MediaPackets`]), video only as whole decodable frames
//! (see [`FrameGate`]), with one SSRC, contiguous sequence numbers and continuous timestamps,
//! each buffer timestamped from its RTP timestamp, followed by end of stream. Lost audio is
//! signalled to the decoder (GAP events) so it conceals it. Used by the decoder and the remuxer; a
//! dedicated thread runs it so the file streams through a bounded queue.

use std::sync::OnceLock;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::decode::DecodeSpec;
use crate::ingest::IngestError;
use crate::ingest::frames::FrameGate;
use crate::ingest::packets::{MAX_CONCEALED_MS, MediaPacket, PacketSource};
use crate::ingest::rtp::build_rtp;
use crate::ingest::sdp::{Codec, MediaKind};

/// The SSRC of the normalised stream.
const FEED_SSRC: u32 = 0x7e55_e7a0;

pub fn rtp_caps(spec: &DecodeSpec) -> gst::Caps {
    let media = match spec.codec.media_kind() {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    };
    let mut builder = gst::Caps::builder("application/x-rtp")
        .field("media", media)
        .field("encoding-name", spec.codec.encoding_name())
        .field("clock-rate", i32::try_from(spec.clock_rate_hz).unwrap_or(90_000))
        .field("payload", i32::from(spec.payload_type))
        .field("ssrc", FEED_SSRC);
    for (key, value) in &spec.fmtp {
        let key = key.to_ascii_lowercase();
        if matches!(key.as_str(), "sprop-parameter-sets" | "packetization-mode" | "profile-level-id") {
            builder = builder.field(key.as_str(), value.as_str());
        }
    }
    builder.build()
}

/// Streams the segment's `packets` into `src` and ends the stream. `first` receives the
/// extended RTP timestamp of the first packet pushed: buffer PTS count from it.
pub fn feed(
    spec: &DecodeSpec,
    packets: &mut dyn PacketSource,
    src: &gst_app::AppSrc,
    first: &OnceLock<i64>,
) -> Result<(), IngestError> {
    let result = feed_packets(spec, packets, src, first);
    let _ = src.end_of_stream();
    result
}

/// Writes the normalised stream into the appsrc.
struct Pusher<'a> {
    spec: &'a DecodeSpec,
    src: &'a gst_app::AppSrc,
    first: &'a OnceLock<i64>,
    next_sequence: u16,
    base_ticks: Option<i64>,
}

impl Pusher<'_> {
    /// Returns false once the pipeline is shutting down.
    fn push(&mut self, marker: bool, ticks: i64, payload: &[u8]) -> bool {
        let base = *self.base_ticks.get_or_insert_with(|| {
            let _ = self.first.set(ticks);
            ticks
        });
        let packet = build_rtp(marker, self.spec.payload_type, self.next_sequence, ticks as u32, FEED_SSRC, payload);
        self.next_sequence = self.next_sequence.wrapping_add(1);
        let ns = (ticks - base).max(0) as u128 * 1_000_000_000 / u128::from(self.spec.clock_rate_hz.max(1));
        let mut buffer = gst::Buffer::from_mut_slice(packet);
        if let Some(b) = buffer.get_mut() {
            let t = gst::ClockTime::from_nseconds(u64::try_from(ns).unwrap_or(u64::MAX));
            b.set_pts(t);
            b.set_dts(t);
        }
        self.src.push_buffer(buffer).is_ok()
    }

    /// Tells the decoder that `packet.lost_before` packets before `packet` are lost, with a
    /// GAP event in stream order: opusdec conceals exactly that span (PLC, or the next
    /// packet's in-band FEC when enabled), so the audio keeps its length and the gap is not a
    /// hole. Very long losses are concealed for their first [`MAX_CONCEALED_MS`] only; the
    /// rest stays silent on the timeline.
    fn signal_loss(&mut self, previous: &MediaPacket, packet: &MediaPacket) {
        let (Some(base), rate) = (self.base_ticks, i64::from(self.spec.clock_rate_hz.max(1))) else { return };
        let Some((start, duration)) = packet.missing_before(previous.ticks, MAX_CONCEALED_MS * rate / 1000) else {
            return;
        };
        let ns =
            |ticks: i64| gst::ClockTime::from_nseconds((ticks.max(0) as u128 * 1_000_000_000 / rate as u128) as u64);
        self.src.send_event(gst::event::Gap::builder(ns(start - base)).duration(ns(duration)).build());
    }
}

fn feed_packets(
    spec: &DecodeSpec,
    packets: &mut dyn PacketSource,
    src: &gst_app::AppSrc,
    first: &OnceLock<i64>,
) -> Result<(), IngestError> {
    let mut pusher = Pusher { spec, src, first, next_sequence: 1, base_ticks: None };
    if spec.codec.media_kind() == MediaKind::Video {
        let mut gate = FrameGate::new(spec.codec);
        while let Some(packet) = packets.next_packet()? {
            for frame in gate.push(packet) {
                if !frame.iter().all(|p| pusher.push(p.marker, p.ticks, &p.payload)) {
                    return Ok(());
                }
            }
        }
        return Ok(());
    }
    let mut previous: Option<MediaPacket> = None;
    while let Some(packet) = packets.next_packet()? {
        if let Some(prev) = previous.as_ref().filter(|_| spec.codec == Codec::Opus) {
            pusher.signal_loss(prev, &packet);
        }
        if !pusher.push(packet.marker, packet.ticks, &packet.payload) {
            return Ok(());
        }
        previous = Some(packet);
    }
    if let Some(last) = previous.filter(|_| spec.codec == Codec::Opus && uses_inband_fec(spec)) {
        // With in-band FEC opusdec decodes one packet late; a trailing empty frame (decoded
        // as nothing but flushing) releases the real last packet.
        let toc = last.payload.first().map_or(0, |toc| toc & 0xfc);
        pusher.push(false, last.ticks + 960 * i64::from(spec.clock_rate_hz) / 48_000, &[toc]);
    }
    Ok(())
}

/// The SDP's `useinbandfec=1`: the sender puts FEC for the previous packet into each packet.
pub fn uses_inband_fec(spec: &DecodeSpec) -> bool {
    spec.fmtp.iter().any(|(k, v)| k.eq_ignore_ascii_case("useinbandfec") && v == "1")
}
