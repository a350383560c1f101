//! GPU compositing: uploads I420 frames, draws tiles straight into NV12 (BT.709, limited
//! range) luma and chroma render targets and reads both planes back.
//!
//! This module knows nothing about jobs or files: callers upload frames per source id (and
//! RGBA images such as name labels per image id), describe the tiles of one output frame, and
//! get the NV12 bytes back. [`text`] shapes and rasterises labels and avatars on the CPU;
//! [`overlays`] uploads each of them once.

mod backend;
mod compositor;
mod cpu;

/// Largest side of a source picture or output frame the compositor takes.
pub const MAX_SIDE_PX: u32 = cpu::MAX_SIDE_PX;
mod device;
mod image;
pub mod overlays;
mod readback;
mod source;
pub mod text;
impl crate::error::Classify for GpuError {
    fn fault(&self) -> crate::error::Fault {
        match self {
            GpuError::Font(_) => crate::error::Fault::Internal("fonts"),
            _ => crate::error::Fault::Internal("gpu"),
        }
    }
}

#[cfg(test)]
mod style_tests;
#[cfg(test)]
mod tests;

pub use backend::{Compositor, CompositorBackend};
pub use compositor::WgpuCompositor;
pub use cpu::CpuCompositor;
pub use overlays::OverlayCache;
pub use text::{RgbaImage, TextRasterizer};

/// YUV -> RGB matrix of an input frame. Input is always limited ("studio") range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMatrix {
    Bt601,
    Bt709,
}

impl ColorMatrix {
    /// Luma weights (Kr, Kb) of the matrix.
    fn kr_kb(self) -> (f64, f64) {
        match self {
            ColorMatrix::Bt601 => (0.299, 0.114),
            ColorMatrix::Bt709 => (0.2126, 0.0722),
        }
    }

    /// Coefficients `[r_cr, g_cb, g_cr, b_cb]` with R = Y + r_cr*Cr, G = Y - g_cb*Cb - g_cr*Cr,
    /// B = Y + b_cb*Cb (Y in 0..1, Cb/Cr in -0.5..0.5).
    pub(crate) fn yuv_to_rgb_coeffs(self) -> [f32; 4] {
        let (kr, kb) = self.kr_kb();
        let kg = 1.0 - kr - kb;
        let r_cr = 2.0 * (1.0 - kr);
        let b_cb = 2.0 * (1.0 - kb);
        let g_cb = b_cb * kb / kg;
        let g_cr = r_cr * kr / kg;
        [r_cr as f32, g_cb as f32, g_cr as f32, b_cb as f32]
    }
}

/// One borrowed I420 (planar 4:2:0) frame. Chroma planes are `ceil(width/2) x ceil(height/2)`.
#[derive(Debug, Clone, Copy)]
pub struct I420Frame<'a> {
    pub width: u32,
    pub height: u32,
    pub y: &'a [u8],
    pub y_stride: usize,
    pub u: &'a [u8],
    pub u_stride: usize,
    pub v: &'a [u8],
    pub v_stride: usize,
    pub matrix: ColorMatrix,
}

/// Destination rectangle in output pixels, top-left origin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RectPx {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

/// What a tile shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TileContent {
    /// The latest frame uploaded for `source_id`, cropped to `uv_rect`
    /// (`[x0, y0, x1, y1]` in normalized source coordinates; `[0, 0, 1, 1]` = whole frame).
    Video { source_id: u64, uv_rect: [f32; 4] },
    /// A flat colour.
    Solid { rgb: [u8; 3] },
    /// The RGBA image uploaded as `image_id` ([`Compositor::upload_image`]), scaled into the
    /// rect and alpha-blended over what lies below.
    Image { image_id: u64 },
}

/// How a tile's outline is drawn. The default (no rounding, no border) keeps the plain,
/// unblended path; anything else is drawn anti-aliased (coverage as alpha) in both planes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DrawStyle {
    /// Radius of the rounded corners in output pixels (clamped to half the shorter side).
    pub corner_radius_px: f32,
    /// Width of the border drawn inside the rect, in output pixels.
    pub border_px: f32,
    /// Colour of the border (R'G'B').
    pub border_rgb: [u8; 3],
}

