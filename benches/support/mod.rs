//! What the compositor benches share: their knobs and the synthetic I420 sources they upload.

use tessera::gpu::{ColorMatrix, I420Frame, rgb_to_yuv709_limited};

/// Size of every synthetic source.
pub const SRC_W: usize = 640;
pub const SRC_H: usize = 360;

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One synthetic I420 source: smooth R'G'B' gradients, a different blue per source, converted
/// to BT.709 limited range (chroma of each 2x2 block from its top-left pixel).
pub struct Source {
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl Source {
    pub fn new(index: usize) -> Self {
        let cw = SRC_W / 2;
        let blue = (40 + index * 53 % 180) as u8;
        let rgb = |x: usize, y: usize| [(x * 255 / SRC_W) as u8, (y * 255 / SRC_H) as u8, blue];
        let mut source = Self { y: vec![0; SRC_W * SRC_H], u: vec![0; cw * SRC_H / 2], v: vec![0; cw * SRC_H / 2] };
        for y in 0..SRC_H {
            for x in 0..SRC_W {
                let [luma, cb, cr] = rgb_to_yuv709_limited(rgb(x, y));
                source.y[y * SRC_W + x] = luma;
                if x % 2 == 0 && y % 2 == 0 {
                    source.u[y / 2 * cw + x / 2] = cb;
                    source.v[y / 2 * cw + x / 2] = cr;
                }
            }
        }
        source
    }

    pub fn frame(&self) -> I420Frame<'_> {
        I420Frame {
            width: SRC_W as u32,
            height: SRC_H as u32,
            y: &self.y,
            y_stride: SRC_W,
            u: &self.u,
            u_stride: SRC_W / 2,
            v: &self.v,
            v_stride: SRC_W / 2,
            matrix: ColorMatrix::Bt709,
        }
    }
}
