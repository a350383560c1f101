//! Network impairments for `tessera synth`: sits between the RTP payloader and the rtpdump writer and makes one
//! track's packet stream look like a real capture (loss in bursts, RTX, RED, ULPFEC, reordering, duplicates, an
//! SSRC change, a timestamp jump), deterministically for a seed. It holds a bounded number of packets (at most
//! 2 * (reorder depth + 3) + RTX delay + 1, typically far fewer), so tracks can be arbitrarily long.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::plan::SplitMix;
use crate::ingest::rtp::{RtpPacketInfo, build_rtp, parse_rtp};

/// Network conditions applied to one track's packets. Out-of-range values are clamped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Impairments {
    /// Long-run share of packets dropped, percent (0..=50), in bursts of 1..=`burst_max_packets` (uniform).
    pub loss_pct: f64,
    /// Longest drop burst (1..=50); 0 or 1 means isolated drops. A burst is always followed by a kept packet.
    pub burst_max_packets: u32,
    /// Percent of packets delayed: such a packet is written after 1..=`reorder_depth_packets` later packets.
    pub reorder_pct: f64,
    /// Largest reorder delay in packets (1..=100).
    pub reorder_depth_packets: u32,
    /// Percent of packets written twice, the copy after 0..=3 later packets.
    pub duplicate_pct: f64,
    /// When set, dropped packets may come back as RTX (RFC 4588) with this payload type.
    pub rtx_payload_type: Option<u8>,
    /// Percent of dropped packets that get an RTX; the rest stay lost.
    pub rtx_recover_pct: f64,
    /// RTX is written this many input packets after the drop (1..=100); 0 means 5.
    pub rtx_delay_packets: u32,
    /// When set, every packet is wrapped in RED (RFC 2198) with this payload type, carrying the previous payload.
    pub red_payload_type: Option<u8>,
    /// When set, a ULPFEC-looking packet (RFC 5109) with this payload type follows every `fec_every_packets`.
    pub fec_payload_type: Option<u8>,
    /// Media packets per FEC packet (1..=16); 0 means 10.
    pub fec_every_packets: u32,
    /// From the first packet arriving at or after this: new random SSRC, sequence base and timestamp base.
    pub ssrc_change_at_ms: Option<u32>,
    /// From the first packet arriving at or after this: timestamps jump by `timestamp_jump_ticks` (wrapping).
    pub timestamp_jump_at_ms: Option<u32>,
    /// Size of the timestamp jump in RTP ticks.
    pub timestamp_jump_ticks: u32,
    /// Seed for every random choice.
    pub seed: u64,
}

/// Counters for the test report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImpairStats {
    /// Packets pushed.
    pub packets_in: u64,
    /// Packets dropped (including those later recovered by RTX).
    pub dropped: u64,
    /// Dropped packets for which an RTX packet is written.
    pub recovered_by_rtx: u64,
    /// Packets written later than their turn.
    pub reordered: u64,
    /// Packets written twice.
    pub duplicated: u64,
    /// FEC packets written.
    pub fec_packets: u64,
    /// Packets wrapped in RED.
    pub red_wrapped: u64,
}

/// A packet waiting for its release key (ordered by key, then insertion order).
type Delayed = Reverse<(u64, u64, u32, bool, Vec<u8>)>;

/// The FEC group being accumulated: packet count, first sequence number, XOR of the fixed headers, of the
/// lengths after them, and of the payloads.
#[derive(Default)]
struct FecGroup {
    count: u32,
    base_seq: u16,
    header_xor: [u8; 12],
    len_xor: u16,
    payload_xor: Vec<u8>,
}

/// Applies [`Impairments`] to a stream of RTP packets.
pub struct Impairer {
    /// The impairments, clamped.
    p: Impairments,
    /// Probability of a drop event at a packet that may start one, percent.
    event_pct: f64,
    /// One random stream per decision, so enabling one impairment leaves the others' choices alone.
    rng: [SplitMix; 5],
    s: State,
}

