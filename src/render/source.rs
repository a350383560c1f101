//! Frame sources: what the composite loop reads. A [`VideoSource`] gives one track's decoded
//! pictures and an [`AudioSource`] its samples, both stamped on the call clock; the loop does
//! not care whether they come from an rtpdump (see `rtpdump_source`), track files
//! (`track_file_source`), a live sender or a slice of the call.

use super::file_source::{FileAudio, FileVideo};
use super::plan::TrackPlan;
use super::rtpdump_source::{RtpdumpAudio, RtpdumpVideo};
use crate::audio::MixBuffer;
use crate::media::MediaError;
use crate::media::decode::{AUDIO_RATE_HZ, VideoFrame};
use crate::timeline::{CurrentFrame, Stamped};

/// Decoded audio further ahead than this waits in the source's feed instead of the track's
/// buffer.
pub const AUDIO_AHEAD_FRAMES: u64 = AUDIO_RATE_HZ as u64;

/// One track's pictures in capture order.
pub trait VideoSource: Send {
    /// The next picture, from the parts of the track that have begun by call time `t_ms`
    /// (a source starts a segment's decoder only once the render reaches it); `None` when
    /// there is nothing more for now.
    fn next_frame(&mut self, t_ms: f64) -> Result<Option<Stamped<VideoFrame>>, MediaError>;
}

/// Samples placed on the call clock: interleaved stereo f32 at 48 kHz from sample frame
/// `position` (since call start).
#[derive(Debug, Clone)]
pub struct PlacedAudio {
    pub position: u64,
    pub samples: Vec<f32>,
}

/// Audio within this many sample frames of where the previous chunk ended is butted to it
/// (timestamps rounded to the clock's or the container's time base).
const AUDIO_SNAP_FRAMES: u64 = 48;

/// The sample frame (since call start) of call time `ms`.
pub fn ms_to_frames(ms: f64) -> u64 {
    (ms.max(0.0) * f64::from(AUDIO_RATE_HZ) / 1000.0).round() as u64
}

/// Places consecutive chunks of one track: a chunk that starts within a millisecond of where
/// the previous one ended continues it exactly, so rounding never leaves a hole or an overlap.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkPlacer {
    expected: Option<u64>,
}

impl ChunkPlacer {
    /// Where a chunk stamped at sample frame `at` goes: `Some` when it continues the previous
    /// chunk, `None` after a discontinuity (place it at `at`).
    pub fn continues(&self, at: u64) -> Option<u64> {
        self.expected.filter(|expected| at.abs_diff(*expected) <= AUDIO_SNAP_FRAMES)
    }

    /// The chunk placed last ends at sample frame `end`.
    pub fn ended_at(&mut self, end: u64) {
        self.expected = Some(end);
    }

    /// Forgets the previous chunk (a new segment starts).
    pub fn reset(&mut self) {
        self.expected = None;
    }
}

/// One track's samples in call-clock order.
pub trait AudioSource: Send {
    /// The next chunk, from the parts of the track that begin before sample frame `horizon`;
    /// `None` when there is nothing more for now.
    fn next_chunk(&mut self, horizon: u64) -> Result<Option<PlacedAudio>, MediaError>;
}

/// The video source of a plan's track: its file, or its recorded segments.
pub fn video_source(track: &TrackPlan) -> Box<dyn VideoSource> {
    match FileVideo::new(track) {
        Some(file) => Box::new(file),
        None => Box::new(RtpdumpVideo::new(track.segments.clone())),
    }
}

/// The audio source of a plan's track: its file, or its recorded segments.
pub fn audio_source(track: &TrackPlan) -> Box<dyn AudioSource> {
    match FileAudio::new(track) {
        Some(file) => Box::new(file),
        None => Box::new(RtpdumpAudio::new(track.segments.clone())),
    }
}

/// The current picture of one video track as the render's clock advances.
pub struct VideoFeed {
    source: Box<dyn VideoSource>,
    current: CurrentFrame<VideoFrame>,
}

impl VideoFeed {
    pub fn new(source: Box<dyn VideoSource>) -> VideoFeed {
        VideoFeed { source, current: CurrentFrame::new() }
    }

    /// Moves to call time `t_ms`; returns whether the track has a picture to show then.
    pub fn advance(&mut self, t_ms: f64) -> Result<bool, MediaError> {
        let source = &mut self.source;
        self.current.advance(t_ms, || source.next_frame(t_ms))
    }

    /// The current picture and its generation (bumped whenever the picture changes).
    pub fn frame(&self) -> Option<(&VideoFrame, u64)> {
        self.current.current()
    }
}

/// One audio track's samples, buffered on the call clock so the render can take them out frame
/// interval by frame interval (and measure the track's level before it joins the mix).
pub struct AudioFeed {
    source: Box<dyn AudioSource>,
    /// A chunk that lies well ahead of the render.
    pending: Option<PlacedAudio>,
    buffer: MixBuffer,
}

impl AudioFeed {
    pub fn new(source: Box<dyn AudioSource>, channels: usize) -> AudioFeed {
        AudioFeed { source, pending: None, buffer: MixBuffer::new(channels) }
    }

    /// Takes the track's samples from the current position up to sample frame `until`
    /// (exclusive) into `out` (silence where it has none).
    pub fn take_until(&mut self, until: u64, out: &mut Vec<f32>) -> Result<(), MediaError> {
        self.fill(until)?;
        let frames = usize::try_from(until.saturating_sub(self.buffer.read_position())).unwrap_or(0);
        self.buffer.take(frames, out);
        Ok(())
    }

    /// Drops the track's samples before sample frame `position`.
    pub fn skip_to(&mut self, position: u64) -> Result<(), MediaError> {
        self.fill(position)?;
        self.buffer.skip_to(position);
        Ok(())
    }

    /// Moves everything this track has before `until` into the buffer.
    fn fill(&mut self, until: u64) -> Result<(), MediaError> {
        loop {
            if let Some(chunk) = self.pending.take() {
                if chunk.position >= until + AUDIO_AHEAD_FRAMES {
                    self.pending = Some(chunk);
                    return Ok(());
                }
                self.buffer.add(chunk.position, &chunk.samples);
                if chunk.position >= until {
                    return Ok(());
                }
                continue;
            }
            match self.source.next_chunk(until + AUDIO_AHEAD_FRAMES)? {
                Some(chunk) => self.pending = Some(chunk),
                None => return Ok(()),
            }
        }
    }
}
