//! The NV12 canvas of the CPU compositor and the geometry shared by its drawing: which output
//! pixels a rect covers (the GPU's rasterisation rule: pixel centres inside), which chroma
//! blocks lie wholly or partly inside, how output coordinates map to a source, and the
//! primitives that write and blend into both planes.

/// The output frame being drawn: the luma plane and the interleaved CbCr plane of NV12.
pub(crate) struct Canvas<'a> {
    pub(crate) width: u32,
    pub(crate) luma: &'a mut [u8],
    pub(crate) chroma: &'a mut [u8],
}

/// A range `[start, end)` of pixels (or chroma blocks) along one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    /// The pixels whose centres lie in `[lo, lo + size)`, within `0..limit`.
    pub(crate) fn covered(lo: f32, size: f32, limit: u32) -> Span {
        let edge = |v: f32| (v - 0.5).ceil().clamp(0.0, limit as f32) as u32;
        let start = edge(lo);
        Span { start, end: edge(lo + size).max(start) }
    }

    pub(crate) fn len(&self) -> u32 {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub(crate) fn contains(&self, v: u32) -> bool {
        v >= self.start && v < self.end
    }

    /// The chroma blocks both of whose pixels are in the span.
    pub(crate) fn whole_blocks(&self) -> Span {
        let start = self.start.div_ceil(2);
        Span { start, end: (self.end / 2).max(start) }
    }

    /// The chroma blocks with at least one pixel in the span.
    pub(crate) fn touched_blocks(&self) -> Span {
        Span { start: self.start / 2, end: self.end.div_ceil(2) }
    }

    /// The part of the span inside `other`.
    pub(crate) fn intersect(&self, other: Span) -> Span {
        let start = self.start.max(other.start);
        Span { start, end: self.end.min(other.end).max(start) }
    }
}

/// The rects of a frame that opaque tiles replace: luma pixels, and chroma blocks.
#[derive(Debug, Default)]
pub(crate) struct Cover {
    pub(crate) luma: Vec<(Span, Span)>,
    pub(crate) chroma: Vec<(Span, Span)>,
}

impl Cover {
    /// Adds the pixels `xs x ys` and their whole chroma blocks.
    pub(crate) fn add(&mut self, xs: Span, ys: Span) {
        self.luma.push((xs, ys));
        self.chroma.push((xs.whole_blocks(), ys.whole_blocks()));
    }
}

/// Sets to `value` every element of a plane of `width`-wide rows that none of `rects`
/// (`(columns, rows)`) covers. The rows are swept top to bottom with the rects that span
/// the row at hand, so a tile's many thin edge rects cost only on their own rows.
fn fill_outside<T: Copy>(plane: &mut [T], width: usize, rects: &[(Span, Span)], value: T) {
    let mut by_top: Vec<(Span, Span)> =
        rects.iter().copied().filter(|(xs, ys)| !xs.is_empty() && !ys.is_empty()).collect();
    by_top.sort_unstable_by_key(|(_, ys)| ys.start);
    let (mut next, mut active, mut spans) = (0, Vec::new(), Vec::new());
    for (y, row) in plane.chunks_exact_mut(width.max(1)).enumerate() {
        let y = y as u32;
        while let Some(&(xs, ys)) = by_top.get(next).filter(|(_, ys)| ys.start <= y) {
            active.push((xs, ys.end));
            next += 1;
        }
        active.retain(|&(_, end)| end > y);
        spans.clear();
        spans.extend(active.iter().map(|&(xs, _)| xs));
        spans.sort_unstable_by_key(|span: &Span| span.start);
        let mut at = 0;
        for span in &spans {
            let start = (span.start as usize).min(width);
            if start > at {
                row[at..start].fill(value);
            }
            at = at.max((span.end as usize).min(width));
        }
        row[at..].fill(value);
    }
}

/// A linear map from output pixel coordinates to source coordinates along one axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Axis {
    /// Source coordinate of output coordinate 0.
    pub(crate) origin: f64,
    /// Source pixels per output pixel.
    pub(crate) scale: f64,
}

impl Axis {
    /// The axis that maps the rect `lo..lo + size` onto `uv0..uv1` of a `source_px` source.
    pub(crate) fn new(lo: f32, size: f32, uv0: f32, uv1: f32, source_px: u32) -> Axis {
        let source = f64::from(source_px);
        let scale = source * f64::from(uv1 - uv0) / f64::from(size);
        Axis { origin: source * f64::from(uv0) - f64::from(lo) * scale, scale }
    }

    pub(crate) fn at(&self, p: f64) -> f64 {
        self.origin + p * self.scale
    }

    /// The same map in chroma units: output blocks (2 pixels) to the texels of a chroma plane
    /// `chroma_px` wide that covers the `luma_px` of the source (`ceil(luma_px / 2)`: for an
    /// odd size, a little more than half, as the GPU samples it).
    pub(crate) fn chroma(&self, luma_px: u32, chroma_px: u32) -> Axis {
        let ratio = f64::from(chroma_px) / f64::from(luma_px.max(1));
        Axis { origin: self.origin * ratio, scale: 2.0 * self.scale * ratio }
    }
}

