//! What the CPU compositor keeps of each source frame and image: tightly packed BT.709
//! limited-range planes (luma, and Cb/Cr interleaved as in NV12) converted once per upload,
//! and images as premultiplied Y'CbCrA, so that drawing is resampling and blending only.

use super::super::image::{check_image, premultiply};
use super::super::source::check_frame;
use super::super::{ColorMatrix, GpuError, I420Frame};
use super::shuffle::with_avx2;

/// Largest side of a source frame or image, as on the GPU path (wgpu's default limit).
pub(crate) const MAX_SIDE_PX: u32 = 8192;

/// One source's latest frame: BT.709 limited-range luma and interleaved chroma.
#[derive(Default)]
pub(crate) struct SourcePlanes {
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// `width * height` bytes.
    pub(crate) luma: Vec<u8>,
    /// `ceil(width/2) * ceil(height/2)` Cb, Cr pairs.
    pub(crate) chroma: Vec<u8>,
    /// The BT.601 conversion's buffers (reused).
    scratch: Conversion,
}

impl SourcePlanes {
    pub(crate) fn chroma_size(&self) -> (u32, u32) {
        (self.width.div_ceil(2), self.height.div_ceil(2))
    }

    /// Copies `frame` in (strides may exceed the plane widths), converting BT.601 to BT.709,
    /// one row of chroma blocks and its two luma rows at a time (each step a loop over whole
    /// rows that the compiler vectorises).
    pub(crate) fn store(&mut self, source_id: u64, frame: &I420Frame<'_>) -> Result<(), GpuError> {
        let [y, u, v] = check_frame(source_id, frame, MAX_SIDE_PX)?;
        self.width = frame.width;
        self.height = frame.height;
        let (w, cw) = (y.width as usize, u.width as usize);
        let convert = frame.matrix == ColorMatrix::Bt601;
        self.luma.resize(w * y.height as usize, 0);
        self.chroma.resize(2 * cw * u.height as usize, 0);
        let scratch = &mut self.scratch;
        scratch.resize(cw);
        with_avx2(
            #[inline(always)]
            || {
                let chroma_rows = u.data.chunks(u.stride).zip(v.data.chunks(v.stride));
                let luma_rows = self.luma.chunks_mut(2 * w).zip(y.data.chunks(2 * y.stride));
                for ((out, (u_row, v_row)), (luma_out, luma_in)) in
                    self.chroma.chunks_exact_mut(2 * cw).zip(chroma_rows).zip(luma_rows)
                {
                    let (u_row, v_row) = (&u_row[..cw], &v_row[..cw]);
                    if convert {
                        scratch.convert(u_row, v_row);
                        interleave(out, &scratch.cb, &scratch.cr);
                    } else {
                        interleave(out, u_row, v_row);
                    }
                    let luma_delta: &[i16] = bytemuck::cast_slice(&scratch.pixel_delta);
                    for (dst, src) in luma_out.chunks_mut(w).zip(luma_in.chunks(y.stride)) {
                        if convert {
                            for (o, (&s, &d)) in dst.iter_mut().zip(src.iter().zip(luma_delta)) {
                                *o = (i16::from(s) + d).clamp(0, 255) as u8;
                            }
                        } else {
                            dst.copy_from_slice(&src[..w]);
                        }
                    }
                }
            },
        );
        Ok(())
    }
}

/// `out` = `a[0], b[0], a[1], b[1], ...` (written a pair at a time where `out` is aligned
/// for it, which vectorises; byte by byte otherwise).
#[inline(always)]
fn interleave(out: &mut [u8], a: &[u8], b: &[u8]) {
    match bytemuck::try_cast_slice_mut::<u8, u16>(out) {
        Ok(pairs) => {
            for ((pair, &a), &b) in pairs.iter_mut().zip(a).zip(b) {
                *pair = u16::from_ne_bytes([a, b]);
            }
        }
        Err(_) => {
            for ((pair, &a), &b) in out.chunks_exact_mut(2).zip(a).zip(b) {
                pair[0] = a;
                pair[1] = b;
            }
        }
    }
}

/// One row of chroma blocks re-expressed in BT.709, and the correction each pixel column's
/// luma takes from its block's chroma (greys stay grey).
///
/// The arithmetic is 16-bit so that a vector does 16 blocks at once: a chroma offset scaled by
/// 256 times a 2^14 coefficient, high half kept, is the product in 1/64 code values (each
/// product rounded down by under 1/64, so a sum lands within 1/32 of the exact one before it
/// is rounded to a code value).
#[derive(Default)]
struct Conversion {
    cb: Vec<u8>,
    cr: Vec<u8>,
    /// Per block, the correction as an i16 pair: one for each of the block's two columns.
    pixel_delta: Vec<u32>,
}

impl Conversion {
    fn resize(&mut self, blocks: usize) {
        self.cb.resize(blocks, 0);
        self.cr.resize(blocks, 0);
        self.pixel_delta.resize(blocks, 0);
    }

