//! `tessera raw composite`: the composite video (and, on request, audio-only composites and
//! individual files) of a raw recording.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use tessera::ingest::Recording;
use tessera::job::slice_worker::{ChildSlices, serve_command_slice};
use tessera::media::encode::EncodeSettings;
use tessera::media::encoders::CRF_RANGE;
use tessera::outputs::{AudioFormat, HardwarePreference, IndividualKind, OutputSet, TrackFilter, VideoCodec};
use tessera::render::{CancelFlag, Parallel, RenderInput, RenderRequest, RenderSummary, render, render_recording};

use super::interrupt::guard;
use super::parse_size;
use super::progress::{ProgressReporter, peak_rss_mib};

#[derive(Args)]
pub struct CompositeArgs {
    #[command(flatten)]
    input: super::RawInput,
    /// Directory for the output files (created if missing).
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    staging: super::layout_cmd::StagingArgs,
    /// Output size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    size: (u32, u32),
    /// Output frames per second.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Video codec: h264, h265 or av1 (MP4 with AAC), vp8 or vp9 (WebM with Opus).
    #[arg(long, default_value = "h264")]
    codec: VideoCodec,
    /// Hardware encoder: auto (when one works here), require, off.
    #[arg(long, default_value = "auto")]
    hardware: HardwarePreference,
    /// Encoder speed preset (x264 names: ultrafast ... veryslow).
    #[arg(long, default_value = "veryfast")]
    preset: String,
    /// Video bitrate in kbit/s; constant quality --crf when absent.
    #[arg(long)]
    bitrate_kbps: Option<u32>,
    /// Constant quality on x264's scale, 1-51 (lower is better; 0, lossless, is not offered).
    #[arg(long, default_value_t = 23, value_parser = crf_in_range)]
    crf: u32,
    /// Seconds between keyframes.
    #[arg(long, default_value_t = 2.0)]
    keyframe_interval_s: f64,
    /// Audio bitrate in kbit/s.
    #[arg(long, default_value_t = 128)]
    audio_bitrate_kbps: u32,
    /// Also write the mix alone in these formats: mp3, m4a, ogg, mkv, mka, webm, weba.
    #[arg(long, value_delimiter = ',')]
    audio_only: Vec<AudioFormat>,
    /// Also write individual files: audio_only, video_only, audio_video,
    /// screenshare_audio_only, screenshare_video_only, screenshare_audio_video.
    #[arg(long, value_delimiter = ',')]
    individual: Vec<IndividualKind>,
    /// Individual files cover the whole call instead of the participant's time in it.
    #[arg(long)]
    align_to_call: bool,
    /// Individual files with video re-encoded in this codec (h264, h265, av1: MP4; vp8, vp9:
    /// WebM) where the sender used another; without it they are remuxed to Matroska.
    #[arg(long)]
    individual_codec: Option<VideoCodec>,
    /// Individual files without video re-encoded in this format (mp3, m4a, ogg, ...); without
    /// it they are remuxed (Opus in Matroska).
    #[arg(long)]
    individual_audio_format: Option<AudioFormat>,
    /// Skip the composite video (write only --audio-only and --individual outputs).
    #[arg(long)]
    no_video: bool,
    /// Render the composite video in this many slices at once, each by a process of its own,
    /// cut on keyframes and joined without re-encoding (MP4 codecs; the mix is encoded once).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    parallelism: u32,
    /// Internal: render one slice, its order on stdin (started by --parallelism).
    #[arg(long, hide = true)]
    slice_worker: bool,
}

