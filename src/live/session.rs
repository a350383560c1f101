//! One PushMedia stream: a sender's track of a live job. The hello names the job and the
//! track; each picture or PCM chunk after it is checked (`frame`, `pcm`), placed on the call
//! clock from its capture timestamp (the call's clock for the sender's clock domain smooths
//! jitter, drift and jumps: `LiveCall::place`), and queued for the job's live pass. A stream
//! sending more than 60 pictures a second or audio faster than 1.1x real time, or whose track's
//! queue is full, waits before it reads the next message: a sender faster than real time is
//! slowed by gRPC flow control, never buffered without bound, and its excess costs no CPU. Bad
//! media ends this stream with an error naming the field and value; the job and the other
//! senders carry on.

use std::sync::Arc;

use tokio::task::block_in_place;
use tokio_stream::{Stream, StreamExt};

use super::LiveError;
use super::frame::{PixelFormat, PushedFrame, picture};
use super::pcm::{PushedPcm, SampleFormat, stereo_samples};
use crate::audio::DriftResampler;
use crate::error::{Classify, Fault};
use crate::ingest::TrackKind;
use crate::job::limits::hello_lengths;
use crate::job::live_control::LiveControlError;
use crate::job::scheduler::Scheduler;
use crate::job::spec::InvalidJob;
use crate::media::decode::{AUDIO_RATE_HZ, VideoFrame};
use crate::proto as pb;
use crate::render::live::{LiveCall, LiveTrackInfo, TrackSender};
use crate::render::source::PlacedAudio;
use crate::timeline::Stamped;

/// Consecutive audio chunks placed up to this much after where the previous one ended continue
/// it sample for sample (no click, no gap): the clock's offset rises slowly (a path that got
/// slower, a sender clock a little slow). Further off, the track is placed anew.
const AUDIO_CONTINUITY_MS: f64 = 40.0;
/// A sender waits this long at most for the call's clock to start (its pass starting the
/// encoders) before its stream is refused.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// A stream may send at most this many pictures a second on average (with a second's burst):
/// a sender faster than that waits, through flow control, and its pictures cost no more CPU.
const MAX_PICTURES_PER_S: f64 = 60.0;
/// A stream may send audio at most this much faster than real time (with 2 s of burst).
const MAX_AUDIO_SPEED: f64 = 1.1;

/// A budget refilled at a steady rate: what a stream may send by now.
pub struct Pace {
    started: std::time::Instant,
    per_s: f64,
    burst: f64,
    used: f64,
}

impl Pace {
    fn new(per_s: f64, burst: f64) -> Pace {
        Pace { started: std::time::Instant::now(), per_s, burst, used: 0.0 }
    }

    /// The pace of a video stream's pictures.
    pub fn pictures() -> Pace {
        Pace::new(MAX_PICTURES_PER_S, MAX_PICTURES_PER_S)
    }

    /// The pace of an audio stream's sample frames.
    pub fn audio() -> Pace {
        let rate = f64::from(AUDIO_RATE_HZ);
        Pace::new(rate * MAX_AUDIO_SPEED, 2.0 * rate)
    }

    /// Spends `amount`; returns how long to wait first so that it fits the budget.
    pub fn spend(&mut self, amount: f64) -> std::time::Duration {
        let allowed = self.started.elapsed().as_secs_f64() * self.per_s + self.burst;
        let over = self.used + amount - allowed;
        self.used += amount;
        std::time::Duration::from_secs_f64(over.max(0.0) / self.per_s)
    }
}

/// Rates a live track may be sent at: 48 kHz as it is, the others converted by the drift
/// resampler's cubic interpolation (ratios 0.5 to 2; no anti-alias filter, so content above
/// 24 kHz of a 96 kHz sender folds down).
const RESAMPLED_RATES_HZ: std::ops::RangeInclusive<u32> = 24_000..=96_000;

