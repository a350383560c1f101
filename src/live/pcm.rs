//! A chunk of PCM pushed by a live sender, checked and made the mixer's samples: interleaved
//! stereo f32 at the sender's rate (mono is sent to both sides; more channels are folded to
//! two by the usual downmix: front left and right, centre at -3 dB to both, surrounds at -3 dB
//! to their side, LFE dropped).

use super::LiveError;

/// Rates a sender may push (Hz): telephone to studio.
pub const RATES_HZ: std::ops::RangeInclusive<u32> = 8_000..=192_000;

/// Channels a sender may push: mono to 7.1.
pub const MAX_CHANNELS: u32 = 8;

/// How a chunk's samples are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    S16le,
    F32le,
}

impl SampleFormat {
    fn bytes(self) -> usize {
        match self {
            SampleFormat::S16le => 2,
            SampleFormat::F32le => 4,
        }
    }
}

/// One pushed chunk as received.
#[derive(Debug, Clone, Copy)]
pub struct PushedPcm<'a> {
    pub format: SampleFormat,
    pub sample_rate_hz: u32,
    pub channels: u32,
    pub data: &'a [u8],
}

/// Checks `chunk` and returns its samples as interleaved stereo f32 (NaN and infinities,
/// which a float sender may emit, are silenced; values are clamped to -1..1).
pub fn stereo_samples(chunk: &PushedPcm<'_>) -> Result<Vec<f32>, LiveError> {
    let bad = |field: &str, reason: String| LiveError::BadAudio { field: field.to_owned(), reason };
    if !RATES_HZ.contains(&chunk.sample_rate_hz) {
        return Err(bad(
            "sample_rate_hz",
            format!("{} (from {} to {})", chunk.sample_rate_hz, RATES_HZ.start(), RATES_HZ.end()),
        ));
    }
    if chunk.channels == 0 || chunk.channels > MAX_CHANNELS {
        return Err(bad("channels", format!("{} (from 1 to {MAX_CHANNELS})", chunk.channels)));
    }
    let frame_bytes = chunk.format.bytes() * chunk.channels as usize;
    if !chunk.data.len().is_multiple_of(frame_bytes) {
        return Err(bad(
            "data",
            format!(
                "{} bytes is not a whole number of {}-byte frames ({:?}, {} channels)",
                chunk.data.len(),
                frame_bytes,
                chunk.format,
                chunk.channels
            ),
        ));
    }
    let samples: Vec<f32> = match chunk.format {
        SampleFormat::S16le => {
            chunk.data.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect()
        }
        SampleFormat::F32le => chunk
            .data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .map(|v| if v.is_finite() { v.clamp(-1.0, 1.0) } else { 0.0 })
            .collect(),
    };
    let channels = chunk.channels as usize;
    let mut out = Vec::with_capacity(samples.len() / channels * 2);
    for frame in samples.chunks_exact(channels) {
        let (l, r) = downmix(frame);
        out.push(l.clamp(-1.0, 1.0));
        out.push(r.clamp(-1.0, 1.0));
    }
    Ok(out)
}

/// Left and right of one frame of `frame.len()` channels, in the WAVE/SMPTE order (L, R, C,
/// LFE, then surround pairs).
fn downmix(frame: &[f32]) -> (f32, f32) {
    const MINUS_3_DB: f32 = std::f32::consts::FRAC_1_SQRT_2;
    match frame {
        [mono] => (*mono, *mono),
        [l, r] => (*l, *r),
        [l, r, c] => (l + MINUS_3_DB * c, r + MINUS_3_DB * c),
        [l, r, c, _lfe, rest @ ..] => {
            let (mut left, mut right) = (l + MINUS_3_DB * c, r + MINUS_3_DB * c);
            for pair in rest.chunks(2) {
                left += MINUS_3_DB * pair[0];
                right += MINUS_3_DB * pair.get(1).copied().unwrap_or(pair[0]);
            }
            (left, right)
        }
        [] => (0.0, 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s16(values: &[i16]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn mono_s16_goes_to_both_sides() {
        let data = s16(&[16384, -32768]);
        let chunk = PushedPcm { format: SampleFormat::S16le, sample_rate_hz: 48_000, channels: 1, data: &data };
        assert_eq!(stereo_samples(&chunk).expect("samples"), vec![0.5, 0.5, -1.0, -1.0]);
    }

    #[test]
    fn float_garbage_is_silenced_and_clamped() {
        let data: Vec<u8> = [f32::NAN, 2.0, f32::INFINITY, -0.25].iter().flat_map(|v| v.to_le_bytes()).collect();
        let chunk = PushedPcm { format: SampleFormat::F32le, sample_rate_hz: 44_100, channels: 2, data: &data };
        assert_eq!(stereo_samples(&chunk).expect("samples"), vec![0.0, 1.0, 0.0, -0.25]);
    }

    #[test]
    fn surround_is_folded_to_two_channels() {
        // 5.1: L, R, C, LFE, Ls, Rs.
        let data: Vec<u8> = [0.1f32, 0.2, 0.4, 1.0, 0.2, 0.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let chunk = PushedPcm { format: SampleFormat::F32le, sample_rate_hz: 48_000, channels: 6, data: &data };
        let out = stereo_samples(&chunk).expect("samples");
        let k = std::f32::consts::FRAC_1_SQRT_2;
        assert!((out[0] - (0.1 + k * 0.4 + k * 0.2)).abs() < 1e-6);
        assert!((out[1] - (0.2 + k * 0.4)).abs() < 1e-6);
    }

    #[test]
    fn bad_chunks_name_their_field() {
        let data = s16(&[1, 2, 3]);
        let mut chunk = PushedPcm { format: SampleFormat::S16le, sample_rate_hz: 48_000, channels: 2, data: &data };
        let message = stereo_samples(&chunk).expect_err("odd frame").to_string();
        assert!(message.contains("data") && message.contains("6 bytes"), "{message}");
        chunk.channels = 0;
        assert!(stereo_samples(&chunk).expect_err("no channels").to_string().contains("channels"));
        chunk.channels = 1;
        chunk.sample_rate_hz = 1_000_000;
        assert!(stereo_samples(&chunk).expect_err("rate").to_string().contains("sample_rate_hz"));
    }
}
