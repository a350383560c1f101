//! The media packets of one `.rtpdump`, as a receiver would have them: RTCP and FEC passed
//! over, RTX and RED unwrapped into the media packets they carry, sequence numbers and
//! timestamps unwrapped and carried across SSRC changes and timestamp jumps, then put back in
//! sequence order through a bounded reorder window with duplicates removed. Damaged records
//! are skipped and counted (see [`super::damage`]: the scan refuses a file with too many), the
//! same ones on every read. Streaming: memory is bounded by the window (and one record read
//! ahead). The first pass (`scan`) and the decoder feeder both read segments through this.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use super::IngestError;
use super::damage::{DamageReason, FirstDamage, MAX_ARRIVAL_STEP_MS, RecordDamage};
use super::redundancy::{AuxiliaryPayloads, parse_red, unwrap_rtx};
use super::rtp::{RtpError, RtpPacketInfo, is_rtcp, parse_rtp};
use super::rtpdump::{RecordKind, RtpDumpError, RtpDumpReader, RtpDumpRecord};
use crate::timeline::{SequenceUnwrapper, TimestampUnwrapper};

/// Packets held back to put reordered packets in sequence. A packet that arrives more than
/// this many packets late counts as lost.
pub const REORDER_WINDOW_PACKETS: usize = 256;
/// A timestamp step this far ahead of the arrival times (or any step this far back) is a
/// discontinuity of the sender's clock, not network jitter: the timeline continues from the
/// arrival time instead.
const TIMESTAMP_JUMP_MS: i64 = 3000;
/// A sequence step larger than this is a restart of the sequence counter, not loss.
const SEQUENCE_JUMP_PACKETS: i64 = 3000;
/// SSRCs remembered at once (late packets of an old SSRC still find their offsets).
const MAX_EPOCHS: usize = 8;

/// How a media packet reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketOrigin {
    Media,
    /// Unwrapped from an RTX retransmission.
    Rtx,
    /// A redundant block of a RED packet.
    Red,
}

/// One media packet of the primary payload type, in sequence order.
#[derive(Debug, Clone)]
pub struct MediaPacket {
    /// Extended sequence number, continuous across SSRC changes.
    pub sequence: i64,
    /// Extended RTP timestamp, continuous across wrap-around, SSRC changes and jumps.
    pub ticks: i64,
    pub marker: bool,
    pub payload: Vec<u8>,
    /// Arrival time, ms since the start of the dump.
    pub arrival_ms: u32,
    /// Packets missing between the previous packet and this one.
    pub lost_before: u64,
    pub origin: PacketOrigin,
}

/// The RTP header fields a media packet is carried with (RTX and RED blocks carry their own).
#[derive(Debug, Clone, Copy)]
struct Carried {
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
    marker: bool,
}

impl MediaPacket {
    /// The media missing between `previous_ticks` (the packet before) and this packet, as
    /// (timestamp of the first missing packet, ticks missing), spread evenly over the lost
    /// packets and capped at `max_ticks`; `None` when nothing is missing.
    pub fn missing_before(&self, previous_ticks: i64, max_ticks: i64) -> Option<(i64, i64)> {
        let lost = i64::try_from(self.lost_before).ok().filter(|l| *l > 0)?;
        let step = (self.ticks - previous_ticks) / (lost + 1);
        (step > 0).then(|| (previous_ticks + step, (step * lost).min(max_ticks)))
    }
}

/// Lost audio is concealed for at most this much of one gap; the rest stays silent.
pub const MAX_CONCEALED_MS: i64 = 2000;

/// What reading the packets found, for the job report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketStats {
    /// Media packets delivered.
    pub delivered: u64,
    /// Packets missing from the sequence (after RTX and RED recovery).
    pub lost: u64,
    /// Lost packets restored from RTX or RED.
    pub recovered: u64,
    /// Copies of packets already delivered or held, and packets too late for the window.
    pub duplicates_or_late: u64,
    /// RTCP records, FEC and packets of other payload types.
    pub skipped: u64,
    pub ssrc_changes: u32,
    /// Timestamp or sequence discontinuities inside one SSRC.
    pub discontinuities: u32,
    /// Records read and damaged records skipped, by reason.
    pub damage: RecordDamage,
}

