//! Damaged rtpdump records: what makes a record unusable, the count by reason, and the rule
//! that decides whether a file is damaged too much to render.
//!
//! A record whose header is intact but whose content is bad (not RTP version 2, too short for
//! its RTP header, a bad RTP header, a packet length past the record, an arrival time hours off
//! its neighbours') is skipped and reading goes on with the next record. A record cut short by
//! the end of the file ends the file. A record header whose length field is below the header's
//! own size cannot be stepped over (nothing says where the next record starts): reading stops
//! there, and the bytes left unread count against the file. A file is refused when more than
//! [`MAX_DAMAGED_PCT`] of its records were skipped or more than that share of its bytes was left
//! unread.

/// Most damage a file may carry and still be rendered, in percent of its records (and of its
/// bytes, for a tail left unread).
pub const MAX_DAMAGED_PCT: u64 = 1;

/// An arrival offset this far from the last usable record's is damage, unless the record after
/// it agrees (a real pause in the stream).
pub const MAX_ARRIVAL_STEP_MS: u32 = 3_600_000;

/// Why a record was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageReason {
    /// The packet's version field is not 2 (a torn write).
    NotRtpV2,
    /// Shorter than the 12-byte RTP header.
    TooShort,
    /// A CSRC list, header extension or padding running past the packet.
    BadRtpHeader,
    /// The record's packet length field is larger than the bytes it holds (a snap-length
    /// capture).
    LengthPastRecord,
    /// The arrival offset is hours off the neighbouring records'.
    ArrivalOutOfRange,
    /// The file ends inside the record.
    Truncated,
    /// The record's length field is below the record header's size: reading stopped there.
    BadRecordLength,
}

impl DamageReason {
    pub const ALL: [DamageReason; 7] = [
        DamageReason::NotRtpV2,
        DamageReason::TooShort,
        DamageReason::BadRtpHeader,
        DamageReason::LengthPastRecord,
        DamageReason::ArrivalOutOfRange,
        DamageReason::Truncated,
        DamageReason::BadRecordLength,
    ];

    /// The name the manifest gives the reason.
    pub fn as_str(self) -> &'static str {
        match self {
            DamageReason::NotRtpV2 => "not_rtp_v2",
            DamageReason::TooShort => "too_short",
            DamageReason::BadRtpHeader => "bad_rtp_header",
            DamageReason::LengthPastRecord => "length_past_record",
            DamageReason::ArrivalOutOfRange => "arrival_out_of_range",
            DamageReason::Truncated => "truncated",
            DamageReason::BadRecordLength => "bad_record_length",
        }
    }
}

/// Damaged records of one rtpdump, counted by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordDamage {
    /// Records read, usable or not (a record cut short or with a bad length counts).
    pub records: u64,
    /// Skipped records by reason, in [`DamageReason::ALL`] order.
    by_reason: [u64; 7],
    /// Bytes after a record with a bad length field, never read.
    pub unread_bytes: u64,
    /// The size of the file.
    pub file_bytes: u64,
}

impl RecordDamage {
    /// No damage yet, in a file of `file_bytes`.
    pub fn new(file_bytes: u64) -> RecordDamage {
        RecordDamage { file_bytes, ..RecordDamage::default() }
    }

    /// Counts one skipped record.
    pub fn note(&mut self, reason: DamageReason) {
        if let Some(count) = DamageReason::ALL.iter().position(|r| *r == reason).and_then(|i| self.by_reason.get_mut(i))
        {
            *count += 1;
        }
    }

    /// Records skipped, all reasons.
    pub fn skipped(&self) -> u64 {
        self.by_reason.iter().sum()
    }

    /// Records skipped for `reason`.
    pub fn count(&self, reason: DamageReason) -> u64 {
        DamageReason::ALL.iter().zip(self.by_reason).find(|(r, _)| **r == reason).map_or(0, |(_, n)| n)
    }

    /// The reasons with their counts, those that occurred only.
    pub fn reasons(&self) -> impl Iterator<Item = (DamageReason, u64)> + '_ {
        DamageReason::ALL.into_iter().zip(self.by_reason).filter(|(_, n)| *n > 0)
    }

    /// True when the damage is more than the file may carry (see the module's rule).
    pub fn too_much(&self) -> bool {
        self.skipped() * 100 > self.records * MAX_DAMAGED_PCT
            || self.unread_bytes * 100 > self.file_bytes * MAX_DAMAGED_PCT
    }
}

/// The first skipped record of a file, for the error that refuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstDamage {
    pub record_index: u64,
    pub reason: DamageReason,
    /// What was wrong, in words.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_the_threshold() {
        let mut damage = RecordDamage { records: 200, file_bytes: 10_000, ..RecordDamage::default() };
        damage.note(DamageReason::NotRtpV2);
        damage.note(DamageReason::Truncated);
        assert_eq!((damage.skipped(), damage.count(DamageReason::NotRtpV2)), (2, 1));
        let reasons: Vec<_> = damage.reasons().map(|(r, n)| (r.as_str(), n)).collect();
        assert_eq!(reasons, [("not_rtp_v2", 1), ("truncated", 1)]);
        assert!(!damage.too_much(), "2 of 200 is 1%");
        damage.note(DamageReason::ArrivalOutOfRange);
        assert!(damage.too_much(), "3 of 200 is more than 1%");
        let mut damage =
            RecordDamage { records: 200, file_bytes: 10_000, unread_bytes: 100, ..RecordDamage::default() };
        damage.note(DamageReason::BadRecordLength);
        assert!(!damage.too_much(), "100 bytes of 10000 left unread");
        damage.unread_bytes = 101;
        assert!(damage.too_much(), "more than 1% of the bytes left unread");
        assert!(!RecordDamage::default().too_much(), "an empty file is not damaged");
    }
}
