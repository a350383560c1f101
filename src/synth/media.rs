//! Making the media of a synthetic track: raw frames or samples generated here, encoded by real
//! GStreamer encoders, packetised by GStreamer's RTP payloaders, and streamed into an rtpdump.

use std::io::BufWriter;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer_app as gst_app;

use super::SynthError;
use super::impair::{Impairer, Impairments};
use super::plan::{BEEP_AMPLITUDE, BEEP_HZ, COUGH_AMPLITUDE, FLASH_RGB, SplitMix, SynthParticipant, TONE_AMPLITUDE};
use crate::audio::level::rms;
use crate::ingest::audio_level::AudioLevel;
use crate::ingest::rtp::{parse_rtp, with_one_byte_extension};
use crate::ingest::rtpdump::RtpDumpWriter;
use crate::ingest::sdp::Codec;
use crate::media::pipeline::{OwnedPipeline, require_elements};

pub const AUDIO_PT: u8 = 111;
pub const AUDIO_FRAME_MS: u64 = 20;

/// What the payloader produced, for the timing metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackPackets {
    pub packets: u64,
    pub first_timestamp: u32,
    pub last_timestamp: u32,
    /// Arrival times of the first and last packets written, ms after the segment's start (the
    /// capture time of its first media).
    pub first_arrival_ms: u64,
    pub last_arrival_ms: u64,
    /// When the last packet written left the sender, ms after the segment's start.
    pub last_sent_ms: u64,
    /// Capture times (ms after the segment's start) of the packets the network lost.
    pub lost_ms: Vec<u64>,
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

/// One raw buffer for the encoder; `caps` when the format changes from this buffer on.
pub struct Produced {
    pub data: Vec<u8>,
    pub pts_ns: u64,
    pub duration_ns: u64,
    pub caps: Option<gst::Caps>,
}

/// How a track's packets reach the rtpdump.
pub struct DumpOptions {
    pub start_unix_ms: i64,
    /// The sender's clock runs this fast: media time t arrives at wall time t / (1 + ppm).
    pub drift_ppm: f64,
    /// Packets with a media time before this are not written (a segment starting mid-GOP).
    pub skip_before_ms: u64,
    pub impairments: Impairments,
    /// The path from sender to recorder: every packet arrives this much after its capture,
    /// plus a random 0..=`jitter_ms` (first in, first out: a packet never overtakes another).
    pub delay_ms: u32,
    pub jitter_ms: u32,
    /// Added to every RTP timestamp of a 48 kHz audio track (see [`WEBRTC_OPUS_SHIFT_TICKS`]).
    pub timestamp_shift_ticks: u32,
    /// Audio packets carry their level in an RFC 6464 header extension.
    pub audio_levels: Option<AudioLevels>,
}

/// The level of each 20 ms frame of an audio track as it is made, for the RFC 6464 header
/// extension of the packet that carries it.
#[derive(Debug, Clone)]
pub struct AudioLevels {
    ext_id: u8,
    /// One per frame pushed to the encoder, in order (made before the packet leaves it).
    frames: Arc<Mutex<Vec<AudioLevel>>>,
}

impl AudioLevels {
    pub fn new(ext_id: u8) -> AudioLevels {
        AudioLevels { ext_id, frames: Arc::new(Mutex::new(Vec::new())) }
    }

    /// Notes the level of the next frame of samples.
    fn push(&self, samples: &[f32]) {
        let level = rms(samples);
        // Louder than -40 dBov is voice: a talking or beeping microphone.
        let level = AudioLevel::from_rms(level, level > 0.01);
        if let Ok(mut frames) = self.frames.lock() {
            frames.push(level);
        }
    }

    /// `packet` (media time `pts_ns` from the track's start) with the level of its frame.
    fn mark(&self, pts_ns: u64, packet: &[u8]) -> Result<Vec<u8>, String> {
        let frame = ((pts_ns + AUDIO_FRAME_MS * 500_000) / (AUDIO_FRAME_MS * 1_000_000)) as usize;
        let level = {
            let frames = self.frames.lock().map_err(|_| "audio level lock poisoned".to_owned())?;
            frames.get(frame).or(frames.last()).copied()
        };
        let level = level.unwrap_or(AudioLevel::from_rms(0.0, false));
        with_one_byte_extension(packet, &[(self.ext_id, &[level.to_byte()])])
            .ok_or_else(|| "cannot add the audio level extension to a payloader packet".to_owned())
    }
}