/// Unwrapping state of one SSRC.
#[derive(Debug, Clone)]
struct Epoch {
    ssrc: u32,
    sequences: SequenceUnwrapper,
    timestamps: TimestampUnwrapper,
    sequence_offset: i64,
    ticks_offset: i64,
}

/// The newest packet seen, in arrival order.
#[derive(Debug, Clone, Copy)]
struct Newest {
    sequence: i64,
    ticks: i64,
    arrival_ms: u32,
    ssrc: u32,
}

impl Newest {
    /// Where the stream would be at `arrival_ms`, continuing from this packet.
    fn continue_at(&self, arrival_ms: u32, clock_rate_hz: i64) -> (i64, i64) {
        let elapsed_ms = i64::from(arrival_ms.saturating_sub(self.arrival_ms));
        (self.sequence + 1, self.ticks + elapsed_ms * clock_rate_hz / 1000)
    }
}

/// Places raw (ssrc, sequence, timestamp) triples on one continuous extended scale (also used
/// by [`super::audio_level`] so its levels share the media packets' timestamps).
#[derive(Debug, Clone)]
pub(crate) struct Rebaser {
    clock_rate_hz: i64,
    epochs: Vec<Epoch>,
    newest: Option<Newest>,
    ssrc_changes: u32,
    discontinuities: u32,
}

impl Rebaser {
    pub(crate) fn new(clock_rate_hz: u32) -> Rebaser {
        Rebaser {
            clock_rate_hz: i64::from(clock_rate_hz.max(1)),
            epochs: Vec::new(),
            newest: None,
            ssrc_changes: 0,
            discontinuities: 0,
        }
    }

    pub(crate) fn place(&mut self, ssrc: u32, sequence: u16, timestamp: u32, arrival_ms: u32) -> (i64, i64) {
        let index = match self.epochs.iter().position(|e| e.ssrc == ssrc) {
            Some(index) => index,
            None => {
                let mut epoch = Epoch {
                    ssrc,
                    sequences: SequenceUnwrapper::new(),
                    timestamps: TimestampUnwrapper::new(),
                    sequence_offset: 0,
                    ticks_offset: 0,
                };
                if let Some(newest) = self.newest {
                    // A new SSRC continues where the stream was, at this arrival time.
                    let (seq, ticks) = newest.continue_at(arrival_ms, self.clock_rate_hz);
                    epoch.sequence_offset = seq - epoch.sequences.unwrap(sequence);
                    epoch.ticks_offset = ticks - epoch.timestamps.unwrap(timestamp);
                    self.ssrc_changes += 1;
                }
                if self.epochs.len() >= MAX_EPOCHS {
                    self.epochs.remove(0);
                }
                self.epochs.push(epoch);
                self.epochs.len() - 1
            }
        };
        let newest = self.newest;
        let clock_rate_hz = self.clock_rate_hz;
        let epoch = &mut self.epochs[index];
        let mut seq = epoch.sequences.unwrap(sequence) + epoch.sequence_offset;
        let mut ticks = epoch.timestamps.unwrap(timestamp) + epoch.ticks_offset;
        if let Some(newest) = newest.filter(|n| n.ssrc == ssrc) {
            let seq_step = seq - newest.sequence;
            let ticks_step_ms = (ticks - newest.ticks) * 1000 / clock_rate_hz;
            let arrival_step_ms = i64::from(arrival_ms) - i64::from(newest.arrival_ms);
            let seq_jump = seq_step.abs() > SEQUENCE_JUMP_PACKETS;
            let ts_jump = ticks_step_ms < -TIMESTAMP_JUMP_MS || ticks_step_ms > arrival_step_ms + TIMESTAMP_JUMP_MS;
            if seq_jump || ts_jump {
                let (next_seq, next_ticks) = newest.continue_at(arrival_ms, clock_rate_hz);
                if seq_jump {
                    epoch.sequence_offset += next_seq - seq;
                    seq = next_seq;
                }
                if ts_jump {
                    epoch.ticks_offset += next_ticks - ticks;
                    ticks = next_ticks;
                }
                self.discontinuities += 1;
            }
        }
        self.note(ssrc, seq, ticks, arrival_ms)
    }

