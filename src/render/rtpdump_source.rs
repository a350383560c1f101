//! Frame sources over a raw recording's track: its segments in call-clock order, each
//! segment's decoder started when the render reaches it (so only the segments in play hold a
//! pipeline), every frame and chunk placed through the segment's drift-corrected clock.

use super::plan::SegmentPlan;
use super::source::{AudioSource, ChunkPlacer, PlacedAudio, VideoSource, ms_to_frames};
use crate::audio::DriftResampler;
use crate::media::MediaError;
use crate::media::decode::{AUDIO_CHANNELS, Decoded, SegmentDecoder, VideoFrame};
use crate::timeline::Stamped;
use crate::timeline::due::{DUE_EPSILON_MS, VIDEO_HOLD_MS};

/// The decoder of the segment in play.
struct Active {
    decoder: SegmentDecoder,
    segment: usize,
}

/// A decoded item of a track and where it comes from.
struct Item<'a> {
    decoded: Decoded,
    plan: &'a SegmentPlan,
    /// The origin of the item's PTS (see [`SegmentPlan::call_ms_of_pts`]).
    first_ticks: Option<i64>,
    /// The item's segment has just started.
    started: bool,
}

/// A track's segments and the one being decoded.
struct Segments {
    segments: Vec<SegmentPlan>,
    next_segment: usize,
    active: Option<Active>,
}

impl Segments {
    fn new(segments: Vec<SegmentPlan>) -> Segments {
        Segments { segments, next_segment: 0, active: None }
    }

    /// The next decoded item of the track; the next segment is started when `starts(segment)`
    /// says it is due. `None` when nothing more is due for now.
    fn next(&mut self, starts: impl Fn(&SegmentPlan) -> bool) -> Result<Option<Item<'_>>, MediaError> {
        loop {
            let mut started = false;
            if self.active.is_none() {
                match self.segments.get(self.next_segment) {
                    Some(next) if starts(next) => {
                        let decoder = SegmentDecoder::start(&next.spec, next.packets()?)?;
                        self.active = Some(Active { decoder, segment: self.next_segment });
                        self.next_segment += 1;
                        started = true;
                    }
                    _ => return Ok(None),
                }
            }
            let Some(active) = self.active.as_mut() else { return Ok(None) };
            match active.decoder.pull()? {
                Some(decoded) => {
                    let first_ticks = active.decoder.first_ticks();
                    let Some(plan) = self.segments.get(active.segment) else { return Ok(None) };
                    return Ok(Some(Item { decoded, plan, first_ticks, started }));
                }
                None => self.active = None,
            }
        }
    }
}

/// A recorded video track's pictures.
pub struct RtpdumpVideo {
    segments: Segments,
}

impl RtpdumpVideo {
    pub fn new(segments: Vec<SegmentPlan>) -> RtpdumpVideo {
        RtpdumpVideo { segments: Segments::new(segments) }
    }
}

impl VideoSource for RtpdumpVideo {
    fn next_frame(&mut self, t_ms: f64) -> Result<Option<Stamped<VideoFrame>>, MediaError> {
        loop {
            let Some(Item { decoded, plan, first_ticks, .. }) =
                self.segments.next(|next| next.span.start_ms <= t_ms + DUE_EPSILON_MS)?
            else {
                return Ok(None);
            };
            if let Decoded::Video(frame) = decoded {
                return Ok(Some(Stamped {
                    at_ms: plan.call_ms_of_pts(first_ticks, frame.pts_ms),
                    show_from_ms: plan.span.start_ms,
                    show_until_ms: plan.span.end_ms + VIDEO_HOLD_MS,
                    item: frame,
                }));
            }
        }
    }
}

/// A recorded audio track's samples, locked to the call clock when the sender's clock drifts.
pub struct RtpdumpAudio {
    segments: Segments,
    placer: ChunkPlacer,
    resampler: DriftResampler,
}

impl RtpdumpAudio {
    pub fn new(segments: Vec<SegmentPlan>) -> RtpdumpAudio {
        RtpdumpAudio {
            segments: Segments::new(segments),
            placer: ChunkPlacer::default(),
            resampler: DriftResampler::new(1.0, AUDIO_CHANNELS),
        }
    }
}

impl AudioSource for RtpdumpAudio {
    fn next_chunk(&mut self, horizon: u64) -> Result<Option<PlacedAudio>, MediaError> {
        loop {
            let Some(Item { decoded, plan, first_ticks, started }) =
                self.segments.next(|next| ms_to_frames(next.span.start_ms) < horizon)?
            else {
                return Ok(None);
            };
            if started {
                self.placer.reset();
            }
            let Decoded::Audio(chunk) = decoded else { continue };
            let at = ms_to_frames(plan.call_ms_of_pts(first_ticks, chunk.pts_ms));
            let position = self.placer.continues(at).unwrap_or_else(|| {
                // A new segment or a discontinuity (DTX silence, a gap): restart the
                // interpolation at the segment's drift ratio.
                self.resampler = DriftResampler::new(plan.clock.rate_ratio(), AUDIO_CHANNELS);
                at
            });
            let samples = self.resampler.process(chunk.samples);
            self.placer.ended_at(position + (samples.len() / AUDIO_CHANNELS) as u64);
            return Ok(Some(PlacedAudio { position, samples }));
        }
    }
}