/// How far a libwebrtc sender's Opus RTP timestamps lie after GStreamer's: libwebrtc stamps a
/// packet with the capture time of the input frame it encoded, so its decoded audio plays
/// libopus's lookahead (312 samples at 48 kHz, 6.5 ms) late against its timestamps (and its
/// sender reports); GStreamer's encoder stamps its output that much earlier, so its decoded
/// audio lines up with them. Synthetic senders are libwebrtc-like: their audio timestamps,
/// send times and sender reports are those of the capture 6.5 ms after the decoded audio.
const WEBRTC_OPUS_SHIFT_TICKS: u32 = 312;

/// The shift [`WEBRTC_OPUS_SHIFT_TICKS`] a libwebrtc-like sender of `codec` puts on its
/// timestamps (none for video).
pub fn stamp_shift_ticks(codec: Codec) -> u32 {
    if codec == Codec::Opus { WEBRTC_OPUS_SHIFT_TICKS } else { 0 }
}

/// Runs `appsrc ! <chain with a payloader named pay> ! appsink`, pushing what `produce` makes,
/// and writes every RTP packet into `rtpdump_path` at its arrival time (see [`DumpOptions`]).
fn run_track(
    chain: &str,
    caps: gst::Caps,
    rtpdump_path: &Path,
    options: DumpOptions,
    what: String,
    mut produce: impl FnMut(u64) -> Option<Produced>,
) -> Result<TrackPackets, SynthError> {
    let start_unix_ms = options.start_unix_ms;
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
    let state = Arc::new(Mutex::new(DumpSink {
        writer: Some(writer),
        packets: None,
        error: None,
        first_pts_ns: None,
        impairer: Some(Impairer::new(&options.impairments)).filter(|i| !i.is_identity()),
        clock_scale: 1.0 + options.drift_ppm * 1e-6,
        skip_before_ns: options.skip_before_ms * 1_000_000,
        path: NetworkPath {
            delay_ms: options.delay_ms,
            jitter_ms: options.jitter_ms,
            rng: SplitMix::new(options.impairments.seed ^ 0x6a09_e667_f3bc_c908),
            last_arrival_ms: 0,
        },
        timestamp_shift_ticks: options.timestamp_shift_ticks,
        audio_levels: options.audio_levels,
    }));
    let sink_state = Arc::clone(&state);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let pts_ns = buffer.pts().map_or(0, |t| t.nseconds());
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                let mut guard = sink_state.lock().map_err(|_| gst::FlowError::Error)?;
                guard.write(pts_ns, map.as_slice()).map(|()| gst::FlowSuccess::Ok).map_err(|reason| {
                    guard.error = Some(reason);
                    gst::FlowError::Error
                })
            })
            .build(),
    );
    pipeline.play()?;
    let mut index = 0;
    while let Some(produced) = produce(index) {
        let mut buffer = gst::Buffer::from_mut_slice(produced.data);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(produced.pts_ns));
            b.set_duration(gst::ClockTime::from_nseconds(produced.duration_ns));
        }
        // A format change travels with its first buffer, in order.
        let pushed = match produced.caps {
            Some(caps) => src.push_sample(&gst::Sample::builder().buffer(&buffer).caps(&caps).build()),
            None => src.push_buffer(buffer),
        };
        if pushed.is_err() {
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
    guard.flush().map_err(write_error)?;
    let packets = guard.packets.take().ok_or_else(|| write_error("the encoder produced no packets".into()))?;
    let writer = guard.writer.take().ok_or_else(|| write_error("writer already closed".into()))?;
    writer.finish().map_err(|e| write_error(e.to_string()))?;
    Ok(packets)
}

/// The rtpdump being written from the payloader's output, and what was seen so far.
struct DumpSink {
    writer: Option<RtpDumpWriter<BufWriter<std::fs::File>>>,
    packets: Option<TrackPackets>,
    error: Option<String>,
    /// Some encoders shift PTS (x264enc by 1000 h): time counts from the first buffer.
    first_pts_ns: Option<u64>,
    /// `None` when the network changes nothing.
    impairer: Option<Impairer>,
    /// 1 + drift: media time / this = wall time.
    clock_scale: f64,
    skip_before_ns: u64,
    path: NetworkPath,
    timestamp_shift_ticks: u32,
    audio_levels: Option<AudioLevels>,
}