/// Mutable per-stream state.
#[derive(Default)]
struct State {
    jumped: bool,
    /// After the SSRC change: (sequence offset, timestamp offset, new SSRC).
    switch: Option<(u16, u32, u32)>,
    red_prev: Option<(u32, Vec<u8>)>,
    held_back: Option<(u32, Vec<u8>)>,
    input_index: u64,
    stage_index: u64,
    insert_order: u64,
    burst_left: u32,
    keep_next: bool,
    delayed: BinaryHeap<Delayed>,
    rtx_pending: VecDeque<(u64, Vec<u8>)>,
    /// The RTX SSRC is the media SSRC XOR this (non-zero), so it follows the SSRC change.
    rtx_ssrc_xor: u32,
    rtx_seq: u16,
    fec: FecGroup,
    fec_seq: u16,
    last_out_ms: u32,
    stats: ImpairStats,
    /// Arrival times given for the packets dropped and not resent as RTX.
    lost_ms: Vec<u32>,
}

const LOSS: usize = 0;
const REORDER: usize = 1;
const DUPLICATE: usize = 2;
const RTX: usize = 3;
const BASES: usize = 4;

fn pct(value: f64, max: f64) -> f64 {
    if value.is_nan() { 0.0 } else { value.clamp(0.0, max) }
}

