//! Drift correction for one sender's audio: a streaming resampler with a fixed ratio close
//! to 1 (a clock 100 ppm fast gives 1.0001), interpolating with a 4-point cubic (Catmull-Rom)
//! so the fractional position sweeping slowly through each sample does not colour the sound.

/// Resamples interleaved audio by `step` input frames per output frame.
#[derive(Debug, Clone)]
pub struct DriftResampler {
    step: f64,
    channels: usize,
    /// Input frames not yet consumed, interleaved; frame 0 is history before `position`.
    buffer: Vec<f32>,
    /// Fractional frame index into `buffer` of the next output frame.
    position: f64,
}

impl DriftResampler {
    pub fn new(step: f64, channels: usize) -> DriftResampler {
        DriftResampler { step: step.clamp(0.5, 2.0), channels: channels.max(1), buffer: Vec::new(), position: 1.0 }
    }

    /// True when the ratio is 1: [`DriftResampler::process`] passes samples through.
    pub fn is_identity(&self) -> bool {
        (self.step - 1.0).abs() < 1e-9
    }

    /// Input frames held back (the interpolator's look-ahead).
    pub fn held_frames(&self) -> f64 {
        (self.buffer.len() / self.channels) as f64 - self.position
    }

    /// Takes interleaved input and returns the output frames it completes (the input itself
    /// when the ratio is 1).
    pub fn process(&mut self, input: Vec<f32>) -> Vec<f32> {
        if self.is_identity() {
            return input;
        }
        let ch = self.channels;
        if self.buffer.is_empty() {
            // Repeat the first frame as history so output starts at the first input frame.
            self.buffer.extend_from_slice(input.get(..ch).unwrap_or(&[]));
        }
        self.buffer.extend_from_slice(&input);
        let frames = self.buffer.len() / ch;
        let mut output = Vec::with_capacity(((input.len() / ch) as f64 / self.step) as usize * ch + ch);
        // `position` stays at 1 or more, so truncating is flooring (without a libm call).
        while (self.position as usize) + 2 < frames {
            let i = self.position as usize;
            let t = (self.position - i as f64) as f32;
            for c in 0..ch {
                let at = |k: usize| self.buffer[k * ch + c];
                let (p0, p1, p2, p3) = (at(i - 1), at(i), at(i + 1), at(i + 2));
                let a = -0.5 * p0 + 1.5 * p1 - 1.5 * p2 + 0.5 * p3;
                let b = p0 - 2.5 * p1 + 2.0 * p2 - 0.5 * p3;
                let c1 = -0.5 * p0 + 0.5 * p2;
                output.push(((a * t + b) * t + c1) * t + p1);
            }
            self.position += self.step;
        }
        let consumed = (self.position as usize).saturating_sub(1).min(frames);
        self.buffer.drain(..consumed * ch);
        self.position -= consumed as f64;
        output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(frames: usize, hz: f64, start: usize) -> Vec<f32> {
        (start..start + frames)
            .flat_map(|i| {
                let v = (2.0 * std::f64::consts::PI * hz * i as f64 / 48_000.0).sin() as f32;
                [v, -v]
            })
            .collect()
    }

    #[test]
    fn ratio_one_is_a_passthrough() {
        let mut r = DriftResampler::new(1.0, 2);
        let input = sine(960, 440.0, 0);
        assert_eq!(r.process(input.clone()), input);
    }

    #[test]
    fn a_fast_sender_is_stretched_back_onto_the_call_clock() {
        // 100 ppm fast: one hour of input would be 0.36 s too long; here 10 s in 20 ms chunks.
        let step = 1.0001;
        let mut r = DriftResampler::new(step, 2);
        let mut out = Vec::new();
        for chunk in 0..500 {
            out.extend(r.process(sine(960, 440.0, chunk * 960)));
        }
        let out_frames = out.len() / 2;
        let expected = 480_000.0 / step;
        assert!((out_frames as f64 - expected).abs() <= 3.0, "{out_frames} frames, expected {expected}");
        // The output is a clean 440 Hz * step sine: compare against the ideal one.
        let mut worst = 0.0_f32;
        for (n, frame) in out.chunks_exact(2).enumerate() {
            let ideal = (2.0 * std::f64::consts::PI * 440.0 * (n as f64 * step) / 48_000.0).sin() as f32;
            worst = worst.max((frame[0] - ideal).abs()).max((frame[1] + ideal).abs());
        }
        assert!(worst < 1e-3, "interpolation error {worst}");
        assert!(r.held_frames() < 4.0);
    }
}