/// Where a bilinear sample (clamped to the edges, texel centres at `k + 0.5`) at a fixed
/// point reads a plane: its four texels (pixel indices into the plane) and the weights,
/// worked out once for points sampled every frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tap {
    /// Top left, top right, bottom left, bottom right.
    texels: [usize; 4],
    fx: f32,
    fy: f32,
}

impl Tap {
    /// The tap at plane coordinates (`x`, `y`) of a `width x height` plane.
    pub(crate) fn new(width: u32, height: u32, x: f64, y: f64) -> Tap {
        let coord = |v: f64, limit: u32| {
            let v = (v - 0.5).clamp(0.0, f64::from(limit.max(1) - 1));
            // Not negative: truncation is the floor (and no call into libm).
            let i = v as u32;
            (i as usize, ((i + 1).min(limit.max(1) - 1)) as usize, (v - f64::from(i)) as f32)
        };
        let (x0, x1, fx) = coord(x, width);
        let (y0, y1, fy) = coord(y, height);
        let w = width as usize;
        Tap { texels: [y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1], fx, fy }
    }

    /// The sample of an `N`-channel interleaved plane (0 outside it).
    pub(crate) fn sample<const N: usize>(&self, plane: &[u8]) -> [f32; N] {
        let at = |t: usize, c: usize| f32::from(plane.get(self.texels[t] * N + c).copied().unwrap_or(0));
        let (fx, fy) = (self.fx, self.fy);
        std::array::from_fn(|c| {
            let top = at(0, c) * (1.0 - fx) + at(1, c) * fx;
            let bottom = at(2, c) * (1.0 - fx) + at(3, c) * fx;
            top * (1.0 - fy) + bottom * fy
        })
    }
}

/// Rounds a value in 0..255 to a code value.
pub(crate) fn code(v: f32) -> u8 {
    (v + 0.5).clamp(0.0, 255.0) as u8
}

/// Premultiplied `value` (covering `alpha` in 0..1) over `below`.
pub(crate) fn over(value: f32, alpha: f32, below: u8) -> u8 {
    code(value + (1.0 - alpha) * f32::from(below))
}

