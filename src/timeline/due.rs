//! Which frame is current at call time t: frames come in capture order, stamped on the call
//! clock; at each output tick the newest frame captured at or before the tick is shown, for as
//! long as its segment lasts (plus a short hold after the segment's last frame). Pure: the
//! frames may come from a decoder, a live sender or a test.

/// Frames within this much after the tick still count as due (float rounding).
pub const DUE_EPSILON_MS: f64 = 0.5;
/// How long the last frame of a segment stays up after the segment's last timestamp.
pub const VIDEO_HOLD_MS: f64 = 100.0;

/// Something captured at `at_ms` on the call clock, which may be shown while the tick lies in
/// `[show_from_ms, show_until_ms]` (its segment's span, the hold included).
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped<T> {
    pub at_ms: f64,
    pub show_from_ms: f64,
    pub show_until_ms: f64,
    pub item: T,
}

impl<T> Stamped<T> {
    /// Whether this frame is due at tick `t_ms` (captured at or before it).
    pub fn is_due(&self, t_ms: f64) -> bool {
        self.at_ms <= t_ms + DUE_EPSILON_MS
    }

    /// Whether this frame may still be shown at tick `t_ms`.
    pub fn is_showable(&self, t_ms: f64) -> bool {
        t_ms >= self.show_from_ms - DUE_EPSILON_MS && t_ms <= self.show_until_ms
    }
}

/// The current frame of one track as the output clock advances.
#[derive(Debug, Clone)]
pub struct CurrentFrame<T> {
    /// The next frame, not yet due.
    pending: Option<Stamped<T>>,
    current: Option<Stamped<T>>,
    /// Bumped each time `current` changes, so a consumer redoes work only for new frames.
    generation: u64,
}

impl<T> Default for CurrentFrame<T> {
    fn default() -> Self {
        CurrentFrame { pending: None, current: None, generation: 0 }
    }
}

impl<T> CurrentFrame<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves to tick `t_ms`, pulling frames from `next` (which returns `None` when it has
    /// nothing more for now) until one lies beyond the tick. Returns whether there is a frame
    /// to show at `t_ms` ([`CurrentFrame::current`]).
    pub fn advance<E>(
        &mut self,
        t_ms: f64,
        mut next: impl FnMut() -> Result<Option<Stamped<T>>, E>,
    ) -> Result<bool, E> {
        loop {
            if self.pending.is_none() {
                self.pending = next()?;
                if self.pending.is_none() {
                    break;
                }
            }
            match self.pending.take() {
                Some(frame) if frame.is_due(t_ms) => {
                    self.current = Some(frame);
                    self.generation += 1;
                }
                other => {
                    self.pending = other;
                    break;
                }
            }
        }
        Ok(self.current.as_ref().is_some_and(|frame| frame.is_showable(t_ms)))
    }

    /// The current frame and its generation (bumped whenever the frame changes).
    pub fn current(&self) -> Option<(&T, u64)> {
        self.current.as_ref().map(|frame| (&frame.item, self.generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(at_ms: f64, segment: (f64, f64)) -> Stamped<f64> {
        Stamped { at_ms, show_from_ms: segment.0, show_until_ms: segment.1 + VIDEO_HOLD_MS, item: at_ms }
    }

    /// Frames every 33.3 ms from `from` to `to`.
    fn frames(from: f64, to: f64) -> Vec<Stamped<f64>> {
        let mut out = Vec::new();
        let mut at = from;
        while at <= to {
            out.push(frame(at, (from, to)));
            at += 100.0 / 3.0;
        }
        out
    }

    fn walk(frames: Vec<Stamped<f64>>, ticks: &[f64]) -> Vec<Option<(f64, u64)>> {
        let mut source = frames.into_iter();
        let mut current = CurrentFrame::new();
        ticks
            .iter()
            .map(|&t| {
                let shown = current.advance(t, || Ok::<_, ()>(source.next())).expect("infallible");
                shown.then(|| current.current().map(|(at, generation)| (*at, generation))).flatten()
            })
            .collect()
    }

    #[test]
    fn the_newest_frame_captured_at_or_before_the_tick_is_shown() {
        let shown = walk(frames(10.0, 200.0), &[0.0, 10.0, 40.0, 43.4, 76.0, 200.0]);
        assert_eq!(shown[0], None, "nothing before the first frame");
        assert_eq!(shown[1], Some((10.0, 1)));
        assert_eq!(shown[2], Some((10.0, 1)), "the next frame (43.3) is not captured yet");
        assert!((shown[3].expect("43.3").0 - 43.33).abs() < 0.01, "within the epsilon counts as due");
        assert!((shown[4].expect("76.7").0 - 43.33).abs() < 0.01, "76.7 is 0.7 ms too late for 76.0");
        assert!(shown[5].expect("last").0 > 176.0);
    }

    #[test]
    fn a_frame_one_epsilon_late_is_not_shown_early() {
        let shown = walk(vec![frame(100.6, (100.6, 200.0))], &[100.0, 100.1, 100.6]);
        assert_eq!(shown, vec![None, Some((100.6, 1)), Some((100.6, 1))]);
    }

    #[test]
    fn the_last_frame_holds_briefly_then_the_track_has_no_picture() {
        let shown = walk(frames(0.0, 100.0), &[100.0, 150.0, 199.0, 201.0, 500.0]);
        assert!(shown[..3].iter().all(Option::is_some), "{shown:?}");
        assert_eq!(&shown[3..], &[None, None], "after the hold, no picture");
    }

    #[test]
    fn frames_skipped_between_ticks_advance_the_generation_once_per_tick_shown() {
        // 60 fps input, 30 fps output: every other frame is skipped, each tick shows a new one.
        let input: Vec<_> = (0..60).map(|i| frame(f64::from(i) * 1000.0 / 60.0, (0.0, 1000.0))).collect();
        let ticks: Vec<f64> = (0..30).map(|n| f64::from(n) * 1000.0 / 30.0).collect();
        let shown = walk(input, &ticks);
        for (n, s) in shown.iter().enumerate() {
            let (at, generation) = s.expect("a picture on every tick");
            assert!((at - ticks[n]).abs() < 0.01, "tick {n}: {at}");
            assert_eq!(generation, 2 * n as u64 + 1, "two frames consumed per tick");
        }
    }

    #[test]
    fn a_second_segment_replaces_the_first_and_a_hole_shows_nothing() {
        let mut input = frames(0.0, 100.0);
        input.extend(frames(1000.0, 1100.0));
        let shown = walk(input, &[50.0, 500.0, 999.0, 1000.0, 1050.0]);
        assert!(shown[0].is_some());
        assert_eq!(shown[1], None, "between segments");
        assert_eq!(shown[2], None);
        assert_eq!(shown[3].map(|s| s.0), Some(1000.0));
        assert!(shown[4].is_some());
    }
}