    #[inline(always)]
    fn convert(&mut self, u_row: &[u8], v_row: &[u8]) {
        let m = Matrix601To709::get();
        let n = u_row.len().min(v_row.len()).min(self.cb.len());
        let (cb_out, cr_out, delta_out) = (&mut self.cb[..n], &mut self.cr[..n], &mut self.pixel_delta[..n]);
        let (u_row, v_row) = (&u_row[..n], &v_row[..n]);
        for i in 0..n {
            let (cb, cr) = ((i16::from(u_row[i]) - 128) * 256, (i16::from(v_row[i]) - 128) * 256);
            let delta = (mul_high(cb, m.y_cb) + mul_high(cr, m.y_cr) + 32) >> 6;
            cb_out[i] = clamp_u8(128 + ((mul_high(cb, m.cb_cb) + mul_high(cr, m.cb_cr) + 32) >> 6));
            cr_out[i] = clamp_u8(128 + ((mul_high(cb, m.cr_cb) + mul_high(cr, m.cr_cr) + 32) >> 6));
            delta_out[i] = u32::from(delta as u16) * 0x0001_0001;
        }
    }
}

/// The high half of a 16 x 16-bit product (`pmulhw`).
#[inline(always)]
fn mul_high(a: i16, b: i16) -> i16 {
    ((i32::from(a) * i32::from(b)) >> 16) as i16
}

fn clamp_u8(v: i16) -> u8 {
    v.clamp(0, 255) as u8
}

/// Fixed-point (x 2^14, all under 2 in magnitude) coefficients of BT.601 -> BT.709 on
/// limited-range code values.
struct Matrix601To709 {
    y_cb: i16,
    y_cr: i16,
    cb_cb: i16,
    cb_cr: i16,
    cr_cb: i16,
    cr_cr: i16,
}

impl Matrix601To709 {
    fn get() -> &'static Self {
        static MATRIX: std::sync::OnceLock<Matrix601To709> = std::sync::OnceLock::new();
        MATRIX.get_or_init(|| {
            // Normalised Y' in 0..1, Cb/Cr in -0.5..0.5 -> R'G'B' (BT.601) -> Y'CbCr (BT.709).
            let [r_cr, g_cb, g_cr, b_cb] = ColorMatrix::Bt601.yuv_to_rgb_coeffs().map(f64::from);
            let (kr, kb) = (0.2126, 0.0722);
            let kg = 1.0 - kr - kb;
            let convert = |cb: f64, cr: f64| {
                let (r, g, b) = (r_cr * cr, -g_cb * cb - g_cr * cr, b_cb * cb);
                let y = kr * r + kg * g + kb * b;
                (y, (b - y) / (2.0 * (1.0 - kb)), (r - y) / (2.0 * (1.0 - kr)))
            };
            // Code values: Y' = 16 + 219 y, Cb = 128 + 224 cb: one chroma code step is 1/224.
            let fixed = |v: f64| (v * f64::from(1 << 14)).round().clamp(-32768.0, 32767.0) as i16;
            let (y_b, cb_b, cr_b) = convert(1.0 / 224.0, 0.0);
            let (y_r, cb_r, cr_r) = convert(0.0, 1.0 / 224.0);
            Self {
                y_cb: fixed(219.0 * y_b),
                y_cr: fixed(219.0 * y_r),
                cb_cb: fixed(224.0 * cb_b),
                cb_cr: fixed(224.0 * cb_r),
                cr_cb: fixed(224.0 * cr_b),
                cr_cr: fixed(224.0 * cr_r),
            }
        })
    }
}

/// One uploaded image as premultiplied BT.709 limited-range Y'CbCrA (the offsets scaled by
/// alpha, as the GPU path blends it).
pub(crate) struct ImagePlanes {
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) ycca: Vec<u8>,
    /// Every pixel has alpha 255: drawing it is a copy.
    pub(crate) opaque: bool,
}

impl ImagePlanes {
    pub(crate) fn new(image_id: u64, width: u32, height: u32, rgba: &[u8]) -> Result<Self, GpuError> {
        check_image(image_id, width, height, rgba, MAX_SIDE_PX)?;
        let mut premultiplied = Vec::new();
        premultiply(rgba, &mut premultiplied);
        let mut ycca = Vec::with_capacity(premultiplied.len());
        for px in premultiplied.chunks_exact(4) {
            ycca.extend_from_slice(&premultiplied_ycc(px));
        }
        let opaque = rgba.chunks_exact(4).all(|px| px[3] == 255);
        Ok(Self { width, height, ycca, opaque })
    }
}