impl Canvas<'_> {
    pub(crate) fn chroma_width(&self) -> u32 {
        self.width / 2
    }

    /// Fills the frame with one Y'CbCr colour, except the pixels of `cover.luma` and the
    /// blocks of `cover.chroma`: what opaque tiles will replace whatever lies below.
    pub(crate) fn clear_outside(&mut self, ycc: [u8; 3], cover: &Cover) {
        let width = self.width as usize;
        fill_outside(self.luma, width, &cover.luma, ycc[0]);
        // Pairs as one u16 where the plane is aligned for it (stores the compiler widens).
        match bytemuck::try_cast_slice_mut::<u8, u16>(self.chroma) {
            Ok(pairs) => fill_outside(pairs, width / 2, &cover.chroma, u16::from_ne_bytes([ycc[1], ycc[2]])),
            Err(_) => {
                let pairs: &mut [[u8; 2]] = bytemuck::cast_slice_mut(self.chroma);
                fill_outside(pairs, width / 2, &cover.chroma, [ycc[1], ycc[2]]);
            }
        }
    }

    /// Sets the luma of the pixels `xs x ys`.
    pub(crate) fn fill_luma(&mut self, xs: Span, ys: Span, y: u8) {
        let w = self.width as usize;
        for row in ys.start..ys.end {
            let start = row as usize * w;
            self.luma[start + xs.start as usize..start + xs.end as usize].fill(y);
        }
    }

    /// Sets the chroma of the blocks `bxs x bys`.
    pub(crate) fn fill_chroma(&mut self, bxs: Span, bys: Span, cb: u8, cr: u8) {
        let cw = self.chroma_width() as usize;
        for row in bys.start..bys.end {
            let start = (row as usize * cw + bxs.start as usize) * 2;
            for pair in self.chroma[start..start + bxs.len() as usize * 2].chunks_exact_mut(2) {
                pair.copy_from_slice(&[cb, cr]);
            }
        }
    }

    /// Blends premultiplied `value` with `alpha` (0..1) over luma pixel (`x`, `y`).
    pub(crate) fn blend_luma(&mut self, x: u32, y: u32, value: f32, alpha: f32) {
        let i = y as usize * self.width as usize + x as usize;
        self.luma[i] = over(value, alpha, self.luma[i]);
    }

    /// Blends premultiplied `(cb, cr)` with `alpha` (0..1) over chroma block (`bx`, `by`).
    pub(crate) fn blend_chroma(&mut self, bx: u32, by: u32, value: [f32; 2], alpha: f32) {
        let i = (by as usize * self.chroma_width() as usize + bx as usize) * 2;
        self.chroma[i] = over(value[0], alpha, self.chroma[i]);
        self.chroma[i + 1] = over(value[1], alpha, self.chroma[i + 1]);
    }

    /// The chroma blocks that the pixels `xs x ys` cover only in part, with the fraction
    /// covered and the mean of the covered pixel centres (output coordinates): the tile
    /// edges that do not fall on even pixels.
    pub(crate) fn partial_blocks(xs: Span, ys: Span, mut each: impl FnMut(u32, u32, f32, [f64; 2])) {
        let (whole_x, whole_y) = (xs.whole_blocks(), ys.whole_blocks());
        let (touched_x, touched_y) = (xs.touched_blocks(), ys.touched_blocks());
        let mut visit = |bx: u32, by: u32| {
            let mut count = 0u32;
            let mut sum = [0.0f64; 2];
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (px, py) = (2 * bx + dx, 2 * by + dy);
                if xs.contains(px) && ys.contains(py) {
                    count += 1;
                    sum[0] += f64::from(px) + 0.5;
                    sum[1] += f64::from(py) + 0.5;
                }
            }
            if count > 0 {
                let n = f64::from(count);
                each(bx, by, count as f32 / 4.0, [sum[0] / n, sum[1] / n]);
            }
        };
        for by in touched_y.start..touched_y.end {
            if whole_y.contains(by) && !whole_x.is_empty() {
                for bx in (touched_x.start..whole_x.start).chain(whole_x.end..touched_x.end) {
                    visit(bx, by);
                }
            } else {
                for bx in touched_x.start..touched_x.end {
                    visit(bx, by);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_follow_pixel_centres() {
        assert_eq!(Span::covered(0.0, 10.0, 64), Span { start: 0, end: 10 });
        assert_eq!(Span::covered(0.4, 10.0, 64), Span { start: 0, end: 10 });
        assert_eq!(Span::covered(0.6, 10.0, 64), Span { start: 1, end: 11 });
        assert_eq!(Span::covered(-5.0, 10.0, 64), Span { start: 0, end: 5 });
        assert_eq!(Span::covered(60.0, 10.0, 64), Span { start: 60, end: 64 });
        assert!(Span::covered(3.1, 0.2, 64).is_empty());
        let s = Span { start: 3, end: 10 };
        assert_eq!(s.whole_blocks(), Span { start: 2, end: 5 });
        assert_eq!(s.touched_blocks(), Span { start: 1, end: 5 });
        assert!(Span { start: 3, end: 4 }.whole_blocks().is_empty());
    }

    #[test]
    fn partial_blocks_are_the_odd_edges() {
        let mut seen = Vec::new();
        Canvas::partial_blocks(Span { start: 1, end: 6 }, Span { start: 0, end: 4 }, |bx, by, alpha, mean| {
            seen.push((bx, by, alpha, mean));
        });
        // Blocks 0 (pixel 1 only) in both rows; 1 and 2 are whole.
        assert_eq!(seen.len(), 2);
        assert_eq!((seen[0].0, seen[0].1, seen[0].2), (0, 0, 0.5));
        assert_eq!(seen[0].3, [1.5, 1.0]);
    }

    #[test]
    fn the_clear_leaves_what_opaque_tiles_replace() {
        let (mut luma, mut chroma) = (vec![7u8; 8 * 4], vec![7u8; 8 * 2]);
        let mut canvas = Canvas { width: 8, luma: &mut luma, chroma: &mut chroma };
        let mut cover = Cover::default();
        // Two overlapping tiles in rows 0..2, one reaching past the right edge in row 3.
        cover.add(Span { start: 1, end: 4 }, Span { start: 0, end: 2 });
        cover.add(Span { start: 3, end: 6 }, Span { start: 1, end: 2 });
        cover.add(Span { start: 6, end: 9 }, Span { start: 3, end: 4 });
        canvas.clear_outside([1, 2, 3], &cover);
        let rows: Vec<&[u8]> = luma.chunks(8).collect();
        assert_eq!(rows[0], [1, 7, 7, 7, 1, 1, 1, 1]);
        assert_eq!(rows[1], [1, 7, 7, 7, 7, 7, 1, 1]);
        assert_eq!(rows[2], [1; 8]);
        assert_eq!(rows[3], [1, 1, 1, 1, 1, 1, 7, 7]);
        // Chroma: only block (1, 0) lies wholly inside a tile (pixels 2..4 of rows 0..2).
        assert_eq!(chroma[..8], [2, 3, 7, 7, 2, 3, 2, 3]);
        assert_eq!(chroma[8..], [2, 3, 2, 3, 2, 3, 2, 3]);
    }

    #[test]
    fn axes_map_rects_onto_crops() {
        let axis = Axis::new(100.0, 200.0, 0.25, 0.75, 400);
        assert!((axis.at(100.0) - 100.0).abs() < 1e-9);
        assert!((axis.at(300.0) - 300.0).abs() < 1e-9);
        assert!((axis.chroma(400, 200).at(50.0) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn bilinear_samples_between_texel_centres() {
        let plane = [0u8, 100, 200, 100];
        let v: [f32; 1] = Tap::new(2, 2, 1.0, 0.5).sample(&plane);
        assert!((v[0] - 50.0).abs() < 1e-3);
        let v: [f32; 1] = Tap::new(2, 2, -3.0, 9.0).sample(&plane);
        assert!((v[0] - 200.0).abs() < 1e-3);
    }
}
