//! A live sender's capture timestamps placed on the call clock as its media arrives.
//!
//! A sender stamps each frame with its own clock; the call clock is the node's (milliseconds
//! since the live job started). The offset between the two is read from the arrivals: a frame
//! can arrive late (network, queues, a busy sender) but never before it was captured plus the
//! path's least delay, so the least transit (arrival minus capture) seen recently is the
//! offset. Over a call:
//! - a lower transit lowers the offset at once (it proves the offset was too high; a sender
//!   whose clock runs fast shows this);
//! - the least transit of the last few one-second windows rising (a sender whose clock runs
//!   slow, or a path that got slower) raises the offset, at a bounded rate, so pictures and
//!   sound never jump;
//! - a jump of the sender's timestamps (a restarted capture, a clock set) re-anchors: forward
//!   at once, backward once a whole window says so.
//!
//! Pure and deterministic: the caller passes both times.

use std::collections::VecDeque;

/// How [`LiveClock`] follows a sender.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveClockSettings {
    /// Arrivals are grouped in windows of this length; each keeps its least transit.
    pub window_ms: f64,
    /// Windows remembered: the offset rises to the least transit over these.
    pub windows: usize,
    /// The offset rises by at most this many ms per second of arrivals.
    pub max_rise_ms_per_s: f64,
    /// A change of transit larger than this is a jump of the sender's timestamps.
    pub jump_ms: f64,
}

impl Default for LiveClockSettings {
    fn default() -> Self {
        LiveClockSettings { window_ms: 1000.0, windows: 5, max_rise_ms_per_s: 5.0, jump_ms: 1000.0 }
    }
}

/// One sender's timestamps mapped onto the call clock.
#[derive(Debug, Clone)]
pub struct LiveClock {
    settings: LiveClockSettings,
    /// Call time minus capture time, as applied now; `None` before the first arrival.
    offset_ms: Option<f64>,
    /// Per window of arrivals (index, least transit), oldest first; the last is being filled.
    floors: VecDeque<(i64, f64)>,
    last_arrival_ms: f64,
    /// Times the sender's timestamps jumped and the clock re-anchored.
    jumps: u32,
}

impl LiveClock {
    pub fn new(settings: LiveClockSettings) -> LiveClock {
        LiveClock { settings, offset_ms: None, floors: VecDeque::new(), last_arrival_ms: 0.0, jumps: 0 }
    }

    /// Re-anchors seen so far (a sender restarting its clock).
    pub fn jumps(&self) -> u32 {
        self.jumps
    }

    /// The call time (ms) of media captured at `capture_ms` on the sender's clock that arrived
    /// at call time `arrival_ms`. Arrival times must not go backwards.
    pub fn place(&mut self, capture_ms: f64, arrival_ms: f64) -> f64 {
        let s = self.settings;
        let transit = arrival_ms - capture_ms;
        let window = (arrival_ms / s.window_ms).floor() as i64;
        let Some(mut offset) = self.offset_ms else {
            self.anchor(window, transit, arrival_ms);
            return arrival_ms;
        };
        if transit < offset - s.jump_ms {
            // Timestamps leapt forward: nothing can arrive that early.
            self.jumps += 1;
            self.anchor(window, transit, arrival_ms);
            return arrival_ms;
        }
        match self.floors.back_mut() {
            Some((w, least)) if *w == window => *least = least.min(transit),
            _ => {
                // The window just completed lay wholly above the offset by a jump: timestamps
                // went back.
                if let Some(&(_, completed)) = self.floors.back()
                    && completed > offset + s.jump_ms
                {
                    self.jumps += 1;
                    self.anchor(window, transit, arrival_ms);
                    return capture_ms + transit;
                }
                self.floors.push_back((window, transit));
                while self.floors.len() > s.windows {
                    self.floors.pop_front();
                }
            }
        }
        if transit < offset {
            offset = transit;
        } else if self.floors.len() >= s.windows {
            let floor = self.floors.iter().map(|&(_, t)| t).fold(f64::INFINITY, f64::min);
            let elapsed_s = (arrival_ms - self.last_arrival_ms).max(0.0) / 1000.0;
            offset = floor.min(offset + s.max_rise_ms_per_s * elapsed_s).max(offset);
        }
        self.offset_ms = Some(offset);
        self.last_arrival_ms = arrival_ms;
        capture_ms + offset
    }

