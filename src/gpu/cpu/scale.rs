//! Bilinear resampling of 8-bit planes (one or more interleaved channels) into a region of
//! another plane: the CPU path's version of the GPU's bilinear texture sample, with the same
//! taps (texel centres at `k + 0.5`, clamped at the edges) in 8-bit fixed point.
//!
//! Written here rather than taken from `fast_image_resize`: that crate's one-channel
//! horizontal kernel sums each output pixel's taps with full-width SIMD reductions, about
//! 4 ns per pixel for a two-tap enlargement (10 ms per 1080p frame of four tiles, measured
//! with `compose_fps`). Here each source row a tile needs is resampled across once (its two
//! texels per output byte gathered, then blended and rounded to 8 bits) and every output row
//! is a blend of two such rows; both blends run in 16-bit lanes, loops the compiler
//! vectorises. Where a tile's columns are the source's own (same size, whole-pixel offset)
//! rows are copied, and so are output rows that fall on a source row.

use std::collections::HashMap;

use super::canvas::{Axis, Span};
use super::shuffle::{RowShuffles, blend_rows, blend_rows_uniform};

/// Weights are in 1/256.
const ONE: u32 = 256;

/// Column taps one frame may keep at most (a styled tile draws a few dozen regions: its
/// slabs and the rows of its corners).
const MAX_FRAME_COLUMNS: usize = 4096;

/// What identifies a region's column taps: its columns, the axis (bits of its f64s), the
/// source width and the channels.
type ColumnsKey = (u32, u32, u64, u64, u32, usize);

/// Buffers reused between calls: the column taps of the regions drawn in this frame and the
/// last (tiles stay put, so a frame's are mostly the last frame's), two resampled source rows
/// and the texels gathered for one.
#[derive(Default)]
pub(crate) struct Scaler {
    columns: HashMap<ColumnsKey, Columns>,
    last_frame: HashMap<ColumnsKey, Columns>,
    rows: [(Option<u32>, Vec<u8>); 2],
    gathered: (Vec<u8>, Vec<u8>),
}

/// The horizontal taps of a region's output columns.
struct Columns {
    /// Per output byte of a row: the byte offsets of its two source texels in a source row,
    /// and their weights (in 1/256, summing to 256).
    taps: Vec<(u32, u32)>,
    weights: (Vec<u16>, Vec<u16>),
    /// The columns are the source's own, from this texel on (no filtering across).
    copied_from: Option<u32>,
    /// The taps as vector byte shuffles, where the CPU and the scale allow.
    shuffles: Option<RowShuffles>,
}

impl Columns {
    /// The taps of the output columns `xs` on a source `source_px` wide, `C` channels.
    fn new<const C: usize>(xs: Span, x: Axis, source_px: u32) -> Columns {
        let columns: Vec<(u32, u32, u32)> = (xs.start..xs.end).map(|p| tap(x, p, source_px)).collect();
        let first = columns.first().map_or(0, |c| c.0);
        let copies = columns.iter().zip(first..).all(|(&(i0, _, f), at)| i0 == at && f == 0);
        let mut taps = Vec::with_capacity(columns.len() * C);
        let mut weights = (Vec::with_capacity(taps.capacity()), Vec::with_capacity(taps.capacity()));
        for &(i0, i1, f) in &columns {
            for c in 0..C as u32 {
                taps.push((i0 * C as u32 + c, i1 * C as u32 + c));
                weights.0.push((ONE - f) as u16);
                weights.1.push(f as u16);
            }
        }
        let shuffles = RowShuffles::plan(&taps, source_px as usize * C);
        // The vector loop reads and writes a little past the row.
        weights.0.resize(taps.len() + RowShuffles::PADDING, 0);
        weights.1.resize(taps.len() + RowShuffles::PADDING, 0);
        Columns { taps, weights, copied_from: copies.then_some(first), shuffles }
    }
}

/// A tightly packed source plane of `C` interleaved channels.
pub(crate) struct Plane<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// The two source texels and the weight (of the second, in 1/256) that output pixel `p`
/// samples along an axis.
fn tap(axis: Axis, p: u32, limit: u32) -> (u32, u32, u32) {
    let last = limit.saturating_sub(1);
    let s = (axis.at(f64::from(p) + 0.5) - 0.5).clamp(0.0, f64::from(last));
    let mut i0 = s.floor() as u32;
    let mut f = ((s - f64::from(i0)) * f64::from(ONE)).round() as u32;
    if f >= ONE {
        i0 += 1;
        f = 0;
    }
    let i0 = i0.min(last);
    (i0, (i0 + 1).min(last), f)
}

impl Scaler {
    /// Resamples `src` into the pixels `xs x ys` of `dst` (a plane `dst_width` pixels wide,
    /// `C` channels), output pixel centres mapped to source coordinates by the axes.
    pub(crate) fn scale<const C: usize>(
        &mut self,
        src: &Plane<'_>,
        dst: &mut [u8],
        dst_width: u32,
        (xs, ys): (Span, Span),
        (x, y): (Axis, Axis),
    ) {
        if xs.is_empty() || ys.is_empty() || src.width == 0 || src.height == 0 {
            return;
        }
        let key = (xs.start, xs.end, x.origin.to_bits(), x.scale.to_bits(), src.width, C);
        let columns = self
            .columns
            .remove(&key)
            .or_else(|| self.last_frame.remove(&key))
            .unwrap_or_else(|| Columns::new::<C>(xs, x, src.width));
        self.draw_rows::<C>(src, &columns, dst, dst_width, (xs, ys), y);
        if self.columns.len() >= MAX_FRAME_COLUMNS {
            self.columns.clear();
        }
        self.columns.insert(key, columns);
    }

