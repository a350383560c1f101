//! The outline of a styled tile on the CPU path: the rounded rect, the border inside it, the
//! anti-aliased coverage of a pixel by each (as `shape_at` in shaders/tile.wgsl), and where
//! that coverage is whole (on whole chroma blocks), so that only the rest is shaded per pixel.

use super::super::{DrawStyle, RectPx};
use super::canvas::Span;

/// Coverage of one pixel by the rounded rect (`outer`) and by the content inside the border
/// (`inner`, at most `outer`); the difference is border.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Shape {
    pub(crate) outer: f32,
    pub(crate) inner: f32,
}

/// A tile's rect with its corner radius, border width and border colour (Y'CbCr).
pub(crate) struct Outline {
    lo: [f32; 2],
    hi: [f32; 2],
    radius: f32,
    border: f32,
    border_ycc: [f32; 3],
}

fn nonnegative(v: f32) -> f32 {
    if v.is_finite() { v.max(0.0) } else { 0.0 }
}

impl Outline {
    pub(crate) fn new(rect: RectPx, style: &DrawStyle, border_ycc: [u8; 3]) -> Self {
        let half_min = 0.5 * rect.width.min(rect.height);
        Self {
            lo: [rect.x, rect.y],
            hi: [rect.x + rect.width, rect.y + rect.height],
            radius: nonnegative(style.corner_radius_px).min(half_min),
            border: nonnegative(style.border_px).min(half_min),
            border_ycc: border_ycc.map(f32::from),
        }
    }

    /// The pixels of the rect grown by one pixel on every side (the strips' outer bounds).
    pub(crate) fn grown(&self, width: u32, height: u32) -> (Span, Span) {
        (
            Span::covered(self.lo[0] - 1.0, self.hi[0] - self.lo[0] + 2.0, width),
            Span::covered(self.lo[1] - 1.0, self.hi[1] - self.lo[1] + 2.0, height),
        )
    }

    /// The chroma blocks whose centres lie in the grown rect (as the GPU rasterises them).
    pub(crate) fn grown_blocks(&self, width: u32, height: u32) -> (Span, Span) {
        let blocks = |lo: f32, hi: f32, limit: u32| {
            let edge = |v: f32| ((v - 1.0) / 2.0).ceil().clamp(0.0, (limit / 2) as f32) as u32;
            let start = edge(lo - 1.0);
            Span { start, end: edge(hi + 1.0).max(start) }
        };
        (blocks(self.lo[0], self.hi[0], width), blocks(self.lo[1], self.hi[1], height))
    }

    /// Where every pixel is wholly content (coverage and content coverage both exactly 1), on
    /// even pixels: a horizontal slab (`[0]`) clear of the side edges by the border and a
    /// pixel of anti-aliasing and clear of the rounded corners top and bottom, and a vertical
    /// slab (`[1]`) the other way round, taller and narrower. Only the rest, thin bands along
    /// the edges and the four corners, needs the per-pixel shape.
    pub(crate) fn plain_slabs(&self, width: u32, height: u32) -> [(Span, Span); 2] {
        let edge = self.border + 1.0;
        let corner = self.radius.max(self.border) + 1.0;
        let axis = |lo: f32, hi: f32, margin: f32, limit: u32| {
            let i0 = 2.0 * ((lo + margin) * 0.5).ceil();
            let i1 = (2.0 * ((hi - margin) * 0.5).floor()).max(i0);
            Span::covered(i0, i1 - i0, limit)
        };
        let [(x0, x1), (y0, y1)] = [(self.lo[0], self.hi[0]), (self.lo[1], self.hi[1])];
        let horizontal = (axis(x0, x1, edge, width), axis(y0, y1, corner, height));
        let vertical = (axis(x0, x1, corner, width), axis(y0, y1, edge, height));
        [horizontal, vertical]
    }

    /// Coverage of the pixel centred at `p`.
    pub(crate) fn shape_at(&self, p: [f32; 2]) -> Shape {
        let outer = (0.5 - rounded_box_distance(p, self.lo, self.hi, self.radius)).clamp(0.0, 1.0);
        if self.border <= 0.0 {
            return Shape { outer, inner: outer };
        }
        let b = self.border;
        let (lo, hi) = ([self.lo[0] + b, self.lo[1] + b], [self.hi[0] - b, self.hi[1] - b]);
        let inner = if hi[0] > lo[0] && hi[1] > lo[1] {
            (0.5 - rounded_box_distance(p, lo, hi, (self.radius - b).max(0.0))).clamp(0.0, 1.0)
        } else {
            0.0
        };
        Shape { outer, inner: inner.min(outer) }
    }

