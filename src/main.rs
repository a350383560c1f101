//! The `tessera` command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tessera::ingest::sdp::Codec;
use tessera::media::encode::EncodeSettings;
use tessera::render::{CompositeRequest, Progress, render_composite};
use tessera::synth::{SynthSpec, synth};

#[derive(Parser)]
#[command(name = "tessera", version, about = "Turns the media of a video call into finished recordings")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work on a Stream-style raw recording (.zip, .tar.gz or directory).
    Raw {
        #[command(subcommand)]
        command: RawCommand,
    },
    /// Write a synthetic raw recording with known content (colours, flashes, tones, beeps).
    Synth(SynthArgs),
}

#[derive(Subcommand)]
enum RawCommand {
    /// Render the composite video (grid layout, mixed audio) as MP4.
    Composite(CompositeArgs),
}

#[derive(Args)]
#[group(id = "input", required = true, multiple = false)]
struct InputArgs {
    /// A raw recording archive (.zip or .tar.gz).
    #[arg(long, group = "input")]
    input_file: Option<PathBuf>,
    /// A raw recording extracted into a directory.
    #[arg(long, group = "input")]
    input_dir: Option<PathBuf>,
}

#[derive(Args)]
struct CompositeArgs {
    #[command(flatten)]
    input: InputArgs,
    /// Directory for the output files (created if missing).
    #[arg(long)]
    output: PathBuf,
    /// Layout name.
    #[arg(long, default_value = "grid")]
    layout: String,
    /// Output size, WIDTHxHEIGHT.
    #[arg(long, default_value = "1920x1080", value_parser = parse_size)]
    size: (u32, u32),
    /// Output frames per second.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Encoder speed preset (x264 names: ultrafast ... veryslow).
    #[arg(long, default_value = "veryfast")]
    preset: String,
    /// Video bitrate in kbit/s; constant quality when absent.
    #[arg(long)]
    bitrate_kbps: Option<u32>,
}

#[derive(Args)]
struct SynthArgs {
    /// Output: a directory, or a file ending in .tar.gz or .zip.
    #[arg(long)]
    output: PathBuf,
    #[arg(long, default_value_t = 4)]
    participants: usize,
    /// Call length in seconds.
    #[arg(long, default_value_t = 10.0)]
    duration_s: f64,
    /// Video codec per participant, cycled: vp8, vp9, h264.
    #[arg(long, value_delimiter = ',', default_value = "vp8,h264", value_parser = parse_codec)]
    codecs: Vec<Codec>,
    /// Camera size, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x360", value_parser = parse_size)]
    size: (u32, u32),
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Participant i joins the call i times this many milliseconds after it starts.
    #[arg(long, default_value_t = 0)]
    join_stagger_ms: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(|| format!("`{text}` is not WIDTHxHEIGHT"))?;
    let parse = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("`{text}` is not WIDTHxHEIGHT"));
    Ok((parse(w)?, parse(h)?))
}

fn parse_codec(text: &str) -> Result<Codec, String> {
    match text.to_ascii_lowercase().as_str() {
        "vp8" => Ok(Codec::Vp8),
        "vp9" => Ok(Codec::Vp9),
        "h264" => Ok(Codec::H264),
        other => Err(format!("unknown video codec `{other}` (expected vp8, vp9 or h264)")),
    }
}

fn main() -> ExitCode {
    tessera::telemetry::init("warn");
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Raw { command: RawCommand::Composite(args) } => composite(args),
        Command::Synth(args) => run_synth(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Our error messages already carry their causes.
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn composite(args: CompositeArgs) -> anyhow::Result<()> {
    let input = args
        .input
        .input_file
        .or(args.input.input_dir)
        .ok_or_else(|| anyhow::anyhow!("give --input-file or --input-dir"))?;
    let request = CompositeRequest {
        input,
        output_dir: args.output,
        layout: args.layout,
        encode: EncodeSettings {
            width: args.size.0,
            height: args.size.1,
            fps: args.fps,
            preset: args.preset,
            bitrate_kbps: args.bitrate_kbps,
            audio_bitrate_kbps: 128,
        },
    };
    let mut reporter = ProgressReporter::new();
    let summary = render_composite(&request, |p| reporter.update(p));
    reporter.finish();
    let summary = summary?;
    let peak = peak_rss_mib().map(|m| format!(", peak RSS {m} MiB")).unwrap_or_default();
    println!(
        "rendered {:.1} s call, {} participants, in {:.1} s ({:.2}x real time, {}, {}{peak}) -> {}",
        summary.duration_ms / 1000.0,
        summary.participants,
        summary.elapsed_s,
        summary.speed(),
        summary.encoder,
        summary.adapter,
        summary.output.display()
    );
    Ok(())
}

/// Peak resident memory of this process (Linux `VmHWM`), in MiB.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// A progress bar on a terminal; a plain line every 10 % otherwise.
struct ProgressReporter {
    bar: Option<indicatif::ProgressBar>,
    last_decile: u64,
}

impl ProgressReporter {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} frames (eta {eta})",
            ) {
                bar.set_style(style);
            }
            bar
        });
        ProgressReporter { bar, last_decile: 0 }
    }

    fn update(&mut self, p: Progress) {
        if let Some(bar) = &self.bar {
            bar.set_length(p.frames_total);
            bar.set_position(p.frames_done);
            return;
        }
        let decile = p.frames_done * 10 / p.frames_total.max(1);
        if decile > self.last_decile {
            self.last_decile = decile;
            eprintln!(
                "progress: {}% ({:.1} / {:.1} s of media)",
                decile * 10,
                p.media_done_ms / 1000.0,
                p.media_total_ms / 1000.0
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn run_synth(args: SynthArgs) -> anyhow::Result<()> {
    if !(args.duration_s.is_finite() && args.duration_s > 0.0) {
        anyhow::bail!("invalid --duration-s `{}`: must be a positive number of seconds", args.duration_s);
    }
    let spec = SynthSpec {
        participants: args.participants,
        duration_ms: (args.duration_s * 1000.0).round() as u64,
        video_codecs: args.codecs,
        width: args.size.0,
        height: args.size.1,
        fps: args.fps,
        join_stagger_ms: args.join_stagger_ms,
        seed: args.seed,
        ..SynthSpec::default()
    };
    let out = synth(&spec, &args.output)?;
    println!(
        "wrote a {:.1} s call of {} participants ({}) to {}",
        spec.duration_ms as f64 / 1000.0,
        out.plan.participants.len(),
        out.plan
            .participants
            .iter()
            .map(|p| format!("{}: {}", p.participant_id, p.video_codec.mime_type()))
            .collect::<Vec<_>>()
            .join(", "),
        out.path.display()
    );
    Ok(())
}
