//! Render speed and CPU on one machine: `tessera raw composite` against the ffmpeg command a
//! user would otherwise script (xstack + amix + libx264 at the same preset, CRF and size) on
//! the same synthetic calls, and both against the limit: decoding the inputs alone plus
//! encoding the output alone, the work no composer can skip.
//!
//! ffmpeg cannot read rtpdump, so each track is first remuxed (not decoded) to Matroska; that
//! step is not timed. The limit is measured with ffmpeg on the same streams: every input track
//! decoded to nothing, plus tessera's composite re-encoded with libx264 (same preset and CRF)
//! and AAC less decoding it. CPU-seconds are user + system time of this process (tessera runs
//! in it, GStreamer's and x264's threads included) and of the ffmpeg children.
//!
//! tessera renders each call twice: with the default grid (name labels, rounded corners, the
//! speaking highlight), and with a plain grid that draws the picture ffmpeg's graph draws
//! (square tiles, nothing over them), so that speed and file size compare like with like.
//!
//! Quality is not traded for speed: both files' sizes, and the PSNR of each against its own
//! composite encoded at CRF 12 (the loss the encode adds; a single reference would also count
//! where the two scalers differ), untimed.
//!
//! Each timed step (tessera in each look, ffmpeg, decode-only, encode-only) runs BENCH_RUNS
//! times (3), in rounds so that the steps of a round meet the same load, and the tables show
//! the lowest wall and the lowest CPU of each: other work on a shared host only adds time.
//!
//! Run with `cargo bench --bench render_vs_ffmpeg`; knobs: BENCH_PARTICIPANTS (a list,
//! default `4,9`), BENCH_DURATION_S (60), BENCH_SIZE (1920x1080), BENCH_PRESET (veryfast),
//! BENCH_RUNS (3), TESSERA_COMPOSITOR (auto, gpu, cpu). Without `--bench` (`cargo test
//! --benches`) and BENCH_DURATION_S it is a 2 s smoke run at 320x180.

use std::path::Path;
use std::process::Command;

use tessera::ingest::Recording;
use tessera::ingest::sdp::Codec;
use tessera::layout::Layout;
use tessera::media::encode::EncodeSettings;
use tessera::media::remux::remux_segment_to_mkv;
use tessera::render::staging::Staging;
use tessera::render::{RenderPlan, RenderSummary, render};
use tessera::synth::{SynthSpec, synth};

mod render_support;
use render_support::composite_request;
use render_support::{env_or, measure};

fn ffmpeg(args: &[String]) -> anyhow::Result<()> {
    let status = Command::new("ffmpeg").args(["-hide_banner", "-v", "error", "-y"]).args(args).status()?;
    anyhow::ensure!(status.success(), "ffmpeg failed: ffmpeg {}", args.join(" "));
    Ok(())
}

struct Settings {
    duration_s: u64,
    width: u32,
    height: u32,
    fps: u32,
    preset: String,
    /// Each timed step runs this many times; the tables show the lowest.
    runs: usize,
}

struct Row {
    participants: usize,
    media_s: f64,
    /// tessera with the default grid, then with the plain grid.
    ours: [Side; 2],
    theirs: Side,
    limit_cpu_s: f64,
    adapter: String,
}

/// One renderer's run on a call.
struct Side {
    wall_s: f64,
    cpu_s: f64,
    /// CPU seconds of tessera's composing thread in the compositor.
    compose_cpu_s: f64,
    /// File size (bytes) and PSNR (dB, luma and chroma weighted 4:1:1) against the same
    /// renderer's composite at the reference CRF.
    size: u64,
    psnr_db: f64,
}

/// The looks tessera renders each call in, as named in the tables.
const LOOKS: [&str; 2] = ["grid", "plain grid"];

