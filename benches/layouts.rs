//! What the tile styles of the layouts cost: milliseconds per 1920x1080 NV12 output frame for 4,
//! 9, 16 and 25 sources of 640x360 I420 uploaded every frame, drawn as a plain grid (as before
//! layouts) and as the same grid with rounded corners on every tile, a speaking-highlight
//! border on one of them and a name label on every tile (labels rasterised and uploaded once,
//! through the overlay cache). Prints a table with the overhead of the styled frames.
//!
//! Run with `cargo bench --bench layouts`; tune with BENCH_FRAMES (default 200) and BENCH_SIZE
//! (1920x1080). `cargo bench` passes `--bench`; without it (`cargo test --benches`, or the
//! binary run by hand) and without BENCH_FRAMES this is a smoke run of a few frames. Needs the
//! fonts of scripts/install-deps.sh (or TESSERA_FONT_DIR). The adapter is wgpu's default one
//! (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME` apply).

mod support;

use std::time::{Duration, Instant};

use support::{SRC_H, SRC_W, Source, env_or};
use tessera::gpu::{Compositor, DrawStyle, OverlayCache, RectPx, TileContent, TileDraw};

const WARMUP: usize = 10;
const BACKGROUND: [u8; 3] = [16, 20, 24];
const TILE_COUNTS: [usize; 4] = [4, 9, 16, 25];
/// The built-in layouts' defaults, as fractions of the canvas height.
const CORNER_RADIUS: f32 = 0.012;
const HIGHLIGHT_WIDTH: f32 = 0.004;
const LABEL_SIZE: f32 = 0.026;
const HIGHLIGHT_RGB: [u8; 3] = [0x3d, 0x9c, 0xf5];
const NAMES: [&str; 6] = ["Ada Lovelace", "Alan Turing", "Грейс Хоппер", "שרה כהן", "李雷", "Αλέξης Παππάς"];

/// A near-square grid of `n` equal cells (even sizes) over the output.
fn grid(n: usize, width: u32, height: u32) -> Vec<RectPx> {
    let cols = (1..=n).find(|c| c * c >= n).unwrap_or(1);
    let rows = n.div_ceil(cols);
    let (w, h) = ((width as usize / cols) & !1, (height as usize / rows) & !1);
    (0..n)
        .map(|i| RectPx { x: ((i % cols) * w) as f32, y: ((i / cols) * h) as f32, width: w as f32, height: h as f32 })
        .collect()
}

fn plain_tiles(cells: &[RectPx]) -> Vec<TileDraw> {
    cells
        .iter()
        .enumerate()
        .map(|(i, &rect)| TileDraw {
            rect,
            content: TileContent::Video { source_id: i as u64, uv_rect: [0.0, 0.0, 1.0, 1.0] },
            style: DrawStyle::default(),
        })
        .collect()
}

/// The plain tiles rounded, the first with the speaking highlight, each with its name label
/// in the bottom-left corner.
fn styled_tiles(
    cells: &[RectPx],
    height: u32,
    rounded: bool,
    compositor: &mut Compositor,
    overlays: &mut OverlayCache,
) -> anyhow::Result<Vec<TileDraw>> {
    let canvas_h = height as f32;
    let radius = if rounded { (CORNER_RADIUS * canvas_h).round() } else { 0.0 };
    let label_px = (LABEL_SIZE * canvas_h).max(10.0).round();
    let mut tiles = Vec::new();
    let mut labels = Vec::new();
    for (i, tile) in plain_tiles(cells).into_iter().enumerate() {
        let border_px = if i == 0 { (HIGHLIGHT_WIDTH * canvas_h).round() } else { 0.0 };
        let style = DrawStyle { corner_radius_px: radius, border_px, border_rgb: HIGHLIGHT_RGB };
        tiles.push(TileDraw { style, ..tile });
        let margin = (label_px * 0.5).round();
        let name = format!("{} {}", NAMES[i % NAMES.len()], i + 1);
        let (image_id, (w, h)) = overlays.label(compositor, &name, label_px, tile.rect.width - 2.0 * margin)?;
        labels.push(TileDraw {
            rect: RectPx {
                x: tile.rect.x + margin,
                y: tile.rect.y + tile.rect.height - margin - h as f32,
                width: w as f32,
                height: h as f32,
            },
            content: TileContent::Image { image_id },
            style: DrawStyle::default(),
        });
    }
    tiles.extend(labels);
    Ok(tiles)
}

