use super::*;

fn grid() -> Layout {
    Layout::builtin("grid").expect("built-in grid parses")
}

fn overlaps(a: &RectF, b: &RectF) -> bool {
    a.x < b.x + b.width - 0.01
        && b.x < a.x + a.width - 0.01
        && a.y < b.y + b.height - 0.01
        && b.y < a.y + a.height - 0.01
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
fn more_than_max_participants_shows_the_first_25() {
    let tiles = grid().place(&vec![None; 30], 1920, 1080);
    assert_eq!(tiles.len(), 25);
    assert_eq!(tiles.last().map(|t| t.participant_index), Some(24));
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
