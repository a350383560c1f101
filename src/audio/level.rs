//! How loud a stretch of samples is, per participant before the mix (the speaker layout and
//! speaking indicators read it). Pure.

/// Root mean square of interleaved samples, 0 for none: 1.0 is a full-scale square wave, a
/// full-scale sine reads about 0.707.
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum();
    (sum / samples.len() as f64).sqrt() as f32
}

/// `level` (RMS, 0..1) in dB relative to full scale; silence is -inf.
pub fn dbfs(level: f32) -> f32 {
    20.0 * level.log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_a_sine_and_a_square() {
        assert_eq!(rms(&[]), 0.0);
        assert_eq!(rms(&[0.0; 960]), 0.0);
        let sine: Vec<f32> = (0..48_000).map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 48_000.0).sin()).collect();
        assert!((rms(&sine) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-3);
        assert!((rms(&[0.5, -0.5, 0.5, -0.5]) - 0.5).abs() < 1e-6);
        assert!((dbfs(0.5) + 6.02).abs() < 0.01);
        assert!(dbfs(0.0).is_infinite());
    }
}
