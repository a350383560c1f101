use super::*;

pub(super) fn grid() -> Layout {
    Layout::builtin("grid").expect("built-in grid parses")
}

pub(super) fn overlaps(a: &RectF, b: &RectF) -> bool {
    a.overlaps(b, 0.01)
}

/// Participant ids `p00`, `p01`, ...
pub(super) fn ids(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("p{i:02}")).collect()
}

/// A camera with a 640x360 picture for each id, joined in order.
pub(super) fn cameras(ids: &[String]) -> Vec<OnStage<'_>> {
    ids.iter().enumerate().map(|(i, id)| OnStage::camera(id, i, Some((640, 360)))).collect()
}

/// The participant id of each tile, in draw order.
pub(super) fn who<'a>(tiles: &[Tile], scene: &Scene<'a>) -> Vec<(&'a str, bool)> {
    tiles.iter().map(|t| (scene.on_stage[t.participant_index].participant_id, t.key.screenshare)).collect()
}

#[test]
fn shapes_for_common_counts_on_16_9() {
    let expect = [
        (1, (1, 1)),
        (2, (2, 1)),
        (3, (2, 2)),
        (4, (2, 2)),
        (5, (3, 2)),
        (6, (3, 2)),
        (9, (3, 3)),
        (10, (4, 3)),
        (16, (4, 4)),
        (25, (5, 5)),
    ];
    for (n, (c, r)) in expect {
        let shape = grid_shape(n, 1920.0, 1080.0, 8.0);
        assert_eq!((shape.columns, shape.rows), (c, r), "n={n}");
    }
}

#[test]
fn every_count_from_1_to_25_fits_inside_the_canvas_without_overlap() {
    let layout = grid();
    for n in 1..=25 {
        let tiles = layout.place(&vec![Some((1280, 720)); n], 1920, 1080);
        assert_eq!(tiles.len(), n);
        for (i, t) in tiles.iter().enumerate() {
            assert!(t.cell.x >= 0.0 && t.cell.y >= 0.0, "n={n} tile {i}");
            assert!(t.cell.x + t.cell.width <= 1920.01 && t.cell.y + t.cell.height <= 1080.01, "n={n} tile {i}");
            for other in &tiles[i + 1..] {
                assert!(!overlaps(&t.cell, &other.cell), "n={n}: {t:?} overlaps {other:?}");
            }
        }
    }
}

#[test]
fn more_than_max_participants_shows_the_first_49() {
    let tiles = grid().place(&vec![None; 60], 1920, 1080);
    assert_eq!(tiles.len(), 49);
    assert_eq!(tiles.last().map(|t| t.participant_index), Some(48));
}

#[test]
fn the_grid_places_every_count_where_todays_grid_did() {
    // Today's grid: one region over the canvas, gap 0.008 of the height, cells by `grid::cells`.
    for (width, height) in [(1920, 1080), (1280, 720), (640, 360), (1080, 1920)] {
        let area = RectF { x: 0.0, y: 0.0, width: width as f32, height: height as f32 };
        for n in 1..=49 {
            let tiles = grid().place(&vec![Some((640, 360)); n], width, height);
            let cells: Vec<RectF> = tiles.iter().map(|t| t.cell).collect();
            assert_eq!(cells, grid::cells(area, n, 0.008 * height as f32), "{width}x{height} n={n}");
            let order: Vec<usize> = tiles.iter().map(|t| t.participant_index).collect();
            assert_eq!(order, (0..n).collect::<Vec<_>>(), "join order");
        }
    }
}

#[test]
fn the_layout_format_before_tile_tables_still_parses_plain() {
    // What src/render/transcode.rs carries for individual files.
    let text = "name = \"single\"\nbackground = \"#000000\"\n[[regions]]\nname = \"participant\"\nx = 0.0\ny = 0.0\n\
                width = 1.0\nheight = 1.0\nselect = \"all\"\narrange = \"grid\"\nfit = \"contain\"\ngap = 0.0\n\
                max_participants = 1\nplaceholder = \"#000000\"\n";
    let layout = Layout::parse("single", text).expect("parses");
    let region = &layout.regions[0];
    assert_eq!(region.tile.placeholder, Rgb([0, 0, 0]));
    let plain = TileSpec { placeholder: Rgb([0, 0, 0]), ..TileSpec::default() };
    assert_eq!(region.tile, plain, "no rounding, border, label or avatar unless asked for");
    assert_eq!(layout.transition_ms, 300);
    let tiles = layout.place(&[None, Some((640, 360))], 1280, 720);
    assert_eq!(tiles.len(), 1);
    assert_eq!(tiles[0].content, TileContent::Placeholder(Rgb([0, 0, 0])));
    assert_eq!(tiles[0].cell, RectF { x: 0.0, y: 0.0, width: 1280.0, height: 720.0 });
}