    fn anchor(&mut self, window: i64, transit: f64, arrival_ms: f64) {
        self.offset_ms = Some(transit);
        self.floors.clear();
        self.floors.push_back((window, transit));
        self.last_arrival_ms = arrival_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic jitter of 0 to 30 ms.
    fn jitter_ms(i: u64) -> f64 {
        ((i * 7919) % 31) as f64
    }

    #[test]
    fn a_steady_sender_is_placed_at_its_least_delay() {
        let mut clock = LiveClock::new(LiveClockSettings::default());
        let mut worst: f64 = 0.0;
        for i in 0..3000u64 {
            let capture = 5_000_000.0 + i as f64 * 33.3;
            let true_call = i as f64 * 33.3 + 100.0;
            let arrival = true_call + 40.0 + jitter_ms(i);
            let placed = clock.place(capture, arrival);
            if i > 100 {
                worst = worst.max((placed - (true_call + 40.0)).abs());
            }
        }
        assert!(worst < 0.5, "placed up to {worst} ms off");
        assert_eq!(clock.jumps(), 0);
    }

    #[test]
    fn drifting_senders_are_followed_either_way() {
        for ppm in [-1000.0, 1000.0] {
            let mut clock = LiveClock::new(LiveClockSettings::default());
            let mut worst: f64 = 0.0;
            for i in 0..30_000u64 {
                let true_ms = i as f64 * 20.0;
                let capture = 1000.0 + true_ms * (1.0 + ppm * 1e-6);
                let arrival = true_ms + 30.0 + jitter_ms(i);
                let placed = clock.place(capture, arrival);
                if i > 500 {
                    worst = worst.max((placed - (true_ms + 30.0)).abs());
                }
            }
            // Following a slow clock lags by at most the remembered windows' drift (5 ms).
            assert!(worst <= 6.0, "{ppm} ppm: placed up to {worst} ms off");
        }
    }

    #[test]
    fn jumps_of_the_senders_timestamps_re_anchor() {
        for jump_ms in [60_000.0, -60_000.0] {
            let mut clock = LiveClock::new(LiveClockSettings::default());
            let mut placed_after = Vec::new();
            for i in 0..600u64 {
                let true_ms = i as f64 * 33.0;
                let capture = true_ms + if i >= 300 { jump_ms } else { 0.0 };
                let placed = clock.place(capture, true_ms + 50.0);
                if i >= 300 {
                    placed_after.push(placed - (true_ms + 50.0));
                }
            }
            assert_eq!(clock.jumps(), 1, "{jump_ms}");
            // Back jumps are believed once a whole window of arrivals says so (within two).
            let settled = if jump_ms > 0.0 { 0 } else { 62 };
            assert!(placed_after[settled..].iter().all(|d| d.abs() < 1e-6), "{jump_ms}: {placed_after:?}");
        }
    }

    #[test]
    fn a_delay_spike_is_not_a_jump() {
        let mut clock = LiveClock::new(LiveClockSettings::default());
        let mut arrival: f64 = 0.0;
        for i in 0..400u64 {
            let true_ms = i as f64 * 33.0;
            // The path stalls for 800 ms at frame 100, then delivers what it held in a burst.
            let stall = if i == 100 { 800.0 } else { 0.0 };
            arrival = arrival.max(true_ms + 20.0 + stall);
            let placed = clock.place(true_ms, arrival);
            assert!((placed - (true_ms + 20.0)).abs() < 1e-6, "frame {i} placed at {placed}");
        }
        assert_eq!(clock.jumps(), 0);
    }
}
