//! The call clock: every packet, frame and sample placed at milliseconds since call start.
//!
//! Pure code: RTP timestamp unwrapping, the RTP -> wall clock mapping of a segment (from the
//! RTCP sender-report pair when the metadata has one, else from the first packet's pair), and
//! the spans of segments and participants on the call clock, and which frame of a track is
//! current at an output tick.

pub mod arrival;
mod clock;
pub mod due;
pub mod live_clock;
mod spans;

pub use clock::{AnchorSource, ClockInputs, RateSource, SegmentClock};
pub use due::{CurrentFrame, Stamped};
pub use spans::{CallTimeline, ParticipantSpan, SegmentSpan, TrackSpan};

/// Extends 32-bit RTP timestamps to a monotonic-ish 64-bit count, following wrap-around in
/// either direction (a packet a little older than the last one stays a little older).
#[derive(Debug, Clone, Default)]
pub struct TimestampUnwrapper {
    last_extended: Option<i64>,
}

impl TimestampUnwrapper {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn unwrap(&mut self, timestamp: u32) -> i64 {
        let extended = match self.last_extended {
            None => i64::from(timestamp),
            Some(last) => {
                let delta = timestamp.wrapping_sub(last as u32) as i32;
                last + i64::from(delta)
            }
        };
        self.last_extended = Some(extended);
        extended
    }
}

/// Same as [`TimestampUnwrapper`] for 16-bit RTP sequence numbers.
#[derive(Debug, Clone, Default)]
pub struct SequenceUnwrapper {
    last_extended: Option<i64>,
}

impl SequenceUnwrapper {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn unwrap(&mut self, sequence: u16) -> i64 {
        let extended = match self.last_extended {
            None => i64::from(sequence),
            Some(last) => {
                let delta = sequence.wrapping_sub(last as u16) as i16;
                last + i64::from(delta)
            }
        };
        // Only move forward: a late packet keeps its (smaller) number but is not the new base.
        self.last_extended = Some(self.last_extended.map_or(extended, |l| l.max(extended)));
        extended
    }
}

/// Signed distance from `from` to `to` in RTP ticks, the short way round the 32-bit circle.
pub fn rtp_delta_ticks(from: u32, to: u32) -> i64 {
    i64::from(to.wrapping_sub(from) as i32)
}

#[cfg(test)]
mod tests;
