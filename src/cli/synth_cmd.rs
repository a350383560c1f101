//! `tessera synth`: writes a synthetic raw recording with known content.

use std::path::PathBuf;

use clap::Args;
use tessera::ingest::sdp::Codec;
use tessera::synth::plan::RtcpMode;
use tessera::synth::{NetworkSpec, SynthEvent, SynthSpec, TalkTurn, synth};

use super::{parse_codec, parse_size};

fn parse_event(text: &str) -> Result<SynthEvent, String> {
    text.parse::<SynthEvent>()
}

fn parse_talk(text: &str) -> Result<TalkTurn, String> {
    text.parse::<TalkTurn>()
}

#[derive(Args)]
pub struct SynthArgs {
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
    /// `alice:rotate:3000`, `bob:drift:100` (ppm), `carol:audio-only`,
    /// `dave:screenshare:1000-2500`, `carol:no-rtcp`, `alice:talk:0-3000`, `bob:cough:1500`
    /// (a 200 ms burst). Repeatable.
    #[arg(long = "event", value_parser = parse_event)]
    events: Vec<SynthEvent>,
    /// A talk turn, NAME:FROM_MS-TO_MS, e.g. `alice:0-3000`. Repeatable. With any turn, every
    /// microphone is near-silent (-50 dBFS) outside its participant's turns and talks during
    /// them.
    #[arg(long = "talk", value_parser = parse_talk)]
    talk: Vec<TalkTurn>,
    /// Audio packets carry RFC 6464 audio levels (a header extension mapped in the SDPs).
    #[arg(long)]
    audio_level_ext: bool,
    /// RTCP fields in the timing metadata: consistent, absent, zero, inconsistent, ntp-epoch.
    #[arg(long, default_value = "consistent", value_parser = parse_rtcp)]
    rtcp: RtcpMode,
    /// Participants talk only around their beeps, sent with Opus DTX.
    #[arg(long)]
    dtx: bool,
    /// Video segments start 500 ms into a group of pictures (first keyframe 1.5 s in).
    #[arg(long)]
    start_mid_gop: bool,
    /// Every condition of real recordings at once, on top of the other options: recorders
    /// that joined mid-GOP, a 60 ms path with 12 ms of jitter, 2% audio loss in bursts, DTX,
    /// drifting senders (alice +300 ppm, bob -150 ppm) and one sender without RTCP (bob).
    #[arg(long)]
    real_world: bool,
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
    /// Loss hits audio only.
    #[arg(long)]
    loss_audio_only: bool,
    /// Every packet reaches the recorder this long after its capture...
    #[arg(long, default_value_t = 0)]
    delay_ms: u32,
    /// ...plus a random 0 to this many ms (packets stay in order).
    #[arg(long, default_value_t = 0)]
    jitter_ms: u32,
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

pub fn run_synth(args: SynthArgs) -> anyhow::Result<()> {
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
            loss_audio_only: args.network.loss_audio_only,
            delay_ms: args.network.delay_ms,
            jitter_ms: args.network.jitter_ms,
        },
        rtcp: args.rtcp,
        dtx: args.dtx,
        start_mid_gop: args.start_mid_gop,
        events: args.events,
        talk: args.talk,
        audio_level_ext: args.audio_level_ext,
        ..SynthSpec::default()
    };
    let spec = if args.real_world { spec.real_world() } else { spec };
    let out = synth(&spec, &args.output)?;
    println!(
        "wrote a {:.1} s call of {} participants ({}) to {}",
        spec.duration_ms as f64 / 1000.0,
        out.plan.participants.len(),
        out.plan
            .participants
            .iter()
            .map(|p| {
                let video = if p.audio_only { "audio only" } else { p.video_codec.mime_type() };
                format!("{}: {video}", p.participant_id)
            })
            .collect::<Vec<_>>()
            .join(", "),
        out.path.display()
    );
    Ok(())
}
