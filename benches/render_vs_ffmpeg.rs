//! Render speed: `tessera raw composite` against ffmpeg doing the same grid (xstack + amix +
//! libx264 at the same preset, quality and size) on the same synthetic call, both timed here.
//!
//! ffmpeg cannot read rtpdump, so each track is first remuxed (not decoded) to Matroska; that
//! step is not timed. Run with `cargo bench --bench render_vs_ffmpeg`; tune with
//! BENCH_PARTICIPANTS (default 4), BENCH_DURATION_S (30), BENCH_SIZE (1920x1080),
//! BENCH_PRESET (veryfast). Without `--bench` (`cargo test --benches`) and BENCH_DURATION_S it
//! is a 2 s smoke run at 320x180.

use std::process::Command;
use std::time::Instant;

use tessera::ingest::Recording;
use tessera::ingest::sdp::Codec;
use tessera::layout::Layout;
use tessera::media::encode::EncodeSettings;
use tessera::media::remux::remux_segment_to_mkv;
use tessera::outputs::{OutputSet, TrackFilter};
use tessera::render::staging::Staging;
use tessera::render::{CancelFlag, RenderInput, RenderPlan, RenderRequest, render};
use tessera::synth::{SynthSpec, synth};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // a test harness asks for a listing
    }
    // `cargo bench` passes --bench; without it (`cargo test --benches`) this is a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench") && std::env::var_os("BENCH_DURATION_S").is_none();
    let participants: usize = env_or("BENCH_PARTICIPANTS", 4);
    let duration_s: u64 = if smoke { 2 } else { env_or("BENCH_DURATION_S", 30) };
    let default_size = if smoke { "320x180" } else { "1920x1080" };
    let size: String = env_or("BENCH_SIZE", default_size.to_owned());
    let preset: String = env_or("BENCH_PRESET", "veryfast".to_owned());
    let (width, height) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .ok_or_else(|| anyhow::anyhow!("BENCH_SIZE `{size}` is not WIDTHxHEIGHT"))?;
    let fps = 30;

    let dir = tempfile::tempdir()?;
    let input = dir.path().join("call");
    let spec = SynthSpec {
        participants,
        duration_ms: duration_s * 1000,
        video_codecs: vec![Codec::Vp8, Codec::H264],
        ..SynthSpec::default()
    };
    synth(&spec, &input)?;
    println!(
        "input: {participants} participants, {duration_s} s, 640x360 VP8/H.264 + Opus; output {width}x{height} at {fps} fps, x264 {preset} crf 23"
    );

    // tessera
    let mut encode = EncodeSettings::new(width, height, fps);
    encode.quality.preset = preset.clone();
    let request = RenderRequest {
        input: RenderInput::Archive(input.clone()),
        output_dir: dir.path().join("tessera"),
        work_dir: std::env::temp_dir(),
        staging: Staging::default(),
        encode,
        outputs: OutputSet::composite(),
        filter: TrackFilter::default(),
        cancel: CancelFlag::default(),
        stall_timeout_s: tessera::render::watchdog::DEFAULT_STALL_TIMEOUT_S,
        max_call_span_h: tessera::render::DEFAULT_MAX_CALL_SPAN_H,
        on_file: None,
    };
    let started = Instant::now();
    let summary = render(&request, |_| {})?;
    let ours_s = started.elapsed().as_secs_f64();

    // ffmpeg on the same tracks, remuxed.
    let recording = Recording::open(&input)?;
    let plan = RenderPlan::build(&recording)?;
    let mut args: Vec<String> = vec!["-hide_banner".into(), "-v".into(), "error".into(), "-y".into()];
    let mut video_inputs = Vec::new();
    let mut audio_inputs = Vec::new();
    for (index, track) in plan.tracks.iter().enumerate() {
        let segment = track.segments.first().ok_or_else(|| anyhow::anyhow!("track without segments"))?;
        let mkv = dir.path().join(format!("track{index}.mkv"));
        remux_segment_to_mkv(&segment.spec, segment.packets()?.as_mut(), &mkv)?;
        args.extend([
            "-itsoffset".into(),
            format!("{:.3}", segment.span.start_ms / 1000.0),
            "-i".into(),
            mkv.display().to_string(),
        ]);
        match segment.spec.codec {
            Codec::Opus => audio_inputs.push(index),
            _ => video_inputs.push(index),
        }
    }
    let layout = Layout::builtin("grid")?;
    let cells: Vec<_> =
        layout.place(&vec![Some((640, 360)); video_inputs.len()], width, height).into_iter().map(|t| t.cell).collect();
    let mut filter = String::new();
    let mut positions = Vec::new();
    for (n, (input_index, cell)) in video_inputs.iter().zip(&cells).enumerate() {
        let (w, h) = (cell.width.round() as u32 / 2 * 2, cell.height.round() as u32 / 2 * 2);
        filter.push_str(&format!(
            "[{input_index}:v]fps={fps},scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=0x2a2f36[v{n}];"
        ));
        positions.push(format!("{}_{}", cell.x.round() as u32, cell.y.round() as u32));
    }
    let labels: String = (0..video_inputs.len()).map(|n| format!("[v{n}]")).collect();
    filter.push_str(&format!(
        "{labels}xstack=inputs={}:layout={}:fill=0x101418,pad={width}:{height}:0:0:color=0x101418[v];",
        video_inputs.len(),
        positions.join("|")
    ));
    let audio_labels: String = audio_inputs.iter().map(|i| format!("[{i}:a]")).collect();
    filter.push_str(&format!(
        "{audio_labels}amix=inputs={}:normalize=0,alimiter=limit=0.891,aresample=48000,aformat=channel_layouts=stereo[a]",
        audio_inputs.len()
    ));
    let ffmpeg_out = dir.path().join("ffmpeg.mp4");
    args.extend([
        "-filter_complex".into(),
        filter,
        "-map".into(),
        "[v]".into(),
        "-map".into(),
        "[a]".into(),
        "-t".into(),
        format!("{:.3}", plan.timeline.duration_ms / 1000.0),
        "-r".into(),
        fps.to_string(),
        "-c:v".into(),
        "libx264".into(),
        "-preset".into(),
        preset.clone(),
        "-crf".into(),
        "23".into(),
        "-pix_fmt".into(),
        "yuv420p".into(),
        "-c:a".into(),
        "aac".into(),
        "-b:a".into(),
        "128k".into(),
        ffmpeg_out.display().to_string(),
    ]);
    let started = Instant::now();
    let status = Command::new("ffmpeg").args(&args).status()?;
    let ffmpeg_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "ffmpeg failed: ffmpeg {}", args.join(" "));

    let media_s = summary.duration_ms / 1000.0;
    println!(
        "tessera: {ours_s:>7.2} s  {:>5.2}x real time  ({}, {})",
        media_s / ours_s,
        summary.encoder.as_deref().unwrap_or("?"),
        summary.adapter.as_deref().unwrap_or("?")
    );
    println!("ffmpeg:  {ffmpeg_s:>7.2} s  {:>5.2}x real time  (xstack + amix + libx264)", media_s / ffmpeg_s);
    println!("ratio:   tessera takes {:.2}x the time ffmpeg takes (below 1 is faster)", ours_s / ffmpeg_s);
    Ok(())
}
