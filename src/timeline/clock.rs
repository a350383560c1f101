//! One segment's RTP clock mapped onto the call clock: an anchor (a timestamp whose wall-clock
//! time is known) and a rate (RTP ticks per wall-clock millisecond, which differs from the
//! nominal clock rate when the sender's clock drifts). Every choice made, and every metadata
//! field found unusable, is recorded for the job report.

use super::arrival::{FloorPoint, floor_rate, jitter_of};
use super::rtp_delta_ticks;

/// Milliseconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET_MS: i64 = 2_208_988_800_000;
/// A sender report whose implied first-packet time is further than this from the server's
/// arrival time of that packet is inconsistent with the RTP fields.
const MAX_RTCP_ARRIVAL_MISMATCH_MS: f64 = 1000.0;
/// Sender clocks are not believed to drift more than this.
const MAX_DRIFT_PPM: f64 = 1000.0;
/// Sender reports this close together say too little about the rate.
const MIN_RATE_SPAN_MS: f64 = 10_000.0;
/// A rate measured from arrival times is used only when it moves the segment's end by more
/// than the envelope's own error could (its two end points are each within about a
/// millisecond of the path's floor).
const MIN_ARRIVAL_CORRECTION_MS: f64 = 5.0;

/// Where the anchor of a segment's RTP clock came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnchorSource {
    /// The first RTCP sender report: `first_rtcp_rtp_timestamp` / `first_rtcp_ntp_timestamp`.
    RtcpSenderReport,
    /// The server's arrival time of the first RTP packet: `first_rtp_*`.
    FirstPacketArrival,
}

/// Where the rate of a segment's RTP clock came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateSource {
    /// The SDP clock rate: no usable measurement, or no measurable drift.
    Nominal,
    /// The first and last RTCP sender reports.
    SenderReports,
    /// The arrival times of the first and last packets.
    PacketArrivals,
}

/// What the timing metadata and the packets say about one segment's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockInputs {
    pub clock_rate_hz: u32,
    pub call_start_unix_ms: i64,
    /// `first_rtp_rtp_timestamp`, `first_rtp_unix_timestamp`.
    pub first_rtp: (u32, i64),
    /// First and last sender reports as (RTP timestamp, wall clock ms); `None` when absent or 0.
    pub rtcp_first: Option<(u32, i64)>,
    pub rtcp_last: Option<(u32, i64)>,
    /// The first packet in sequence order: extended timestamp (its low 32 bits are the raw
    /// one), arrival ms in the dump.
    pub first_packet: (i64, u32),
    /// The packet with the largest extended timestamp: extended timestamp, arrival ms.
    pub last_packet: (i64, u32),
    /// The packets had SSRC changes or timestamp jumps: the RTP fields of the last sender
    /// report are in another timestamp base.
    pub discontinuous: bool,
    /// The lower envelope of the packets' arrival times (see [`super::arrival`]).
    pub arrival_floor: Vec<FloorPoint>,
    /// The decoded media lags what its timestamps say by this much: Opus's lookahead, which
    /// a libwebrtc sender does not take off its timestamps (the codec's `decoder_delay_ms`).
    pub decoder_delay_ms: f64,
}

/// Maps one segment's extended RTP timestamps onto the call clock.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentClock {
    /// An extended RTP timestamp whose call time is known...
    pub anchor_ticks: i64,
    /// ...and that time, in ms since call start.
    pub anchor_call_ms: f64,
    /// RTP ticks per wall-clock ms.
    pub ticks_per_ms: f64,
    pub clock_rate_hz: u32,
    pub anchor_source: AnchorSource,
    pub rate_source: RateSource,
    /// Sender-report anchored segments: the least time a packet took from capture to the
    /// recorder (the path's delay), ms.
    pub transit_ms: Option<f64>,
    /// What was found unusable and what was done instead, for the job report.
    pub notes: Vec<String>,
}

impl SegmentClock {
    /// A clock at the nominal rate with its anchor at the first packet's arrival.
    fn nominal(clock_rate_hz: u32, anchor_ticks: i64, anchor_call_ms: f64) -> SegmentClock {
        let clock_rate_hz = clock_rate_hz.max(1);
        SegmentClock {
            anchor_ticks,
            anchor_call_ms,
            ticks_per_ms: f64::from(clock_rate_hz) / 1000.0,
            clock_rate_hz,
            anchor_source: AnchorSource::FirstPacketArrival,
            rate_source: RateSource::Nominal,
            transit_ms: None,
            notes: Vec::new(),
        }
    }

