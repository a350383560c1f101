//! Track cursors: walk a track's segments in call-clock order, starting each segment's decoder
//! when the render reaches it, so only the segments in play hold a pipeline.

use super::plan::SegmentPlan;
use crate::audio::DriftResampler;
use crate::audio::MixBuffer;
use crate::media::MediaError;
use crate::media::decode::{AUDIO_CHANNELS, AUDIO_RATE_HZ, Decoded, SegmentDecoder, VideoFrame};

/// Frames within this much after the tick still count as due (float rounding).
const DUE_EPSILON_MS: f64 = 0.5;
/// How long the last frame of a segment stays up after the segment's last timestamp.
const VIDEO_HOLD_MS: f64 = 100.0;
/// Decoded audio further ahead than this waits in the cursor instead of the mix.
const AUDIO_AHEAD_FRAMES: u64 = AUDIO_RATE_HZ as u64;
/// Audio within this many sample frames of where the previous chunk ended is butted to it.
const AUDIO_SNAP_FRAMES: u64 = 48;

struct Active {
    decoder: SegmentDecoder,
    segment: usize,
}

impl Active {
    fn start(segments: &[SegmentPlan], segment: usize) -> Result<Active, MediaError> {
        let spec = segments.get(segment).map(|s| &s.spec).ok_or_else(|| MediaError::Data {
            what: "track cursor".into(),
            reason: format!("segment {segment} does not exist"),
        })?;
        Ok(Active { decoder: SegmentDecoder::start(spec)?, segment })
    }

    /// The call time of decoded PTS `pts_ms`.
    fn call_ms(&self, segments: &[SegmentPlan], pts_ms: f64) -> f64 {
        segments.get(self.segment).map_or(pts_ms, |plan| plan.call_ms_of_pts(self.decoder.first_ticks(), pts_ms))
    }
}

/// The current picture of one video track at the render's time.
pub struct VideoCursor {
    segments: Vec<SegmentPlan>,
    next_segment: usize,
    active: Option<Active>,
    pending: Option<(f64, VideoFrame, usize)>,
    current: Option<(VideoFrame, usize)>,
    /// Bumped each time `current` changes, so the GPU uploads only new pictures.
    generation: u64,
}

impl VideoCursor {
    pub fn new(segments: Vec<SegmentPlan>) -> VideoCursor {
        VideoCursor { segments, next_segment: 0, active: None, pending: None, current: None, generation: 0 }
    }

    /// Moves to call time `t_ms`; returns whether the track has a picture to show then
    /// ([`VideoCursor::frame`]).
    pub fn advance(&mut self, t_ms: f64) -> Result<bool, MediaError> {
        loop {
            if self.pending.is_none() {
                if self.active.is_none() {
                    match self.segments.get(self.next_segment) {
                        Some(next) if next.span.start_ms <= t_ms + DUE_EPSILON_MS => {
                            self.active = Some(Active::start(&self.segments, self.next_segment)?);
                            self.next_segment += 1;
                        }
                        _ => break,
                    }
                }
                let Some(active) = self.active.as_mut() else { break };
                match active.decoder.next()? {
                    Some(Decoded::Video(frame)) => {
                        let at = active.call_ms(&self.segments, frame.pts_ms);
                        self.pending = Some((at, frame, active.segment));
                    }
                    Some(Decoded::Audio(_) | Decoded::Encoded(_)) => {}
                    None => self.active = None,
                }
                continue;
            }
            match self.pending.take() {
                Some((at, frame, segment)) if at <= t_ms + DUE_EPSILON_MS => {
                    self.current = Some((frame, segment));
                    self.generation += 1;
                }
                other => {
                    self.pending = other;
                    break;
                }
            }
        }
        Ok(self.current.as_ref().is_some_and(|(_, segment)| {
            self.segments
                .get(*segment)
                .is_some_and(|s| t_ms >= s.span.start_ms - DUE_EPSILON_MS && t_ms <= s.span.end_ms + VIDEO_HOLD_MS)
        }))
    }

    /// The current picture and its generation (bumped whenever the picture changes).
    pub fn frame(&self) -> Option<(&VideoFrame, u64)> {
        self.current.as_ref().map(|(frame, _)| (frame, self.generation))
    }
}

/// Feeds one audio track's decoded samples into the mix at their call-clock positions.
pub struct AudioCursor {
    segments: Vec<SegmentPlan>,
    next_segment: usize,
    active: Option<Active>,
    /// Decoded samples waiting because they lie well ahead of the render.
    pending: Option<(u64, Vec<f32>)>,
    /// Where the previous chunk of the active segment ended.
    expected_position: Option<u64>,
    /// Locks the active segment's samples to the call clock when its sender's clock drifts.
    resampler: DriftResampler,
}

fn ms_to_frames(ms: f64) -> u64 {
    (ms.max(0.0) * f64::from(AUDIO_RATE_HZ) / 1000.0).round() as u64
}

impl AudioCursor {
    pub fn new(segments: Vec<SegmentPlan>) -> AudioCursor {
        AudioCursor {
            segments,
            next_segment: 0,
            active: None,
            pending: None,
            expected_position: None,
            resampler: DriftResampler::new(1.0, AUDIO_CHANNELS),
        }
    }

    /// Adds everything this track has up to sample frame `until` (exclusive) to `mix`.
    pub fn fill(&mut self, mix: &mut MixBuffer, until: u64) -> Result<(), MediaError> {
        loop {
            if let Some((position, samples)) = self.pending.take() {
                if position >= until + AUDIO_AHEAD_FRAMES {
                    self.pending = Some((position, samples));
                    return Ok(());
                }
                mix.add(position, &samples);
                if position >= until {
                    return Ok(());
                }
                continue;
            }
            if self.active.is_none() {
                match self.segments.get(self.next_segment) {
                    Some(next) if ms_to_frames(next.span.start_ms) < until + AUDIO_AHEAD_FRAMES => {
                        self.active = Some(Active::start(&self.segments, self.next_segment)?);
                        self.expected_position = None;
                        self.next_segment += 1;
                    }
                    _ => return Ok(()),
                }
            }
            let Some(active) = self.active.as_mut() else { return Ok(()) };
            match active.decoder.next()? {
                Some(Decoded::Audio(chunk)) => {
                    let at = active.call_ms(&self.segments, chunk.pts_ms);
                    let mut position = ms_to_frames(at);
                    match self.expected_position.filter(|e| position.abs_diff(*e) <= AUDIO_SNAP_FRAMES) {
                        Some(expected) => position = expected,
                        None => {
                            // A new segment or a discontinuity (DTX silence, a gap): restart the
                            // interpolation at the segment's drift ratio.
                            let step = self.segments.get(active.segment).map_or(1.0, |s| s.clock.rate_ratio());
                            self.resampler = DriftResampler::new(step, AUDIO_CHANNELS);
                        }
                    }
                    let samples = self.resampler.process(chunk.samples);
                    let frames = (samples.len() / AUDIO_CHANNELS) as u64;
                    self.expected_position = Some(position + frames);
                    self.pending = Some((position, samples));
                }
                Some(Decoded::Video(_) | Decoded::Encoded(_)) => {}
                None => self.active = None,
            }
        }
    }
}
