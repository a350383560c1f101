//! Spans on the call clock: when each segment, track and participant session is present.

/// One segment of a track, placed on the call clock.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentSpan {
    pub start_ms: f64,
    pub end_ms: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrackSpan {
    pub segments: Vec<SegmentSpan>,
}

impl TrackSpan {
    pub fn start_ms(&self) -> f64 {
        self.segments.iter().map(|s| s.start_ms).fold(f64::INFINITY, f64::min)
    }

    pub fn end_ms(&self) -> f64 {
        self.segments.iter().map(|s| s.end_ms).fold(f64::NEG_INFINITY, f64::max)
    }

    /// Index of the segment that covers `t_ms`, if any.
    pub fn segment_at(&self, t_ms: f64) -> Option<usize> {
        self.segments.iter().position(|s| s.start_ms <= t_ms && t_ms < s.end_ms)
    }
}

/// A participant session: from its first track's start to its last track's end.
#[derive(Debug, Clone, PartialEq)]
pub struct ParticipantSpan {
    pub start_ms: f64,
    pub end_ms: f64,
}

impl ParticipantSpan {
    pub fn from_tracks<'a>(tracks: impl IntoIterator<Item = &'a TrackSpan>) -> Option<ParticipantSpan> {
        let mut span: Option<ParticipantSpan> = None;
        for track in tracks {
            if track.segments.is_empty() {
                continue;
            }
            let (start, end) = (track.start_ms(), track.end_ms());
            span = Some(match span {
                None => ParticipantSpan { start_ms: start, end_ms: end },
                Some(s) => ParticipantSpan { start_ms: s.start_ms.min(start), end_ms: s.end_ms.max(end) },
            });
        }
        span
    }

    pub fn contains(&self, t_ms: f64) -> bool {
        self.start_ms <= t_ms && t_ms < self.end_ms
    }
}

/// The whole call: its length and the output frame ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct CallTimeline {
    /// Call length in ms: from call start (0) to the end of the last track.
    pub duration_ms: f64,
}

impl CallTimeline {
    pub fn new<'a>(tracks: impl IntoIterator<Item = &'a TrackSpan>) -> CallTimeline {
        let end = tracks.into_iter().filter(|t| !t.segments.is_empty()).map(TrackSpan::end_ms).fold(0.0, f64::max);
        CallTimeline { duration_ms: end }
    }

    /// Number of output frames at `fps` that cover the call.
    pub fn frame_count(&self, fps: u32) -> u64 {
        (self.duration_ms * f64::from(fps) / 1000.0).round().max(1.0) as u64
    }

    /// Call time of output frame `index` at `fps`.
    pub fn frame_time_ms(index: u64, fps: u32) -> f64 {
        index as f64 * 1000.0 / f64::from(fps.max(1))
    }
}
