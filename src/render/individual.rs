//! Writing one individual file by remuxing: each track's encoded frames, as sent, into
//! Matroska with their call-clock times. No decode, no re-encode: original codec, resolution
//! and orientation are kept. Audio holes (loss, DTX, mutes, and the stretch before the track
//! starts or after it ends inside the file) are filled with Opus silence frames so a decoder
//! plays the file at the right length; video shows one black keyframe over a hole between
//! segments and holds the last whole picture over a loss.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::RenderError;
use super::plan::{RenderPlan, TrackPlan};
use crate::ingest::TrackKind;
use crate::ingest::sdp::Codec;
use crate::ingest::sdp::MediaKind;
use crate::media::black_frame::BlackFiller;
use crate::media::decode::{Decoded, EncodedFrame, SegmentDecoder};
use crate::media::mux::{Container, FileMuxer, MuxInput};
use crate::media::opus_fill::{OPUS_SILENCE_FRAME, OPUS_SILENCE_FRAME_MS, OpusGapFiller, opus_packet_duration_ms};
use crate::media::{Caps, Interrupt, MediaError};
use crate::outputs::GapFill;
use crate::outputs::individual::IndividualFile;

/// A video frame's assumed length when the stream does not say (the file's last frame).
const DEFAULT_VIDEO_FRAME_MS: f64 = 33.3;
/// Video holes between segments longer than this show black (shorter ones hold the picture).
const MIN_BLACK_HOLE_MS: f64 = 150.0;
/// A frame lasts until the next one, but no longer than this (a frozen sender, a loss).
const MAX_FRAME_INTERVAL_MS: f64 = 1000.0;

/// One stream of a written individual file.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenStream {
    pub track_id: String,
    pub kind: TrackKind,
    /// RTP encoding name, lower case (`opus`, `vp8`, `h264`, ...).
    pub codec: String,
    /// Where the stream's media ends in the file.
    pub end_ms: f64,
    /// Opus silence frames inserted (audio only).
    pub silence_frames: u64,
    pub frames: u64,
}

/// An individual file, written.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenIndividual {
    /// Where the file's t=0 lies on the call clock.
    pub offset_ms: f64,
    pub duration_ms: f64,
    pub streams: Vec<WrittenStream>,
    /// The video encoder element, when the file was encoded here.
    pub encoder: Option<String>,
}

/// The call-clock window a file covers.
pub fn window(plan: &RenderPlan, file: &IndividualFile, align_to_call: bool) -> (f64, f64) {
    if align_to_call {
        return (0.0, plan.timeline.duration_ms);
    }
    let spans = file.tracks.iter().filter_map(|&i| plan.tracks.get(i)).map(|t| (t.span.start_ms(), t.span.end_ms()));
    let (from, to) = spans.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (s, e)| (a.min(s), b.max(e)));
    if from.is_finite() && to.is_finite() { (from.max(0.0), to) } else { (0.0, 0.0) }
}

