//! The resampler's two hot loops with x86 vector instructions, chosen at run time.
//!
//! Across a row: while a tile is enlarged or shrunk by less than about 1.7x, the two source
//! texels of every output byte in a run of up to 16 lie within 16 consecutive source bytes,
//! so one unaligned load and two byte shuffles (`pshufb`, SSSE3) gather a whole run's taps,
//! which are then blended in 16-bit lanes: one pass over the row instead of a scalar gather
//! per byte. The shuffle masks are worked out once per tile placement ([`RowShuffles`]).
//! Down a column: the two-row blend is the portable loop compiled a second time for AVX2
//! ([`with_avx2`], which the uploads' colour conversion uses too).
//!
//! Everywhere else (other architectures, older CPUs, stronger shrinking) the portable loops
//! run: the gather in `scale.rs`, the blends here; both give the same bytes.
//!
//! The crate denies `unsafe`; this module alone may call the kernels compiled for a CPU
//! feature, and only after detecting that feature at run time (the one unsafe act: calling
//! such a function on a CPU without it would be undefined). The kernels themselves are safe
//! code: loads and stores go through bounds-checked slices and `bytemuck` casts.

/// Output bytes one shuffle produces.
const LANES: usize = 16;

/// Runs of output bytes of one row and, per run, where its source bytes start and which of
/// them each output byte takes.
pub(crate) struct RowShuffles {
    /// Output bytes each run advances; a run's shuffle is valid for its first `step` bytes
    /// (the rest are written over by the next run, or fall in the padding).
    step: usize,
    runs: Vec<Run>,
    /// Source row length in bytes the runs were planned for.
    line_len: usize,
}

struct Run {
    base: usize,
    first: [u8; LANES],
    second: [u8; LANES],
}

impl RowShuffles {
    /// Plans runs for `taps` (per output byte, the byte offsets of its two texels in a source
    /// row of `line_len` bytes); `None` where the vector loop cannot run or cannot gather
    /// them (some 4 output bytes reach across more than 16 source bytes).
    pub(crate) fn plan(taps: &[(u32, u32)], line_len: usize) -> Option<RowShuffles> {
        if !ssse3() || line_len < LANES || taps.is_empty() {
            return None;
        }
        [16, 8, 4].into_iter().find_map(|step| Self::with_step(taps, line_len, step))
    }

    fn with_step(taps: &[(u32, u32)], line_len: usize, step: usize) -> Option<RowShuffles> {
        let mut runs = Vec::with_capacity(taps.len().div_ceil(step));
        for run in taps.chunks(step) {
            let base = (run[0].0 as usize).min(line_len - LANES);
            let (mut first, mut second) = ([0x80u8; LANES], [0x80u8; LANES]);
            for (k, &(i0, i1)) in run.iter().enumerate() {
                let (d0, d1) = ((i0 as usize).checked_sub(base)?, (i1 as usize).checked_sub(base)?);
                if d0 >= LANES || d1 >= LANES {
                    return None;
                }
                first[k] = d0 as u8;
                second[k] = d1 as u8;
            }
            runs.push(Run { base, first, second });
        }
        Some(RowShuffles { step, runs, line_len })
    }

    /// Output bytes written past the row's end (callers pad their buffers by this).
    pub(crate) const PADDING: usize = LANES;