    fn note(&mut self, ssrc: u32, sequence: i64, ticks: i64, arrival_ms: u32) -> (i64, i64) {
        if self.newest.is_none_or(|n| sequence > n.sequence) {
            self.newest = Some(Newest { sequence, ticks, arrival_ms, ssrc });
        }
        (sequence, ticks)
    }

    /// The SSRC of the newest packet (RTX and RED recoveries belong to it).
    fn current_ssrc(&self) -> Option<u32> {
        self.newest.map(|n| n.ssrc)
    }
}

/// One segment's media packets in sequence order, wherever they come from (an rtpdump read
/// by [`MediaPackets`], or anything else a decoder feed can be given).
pub trait PacketSource: Send {
    /// The next media packet; `Ok(None)` at the end.
    fn next_packet(&mut self) -> Result<Option<MediaPacket>, IngestError>;
}

impl PacketSource for MediaPackets {
    fn next_packet(&mut self) -> Result<Option<MediaPacket>, IngestError> {
        MediaPackets::next_packet(self)
    }
}

pub struct MediaPackets {
    path: PathBuf,
    payload_type: u8,
    aux: AuxiliaryPayloads,
    reader: RtpDumpReader<BufReader<std::fs::File>>,
    rebaser: Rebaser,
    window: BTreeMap<i64, MediaPacket>,
    last_delivered: Option<i64>,
    /// A record read ahead to judge the arrival time of the one before it, with its index.
    held: Option<(u64, RtpDumpRecord)>,
    /// The reader has nothing more to give (its end, or a record it cannot read past).
    reader_done: bool,
    /// Arrival time of the last usable RTP record.
    running_arrival_ms: Option<u32>,
    first_damage: Option<FirstDamage>,
    at_end: bool,
    stats: PacketStats,
}

impl MediaPackets {
    pub fn open(
        path: &Path,
        payload_type: u8,
        clock_rate_hz: u32,
        aux: AuxiliaryPayloads,
    ) -> Result<MediaPackets, IngestError> {
        let io = |source| IngestError::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let file_bytes = file.metadata().map_err(io)?.len();
        let reader = RtpDumpReader::new(BufReader::new(file))
            .map_err(|source| IngestError::Rtpdump { path: path.to_path_buf(), source })?;
        Ok(MediaPackets {
            path: path.to_path_buf(),
            payload_type,
            aux,
            reader,
            rebaser: Rebaser::new(clock_rate_hz),
            window: BTreeMap::new(),
            last_delivered: None,
            held: None,
            reader_done: false,
            running_arrival_ms: None,
            first_damage: None,
            at_end: false,
            stats: PacketStats { damage: RecordDamage::new(file_bytes), ..PacketStats::default() },
        })
    }

    pub fn stats(&self) -> PacketStats {
        PacketStats {
            ssrc_changes: self.rebaser.ssrc_changes,
            discontinuities: self.rebaser.discontinuities,
            ..self.stats
        }
    }

    /// The error refusing this file when its damage passes the threshold (see
    /// [`super::damage`]); meaningful once the file has been read to its end.
    pub fn damage_error(&self) -> Option<IngestError> {
        let damage = self.stats.damage;
        let first = self.first_damage.as_ref().filter(|_| damage.too_much())?;
        Some(IngestError::Damaged {
            path: self.path.clone(),
            skipped: damage.skipped(),
            records: damage.records,
            unread_bytes: damage.unread_bytes,
            file_bytes: damage.file_bytes,
            first_record_index: first.record_index,
            first_reason: first.reason,
            first_detail: first.detail.clone(),
        })
    }