    /// Chooses anchor and rate from the metadata and packets, falling back as the format's
    /// reference does (RTCP fields that are absent or 0 are not used) and further where the
    /// fields contradict each other.
    pub fn from_inputs(inputs: &ClockInputs) -> SegmentClock {
        let (first_ticks, first_arrival_ms) = inputs.first_packet;
        let extend = |raw: u32| first_ticks + rtp_delta_ticks(first_ticks as u32, raw);
        let (mut first_rtp_raw, first_rtp_unix_ms) = inputs.first_rtp;
        let mut notes = Vec::new();
        let stated_ticks = rtp_delta_ticks(first_ticks as u32, first_rtp_raw);
        if stated_ticks.abs() > i64::from(inputs.clock_rate_hz) {
            // Not the first packet's timestamp: the dump's own first packet is.
            notes.push(format!(
                "first_rtp_rtp_timestamp {first_rtp_raw} is {:+.0} ms from the first packet's timestamp {}: the \
                 packet's used",
                stated_ticks as f64 * 1000.0 / f64::from(inputs.clock_rate_hz.max(1)),
                first_ticks as u32
            ));
            first_rtp_raw = first_ticks as u32;
        }
        let mut clock = SegmentClock::nominal(
            inputs.clock_rate_hz,
            extend(first_rtp_raw),
            (first_rtp_unix_ms - inputs.call_start_unix_ms) as f64,
        );
        clock.notes = notes;
        let nominal_ticks_per_ms = clock.ticks_per_ms;
        let arrival_call_ms = clock.anchor_call_ms;

        // The rate first: from the sender reports, else from the packets' arrival times.
        let rtcp_first = inputs.rtcp_first.map(|pair| clock.unix_ms_of_report(pair, first_rtp_unix_ms, "first"));
        let rtcp_last = inputs.rtcp_last.map(|pair| clock.unix_ms_of_report(pair, first_rtp_unix_ms, "last"));
        match (rtcp_first, rtcp_last) {
            _ if inputs.discontinuous => clock
                .notes
                .push("the packets change SSRC or jump in time: sender reports not used for the clock rate".into()),
            (Some((first_rtp, first_ms)), Some((last_rtp, last_ms))) => {
                let span_ms = (last_ms - first_ms) as f64;
                // The last report can be hours later: take the wrap count from the wall clock.
                let expected = span_ms * nominal_ticks_per_ms;
                let step = i64::from(last_rtp.wrapping_sub(first_rtp));
                let wraps = ((expected - step as f64) / 4_294_967_296.0).round() as i64;
                let ticks = step + wraps * 4_294_967_296;
                if span_ms >= MIN_RATE_SPAN_MS {
                    let rate = ticks as f64 / span_ms;
                    if ppm(rate, nominal_ticks_per_ms).abs() <= MAX_DRIFT_PPM {
                        clock.ticks_per_ms = rate;
                        clock.rate_source = RateSource::SenderReports;
                    } else {
                        clock.notes.push(format!(
                            "first and last sender reports imply a clock off by {:.0} ppm: not used",
                            ppm(rate, nominal_ticks_per_ms)
                        ));
                    }
                }
            }
            _ => {}
        }
        if clock.rate_source == RateSource::Nominal
            && let Some((rate, span_ms)) = floor_rate(&inputs.arrival_floor, nominal_ticks_per_ms)
            && span_ms >= MIN_RATE_SPAN_MS
        {
            // The line through the least delayed packets, not the first and last arrivals.
            let ticks = (inputs.last_packet.0 - first_ticks) as f64;
            let correction_ms = ticks / nominal_ticks_per_ms - ticks / rate;
            if ppm(rate, nominal_ticks_per_ms).abs() <= MAX_DRIFT_PPM && correction_ms.abs() > MIN_ARRIVAL_CORRECTION_MS
            {
                clock.ticks_per_ms = rate;
                clock.rate_source = RateSource::PacketArrivals;
            }
        }
        // The call time at which a dump arrival time was recorded.
        let recorded_at = |arrival_ms: u32| arrival_call_ms + f64::from(arrival_ms) - f64::from(first_arrival_ms);

        // Then the anchor: the first sender report when it agrees with the arrival times.
        match rtcp_first {
            None => clock.notes.push(
                "first_rtcp_* absent or 0: anchored at the first packet's arrival (first_rtp_unix_timestamp)".into(),
            ),
            Some((rtp, unix_ms)) => {
                let ticks = extend(rtp);
                let report_call_ms = (unix_ms - inputs.call_start_unix_ms) as f64;
                let implied_first_ms = report_call_ms + (clock.anchor_ticks - ticks) as f64 / clock.ticks_per_ms;
                let mismatch_ms = implied_first_ms - arrival_call_ms;
                if mismatch_ms.abs() <= MAX_RTCP_ARRIVAL_MISMATCH_MS {
                    clock.anchor_ticks = ticks;
                    clock.anchor_call_ms = report_call_ms;
                    clock.anchor_source = AnchorSource::RtcpSenderReport;
                    clock.transit_ms = inputs
                        .arrival_floor
                        .iter()
                        .map(|&(ticks, arrival_ms)| recorded_at(arrival_ms) - clock.call_ms(ticks))
                        .reduce(f64::min);
                } else {
                    clock.notes.push(format!(
                        "first_rtcp_* puts the first packet {mismatch_ms:+.0} ms from its arrival time: \
                         inconsistent with first_rtp_*, anchored at the first packet's arrival"
                    ));
                }
            }
        }
        if clock.anchor_source == AnchorSource::FirstPacketArrival {
            // The first packet may have been held up: anchor on the envelope instead.
            let jitter_ms = jitter_of(inputs.first_packet, &inputs.arrival_floor, clock.ticks_per_ms);
            if jitter_ms >= 0.5 {
                clock.anchor_call_ms -= jitter_ms;
                clock.notes.push(format!(
                    "the first packet arrived {jitter_ms:.0} ms later than the least delayed packets imply: \
                     anchored on them"
                ));
            }
        }
        if inputs.decoder_delay_ms != 0.0 {
            clock.anchor_call_ms -= inputs.decoder_delay_ms;
        }
        clock
    }

