//! A video frame pushed by a live sender, checked against what it claims and made the
//! compositor's picture: tightly packed I420, upright.
//!
//! Senders push what their decoder or capture gives them: I420 or NV12 (Y'CbCr as WebRTC's
//! decoders write it, BT.601 unless the frame says BT.709) or RGBA (converted here with
//! BT.709, the compositor's own matrix), each plane with its stride, and the rotation the
//! picture must be turned by to stand upright (a phone held sideways sends 90 or 270).
//! Nothing is trusted: sizes are bounded, every plane must hold the rows its stride and height
//! say, and an error names the field and the value.

use crate::gpu::{ColorMatrix, MAX_SIDE_PX, rgb_to_yuv_limited};
use crate::media::decode::VideoFrame;

use super::LiveError;

/// How a pushed picture's bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// Three planes: Y, then U and V at half width and height (rounded up).
    I420,
    /// Two planes: Y, then U and V interleaved at half height.
    Nv12,
    /// One plane of R, G, B, A bytes (alpha ignored).
    Rgba,
}

impl PixelFormat {
    fn planes(self) -> usize {
        match self {
            PixelFormat::I420 => 3,
            PixelFormat::Nv12 => 2,
            PixelFormat::Rgba => 1,
        }
    }
}

/// One pushed picture as received.
#[derive(Debug, Clone, Copy)]
pub struct PushedFrame<'a> {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    pub planes: &'a [&'a [u8]],
    /// Bytes per row of each plane.
    pub strides: &'a [u32],
    /// Clockwise turn that makes the picture upright: 0, 90, 180 or 270.
    pub rotation_deg: u32,
    /// Y'CbCr planes use BT.709 (else BT.601); ignored for RGBA.
    pub bt709: bool,
}

/// Checks `frame` and returns it as an upright I420 picture (`pts_ms` left 0 for the caller).
pub fn picture(frame: &PushedFrame<'_>) -> Result<VideoFrame, LiveError> {
    let (w, h) = (frame.width, frame.height);
    if w == 0 || h == 0 || w > MAX_SIDE_PX || h > MAX_SIDE_PX {
        return Err(bad("width x height", format!("{w}x{h} (each side must be 1 to {MAX_SIDE_PX})")));
    }
    if !matches!(frame.rotation_deg, 0 | 90 | 180 | 270) {
        return Err(bad("rotation", format!("{} (0, 90, 180 or 270)", frame.rotation_deg)));
    }
    let want = frame.format.planes();
    if frame.planes.len() != want || frame.strides.len() != want {
        return Err(bad(
            "planes",
            format!(
                "{} planes and {} strides for {:?}, which has {want}",
                frame.planes.len(),
                frame.strides.len(),
                frame.format
            ),
        ));
    }
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let rows = |i: usize, row_bytes: u32, height: u32| plane_rows(frame, i, row_bytes, height);
    let upright = match frame.format {
        PixelFormat::I420 => {
            let planes = [rows(0, w, h)?, rows(1, cw, ch)?, rows(2, cw, ch)?].map(|p| p.concat());
            I420 { width: w, height: h, planes }
        }
        PixelFormat::Nv12 => {
            let (y, uv) = (rows(0, w, h)?, rows(1, 2 * cw, ch)?);
            let pick = |k: usize| uv.iter().flat_map(|row| row.iter().skip(k).step_by(2)).copied().collect();
            I420 { width: w, height: h, planes: [y.concat(), pick(0), pick(1)] }
        }
        PixelFormat::Rgba => rgba_to_i420(w, h, &rows(0, 4 * w, h)?),
    };
    let turned = upright.rotated(frame.rotation_deg);
    Ok(turned.into_frame(frame.bt709 || frame.format == PixelFormat::Rgba))
}

fn bad(field: &str, reason: String) -> LiveError {
    LiveError::BadFrame { field: field.to_owned(), reason }
}

