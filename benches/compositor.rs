//! Compositor speed on its own: N sources of 640x360 I420 uploaded every frame, drawn into a grid
//! and read back as NV12, against a plain single-threaded CPU reference doing the same work
//! (a bilinear scale of every source plane into one NV12 frame, sampled at pixel centres like the
//! GPU sampler). Run with `cargo bench --bench compositor`; tune with BENCH_SOURCES (default 4),
//! BENCH_SIZE (1920x1080), BENCH_FRAMES (300) and BENCH_CPU_FRAMES (defaults to BENCH_FRAMES).
//! The adapter is wgpu's default one (`WGPU_BACKEND`, `WGPU_ADAPTER_NAME` apply).
//!
//! `cargo bench` passes `--bench`; without it (`cargo test --benches`, or the binary run by hand)
//! and without BENCH_FRAMES this is a smoke run of a few frames. Either way it fails if the GPU
//! and CPU frames disagree by more than rounding.

mod support;

use std::time::{Duration, Instant};

use support::{SRC_H, SRC_W, Source, env_or};
use tessera::gpu::{Compositor, DrawStyle, RectPx, TileContent, TileDraw, rgb_to_yuv709_limited};

/// Frames run before timing starts (texture creation, pipeline warm-up).
const WARMUP: usize = 10;
const BACKGROUND: [u8; 3] = [24, 24, 24];

/// Pixel rectangle of one tile (all values even).
#[derive(Debug, Clone, Copy)]
struct Cell {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
}

/// A near-square grid of `n` equal cells over the output.
fn grid(n: usize, width: usize, height: usize) -> Vec<Cell> {
    let cols = (1..=n).find(|c| c * c >= n).unwrap_or(1);
    let rows = n.div_ceil(cols);
    let (w, h) = ((width / cols) & !1, (height / rows) & !1);
    (0..n).map(|i| Cell { x: (i % cols) * w, y: (i / cols) * h, w, h }).collect()
}

/// Source index pairs and the 8-bit weight of the second one, for `out` samples over `inn`.
fn taps(out: usize, inn: usize) -> Vec<(usize, usize, u32)> {
    (0..out)
        .map(|o| {
            let pos = ((o as f64 + 0.5) * inn as f64 / out as f64 - 0.5).clamp(0.0, (inn - 1) as f64);
            let i0 = pos.floor() as usize;
            (i0, (i0 + 1).min(inn - 1), ((pos - i0 as f64) * 256.0).round() as u32)
        })
        .collect()
}

/// Bilinear scale of one `sw x sh` plane into `cell` of `dst` (row pitch `pitch`, `step` bytes
/// between output samples), in fixed point.
fn scale_plane(src: &[u8], sw: usize, sh: usize, dst: &mut [u8], pitch: usize, step: usize, cell: Cell) {
    let xs = taps(cell.w, sw);
    for (oy, &(y0, y1, fy)) in taps(cell.h, sh).iter().enumerate() {
        let (r0, r1) = (&src[y0 * sw..][..sw], &src[y1 * sw..][..sw]);
        let row = &mut dst[(cell.y + oy) * pitch + cell.x * step..];
        for (out, &(x0, x1, fx)) in row.iter_mut().step_by(step).zip(&xs) {
            let top = u32::from(r0[x0]) * (256 - fx) + u32::from(r0[x1]) * fx;
            let bottom = u32::from(r1[x0]) * (256 - fx) + u32::from(r1[x1]) * fx;
            *out = ((top * (256 - fy) + bottom * fy + (1 << 15)) >> 16) as u8;
        }
    }
}

/// The CPU reference: background, then every source scaled into its cell, as NV12.
fn cpu_compose(sources: &[Source], cells: &[Cell], width: usize, height: usize, out: &mut Vec<u8>) {
    let [bg_y, bg_cb, bg_cr] = rgb_to_yuv709_limited(BACKGROUND);
    out.resize(width * height * 3 / 2, 0);
    let (luma, chroma) = out.split_at_mut(width * height);
    luma.fill(bg_y);
    for pair in chroma.chunks_exact_mut(2) {
        pair.copy_from_slice(&[bg_cb, bg_cr]);
    }
    for (source, &cell) in sources.iter().zip(cells) {
        scale_plane(&source.y, SRC_W, SRC_H, luma, width, 1, cell);
        let half = Cell { x: cell.x / 2, y: cell.y / 2, w: cell.w / 2, h: cell.h / 2 };
        scale_plane(&source.u, SRC_W / 2, SRC_H / 2, chroma, width, 2, half);
        scale_plane(&source.v, SRC_W / 2, SRC_H / 2, &mut chroma[1..], width, 2, half);
    }
}

/// Mean and maximum absolute difference of two byte slices.
fn diff(a: &[u8], b: &[u8]) -> (f64, u8) {
    let (sum, max) = a.iter().zip(b).fold((0u64, 0u8), |(sum, max), (&x, &y)| {
        let d = x.abs_diff(y);
        (sum + u64::from(d), max.max(d))
    });
    (sum as f64 / a.len().max(1) as f64, max)
}