    /// Resamples `line` into `out` with weights `wa`, `wb` per output byte (1/256): `out`,
    /// `wa` and `wb` must hold the row plus [`Self::PADDING`]. Returns false (having written
    /// nothing) when the buffers do not fit the plan.
    pub(crate) fn resample(&self, line: &[u8], (wa, wb): (&[u16], &[u16]), out: &mut [u8]) -> bool {
        // The last run starts inside the row and writes 16 bytes.
        let need = self.runs.len().saturating_sub(1) * self.step + LANES;
        if line.len() != self.line_len || out.len() < need || wa.len() < need || wb.len() < need {
            return false;
        }
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: a plan exists only where `ssse3()` found the instructions (the kernel is
            // otherwise safe code, every access bounds-checked).
            unsafe { x86::resample_ssse3(self, line, (wa, wb), out) };
            true
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

fn ssse3() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("ssse3")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `(a * wa + b * wb + 128) / 256` over whole rows (the weights in 1/256 summing to 256).
pub(crate) fn blend_rows(out: &mut [u8], ab: (&[u8], &[u8]), weights: (&[u16], &[u16])) {
    with_avx2(
        #[inline(always)]
        || blend_rows_portable(out, ab, weights),
    );
}

/// The same with one weight for the whole row (`wb = 256 - wa`).
pub(crate) fn blend_rows_uniform(out: &mut [u8], ab: (&[u8], &[u8]), wa: u16) {
    with_avx2(
        #[inline(always)]
        || blend_rows_uniform_portable(out, ab, wa),
    );
}

/// Runs `work` compiled for AVX2 where the CPU has it: its loops, inlined into a function
/// with that feature, are vectorised for 32-byte registers (twice SSE2's width). Mark the
/// closure `#[inline(always)]`: a closure compiled on its own keeps the baseline's SSE2.
pub(crate) fn with_avx2<R>(work: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2; `work` is safe code.
        return unsafe { x86::run_avx2(work) };
    }
    work()
}

#[inline(always)]
fn blend_rows_portable(out: &mut [u8], (a, b): (&[u8], &[u8]), (wa, wb): (&[u16], &[u16])) {
    for ((o, (&t0, &t1)), (&w0, &w1)) in out.iter_mut().zip(a.iter().zip(b)).zip(wa.iter().zip(wb)) {
        *o = ((u16::from(t0) * w0 + u16::from(t1) * w1 + 128) >> 8) as u8;
    }
}

#[inline(always)]
fn blend_rows_uniform_portable(out: &mut [u8], (a, b): (&[u8], &[u8]), wa: u16) {
    let wb = 256 - wa;
    for ((o, &t0), &t1) in out.iter_mut().zip(a).zip(b) {
        *o = ((u16::from(t0) * wa + u16::from(t1) * wb + 128) >> 8) as u8;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi16, _mm_mullo_epi16, _mm_packus_epi16, _mm_set1_epi16, _mm_setzero_si128, _mm_shuffle_epi8,
        _mm_srli_epi16, _mm_unpackhi_epi8, _mm_unpacklo_epi8,
    };

    use super::{LANES, RowShuffles};

    #[target_feature(enable = "avx2")]
    pub(super) fn run_avx2<R>(work: impl FnOnce() -> R) -> R {
        work()
    }

    /// 16 bytes from `bytes[at..]` (bounds-checked; compiles to one unaligned load).
    #[inline(always)]
    fn load_bytes(bytes: &[u8], at: usize) -> __m128i {
        let mut chunk = [0u8; LANES];
        chunk.copy_from_slice(&bytes[at..at + LANES]);
        bytemuck::cast(chunk)
    }

    /// 8 weights from `weights[at..]` (bounds-checked).
    #[inline(always)]
    fn load_weights(weights: &[u16], at: usize) -> __m128i {
        let mut chunk = [0u16; 8];
        chunk.copy_from_slice(&weights[at..at + 8]);
        bytemuck::cast(chunk)
    }

    #[target_feature(enable = "ssse3")]
    pub(super) fn resample_ssse3(plan: &RowShuffles, line: &[u8], (wa, wb): (&[u16], &[u16]), out: &mut [u8]) {
        let zero = _mm_setzero_si128();
        let round = _mm_set1_epi16(128);
        for (k, run) in plan.runs.iter().enumerate() {
            let j = k * plan.step;
            let src = load_bytes(line, run.base);
            let a = _mm_shuffle_epi8(src, load_bytes(&run.first, 0));
            let b = _mm_shuffle_epi8(src, load_bytes(&run.second, 0));
            let blend = |a: __m128i, b: __m128i, at: usize| {
                let sum =
                    _mm_add_epi16(_mm_mullo_epi16(a, load_weights(wa, at)), _mm_mullo_epi16(b, load_weights(wb, at)));
                _mm_srli_epi16::<8>(_mm_add_epi16(sum, round))
            };
            let lo = blend(_mm_unpacklo_epi8(a, zero), _mm_unpacklo_epi8(b, zero), j);
            let hi = blend(_mm_unpackhi_epi8(a, zero), _mm_unpackhi_epi8(b, zero), j + 8);
            out[j..j + LANES].copy_from_slice(&bytemuck::cast::<__m128i, [u8; LANES]>(_mm_packus_epi16(lo, hi)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taps_for(ratio: f64, out_len: usize, channels: usize, src_px: usize) -> Vec<(u32, u32)> {
        let mut taps = Vec::new();
        for p in 0..out_len / channels {
            let s = ((p as f64 + 0.5) * ratio - 0.5).clamp(0.0, (src_px - 1) as f64);
            let i0 = s.floor() as usize;
            let i1 = (i0 + 1).min(src_px - 1);
            for c in 0..channels {
                taps.push(((i0 * channels + c) as u32, (i1 * channels + c) as u32));
            }
        }
        taps
    }

    #[test]
    fn shuffled_rows_equal_the_portable_gather() {
        for (ratio, channels, src_px) in [(0.667, 1, 640), (1.017, 1, 640), (1.68, 2, 320), (0.5, 2, 320), (1.0, 1, 33)]
        {
            let out_len = ((src_px as f64 / ratio) as usize) * channels;
            let taps = taps_for(ratio, out_len, channels, src_px);
            let line: Vec<u8> = (0..src_px * channels).map(|i| (i * 37 % 251) as u8).collect();
            let wa: Vec<u16> = (0..out_len + RowShuffles::PADDING).map(|i| (i * 13 % 257) as u16).collect();
            let wb: Vec<u16> = wa.iter().map(|w| 256 - w).collect();
            let mut expected = vec![0u8; out_len];
            let gathered: (Vec<u8>, Vec<u8>) =
                taps.iter().map(|&(i0, i1)| (line[i0 as usize], line[i1 as usize])).unzip();
            blend_rows_portable(&mut expected, (&gathered.0, &gathered.1), (&wa, &wb));
            let Some(plan) = RowShuffles::plan(&taps, line.len()) else {
                assert!(!ssse3() || ratio > 1.5, "no plan for {ratio} x{channels}");
                continue;
            };
            let mut out = vec![0u8; out_len + RowShuffles::PADDING];
            assert!(plan.resample(&line, (&wa, &wb), &mut out));
            assert_eq!(&out[..out_len], &expected[..], "ratio {ratio} x{channels}");
        }
    }

    #[test]
    fn blends_match_the_portable_loops() {
        let a: Vec<u8> = (0..100).map(|i| (i * 7) as u8).collect();
        let b: Vec<u8> = (0..100).map(|i| (255 - i * 3) as u8).collect();
        let wa: Vec<u16> = (0..100).map(|i| (i * 5 % 257) as u16).collect();
        let wb: Vec<u16> = wa.iter().map(|w| 256 - w).collect();
        let (mut fast, mut slow) = (vec![0u8; 100], vec![0u8; 100]);
        blend_rows(&mut fast, (&a, &b), (&wa, &wb));
        blend_rows_portable(&mut slow, (&a, &b), (&wa, &wb));
        assert_eq!(fast, slow);
        blend_rows_uniform(&mut fast, (&a, &b), 77);
        blend_rows_uniform_portable(&mut slow, (&a, &b), 77);
        assert_eq!(fast, slow);
    }
}
