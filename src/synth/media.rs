//! Making the media of a synthetic track: raw frames or samples generated here, encoded by real
//! GStreamer encoders, packetised by GStreamer's RTP payloaders, and streamed into an rtpdump.

use std::io::BufWriter;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer_app as gst_app;

use super::SynthError;
use super::plan::{BEEP_AMPLITUDE, BEEP_HZ, FLASH_RGB, SynthParticipant, TONE_AMPLITUDE};
use crate::ingest::rtp::parse_rtp;
use crate::ingest::rtpdump::RtpDumpWriter;
use crate::ingest::sdp::Codec;
use crate::media::pipeline::{OwnedPipeline, require_elements};

pub const AUDIO_PT: u8 = 111;
pub const AUDIO_FRAME_MS: u64 = 20;

/// What the payloader produced, for the timing metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackPackets {
    pub packets: u64,
    pub first_timestamp: u32,
    pub last_timestamp: u32,
    /// Media time of the last packet since the track's start.
    pub last_pts_ms: u64,
}

pub fn video_payload_type(codec: Codec) -> u8 {
    match codec {
        Codec::Vp8 => 96,
        Codec::Vp9 => 98,
        Codec::H264 => 102,
        Codec::Av1 => 45,
        Codec::Opus => AUDIO_PT,
    }
}

fn video_chain(codec: Codec, fps: u32) -> Result<(String, &'static str), SynthError> {
    let key = fps * 2;
    Ok(match codec {
        Codec::Vp8 => (
            format!("vp8enc deadline=1 cpu-used=8 keyframe-max-dist={key} target-bitrate=400000 ! rtpvp8pay"),
            "rtpvp8pay",
        ),
        Codec::Vp9 => (
            format!("vp9enc deadline=1 cpu-used=8 keyframe-max-dist={key} target-bitrate=400000 ! rtpvp9pay"),
            "rtpvp9pay",
        ),
        Codec::H264 => (
            format!(
                "x264enc tune=zerolatency speed-preset=ultrafast key-int-max={key} bitrate=400 ! video/x-h264,profile=constrained-baseline ! rtph264pay config-interval=-1 aggregate-mode=zero-latency"
            ),
            "rtph264pay",
        ),
        other => return Err(SynthError::UnsupportedCodec { codec: other.mime_type() }),
    })
}

/// Runs `appsrc ! <chain with a payloader named pay> ! appsink`, pushing what `produce` makes,
/// and writes every RTP packet into `rtpdump_path` at `start_ms` + its PTS.
fn run_track(
    chain: &str,
    caps: gst::Caps,
    rtpdump_path: &Path,
    start_unix_ms: i64,
    what: String,
    mut produce: impl FnMut(u64) -> Option<(Vec<u8>, u64, u64)>,
) -> Result<TrackPackets, SynthError> {
    let description =
        format!("appsrc name=src format=time block=true max-bytes=4000000 ! {chain} ! appsink name=sink sync=false");
    let pipeline = OwnedPipeline::launch(&description, what.clone())?;
    let src: gst_app::AppSrc = pipeline.element("src")?;
    let sink: gst_app::AppSink = pipeline.element("sink")?;
    src.set_caps(Some(&caps));
    let file = std::fs::File::create(rtpdump_path)
        .map_err(|source| SynthError::Io { path: rtpdump_path.to_path_buf(), source })?;
    let start_sec = u32::try_from(start_unix_ms.div_euclid(1000)).unwrap_or(0);
    let start_usec = u32::try_from(start_unix_ms.rem_euclid(1000) * 1000).unwrap_or(0);
    let writer =
        RtpDumpWriter::new(BufWriter::new(file), SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5000), start_sec, start_usec)
            .map_err(|e| SynthError::Write { path: rtpdump_path.to_path_buf(), reason: e.to_string() })?;
    let state = Arc::new(Mutex::new(DumpSink { writer: Some(writer), packets: None, error: None, first_pts_ms: None }));
    let sink_state = Arc::clone(&state);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let pts_ms = buffer.pts().map_or(0, |t| t.mseconds());
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                let mut guard = sink_state.lock().map_err(|_| gst::FlowError::Error)?;
                guard.write(pts_ms, map.as_slice()).map(|()| gst::FlowSuccess::Ok).map_err(|reason| {
                    guard.error = Some(reason);
                    gst::FlowError::Error
                })
            })
            .build(),
    );
    pipeline.play()?;
    let mut index = 0;
    while let Some((data, pts_ns, duration_ns)) = produce(index) {
        let mut buffer = gst::Buffer::from_mut_slice(data);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(pts_ns));
            b.set_duration(gst::ClockTime::from_nseconds(duration_ns));
        }
        if src.push_buffer(buffer).is_err() {
            break;
        }
        index += 1;
    }
    let _ = src.end_of_stream();
    pipeline.wait_eos(gst::ClockTime::from_seconds(600))?;
    drop(pipeline);
    let write_error = |reason: String| SynthError::Write { path: rtpdump_path.to_path_buf(), reason };
    let mut guard = state.lock().map_err(|_| write_error("writer lock poisoned".into()))?;
    if let Some(reason) = guard.error.take() {
        return Err(write_error(reason));
    }
    let packets = guard.packets.ok_or_else(|| write_error("the encoder produced no packets".into()))?;
    let writer = guard.writer.take().ok_or_else(|| write_error("writer already closed".into()))?;
    writer.finish().map_err(|e| write_error(e.to_string()))?;
    Ok(packets)
}

/// The rtpdump being written from the payloader's output, and what was seen so far.
struct DumpSink {
    writer: Option<RtpDumpWriter<BufWriter<std::fs::File>>>,
    packets: Option<TrackPackets>,
    error: Option<String>,
    /// Some encoders shift PTS (x264enc by 1000 h): time counts from the first packet.
    first_pts_ms: Option<u64>,
}

