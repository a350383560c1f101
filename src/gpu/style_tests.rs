//! GPU tests of styled tiles (rounded corners, borders), images and cached overlays. Like the
//! other GPU tests they need a working adapter (lavapipe in CI); the overlay tests also need
//! the fonts of scripts/install-deps.sh.

use super::overlays::FIRST_OVERLAY_IMAGE_ID;
use super::tests::{OwnedFrame, assert_rgb_near, compose, compositors, video};
use super::*;

fn solid(x: f32, y: f32, w: f32, h: f32, rgb: [u8; 3], style: DrawStyle) -> TileDraw {
    TileDraw { rect: RectPx { x, y, width: w, height: h }, content: TileContent::Solid { rgb }, style }
}

fn image(image_id: u64, x: f32, y: f32, w: f32, h: f32) -> TileDraw {
    TileDraw {
        rect: RectPx { x, y, width: w, height: h },
        content: TileContent::Image { image_id },
        style: DrawStyle::default(),
    }
}

fn rounded(radius: f32, border: f32, border_rgb: [u8; 3]) -> DrawStyle {
    DrawStyle { corner_radius_px: radius, border_px: border, border_rgb }
}

#[test]
fn rounded_corners_show_background_and_border_is_border_colour() {
    for mut c in compositors(128, 128) {
        eprintln!("compositor: {}", c.adapter_summary());
        let (bg, red, blue) = ([0, 0, 0], [220, 30, 30], [30, 60, 220]);
        let tile = solid(16.0, 16.0, 96.0, 96.0, red, rounded(24.0, 4.0, blue));
        let out = compose(&mut c, &[tile], bg);
        let at = |x, y| nv12_pixel_rgb(&out, 128, 128, x, y);
        // Outside the arc of every corner (whole chroma blocks), and outside the tile.
        for (x, y) in [(16, 16), (18, 18), (20, 20), (21, 21), (110, 17), (17, 110), (110, 110), (8, 64)] {
            assert_rgb_near(at(x, y), bg, 3, &format!("corner ({x},{y})"));
        }
        // The border: straight edges (16..20 and 108..112) and along the arc.
        for (x, y) in [(64, 17), (64, 18), (17, 64), (18, 64), (109, 64), (110, 64), (64, 109), (64, 110), (24, 24)] {
            assert_rgb_near(at(x, y), blue, 4, &format!("border ({x},{y})"));
        }
        for (x, y) in [(30, 30), (64, 64), (21, 64), (64, 106), (97, 97)] {
            assert_rgb_near(at(x, y), red, 3, &format!("inside ({x},{y})"));
        }
        // Anti-aliased: along the arc there are luma values between background and border.
        let [bg_y, blue_y] = [rgb_to_yuv709_limited(bg)[0], rgb_to_yuv709_limited(blue)[0]];
        let between = (16..40).filter(|&x| (bg_y + 2..blue_y - 2).contains(&out[20 * 128 + x])).count();
        assert!(between > 0, "no partly covered pixel on row 20: {:?}", &out[20 * 128 + 16..20 * 128 + 40]);
    }
}

#[test]
fn border_without_rounding_and_degenerate_styles() {
    for mut c in compositors(64, 64) {
        eprintln!("compositor: {}", c.adapter_summary());
        let (bg, green, white) = ([10, 10, 10], [30, 180, 60], [255, 255, 255]);
        let tiles = [
            solid(8.0, 8.0, 48.0, 48.0, green, rounded(0.0, 2.0, white)),
            // A border wider than the tile is all border; NaN and negative styles are plain.
            solid(0.0, 0.0, 6.0, 6.0, green, rounded(0.0, 100.0, white)),
            solid(58.0, 58.0, 6.0, 6.0, green, rounded(f32::NAN, -3.0, white)),
        ];
        let out = compose(&mut c, &tiles, bg);
        let at = |x, y| nv12_pixel_rgb(&out, 64, 64, x, y);
        for (x, y) in [(8, 8), (9, 30), (55, 55), (30, 54), (2, 2), (5, 0)] {
            assert_rgb_near(at(x, y), white, 3, &format!("border ({x},{y})"));
        }
        for (x, y) in [(10, 10), (32, 32), (53, 53), (60, 60)] {
            assert_rgb_near(at(x, y), green, 3, &format!("inside ({x},{y})"));
        }
        assert_rgb_near(at(7, 30), bg, 3, "left of the tile");
    }
}