impl DrawStyle {
    /// Whether the style changes anything: a positive, finite radius or border width.
    pub fn is_styled(&self) -> bool {
        let positive = |v: f32| v.is_finite() && v > 0.0;
        positive(self.corner_radius_px) || positive(self.border_px)
    }
}

/// One tile of an output frame; tiles are drawn in slice order (later on top).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileDraw {
    pub rect: RectPx,
    pub content: TileContent,
    pub style: DrawStyle,
}

/// Errors of the GPU module. Bad input never panics; it ends up here.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no usable GPU adapter: {0}")]
    NoAdapter(#[from] wgpu::RequestAdapterError),
    #[error("could not open the GPU device: {0}")]
    RequestDevice(#[from] wgpu::RequestDeviceError),
    #[error("output size {width}x{height} must be non-zero and even in both dimensions")]
    OddSize { width: u32, height: u32 },
    #[error("output size {width}x{height} exceeds the device limit of {max} pixels per side")]
    OutputTooLarge { width: u32, height: u32, max: u32 },
    #[error("no frame has been uploaded for source {source_id}")]
    UnknownSource { source_id: u64 },
    #[error("bad frame for source {source_id}: {reason}")]
    BadFrame { source_id: u64, reason: String },
    #[error("no image has been uploaded as image {image_id}")]
    UnknownImage { image_id: u64 },
    #[error("bad image {image_id}: {reason}")]
    BadImage { image_id: u64, reason: String },
    #[error("unknown compositor `{0}`: expected auto, gpu or cpu")]
    UnknownBackend(String),
    #[error("fonts: {0}")]
    Font(String),
    #[error("mapping the readback buffer failed: {0}")]
    Map(String),
    #[error("waiting for the GPU failed: {0}")]
    Poll(#[from] wgpu::PollError),
    #[error("GPU validation error: {0}")]
    Wgpu(String),
}

/// Checks an output size: both sides non-zero and even (NV12 halves them).
pub(crate) fn check_output_size(width: u32, height: u32) -> Result<(), GpuError> {
    if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(GpuError::OddSize { width, height });
    }
    Ok(())
}

/// Checks, before anything is drawn, that every source and image the tiles name is held.
pub(crate) fn check_tiles(
    tiles: &[TileDraw],
    has_source: impl Fn(u64) -> bool,
    has_image: impl Fn(u64) -> bool,
) -> Result<(), GpuError> {
    for tile in tiles {
        match tile.content {
            TileContent::Video { source_id, .. } if !has_source(source_id) => {
                return Err(GpuError::UnknownSource { source_id });
            }
            TileContent::Image { image_id } if !has_image(image_id) => return Err(GpuError::UnknownImage { image_id }),
            _ => {}
        }
    }
    Ok(())
}

/// Converts one R'G'B' pixel to limited-range Y'CbCr with the given matrix.
pub fn rgb_to_yuv_limited(rgb: [u8; 3], matrix: ColorMatrix) -> [u8; 3] {
    let (kr, kb) = matrix.kr_kb();
    let kg = 1.0 - kr - kb;
    let [r, g, b] = rgb.map(|c| f64::from(c) / 255.0);
    let y = kr * r + kg * g + kb * b;
    let cb = (b - y) / (2.0 * (1.0 - kb));
    let cr = (r - y) / (2.0 * (1.0 - kr));
    let q = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    [q(16.0 + 219.0 * y), q(128.0 + 224.0 * cb), q(128.0 + 224.0 * cr)]
}

/// Converts one limited-range Y'CbCr pixel to R'G'B' with the given matrix.
pub fn yuv_limited_to_rgb(yuv: [u8; 3], matrix: ColorMatrix) -> [u8; 3] {
    let [r_cr, g_cb, g_cr, b_cb] = matrix.yuv_to_rgb_coeffs().map(f64::from);
    let y = (f64::from(yuv[0]) - 16.0) / 219.0;
    let cb = (f64::from(yuv[1]) - 128.0) / 224.0;
    let cr = (f64::from(yuv[2]) - 128.0) / 224.0;
    let q = |v: f64| (v * 255.0).round().clamp(0.0, 255.0) as u8;
    [q(y + r_cr * cr), q(y - g_cb * cb - g_cr * cr), q(y + b_cb * cb)]
}

/// BT.709 limited-range `[Y, Cb, Cr]` of an R'G'B' colour, as the compositor writes it.
pub fn rgb_to_yuv709_limited(rgb: [u8; 3]) -> [u8; 3] {
    rgb_to_yuv_limited(rgb, ColorMatrix::Bt709)
}

/// R'G'B' of pixel (x, y) of a tightly packed NV12 image (Y plane then interleaved UV),
/// decoded as BT.709 limited range. Out-of-range coordinates or a short buffer read as
/// black (Y=16, Cb=Cr=128) rather than panicking.
pub fn nv12_pixel_rgb(nv12: &[u8], width: u32, height: u32, x: u32, y: u32) -> [u8; 3] {
    let (w, h, x, y) = (width as usize, height as usize, x as usize, y as usize);
    if x >= w || y >= h {
        return [0, 0, 0];
    }
    let luma = nv12.get(y * w + x).copied().unwrap_or(16);
    let uv_index = w * h + (y / 2) * w + (x / 2) * 2;
    let cb = nv12.get(uv_index).copied().unwrap_or(128);
    let cr = nv12.get(uv_index + 1).copied().unwrap_or(128);
    yuv_limited_to_rgb([luma, cb, cr], ColorMatrix::Bt709)
}

/// Number of bytes of a tightly packed NV12 image of the given (even) size.
pub fn nv12_len(width: u32, height: u32) -> usize {
    let (w, h) = (width as usize, height as usize);
    w * h + w * h / 2
}

#[cfg(test)]
mod pure_tests {
    use super::*;

    fn assert_rgb_near(actual: [u8; 3], expected: [u8; 3], tol: i32, what: &str) {
        let ok = actual.iter().zip(expected).all(|(&a, e)| (i32::from(a) - i32::from(e)).abs() <= tol);
        assert!(ok, "{what}: got {actual:?}, expected {expected:?} (±{tol})");
    }

    #[test]
    fn helpers_round_trip() {
        for rgb in [[0, 0, 0], [255, 255, 255], [200, 40, 40], [12, 200, 90], [90, 30, 250]] {
            let yuv = rgb_to_yuv709_limited(rgb);
            let nv12 = [yuv[0], yuv[0], yuv[0], yuv[0], yuv[1], yuv[2]];
            assert_rgb_near(nv12_pixel_rgb(&nv12, 2, 2, 1, 1), rgb, 2, "round trip");
            assert_rgb_near(
                yuv_limited_to_rgb(rgb_to_yuv_limited(rgb, ColorMatrix::Bt601), ColorMatrix::Bt601),
                rgb,
                2,
                "bt601 round trip",
            );
        }
        assert_eq!(rgb_to_yuv709_limited([0, 0, 0]), [16, 128, 128]);
        assert_eq!(rgb_to_yuv709_limited([255, 255, 255]), [235, 128, 128]);
        assert_eq!(nv12_pixel_rgb(&[], 2, 2, 5, 5), [0, 0, 0]);
    }

    #[test]
    fn shaders_pass_naga_validation() {
        use wgpu::naga;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).expect("shaders dir") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_none_or(|ext| ext != "wgsl") {
                continue;
            }
            let source = std::fs::read_to_string(&path).expect("read shader");
            let module = naga::front::wgsl::parse_str(&source)
                .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default())
                .validate(&module)
                .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));
            count += 1;
        }
        assert!(count >= 2, "expected tile.wgsl and source.wgsl in {}", dir.display());
    }

    #[test]
    fn odd_output_size_is_rejected() {
        for (w, h) in [(641, 360), (640, 361), (0, 2)] {
            assert!(matches!(
                WgpuCompositor::new(w, h),
                Err(GpuError::OddSize { width, height }) if width == w && height == h
            ));
        }
    }
}
