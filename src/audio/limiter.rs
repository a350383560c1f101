//! A peak limiter: the output never exceeds the ceiling, and gain recovers smoothly.

#[derive(Debug, Clone)]
pub struct Limiter {
    ceiling: f32,
    gain: f32,
    /// Per-sample-frame gain recovery factor.
    release_step: f32,
    channels: usize,
}

impl Limiter {
    /// `ceiling` in linear full scale (e.g. 0.89 for -1 dBFS); `release_ms` is how fast gain
    /// returns to 1 after a peak.
    pub fn new(ceiling: f32, release_ms: f32, sample_rate_hz: u32, channels: usize) -> Limiter {
        let release_frames = (release_ms / 1000.0 * sample_rate_hz as f32).max(1.0);
        Limiter {
            ceiling: ceiling.clamp(0.01, 1.0),
            gain: 1.0,
            release_step: (1.0 / release_frames).min(1.0),
            channels: channels.max(1),
        }
    }

    /// Limits interleaved samples in place.
    pub fn process(&mut self, samples: &mut [f32]) {
        for frame in samples.chunks_mut(self.channels) {
            let peak = frame.iter().fold(0.0_f32, |m, s| m.max(if s.is_finite() { s.abs() } else { 0.0 }));
            let needed = if peak > self.ceiling { self.ceiling / peak } else { 1.0 };
            // Instant attack, linear release towards unity gain.
            self.gain = needed.min((self.gain + self.release_step).min(1.0));
            for s in frame {
                let v = if s.is_finite() { *s } else { 0.0 };
                *s = (v * self.gain).clamp(-self.ceiling, self.ceiling);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_signal_passes_unchanged() {
        let mut limiter = Limiter::new(0.9, 50.0, 48_000, 2);
        let mut samples = vec![0.3, -0.3, 0.5, -0.5];
        limiter.process(&mut samples);
        assert_eq!(samples, vec![0.3, -0.3, 0.5, -0.5]);
    }

    #[test]
    fn loud_sum_never_clips_and_gain_recovers() {
        let mut limiter = Limiter::new(0.9, 10.0, 48_000, 2);
        let mut loud: Vec<f32> = (0..4800)
            .flat_map(|i| {
                let v = 2.5 * (i as f32 * 0.05).sin();
                [v, -v]
            })
            .collect();
        limiter.process(&mut loud);
        assert!(loud.iter().all(|s| s.abs() <= 0.9 + 1e-6));
        let mut quiet: Vec<f32> = vec![0.1; 48_000];
        limiter.process(&mut quiet);
        assert!((quiet[quiet.len() - 1] - 0.1).abs() < 1e-6, "gain recovered");
        let mut nan = vec![f32::NAN, f32::INFINITY];
        limiter.process(&mut nan);
        assert_eq!(nan, vec![0.0, 0.0]);
    }
}
