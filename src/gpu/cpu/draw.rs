//! Drawing one tile on the CPU canvas, with the GPU path's rules (shaders/tile.wgsl): plain
//! tiles write the pixels whose centres they cover and blend their chroma edge blocks by
//! coverage; styled tiles and images draw the part where every pixel is wholly content
//! plainly (images blended by their alpha) and only the bands along their edges and their
//! corners with the anti-aliased rounded-rect coverage.
//!
//! The interiors, where nearly all the pixels are, are resampled row by row ([`Scaler`],
//! the GPU's bilinear taps); the edges and strips, a few pixels wide, are sampled pixel by
//! pixel.

use super::canvas::{Axis, Canvas, Span, Tap};
use super::planes::SourcePlanes;
use super::scale::{Plane, Scaler};
use super::shape::{Edges, Outline};

/// What a tile shows, ready to be sampled anywhere in the tile.
pub(crate) enum Content<'a> {
    /// A flat Y'CbCr colour.
    Solid([u8; 3]),
    /// A source frame, mapped onto the output by the two axes (output pixels to luma texels).
    Video { planes: &'a SourcePlanes, x: Axis, y: Axis },
    /// An image already resampled to the tile's pixels.
    Image(&'a ResizedImage),
}

/// An image resampled to the pixels `xs x ys` of one tile, premultiplied Y'CbCrA.
pub(crate) struct ResizedImage {
    pub(crate) xs: Span,
    pub(crate) ys: Span,
    /// Per pixel: premultiplied Y', Cb, Cr and alpha.
    pub(crate) ycca: Vec<u8>,
    /// Per whole chroma block of `xs x ys`: the mean premultiplied Cb, Cr and alpha.
    pub(crate) blocks: Vec<[u8; 3]>,
    pub(crate) opaque: bool,
}

impl ResizedImage {
    pub(crate) fn new(xs: Span, ys: Span, ycca: Vec<u8>, opaque: bool) -> Self {
        let (bxs, bys) = (xs.whole_blocks(), ys.whole_blocks());
        let w = xs.len() as usize;
        let mut blocks = Vec::with_capacity(bxs.len() as usize * bys.len() as usize);
        for by in bys.start..bys.end {
            for bx in bxs.start..bxs.end {
                let mut sum = [0u32; 3];
                for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (px, py) = ((2 * bx + dx - xs.start) as usize, (2 * by + dy - ys.start) as usize);
                    let i = (py * w + px) * 4;
                    for (c, s) in sum.iter_mut().enumerate() {
                        *s += u32::from(ycca.get(i + 1 + c).copied().unwrap_or(0));
                    }
                }
                blocks.push(sum.map(|s| ((s + 2) / 4) as u8));
            }
        }
        Self { xs, ys, ycca, blocks, opaque }
    }

    fn pixel(&self, px: u32, py: u32) -> [u8; 4] {
        let x = px.clamp(self.xs.start, self.xs.end.saturating_sub(1).max(self.xs.start)) - self.xs.start;
        let y = py.clamp(self.ys.start, self.ys.end.saturating_sub(1).max(self.ys.start)) - self.ys.start;
        let i = (y as usize * self.xs.len() as usize + x as usize) * 4;
        match self.ycca.get(i..i + 4) {
            Some(p) => [p[0], p[1], p[2], p[3]],
            None => [0; 4],
        }
    }
}

/// The taps of a video tile's edge pixels and blocks, kept with its [`Edges`] while the
/// source's size and its mapping onto the tile stay (the edges are sampled every frame).
pub(crate) struct EdgeTaps {
    /// The axes (bits of their f64s) and the source's size.
    key: [u64; 6],
    luma: Vec<Tap>,
    chroma: Vec<Tap>,
}

impl EdgeTaps {
    /// What the taps depend on: the axes (bits of their f64s) and the source's size.
    fn key(planes: &SourcePlanes, (x, y): (Axis, Axis)) -> [u64; 6] {
        let [a, b, c, d] = [x.origin, x.scale, y.origin, y.scale].map(f64::to_bits);
        [a, b, c, d, u64::from(planes.width), u64::from(planes.height)]
    }

    fn new(key: [u64; 6], edges: &Edges, planes: &SourcePlanes, (x, y): (Axis, Axis)) -> EdgeTaps {
        let luma = edges.pixels.iter().map(|p| luma_tap(planes, (x, y), p.x, p.y)).collect();
        let chroma = edges.blocks.iter().map(|b| chroma_tap(planes, (x, y), b.mean)).collect();
        EdgeTaps { key, luma, chroma }
    }
}

/// The tap of luma at output pixel (`px`, `py`).
fn luma_tap(planes: &SourcePlanes, (x, y): (Axis, Axis), px: u32, py: u32) -> Tap {
    let (sx, sy) = (x.at(f64::from(px) + 0.5), y.at(f64::from(py) + 0.5));
    Tap::new(planes.width, planes.height, sx, sy)
}