#[test]
fn styled_video_matches_plain_video_away_from_the_corners() {
    let frame = OwnedFrame::new(96, 80, 3, ColorMatrix::Bt709, |x, y| [(x * 2) as u8, (y * 3) as u8, 120]);
    let (w, h) = (128u32, 128u32);
    for mut c in compositors(w, h) {
        eprintln!("compositor: {}", c.adapter_summary());
        c.upload(1, &frame.frame()).expect("upload");
        // Odd position: the chroma edges are partly covered blocks in both paths.
        let plain = video(1, 9.0, 7.0, 110.0, 112.0);
        let styled = TileDraw { style: rounded(12.0, 0.0, [0, 0, 0]), ..plain };
        let bg = [70, 20, 90];
        let a = compose(&mut c, &[plain], bg);
        let b = compose(&mut c, &[styled], bg);
        // Within 14 pixels of a corner of the tile (x 9..119, y 7..119), in both directions.
        let near_corner = |x: u32, y: u32| !(23..105).contains(&x) && !(21..105).contains(&y);
        let mut compared = 0;
        for y in 0..h {
            for x in 0..w {
                if near_corner(x, y) {
                    continue;
                }
                let i = (y * w + x) as usize;
                assert!(a[i].abs_diff(b[i]) <= 1, "Y ({x},{y}): plain {} styled {}", a[i], b[i]);
                let block_clear = [(x + 1, y), (x, y + 1), (x + 1, y + 1)].iter().all(|&(px, py)| !near_corner(px, py));
                if x % 2 == 0 && y % 2 == 0 && block_clear {
                    let j = (w * h + (y / 2) * w + x) as usize;
                    for k in [j, j + 1] {
                        assert!(a[k].abs_diff(b[k]) <= 1, "UV ({x},{y}): plain {} styled {}", a[k], b[k]);
                    }
                }
                compared += 1;
            }
        }
        assert!(compared > 14_000);
        // In the corner the styled tile shows the background.
        assert_rgb_near(nv12_pixel_rgb(&b, w, h, 10, 8), bg, 3, "rounded corner");
    }
}

#[test]
fn images_blend_with_their_alpha() {
    for mut c in compositors(64, 64) {
        eprintln!("compositor: {}", c.adapter_summary());
        let (red, blue) = ([200, 40, 40], [20, 40, 230]);
        let half_white: Vec<u8> = [255, 255, 255, 128].repeat(8 * 8);
        c.upload_image(5, 8, 8, &half_white).expect("upload image");
        // Two columns: opaque blue, then fully transparent (its colour must not show).
        c.upload_image(6, 2, 1, &[20, 40, 230, 255, 255, 255, 0, 0]).expect("upload image");
        assert_eq!(c.image_size(6), Some((2, 1)));
        let tiles = [image(5, 0.0, 0.0, 32.0, 32.0), image(6, 32.0, 32.0, 32.0, 32.0)];
        let out = compose(&mut c, &tiles, red);
        let a = 128.0 / 255.0;
        let expected = red.map(|v| (f32::from(v) * (1.0 - a) + 255.0 * a).round() as u8);
        for (x, y) in [(0, 0), (16, 16), (31, 31), (4, 27)] {
            assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, x, y), expected, 3, &format!("50% white ({x},{y})"));
        }
        assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, 40, 10), red, 3, "no image");
        // The bilinear blend crosses over in the middle of the scaled 2x1 image.
        assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, 34, 48), blue, 3, "opaque column");
        assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, 62, 48), red, 3, "transparent column");
        // Uploading again replaces the pixels (same size in place, another size anew).
        c.upload_image(5, 8, 8, &[0, 0, 0, 255].repeat(64)).expect("replace");
        c.upload_image(6, 1, 1, &[255, 255, 255, 255]).expect("resize");
        let out = compose(&mut c, &tiles, red);
        assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, 16, 16), [0, 0, 0], 3, "replaced");
        assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, 62, 48), [255, 255, 255], 3, "resized");
    }
}

