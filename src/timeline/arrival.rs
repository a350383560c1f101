//! The lower envelope of a segment's arrival times: for each second of arrivals, the packet
//! that spent the least time on the network (arrival time minus media time). Jitter only ever
//! delays a packet, so the envelope follows the sender's clock plus the path's fixed delay:
//! it gives the clock rate and the anchor of a segment without sender reports far better than
//! any single packet's arrival, and, beside sender reports, how long the path took.

/// One envelope point per this much arrival time.
const WINDOW_MS: u32 = 1000;

/// A packet on the envelope: extended RTP timestamp, arrival ms in the dump.
pub type FloorPoint = (i64, u32);

/// Collects the envelope while the packets stream by (one point per second of arrivals).
#[derive(Debug, Clone)]
pub struct ArrivalFloor {
    ticks_per_ms: f64,
    points: Vec<FloorPoint>,
    /// The best packet of the window being filled: (window, point, transit key).
    current: Option<(u32, FloorPoint, f64)>,
}

impl ArrivalFloor {
    pub fn new(clock_rate_hz: u32) -> ArrivalFloor {
        ArrivalFloor { ticks_per_ms: f64::from(clock_rate_hz.max(1)) / 1000.0, points: Vec::new(), current: None }
    }

    pub fn push(&mut self, ticks: i64, arrival_ms: u32) {
        let window = arrival_ms / WINDOW_MS;
        // Arrival minus media time at the nominal rate: within one window drift is negligible.
        let key = f64::from(arrival_ms) - ticks as f64 / self.ticks_per_ms;
        match self.current {
            Some((w, _, best)) if w == window => {
                if key < best {
                    self.current = Some((window, (ticks, arrival_ms), key));
                }
            }
            previous => {
                self.points.extend(previous.map(|(_, point, _)| point));
                self.current = Some((window, (ticks, arrival_ms), key));
            }
        }
    }

    /// The envelope points, in arrival order.
    pub fn finish(mut self) -> Vec<FloorPoint> {
        self.points.extend(self.current.take().map(|(_, point, _)| point));
        self.points
    }
}

/// The clock rate (ticks per ms) of the envelope, with the arrival span it covers in ms;
/// `None` for fewer than two points. The rate is the slope between the least delayed packet
/// of the first third and that of the last third (each judged at the rate found so far, twice
/// over): a line through two packets that met no jitter, however the jitter is distributed.
pub fn floor_rate(points: &[FloorPoint], nominal_ticks_per_ms: f64) -> Option<(f64, f64)> {
    let (first, last) = (points.first()?, points.last()?);
    let span_ms = f64::from(last.1.saturating_sub(first.1));
    if points.len() < 2 || span_ms <= 0.0 {
        return None;
    }
    let third = points.len().div_ceil(3);
    let (head, tail) = (&points[..third], &points[points.len() - third..]);
    let mut rate = nominal_ticks_per_ms;
    for _ in 0..2 {
        let least = |part: &[FloorPoint]| {
            part.iter().copied().min_by(|a, b| transit(*a, first.0, rate).total_cmp(&transit(*b, first.0, rate)))
        };
        let (Some(a), Some(b)) = (least(head), least(tail)) else { return None };
        if b.1 <= a.1 {
            return None;
        }
        rate = (b.0 - a.0) as f64 / f64::from(b.1 - a.1);
    }
    Some((rate, span_ms))
}

/// Arrival minus media time (relative to `origin_ticks`) at `ticks_per_ms`.
fn transit((ticks, arrival_ms): FloorPoint, origin_ticks: i64, ticks_per_ms: f64) -> f64 {
    f64::from(arrival_ms) - (ticks - origin_ticks) as f64 / ticks_per_ms
}

/// How far the first packet (`first`) arrived after the envelope, at `ticks_per_ms`: the
/// jitter it carried, in ms (never negative).
pub fn jitter_of(first: FloorPoint, points: &[FloorPoint], ticks_per_ms: f64) -> f64 {
    let floor = points.iter().map(|p| transit(*p, first.0, ticks_per_ms)).fold(f64::INFINITY, f64::min);
    (transit(first, first.0, ticks_per_ms) - floor).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20 ms packets at 48 kHz over `seconds`, delayed by a jitter that is 0 once a second.
    fn jittery(seconds: u32, ppm: f64) -> Vec<FloorPoint> {
        let mut floor = ArrivalFloor::new(48_000);
        for k in 0..seconds * 50 {
            let jitter_ms = if k % 50 == 17 { 0 } else { 3 + (k * 7919) % 12 };
            let sent_ms = f64::from(k * 20) / (1.0 + ppm * 1e-6);
            floor.push(i64::from(k) * 960, 40 + sent_ms.round() as u32 + jitter_ms);
        }
        floor.finish()
    }

    #[test]
    fn the_envelope_follows_the_least_delayed_packets() {
        let points = jittery(10, 0.0);
        assert_eq!(points.len(), 11);
        assert_eq!(jitter_of((0, 45), &points, 48.0), 5.0);
        let (rate, span_ms) = floor_rate(&points, 48.0).expect("rate");
        assert!((rate - 48.0).abs() < 1e-3 && span_ms > 8000.0, "{rate} {span_ms}");
    }

    #[test]
    fn the_envelope_measures_drift_through_jitter() {
        let points = jittery(600, -150.0);
        let (rate, _) = floor_rate(&points, 48.0).expect("rate");
        let ppm = (rate / 48.0 - 1.0) * 1e6;
        assert!((ppm + 150.0).abs() < 5.0, "{ppm}");
    }

    #[test]
    fn too_few_points_give_no_rate() {
        assert_eq!(floor_rate(&[(0, 5)], 48.0), None);
        assert_eq!(floor_rate(&[], 48.0), None);
    }
}
