//! Layouts drawn by the real compositors: every built-in layout, drawn by the GPU path (wgpu,
//! on lavapipe here) and by the CPU path, against its golden image at a landscape and a
//! portrait size (the same images are the README's previews) and against each other; name
//! labels in several scripts leaving their text's pixels.
//!
//! `TESSERA_UPDATE_GOLDEN=1 cargo test --test layout_images` rewrites the golden images.

use std::path::PathBuf;

use tessera::gpu::CompositorBackend;
use tessera::layout::Layout;
use tessera::render::preview::{PreviewSpec, RgbImage, preview, preview_tiles};

/// Each built-in layout with the sample call that shows it best.
const LAYOUTS: &[(&str, usize, bool)] = &[
    ("grid", 6, false),
    ("speaker", 5, false),
    ("spotlight", 4, false),
    ("screenshare", 4, true),
    ("pip", 2, false),
    ("audio-only", 6, false),
    ("auto", 4, true),
];
const SIZES: &[(&str, u32, u32)] = &[("landscape", 960, 540), ("portrait", 540, 960)];

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/layouts").join(format!("{name}.png"))
}

/// Mean absolute channel difference, and the share of pixels with a channel off by more than 48.
fn difference(a: &RgbImage, b: &RgbImage) -> (f64, f64) {
    let (mut sum, mut far) = (0u64, 0usize);
    for (pa, pb) in a.rgb.chunks_exact(3).zip(b.rgb.chunks_exact(3)) {
        let mut worst = 0;
        for (ca, cb) in pa.iter().zip(pb) {
            let d = ca.abs_diff(*cb);
            sum += u64::from(d);
            worst = worst.max(d);
        }
        if worst > 48 {
            far += 1;
        }
    }
    let pixels = (a.rgb.len() / 3).max(1);
    (sum as f64 / (pixels * 3) as f64, far as f64 / pixels as f64)
}

#[test]
fn every_built_in_layout_matches_its_golden_image_in_landscape_and_portrait_on_both_compositors() {
    let update = std::env::var_os("TESSERA_UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for &(layout, participants, screenshare) in LAYOUTS {
        for &(orientation, width, height) in SIZES {
            let name = format!("{layout}-{orientation}");
            let draw = |backend| {
                let spec = PreviewSpec {
                    layout: Layout::builtin(layout).expect("built-in layout"),
                    participants,
                    screenshare,
                    width,
                    height,
                    compositor: Some(backend),
                };
                preview(&spec).unwrap_or_else(|e| panic!("{name} ({backend:?}): preview failed: {e}"))
            };
            let images = [
                (CompositorBackend::Gpu, draw(CompositorBackend::Gpu)),
                (CompositorBackend::Cpu, draw(CompositorBackend::Cpu)),
            ];
            let path = golden_path(&name);
            if update {
                std::fs::create_dir_all(path.parent().expect("docs/layouts")).expect("mkdir");
                images[0].1.write_png(&path).expect("write golden");
                continue;
            }
            let golden = RgbImage::read_png(&path).unwrap_or_else(|e| {
                panic!("{e}: golden image missing; run TESSERA_UPDATE_GOLDEN=1 cargo test --test layout_images")
            });
            assert_eq!((golden.width, golden.height), (width, height), "{name}: golden size");
            let (mean, far) = difference(&images[0].1, &images[1].1);
            eprintln!("{name}: GPU against CPU: mean difference {mean:.3}, {:.3}% of pixels far off", far * 100.0);
            if mean > 1.5 || far > 0.005 {
                failures.push(format!(
                    "{name}: the GPU and CPU compositors differ: mean {mean:.3}, {:.2}% far off",
                    far * 100.0
                ));
            }
            for (backend, image) in &images {
                let (mean, far) = difference(image, &golden);
                eprintln!("{name} ({backend:?}): mean difference {mean:.3}, {:.3}% of pixels far off", far * 100.0);
                if mean > 1.5 || far > 0.005 {
                    let actual = std::env::temp_dir().join(format!("tessera-actual-{name}-{backend:?}.png"));
                    image.write_png(&actual).expect("write actual");
                    failures.push(format!(
                        "{name} ({backend:?}): mean difference {mean:.3} (max 1.5), {:.2}% far off (max 0.5%); actual in {}",
                        far * 100.0,
                        actual.display()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Near-white pixels (the labels' text is white) in the bottom quarter of `rect`.
fn text_pixels(image: &RgbImage, rect: tessera::layout::RectF) -> usize {
    let (x0, x1) = (rect.x as u32, (rect.x + rect.width) as u32);
    let (y0, y1) = ((rect.y + rect.height * 0.75) as u32, (rect.y + rect.height) as u32);
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .filter(|&(x, y)| image.pixel(x, y).iter().all(|c| *c > 215))
        .count()
}

#[test]
fn names_in_latin_cyrillic_greek_arabic_hebrew_and_cjk_are_drawn_on_their_tiles() {
    // The sample names are Latin, Cyrillic, Greek, Arabic, Hebrew and CJK, in that order.
    let spec = PreviewSpec {
        layout: Layout::builtin("grid").expect("grid"),
        participants: 6,
        screenshare: false,
        width: 1280,
        height: 720,
        compositor: None,
    };
    let (image, tiles) = preview_tiles(&spec).expect("preview");
    assert_eq!(tiles.len(), 6);
    let mut unlabelled_layout = Layout::builtin("grid").expect("grid");
    unlabelled_layout.set_labels(false);
    let (bare, _) = preview_tiles(&PreviewSpec { layout: unlabelled_layout, ..spec.clone() }).expect("preview");
    for (script, tile) in ["Latin", "Cyrillic", "Greek", "Arabic", "Hebrew", "CJK"].iter().zip(&tiles) {
        let with = text_pixels(&image, tile.cell);
        let without = text_pixels(&bare, tile.cell);
        eprintln!("{script}: {with} text pixels with the label, {without} without");
        assert!(with >= 40 + without, "{script}: the label's text left {with} white pixels ({without} without it)");
    }
}

#[test]
fn a_layout_files_background_picture_fills_the_canvas_behind_the_tiles() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A 2x2 magenta picture, and a layout naming it beside itself.
    let picture = RgbImage { width: 2, height: 2, rgb: [200, 40, 160].repeat(4) };
    picture.write_png(&dir.path().join("brand.png")).expect("write picture");
    let text = include_str!("../layouts/grid.toml")
        .replace("background = \"#101418\"", "background = \"#101418\"\nbackground_image = \"brand.png\"");
    let file = dir.path().join("branded.toml");
    std::fs::write(&file, text).expect("write layout");
    let layout = Layout::load(file.to_str().expect("utf-8")).expect("the layout loads");
    let spec = PreviewSpec { layout, participants: 2, screenshare: false, width: 640, height: 360, compositor: None };
    let (image, tiles) = preview_tiles(&spec).expect("preview");
    // Above the first tile's picture (two 16:9 pictures letterboxed in tall cells).
    let tessera::layout::TileContent::Video { rect, .. } = tiles[0].content else { panic!("a picture") };
    assert!(rect.y > 20.0, "a band above the picture: {rect:?}");
    let got = image.pixel((rect.x + rect.width / 2.0) as u32, (rect.y / 2.0) as u32);
    let near = got.iter().zip([200u8, 40, 160]).all(|(g, e)| g.abs_diff(e) <= 6);
    assert!(near, "the background picture shows above the tiles: {got:?}");
}