    /// Premultiplied luma and alpha of a pixel: the content (premultiplied `value`, `alpha`)
    /// inside the border, the border colour between the content and the outline.
    pub(crate) fn styled(&self, [value, alpha]: [f32; 2], shape: Shape) -> [f32; 2] {
        self.mix(value, alpha, shape, self.border_ycc[0])
    }

    /// As [`Outline::styled`] for chroma channel `channel` (0: Cb, 1: Cr).
    pub(crate) fn styled_chroma(&self, value: f32, alpha: f32, shape: Shape, channel: usize) -> [f32; 2] {
        self.mix(value, alpha, shape, self.border_ycc[1 + channel])
    }

    fn mix(&self, value: f32, alpha: f32, shape: Shape, border_value: f32) -> [f32; 2] {
        let border = shape.outer - shape.inner;
        [shape.inner * value + border * border_value, shape.inner * alpha + border]
    }
}

/// Signed distance in pixels from `p` to the box `lo..hi` with corners rounded by `radius`
/// (negative inside).
fn rounded_box_distance(p: [f32; 2], lo: [f32; 2], hi: [f32; 2], radius: f32) -> f32 {
    let q: [f32; 2] = std::array::from_fn(|i| (p[i] - (lo[i] + hi[i]) * 0.5).abs() - (hi[i] - lo[i]) * 0.5 + radius);
    let outside = (q[0].max(0.0).powi(2) + q[1].max(0.0).powi(2)).sqrt();
    outside + q[0].max(q[1]).min(0.0) - radius
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline(radius: f32, border: f32) -> Outline {
        let style = DrawStyle { corner_radius_px: radius, border_px: border, border_rgb: [255, 255, 255] };
        Outline::new(RectPx { x: 10.0, y: 10.0, width: 40.0, height: 20.0 }, &style, [235, 128, 128])
    }

    #[test]
    fn coverage_is_full_inside_and_none_outside_and_corners_are_cut() {
        let o = outline(8.0, 0.0);
        assert_eq!(o.shape_at([30.5, 20.5]), Shape { outer: 1.0, inner: 1.0 });
        assert_eq!(o.shape_at([5.5, 20.5]).outer, 0.0);
        assert_eq!(o.shape_at([10.5, 10.5]).outer, 0.0, "the corner is rounded off");
        assert_eq!(o.shape_at([10.5, 20.5]).outer, 1.0, "the straight edge is whole");
    }

    #[test]
    fn the_border_lies_inside_the_rect() {
        let o = outline(0.0, 3.0);
        let edge = o.shape_at([11.5, 20.5]);
        assert_eq!((edge.outer, edge.inner), (1.0, 0.0));
        let [y, a] = o.styled([100.0, 1.0], edge);
        assert_eq!((y, a), (235.0, 1.0));
        assert_eq!(o.shape_at([14.5, 20.5]).inner, 1.0);
    }

    #[test]
    fn the_plain_slabs_are_on_even_pixels_and_wholly_content() {
        let o = outline(8.0, 2.0);
        let slabs = o.plain_slabs(64, 64);
        for (xs, ys) in slabs {
            assert_eq!((xs.start % 2, xs.end % 2, ys.start % 2, ys.end % 2), (0, 0, 0, 0));
            for py in ys.start..ys.end {
                for px in xs.start..xs.end {
                    let shape = o.shape_at([px as f32 + 0.5, py as f32 + 0.5]);
                    assert_eq!(shape, Shape { outer: 1.0, inner: 1.0 }, "({px},{py})");
                }
            }
        }
        // Rect 10..50 x 10..30: the horizontal slab reaches the sides' bands, the vertical
        // one the top and bottom bands.
        assert_eq!(slabs[0].0, Span { start: 14, end: 46 });
        assert_eq!(slabs[1].1, Span { start: 14, end: 26 });
    }
}
