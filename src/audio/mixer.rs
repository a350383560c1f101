//! The mix bus: tracks add interleaved stereo samples at absolute positions on the call clock
//! (sample index at 48 kHz since call start); the renderer takes them out in order. Only the
//! window between the read position and the furthest write is held in memory.

use std::collections::VecDeque;

#[derive(Debug)]
pub struct MixBuffer {
    channels: usize,
    /// Sample frame index of `pending[0]`.
    read_position: u64,
    /// Summed samples from `read_position` on, interleaved.
    pending: VecDeque<f32>,
    /// Samples that arrived for positions already taken (late), counted not mixed.
    late_frames: u64,
}

impl MixBuffer {
    pub fn new(channels: usize) -> MixBuffer {
        MixBuffer { channels: channels.max(1), read_position: 0, pending: VecDeque::new(), late_frames: 0 }
    }

    pub fn read_position(&self) -> u64 {
        self.read_position
    }

    pub fn late_frames(&self) -> u64 {
        self.late_frames
    }

    /// Adds `samples` (interleaved) starting at sample frame `position`.
    pub fn add(&mut self, position: u64, samples: &[f32]) {
        let frames = samples.len() / self.channels;
        let mut skip_frames = 0_usize;
        if position < self.read_position {
            skip_frames = usize::try_from(self.read_position - position).unwrap_or(usize::MAX).min(frames);
            self.late_frames += skip_frames as u64;
        }
        if skip_frames == frames {
            return;
        }
        let start_frame = position + skip_frames as u64 - self.read_position;
        let start = usize::try_from(start_frame).unwrap_or(usize::MAX).saturating_mul(self.channels);
        let samples = &samples[skip_frames * self.channels..frames * self.channels];
        let end = start.saturating_add(samples.len());
        if self.pending.len() < end {
            self.pending.resize(end, 0.0);
        }
        for (slot, sample) in self.pending.range_mut(start..end).zip(samples) {
            *slot += *sample;
        }
    }

    /// Takes the next `frames` sample frames (silence where nothing was added).
    pub fn take(&mut self, frames: usize, out: &mut Vec<f32>) {
        let n = frames * self.channels;
        out.clear();
        out.extend(self.pending.drain(..n.min(self.pending.len())));
        out.resize(n, 0.0);
        self.read_position += frames as u64;
    }

    /// Drops everything before sample frame `position` and reads on from there.
    pub fn skip_to(&mut self, position: u64) {
        if position <= self.read_position {
            return;
        }
        let frames = usize::try_from(position - self.read_position).unwrap_or(usize::MAX);
        let n = frames.saturating_mul(self.channels).min(self.pending.len());
        self.pending.drain(..n);
        self.read_position = position;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_overlapping_tracks_and_fills_silence() {
        let mut mix = MixBuffer::new(2);
        mix.add(2, &[0.5, 0.5, 0.5, 0.5]);
        mix.add(3, &[0.25, -0.25, 0.25, -0.25]);
        let mut out = Vec::new();
        mix.take(6, &mut out);
        assert_eq!(out, vec![0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.75, 0.25, 0.25, -0.25, 0.0, 0.0]);
        assert_eq!(mix.read_position(), 6);
    }

    #[test]
    fn late_samples_are_dropped_and_counted() {
        let mut mix = MixBuffer::new(2);
        let mut out = Vec::new();
        mix.take(4, &mut out);
        mix.add(2, &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(mix.late_frames(), 2);
        mix.take(2, &mut out);
        assert_eq!(out, vec![1.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn skipping_drops_what_lies_before_and_keeps_what_follows() {
        let mut mix = MixBuffer::new(2);
        mix.add(1, &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        mix.skip_to(2);
        let mut out = Vec::new();
        mix.take(3, &mut out);
        assert_eq!(out, vec![2.0, 2.0, 3.0, 3.0, 0.0, 0.0]);
        mix.skip_to(1_000_000);
        assert_eq!(mix.read_position(), 1_000_000);
        mix.take(1, &mut out);
        assert_eq!(out, vec![0.0, 0.0]);
    }

    #[test]
    fn memory_is_bounded_by_the_window() {
        let mut mix = MixBuffer::new(2);
        let mut out = Vec::new();
        for i in 0..1000_u64 {
            mix.add(i * 1600, &vec![0.1; 3200]);
            mix.take(1600, &mut out);
        }
        assert!(mix.pending.len() <= 3200);
    }
}