    /// The next media packet in sequence order; `Ok(None)` at the end of the file.
    pub fn next_packet(&mut self) -> Result<Option<MediaPacket>, IngestError> {
        while !self.at_end && self.window.len() <= REORDER_WINDOW_PACKETS {
            self.read_record()?;
        }
        let Some((sequence, mut packet)) = self.window.pop_first() else { return Ok(None) };
        packet.lost_before = self.last_delivered.map_or(0, |last| u64::try_from(sequence - last - 1).unwrap_or(0));
        self.last_delivered = Some(sequence);
        self.stats.delivered += 1;
        self.stats.lost += packet.lost_before;
        if packet.origin != PacketOrigin::Media {
            self.stats.recovered += 1;
        }
        Ok(Some(packet))
    }

    /// The next record with its index, the one read ahead first; `None` at the end of what
    /// can be read. A record cut short by the end of the file, or with a length field below the
    /// record header's size, ends the reading and is counted as damage.
    fn next_raw(&mut self) -> Result<Option<(u64, RtpDumpRecord)>, IngestError> {
        if let Some(held) = self.held.take() {
            return Ok(Some(held));
        }
        if self.reader_done {
            return Ok(None);
        }
        let index = self.stats.damage.records;
        let err = match self.reader.next_record() {
            Ok(Some(record)) => {
                self.stats.damage.records += 1;
                return Ok(Some((index, record)));
            }
            Ok(None) => {
                self.reader_done = true;
                return Ok(None);
            }
            Err(err) => err,
        };
        self.reader_done = true;
        let reason = match &err {
            RtpDumpError::TruncatedRecord { .. } => DamageReason::Truncated,
            RtpDumpError::ZeroLength { byte_offset, .. } | RtpDumpError::RecordTooShort { byte_offset, .. } => {
                self.stats.damage.unread_bytes = self.stats.damage.file_bytes.saturating_sub(*byte_offset);
                DamageReason::BadRecordLength
            }
            _ => return Err(IngestError::Rtpdump { path: self.path.clone(), source: err }),
        };
        self.stats.damage.records += 1;
        self.note_damage(index, reason, err.to_string());
        Ok(None)
    }

    fn note_damage(&mut self, record_index: u64, reason: DamageReason, detail: String) {
        self.stats.damage.note(reason);
        if self.first_damage.as_ref().is_none_or(|first| record_index < first.record_index) {
            self.first_damage = Some(FirstDamage { record_index, reason, detail });
        }
    }

    /// True when `arrival_ms` lies within [`MAX_ARRIVAL_STEP_MS`] of the last usable record's.
    /// Otherwise (or for the first record) the next record decides: when it agrees, the stream
    /// paused (or starts) there; when it does not, this record's time is damaged.
    fn arrival_plausible(&mut self, arrival_ms: u32) -> Result<bool, IngestError> {
        let near = |other_ms: u32| other_ms.abs_diff(arrival_ms) <= MAX_ARRIVAL_STEP_MS;
        if self.running_arrival_ms.is_some_and(near) {
            return Ok(true);
        }
        let next = self.next_raw()?;
        let agrees = match &next {
            Some((_, record)) => near(record.offset_ms),
            None => self.running_arrival_ms.is_none(),
        };
        self.held = next;
        Ok(agrees)
    }

    /// Reads one record and puts what it carries into the window; a damaged record is counted
    /// and passed over.
    fn read_record(&mut self) -> Result<(), IngestError> {
        let Some((record_index, record)) = self.next_raw()? else {
            self.at_end = true;
            return Ok(());
        };
        if matches!(record.kind, RecordKind::Rtcp) || is_rtcp(&record.data) {
            self.stats.skipped += 1;
            return Ok(());
        }
        let info = match screen(&record) {
            Ok(info) => info,
            Err((reason, detail)) => {
                self.note_damage(record_index, reason, detail);
                return Ok(());
            }
        };
        if !self.arrival_plausible(record.offset_ms)? {
            let detail = format!(
                "arrival offset {} ms is more than {} ms off the records around it",
                record.offset_ms, MAX_ARRIVAL_STEP_MS
            );
            self.note_damage(record_index, DamageReason::ArrivalOutOfRange, detail);
            return Ok(());
        }
        self.running_arrival_ms = Some(record.offset_ms);
        let payload = info.payload(&record.data).unwrap_or(&[]);
        let arrival_ms = record.offset_ms;
        let pt = info.payload_type;
        let header =
            Carried { sequence: info.sequence, timestamp: info.timestamp, ssrc: info.ssrc, marker: info.marker };
        let rtx_of_red = self.aux.rtx_red.contains(&pt);
        if pt == self.payload_type {
            self.hold_carried(header, payload, arrival_ms, PacketOrigin::Media);
        } else if self.aux.red.contains(&pt) {
            self.hold_red(header, payload, arrival_ms, PacketOrigin::Media);
        } else if rtx_of_red || self.aux.rtx.contains(&pt) {
            // A retransmission: the original sequence number, then the original payload (a
            // media packet's, or a RED packet's), on the media stream's SSRC.
            match (unwrap_rtx(payload), self.rebaser.current_ssrc()) {
                (Some((sequence, original)), Some(ssrc)) => {
                    let header = Carried { sequence, ssrc, ..header };
                    if rtx_of_red {
                        self.hold_red(header, original, arrival_ms, PacketOrigin::Rtx);
                    } else {
                        self.hold_carried(header, original, arrival_ms, PacketOrigin::Rtx);
                    }
                }
                _ => self.stats.skipped += 1,
            }
        } else {
            self.stats.skipped += 1;
        }
        Ok(())
    }