/// The delay and jitter between capture and the recorder.
struct NetworkPath {
    delay_ms: u32,
    jitter_ms: u32,
    rng: SplitMix,
    /// Packets leave the path in the order they entered it.
    last_arrival_ms: u32,
}

impl NetworkPath {
    fn arrival_ms(&mut self, sent_ms: u32) -> u32 {
        let jitter_ms = if self.jitter_ms == 0 { 0 } else { self.rng.next_u32() % (self.jitter_ms + 1) };
        let arrival_ms = sent_ms.saturating_add(self.delay_ms).saturating_add(jitter_ms).max(self.last_arrival_ms);
        self.last_arrival_ms = arrival_ms;
        arrival_ms
    }
}

impl DumpSink {
    fn write(&mut self, raw_pts_ns: u64, packet: &[u8]) -> Result<(), String> {
        let pts_ns = raw_pts_ns.saturating_sub(*self.first_pts_ns.get_or_insert(raw_pts_ns));
        if pts_ns < self.skip_before_ns {
            return Ok(());
        }
        // A libwebrtc-like stamp names a capture time `timestamp_shift` later, and the packet
        // leaves then.
        let shift_ms = f64::from(self.timestamp_shift_ticks) / 48.0;
        let wall_ms = (pts_ns - self.skip_before_ns) as f64 / 1e6 / self.clock_scale + shift_ms;
        let sent_ms = u32::try_from(wall_ms.round() as u64).unwrap_or(u32::MAX);
        let mut packet = packet.to_vec();
        if self.timestamp_shift_ticks != 0
            && let Some(field) = packet.get_mut(4..8)
        {
            let ts = u32::from_be_bytes([field[0], field[1], field[2], field[3]]);
            field.copy_from_slice(&ts.wrapping_add(self.timestamp_shift_ticks).to_be_bytes());
        }
        if let Some(levels) = &self.audio_levels {
            packet = levels.mark(pts_ns, &packet)?;
        }
        match self.impairer.as_mut() {
            Some(impairer) => {
                let out = impairer.push(sent_ms, &packet)?;
                self.write_out(out)
            }
            None => self.write_out(vec![(sent_ms, packet)]),
        }
    }

    fn flush(&mut self) -> Result<(), String> {
        let out = self.impairer.as_mut().map(Impairer::finish).unwrap_or_default();
        self.write_out(out)?;
        let lost_ms = self.impairer.as_ref().map(|i| i.lost_ms().iter().map(|ms| u64::from(*ms)).collect());
        if let (Some(packets), Some(lost_ms)) = (self.packets.as_mut(), lost_ms) {
            packets.lost_ms = lost_ms;
        }
        Ok(())
    }

    /// Writes packets leaving the sender (and the impairments) at `sent_ms` into the dump at
    /// their arrival times.
    fn write_out(&mut self, packets: Vec<(u32, Vec<u8>)>) -> Result<(), String> {
        let writer = self.writer.as_mut().ok_or("writer already closed")?;
        for (sent_ms, packet) in packets {
            let arrival_ms = self.path.arrival_ms(sent_ms);
            let info = parse_rtp(&packet).map_err(|e| format!("payloader produced a bad RTP packet: {e}"))?;
            writer.write_rtp(arrival_ms, &packet).map_err(|e| e.to_string())?;
            let p = self.packets.get_or_insert(TrackPackets {
                packets: 0,
                first_timestamp: info.timestamp,
                last_timestamp: info.timestamp,
                first_arrival_ms: u64::from(arrival_ms),
                last_arrival_ms: 0,
                last_sent_ms: 0,
                lost_ms: Vec::new(),
            });
            p.packets += 1;
            p.last_timestamp = info.timestamp;
            p.last_arrival_ms = u64::from(arrival_ms);
            p.last_sent_ms = u64::from(sent_ms);
        }
        Ok(())
    }
}

/// What a track shows or plays besides the participant's flashes: its camera and microphone,
/// or its screenshare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    pub rgb: [u8; 3],
    pub tone_hz: f64,
    /// Frames turn portrait from this call time.
    pub rotate_at_ms: Option<u64>,
    /// Audio beeps during the participant's flashes.
    pub beeps: bool,
    /// Audio follows the participant's talk schedule and coughs (the microphone).
    pub talks: bool,
}

