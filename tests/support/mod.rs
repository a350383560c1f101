//! Shared helpers of the end-to-end tests: run the real `tessera` binary, probe outputs with
//! ffprobe, decode them with ffmpeg, and measure colours, flashes and beeps.
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod grpc;
pub mod postgres;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Fails loudly when a tool the tests need is missing: tests never skip.
pub fn require_tool(name: &str) {
    let found = Command::new(name).arg("-version").output().is_ok();
    assert!(found, "`{name}` is required by this test and was not found on PATH (run scripts/install-deps.sh)");
}

pub fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("WGPU_BACKEND", std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "vulkan".into()))
        .env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()))
        .output()
        .expect("run tessera")
}

/// `tessera raw composite <input_flag> <input> --output <out> <extra...>`.
pub fn composite(input_flag: &str, input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["raw", "composite", input_flag, input.to_str().expect("utf-8 path"), "--output"];
    args.push(out.to_str().expect("utf-8 path"));
    args.extend_from_slice(extra);
    tessera(&args)
}

pub fn text(output: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `ffprobe -show_streams -show_format` as JSON.
pub fn ffprobe(path: &Path) -> serde_json::Value {
    require_tool("ffprobe");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_streams", "-show_format"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(out.status.success(), "ffprobe failed on {}: {}", path.display(), text(&out));
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

pub fn stream<'a>(probe: &'a serde_json::Value, codec_type: &str) -> &'a serde_json::Value {
    probe["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == codec_type))
        .unwrap_or_else(|| panic!("no {codec_type} stream in {probe}"))
}

pub fn f64_field(value: &serde_json::Value, key: &str) -> f64 {
    value[key]
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| value[key].as_f64())
        .unwrap_or_else(|| panic!("no {key} in {value}"))
}

/// Decoded video frames as RGB24 at `width` x `height`.
pub struct Frames {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Frames {
    pub fn decode(path: &Path, width: usize, height: usize) -> Frames {
        Frames::decode_window(path, width, height, None)
    }

