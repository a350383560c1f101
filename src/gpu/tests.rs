//! Tests of the GPU module. They need a working adapter (lavapipe in CI): a test that cannot
//! open one fails loudly instead of skipping.

use super::*;

/// An owned I420 frame built from a per-pixel colour function.
pub(super) struct OwnedFrame {
    width: u32,
    height: u32,
    y: Vec<u8>,
    y_stride: usize,
    u: Vec<u8>,
    v: Vec<u8>,
    c_stride: usize,
    matrix: ColorMatrix,
}

impl OwnedFrame {
    /// Builds the frame; chroma of each 2x2 block comes from its top-left pixel. Stride
    /// padding bytes are filled with 0xAB so that sampling them would show up.
    pub(super) fn new(
        width: u32,
        height: u32,
        pad: usize,
        matrix: ColorMatrix,
        color: impl Fn(u32, u32) -> [u8; 3],
    ) -> Self {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let y_stride = width as usize + pad;
        let c_stride = cw as usize + pad;
        let mut y = vec![0xAB; y_stride * height as usize];
        let mut u = vec![0xAB; c_stride * ch as usize];
        let mut v = vec![0xAB; c_stride * ch as usize];
        for py in 0..height {
            for px in 0..width {
                let yuv = rgb_to_yuv_limited(color(px, py), matrix);
                y[py as usize * y_stride + px as usize] = yuv[0];
                if px % 2 == 0 && py % 2 == 0 {
                    let i = (py / 2) as usize * c_stride + (px / 2) as usize;
                    u[i] = yuv[1];
                    v[i] = yuv[2];
                }
            }
        }
        Self { width, height, y, y_stride, u, v, c_stride, matrix }
    }

    pub(super) fn solid(width: u32, height: u32, matrix: ColorMatrix, rgb: [u8; 3]) -> Self {
        Self::new(width, height, 0, matrix, |_, _| rgb)
    }

    pub(super) fn frame(&self) -> I420Frame<'_> {
        I420Frame {
            width: self.width,
            height: self.height,
            y: &self.y,
            y_stride: self.y_stride,
            u: &self.u,
            u_stride: self.c_stride,
            v: &self.v,
            v_stride: self.c_stride,
            matrix: self.matrix,
        }
    }
}

/// A compositor of each backend: the GPU path (lavapipe here) and the CPU path. Every test
/// runs on both, with the same expectations.
pub(super) fn compositors(width: u32, height: u32) -> Vec<Compositor> {
    [CompositorBackend::Gpu, CompositorBackend::Cpu]
        .into_iter()
        .map(|backend| match Compositor::with_backend(width, height, backend) {
            Ok(c) => c,
            Err(err) => panic!("{backend:?} compositor unavailable (lavapipe expected for the GPU): {err}"),
        })
        .collect()
}

pub(super) fn video(source_id: u64, x: f32, y: f32, w: f32, h: f32) -> TileDraw {
    TileDraw {
        rect: RectPx { x, y, width: w, height: h },
        content: TileContent::Video { source_id, uv_rect: [0.0, 0.0, 1.0, 1.0] },
        style: DrawStyle::default(),
    }
}

pub(super) fn assert_rgb_near(actual: [u8; 3], expected: [u8; 3], tol: i32, what: &str) {
    let ok = actual.iter().zip(expected).all(|(&a, e)| (i32::from(a) - i32::from(e)).abs() <= tol);
    assert!(ok, "{what}: got {actual:?}, expected {expected:?} (±{tol})");
}

pub(super) fn compose(c: &mut Compositor, tiles: &[TileDraw], bg: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(err) = c.compose(tiles, bg, &mut out) {
        panic!("compose failed: {err}");
    }
    let (w, h) = c.output_size();
    assert_eq!(out.len(), nv12_len(w, h));
    out
}

#[test]
fn compositor_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Compositor>();
}

#[test]
fn solid_background_only() {
    for mut c in compositors(320, 180) {
        eprintln!("compositor: {}", c.adapter_summary());
        assert!(!c.adapter_summary().is_empty());
        let bg = [30, 120, 200];
        let out = compose(&mut c, &[], bg);
        let [y, u, v] = rgb_to_yuv709_limited(bg);
        let (luma, chroma) = out.split_at(320 * 180);
        for (i, &value) in luma.iter().enumerate() {
            assert!(value.abs_diff(y) <= 1, "Y[{i}] = {value}, expected {y}");
        }
        for (i, pair) in chroma.chunks_exact(2).enumerate() {
            assert!(pair[0].abs_diff(u) <= 1 && pair[1].abs_diff(v) <= 1, "UV[{i}] = {pair:?}, expected [{u}, {v}]");
        }
    }
}