/// Premultiplied R'G'B'A to premultiplied BT.709 limited-range Y'CbCrA (see tile.wgsl).
fn premultiplied_ycc(px: &[u8]) -> [u8; 4] {
    let (kr, kb) = (0.2126, 0.0722);
    let kg = 1.0 - kr - kb;
    let [r, g, b, a] = [px[0], px[1], px[2], px[3]].map(|c| f64::from(c) / 255.0);
    let y = kr * r + kg * g + kb * b;
    let cb = (b - y) / (2.0 * (1.0 - kb));
    let cr = (r - y) / (2.0 * (1.0 - kr));
    let q = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    [q(16.0 * a + 219.0 * y), q(128.0 * a + 224.0 * cb), q(128.0 * a + 224.0 * cr), px[3]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::{rgb_to_yuv_limited, yuv_limited_to_rgb};

    #[test]
    fn bt601_frames_become_bt709() {
        for rgb in [[200u8, 40, 40], [12, 200, 90], [90, 30, 250], [128, 128, 128], [255, 255, 255]] {
            let [y, u, v] = rgb_to_yuv_limited(rgb, ColorMatrix::Bt601);
            let (ys, us, vs) = (vec![y; 16], vec![u; 4], vec![v; 4]);
            let frame = I420Frame {
                width: 4,
                height: 4,
                y: &ys,
                y_stride: 4,
                u: &us,
                u_stride: 2,
                v: &vs,
                v_stride: 2,
                matrix: ColorMatrix::Bt601,
            };
            let mut planes = SourcePlanes::default();
            planes.store(1, &frame).expect("store");
            let back = yuv_limited_to_rgb([planes.luma[5], planes.chroma[2], planes.chroma[3]], ColorMatrix::Bt709);
            for c in 0..3 {
                assert!((i32::from(back[c]) - i32::from(rgb[c])).abs() <= 3, "{rgb:?} came back as {back:?}");
            }
        }
    }

    #[test]
    fn sixteen_bit_conversion_is_within_a_code_value_of_the_exact_one() {
        let m = Matrix601To709::get();
        let mut conversion = Conversion::default();
        conversion.resize(256);
        let us: Vec<u8> = (0..=255).collect();
        for v in 0..=255u8 {
            conversion.convert(&us, &[v; 256]);
            for (i, &u) in us.iter().enumerate() {
                let (cb, cr) = (i32::from(u) - 128, i32::from(v) - 128);
                let exact = |a: i16, b: i16| f64::from(i32::from(a) * cb + i32::from(b) * cr) / f64::from(1 << 14);
                let code = |e: f64| (128.0 + e).clamp(0.0, 255.0);
                let expect = [exact(m.y_cb, m.y_cr), code(exact(m.cb_cb, m.cb_cr)), code(exact(m.cr_cb, m.cr_cr))];
                let delta = f64::from(conversion.pixel_delta[i] as u16 as i16);
                let got = [delta, f64::from(conversion.cb[i]), f64::from(conversion.cr[i])];
                for (g, e) in got.into_iter().zip(expect) {
                    assert!((g - e).abs() < 0.5 + 1.0 / 32.0, "({u}, {v}): {got:?}, exactly {expect:?}");
                }
            }
        }
    }

    #[test]
    fn strides_are_dropped_and_short_planes_refused() {
        let ys: Vec<u8> = (0..3 * 8).map(|i| i as u8).collect();
        let cs = vec![128u8; 2 * 8];
        let mut frame = I420Frame {
            width: 3,
            height: 3,
            y: &ys,
            y_stride: 8,
            u: &cs,
            u_stride: 8,
            v: &cs,
            v_stride: 8,
            matrix: ColorMatrix::Bt709,
        };
        let mut planes = SourcePlanes::default();
        planes.store(7, &frame).expect("store");
        assert_eq!(planes.luma, vec![0, 1, 2, 8, 9, 10, 16, 17, 18]);
        assert_eq!(planes.chroma.len(), 2 * 2 * 2);
        frame.y = &ys[..10];
        assert!(matches!(planes.store(7, &frame), Err(GpuError::BadFrame { source_id: 7, .. })));
    }

    /// Time to store a 640x360 frame, per matrix: `cargo test --release --lib store_speed --
    /// --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn store_speed() {
        let (w, h) = (640usize, 360usize);
        let ys: Vec<u8> = (0..w * h).map(|i| (i * 7 % 251) as u8).collect();
        let cs: Vec<u8> = (0..w * h / 4).map(|i| (i * 13 % 241) as u8).collect();
        for matrix in [ColorMatrix::Bt601, ColorMatrix::Bt709] {
            let frame = I420Frame {
                width: w as u32,
                height: h as u32,
                y: &ys,
                y_stride: w,
                u: &cs,
                u_stride: w / 2,
                v: &cs,
                v_stride: w / 2,
                matrix,
            };
            let mut planes = SourcePlanes::default();
            let n = 2000;
            let start = std::time::Instant::now();
            for _ in 0..n {
                planes.store(1, &frame).expect("store");
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(n);
            println!("{matrix:?}: {us:.1} us per 640x360 frame");
        }
    }

    #[test]
    fn images_are_premultiplied_ycca() {
        let image = ImagePlanes::new(3, 2, 1, &[255, 255, 255, 255, 255, 255, 255, 0]).expect("image");
        assert_eq!(&image.ycca[..4], &[235, 128, 128, 255]);
        assert_eq!(&image.ycca[4..], &[0, 0, 0, 0]);
        assert!(!image.opaque);
        assert!(ImagePlanes::new(3, 2, 2, &[0; 4]).is_err());
    }
}