impl DumpSink {
    fn write(&mut self, raw_pts_ms: u64, packet: &[u8]) -> Result<(), String> {
        let info = parse_rtp(packet).map_err(|e| format!("payloader produced a bad RTP packet: {e}"))?;
        let pts_ms = raw_pts_ms.saturating_sub(*self.first_pts_ms.get_or_insert(raw_pts_ms));
        let writer = self.writer.as_mut().ok_or("writer already closed")?;
        writer.write_rtp(u32::try_from(pts_ms).unwrap_or(u32::MAX), packet).map_err(|e| e.to_string())?;
        let p = self.packets.get_or_insert(TrackPackets {
            packets: 0,
            first_timestamp: info.timestamp,
            last_timestamp: info.timestamp,
            last_pts_ms: 0,
        });
        p.packets += 1;
        p.last_timestamp = info.timestamp;
        p.last_pts_ms = pts_ms;
        Ok(())
    }
}

/// Writes the participant's camera track: its colour, white during flashes.
pub fn write_video(
    p: &SynthParticipant,
    width: u32,
    height: u32,
    fps: u32,
    call_start_unix_ms: i64,
    rtpdump_path: &Path,
) -> Result<TrackPackets, SynthError> {
    let (chain, payloader) = video_chain(p.video_codec, fps)?;
    let encoder = chain.split_whitespace().next().unwrap_or_default().to_owned();
    require_elements(&[encoder.as_str(), payloader])?;
    let chain = chain.replacen(
        payloader,
        &format!(
            "{payloader} name=pay pt={} ssrc={} timestamp-offset={} seqnum-offset=1000 mtu=1200",
            video_payload_type(p.video_codec),
            p.video_ssrc,
            p.video_rtp_base
        ),
        1,
    );
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", i32::try_from(width).unwrap_or(640))
        .field("height", i32::try_from(height).unwrap_or(360))
        .field("framerate", gst::Fraction::new(i32::try_from(fps).unwrap_or(30), 1))
        .field("colorimetry", "bt601")
        .build();
    let frame_count = (p.leave_ms - p.video_start_ms) * u64::from(fps) / 1000;
    let (normal, flash) = (i420_solid(p.rgb, width, height), i420_solid(FLASH_RGB, width, height));
    let participant = p.clone();
    run_track(
        &chain,
        caps,
        rtpdump_path,
        call_start_unix_ms + p.video_start_ms as i64,
        format!("synth video {}", p.participant_id),
        move |n| {
            if n >= frame_count {
                return None;
            }
            let pts_ns = n * 1_000_000_000 / u64::from(fps);
            let next_ns = (n + 1) * 1_000_000_000 / u64::from(fps);
            let t_ms = participant.video_start_ms as f64 + pts_ns as f64 / 1e6;
            let frame = if participant.flashing_at(t_ms) { flash.clone() } else { normal.clone() };
            Some((frame, pts_ns, next_ns - pts_ns))
        },
    )
}

/// Writes the participant's microphone track: its tone, with a loud beep during flashes.
pub fn write_audio(
    p: &SynthParticipant,
    call_start_unix_ms: i64,
    rtpdump_path: &Path,
) -> Result<TrackPackets, SynthError> {
    require_elements(&["opusenc", "rtpopuspay", "audioconvert"])?;
    let chain = format!(
        "audioconvert ! opusenc frame-size={AUDIO_FRAME_MS} bitrate=64000 ! rtpopuspay name=pay pt={AUDIO_PT} ssrc={} timestamp-offset={} seqnum-offset=2000",
        p.audio_ssrc, p.audio_rtp_base
    );
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", "F32LE")
        .field("rate", 48_000)
        .field("channels", 1)
        .field("layout", "interleaved")
        .build();
    let chunk = 960_u64; // 20 ms
    // Whole packets only, so the track ends exactly where its last packet does.
    let total = (p.leave_ms - p.audio_start_ms) / AUDIO_FRAME_MS * chunk;
    let participant = p.clone();
    run_track(
        &chain,
        caps,
        rtpdump_path,
        call_start_unix_ms + p.audio_start_ms as i64,
        format!("synth audio {}", p.participant_id),
        move |n| {
            let first = n * chunk;
            if first >= total {
                return None;
            }
            let count = chunk.min(total - first);
            let mut bytes = Vec::with_capacity(count as usize * 4);
            for s in first..first + count {
                let t_s = s as f64 / 48_000.0;
                let t_ms = participant.audio_start_ms as f64 + t_s * 1000.0;
                let mut v = TONE_AMPLITUDE * (2.0 * std::f64::consts::PI * participant.tone_hz * t_s).sin() as f32;
                if participant.flashing_at(t_ms) {
                    v += BEEP_AMPLITUDE * (2.0 * std::f64::consts::PI * BEEP_HZ * t_s).sin() as f32;
                }
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            Some((bytes, first * 1_000_000_000 / 48_000, count * 1_000_000_000 / 48_000))
        },
    )
}

/// A solid-colour I420 frame (BT.601 limited range).
fn i420_solid(rgb: [u8; 3], width: u32, height: u32) -> Vec<u8> {
    let [r, g, b] = rgb.map(f32::from);
    let y = (16.0 + 0.257 * r + 0.504 * g + 0.098 * b).round() as u8;
    let u = (128.0 - 0.148 * r - 0.291 * g + 0.439 * b).round() as u8;
    let v = (128.0 + 0.439 * r - 0.368 * g - 0.071 * b).round() as u8;
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut data = vec![y; w * h];
    data.extend(std::iter::repeat_n(u, cw * ch));
    data.extend(std::iter::repeat_n(v, cw * ch));
    data
}