    /// Ends a frame: the column taps it used are kept for the next, the others dropped.
    pub(crate) fn end_frame(&mut self) {
        self.last_frame = std::mem::take(&mut self.columns);
    }

    /// The rows `ys` of the region (its columns `xs` tapped by `columns`).
    fn draw_rows<const C: usize>(
        &mut self,
        src: &Plane<'_>,
        columns: &Columns,
        dst: &mut [u8],
        dst_width: u32,
        (xs, ys): (Span, Span),
        y: Axis,
    ) {
        let row_len = xs.len() as usize * C;
        self.gathered.0.resize(row_len, 0);
        self.gathered.1.resize(row_len, 0);
        for slot in &mut self.rows {
            slot.0 = None;
            slot.1.resize(row_len + RowShuffles::PADDING, 0);
        }
        for py in ys.start..ys.end {
            let (r0, r1, fy) = tap(y, py, src.height);
            let a = self.resampled::<C>(src, columns, r0, None);
            let b = if r1 == r0 { a } else { self.resampled::<C>(src, columns, r1, Some(a)) };
            let start = (py as usize * dst_width as usize + xs.start as usize) * C;
            let Some(out) = dst.get_mut(start..start + row_len) else {
                return;
            };
            let (h0, h1) = (&self.rows[a].1[..row_len], &self.rows[b].1[..row_len]);
            if fy == 0 {
                out.copy_from_slice(h0);
                continue;
            }
            blend_rows_uniform(out, (h0, h1), (ONE - fy) as u16);
        }
    }

    /// The slot holding source row `row` resampled across the output columns (computed into
    /// a slot other than `keep` when neither holds it).
    fn resampled<const C: usize>(
        &mut self,
        src: &Plane<'_>,
        columns: &Columns,
        row: u32,
        keep: Option<usize>,
    ) -> usize {
        if let Some(slot) = self.rows.iter().position(|(held, _)| *held == Some(row)) {
            return slot;
        }
        let slot = match keep {
            Some(0) => 1,
            Some(_) => 0,
            None => usize::from(self.rows[0].0.is_some() && self.rows[1].0.is_none()),
        };
        self.rows[slot].0 = Some(row);
        let width = src.width as usize * C;
        let start = row as usize * width;
        let out = &mut self.rows[slot].1;
        let Some(line) = src.data.get(start..start + width) else {
            out.fill(0);
            return slot;
        };
        let row_len = columns.taps.len();
        let copied = columns.copied_from.and_then(|from| line.get(from as usize * C..from as usize * C + row_len));
        if let Some(same) = copied {
            out[..same.len()].copy_from_slice(same);
            return slot;
        }
        let weights = (columns.weights.0.as_slice(), columns.weights.1.as_slice());
        if columns.shuffles.as_ref().is_some_and(|plan| plan.resample(line, weights, out)) {
            return slot;
        }
        // The taps lie inside the row (`tap` clamps them), so the indexing never fails.
        let (a, b) = (&mut self.gathered.0, &mut self.gathered.1);
        for ((a, b), &(i0, i1)) in a.iter_mut().zip(b.iter_mut()).zip(&columns.taps) {
            *a = line[i0 as usize];
            *b = line[i1 as usize];
        }
        blend_rows(out, (a, b), weights);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(lo: f32, size: f32, source: u32) -> Axis {
        Axis::new(lo, size, 0.0, 1.0, source)
    }

    #[test]
    fn same_size_is_a_copy_and_enlargements_interpolate() {
        let data: Vec<u8> = (0..16).map(|i| (i * 10) as u8).collect();
        let src = Plane { data: &data, width: 4, height: 4 };
        let mut dst = vec![0u8; 16];
        let spans = (Span { start: 0, end: 4 }, Span { start: 0, end: 4 });
        Scaler::default().scale::<1>(&src, &mut dst, 4, spans, (axis(0.0, 4.0, 4), axis(0.0, 4.0, 4)));
        assert_eq!(dst, data);
        // 2 -> 4 across: centres at 0.25, 0.75, ... of a texel step; edges clamp.
        let src = Plane { data: &[0, 200], width: 2, height: 1 };
        let mut dst = vec![0u8; 4];
        let spans = (Span { start: 0, end: 4 }, Span { start: 0, end: 1 });
        Scaler::default().scale::<1>(&src, &mut dst, 4, spans, (axis(0.0, 4.0, 2), axis(0.0, 1.0, 1)));
        assert_eq!(dst, vec![0, 50, 150, 200]);
    }

    #[test]
    fn interleaved_channels_stay_apart_and_regions_stay_inside() {
        let src = Plane { data: &[10, 200, 30, 220], width: 2, height: 1 };
        let mut dst = vec![7u8; 2 * 4 * 2];
        let spans = (Span { start: 1, end: 3 }, Span { start: 1, end: 2 });
        Scaler::default().scale::<2>(&src, &mut dst, 4, spans, (axis(1.0, 2.0, 2), axis(1.0, 1.0, 1)));
        assert_eq!(&dst[..10], &[7, 7, 7, 7, 7, 7, 7, 7, 7, 7]);
        assert_eq!(&dst[10..14], &[10, 200, 30, 220]);
        assert_eq!(&dst[14..], &[7, 7]);
    }
}
