//! Feeding a segment's RTP packets into a GStreamer `appsrc`: the packets of the primary
//! payload type, in sequence order (within a small reorder window), without duplicates,
//! timestamped from their RTP timestamps, followed by end of stream. Used by the decoder and
//! the remuxer; a dedicated thread runs it so the file streams through a bounded queue.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use gstreamer as gst;
use gstreamer_app as gst_app;

use super::decode::DecodeSpec;
use crate::ingest::packets::MediaPackets;
use crate::ingest::sdp::MediaKind;

/// How many packets the feeder holds back to put reordered packets in sequence.
const REORDER_WINDOW_PACKETS: usize = 64;

pub fn rtp_caps(spec: &DecodeSpec) -> gst::Caps {
    let media = match spec.codec.media_kind() {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    };
    let mut builder = gst::Caps::builder("application/x-rtp")
        .field("media", media)
        .field("encoding-name", spec.codec.encoding_name())
        .field("clock-rate", i32::try_from(spec.clock_rate_hz).unwrap_or(90_000))
        .field("payload", i32::from(spec.payload_type));
    for (key, value) in &spec.fmtp {
        let key = key.to_ascii_lowercase();
        if matches!(key.as_str(), "sprop-parameter-sets" | "packetization-mode" | "profile-level-id") {
            builder = builder.field(key.as_str(), value.as_str());
        }
    }
    builder.build()
}

/// Streams the segment's media packets into `src`, in sequence order within a small window,
/// without duplicates, and ends the stream.
pub fn feed(spec: &DecodeSpec, src: &gst_app::AppSrc, first: &OnceLock<u32>) -> Result<(), String> {
    let result = feed_packets(spec, src, first);
    let _ = src.end_of_stream();
    result
}

fn feed_packets(spec: &DecodeSpec, src: &gst_app::AppSrc, first: &OnceLock<u32>) -> Result<(), String> {
    let mut packets = MediaPackets::open(&spec.rtpdump_path, spec.payload_type).map_err(|e| e.to_string())?;
    let mut window: BTreeMap<i64, (i64, Vec<u8>)> = BTreeMap::new();
    let mut last_pushed_seq: Option<i64> = None;
    let mut first_ticks: Option<i64> = None;
    let mut push = |seq: i64, ticks: i64, packet: Vec<u8>, last: &mut Option<i64>| -> Result<bool, String> {
        if last.is_some_and(|l| seq <= l) {
            return Ok(true); // too late or duplicate
        }
        *last = Some(seq);
        let base = *first_ticks.get_or_insert_with(|| {
            let _ = first.set(ticks as u32);
            ticks
        });
        let ns = (ticks - base).max(0) as u128 * 1_000_000_000 / u128::from(spec.clock_rate_hz.max(1));
        let mut buffer = gst::Buffer::from_mut_slice(packet);
        if let Some(b) = buffer.get_mut() {
            let t = gst::ClockTime::from_nseconds(u64::try_from(ns).unwrap_or(u64::MAX));
            b.set_pts(t);
            b.set_dts(t);
        }
        Ok(src.push_buffer(buffer).is_ok())
    };
    while let Some(packet) = packets.next_packet().map_err(|e| e.to_string())? {
        window.entry(packet.sequence).or_insert((packet.ticks, packet.data));
        while window.len() > REORDER_WINDOW_PACKETS {
            let Some((seq, (ticks, packet))) = window.pop_first() else { break };
            if !push(seq, ticks, packet, &mut last_pushed_seq)? {
                return Ok(()); // the pipeline is shutting down
            }
        }
    }
    while let Some((seq, (ticks, packet))) = window.pop_first() {
        if !push(seq, ticks, packet, &mut last_pushed_seq)? {
            return Ok(());
        }
    }
    Ok(())
}
