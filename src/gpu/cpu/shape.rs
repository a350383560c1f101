//! The outline of a styled tile on the CPU path: the rounded rect, the border inside it, the
//! anti-aliased coverage of a pixel by each (as `shape_at` in shaders/tile.wgsl), and where
//! that coverage is whole (on whole chroma blocks), so that only the rest is shaded per pixel.

use super::super::{DrawStyle, RectPx};
use super::canvas::Span;
use super::draw::EdgeTaps;

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

    /// What identifies the outline's coverage: rect, radius and border (bits of the f32s).
    pub(crate) fn key(&self) -> [u32; 6] {
        [self.lo[0], self.lo[1], self.hi[0], self.hi[1], self.radius, self.border].map(f32::to_bits)
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

/// What of a styled tile depends on its outline alone, worked out once while the tile stays
/// put: the plain slabs drawn without overlap, and every pixel and chroma block outside them
/// that the grown rect covers at all, with its coverage.
pub(crate) struct Edges {
    /// The horizontal slab and the vertical slab's parts above and below it.
    pub(crate) plain: [(Span, Span); 3],
    /// Rects of edge pixels wholly content (coverage 1, no border): their luma is drawn
    /// plainly.
    pub(crate) whole: Vec<(Span, Span)>,
    /// Rects of edge chroma blocks whose four pixels are wholly content, in blocks: drawn
    /// plainly too (the straight sides of a tile, away from its corners).
    pub(crate) whole_blocks: Vec<(Span, Span)>,
    /// The other edge pixels and blocks with any coverage.
    pub(crate) pixels: Vec<EdgePixel>,
    pub(crate) blocks: Vec<EdgeBlock>,
    /// Where a video's pixels and blocks sample it (see `draw_styled`).
    pub(crate) taps: Option<EdgeTaps>,
}

pub(crate) struct EdgePixel {
    pub(crate) x: u32,
    pub(crate) y: u32,
    pub(crate) shape: Shape,
}

/// A chroma block: its four pixels' coverage and where its one content sample is taken (the
/// mean of the content-covered pixel centres).
pub(crate) struct EdgeBlock {
    pub(crate) x: u32,
    pub(crate) y: u32,
    pub(crate) shapes: [Shape; 4],
    pub(crate) mean: [f64; 2],
}

impl Edges {
    pub(crate) fn new(outline: &Outline, width: u32, height: u32) -> Edges {
        let (grown_x, grown_y) = outline.grown(width, height);
        let [horizontal, vertical] = outline.plain_slabs(width, height);
        let above = Span { start: vertical.1.start, end: horizontal.1.start.max(vertical.1.start) };
        let below = Span { start: horizontal.1.end.min(vertical.1.end), end: vertical.1.end };
        let (mut pixels, mut whole) = (Vec::new(), Vec::new());
        for y in grown_y.start..grown_y.end {
            let mut run: Option<Span> = None;
            for x in outside(grown_x, plain_columns(horizontal, vertical, y)) {
                let shape = outline.shape_at([x as f32 + 0.5, y as f32 + 0.5]);
                if shape == WHOLE {
                    extend_run(&mut whole, &mut run, x, y);
                    continue;
                }
                add_run(&mut whole, run.take(), y);
                if shape.outer > 0.0 {
                    pixels.push(EdgePixel { x, y, shape });
                }
            }
            add_run(&mut whole, run, y);
        }
        let in_blocks = |(xs, ys): (Span, Span)| (xs.whole_blocks(), ys.whole_blocks());
        let (horizontal_blocks, vertical_blocks) = (in_blocks(horizontal), in_blocks(vertical));
        let (block_x, block_y) = outline.grown_blocks(width, height);
        let (mut blocks, mut whole_blocks) = (Vec::new(), Vec::new());
        for y in block_y.start..block_y.end {
            let mut run: Option<Span> = None;
            for x in outside(block_x, plain_columns(horizontal_blocks, vertical_blocks, y)) {
                match EdgeBlock::new(outline, x, y) {
                    Some(block) if block.shapes == [WHOLE; 4] => extend_run(&mut whole_blocks, &mut run, x, y),
                    other => {
                        add_run(&mut whole_blocks, run.take(), y);
                        blocks.extend(other);
                    }
                }
            }
            add_run(&mut whole_blocks, run, y);
        }
        let plain = [horizontal, (vertical.0, above), (vertical.0, below)];
        Edges { plain, whole, whole_blocks, pixels, blocks, taps: None }
    }
}

/// A pixel wholly content.
const WHOLE: Shape = Shape { outer: 1.0, inner: 1.0 };

/// Extends the run of row `y` by column `x` when it ends there, else adds it to the rects
/// and starts another at `x`.
fn extend_run(rects: &mut Vec<(Span, Span)>, run: &mut Option<Span>, x: u32, y: u32) {
    match run {
        Some(span) if span.end == x => span.end = x + 1,
        _ => add_run(rects, run.replace(Span { start: x, end: x + 1 }), y),
    }
}

/// Adds the run `xs` of row `y` to the rects: it extends the rect of the same columns that
/// ends on the row above, else starts one.
fn add_run(rects: &mut Vec<(Span, Span)>, xs: Option<Span>, y: u32) {
    let Some(xs) = xs else { return };
    match rects.iter_mut().find(|(columns, rows)| *columns == xs && rows.end == y) {
        Some((_, rows)) => rows.end = y + 1,
        None => rects.push((xs, Span { start: y, end: y + 1 })),
    }
}

impl EdgeBlock {
    /// Block (`x`, `y`), or `None` when none of its pixels is covered.
    fn new(outline: &Outline, x: u32, y: u32) -> Option<EdgeBlock> {
        let mut shapes = [Shape::default(); 4];
        let (mut inner, mut weighted) = (0.0f64, [0.0f64; 2]);
        for (i, (dx, dy)) in [(0, 0), (1, 0), (0, 1), (1, 1)].into_iter().enumerate() {
            let centre = [f64::from(2 * x + dx) + 0.5, f64::from(2 * y + dy) + 0.5];
            shapes[i] = outline.shape_at([centre[0] as f32, centre[1] as f32]);
            inner += f64::from(shapes[i].inner);
            weighted[0] += centre[0] * f64::from(shapes[i].inner);
            weighted[1] += centre[1] * f64::from(shapes[i].inner);
        }
        if shapes.iter().all(|s| s.outer <= 0.0) {
            return None;
        }
        let mean = if inner > 0.0 {
            [weighted[0] / inner, weighted[1] / inner]
        } else {
            [f64::from(2 * x + 1), f64::from(2 * y + 1)]
        };
        Some(EdgeBlock { x, y, shapes, mean })
    }
}

/// The columns of row `y` inside one of the two slabs (`[0, 0)` when none), which the shaped
/// loops skip; the same for block rows given the slabs in blocks.
fn plain_columns(horizontal: (Span, Span), vertical: (Span, Span), y: u32) -> Span {
    [horizontal, vertical]
        .into_iter()
        .find(|(xs, ys)| !xs.is_empty() && ys.contains(y))
        .map_or(Span { start: 0, end: 0 }, |(xs, _)| xs)
}

/// The values of `span` outside `skip`.
fn outside(span: Span, skip: Span) -> impl Iterator<Item = u32> {
    let cut = skip.intersect(span);
    let (a, b) = if cut.is_empty() { (span.end, span.end) } else { (cut.start, cut.end) };
    (span.start..a).chain(b..span.end)
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

    #[test]
    fn outside_leaves_out_the_skipped_part() {
        let span = Span { start: 2, end: 10 };
        assert_eq!(outside(span, Span { start: 4, end: 8 }).collect::<Vec<_>>(), vec![2, 3, 8, 9]);
        assert_eq!(outside(span, Span { start: 0, end: 0 }).count(), 8);
        assert_eq!(outside(span, Span { start: 0, end: 20 }).count(), 0);
    }
}