    /// Places a media packet carried with `header` and holds it in the window.
    fn hold_carried(&mut self, header: Carried, payload: &[u8], arrival_ms: u32, origin: PacketOrigin) {
        let (sequence, ticks) = self.rebaser.place(header.ssrc, header.sequence, header.timestamp, arrival_ms);
        self.hold(sequence, ticks, header.marker, payload, arrival_ms, origin);
    }

    /// Places the blocks of a RED packet: its primary block is the packet itself (`origin`),
    /// each redundant block an earlier one.
    fn hold_red(&mut self, header: Carried, payload: &[u8], arrival_ms: u32, origin: PacketOrigin) {
        let blocks = parse_red(payload).unwrap_or_default();
        if blocks.is_empty() {
            self.stats.skipped += 1;
        }
        // The primary block first: it places the packet; redundant ones are earlier packets.
        for block in blocks.iter().rev() {
            if block.payload_type != self.payload_type || block.data.is_empty() {
                continue;
            }
            let primary = block.distance == 0;
            let carried = Carried {
                sequence: header.sequence.wrapping_sub(block.distance),
                timestamp: header.timestamp.wrapping_sub(block.timestamp_offset_ticks),
                ssrc: header.ssrc,
                marker: header.marker && primary,
            };
            self.hold_carried(carried, block.data, arrival_ms, if primary { origin } else { PacketOrigin::Red });
        }
    }

    fn hold(&mut self, sequence: i64, ticks: i64, marker: bool, payload: &[u8], arrival_ms: u32, origin: PacketOrigin) {
        if self.last_delivered.is_some_and(|last| sequence <= last) || self.window.contains_key(&sequence) {
            if origin == PacketOrigin::Media {
                self.stats.duplicates_or_late += 1;
            }
            return;
        }
        let packet =
            MediaPacket { sequence, ticks, marker, payload: payload.to_vec(), arrival_ms, lost_before: 0, origin };
        self.window.insert(sequence, packet);
    }
}

/// The RTP header of an RTP record, or why the record is damaged.
fn screen(record: &RtpDumpRecord) -> Result<RtpPacketInfo, (DamageReason, String)> {
    if let RecordKind::Rtp { original_len } = record.kind
        && usize::from(original_len) > record.data.len()
    {
        let detail = format!("packet length {original_len} is past the {} bytes the record holds", record.data.len());
        return Err((DamageReason::LengthPastRecord, detail));
    }
    parse_rtp(&record.data).map_err(|err| {
        let reason = match err {
            RtpError::BadVersion { .. } => DamageReason::NotRtpV2,
            RtpError::TooShort { .. } => DamageReason::TooShort,
            RtpError::TruncatedCsrc { .. } | RtpError::TruncatedExtension { .. } | RtpError::BadPadding { .. } => {
                DamageReason::BadRtpHeader
            }
        };
        (reason, err.to_string())
    })
}

#[cfg(test)]
#[path = "packets_tests.rs"]
mod tests;
