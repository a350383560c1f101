//! Tests of the text rasteriser. They need the fonts that scripts/install-deps.sh installs
//! (DejaVu, Droid Sans Fallback for CJK) and no GPU.

use super::*;

fn rasterizer() -> TextRasterizer {
    match TextRasterizer::new() {
        Ok(text) => text,
        Err(err) => panic!("fonts unavailable (run scripts/install-deps.sh): {err}"),
    }
}

/// Pixels of a label that are text (light) rather than the dark pill.
fn text_pixels(image: &RgbaImage) -> usize {
    image.pixels.chunks_exact(4).filter(|p| p[3] > 150 && p[0] > 128 && p[1] > 128 && p[2] > 128).count()
}

#[test]
fn rasterizer_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<TextRasterizer>();
    assert_send::<crate::gpu::OverlayCache>();
}

#[test]
fn labels_in_many_scripts_leave_pixels() {
    let mut text = rasterizer();
    assert_eq!(text.family(), "DejaVu Sans");
    let cases = [
        ("latin", "Ada Lovelace"),
        ("cyrillic", "Жанна Иванова"),
        ("greek", "Αλέξης Παππάς"),
        ("arabic", "سلام عليكم"),
        ("hebrew", "שלום עולם"),
        ("cjk", "李雷"),
    ];
    for (script, sample) in cases {
        let glyphs = text.clusters(sample, 24.0);
        assert!(!glyphs.is_empty(), "{script}: no glyphs");
        // Glyph 0 is the missing-glyph box: every character needs a font that has it.
        assert!(
            glyphs.iter().all(|&(_, _, id)| id != 0),
            "{script}: missing glyphs in {glyphs:?} (for CJK install fonts-droid-fallback)"
        );
        let image = text.label(sample, 24.0, 1000.0);
        assert_eq!(image.pixels.len(), image.width as usize * image.height as usize * 4);
        assert!(image.height >= 30 && image.width > image.height, "{script}: {}x{}", image.width, image.height);
        assert!(text_pixels(&image) > 40, "{script}: only {} text pixels", text_pixels(&image));
        // The pill: opaque-ish dark at the left middle, transparent in the corner.
        let [r, g, b, a] = image.pixel(3, image.height / 2);
        assert!(r < 40 && g < 40 && b < 40 && (140..=165).contains(&a), "{script}: pill {:?}", [r, g, b, a]);
        assert_eq!(image.pixel(0, 0)[3], 0, "{script}: rounded corner");
    }
}

#[test]
fn right_to_left_words_start_on_the_right() {
    let mut text = rasterizer();
    for word in ["שלום", "سلام"] {
        let glyphs = text.clusters(word, 24.0);
        let first = glyphs.iter().find(|g| g.0 == 0).map(|g| g.1);
        let right_most = glyphs.iter().map(|g| g.1).fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(first, Some(right_most), "{word}: {glyphs:?}");
        let last = glyphs.iter().map(|g| g.0).max();
        let left_most = glyphs.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map(|g| g.0);
        assert_eq!(left_most, last, "{word}: {glyphs:?}");
    }
    // Latin stays left to right.
    let glyphs = text.clusters("Ab", 24.0);
    assert!(glyphs[0].0 == 0 && glyphs[0].1 < glyphs[1].1, "{glyphs:?}");
}

#[test]
fn long_labels_are_ellipsised_to_the_width() {
    let mut text = rasterizer();
    let name = "Bartholomew Featherstonehaugh-Cholmondeley of the Rather Long Name";
    let full = text.label(name, 20.0, f32::INFINITY);
    assert!(full.width > 400, "{}", full.width);
    let short = text.label(name, 20.0, 200.0);
    assert!(short.width <= 200 && short.width > 120, "{}", short.width);
    assert_eq!(short.height, full.height);
    // Multi-line input stays on one line.
    assert_eq!(text.label("Ada\nLovelace", 20.0, 1000.0).height, full.height);
}

#[test]
fn labels_are_deterministic() {
    let (mut a, mut b) = (rasterizer(), rasterizer());
    for sample in ["Ada Lovelace", "שלום", "李雷"] {
        assert_eq!(a.label(sample, 18.0, 300.0), b.label(sample, 18.0, 300.0), "{sample}");
    }
    assert_eq!(a.avatar("AL", [40, 90, 160], 64), b.avatar("AL", [40, 90, 160], 64));
}

#[test]
fn avatar_is_a_circle_with_centred_initials() {
    let mut text = rasterizer();
    let rgb = [40, 90, 160];
    let image = text.avatar("AL", rgb, 100);
    assert_eq!((image.width, image.height), (100, 100));
    for (x, y) in [(0, 0), (99, 0), (0, 99), (99, 99), (8, 8)] {
        assert_eq!(image.pixel(x, y)[3], 0, "corner ({x},{y})");
    }
    for (x, y) in [(50, 3), (3, 50), (50, 96), (96, 50), (50, 90)] {
        assert_eq!(image.pixel(x, y), [rgb[0], rgb[1], rgb[2], 255], "circle ({x},{y})");
    }
    // The initials: white pixels whose centre of mass is near the middle.
    let (mut n, mut sx, mut sy) = (0u32, 0u32, 0u32);
    for y in 0..100 {
        for x in 0..100 {
            let [r, g, b, _] = image.pixel(x, y);
            if r > 200 && g > 200 && b > 200 {
                (n, sx, sy) = (n + 1, sx + x, sy + y);
            }
        }
    }
    assert!(n > 100, "only {n} initial pixels");
    let (cx, cy) = (sx / n, sy / n);
    assert!((44..=56).contains(&cx) && (44..=56).contains(&cy), "initials centred at ({cx},{cy})");
    // A light colour gets dark initials; an empty text just the circle.
    let light = text.avatar("Z", [240, 230, 200], 48);
    assert!(light.pixels.chunks_exact(4).any(|p| p[3] == 255 && p[0] < 60));
    let empty = text.avatar("", rgb, 48);
    assert_eq!(empty.pixel(24, 24), [rgb[0], rgb[1], rgb[2], 255]);
}

#[test]
fn no_fonts_fail_loudly() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("not-a-font.ttf"), b"nope").expect("write");
    let err = TextRasterizer::from_dirs(&[dir.path().to_path_buf(), dir.path().join("missing")]);
    match err {
        Err(GpuError::Font(message)) => assert!(message.contains("no usable font"), "{message}"),
        other => panic!("expected a font error, got {other:?}"),
    }
}

#[test]
fn odd_sizes_do_not_panic() {
    let mut text = rasterizer();
    for px in [0.0, -5.0, f32::NAN, f32::INFINITY, 2000.0] {
        let image = text.label("x", px, 100.0);
        assert_eq!(image.pixels.len(), image.width as usize * image.height as usize * 4);
    }
    let image = text.label("", 16.0, 0.0);
    assert!(image.width >= 1 && image.height >= 1);
    let tiny = text.avatar("AB", [1, 2, 3], 0);
    assert_eq!((tiny.width, tiny.height), (2, 2));
}