#[test]
fn grid_of_four_sources() {
    for mut c in compositors(1280, 720) {
        eprintln!("compositor: {}", c.adapter_summary());
        let colors = [[200, 40, 40], [40, 180, 60], [50, 70, 210], [220, 200, 40]];
        let matrices = [ColorMatrix::Bt601, ColorMatrix::Bt709, ColorMatrix::Bt709, ColorMatrix::Bt601];
        let mut tiles = Vec::new();
        for (i, (rgb, matrix)) in colors.iter().zip(matrices).enumerate() {
            let frame = OwnedFrame::solid(320, 180, matrix, *rgb);
            c.upload(i as u64, &frame.frame()).expect("upload");
            let (col, row) = ((i % 2) as f32, (i / 2) as f32);
            tiles.push(video(i as u64, 20.0 + col * 640.0, 20.0 + row * 360.0, 600.0, 320.0));
        }
        let bg = [10, 10, 10];
        let out = compose(&mut c, &tiles, bg);
        for (i, rgb) in colors.iter().enumerate() {
            let (cx, cy) = (320 + (i as u32 % 2) * 640, 180 + (i as u32 / 2) * 360);
            let got = nv12_pixel_rgb(&out, 1280, 720, cx, cy);
            assert_rgb_near(got, *rgb, 3, &format!("cell {i} centre"));
        }
        for (x, y) in [(640, 180), (640, 540), (320, 360), (960, 360), (4, 4), (1275, 715)] {
            assert_rgb_near(nv12_pixel_rgb(&out, 1280, 720, x, y), bg, 3, &format!("gap ({x},{y})"));
        }
    }
}

#[test]
fn odd_frame_with_padded_stride() {
    for mut c in compositors(64, 64) {
        eprintln!("compositor: {}", c.adapter_summary());
        let rgb = [180, 90, 30];
        let frame = OwnedFrame::new(33, 17, 15, ColorMatrix::Bt709, |_, _| rgb);
        assert!(frame.y_stride > 33);
        c.upload(7, &frame.frame()).expect("upload");
        let out = compose(&mut c, &[video(7, 0.0, 0.0, 64.0, 64.0)], [0, 0, 0]);
        for (x, y) in [(0, 0), (32, 32), (62, 62), (63, 0), (0, 63)] {
            assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, x, y), rgb, 3, &format!("({x},{y})"));
        }
    }
}

#[test]
fn source_changing_size_between_uploads() {
    for mut c in compositors(64, 64) {
        eprintln!("compositor: {}", c.adapter_summary());
        let red = OwnedFrame::solid(64, 64, ColorMatrix::Bt709, [220, 30, 30]);
        c.upload(1, &red.frame()).expect("upload red");
        let tiles = [video(1, 0.0, 0.0, 64.0, 64.0)];
        let out = compose(&mut c, &tiles, [0, 0, 0]);
        assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, 32, 32), [220, 30, 30], 3, "red");
        let blue = OwnedFrame::solid(31, 47, ColorMatrix::Bt601, [30, 30, 220]);
        c.upload(1, &blue.frame()).expect("upload blue");
        let out = compose(&mut c, &tiles, [0, 0, 0]);
        assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, 32, 32), [30, 30, 220], 3, "blue");
        // Same size again: written in place.
        let green = OwnedFrame::solid(31, 47, ColorMatrix::Bt709, [30, 200, 30]);
        c.upload(1, &green.frame()).expect("upload green");
        let out = compose(&mut c, &tiles, [0, 0, 0]);
        assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, 32, 32), [30, 200, 30], 3, "green");
    }
}

#[test]
fn unknown_and_removed_sources() {
    for mut c in compositors(64, 64) {
        eprintln!("compositor: {}", c.adapter_summary());
        let mut out = Vec::new();
        let err = c.compose(&[video(42, 0.0, 0.0, 8.0, 8.0)], [0, 0, 0], &mut out);
        assert!(matches!(err, Err(GpuError::UnknownSource { source_id: 42 })), "{err:?}");
        let frame = OwnedFrame::solid(16, 16, ColorMatrix::Bt709, [1, 2, 3]);
        c.upload(42, &frame.frame()).expect("upload");
        c.compose(&[video(42, 0.0, 0.0, 8.0, 8.0)], [0, 0, 0], &mut out).expect("compose");
        c.remove_source(42);
        c.remove_source(999);
        let err = c.compose(&[video(42, 0.0, 0.0, 8.0, 8.0)], [0, 0, 0], &mut out);
        assert!(matches!(err, Err(GpuError::UnknownSource { source_id: 42 })), "{err:?}");
    }
}

