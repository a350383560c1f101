//! The call clock: every packet, frame and sample placed at milliseconds since call start.
//!
//! Pure code: RTP timestamp unwrapping, the RTP -> wall clock mapping of a segment (from the
//! RTCP sender-report pair when the metadata has one, else from the first packet's pair), and
//! the spans of segments and participants on the call clock.

mod spans;

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

/// Where the anchor of a segment's RTP clock came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorSource {
    /// The first RTCP sender report: `first_rtcp_rtp_timestamp` / `first_rtcp_ntp_timestamp`.
    RtcpSenderReport,
    /// The server's arrival time of the first RTP packet: `first_rtp_*`.
    FirstPacketArrival,
}

/// Maps one segment's RTP timestamps onto the call clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentClock {
    /// An RTP timestamp whose wall-clock time is known...
    pub anchor_rtp: u32,
    /// ...and that time, in ms since call start.
    pub anchor_call_ms: f64,
    pub clock_rate_hz: u32,
    pub anchor_source: AnchorSource,
}

impl SegmentClock {
    /// Builds the mapping from the segment's timing metadata. `rtcp` is the first sender
    /// report's (rtp, unix ms) pair when the metadata has a usable one.
    pub fn new(
        clock_rate_hz: u32,
        call_start_unix_ms: i64,
        first_rtp: (u32, i64),
        rtcp: Option<(u32, i64)>,
    ) -> SegmentClock {
        let ((anchor_rtp, anchor_unix_ms), anchor_source) = match rtcp {
            Some(pair) => (pair, AnchorSource::RtcpSenderReport),
            None => (first_rtp, AnchorSource::FirstPacketArrival),
        };
        SegmentClock {
            anchor_rtp,
            anchor_call_ms: (anchor_unix_ms - call_start_unix_ms) as f64,
            clock_rate_hz: clock_rate_hz.max(1),
            anchor_source,
        }
    }

    /// The call time of an RTP timestamp near the anchor (within half the 32-bit range).
    pub fn call_ms(&self, rtp_timestamp: u32) -> f64 {
        self.anchor_call_ms + self.ticks_to_ms(rtp_delta_ticks(self.anchor_rtp, rtp_timestamp))
    }

    pub fn ticks_to_ms(&self, ticks: i64) -> f64 {
        ticks as f64 * 1000.0 / f64::from(self.clock_rate_hz)
    }
}

#[cfg(test)]
mod tests;