#[test]
fn tiles_carry_their_key_style_and_speaking_state() {
    let names = ids(2);
    let mut on_stage = cameras(&names);
    on_stage[1].speaking = true;
    on_stage[1].picture = None;
    let scene = Scene { on_stage, active_speaker: None };
    let tiles = grid().arrange(&scene, 1920, 1080);
    assert_eq!(tiles[0].key, TileKey { participant_id: "p00".into(), screenshare: false });
    assert!(!tiles[0].speaking && tiles[1].speaking);
    assert_eq!(tiles[0].picture, Some((640, 360)));
    assert_eq!(tiles[1].picture, None);
    assert_eq!(tiles[1].content, TileContent::Placeholder(Rgb([0x2a, 0x2f, 0x36])));
    let style = tiles[0].style;
    assert!((style.corner_radius_px - 0.012 * 1080.0).abs() < 1e-3);
    assert_eq!(style.highlight, Some(Rgb([0x3d, 0x9c, 0xf5])));
    assert!(style.label && style.avatar);
    assert!((style.label_px - 0.026 * 1080.0).abs() < 1e-3);
}

#[test]
fn refit_follows_the_new_cell() {
    let mut tile = grid().place(&[Some((1280, 720))], 1920, 1080).remove(0);
    let cell = RectF { x: 100.0, y: 100.0, width: 400.0, height: 400.0 };
    tile.refit(cell);
    assert_eq!(tile.cell, cell);
    assert_eq!(tile.content, fit_frame(cell, 1280, 720, Fit::Contain));
    let mut placeholder = grid().place(&[None], 1920, 1080).remove(0);
    placeholder.refit(cell);
    assert_eq!(placeholder.cell, cell);
    assert!(matches!(placeholder.content, TileContent::Placeholder(_)));
}

#[test]
fn contain_letterboxes_a_portrait_frame() {
    let cell = RectF { x: 0.0, y: 0.0, width: 160.0, height: 90.0 };
    let TileContent::Video { rect, uv_rect } = fit_frame(cell, 720, 1280, Fit::Contain) else {
        panic!("expected video");
    };
    assert!((rect.height - 90.0).abs() < 1e-3);
    assert!((rect.width - 90.0 * 720.0 / 1280.0).abs() < 1e-3);
    assert!((rect.center().0 - 80.0).abs() < 1e-3);
    assert_eq!(uv_rect, [0.0, 0.0, 1.0, 1.0]);
}

#[test]
fn cover_crops_a_wide_frame() {
    let cell = RectF { x: 10.0, y: 10.0, width: 100.0, height: 100.0 };
    let TileContent::Video { rect, uv_rect } = fit_frame(cell, 200, 100, Fit::Cover) else {
        panic!("expected video");
    };
    assert_eq!(rect, cell);
    assert!((uv_rect[0] - 0.25).abs() < 1e-6 && (uv_rect[2] - 0.75).abs() < 1e-6);
}

#[test]
fn incomplete_last_row_is_centred() {
    let tiles = grid().place(&[Some((1280, 720)); 3], 1920, 1080);
    let last = &tiles[2].cell;
    assert!((last.center().0 - 960.0).abs() < 0.5, "{last:?}");
}

#[test]
fn participants_without_video_get_a_placeholder() {
    let tiles = grid().place(&[None, Some((640, 360))], 1280, 720);
    assert!(matches!(tiles[0].content, TileContent::Placeholder(_)));
    assert!(matches!(tiles[1].content, TileContent::Video { .. }));
}

#[test]
fn bad_layout_files_name_the_field() {
    let err = Layout::parse("x", "name='x'\nbackground='#zz0000'\n[[regions]]\nname='a'\nx=0.0\ny=0.0\nwidth=1.0\nheight=1.0\nselect='all'\narrange='grid'\nfit='contain'\n").unwrap_err();
    assert!(err.to_string().contains("background"), "{err}");
    let err = Layout::parse("x", "name='x'\nbackground='#000000'\n[[regions]]\nname='a'\nx=0.5\ny=0.0\nwidth=1.0\nheight=1.0\nselect='all'\narrange='grid'\nfit='contain'\n").unwrap_err();
    assert!(err.to_string().contains("regions[0]"), "{err}");
    let err = Layout::parse("x", "name='x'\nbackground='#000000'\nsurprise=1\nregions=[]\n").unwrap_err();
    assert!(err.to_string().contains("surprise"), "{err}");
    assert!(matches!(Layout::builtin("nope"), Err(LayoutError::Unknown { .. })));
}

#[test]
fn rgb_parses_hex() {
    assert_eq!(Rgb::parse("#ff8000"), Some(Rgb([255, 128, 0])));
    assert_eq!(Rgb::parse("ff8000"), None);
    assert_eq!(Rgb::parse("#ff80"), None);
    assert_eq!(Rgb::parse("#ééé"), None);
}