    /// Moves the whole segment `ms` earlier on the call clock.
    pub fn advance_by(&mut self, ms: f64) {
        self.anchor_call_ms -= ms;
    }

    /// A report's wall clock as Unix ms; NTP-epoch milliseconds are recognised and converted.
    fn unix_ms_of_report(&mut self, (rtp, ntp_ms): (u32, i64), arrival_unix_ms: i64, which: &str) -> (u32, i64) {
        let day_ms = 86_400_000;
        if (ntp_ms - NTP_UNIX_OFFSET_MS - arrival_unix_ms).abs() < day_ms {
            self.notes.push(format!("{which}_rtcp_ntp_timestamp counts from 1900 (NTP epoch): converted to Unix ms"));
            return (rtp, ntp_ms - NTP_UNIX_OFFSET_MS);
        }
        (rtp, ntp_ms)
    }

    /// The call time of an extended RTP timestamp.
    pub fn call_ms(&self, ticks: i64) -> f64 {
        self.call_ms_f(ticks as f64)
    }

    /// The call time of a fractional extended timestamp.
    pub fn call_ms_f(&self, ticks: f64) -> f64 {
        self.anchor_call_ms + (ticks - self.anchor_ticks as f64) / self.ticks_per_ms
    }

    /// Wall-clock ms covered by `ticks` RTP ticks.
    pub fn ticks_to_ms(&self, ticks: i64) -> f64 {
        ticks as f64 / self.ticks_per_ms
    }

    /// How fast the sender's clock ran against the wall clock, parts per million.
    pub fn drift_ppm(&self) -> f64 {
        ppm(self.ticks_per_ms, f64::from(self.clock_rate_hz) / 1000.0)
    }

    /// Media time (at the nominal rate) per call-clock time: resample by this to lock a
    /// sender's samples to the call clock.
    pub fn rate_ratio(&self) -> f64 {
        self.ticks_per_ms * 1000.0 / f64::from(self.clock_rate_hz)
    }
}

fn ppm(rate: f64, nominal: f64) -> f64 {
    (rate / nominal - 1.0) * 1e6
}