/// Milliseconds per frame of uploading every source and composing `tiles`, and the last frame.
fn run(
    compositor: &mut Compositor,
    sources: &[Source],
    tiles: &[TileDraw],
    warmup: usize,
    frames: usize,
) -> anyhow::Result<(f64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut total = Duration::ZERO;
    for frame in 0..warmup + frames {
        let started = Instant::now();
        for (i, source) in sources.iter().enumerate() {
            compositor.upload(i as u64, &source.frame())?;
        }
        compositor.compose(tiles, BACKGROUND, &mut out)?;
        if frame >= warmup {
            total += started.elapsed();
        }
    }
    Ok((total.as_secs_f64() * 1000.0 / frames.max(1) as f64, out))
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // a listing was asked for: there are no tests in here
    }
    let full = std::env::args().any(|a| a == "--bench") || std::env::var_os("BENCH_FRAMES").is_some();
    let frames: usize = env_or("BENCH_FRAMES", if full { 200 } else { 3 });
    let size: String = env_or("BENCH_SIZE", "1920x1080".to_owned());
    let (width, height) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .ok_or_else(|| anyhow::anyhow!("BENCH_SIZE `{size}` is not WIDTHxHEIGHT"))?;
    anyhow::ensure!(frames > 0, "BENCH_FRAMES must be positive");
    let warmup = if full { WARMUP } else { 1 };

    let mut compositor = Compositor::new(width, height)?;
    let started = Instant::now();
    let mut overlays = OverlayCache::new()?;
    let fonts = overlays.rasterizer();
    println!(
        "adapter: {}; fonts: {} ({} faces, loaded in {:.2} s)",
        compositor.adapter_summary(),
        fonts.family(),
        fonts.face_count(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "{SRC_W}x{SRC_H} I420 sources uploaded every frame -> {width}x{height} NV12, {frames} frames after {warmup} warm-up{}",
        if full { "" } else { " (smoke run: pass --bench or set BENCH_FRAMES)" }
    );
    println!(
        "{:>5} | {:>10} | {:>16} | {:>8} | {:>11} | {:>8} | {:>6}",
        "tiles", "plain ms", "labels+highlight", "overhead", "+ rounded", "overhead", "labels"
    );
    let sources: Vec<Source> = (0..TILE_COUNTS[TILE_COUNTS.len() - 1]).map(Source::new).collect();
    for n in TILE_COUNTS {
        let cells = grid(n, width, height);
        let plain = plain_tiles(&cells);
        let label_start = Instant::now();
        let labelled = styled_tiles(&cells, height, false, &mut compositor, &mut overlays)?;
        let label_ms = label_start.elapsed().as_secs_f64() * 1000.0;
        let styled = styled_tiles(&cells, height, true, &mut compositor, &mut overlays)?;
        let (plain_ms, plain_out) = run(&mut compositor, &sources[..n], &plain, warmup, frames)?;
        let (labelled_ms, _) = run(&mut compositor, &sources[..n], &labelled, warmup, frames)?;
        let (styled_ms, styled_out) = run(&mut compositor, &sources[..n], &styled, warmup, frames)?;
        let labelled_overhead = (labelled_ms / plain_ms - 1.0) * 100.0;
        let overhead = (styled_ms / plain_ms - 1.0) * 100.0;
        println!(
            "{n:>5} | {plain_ms:>10.3} | {labelled_ms:>16.3} | {labelled_overhead:>7.1}% | {styled_ms:>11.3} | {overhead:>7.1}% | {label_ms:>4.0}ms (rasterised once)"
        );
        println!(
            "RESULT tiles={n} size={width}x{height} frames={frames} plain_ms={plain_ms:.3} labels_highlight_ms={labelled_ms:.3} labels_highlight_overhead_pct={labelled_overhead:.1} styled_ms={styled_ms:.3} overhead_pct={overhead:.1}"
        );
        // The styles change the frame, but not the middle of any tile.
        anyhow::ensure!(plain_out != styled_out, "{n} tiles: the styled frame equals the plain one");
        for cell in &cells {
            let (x, y) = ((cell.x + cell.width / 2.0) as usize, (cell.y + cell.height / 2.0) as usize);
            let i = y * width as usize + x;
            anyhow::ensure!(
                plain_out[i].abs_diff(styled_out[i]) <= 1,
                "{n} tiles: the middle of the cell at ({x},{y}) differs: {} vs {}",
                plain_out[i],
                styled_out[i]
            );
        }
    }
    Ok(())
}