/// One media segment of a track: its call-time span and how it reaches the dump.
pub struct SegmentJob<'a> {
    pub participant: &'a SynthParticipant,
    pub ssrc: u32,
    pub look: Look,
    pub from_ms: u64,
    pub to_ms: u64,
    pub rtp_base: u32,
    pub sequence_base: u16,
    pub options: DumpOptions,
}

/// Writes one segment of a video track: its colour with a moving dark bar in the top quarter
/// (so a decoder fed broken references shows it), white during the participant's flashes,
/// portrait from its rotation on.
pub fn write_video(
    job: SegmentJob<'_>,
    width: u32,
    height: u32,
    fps: u32,
    rtpdump_path: &Path,
) -> Result<TrackPackets, SynthError> {
    let p = job.participant;
    let (chain, payloader) = video_chain(p.video_codec, fps)?;
    let encoder = chain.split_whitespace().next().unwrap_or_default().to_owned();
    require_elements(&[encoder.as_str(), payloader])?;
    let chain = chain.replacen(
        payloader,
        &format!(
            "{payloader} name=pay pt={} ssrc={} timestamp-offset={} seqnum-offset={} mtu=1200",
            video_payload_type(p.video_codec),
            job.ssrc,
            job.rtp_base,
            job.sequence_base
        ),
        1,
    );
    let caps_for = |w: u32, h: u32| {
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", i32::try_from(w).unwrap_or(640))
            .field("height", i32::try_from(h).unwrap_or(360))
            .field("framerate", gst::Fraction::new(i32::try_from(fps).unwrap_or(30), 1))
            .field("colorimetry", "bt601")
            .build()
    };
    let scale = 1.0 + job.options.drift_ppm * 1e-6;
    let skip_ms = job.options.skip_before_ms;
    // Media time covers the wall-clock span (plus any skipped lead) at the sender's clock.
    let frame_count = (((job.to_ms - job.from_ms) as f64 * scale + skip_ms as f64) * f64::from(fps) / 1000.0) as u64;
    let (from_ms, look, participant) = (job.from_ms, job.look, p.clone());
    let mut portrait_sent = false;
    run_track(
        &chain,
        caps_for(width, height),
        rtpdump_path,
        job.options,
        format!("synth video {}", p.participant_id),
        move |n| {
            if n >= frame_count {
                return None;
            }
            let pts_ns = n * 1_000_000_000 / u64::from(fps);
            let next_ns = (n + 1) * 1_000_000_000 / u64::from(fps);
            let media_ms = pts_ns as f64 / 1e6 - skip_ms as f64;
            let t_ms = from_ms as f64 + media_ms / scale;
            let portrait = look.rotate_at_ms.is_some_and(|r| t_ms >= r as f64);
            let (w, h) = if portrait { (height, width) } else { (width, height) };
            let rgb = if participant.flashing_at(t_ms) { FLASH_RGB } else { look.rgb };
            let mut frame = i420_solid(rgb, w, h);
            draw_bar(&mut frame, w, h, n, fps);
            let caps = (portrait && !portrait_sent).then(|| caps_for(w, h));
            portrait_sent |= portrait;
            Some(Produced { data: frame, pts_ns, duration_ns: next_ns - pts_ns, caps })
        },
    )
}

/// A dark bar, a tenth of the width, crossing the top quarter once every two seconds.
fn draw_bar(frame: &mut [u8], width: u32, height: u32, n: u64, fps: u32) {
    let (w, h) = (width as usize, height as usize);
    let (stride, _) = i420_strides(width);
    let bar = (w / 10).max(2);
    let period = u64::from(fps.max(1)) * 2;
    let x0 = ((n % period) as usize * w) / period as usize;
    for y in 0..h / 4 {
        for x in x0..(x0 + bar).min(w) {
            if let Some(px) = frame.get_mut(y * stride + x) {
                *px = 16;
            }
        }
    }
}

