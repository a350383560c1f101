//! The `tessera` command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tessera::ingest::sdp::Codec;
use tessera::media::encode::EncodeSettings;
use tessera::render::{CompositeRequest, Progress, render_composite};
use tessera::synth::plan::RtcpMode;
use tessera::synth::{NetworkSpec, SynthAction, SynthEvent, SynthSpec, synth};

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
    #[command(flatten)]
    network: NetworkArgs,
    /// Mutes, rejoins, leaves, rotations and clock drift, e.g. `alice:mute-video:2000-3500`,
    /// `bob:mute-audio:2000-3500`, `carol:rejoin:3000-4500`, `dave:leave:5000`,
    /// `alice:rotate:3000`, `bob:drift:100` (ppm). Repeatable.
    #[arg(long = "event", value_parser = parse_event)]
    events: Vec<SynthEvent>,
    /// RTCP fields in the timing metadata: consistent, absent, zero, inconsistent, ntp-epoch.
    #[arg(long, default_value = "consistent", value_parser = parse_rtcp)]
    rtcp: RtcpMode,
    /// Participants talk only around their beeps, sent with Opus DTX.
    #[arg(long)]
    dtx: bool,
    /// Video segments start 500 ms into a group of pictures (first keyframe 1.5 s in).
    #[arg(long)]
    start_mid_gop: bool,
}

/// What the network does to every synthetic track.
#[derive(Args)]
struct NetworkArgs {
    /// Packets lost, percent.
    #[arg(long, default_value_t = 0.0)]
    loss_pct: f64,
    /// Longest burst of consecutive lost packets.
    #[arg(long, default_value_t = 1)]
    loss_burst: u32,
    /// Packets arriving late, percent, by up to --reorder-depth packets.
    #[arg(long, default_value_t = 0.0)]
    reorder_pct: f64,
    #[arg(long, default_value_t = 10)]
    reorder_depth: u32,
    /// Packets arriving twice, percent.
    #[arg(long, default_value_t = 0.0)]
    duplicate_pct: f64,
    /// Lost packets resent as RTX, percent of them (adds RTX streams to the SDPs).
    #[arg(long)]
    rtx_pct: Option<f64>,
    /// Audio sent as RED with one redundant block.
    #[arg(long)]
    red: bool,
    /// ULPFEC packets beside the video.
    #[arg(long)]
    fec: bool,
    /// Call time (ms) at which every sender restarts with a new SSRC.
    #[arg(long)]
    ssrc_change_ms: Option<u64>,
    /// Call time (ms) at which every sender's timestamps jump 10 minutes ahead.
    #[arg(long)]
    timestamp_jump_ms: Option<u64>,
}

fn parse_rtcp(text: &str) -> Result<RtcpMode, String> {
    Ok(match text {
        "consistent" => RtcpMode::Consistent,
        "absent" => RtcpMode::Absent,
        "zero" => RtcpMode::Zero,
        "inconsistent" => RtcpMode::Inconsistent,
        "ntp-epoch" => RtcpMode::NtpEpoch,
        other => return Err(format!("`{other}` is not consistent, absent, zero, inconsistent or ntp-epoch")),
    })
}

/// `NAME:ACTION[:ARG]`.
fn parse_event(text: &str) -> Result<SynthEvent, String> {
    let mut parts = text.splitn(3, ':');
    let (name, action, arg) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let bad = |why: &str| format!("event `{text}`: {why}");
    let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad(&format!("`{s}` is not a number of ms")));
    let range = || -> Result<(u64, u64), String> {
        let (a, b) = arg.split_once('-').ok_or_else(|| bad("expected FROM_MS-TO_MS"))?;
        let (a, b) = (number(a)?, number(b)?);
        if a >= b {
            return Err(bad("the range ends before it starts"));
        }
        Ok((a, b))
    };
    let action = match action {
        "mute-video" => range().map(|(from_ms, to_ms)| SynthAction::MuteVideo { from_ms, to_ms })?,
        "mute-audio" => range().map(|(from_ms, to_ms)| SynthAction::MuteAudio { from_ms, to_ms })?,
        "rejoin" => range().map(|(leave_ms, rejoin_ms)| SynthAction::Rejoin { leave_ms, rejoin_ms })?,
        "leave" => SynthAction::Leave { at_ms: number(arg)? },
        "rotate" => SynthAction::Rotate { at_ms: number(arg)? },
        "drift" => SynthAction::Drift {
            ppm: arg
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|p| p.abs() <= 1000.0)
                .ok_or_else(|| bad("drift must be -1000..=1000 ppm"))?,
        },
        other => {
            return Err(bad(&format!(
                "unknown action `{other}` (mute-video, mute-audio, rejoin, leave, rotate, drift)"
            )));
        }
    };
    if name.is_empty() {
        return Err(bad("no participant name"));
    }
    Ok(SynthEvent { participant: name.to_owned(), action })
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
        network: NetworkSpec {
            loss_pct: args.network.loss_pct,
            burst_max_packets: args.network.loss_burst,
            reorder_pct: args.network.reorder_pct,
            reorder_depth_packets: args.network.reorder_depth,
            duplicate_pct: args.network.duplicate_pct,
            rtx_recover_pct: args.network.rtx_pct,
            red: args.network.red,
            fec: args.network.fec,
            ssrc_change_at_ms: args.network.ssrc_change_ms,
            timestamp_jump_at_ms: args.network.timestamp_jump_ms,
        },
        rtcp: args.rtcp,
        dtx: args.dtx,
        start_mid_gop: args.start_mid_gop,
        events: args.events,
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