fn chance(rng: &mut SplitMix, percent: f64) -> bool {
    percent > 0.0 && (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 100.0 < percent
}

impl Impairer {
    /// Creates an impairer; parameters are clamped to their documented ranges.
    pub fn new(impairments: &Impairments) -> Impairer {
        let mut p = impairments.clone();
        (p.loss_pct, p.reorder_pct, p.duplicate_pct) =
            (pct(p.loss_pct, 50.0), pct(p.reorder_pct, 100.0), pct(p.duplicate_pct, 100.0));
        p.rtx_recover_pct = pct(p.rtx_recover_pct, 100.0);
        p.burst_max_packets = p.burst_max_packets.clamp(1, 50);
        p.reorder_depth_packets = p.reorder_depth_packets.clamp(1, 100);
        p.rtx_delay_packets = if p.rtx_delay_packets == 0 { 5 } else { p.rtx_delay_packets.min(100) };
        p.fec_every_packets = if p.fec_every_packets == 0 { 10 } else { p.fec_every_packets.min(16) };
        p.timestamp_jump_at_ms = p.timestamp_jump_at_ms.filter(|_| p.timestamp_jump_ticks != 0);
        for pt in [&mut p.rtx_payload_type, &mut p.red_payload_type, &mut p.fec_payload_type].into_iter().flatten() {
            *pt &= 0x7f;
        }
        // A cycle is a burst of mean m packets, one forced kept packet, then geometric kept packets: event
        // probability e gives loss l = m / (m + 1 / e), so e = l / (m (1 - l)).
        let (loss, mean_burst) = (p.loss_pct / 100.0, (f64::from(p.burst_max_packets) + 1.0) / 2.0);
        let event_pct = (loss / (mean_burst * (1.0 - loss)) * 100.0).min(100.0);
        let mut master = SplitMix::new(p.seed);
        let mut rng = [0; 5].map(|_| SplitMix::new(master.next_u64()));
        let (rtx_ssrc_xor, rtx_seq, fec_seq) =
            (rng[BASES].next_u32() | 1, rng[BASES].next_u32() as u16, rng[BASES].next_u32() as u16);
        Impairer { p, event_pct, rng, s: State { rtx_ssrc_xor, rtx_seq, fec_seq, ..State::default() } }
    }

    /// True when the impairments change nothing (so callers can skip the work).
    pub fn is_identity(&self) -> bool {
        let p = &self.p;
        let no_wrapping = p.red_payload_type.or(p.fec_payload_type).is_none();
        [p.loss_pct, p.reorder_pct, p.duplicate_pct] == [0.0; 3]
            && no_wrapping
            && p.ssrc_change_at_ms.or(p.timestamp_jump_at_ms).is_none()
    }

    /// Takes the next packet from the payloader (a whole RTP packet) with its arrival time; returns the packets to
    /// write now, in write order, each with the arrival time to record (never decreasing). When loss is enabled the
    /// latest packet is held back until the next push or [`Impairer::finish`], so the last packet is never dropped.
    /// Fails only on an unparseable input packet.
    pub fn push(&mut self, arrival_ms: u32, packet: &[u8]) -> Result<Vec<(u32, Vec<u8>)>, String> {
        let info = parse_rtp(packet).map_err(|e| format!("cannot impair packet arriving at {arrival_ms} ms: {e}"))?;
        self.s.stats.packets_in += 1;
        let media = self.rewrite(arrival_ms, packet, &info);
        let media = self.wrap_red(media, &info);
        let mut out = Vec::new();
        if self.p.loss_pct == 0.0 {
            self.process(arrival_ms, media, false, &mut out);
        } else if let Some((held_ms, held)) = self.s.held_back.replace((arrival_ms, media)) {
            self.process(held_ms, held, true, &mut out);
        }
        Ok(out)
    }

    /// Flushes everything still held (the held-back packet, delayed packets, pending RTX) at the end of the stream.
    pub fn finish(&mut self) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        if let Some((arrival_ms, packet)) = self.s.held_back.take() {
            self.process(arrival_ms, packet, false, &mut out);
        }
        self.release(u64::MAX, &mut out);
        self.emit_rtx(u64::MAX, &mut out);
        out
    }

    /// The arrival times (as pushed) of the packets lost so far: dropped and not resent as RTX
    /// (a RED packet may still carry one).
    pub fn lost_ms(&self) -> &[u32] {
        &self.s.lost_ms
    }

    /// Counters for the tests.
    #[cfg(test)]
    pub fn stats(&self) -> ImpairStats {
        self.s.stats
    }

    /// Packets currently held inside the impairer.
    #[cfg(test)]
    fn held(&self) -> usize {
        usize::from(self.s.held_back.is_some()) + self.s.delayed.len() + self.s.rtx_pending.len()
    }

    /// Applies the timestamp jump and the SSRC change to the header fields.
    fn rewrite(&mut self, arrival_ms: u32, packet: &[u8], info: &RtpPacketInfo) -> Vec<u8> {
        let (mut seq, mut ts, mut ssrc) = (info.sequence, info.timestamp, info.ssrc);
        if let Some(at_ms) = self.p.timestamp_jump_at_ms {
            self.s.jumped |= arrival_ms >= at_ms;
            if self.s.jumped {
                ts = ts.wrapping_add(self.p.timestamp_jump_ticks);
            }
        }
        if self.s.switch.is_none() && self.p.ssrc_change_at_ms.is_some_and(|at_ms| arrival_ms >= at_ms) {
            let bases = &mut self.rng[BASES];
            let mut new_ssrc = bases.next_u32();
            while new_ssrc == ssrc {
                new_ssrc = bases.next_u32();
            }
            let (seq_base, ts_base) = (bases.next_u32() as u16, bases.next_u32());
            self.s.switch = Some((seq_base.wrapping_sub(seq), ts_base.wrapping_sub(ts), new_ssrc));
            self.s.red_prev = None;
        }
        if let Some((seq_offset, ts_offset, new_ssrc)) = self.s.switch {
            (seq, ts, ssrc) = (seq.wrapping_add(seq_offset), ts.wrapping_add(ts_offset), new_ssrc);
        }
        let mut out = packet.to_vec();
        for (at, bytes) in [(2, &seq.to_be_bytes()[..]), (4, &ts.to_be_bytes()), (8, &ssrc.to_be_bytes())] {
            if let Some(field) = out.get_mut(at..at + bytes.len()) {
                field.copy_from_slice(bytes);
            }
        }
        out
    }

    /// Wraps the (rewritten) packet in RED, keeping its header but for the payload type and padding.
    fn wrap_red(&mut self, packet: Vec<u8>, info: &RtpPacketInfo) -> Vec<u8> {
        let (Some(red_pt), Some(payload), Some(header)) =
            (self.p.red_payload_type, info.payload(&packet), packet.get(..info.payload_offset))
        else {
            return packet;
        };
        let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let mut out = header.to_vec();
        out[0] &= !0x20;
        out[1] = (out[1] & 0x80) | red_pt;
        let fits = |(prev_ts, prev): &&(u32, Vec<u8>)| ts.wrapping_sub(*prev_ts) < 1 << 14 && prev.len() < 1 << 10;
        let redundant = self.s.red_prev.as_ref().filter(fits);
        if let Some((prev_ts, prev)) = redundant {
            let (offset, len) = (ts.wrapping_sub(*prev_ts), prev.len());
            out.extend_from_slice(&[0x80 | info.payload_type, (offset >> 6) as u8]);
            out.extend_from_slice(&[((offset & 0x3f) << 2) as u8 | (len >> 8) as u8, len as u8]);
        }
        out.push(info.payload_type);
        if let Some((_, prev)) = redundant {
            out.extend_from_slice(prev);
        }
        out.extend_from_slice(payload);
        self.s.red_prev = Some((ts, payload.to_vec()));
        self.s.stats.red_wrapped += 1;
        out
    }

    /// Drop, duplicate/reorder, then RTX for one packet (RED-wrapped if enabled).
    fn process(&mut self, arrival_ms: u32, packet: Vec<u8>, may_drop: bool, out: &mut Vec<(u32, Vec<u8>)>) {
        let index = self.s.input_index;
        self.s.input_index += 1;
        if may_drop && index > 0 && self.drop_next() {
            self.s.stats.dropped += 1;
            if let Some(rtx_pt) = self.p.rtx_payload_type
                && chance(&mut self.rng[RTX], self.p.rtx_recover_pct)
                && let Ok(info) = parse_rtp(&packet)
            {
                let mut payload = info.sequence.to_be_bytes().to_vec();
                payload.extend_from_slice(info.payload(&packet).unwrap_or_default());
                let (seq, ssrc) = (self.s.rtx_seq, info.ssrc ^ self.s.rtx_ssrc_xor);
                let rtx = build_rtp(info.marker, rtx_pt, seq, info.timestamp, ssrc, &payload);
                self.s.rtx_seq = self.s.rtx_seq.wrapping_add(1);
                self.s.rtx_pending.push_back((index + u64::from(self.p.rtx_delay_packets), rtx));
                self.s.stats.recovered_by_rtx += 1;
            } else {
                self.s.lost_ms.push(arrival_ms);
            }
        } else {
            let j = self.s.stage_index;
            self.s.stage_index += 1;
            let delayed = chance(&mut self.rng[REORDER], self.p.reorder_pct);
            let key = if delayed {
                j + 1 + u64::from(self.rng[REORDER].next_u32() % self.p.reorder_depth_packets)
            } else {
                j
            };
            if chance(&mut self.rng[DUPLICATE], self.p.duplicate_pct) {
                let copy_key = key + self.rng[DUPLICATE].next_u64() % 4;
                self.hold(copy_key, arrival_ms, true, packet.clone());
                self.s.stats.duplicated += 1;
            }
            if delayed {
                self.hold(key, arrival_ms, false, packet);
                self.s.stats.reordered += 1;
            } else {
                self.write(arrival_ms, packet, true, out);
            }
            self.release(j, out);
        }
        self.emit_rtx(index, out);
    }

    /// Decides whether the next droppable packet is lost.
    fn drop_next(&mut self) -> bool {
        if self.s.burst_left > 0 {
            self.s.burst_left -= 1;
            self.s.keep_next = self.s.burst_left == 0;
            return true;
        }
        if std::mem::take(&mut self.s.keep_next) || !chance(&mut self.rng[LOSS], self.event_pct) {
            return false;
        }
        self.s.burst_left = self.rng[LOSS].next_u32() % self.p.burst_max_packets;
        self.s.keep_next = self.s.burst_left == 0;
        true
    }

    fn hold(&mut self, key: u64, arrival_ms: u32, copy: bool, packet: Vec<u8>) {
        self.s.insert_order += 1;
        self.s.delayed.push(Reverse((key, self.s.insert_order, arrival_ms, copy, packet)));
    }

    /// Writes every delayed packet whose key is at most `key`, in key order.
    fn release(&mut self, key: u64, out: &mut Vec<(u32, Vec<u8>)>) {
        while self.s.delayed.peek().is_some_and(|Reverse(d)| d.0 <= key) {
            if let Some(Reverse((_, _, arrival_ms, copy, packet))) = self.s.delayed.pop() {
                self.write(arrival_ms, packet, !copy, out);
            }
        }
    }

    /// Writes one packet with a non-decreasing arrival time; original media packets feed the FEC group.
    fn write(&mut self, arrival_ms: u32, packet: Vec<u8>, media: bool, out: &mut Vec<(u32, Vec<u8>)>) {
        self.s.last_out_ms = self.s.last_out_ms.max(arrival_ms);
        let fec = match (self.p.fec_payload_type, media) {
            (Some(fec_pt), true) => self.add_to_fec(fec_pt, &packet),
            _ => None,
        };
        out.push((self.s.last_out_ms, packet));
        if let Some(fec) = fec {
            self.s.stats.fec_packets += 1;
            out.push((self.s.last_out_ms, fec));
        }
    }

    /// Adds a media packet to the FEC group; returns the FEC packet when the group is complete.
    fn add_to_fec(&mut self, fec_pt: u8, packet: &[u8]) -> Option<Vec<u8>> {
        let info = parse_rtp(packet).ok()?;
        let (payload, g) = (info.payload(packet)?, &mut self.s.fec);
        if g.count == 0 {
            g.base_seq = info.sequence;
        }
        g.count += 1;
        g.header_xor.iter_mut().zip(packet).for_each(|(x, b)| *x ^= b);
        g.len_xor ^= (packet.len() - 12) as u16;
        if g.payload_xor.len() < payload.len() {
            g.payload_xor.resize(payload.len(), 0);
        }
        g.payload_xor.iter_mut().zip(payload).for_each(|(x, b)| *x ^= b);
        if g.count < self.p.fec_every_packets {
            return None;
        }
        let (g, mask) = (std::mem::take(&mut self.s.fec), u16::MAX << (16 - self.p.fec_every_packets));
        let h = g.header_xor;
        let mut fec = vec![h[0] & 0x3f, h[1]];
        fec.extend_from_slice(&[&g.base_seq.to_be_bytes()[..], &h[4..8], &g.len_xor.to_be_bytes()].concat());
        fec.extend_from_slice(&[(g.payload_xor.len() as u16).to_be_bytes(), mask.to_be_bytes()].concat());
        fec.extend_from_slice(&g.payload_xor);
        let fec = build_rtp(false, fec_pt, self.s.fec_seq, info.timestamp, info.ssrc, &fec);
        self.s.fec_seq = self.s.fec_seq.wrapping_add(1);
        Some(fec)
    }

    /// Writes the pending RTX packets due at or before input packet `index`.
    fn emit_rtx(&mut self, index: u64, out: &mut Vec<(u32, Vec<u8>)>) {
        while self.s.rtx_pending.front().is_some_and(|(due, _)| *due <= index) {
            if let Some((_, rtx)) = self.s.rtx_pending.pop_front() {
                self.write(0, rtx, false, out);
            }
        }
    }
}

#[cfg(test)]
#[path = "impair_tests.rs"]
mod tests;