    /// The frames from `from_ms` for `len_ms`, or all of them. Give `from_ms` on a frame
    /// boundary: the first frame is then the one starting there.
    pub fn decode_window(path: &Path, width: usize, height: usize, window_ms: Option<(f64, f64)>) -> Frames {
        require_tool("ffmpeg");
        let out = Command::new("ffmpeg")
            .args(["-v", "error"])
            .args(window_args(window_ms))
            .arg("-i")
            .arg(path)
            // A window's frames exactly as stored: no frame-rate conversion around the seek.
            .args(if window_ms.is_some() { &["-fps_mode", "passthrough"][..] } else { &[] })
            .args(["-vf", &format!("scale={width}:{height}:flags=area"), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .output()
            .expect("run ffmpeg");
        assert!(out.status.success(), "ffmpeg video decode failed: {}", text(&out));
        Frames { width, height, data: out.stdout }
    }

    pub fn count(&self) -> usize {
        self.data.len() / (self.width * self.height * 3)
    }

    /// Mean colour of a (2r+1)^2 block around (x, y) in frame `index`.
    pub fn mean_rgb(&self, index: usize, x: usize, y: usize, r: usize) -> [f64; 3] {
        let mut sum = [0.0; 3];
        let mut n = 0.0;
        let base = index * self.width * self.height * 3;
        for yy in y.saturating_sub(r)..=(y + r).min(self.height - 1) {
            for xx in x.saturating_sub(r)..=(x + r).min(self.width - 1) {
                let p = base + (yy * self.width + xx) * 3;
                for (total, value) in sum.iter_mut().zip(&self.data[p..p + 3]) {
                    *total += f64::from(*value);
                }
                n += 1.0;
            }
        }
        sum.map(|s| s / n)
    }
}

/// `-ss FROM -t LEN` for a window given in ms (input options: accurate seek).
fn window_args(window_ms: Option<(f64, f64)>) -> Vec<String> {
    window_ms.map_or_else(Vec::new, |(from, len)| {
        vec!["-ss".into(), format!("{:.3}", from / 1000.0), "-t".into(), format!("{:.3}", len / 1000.0)]
    })
}

/// Decoded audio, mono f32 at 48 kHz.
pub fn decode_audio(path: &Path) -> Vec<f32> {
    decode_audio_window(path, None)
}

/// Decoded audio from `from_ms` for `len_ms` (sample 0 is `from_ms`), or all of it.
pub fn decode_audio_window(path: &Path, window_ms: Option<(f64, f64)>) -> Vec<f32> {
    require_tool("ffmpeg");
    let out = Command::new("ffmpeg")
        .args(["-v", "error"])
        .args(window_args(window_ms))
        .arg("-i")
        .arg(path)
        .args(["-vn", "-ac", "1", "-ar", "48000", "-f", "f32le", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success(), "ffmpeg audio decode failed: {}", text(&out));
    out.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Amplitude of `freq_hz` in `samples` (Goertzel), scaled so a sine of amplitude A reads A.
pub fn tone_amplitude(samples: &[f32], freq_hz: f64, rate_hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq_hz / rate_hz;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / samples.len() as f64
}

/// Call time (ms) at which a beep at `freq_hz` starts within [from_ms, to_ms): the centre of
/// the first 5 ms window whose amplitude reaches half the loudest window's.
pub fn beep_onset_ms(samples: &[f32], freq_hz: f64, from_ms: f64, to_ms: f64) -> Option<f64> {
    let rate = 48_000.0;
    let window = 240;
    let step = 24; // 0.5 ms
    let start = ((from_ms.max(0.0) / 1000.0) * rate) as usize;
    let end = (((to_ms / 1000.0) * rate) as usize).min(samples.len().saturating_sub(window));
    let amps: Vec<(usize, f64)> =
        (start..end).step_by(step).map(|i| (i, tone_amplitude(&samples[i..i + window], freq_hz, rate))).collect();
    let max = amps.iter().map(|(_, a)| *a).fold(0.0, f64::max);
    if max < 0.05 {
        return None;
    }
    amps.iter().find(|(_, a)| *a >= max / 2.0).map(|(i, _)| (*i as f64 + window as f64 / 2.0) / rate * 1000.0)
}

pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.sort();
    files
}

/// `tessera synth` with extra flags, for the scenarios the library spec has no shortcut for.
pub fn synth_cli(output: &Path, args: &[&str]) {
    let mut all = vec!["synth", "--output", output.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let out = tessera(&all);
    assert!(out.status.success(), "synth failed: {}", text(&out));
}

/// The job's `manifest.json` in `out`.
pub fn manifest(out: &Path) -> serde_json::Value {
    let bytes = std::fs::read(out.join("manifest.json")).expect("manifest.json written");
    serde_json::from_slice(&bytes).expect("manifest.json is JSON")
}

/// The manifest's tracks of `participant` (every session) of `kind` ("audio" or "video").
pub fn tracks<'a>(manifest: &'a serde_json::Value, participant: &str, kind: &str) -> Vec<&'a serde_json::Value> {
    manifest["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter(|p| p["participant_id"] == participant)
        .flat_map(|p| p["tracks"].as_array().expect("tracks").iter())
        .filter(|t| t["kind"] == kind)
        .collect()
}

/// A small synthetic call (160x90 cameras) written as `dir/{name}.zip`.
pub fn call(dir: &Path, name: &str, participants: usize, duration_ms: u64) -> PathBuf {
    let path = dir.join(format!("{name}.zip"));
    let spec = tessera::synth::SynthSpec {
        participants,
        duration_ms,
        width: 160,
        height: 90,
        ..tessera::synth::SynthSpec::default()
    };
    tessera::synth::synth(&spec, &path).expect("synth");
    path
}

/// The render's MP4 in `out` (the job must have succeeded).
pub fn render_ok(input: &Path, out: &Path, extra: &[&str]) -> PathBuf {
    let output = composite("--input-dir", input, out, extra);
    assert!(output.status.success(), "render failed: {}", text(&output));
    files_in(out).into_iter().find(|f| f.extension().is_some_and(|e| e == "mp4")).expect("an mp4 is written")
}

/// Amplitude of `freq_hz` in the `window_ms` window starting at `from_ms`.
pub fn tone_at(samples: &[f32], freq_hz: f64, from_ms: f64, window_ms: f64) -> f64 {
    let start = ((from_ms / 1000.0) * 48_000.0) as usize;
    let end = (start + (window_ms * 48.0) as usize).min(samples.len());
    if start >= end {
        return 0.0;
    }
    tone_amplitude(&samples[start..end], freq_hz, 48_000.0)
}

/// The peak RSS (MiB) from the composite command's summary line.
pub fn peak_rss_mib(stdout: &str) -> f64 {
    let after = stdout.split("peak RSS ").nth(1).unwrap_or_else(|| panic!("no peak RSS in {stdout}"));
    after.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("bad peak RSS in {stdout}"))
}

/// Asserts that every flash of `who` (scheduled at `flashes_ms`) shows at pixel `at` of
/// `frames` (at `frame_ms` per frame) within one frame of its time; returns how many.
pub fn assert_flashes_on_time(
    frames: &Frames,
    who: &str,
    flashes_ms: &[u64],
    at: (usize, usize),
    frame_ms: f64,
) -> usize {
    let frame_at = |t_ms: f64| (t_ms / frame_ms).round() as usize;
    for &flash_ms in flashes_ms {
        let onset = (frame_at(flash_ms as f64 - 300.0)..frame_at(flash_ms as f64 + 300.0))
            .find(|&i| frames.mean_rgb(i, at.0, at.1, 2).iter().all(|c| *c > 225.0))
            .unwrap_or_else(|| panic!("{who}: no flash near {flash_ms} ms"));
        let onset_ms = onset as f64 * frame_ms;
        eprintln!("{who} flash at {flash_ms} ms shows at {onset_ms:.1} ms");
        assert!(
            (onset_ms - flash_ms as f64).abs() <= frame_ms,
            "{who}: flash scheduled at {flash_ms} ms shows at {onset_ms:.1} ms"
        );
    }
    flashes_ms.len()
}

/// Asserts that every beep of `who` (at `beeps_ms`) is heard in `samples` within
/// `tolerance_ms` of its time.
pub fn assert_beeps_on_time(samples: &[f32], freq_hz: f64, who: &str, beeps_ms: &[u64], tolerance_ms: f64) {
    for &beep_ms in beeps_ms {
        let onset = beep_onset_ms(samples, freq_hz, beep_ms as f64 - 240.0, beep_ms as f64 + 240.0)
            .unwrap_or_else(|| panic!("{who}: no beep near {beep_ms} ms"));
        eprintln!("{who} beep at {beep_ms} ms heard at {onset:.1} ms");
        assert!(
            (onset - beep_ms as f64).abs() <= tolerance_ms,
            "{who}: beep scheduled at {beep_ms} ms heard at {onset:.1} ms"
        );
    }
}