/// The CRF of the reference composites quality is measured against.
const REFERENCE_CRF: u32 = 12;

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // a test harness asks for a listing
    }
    // `cargo bench` passes --bench; without it (`cargo test --benches`) this is a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench") && std::env::var_os("BENCH_DURATION_S").is_none();
    let participants: String = env_or("BENCH_PARTICIPANTS", if smoke { "4" } else { "4,9" }.to_owned());
    let size: String = env_or("BENCH_SIZE", if smoke { "320x180" } else { "1920x1080" }.to_owned());
    let (width, height) = size
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .ok_or_else(|| anyhow::anyhow!("BENCH_SIZE `{size}` is not WIDTHxHEIGHT"))?;
    let settings = Settings {
        duration_s: if smoke { 2 } else { env_or("BENCH_DURATION_S", 60) },
        width,
        height,
        fps: 30,
        preset: env_or("BENCH_PRESET", "veryfast".to_owned()),
        runs: if smoke { 1 } else { env_or("BENCH_RUNS", 3) },
    };
    let mut rows = Vec::new();
    for n in participants.split(',') {
        let n: usize = n.trim().parse().map_err(|_| anyhow::anyhow!("BENCH_PARTICIPANTS: `{n}` is not a count"))?;
        rows.push(run_one(n, &settings)?);
    }
    println!(
        "\n{}x{} at {} fps, x264 {} crf 23, {} s calls of 640x360 VP8/H.264 + Opus; wall and CPU are each the lowest of {} runs",
        settings.width, settings.height, settings.fps, settings.preset, settings.duration_s, settings.runs
    );
    println!(
        "| participants | tessera look | tessera wall | tessera CPU | ffmpeg wall | ffmpeg CPU | limit CPU | ffmpeg wall / tessera wall | tessera CPU / limit | composing CPU (share of tessera's) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &rows {
        for (look, ours) in LOOKS.iter().zip(&r.ours) {
            println!(
                "| {} | {look} | {:.1} s ({:.2}x real time) | {:.1} s | {:.1} s | {:.1} s | {:.1} s | {:.2} | {:.2} | {:.1} s ({:.0}%) |",
                r.participants,
                ours.wall_s,
                r.media_s / ours.wall_s,
                ours.cpu_s,
                r.theirs.wall_s,
                r.theirs.cpu_s,
                r.limit_cpu_s,
                r.theirs.wall_s / ours.wall_s,
                ours.cpu_s / r.limit_cpu_s,
                ours.compose_cpu_s,
                100.0 * ours.compose_cpu_s / ours.cpu_s
            );
        }
    }
    if let Some(r) = rows.first() {
        println!("compositor: {}", r.adapter);
    }
    println!("\nQuality at CRF 23, each file against its own composite at CRF {REFERENCE_CRF}:");
    println!(
        "| participants | tessera look | tessera size | ffmpeg size | size ratio | tessera PSNR | ffmpeg PSNR | difference |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &rows {
        for (look, ours) in LOOKS.iter().zip(&r.ours) {
            println!(
                "| {} | {look} | {:.2} MB | {:.2} MB | {:.3} | {:.2} dB | {:.2} dB | {:+.2} dB |",
                r.participants,
                ours.size as f64 / 1e6,
                r.theirs.size as f64 / 1e6,
                ours.size as f64 / r.theirs.size as f64,
                ours.psnr_db,
                r.theirs.psnr_db,
                ours.psnr_db - r.theirs.psnr_db
            );
        }
    }
    Ok(())
}

