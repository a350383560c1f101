//! Geometry of one region: its cells for n tiles (grid, row, column or single) and the tiles
//! themselves (content fitted, style resolved).

use super::{Arrange, Fit, RectF, Region, Scene, Tile, TileContent, TileKey, grid};

/// The aspect ratio of strip cells: most camera video is 16:9.
const CELL_ASPECT: f32 = 16.0 / 9.0;

/// The tiles of `members` (indices into `scene.on_stage`, in slot order) in `region`.
pub(crate) fn region_tiles(
    region: &Region,
    members: &[usize],
    scene: &Scene<'_>,
    canvas_width: u32,
    canvas_height: u32,
) -> Vec<Tile> {
    let area = region.area_px(canvas_width, canvas_height);
    let gap_px = region.gap * canvas_height as f32;
    let cells = cells(region.arrange, area, members.len(), gap_px);
    let style = region.tile.resolve(canvas_height);
    members
        .iter()
        .zip(cells)
        .filter_map(|(&index, cell)| {
            let on_stage = scene.on_stage.get(index)?;
            let picture = on_stage.picture.filter(|_| region.tile.video);
            let content = match picture {
                Some((width, height)) => fit_frame(cell, width, height, region.fit),
                None => TileContent::Placeholder(region.tile.placeholder),
            };
            Some(Tile {
                key: TileKey { participant_id: on_stage.participant_id.to_owned(), screenshare: on_stage.screenshare },
                participant_index: index,
                cell,
                content,
                style,
                z: region.z,
                speaking: on_stage.speaking,
                picture,
                fit: region.fit,
            })
        })
        .collect()
}

/// The cells of `count` tiles arranged as `arrange` in `area`, with `gap_px` between cells
/// and around them.
pub(crate) fn cells(arrange: Arrange, area: RectF, count: usize, gap_px: f32) -> Vec<RectF> {
    if count == 0 {
        return Vec::new();
    }
    match arrange {
        Arrange::Grid => grid::cells(area, count, gap_px),
        Arrange::Single => vec![inset(area, gap_px)],
        Arrange::Row => strip(area, count, gap_px, true),
        Arrange::Column => strip(area, count, gap_px, false),
    }
}

/// `area` less `gap_px` on every side (never below 1 px).
fn inset(area: RectF, gap_px: f32) -> RectF {
    let width = (area.width - 2.0 * gap_px).max(1.0);
    let height = (area.height - 2.0 * gap_px).max(1.0);
    RectF { x: area.x + (area.width - width) / 2.0, y: area.y + (area.height - height) / 2.0, width, height }
}

/// Equal 16:9 cells side by side (`horizontal`) or stacked, as large as fit, centred in `area`.
fn strip(area: RectF, count: usize, gap_px: f32, horizontal: bool) -> Vec<RectF> {
    let n = count as f32;
    let (along, across) = if horizontal { (area.width, area.height) } else { (area.height, area.width) };
    let along_each = ((along - gap_px * (n + 1.0)) / n).max(1.0);
    let across_avail = (across - 2.0 * gap_px).max(1.0);
    // The cell's size along and across the strip, keeping 16:9.
    let (cell_along, cell_across) = if horizontal {
        let width = along_each.min(across_avail * CELL_ASPECT);
        (width, width / CELL_ASPECT)
    } else {
        let height = along_each.min(across_avail / CELL_ASPECT);
        (height, height * CELL_ASPECT)
    };
    let total = n * cell_along + (n - 1.0) * gap_px;
    let start = (along - total) / 2.0;
    let side = (across - cell_across) / 2.0;
    (0..count)
        .map(|i| {
            let offset = start + i as f32 * (cell_along + gap_px);
            if horizontal {
                RectF { x: area.x + offset, y: area.y + side, width: cell_along, height: cell_across }
            } else {
                RectF { x: area.x + side, y: area.y + offset, width: cell_across, height: cell_along }
            }
        })
        .collect()
}

