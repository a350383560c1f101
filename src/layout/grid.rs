//! Grid geometry: how many columns and rows suit n tiles, and where each cell goes.

use super::RectF;

/// The aspect ratio the grid is shaped for: most camera video is 16:9.
const TILE_ASPECT: f32 = 16.0 / 9.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridShape {
    pub columns: usize,
    pub rows: usize,
}

/// Chooses the columns x rows that give a 16:9 tile the largest area inside a
/// `width` x `height` area (gaps included); ties go to fewer empty cells.
pub fn grid_shape(count: usize, width: f32, height: f32, gap_px: f32) -> GridShape {
    if count == 0 {
        return GridShape { columns: 0, rows: 0 };
    }
    let mut best = GridShape { columns: 1, rows: count };
    let mut best_area = -1.0_f32;
    let mut best_empty = usize::MAX;
    for columns in 1..=count {
        let rows = count.div_ceil(columns);
        let cell_w = (width - gap_px * (columns as f32 + 1.0)) / columns as f32;
        let cell_h = (height - gap_px * (rows as f32 + 1.0)) / rows as f32;
        if cell_w <= 0.0 || cell_h <= 0.0 {
            continue;
        }
        let tile_w = cell_w.min(cell_h * TILE_ASPECT);
        let area = tile_w * tile_w / TILE_ASPECT;
        let empty = columns * rows - count;
        let better =
            area > best_area * 1.0001 || ((area - best_area).abs() <= best_area * 0.0001 && empty < best_empty);
        if better {
            best = GridShape { columns, rows };
            best_area = area;
            best_empty = empty;
        }
    }
    best
}

/// The cells of `count` participants in `area`, row by row; an incomplete last row is centred.
pub fn cells(area: RectF, count: usize, gap_px: f32) -> Vec<RectF> {
    let shape = grid_shape(count, area.width, area.height, gap_px);
    if shape.columns == 0 {
        return Vec::new();
    }
    let cell_w = ((area.width - gap_px * (shape.columns as f32 + 1.0)) / shape.columns as f32).max(1.0);
    let cell_h = ((area.height - gap_px * (shape.rows as f32 + 1.0)) / shape.rows as f32).max(1.0);
    let mut out = Vec::with_capacity(count);
    for index in 0..count {
        let row = index / shape.columns;
        let column = index % shape.columns;
        let in_this_row = (count - row * shape.columns).min(shape.columns);
        let row_width = in_this_row as f32 * cell_w + (in_this_row as f32 - 1.0) * gap_px;
        let full_width = shape.columns as f32 * cell_w + (shape.columns as f32 - 1.0) * gap_px;
        let x0 = area.x + gap_px + (full_width - row_width) / 2.0;
        out.push(RectF {
            x: x0 + column as f32 * (cell_w + gap_px),
            y: area.y + gap_px + row as f32 * (cell_h + gap_px),
            width: cell_w,
            height: cell_h,
        });
    }
    out
}