#[test]
fn bad_frames_are_rejected() {
    for mut c in compositors(64, 64) {
        eprintln!("compositor: {}", c.adapter_summary());
        let good = OwnedFrame::solid(16, 16, ColorMatrix::Bt709, [1, 2, 3]);
        let base = good.frame();
        let short_y = &good.y[..good.y.len() - 1];
        let cases = [
            I420Frame { y: short_y, ..base },
            I420Frame { u: &good.u[..10], ..base },
            I420Frame { y_stride: 15, ..base },
            I420Frame { v_stride: 7, ..base },
            I420Frame { width: 0, ..base },
            I420Frame { width: 100_000, y_stride: 100_000, ..base },
            I420Frame { y_stride: usize::MAX, ..base },
        ];
        for (i, frame) in cases.iter().enumerate() {
            let err = c.upload(3, frame);
            assert!(matches!(err, Err(GpuError::BadFrame { source_id: 3, .. })), "case {i}: {err:?}");
        }
        // None of the failures registered the source.
        let mut out = Vec::new();
        let err = c.compose(&[video(3, 0.0, 0.0, 8.0, 8.0)], [0, 0, 0], &mut out);
        assert!(matches!(err, Err(GpuError::UnknownSource { source_id: 3 })));
        c.upload(3, &base).expect("good frame after bad ones");
    }
}

#[test]
fn crop_left_half_shows_only_red() {
    for mut c in compositors(64, 64) {
        eprintln!("compositor: {}", c.adapter_summary());
        let (red, blue) = ([220, 20, 20], [20, 20, 220]);
        let frame = OwnedFrame::new(64, 32, 0, ColorMatrix::Bt709, |x, _| if x < 32 { red } else { blue });
        c.upload(5, &frame.frame()).expect("upload");
        let tile = TileDraw {
            rect: RectPx { x: 16.0, y: 16.0, width: 32.0, height: 32.0 },
            content: TileContent::Video { source_id: 5, uv_rect: [0.0, 0.0, 0.5, 1.0] },
            style: DrawStyle::default(),
        };
        let out = compose(&mut c, &[tile], [0, 0, 0]);
        for y in 16..48 {
            for x in 16..46 {
                assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, x, y), red, 4, &format!("({x},{y})"));
            }
        }
        assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, 8, 8), [0, 0, 0], 3, "outside");
        assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, 56, 32), [0, 0, 0], 3, "outside right");
    }
}

#[test]
fn later_tiles_on_top_and_clipping() {
    for mut c in compositors(64, 64) {
        eprintln!("compositor: {}", c.adapter_summary());
        let frame = OwnedFrame::solid(16, 16, ColorMatrix::Bt709, [30, 200, 30]);
        c.upload(9, &frame.frame()).expect("upload");
        let solid = |x: f32, y: f32, w: f32, h: f32, rgb| TileDraw {
            rect: RectPx { x, y, width: w, height: h },
            content: TileContent::Solid { rgb },
            style: DrawStyle::default(),
        };
        let tiles = [
            // Extends beyond the canvas on every side: clipped by the rasterizer.
            video(9, -100.0, -100.0, 300.0, 300.0),
            solid(32.0, 32.0, 64.0, 64.0, [200, 30, 200]),
            solid(0.0, 0.0, 0.0, 10.0, [255, 255, 255]),
            solid(f32::NAN, 0.0, 10.0, 10.0, [255, 255, 255]),
        ];
        let out = compose(&mut c, &tiles, [0, 0, 0]);
        assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, 4, 4), [30, 200, 30], 3, "video");
        assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, 50, 50), [200, 30, 200], 3, "solid on top");
        // Many tiles grow the uniform buffer.
        let many: Vec<TileDraw> = (0..100)
            .map(|i| solid((i % 10) as f32 * 6.0, (i / 10) as f32 * 6.0, 6.0, 6.0, [i as u8, 50, 50]))
            .collect();
        let out = compose(&mut c, &many, [0, 0, 0]);
        assert_rgb_near(nv12_pixel_rgb(&out, 64, 64, 56, 56), [99, 50, 50], 3, "tile 99");
    }
}

