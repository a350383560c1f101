//! Filling holes in a remuxed Opus stream without re-encoding: wherever no packet covers the
//! time (loss, DTX, a mute, before the first packet of a file), 20 ms Opus silence frames are
//! inserted so that a decoder produces audio of the right length, in step with the timeline.

/// One CELT-only, full-band, 20 ms, mono Opus frame that decodes to digital silence (TOC 0xF8:
/// config 31, one frame). Stereo decoders upmix it.
pub const OPUS_SILENCE_FRAME: [u8; 3] = [0xF8, 0xFF, 0xFE];
pub const OPUS_SILENCE_FRAME_MS: f64 = 20.0;

/// Holes shorter than this fraction of a silence frame are left alone.
const MIN_HOLE_FRACTION: f64 = 0.5;

/// Duration of an Opus packet from its TOC byte (RFC 6716 §3.1), or `None` when the packet is
/// empty or malformed.
pub fn opus_packet_duration_ms(packet: &[u8]) -> Option<f64> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let frame_ms = match config {
        0..=11 => [10.0, 20.0, 40.0, 60.0][usize::from(config % 4)],
        12..=15 => [10.0, 20.0][usize::from(config % 2)],
        _ => [2.5, 5.0, 10.0, 20.0][usize::from(config % 4)],
    };
    let frames = match toc & 0x3 {
        0 => 1.0,
        1 | 2 => 2.0,
        _ => f64::from(*packet.get(1)? & 0x3F),
    };
    let total = frame_ms * frames;
    (total > 0.0 && total <= 120.0).then_some(total)
}

/// What to do with the next packet of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct FillStep {
    /// Start times of silence frames to write before the packet.
    pub silence_at_ms: Vec<f64>,
    /// False when the packet lies wholly inside time already written (an overlap between
    /// segments): drop it.
    pub keep: bool,
}

/// Tracks where the written audio ends and decides the silence to insert.
#[derive(Debug, Clone)]
pub struct OpusGapFiller {
    next_ms: f64,
    pub silence_frames: u64,
}

impl OpusGapFiller {
    /// Audio is expected from `start_ms` on.
    pub fn new(start_ms: f64) -> OpusGapFiller {
        OpusGapFiller { next_ms: start_ms, silence_frames: 0 }
    }

    /// Where the written audio currently ends.
    pub fn end_ms(&self) -> f64 {
        self.next_ms
    }

    /// Moves the end to `at_ms` without writing silence: the hole stays a timestamp gap.
    pub fn skip_to(&mut self, at_ms: f64) {
        self.next_ms = self.next_ms.max(at_ms);
    }

    /// A packet of `duration_ms` is about to be written at `pts_ms`.
    pub fn before_packet(&mut self, pts_ms: f64, duration_ms: f64) -> FillStep {
        if pts_ms + duration_ms * MIN_HOLE_FRACTION <= self.next_ms {
            return FillStep { silence_at_ms: Vec::new(), keep: false };
        }
        let silence_at_ms = self.fill_to(pts_ms);
        self.next_ms = self.next_ms.max(pts_ms + duration_ms);
        FillStep { silence_at_ms, keep: true }
    }

    /// Silence from the current end up to `until_ms` (to the nearest whole frame).
    pub fn fill_to(&mut self, until_ms: f64) -> Vec<f64> {
        let hole = until_ms - self.next_ms;
        if hole < OPUS_SILENCE_FRAME_MS * MIN_HOLE_FRACTION {
            return Vec::new();
        }
        let frames = (hole / OPUS_SILENCE_FRAME_MS).round() as u64;
        let starts: Vec<f64> = (0..frames).map(|k| self.next_ms + k as f64 * OPUS_SILENCE_FRAME_MS).collect();
        self.next_ms += frames as f64 * OPUS_SILENCE_FRAME_MS;
        self.silence_frames += frames;
        starts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_from_toc() {
        assert_eq!(opus_packet_duration_ms(&OPUS_SILENCE_FRAME), Some(20.0));
        // SILK WB 20 ms, one frame.
        assert_eq!(opus_packet_duration_ms(&[(9 << 3), 0x00]), Some(20.0));
        // SILK NB 60 ms, two frames (code 1) = 120 ms.
        assert_eq!(opus_packet_duration_ms(&[(3 << 3) | 1, 0x00]), Some(120.0));
        // CELT 10 ms, code 3 with 4 frames.
        assert_eq!(opus_packet_duration_ms(&[(18 << 3) | 3, 4]), Some(40.0));
        assert_eq!(opus_packet_duration_ms(&[]), None);
        assert_eq!(opus_packet_duration_ms(&[(18 << 3) | 3]), None);
        assert_eq!(opus_packet_duration_ms(&[(3 << 3) | 3, 63]), None, "over 120 ms is invalid");
    }

    #[test]
    fn holes_are_filled_with_whole_frames_and_overlaps_dropped() {
        let mut filler = OpusGapFiller::new(0.0);
        // Leading silence: 100 ms before the first packet.
        let step = filler.before_packet(100.0, 20.0);
        assert_eq!(step.silence_at_ms, vec![0.0, 20.0, 40.0, 60.0, 80.0]);
        assert!(step.keep);
        // Contiguous packets (with jitter of a few ms) get nothing.
        assert!(filler.before_packet(121.0, 20.0).silence_at_ms.is_empty());
        // One lost packet: one frame of silence.
        assert_eq!(filler.before_packet(161.0, 20.0).silence_at_ms, vec![141.0]);
        // A packet inside already-written time is dropped.
        assert!(!filler.before_packet(162.0, 20.0).keep);
        // A DTX hole of 400 ms.
        assert_eq!(filler.before_packet(581.0, 20.0).silence_at_ms.len(), 20);
        // Trailing fill.
        assert_eq!(filler.fill_to(661.0).len(), 3);
        assert_eq!(filler.silence_frames, 5 + 1 + 20 + 3);
        assert!((filler.end_ms() - 661.0).abs() < 1e-9);
        // A hole left as a timestamp gap.
        filler.skip_to(1000.0);
        assert!(filler.before_packet(1000.0, 20.0).silence_at_ms.is_empty());
    }
}