#[test]
fn unknown_and_bad_images() {
    for mut c in compositors(64, 64) {
        eprintln!("compositor: {}", c.adapter_summary());
        let mut out = Vec::new();
        let err = c.compose(&[image(77, 0.0, 0.0, 8.0, 8.0)], [0, 0, 0], &mut out);
        assert!(matches!(err, Err(GpuError::UnknownImage { image_id: 77 })), "{err:?}");
        let err = c.upload_image(77, 4, 4, &[0; 10]);
        assert!(matches!(err, Err(GpuError::BadImage { image_id: 77, .. })), "{err:?}");
        let err = c.upload_image(77, 0, 4, &[]);
        assert!(matches!(err, Err(GpuError::BadImage { image_id: 77, .. })), "{err:?}");
        c.upload_image(77, 1, 1, &[1, 2, 3, 4]).expect("upload");
        c.compose(&[image(77, 0.0, 0.0, 8.0, 8.0)], [0, 0, 0], &mut out).expect("compose");
        c.remove_image(77);
        c.remove_image(78);
        let err = c.compose(&[image(77, 0.0, 0.0, 8.0, 8.0)], [0, 0, 0], &mut out);
        assert!(matches!(err, Err(GpuError::UnknownImage { image_id: 77 })), "{err:?}");
    }
}

#[test]
fn cached_avatar_and_label_are_drawn() {
    for mut c in compositors(128, 128) {
        eprintln!("compositor: {}", c.adapter_summary());
        let mut cache = match OverlayCache::new() {
            Ok(cache) => cache,
            Err(err) => panic!("fonts unavailable (run scripts/install-deps.sh): {err}"),
        };
        let rgb = [40, 90, 160];
        let (avatar, size) = cache.avatar(&mut c, "AL", rgb, 64).expect("avatar");
        assert_eq!(size, (64, 64));
        assert!(avatar >= FIRST_OVERLAY_IMAGE_ID);
        assert_eq!(cache.avatar(&mut c, "AL", rgb, 64).expect("cached avatar"), (avatar, size));
        let (label, (lw, lh)) = cache.label(&mut c, "Ada", 20.0, 120.0).expect("label");
        assert_ne!(label, avatar);
        assert!(lw <= 120 && lh >= 20, "{lw}x{lh}");
        assert_eq!(cache.len(), 2);

        let bg = [128, 128, 128];
        let tiles = [image(avatar, 32.0, 32.0, 64.0, 64.0), image(label, 4.0, 100.0, lw as f32, lh as f32)];
        let out = compose(&mut c, &tiles, bg);
        let at = |x, y| nv12_pixel_rgb(&out, 128, 128, x, y);
        for (x, y) in [(32, 32), (34, 34), (94, 34), (34, 94), (94, 94)] {
            assert_rgb_near(at(x, y), bg, 3, &format!("outside the circle ({x},{y})"));
        }
        for (x, y) in [(64, 34), (34, 64), (64, 92), (92, 64)] {
            assert_rgb_near(at(x, y), rgb, 4, &format!("circle ({x},{y})"));
        }
        let white = (40..88).flat_map(|y| (40..88).map(move |x| (x, y))).filter(|&(x, y)| at(x, y)[0] > 220).count();
        assert!(white > 50, "initials: {white} white pixels");
        // The label: the pill darkens the background, the text is light.
        let pill = at(6, 100 + lh / 2);
        assert!(pill[0] < 70, "pill {pill:?}");
        let light = (100..100 + lh).flat_map(|y| (4..4 + lw).map(move |x| (x, y))).filter(|&(x, y)| at(x, y)[0] > 200);
        assert!(light.count() > 20, "label text");
        cache.clear(&mut c);
        assert!(cache.is_empty());
        assert_eq!(c.image_size(avatar), None);
    }
}