fn run_one(participants: usize, s: &Settings) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("call");
    let spec = SynthSpec {
        participants,
        duration_ms: s.duration_s * 1000,
        video_codecs: vec![Codec::Vp8, Codec::H264],
        ..SynthSpec::default()
    };
    synth(&spec, &input)?;
    eprintln!("{participants} participants: synthesised");

    let mut encode = EncodeSettings::new(s.width, s.height, s.fps);
    encode.quality.preset = s.preset.clone();
    let looks = [Staging::default(), Staging::single(plain_grid())];

    // ffmpeg's inputs: the same tracks, remuxed (untimed).
    let recording = Recording::open(&input)?;
    let plan = RenderPlan::build(&recording)?;
    let mut inputs: Vec<String> = Vec::new();
    let (mut video_inputs, mut audio_inputs, mut mkvs) = (Vec::new(), Vec::new(), Vec::new());
    for (index, track) in plan.tracks.iter().enumerate() {
        let segment = track.segments.first().ok_or_else(|| anyhow::anyhow!("track without segments"))?;
        let mkv = dir.path().join(format!("track{index}.mkv"));
        remux_segment_to_mkv(&segment.spec, segment.packets()?.as_mut(), &mkv)?;
        inputs.extend([
            "-itsoffset".into(),
            format!("{:.3}", segment.span.start_ms / 1000.0),
            "-i".into(),
            mkv.display().to_string(),
        ]);
        match segment.spec.codec {
            Codec::Opus => audio_inputs.push(index),
            _ => video_inputs.push(index),
        }
        mkvs.push(mkv);
    }
    let mut args = inputs;
    args.extend(["-filter_complex".into(), ffmpeg_graph(&video_inputs, &audio_inputs, s)?]);
    args.extend(["-map".into(), "[v]".into(), "-map".into(), "[a]".into()]);
    args.extend(["-t".into(), format!("{:.3}", plan.timeline.duration_ms / 1000.0), "-r".into(), s.fps.to_string()]);
    let theirs_file = dir.path().join("ffmpeg.mp4");
    let mut theirs_args = args.clone();
    theirs_args.extend(encode_args(s, 23, &theirs_file));
    let null = |file: &Path| -> Vec<String> {
        vec!["-i".into(), file.display().to_string(), "-f".into(), "null".into(), "-".into()]
    };

    // The timed steps, in rounds, so that every step of a round meets the same load.
    let mut ours = [Best::default(); 2];
    let mut compose_cpu_s = [f64::INFINITY; 2];
    let [mut theirs, mut decode, mut reencode, mut composite_decode] = [Best::default(); 4];
    // The first run's summary (of the default grid) and composite of each look.
    let (mut first, mut files): (Option<RenderSummary>, Vec<std::path::PathBuf>) = (None, Vec::new());
    for round in 0..s.runs {
        for (index, staging) in looks.iter().enumerate() {
            eprintln!("{participants} participants, run {}/{}: tessera, {}", round + 1, s.runs, LOOKS[index]);
            let out = dir.path().join(format!("run{round}")).join(format!("look{index}"));
            let mut request = composite_request(input.clone(), out, encode.clone());
            request.staging = staging.clone();
            let summary = ours[index].time(|| Ok(render(&request, |_| {})?))?;
            compose_cpu_s[index] = compose_cpu_s[index].min(summary.compose_cpu_s);
            if round == 0 {
                files.push(composite_file(&summary)?);
                first.get_or_insert(summary);
            }
        }
        let composite = files.first().ok_or_else(|| anyhow::anyhow!("no tessera render"))?;
        eprintln!("{participants} participants, run {}/{}: ffmpeg", round + 1, s.runs);
        theirs.time(|| ffmpeg(&theirs_args))?;

        // The limit: decode every input alone, encode the output alone.
        eprintln!("{participants} participants, run {}/{}: decode-only and encode-only", round + 1, s.runs);
        decode.time(|| mkvs.iter().try_for_each(|mkv| ffmpeg(&null(mkv))))?;
        reencode.time(|| {
            let mut args = vec!["-i".into(), composite.display().to_string()];
            args.extend(encode_args(s, 23, &dir.path().join("reencoded.mp4")));
            ffmpeg(&args)
        })?;
        composite_decode.time(|| ffmpeg(&null(composite)))?;
    }
    let summary = first.ok_or_else(|| anyhow::anyhow!("BENCH_RUNS is 0"))?;
    let limit_cpu_s = decode.cpu_s + (reencode.cpu_s - composite_decode.cpu_s).max(0.0);

    // Quality (untimed): each file against its own composite at the reference CRF.
    eprintln!("{participants} participants: quality against the CRF {REFERENCE_CRF} references");
    let mut sides = Vec::new();
    for (index, (staging, file)) in looks.iter().zip(&files).enumerate() {
        let mut request =
            composite_request(input.clone(), dir.path().join(format!("reference{index}")), encode.clone());
        request.staging = staging.clone();
        request.encode.quality.crf = REFERENCE_CRF;
        let reference = composite_file(&render(&request, |_| {})?)?;
        sides.push(Side {
            wall_s: ours[index].wall_s,
            cpu_s: ours[index].cpu_s,
            compose_cpu_s: compose_cpu_s[index],
            size: std::fs::metadata(file)?.len(),
            psnr_db: psnr_db(file, &reference)?,
        });
    }
    let their_reference = dir.path().join("ffmpeg-reference.mp4");
    args.extend(encode_args(s, REFERENCE_CRF, &their_reference));
    ffmpeg(&args)?;
    let theirs = Side {
        wall_s: theirs.wall_s,
        cpu_s: theirs.cpu_s,
        compose_cpu_s: 0.0,
        size: std::fs::metadata(&theirs_file)?.len(),
        psnr_db: psnr_db(&theirs_file, &their_reference)?,
    };
    let [grid, plain]: [Side; 2] = sides.try_into().map_err(|_| anyhow::anyhow!("two looks"))?;
    Ok(Row {
        participants,
        media_s: summary.duration_ms / 1000.0,
        ours: [grid, plain],
        theirs,
        limit_cpu_s,
        adapter: summary.adapter.unwrap_or_default(),
    })
}

/// The lowest wall and CPU seconds of one timed step over the runs, each on its own: load from
/// other work on a shared host only adds time, so the minimum is nearest the step's own cost.
#[derive(Debug, Clone, Copy)]
struct Best {
    wall_s: f64,
    cpu_s: f64,
}