fn ms(total: Duration, frames: usize) -> f64 {
    total.as_secs_f64() * 1000.0 / frames.max(1) as f64
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // a listing was asked for: there are no tests in here
    }
    let full = std::env::args().any(|a| a == "--bench") || std::env::var_os("BENCH_FRAMES").is_some();
    let n: usize = env_or("BENCH_SOURCES", 4);
    let size: String = env_or("BENCH_SIZE", "1920x1080".to_owned());
    let frames: usize = env_or("BENCH_FRAMES", if full { 300 } else { 3 });
    let cpu_frames: usize = env_or("BENCH_CPU_FRAMES", frames);
    let (width, height) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .ok_or_else(|| anyhow::anyhow!("BENCH_SIZE `{size}` is not WIDTHxHEIGHT"))?;
    anyhow::ensure!(n > 0 && frames > 0 && cpu_frames > 0, "BENCH_SOURCES and BENCH_FRAMES must be positive");
    let (w, h) = (width as usize, height as usize);
    let sources: Vec<Source> = (0..n).map(Source::new).collect();
    let cells = grid(n, w, h);
    let tiles: Vec<TileDraw> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| TileDraw {
            rect: RectPx { x: c.x as f32, y: c.y as f32, width: c.w as f32, height: c.h as f32 },
            content: TileContent::Video { source_id: i as u64, uv_rect: [0.0, 0.0, 1.0, 1.0] },
            style: DrawStyle::default(),
        })
        .collect();

    let warmup = if full { WARMUP } else { 1 };
    let started = Instant::now();
    let mut compositor = Compositor::new(width, height)?;
    let init_s = started.elapsed().as_secs_f64();
    println!("adapter: {} (init {init_s:.2} s)", compositor.adapter_summary());
    println!(
        "{n} sources of {SRC_W}x{SRC_H} I420 -> {width}x{height} NV12 ({}x{} tiles), {frames} frames after {warmup} warm-up{}",
        cells[0].w,
        cells[0].h,
        if full { "" } else { " (smoke run: pass --bench or set BENCH_FRAMES)" }
    );

    let mut gpu_out = Vec::new();
    let (mut upload, mut compose) = (Duration::ZERO, Duration::ZERO);
    for frame in 0..warmup + frames {
        let t0 = Instant::now();
        for (i, source) in sources.iter().enumerate() {
            compositor.upload(i as u64, &source.frame())?;
        }
        let t1 = Instant::now();
        compositor.compose(&tiles, BACKGROUND, &mut gpu_out)?;
        if frame >= warmup {
            upload += t1 - t0;
            compose += t1.elapsed();
        }
    }
    let gpu_total = upload + compose;
    let gpu_fps = frames as f64 / gpu_total.as_secs_f64();
    println!(
        "gpu: {gpu_fps:.1} frames/s, {:.3} ms/frame = upload {:.3} + compose+readback {:.3}",
        ms(gpu_total, frames),
        ms(upload, frames),
        ms(compose, frames)
    );

    let mut cpu_out = Vec::new();
    cpu_compose(&sources, &cells, w, h, &mut cpu_out); // warm-up: allocation and caches
    let started = Instant::now();
    for _ in 0..cpu_frames {
        cpu_compose(&sources, &cells, w, h, &mut cpu_out);
    }
    let cpu_elapsed = started.elapsed();
    let cpu_fps = cpu_frames as f64 / cpu_elapsed.as_secs_f64();
    println!("cpu reference (1 thread, bilinear): {cpu_fps:.1} frames/s, {:.3} ms/frame", ms(cpu_elapsed, cpu_frames));

    anyhow::ensure!(gpu_out.len() == cpu_out.len(), "NV12 sizes differ: {} vs {}", gpu_out.len(), cpu_out.len());
    let (y_mean, y_max) = diff(&gpu_out[..w * h], &cpu_out[..w * h]);
    let (uv_mean, uv_max) = diff(&gpu_out[w * h..], &cpu_out[w * h..]);
    println!("gpu vs cpu: luma mean |diff| {y_mean:.2} (max {y_max}), chroma mean |diff| {uv_mean:.2} (max {uv_max})");
    println!(
        "RESULT sources={n} size={width}x{height} frames={frames} gpu_fps={gpu_fps:.1} upload_ms={:.3} compose_ms={:.3} cpu_fps={cpu_fps:.1} gpu/cpu={:.2}",
        ms(upload, frames),
        ms(compose, frames),
        gpu_fps / cpu_fps
    );
    // Both sample bilinearly at pixel centres: they may differ by rounding, not by content.
    anyhow::ensure!(
        y_mean < 0.5 && uv_mean < 0.5 && y_max <= 3 && uv_max <= 3,
        "GPU and CPU frames differ by more than rounding"
    );
    Ok(())
}