#[test]
fn chroma_interleave_matches_planes() {
    // 33x17: chroma rows of 17 bytes exercise both the 8-byte steps and the remainder.
    let frame = OwnedFrame::new(33, 17, 5, ColorMatrix::Bt709, |x, y| [(x * 7) as u8, (y * 13) as u8, 99]);
    for mut c in compositors(66, 34) {
        eprintln!("compositor: {}", c.adapter_summary());
        c.upload(1, &frame.frame()).expect("upload");
        let out = compose(&mut c, &[video(1, 0.0, 0.0, 66.0, 34.0)], [0, 0, 0]);
        for (x, y) in [(1, 1), (21, 9), (64, 32), (40, 20)] {
            let expected = [(x / 2 * 7) as u8, (y / 2 * 13) as u8, 99];
            assert_rgb_near(nv12_pixel_rgb(&out, 66, 34, x, y), expected, 8, &format!("({x},{y})"));
        }
    }
}

#[test]
fn chroma_at_odd_tile_edges_averages_the_block() {
    for mut c in compositors(64, 64) {
        eprintln!("compositor: {}", c.adapter_summary());
        let (bg, red) = ([0, 0, 0], [220, 30, 30]);
        let frame = OwnedFrame::solid(16, 16, ColorMatrix::Bt709, red);
        c.upload(1, &frame.frame()).expect("upload");
        // Edges at odd pixels: chroma blocks in column 0, 31 and row 0, 31 are partly covered.
        let tiles = [video(1, 1.0, 1.0, 62.0, 62.0)];
        let out = compose(&mut c, &tiles, bg);
        let (bg_yuv, red_yuv) = (rgb_to_yuv709_limited(bg), rgb_to_yuv709_limited(red));
        let uv = |bx: usize, by: usize| {
            let i = 64 * 64 + by * 64 + bx * 2;
            [out[i], out[i + 1]]
        };
        let mix = |a: u8, b: u8, wb: f32| (f32::from(a) * (1.0 - wb) + f32::from(b) * wb).round() as u8;
        for (bx, by, wb) in [(0, 10, 0.5), (10, 0, 0.5), (0, 0, 0.25), (10, 10, 1.0), (31, 31, 0.25), (31, 10, 0.5)] {
            let expected = [mix(bg_yuv[1], red_yuv[1], wb), mix(bg_yuv[2], red_yuv[2], wb)];
            let got = uv(bx, by);
            let ok = got.iter().zip(expected).all(|(&g, e)| g.abs_diff(e) <= 2);
            assert!(ok, "block ({bx},{by}): got {got:?}, expected {expected:?}");
        }
    }
}

/// `cargo test --release -- --ignored --nocapture compose_fps`
#[test]
#[ignore]
fn compose_fps() {
    for mut c in compositors(1920, 1080) {
        eprintln!("compositor: {}", c.adapter_summary());
        let frames: Vec<OwnedFrame> = (0..4)
            .map(|i| {
                OwnedFrame::new(640, 360, 0, ColorMatrix::Bt709, move |x, y| {
                    [(x % 256) as u8, (y % 256) as u8, 60 * i as u8]
                })
            })
            .collect();
        let tiles: Vec<TileDraw> =
            (0..4).map(|i| video(i, (i % 2) as f32 * 960.0, (i / 2) as f32 * 540.0, 960.0, 540.0)).collect();
        let mut out = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            c.upload(i as u64, &f.frame()).expect("upload");
        }
        c.compose(&tiles, [0, 0, 0], &mut out).expect("warm-up compose");
        let n = 120;
        for reupload in [true, false] {
            let start = std::time::Instant::now();
            let cpu_start = cpu_ticks();
            for _ in 0..n {
                if reupload {
                    for (i, f) in frames.iter().enumerate() {
                        c.upload(i as u64, &f.frame()).expect("upload");
                    }
                }
                c.compose(&tiles, [0, 0, 0], &mut out).expect("compose");
            }
            let secs = start.elapsed().as_secs_f64();
            let fps = n as f64 / secs;
            let cpu_ms = (cpu_ticks() - cpu_start) as f64 * 10.0 / n as f64;
            println!(
                "{} (reupload: {reupload}): {n} frames in {secs:.2}s = {fps:.1} fps, {cpu_ms:.1} ms CPU/frame",
                c.adapter_summary()
            );
        }
    }
}

/// User + system CPU time of this process in clock ticks (1/100 s), or 0 off Linux.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    after_name.split_whitespace().skip(11).take(2).filter_map(|v| v.parse::<u64>().ok()).sum()
}