/// Fits a `frame_width` x `frame_height` frame into `cell`, keeping its aspect ratio.
pub fn fit_frame(cell: RectF, frame_width: u32, frame_height: u32, fit: Fit) -> TileContent {
    let full = [0.0, 0.0, 1.0, 1.0];
    if frame_width == 0 || frame_height == 0 || cell.width <= 0.0 || cell.height <= 0.0 {
        return TileContent::Video { rect: cell, uv_rect: full };
    }
    let frame_aspect = frame_width as f32 / frame_height as f32;
    let cell_aspect = cell.width / cell.height;
    match fit {
        Fit::Contain => {
            let (w, h) = if frame_aspect > cell_aspect {
                (cell.width, cell.width / frame_aspect)
            } else {
                (cell.height * frame_aspect, cell.height)
            };
            let rect =
                RectF { x: cell.x + (cell.width - w) / 2.0, y: cell.y + (cell.height - h) / 2.0, width: w, height: h };
            TileContent::Video { rect, uv_rect: full }
        }
        Fit::Cover => {
            let uv_rect = if frame_aspect > cell_aspect {
                let visible = cell_aspect / frame_aspect;
                [(1.0 - visible) / 2.0, 0.0, (1.0 + visible) / 2.0, 1.0]
            } else {
                let visible = frame_aspect / cell_aspect;
                [0.0, (1.0 - visible) / 2.0, 1.0, (1.0 + visible) / 2.0]
            };
            TileContent::Video { rect: cell, uv_rect }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AREA: RectF = RectF { x: 0.0, y: 800.0, width: 1920.0, height: 280.0 };

    #[test]
    fn a_row_of_few_cells_is_as_tall_as_the_strip_and_centred() {
        let cells = cells(Arrange::Row, AREA, 3, 8.0);
        assert_eq!(cells.len(), 3);
        for c in &cells {
            assert!((c.height - 264.0).abs() < 1e-3, "{c:?}");
            assert!((c.width / c.height - CELL_ASPECT).abs() < 1e-3);
        }
        let (left, right) = (cells[0].x - AREA.x, AREA.x + AREA.width - (cells[2].x + cells[2].width));
        assert!((left - right).abs() < 1e-2, "centred: {left} vs {right}");
        assert!((cells[1].x - (cells[0].x + cells[0].width + 8.0)).abs() < 1e-3, "one gap between cells");
    }

    #[test]
    fn a_row_of_many_cells_shrinks_to_fit_the_width() {
        let cells = cells(Arrange::Row, AREA, 12, 8.0);
        let last = cells[11];
        assert!((cells[0].x - 8.0).abs() < 1e-2 && (last.x + last.width - 1912.0).abs() < 1e-2, "{cells:?}");
        assert!(cells.iter().all(|c| c.height < 264.0 && (c.width / c.height - CELL_ASPECT).abs() < 1e-3));
        let centre_y = AREA.y + AREA.height / 2.0;
        assert!(cells.iter().all(|c| (c.center().1 - centre_y).abs() < 1e-3), "vertically centred");
    }

    #[test]
    fn a_column_stacks_cells_centred() {
        let area = RectF { x: 1500.0, y: 0.0, width: 420.0, height: 1080.0 };
        let cells = cells(Arrange::Column, area, 3, 10.0);
        for (i, c) in cells.iter().enumerate() {
            assert!((c.width - 400.0).abs() < 1e-3 && (c.center().0 - 1710.0).abs() < 1e-3, "{c:?}");
            if i > 0 {
                assert!((c.y - (cells[i - 1].y + cells[i - 1].height + 10.0)).abs() < 1e-3);
            }
        }
        let top = cells[0].y;
        let bottom = 1080.0 - (cells[2].y + cells[2].height);
        assert!((top - bottom).abs() < 1e-2);
    }

    #[test]
    fn single_is_the_area_less_the_gap() {
        let cells = cells(Arrange::Single, AREA, 5, 8.0);
        assert_eq!(cells, vec![RectF { x: 8.0, y: 808.0, width: 1904.0, height: 264.0 }]);
        assert!(super::cells(Arrange::Row, AREA, 0, 8.0).is_empty());
    }
}