impl Default for Best {
    fn default() -> Best {
        Best { wall_s: f64::INFINITY, cpu_s: f64::INFINITY }
    }
}

impl Best {
    /// Runs `work` (timed as [`measure`] times it) and keeps its seconds where lower.
    fn time<T>(&mut self, work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        let (value, wall_s, cpu_s) = measure(work)?;
        self.wall_s = self.wall_s.min(wall_s);
        self.cpu_s = self.cpu_s.min(cpu_s);
        Ok(value)
    }
}

/// The built-in grid drawing what ffmpeg's graph draws: square tiles, no labels, no speaking
/// highlight (same cells, gaps, letterboxing and colours).
fn plain_grid() -> Layout {
    let mut layout = Layout::grid();
    for tile in std::iter::once(&mut layout.tile).chain(layout.regions.iter_mut().map(|r| &mut r.tile)) {
        tile.corner_radius = 0.0;
        tile.label = false;
        tile.highlight = None;
    }
    layout
}

fn composite_file(summary: &RenderSummary) -> anyhow::Result<std::path::PathBuf> {
    summary
        .outputs
        .iter()
        .map(|o| summary.output_dir.join(&o.file))
        .find(|p| p.extension().is_some_and(|e| e == "mp4"))
        .ok_or_else(|| anyhow::anyhow!("tessera wrote no mp4"))
}

/// The grid as an ffmpeg filter graph: each camera scaled into its cell (contain, padded),
/// stacked, and the microphones mixed and limited as tessera mixes them.
fn ffmpeg_graph(video_inputs: &[usize], audio_inputs: &[usize], s: &Settings) -> anyhow::Result<String> {
    let layout = Layout::builtin("grid")?;
    let cells: Vec<_> = layout
        .place(&vec![Some((640, 360)); video_inputs.len()], s.width, s.height)
        .into_iter()
        .map(|t| t.cell)
        .collect();
    let mut filter = String::new();
    let mut positions = Vec::new();
    for (n, (input_index, cell)) in video_inputs.iter().zip(&cells).enumerate() {
        let (w, h) = (cell.width.round() as u32 / 2 * 2, cell.height.round() as u32 / 2 * 2);
        filter.push_str(&format!(
            "[{input_index}:v]fps={},scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=0x2a2f36[v{n}];",
            s.fps
        ));
        positions.push(format!("{}_{}", cell.x.round() as u32, cell.y.round() as u32));
    }
    let labels: String = (0..video_inputs.len()).map(|n| format!("[v{n}]")).collect();
    filter.push_str(&format!(
        "{labels}xstack=inputs={}:layout={}:fill=0x101418,pad={}:{}:0:0:color=0x101418[v];",
        video_inputs.len(),
        positions.join("|"),
        s.width,
        s.height
    ));
    let audio_labels: String = audio_inputs.iter().map(|i| format!("[{i}:a]")).collect();
    filter.push_str(&format!(
        "{audio_labels}amix=inputs={}:normalize=0,alimiter=limit=0.891,aresample=48000,aformat=channel_layouts=stereo[a]",
        audio_inputs.len()
    ));
    Ok(filter)
}

/// libx264 at the preset and `crf` with tessera's keyframe interval (2 s; x264's own default
/// is 250 frames, fewer and so smaller files), AAC 128 kbit/s, into `out`.
fn encode_args(s: &Settings, crf: u32, out: &Path) -> Vec<String> {
    let (crf, gop) = (crf.to_string(), (2 * s.fps).to_string());
    [
        "-c:v", "libx264", "-preset", &s.preset, "-crf", &crf, "-g", &gop, "-pix_fmt", "yuv420p", "-c:a", "aac",
        "-b:a", "128k",
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .chain([out.display().to_string()])
    .collect()
}

/// The average PSNR of `file`'s video against `reference`'s, as ffmpeg's `psnr` filter
/// reports it (`average:`, luma and chroma weighted 4:1:1).
fn psnr_db(file: &Path, reference: &Path) -> anyhow::Result<f64> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-i"])
        .arg(file)
        .arg("-i")
        .arg(reference)
        .args(["-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"])
        .output()?;
    let log = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(output.status.success(), "ffmpeg psnr of {} failed: {log}", file.display());
    log.lines()
        .filter(|l| l.contains("PSNR"))
        .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("average:")?.parse().ok()))
        .ok_or_else(|| anyhow::anyhow!("ffmpeg printed no PSNR for {}: {log}", file.display()))
}