pub fn composite(args: CompositeArgs) -> anyhow::Result<()> {
    args.input.init_logging();
    if !(args.keyframe_interval_s.is_finite() && args.keyframe_interval_s > 0.0) {
        anyhow::bail!(
            "invalid --keyframe-interval-s `{}`: must be a positive number of seconds",
            args.keyframe_interval_s
        );
    }
    let mut encode = EncodeSettings::new(args.size.0, args.size.1, args.fps);
    encode.codec = args.codec;
    encode.hardware = args.hardware;
    encode.quality.preset = args.preset;
    encode.quality.bitrate_kbps = args.bitrate_kbps;
    encode.quality.crf = args.crf;
    encode.quality.keyframe_interval_frames = (args.keyframe_interval_s * f64::from(args.fps)).round().max(1.0) as u32;
    encode.audio_bitrate_kbps = args.audio_bitrate_kbps;
    let outputs = OutputSet {
        composite_video: (!args.no_video).then_some(args.codec),
        composite_audio: args.audio_only,
        individual: args.individual,
        align_to_call: args.align_to_call,
        individual_video_codec: args.individual_codec,
        individual_audio_format: args.individual_audio_format,
        ..OutputSet::default()
    };
    let request_in = |input: PathBuf, work_dir: &std::path::Path| -> anyhow::Result<RenderRequest> {
        Ok(RenderRequest {
            input: RenderInput::Archive(input),
            output_dir: args.output.clone(),
            work_dir: work_dir.to_path_buf(),
            staging: args.staging.staging()?,
            encode: encode.clone(),
            outputs: outputs.clone(),
            filter: TrackFilter::default(),
            cancel: CancelFlag::default(),
            stall_timeout_s: args.input.stall_timeout_s,
            max_call_span_h: args.input.max_call_span_h,
            on_file: None,
            parallel: None,
        })
    };
    if args.slice_worker {
        // The parent opened the recording (extracted, downloaded): the slice reads it there.
        return Ok(serve_command_slice(|order| {
            let input = order.recording_dir.clone().ok_or("a slice order without the recording's directory")?;
            request_in(input, &std::env::temp_dir()).map_err(|e| format!("{e:#}"))
        })?);
    }
    let guarded = guard(Some(&args.output))?;
    let input = args.input.path(guarded.work_dir.path(), &guarded.cancel)?;
    let mut request = request_in(input, guarded.work_dir.path())?;
    request.cancel = guarded.cancel.clone();
    if args.parallelism > 1 {
        let exe = std::env::current_exe().context("finding this program to start slice workers")?;
        let mut worker_args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        worker_args.push("--slice-worker".into());
        request.parallel = Some(Parallel {
            workers: args.parallelism,
            slices: std::sync::Arc::new(ChildSlices::for_command(exe, worker_args)),
        });
    }
    let summary = run(&request, None)?;
    let peak = peak_rss_mib().map(|m| format!(", peak RSS {m} MiB")).unwrap_or_default();
    let engine = [summary.encoder.clone(), summary.adapter.clone()].into_iter().flatten().collect::<Vec<_>>();
    println!(
        "rendered {:.1} s call, {} participants, in {:.1} s ({:.2}x real time{}{peak}) -> {}",
        summary.duration_ms / 1000.0,
        summary.participants,
        summary.elapsed_s,
        summary.speed(),
        engine.iter().map(|e| format!(", {e}")).collect::<String>(),
        summary.output_dir.display()
    );
    print_files(&summary);
    Ok(())
}

/// Runs a render with progress on stderr, on `recording` when it is already open.
pub fn run(request: &RenderRequest, recording: Option<&Recording>) -> anyhow::Result<RenderSummary> {
    let mut reporter = ProgressReporter::new();
    let summary = match recording {
        Some(recording) => render_recording(request, recording, |p| reporter.update(p)),
        None => render(request, |p| reporter.update(p)),
    };
    reporter.finish();
    Ok(summary?)
}

/// One line per file written, on stdout.
pub fn print_files(summary: &RenderSummary) {
    for output in &summary.outputs {
        println!(
            "  {} ({}, {:.1} s, {} bytes)",
            output.file,
            output.kind,
            output.duration_ms / 1000.0,
            output.size_bytes
        );
    }
}

/// `--crf`: a number in [`CRF_RANGE`].
fn crf_in_range(text: &str) -> Result<u32, String> {
    let crf: u32 = text.trim().parse().map_err(|_| format!("`{text}` is not a whole number"))?;
    if CRF_RANGE.contains(&crf) {
        return Ok(crf);
    }
    let (low, high) = (CRF_RANGE.start(), CRF_RANGE.end());
    Err(format!("{crf} is outside {low}-{high} (0, lossless, is not offered)"))
}