/// The tap of chroma at output point `at`.
fn chroma_tap(planes: &SourcePlanes, (x, y): (Axis, Axis), at: [f64; 2]) -> Tap {
    let (cw, ch) = planes.chroma_size();
    let (x, y) = (x.chroma(planes.width, cw), y.chroma(planes.height, ch));
    // Output point `at` is block coordinate `at / 2`.
    Tap::new(cw, ch, x.at(at[0] / 2.0), y.at(at[1] / 2.0))
}

impl Content<'_> {
    /// Premultiplied luma and alpha (0..1) at output pixel (`px`, `py`).
    fn luma_at(&self, px: u32, py: u32) -> (f32, f32) {
        match self {
            Content::Solid(ycc) => (f32::from(ycc[0]), 1.0),
            Content::Video { planes, x, y } => (luma_tap(planes, (*x, *y), px, py).sample::<1>(&planes.luma)[0], 1.0),
            Content::Image(image) => {
                let p = image.pixel(px, py);
                (f32::from(p[0]), f32::from(p[3]) / 255.0)
            }
        }
    }

    /// Premultiplied chroma and alpha (0..1) at output point `at`.
    fn chroma_at(&self, at: [f64; 2]) -> ([f32; 2], f32) {
        match self {
            Content::Solid(ycc) => ([f32::from(ycc[1]), f32::from(ycc[2])], 1.0),
            Content::Video { planes, x, y } => (chroma_tap(planes, (*x, *y), at).sample::<2>(&planes.chroma), 1.0),
            Content::Image(image) => {
                let p = image.pixel(at[0].max(0.0) as u32, at[1].max(0.0) as u32);
                ([f32::from(p[1]), f32::from(p[2])], f32::from(p[3]) / 255.0)
            }
        }
    }
}

/// Draws `content` over the pixels `xs x ys` without shape: every covered pixel is the
/// content's, chroma edge blocks are blended by coverage.
pub(crate) fn draw_plain(canvas: &mut Canvas<'_>, scaler: &mut Scaler, content: &Content<'_>, xs: Span, ys: Span) {
    if xs.is_empty() || ys.is_empty() {
        return;
    }
    draw_interior(canvas, scaler, content, xs, ys);
    Canvas::partial_blocks(xs, ys, |bx, by, coverage, mean| {
        let (value, alpha) = content.chroma_at(mean);
        let alpha = alpha * coverage;
        canvas.blend_chroma(bx, by, value.map(|v| v * coverage), alpha);
    });
}

/// Draws the content over the pixels `xs x ys` and their whole chroma blocks: solid and
/// video replace what is there, images blend by their alpha.
fn draw_interior(canvas: &mut Canvas<'_>, scaler: &mut Scaler, content: &Content<'_>, xs: Span, ys: Span) {
    draw_luma(canvas, scaler, content, xs, ys);
    draw_chroma(canvas, scaler, content, xs.whole_blocks(), ys.whole_blocks());
}

/// Draws the content over the chroma blocks `bxs x bys`: solid and video replace what is
/// there, images blend by their alpha.
fn draw_chroma(canvas: &mut Canvas<'_>, scaler: &mut Scaler, content: &Content<'_>, bxs: Span, bys: Span) {
    match content {
        Content::Solid(ycc) => canvas.fill_chroma(bxs, bys, ycc[1], ycc[2]),
        Content::Video { planes, x, y } => {
            let (cw, ch) = planes.chroma_size();
            let chroma = Plane { data: &planes.chroma, width: cw, height: ch };
            let width = canvas.chroma_width();
            let axes = (x.chroma(planes.width, cw), y.chroma(planes.height, ch));
            scaler.scale::<2>(&chroma, canvas.chroma, width, (bxs, bys), axes);
        }
        Content::Image(image) => blend_image_chroma(canvas, image, bxs, bys),
    }
}

/// Draws the luma of the content over the pixels `xs x ys`: solid and video replace what
/// is there, images blend by their alpha.
fn draw_luma(canvas: &mut Canvas<'_>, scaler: &mut Scaler, content: &Content<'_>, xs: Span, ys: Span) {
    match content {
        Content::Solid(ycc) => canvas.fill_luma(xs, ys, ycc[0]),
        Content::Video { planes, x, y } => {
            let luma = Plane { data: &planes.luma, width: planes.width, height: planes.height };
            scaler.scale::<1>(&luma, canvas.luma, canvas.width, (xs, ys), (*x, *y));
        }
        Content::Image(image) => blend_image_luma(canvas, image, xs, ys),
    }
}