/// Writes `file` to `path` as Matroska.
pub fn write_individual(
    plan: &RenderPlan,
    file: &IndividualFile,
    align_to_call: bool,
    fill: GapFill,
    path: &Path,
) -> Result<WrittenIndividual, RenderError> {
    let (from_ms, to_ms) = window(plan, file, align_to_call);
    let tracks: Vec<TrackPlan> = file.tracks.iter().filter_map(|&i| plan.tracks.get(i).cloned()).collect();
    let kinds: Vec<MediaKind> =
        tracks.iter().map(|t| if t.kind == TrackKind::Audio { MediaKind::Audio } else { MediaKind::Video }).collect();
    let muxer = FileMuxer::start(path, Container::Matroska, &kinds)?;
    // The stream that failed first: the others may then fail only because they were stopped.
    let first_failed = Arc::new(AtomicUsize::new(usize::MAX));
    let mut feeders = Vec::with_capacity(tracks.len());
    for (index, (track, input)) in tracks.into_iter().zip(muxer.inputs()).enumerate() {
        let first_failed = Arc::clone(&first_failed);
        let span = tracing::Span::current();
        // The feeder's decoders answer to the render's interrupt too.
        let interrupt = Interrupt::current();
        let feeder = std::thread::Builder::new()
            .name("tessera-remux".into())
            .spawn(move || {
                let _entered = span.enter();
                let _interrupt = interrupt.enter();
                let result = feed_track(&track, input.clone(), (from_ms, to_ms), fill);
                if result.is_err() {
                    let _ = first_failed.compare_exchange(usize::MAX, index, Ordering::SeqCst, Ordering::SeqCst);
                }
                input.end();
                result
            })
            .map_err(|e| MediaError::Internal {
                what: format!("writing {}", path.display()),
                reason: format!("cannot start a feeder thread: {e}"),
            })?;
        feeders.push(feeder);
    }
    // A stream that fails leaves the others blocked on a muxer waiting for it: stop the
    // pipeline as soon as anything fails (or the render is interrupted), so every feeder
    // returns.
    let mut bus_error = None;
    while !feeders.iter().all(std::thread::JoinHandle::is_finished) {
        bus_error = muxer.error().or_else(|| muxer.check_interrupt().err());
        if bus_error.is_some() || first_failed.load(Ordering::SeqCst) != usize::MAX {
            muxer.abort();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut streams = Vec::with_capacity(feeders.len());
    let mut first_error = None;
    let first_failed = first_failed.load(Ordering::SeqCst);
    for (index, feeder) in feeders.into_iter().enumerate() {
        match feeder.join() {
            Ok(Ok(stream)) => streams.push(stream),
            Ok(Err(err)) if index == first_failed || first_error.is_none() => first_error = Some(err),
            Ok(Err(_)) => {}
            Err(_) => {
                first_error.get_or_insert(MediaError::Internal {
                    what: format!("writing {}", path.display()),
                    reason: "a feeder thread panicked".into(),
                });
            }
        }
    }
    // A pipeline error (or the interrupt) explains a refused push better than the push itself.
    if let Some(err) = bus_error.or_else(|| muxer.check_interrupt().err()).or_else(|| muxer.error()).or(first_error) {
        return Err(err.into());
    }
    muxer.finish()?;
    let duration_ms = streams.iter().map(|s| s.end_ms).fold(0.0, f64::max);
    Ok(WrittenIndividual { offset_ms: from_ms, duration_ms, streams, encoder: None })
}

/// Pushes every frame of `track` (all segments, in order) into `input`, at file time
/// `call time - from_ms`; holes in `[from_ms, to_ms)` are filled as `fill` asks.
fn feed_track(
    track: &TrackPlan,
    mut input: MuxInput,
    (from_ms, to_ms): (f64, f64),
    fill: GapFill,
) -> Result<WrittenStream, MediaError> {
    let mut audio = AudioStream { filler: OpusGapFiller::new(0.0), fill, started: false };
    let mut video = VideoStream { black: BlackFiller::default(), pending: None, interval_ms: None, end_ms: 0.0, fill };
    let mut frames = 0_u64;
    let mut codec = String::new();
    for segment in &track.segments {
        codec = segment.spec.codec.encoding_name().to_ascii_lowercase();
        let mut reader = SegmentDecoder::depayload(&segment.spec, segment.packets()?)?;
        let mut first_of_segment = true;
        while let Some(decoded) = reader.pull()? {
            let Decoded::Encoded(frame) = decoded else { continue };
            let at_ms = segment.call_ms_of_pts(reader.first_ticks(), frame.pts_ms) - from_ms;
            input.use_caps(&frame.caps);
            match track.kind {
                TrackKind::Audio => audio.frame(&mut input, frame, at_ms, first_of_segment)?,
                TrackKind::Video => video.frame(&mut input, segment.spec.codec, frame, at_ms, first_of_segment)?,
            }
            first_of_segment = false;
            frames += 1;
        }
    }
    let end_ms = match track.kind {
        TrackKind::Audio => audio.finish(&mut input, to_ms - from_ms)?,
        TrackKind::Video => video.finish(&mut input, to_ms - from_ms)?,
    };
    Ok(WrittenStream {
        track_id: track.track_id.clone(),
        kind: track.kind,
        codec,
        end_ms,
        silence_frames: audio.filler.silence_frames,
        frames,
    })
}

/// An Opus track being written: holes filled with silence frames.
struct AudioStream {
    filler: OpusGapFiller,
    fill: GapFill,
    started: bool,
}

impl AudioStream {
    fn frame(
        &mut self,
        input: &mut MuxInput,
        frame: EncodedFrame,
        at_ms: f64,
        first_of_segment: bool,
    ) -> Result<(), MediaError> {
        let duration_ms = frame
            .buffer
            .map_readable()
            .ok()
            .and_then(|map| opus_packet_duration_ms(map.as_slice()))
            .or(frame.duration_ms)
            .unwrap_or(OPUS_SILENCE_FRAME_MS);
        let fill_hole = if first_of_segment { self.fill.between_segments } else { self.fill.inside_segments };
        if !fill_hole {
            self.filler.skip_to(at_ms);
        }
        self.started = true;
        let step = self.filler.before_packet(at_ms, duration_ms);
        push_silence(input, &step.silence_at_ms)?;
        if step.keep {
            input.push_buffer(frame.buffer, at_ms, Some(duration_ms))?;
        }
        Ok(())
    }

    /// Fills to the file's end; returns where the audio ends.
    fn finish(&mut self, input: &mut MuxInput, file_end_ms: f64) -> Result<f64, MediaError> {
        if self.started && self.fill.between_segments {
            let silence = self.filler.fill_to(file_end_ms);
            push_silence(input, &silence)?;
        }
        Ok(self.filler.end_ms())
    }
}

/// A video track being written: each frame lasts until the next one (so the file's length is
/// right), and a hole between segments shows black.
struct VideoStream {
    black: BlackFiller,
    /// The last frame, written when the next one says how long it lasts.
    pending: Option<(EncodedFrame, f64)>,
    interval_ms: Option<f64>,
    end_ms: f64,
    fill: GapFill,
}

impl VideoStream {
    fn frame(
        &mut self,
        input: &mut MuxInput,
        codec: Codec,
        frame: EncodedFrame,
        at_ms: f64,
        first_of_segment: bool,
    ) -> Result<(), MediaError> {
        if first_of_segment {
            self.flush(input)?;
            if self.fill.between_segments && at_ms - self.end_ms > MIN_BLACK_HOLE_MS {
                let start = self.end_ms;
                self.push_black(input, Some((codec, &frame.caps)), start)?;
            }
        } else if let Some((previous, previous_at)) = self.pending.take() {
            let gap = at_ms - previous_at;
            if gap > 0.0 && gap <= MAX_FRAME_INTERVAL_MS {
                self.interval_ms = Some(gap);
            }
            self.write(input, previous, previous_at, gap.clamp(1.0, MAX_FRAME_INTERVAL_MS))?;
        }
        self.black.remember(codec, &frame.caps);
        self.pending = Some((frame, at_ms));
        Ok(())
    }

    fn write(
        &mut self,
        input: &mut MuxInput,
        frame: EncodedFrame,
        at_ms: f64,
        duration_ms: f64,
    ) -> Result<(), MediaError> {
        input.push_buffer(frame.buffer, at_ms, Some(duration_ms))?;
        self.end_ms = self.end_ms.max(at_ms + duration_ms);
        Ok(())
    }

    /// Writes the held frame, lasting one frame interval.
    fn flush(&mut self, input: &mut MuxInput) -> Result<(), MediaError> {
        match self.pending.take() {
            Some((frame, at_ms)) => {
                let duration_ms = frame.duration_ms.or(self.interval_ms).unwrap_or(DEFAULT_VIDEO_FRAME_MS);
                self.write(input, frame, at_ms, duration_ms)
            }
            None => Ok(()),
        }
    }

    fn push_black(
        &mut self,
        input: &mut MuxInput,
        like: Option<(Codec, &Caps)>,
        at_ms: f64,
    ) -> Result<bool, MediaError> {
        let duration_ms = self.interval_ms.unwrap_or(DEFAULT_VIDEO_FRAME_MS);
        let pushed = self.black.push(input, like, at_ms, duration_ms)?;
        if pushed {
            self.end_ms = self.end_ms.max(at_ms + duration_ms);
        }
        Ok(pushed)
    }

    /// Writes the last frame and black to the file's end; returns where the video ends.
    fn finish(&mut self, input: &mut MuxInput, file_end_ms: f64) -> Result<f64, MediaError> {
        self.flush(input)?;
        if self.fill.between_segments && file_end_ms - self.end_ms > MIN_BLACK_HOLE_MS {
            // One black frame at each end of the hole.
            let start = self.end_ms;
            if self.push_black(input, None, start)? {
                let last = file_end_ms - self.interval_ms.unwrap_or(DEFAULT_VIDEO_FRAME_MS);
                self.push_black(input, None, last)?;
            }
        }
        Ok(self.end_ms)
    }
}

fn push_silence(input: &mut MuxInput, starts_ms: &[f64]) -> Result<(), MediaError> {
    for &at_ms in starts_ms {
        input.push_bytes(&OPUS_SILENCE_FRAME, at_ms, Some(OPUS_SILENCE_FRAME_MS))?;
    }
    Ok(())
}