/// Plane `i`'s first `row_bytes` of each of its `height` rows, or an error naming what is short.
fn plane_rows<'a>(frame: &PushedFrame<'a>, i: usize, row_bytes: u32, height: u32) -> Result<Vec<&'a [u8]>, LiveError> {
    let (data, stride) = (frame.planes[i], frame.strides[i] as usize);
    let row_bytes = row_bytes as usize;
    if stride < row_bytes {
        return Err(bad(&format!("strides[{i}]"), format!("{stride} is less than the row's {row_bytes} bytes")));
    }
    let needed = stride * (height as usize - 1) + row_bytes;
    if data.len() < needed {
        return Err(bad(
            &format!("planes[{i}]"),
            format!("{} bytes, but {height} rows of stride {stride} need {needed}", data.len()),
        ));
    }
    Ok((0..height as usize).map(|r| &data[r * stride..r * stride + row_bytes]).collect())
}

/// A picture as three tightly packed planes.
struct I420 {
    width: u32,
    height: u32,
    planes: [Vec<u8>; 3],
}

impl I420 {
    fn plane_size(&self, p: usize) -> (usize, usize) {
        if p == 0 {
            (self.width as usize, self.height as usize)
        } else {
            (self.width.div_ceil(2) as usize, self.height.div_ceil(2) as usize)
        }
    }

    /// Turned clockwise by `deg` (0, 90, 180, 270).
    fn rotated(self, deg: u32) -> I420 {
        if deg == 0 {
            return self;
        }
        let (width, height) = if deg == 180 { (self.width, self.height) } else { (self.height, self.width) };
        let planes = [0, 1, 2].map(|p| {
            let (w, h) = self.plane_size(p);
            let src = &self.planes[p];
            let mut out = Vec::with_capacity(w * h);
            match deg {
                // Output row r, column c of a 90-degree turn is source row h-1-c, column r.
                90 => (0..w).for_each(|r| out.extend((0..h).map(|c| src[(h - 1 - c) * w + r]))),
                180 => out.extend(src.iter().rev()),
                _ => (0..w).for_each(|r| out.extend((0..h).map(|c| src[c * w + (w - 1 - r)]))),
            }
            out
        });
        I420 { width, height, planes }
    }

    fn into_frame(self, bt709: bool) -> VideoFrame {
        VideoFrame::packed_i420(self.width, self.height, self.planes.concat(), bt709)
    }
}

/// BT.709 limited-range I420 of R'G'B' rows (each `4 * width` bytes), by the compositor's own
/// conversion; chroma is that of each 2x2 block's mean colour.
fn rgba_to_i420(width: u32, height: u32, rows: &[&[u8]]) -> I420 {
    let (w, h) = (width as usize, height as usize);
    let ycc = |rgb: [u8; 3]| rgb_to_yuv_limited(rgb, ColorMatrix::Bt709);
    let rgb = |x: usize, y: usize| [rows[y][4 * x], rows[y][4 * x + 1], rows[y][4 * x + 2]];
    let luma = (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).map(|(x, y)| ycc(rgb(x, y))[0]).collect();
    let (mut cb, mut cr) = (Vec::new(), Vec::new());
    for by in 0..h.div_ceil(2) {
        for bx in 0..w.div_ceil(2) {
            let (sum, n) = [(0, 0), (1, 0), (0, 1), (1, 1)]
                .map(|(dx, dy)| (2 * bx + dx, 2 * by + dy))
                .into_iter()
                .filter(|&(x, y)| x < w && y < h)
                .fold(([0u32; 3], 0u32), |(sum, n), (x, y)| {
                    let px = rgb(x, y);
                    ([0, 1, 2].map(|c| sum[c] + u32::from(px[c])), n + 1)
                });
            let mean = sum.map(|s| ((s + n / 2) / n) as u8);
            let [_, u, v] = ycc(mean);
            cb.push(u);
            cr.push(v);
        }
    }
    I420 { width, height, planes: [luma, cb, cr] }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