/// Blends (or, when opaque, copies) a resampled image's luma over the pixels `xs x ys`
/// within its own.
fn blend_image_luma(canvas: &mut Canvas<'_>, image: &ResizedImage, xs: Span, ys: Span) {
    let (xs, ys) = (xs.intersect(image.xs), ys.intersect(image.ys));
    let (iw, w) = (image.xs.len() as usize, canvas.width as usize);
    for py in ys.start..ys.end {
        let src_row = (py - image.ys.start) as usize * iw;
        let dst_row = py as usize * w;
        for px in xs.start..xs.end {
            let s = (src_row + (px - image.xs.start) as usize) * 4;
            let (y, a) = (image.ycca[s], image.ycca[s + 3]);
            let d = &mut canvas.luma[dst_row + px as usize];
            *d = if image.opaque { y } else { y.saturating_add(mul255(*d, 255 - a)) };
        }
    }
}

/// The same for the chroma blocks `bxs x bys` within the image's whole blocks.
fn blend_image_chroma(canvas: &mut Canvas<'_>, image: &ResizedImage, bxs: Span, bys: Span) {
    let (ibxs, ibys) = (image.xs.whole_blocks(), image.ys.whole_blocks());
    let (bxs, bys) = (bxs.intersect(ibxs), bys.intersect(ibys));
    let cw = canvas.chroma_width() as usize;
    for by in bys.start..bys.end {
        for bx in bxs.start..bxs.end {
            let b = image.blocks[(by - ibys.start) as usize * ibxs.len() as usize + (bx - ibxs.start) as usize];
            let i = (by as usize * cw + bx as usize) * 2;
            for c in 0..2 {
                let d = &mut canvas.chroma[i + c];
                *d = if image.opaque { b[c] } else { b[c].saturating_add(mul255(*d, 255 - b[2])) };
            }
        }
    }
}

/// `a * b / 255`, rounded.
fn mul255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    ((t + (t >> 8)) >> 8) as u8
}

/// Draws a styled tile (or an image): the slabs where every pixel is wholly content plainly
/// (see [`Outline::plain_slabs`]), then the pixels and blocks of its [`Edges`] with their
/// anti-aliased coverage, blended as premultiplied Y'CbCr.
pub(crate) fn draw_styled(
    canvas: &mut Canvas<'_>,
    scaler: &mut Scaler,
    content: &Content<'_>,
    outline: &Outline,
    edges: &mut Edges,
) {
    // A video's edges are sampled through taps kept from frame to frame.
    let sampled = match content {
        Content::Video { planes, x, y } => {
            let key = EdgeTaps::key(planes, (*x, *y));
            let taps = match edges.taps.take() {
                Some(taps) if taps.key == key => taps,
                _ => EdgeTaps::new(key, edges, planes, (*x, *y)),
            };
            Some((taps, *planes))
        }
        _ => None,
    };
    for (xs, ys) in edges.plain {
        if !xs.is_empty() && !ys.is_empty() {
            draw_interior(canvas, scaler, content, xs, ys);
        }
    }
    for &(xs, ys) in &edges.whole {
        draw_luma(canvas, scaler, content, xs, ys);
    }
    for &(bxs, bys) in &edges.whole_blocks {
        draw_chroma(canvas, scaler, content, bxs, bys);
    }
    for (i, pixel) in edges.pixels.iter().enumerate() {
        let (value, alpha) = match &sampled {
            Some((taps, planes)) => (taps.luma[i].sample::<1>(&planes.luma)[0], 1.0),
            None => content.luma_at(pixel.x, pixel.y),
        };
        let [y, a] = outline.styled([value, alpha], pixel.shape);
        if a > 0.0 {
            canvas.blend_luma(pixel.x, pixel.y, y, a);
        }
    }
    for (i, block) in edges.blocks.iter().enumerate() {
        let (value, alpha) = match &sampled {
            Some((taps, planes)) => (taps.chroma[i].sample::<2>(&planes.chroma), 1.0),
            None => content.chroma_at(block.mean),
        };
        let mut sum = [0.0f32; 3];
        for shape in block.shapes {
            let [cb, a] = outline.styled_chroma(value[0], alpha, shape, 0);
            let [cr, _] = outline.styled_chroma(value[1], alpha, shape, 1);
            sum[0] += cb;
            sum[1] += cr;
            sum[2] += a;
        }
        if sum[2] > 0.0 {
            canvas.blend_chroma(block.x, block.y, [sum[0] / 4.0, sum[1] / 4.0], sum[2] / 4.0);
        }
    }
    edges.taps = sampled.map(|(taps, _)| taps);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mul255_rounds() {
        assert_eq!(mul255(255, 255), 255);
        assert_eq!(mul255(255, 0), 0);
        assert_eq!(mul255(128, 128), 64);
        assert_eq!(mul255(200, 255), 200);
    }
}