/// Writes one segment of an audio track: its tone (only while the participant speaks when the
/// call uses DTX; at the talk schedule's levels when the call has one), with a loud beep
/// during flashes if the track beeps and a burst during coughs if it talks.
pub fn write_audio(job: SegmentJob<'_>, dtx: bool, rtpdump_path: &Path) -> Result<TrackPackets, SynthError> {
    require_elements(&["opusenc", "rtpopuspay", "audioconvert"])?;
    let p = job.participant;
    let dtx_flag = if dtx { "true" } else { "false" };
    let chain = format!(
        "audioconvert ! opusenc frame-size={AUDIO_FRAME_MS} bitrate=64000 dtx={dtx_flag} inband-fec=true packet-loss-percentage=10 ! rtpopuspay name=pay pt={AUDIO_PT} ssrc={} timestamp-offset={} seqnum-offset={} dtx={dtx_flag}",
        job.ssrc, job.rtp_base, job.sequence_base
    );
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", "F32LE")
        .field("rate", 48_000)
        .field("channels", 1)
        .field("layout", "interleaved")
        .build();
    let chunk = 960_u64; // 20 ms
    let scale = 1.0 + job.options.drift_ppm * 1e-6;
    // Whole packets only, so the track ends exactly where its last packet does.
    let total = ((job.to_ms - job.from_ms) as f64 * scale) as u64 / AUDIO_FRAME_MS * chunk;
    let (from_ms, look, participant) = (job.from_ms, job.look, p.clone());
    let levels = job.options.audio_levels.clone();
    let talk_schedule = look.talks && p.talk_ms.is_some();
    let coughs = look.talks && !p.coughs_ms.is_empty();
    run_track(&chain, caps, rtpdump_path, job.options, format!("synth audio {}", p.participant_id), move |n| {
        let first = n * chunk;
        if first >= total {
            return None;
        }
        let count = chunk.min(total - first);
        let mut bytes = Vec::with_capacity(count as usize * 4);
        let mut samples = Vec::with_capacity(if levels.is_some() { count as usize } else { 0 });
        for s in first..first + count {
            let t_s = s as f64 / 48_000.0 / scale;
            let t_ms = from_ms as f64 + t_s * 1000.0;
            let tone = (2.0 * std::f64::consts::PI * look.tone_hz * t_s).sin() as f32;
            let mut v = 0.0;
            if talk_schedule {
                v = participant.talk_amplitude(t_ms, dtx) * tone;
            } else if participant.speaking_at(t_ms, dtx) {
                v = TONE_AMPLITUDE * tone;
            }
            if look.beeps && participant.flashing_at(t_ms) {
                v += BEEP_AMPLITUDE * (2.0 * std::f64::consts::PI * BEEP_HZ * t_s).sin() as f32;
            }
            if coughs && participant.coughing_at(t_ms) {
                v += COUGH_AMPLITUDE * (4.0 * std::f64::consts::PI * look.tone_hz * t_s).sin() as f32;
            }
            if talk_schedule || coughs {
                v = v.clamp(-1.0, 1.0);
            }
            if levels.is_some() {
                samples.push(v);
            }
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(levels) = &levels {
            levels.push(&samples);
        }
        Some(Produced {
            data: bytes,
            pts_ns: first * 1_000_000_000 / 48_000,
            duration_ns: count * 1_000_000_000 / 48_000,
            caps: None,
        })
    })
}

/// A solid-colour I420 frame (BT.601 limited range), in GStreamer's default layout.
fn i420_solid(rgb: [u8; 3], width: u32, height: u32) -> Vec<u8> {
    let [r, g, b] = rgb.map(f32::from);
    let y = (16.0 + 0.257 * r + 0.504 * g + 0.098 * b).round() as u8;
    let u = (128.0 - 0.148 * r - 0.291 * g + 0.439 * b).round() as u8;
    let v = (128.0 + 0.439 * r - 0.368 * g - 0.071 * b).round() as u8;
    let (y_stride, chroma_stride) = i420_strides(width);
    let (h, ch) = (height as usize, (height as usize).div_ceil(2));
    let mut data = vec![y; y_stride * h];
    data.extend(std::iter::repeat_n(u, chroma_stride * ch));
    data.extend(std::iter::repeat_n(v, chroma_stride * ch));
    data
}

/// GStreamer's default I420 layout: rows padded to a multiple of 4 bytes.
fn i420_strides(width: u32) -> (usize, usize) {
    let round4 = |n: usize| n.div_ceil(4) * 4;
    (round4(width as usize), round4((width as usize).div_ceil(2)))
}