/// A chunk placed this much before where the previous one ended is placed anew: the clock has
/// found a faster path (its offset drops at once, mostly within a stream's first second), so
/// what came before was placed late.
const AUDIO_EARLY_MS: f64 = 3.0;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("the first message must be a hello naming the job and the track")]
    NoHello,
    #[error("a second hello: a stream carries one track")]
    SecondHello,
    #[error("hello.{field}: {reason}")]
    BadHello { field: &'static str, reason: String },
    #[error(transparent)]
    TooLong(#[from] InvalidJob),
    #[error("{got} on a {kind} track")]
    WrongMedium { got: &'static str, kind: &'static str },
    #[error(transparent)]
    Media(#[from] LiveError),
    #[error(transparent)]
    Control(#[from] LiveControlError),
    #[error("live job `{id}`: {source}")]
    Call {
        id: String,
        #[source]
        source: crate::render::live::LiveError,
    },
    #[error("the stream failed: {0}")]
    Stream(tonic::Status),
    #[error("live job `{id}`: its call did not start within {waited_s} s")]
    NotStarted { id: String, waited_s: u64 },
}

impl Classify for PushError {
    fn fault(&self) -> Fault {
        match self {
            PushError::NoHello
            | PushError::SecondHello
            | PushError::BadHello { .. }
            | PushError::WrongMedium { .. }
            | PushError::Media(_) => Fault::BadInput("bad_media"),
            PushError::TooLong(err) => err.fault(),
            PushError::Control(err) => err.fault(),
            PushError::Call { .. } => Fault::Precondition,
            PushError::Stream(_) => Fault::Unavailable("stream"),
            PushError::NotStarted { .. } => Fault::Unavailable("not_started"),
        }
    }
}

/// What one stream delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    pub frames: u64,
    pub chunks: u64,
    pub bytes: u64,
    pub clock_jumps: u32,
}

impl From<Delivered> for pb::PushMediaResponse {
    fn from(d: Delivered) -> Self {
        pb::PushMediaResponse { frames: d.frames, chunks: d.chunks, bytes: d.bytes, clock_jumps: d.clock_jumps }
    }
}

/// The track a hello names.
fn track_info(hello: &pb::PushHello) -> Result<LiveTrackInfo, PushError> {
    let violations = hello_lengths(hello);
    if !violations.is_empty() {
        return Err(InvalidJob(violations).into());
    }
    let empty = |field| PushError::BadHello { field, reason: "empty".into() };
    if hello.job_id.is_empty() {
        return Err(empty("job_id"));
    }
    if hello.participant_id.is_empty() {
        return Err(empty("participant_id"));
    }
    let (kind, screenshare, name) = match pb::PushedTrackKind::try_from(hello.kind) {
        Ok(pb::PushedTrackKind::Camera) => (TrackKind::Video, false, "camera"),
        Ok(pb::PushedTrackKind::Screenshare) => (TrackKind::Video, true, "screenshare"),
        Ok(pb::PushedTrackKind::Microphone) => (TrackKind::Audio, false, "microphone"),
        Ok(pb::PushedTrackKind::ScreenshareAudio) => (TrackKind::Audio, true, "screenshare_audio"),
        _ => {
            return Err(PushError::BadHello {
                field: "kind",
                reason: format!("{} (CAMERA, SCREENSHARE, MICROPHONE or SCREENSHARE_AUDIO)", hello.kind),
            });
        }
    };
    let or = |value: &str, default: &str| if value.is_empty() { default.to_owned() } else { value.to_owned() };
    Ok(LiveTrackInfo {
        participant_id: hello.participant_id.clone(),
        user_session_id: or(&hello.session_id, &hello.participant_id),
        track_id: or(&hello.track_id, name),
        kind,
        screenshare,
        display_name: hello.display_name.clone(),
    })
}

/// The sending end of the track this stream carries.
enum Track {
    Video(TrackSender<Stamped<VideoFrame>>),
    Audio { sender: TrackSender<PlacedAudio>, placer: AudioPlacer },
}

/// Runs one PushMedia stream to its end: the track ends with it.
pub async fn push_media(
    scheduler: &Scheduler,
    mut stream: impl Stream<Item = Result<pb::PushMediaRequest, tonic::Status>> + Unpin,
) -> Result<Delivered, PushError> {
    use pb::push_media_request::Message;
    let hello = match stream.next().await {
        Some(Ok(pb::PushMediaRequest { message: Some(Message::Hello(hello)) })) => hello,
        Some(Err(status)) => return Err(PushError::Stream(status)),
        _ => return Err(PushError::NoHello),
    };
    let info = track_info(&hello)?;
    let call: Arc<LiveCall> = block_in_place(|| scheduler.live_call(&hello.job_id))?;
    // Held (by flow control) until the call's clock starts.
    if !call.started(START_TIMEOUT).await {
        return Err(PushError::NotStarted { id: hello.job_id.clone(), waited_s: START_TIMEOUT.as_secs() });
    }
    let joined = match info.kind {
        TrackKind::Video => call.join_video(info.clone()).map(Track::Video),
        TrackKind::Audio => {
            call.join_audio(info.clone()).map(|sender| Track::Audio { sender, placer: AudioPlacer::default() })
        }
    };
    let mut track = joined.map_err(|source| PushError::Call { id: hello.job_id.clone(), source })?;
    tracing::info!(job_id = %hello.job_id, participant = %info.participant_id, track = %info.track_id, "sender joined");
    // One clock per participant session unless the sender names a wider one: a sender whose
    // clock misbehaves then shifts no one else.
    let domain = if hello.clock_domain.is_empty() {
        format!("session:{}/{}", info.participant_id, info.user_session_id)
    } else {
        format!("named:{}", hello.clock_domain)
    };
    let domain = domain.as_str();
    let (mut pictures, mut audio) = (Pace::pictures(), Pace::audio());
    let mut delivered = Delivered::default();
    let ended = |source| PushError::Call { id: hello.job_id.clone(), source };
    while let Some(message) = stream.next().await {
        let message = message.map_err(PushError::Stream)?;
        match (message.message, &mut track) {
            (Some(Message::Video(frame)), Track::Video(sender)) => {
                tokio::time::sleep(pictures.spend(1.0)).await;
                let item = block_in_place(|| stamped_picture(&frame, &call, domain))?;
                delivered.bytes += frame.planes.iter().map(|p| p.len() as u64).sum::<u64>();
                sender.send(item).await.map_err(ended)?;
                delivered.frames += 1;
            }
            (Some(Message::Audio(chunk)), Track::Audio { sender, placer }) => {
                let placed = placer.place(&chunk, &call, domain)?;
                tokio::time::sleep(audio.spend((placed.samples.len() / 2) as f64)).await;
                delivered.bytes += chunk.data.len() as u64;
                sender.send(placed).await.map_err(ended)?;
                delivered.chunks += 1;
            }
            (Some(Message::Hello(_)), _) => return Err(PushError::SecondHello),
            (Some(Message::Video(_)), Track::Audio { .. }) => {
                return Err(PushError::WrongMedium { got: "a video frame", kind: "audio" });
            }
            (Some(Message::Audio(_)), Track::Video(_)) => {
                return Err(PushError::WrongMedium { got: "an audio chunk", kind: "video" });
            }
            (None, _) => {}
        }
    }
    delivered.clock_jumps = call.clock_jumps(domain);
    tracing::info!(job_id = %hello.job_id, participant = %info.participant_id, track = %info.track_id, frames = delivered.frames, chunks = delivered.chunks, "sender left");
    Ok(delivered)
}

/// A pushed picture checked, made upright I420 and placed on the call clock.
fn stamped_picture(
    frame: &pb::PushedVideoFrame,
    call: &LiveCall,
    domain: &str,
) -> Result<Stamped<VideoFrame>, PushError> {
    let format = match pb::PixelFormat::try_from(frame.format) {
        Ok(pb::PixelFormat::I420) => PixelFormat::I420,
        Ok(pb::PixelFormat::Nv12) => PixelFormat::Nv12,
        Ok(pb::PixelFormat::Rgba) => PixelFormat::Rgba,
        _ => {
            return Err(LiveError::BadFrame {
                field: "format".into(),
                reason: format!("{} is not I420, NV12 or RGBA", frame.format),
            }
            .into());
        }
    };
    let planes: Vec<&[u8]> = frame.planes.iter().map(|p| p.as_ref()).collect();
    let pushed = PushedFrame {
        format,
        width: frame.width,
        height: frame.height,
        planes: &planes,
        strides: &frame.strides,
        rotation_deg: frame.rotation_deg,
        bt709: frame.bt709,
    };
    let item = picture(&pushed)?;
    let at_ms = call.place(domain, frame.capture_time_us as f64 / 1000.0);
    let hold_ms = call.settings().hold_ms as f64;
    Ok(Stamped { at_ms, show_from_ms: at_ms, show_until_ms: at_ms + hold_ms, item })
}

/// Where a track's audio goes on the call clock, chunk after chunk.
#[derive(Default)]
struct AudioPlacer {
    /// The sample frame right after the previous chunk.
    next_position: Option<u64>,
    /// The rate converter of a track not sent at 48 kHz, and its rate.
    resampler: Option<(u32, DriftResampler)>,
}

impl AudioPlacer {
    /// A pushed PCM chunk checked, made stereo at 48 kHz and placed on the call clock.
    fn place(&mut self, chunk: &pb::PushedAudioChunk, call: &LiveCall, domain: &str) -> Result<PlacedAudio, PushError> {
        let samples = self.convert(chunk)?;
        let at_ms = call.place(domain, chunk.capture_time_us as f64 / 1000.0);
        let position = self.position(at_ms, samples.len() / 2);
        Ok(PlacedAudio { position, samples })
    }

    /// A pushed PCM chunk checked and made stereo at 48 kHz.
    fn convert(&mut self, chunk: &pb::PushedAudioChunk) -> Result<Vec<f32>, PushError> {
        let format = match pb::SampleFormat::try_from(chunk.format) {
            Ok(pb::SampleFormat::S16le) => SampleFormat::S16le,
            Ok(pb::SampleFormat::F32le) => SampleFormat::F32le,
            _ => {
                return Err(LiveError::BadAudio {
                    field: "format".into(),
                    reason: format!("{} is not S16LE or F32LE", chunk.format),
                }
                .into());
            }
        };
        let rate = chunk.sample_rate_hz;
        if !RESAMPLED_RATES_HZ.contains(&rate) {
            return Err(LiveError::BadAudio {
                field: "sample_rate_hz".into(),
                reason: format!(
                    "{rate} (live audio is taken from {} to {} Hz)",
                    RESAMPLED_RATES_HZ.start(),
                    RESAMPLED_RATES_HZ.end()
                ),
            }
            .into());
        }
        let pushed = PushedPcm { format, sample_rate_hz: rate, channels: chunk.channels, data: &chunk.data };
        let samples = stereo_samples(&pushed)?;
        if rate == AUDIO_RATE_HZ {
            return Ok(samples);
        }
        let step = f64::from(rate) / f64::from(AUDIO_RATE_HZ);
        let resampler = match &mut self.resampler {
            Some((r, resampler)) if *r == rate => resampler,
            other => &mut other.insert((rate, DriftResampler::new(step, 2))).1,
        };
        Ok(resampler.process(samples))
    }

    /// The sample frame of `frames` frames placed at call time `at_ms`: right after the
    /// previous chunk while that agrees within [`AUDIO_CONTINUITY_MS`] late or
    /// [`AUDIO_EARLY_MS`] early, else at `at_ms`.
    fn position(&mut self, at_ms: f64, frames: usize) -> u64 {
        let to_frames = |ms: f64| (ms.max(0.0) * f64::from(AUDIO_RATE_HZ) / 1000.0).round() as u64;
        let at = to_frames(at_ms);
        let position = match self.next_position {
            Some(next) if at <= next + to_frames(AUDIO_CONTINUITY_MS) && at + to_frames(AUDIO_EARLY_MS) >= next => next,
            _ => at,
        };
        self.next_position = Some(position + frames as u64);
        position
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `frames` of a mono 1 kHz sine at `rate_hz` from sample frame `start`, as F32LE.
    fn sine(rate_hz: u32, frames: usize, start: usize) -> pb::PushedAudioChunk {
        let data = (start..start + frames)
            .map(|i| (std::f64::consts::TAU * 1000.0 * i as f64 / f64::from(rate_hz)).sin() as f32 * 0.5)
            .flat_map(f32::to_le_bytes)
            .collect();
        pb::PushedAudioChunk {
            format: pb::SampleFormat::F32le as i32,
            sample_rate_hz: rate_hz,
            channels: 1,
            data,
            capture_time_us: (start as f64 * 1e6 / f64::from(rate_hz)) as i64,
        }
    }

    #[test]
    fn audio_at_44k1_becomes_48k_without_gaps_or_a_change_of_pitch() {
        let mut placer = AudioPlacer::default();
        let mut left = Vec::new();
        for n in 0..100 {
            let samples = placer.convert(&sine(44_100, 441, n * 441)).expect("converted");
            left.extend(samples.chunks_exact(2).map(|f| f[0]));
        }
        // One second in, 48000 frames out (less the interpolator's look-ahead of a few).
        assert!((47_990..=48_000).contains(&left.len()), "{} frames", left.len());
        // Still a 1 kHz tone: 2000 zero crossings a second.
        let crossings = left.windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        assert!((1995..=2001).contains(&crossings), "{crossings} crossings");
    }

    #[test]
    fn chunks_continue_each_other_unless_placed_far_late_or_a_little_early() {
        let mut placer = AudioPlacer::default();
        assert_eq!(placer.position(100.0, 480), 4800);
        // Jitter and a slowly rising offset: sample for sample.
        assert_eq!(placer.position(111.0, 480), 5280, "1 ms late");
        assert_eq!(placer.position(158.0, 480), 5760, "38 ms late");
        assert_eq!(placer.position(128.5, 480), 6240, "2.5 ms early");
        // Placed anew: a faster path found (early), a jump (late).
        assert_eq!(placer.position(135.0, 480), 6480, "5 ms early");
        assert_eq!(placer.position(300.0, 480), 14_400, "far late");
    }

    #[test]
    fn a_stream_faster_than_its_pace_is_made_to_wait() {
        let mut pace = Pace::pictures();
        let waits: Vec<f64> = (0..90).map(|_| pace.spend(1.0).as_secs_f64()).collect();
        assert!(waits[..60].iter().all(|w| *w < 0.01), "a second's burst passes");
        // The 90th picture at once: 30 over the budget at 60 a second.
        assert!((0.45..=0.5).contains(&waits[89]), "{}", waits[89]);
    }

    #[test]
    fn rates_out_of_range_and_unknown_formats_are_refused_by_name() {
        let mut placer = AudioPlacer::default();
        let err = placer.convert(&sine(8000, 80, 0)).expect_err("8 kHz").to_string();
        assert!(err.contains("sample_rate_hz") && err.contains("8000"), "{err}");
        let mut chunk = sine(48_000, 480, 0);
        chunk.format = 9;
        let err = placer.convert(&chunk).expect_err("format 9").to_string();
        assert!(err.contains("format") && err.contains('9'), "{err}");
    }
}
