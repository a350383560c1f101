//! The `tessera` command line.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::job_cmd::{RenderArgs, render_job};
use cli::layout_cmd::{LayoutCommand, run_layout};
use cli::list_tracks::{ListTracksArgs, list_tracks};
use cli::push_cmd::{PushArgs, push};
use cli::render_cmd::{CompositeArgs, composite};
use cli::serve_cmd::{ServeArgs, serve};
use cli::stream::{
    ExtractAudioArgs, ExtractVideoArgs, MixAudioArgs, MuxAvArgs, ProcessAllArgs, extract_audio, extract_video,
    mix_audio, mux_av, process_all,
};
use cli::synth_cmd::{SynthArgs, run_synth};

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
    /// Run a render job spec (a CreateRenderJobRequest in JSON) without a server.
    Render(RenderArgs),
    /// Run the gRPC render service (RenderService, health, reflection, metrics).
    Serve(ServeArgs),
    /// Push a raw recording into a new live job on a server, at real-time pace, then stop it.
    Push(PushArgs),
    /// Write a synthetic raw recording with known content (colours, flashes, tones, beeps).
    Synth(SynthArgs),
    /// Work with layouts (preview).
    Layout {
        #[command(subcommand)]
        command: LayoutCommand,
    },
    /// The render process of one job of `tessera serve` (its work order on stdin).
    #[command(hide = true)]
    JobWorker,
}

#[derive(Subcommand)]
enum RawCommand {
    /// Render the composite video (grid, speaker, screenshare or another layout; mixed audio),
    /// and optionally the mix alone and individual files.
    Composite(CompositeArgs),
    /// List the recording's tracks (table, json, users, sessions, tracks, completion).
    ListTracks(ListTracksArgs),
    /// Write each audio track as its own file (remuxed, gaps filled with silence).
    ExtractAudio(ExtractAudioArgs),
    /// Write each video track as its own file (remuxed: original codec and resolution).
    ExtractVideo(ExtractVideoArgs),
    /// Write each session's audio and video together in one file.
    MuxAv(MuxAvArgs),
    /// Mix every audio track into one file on the call timeline.
    MixAudio(MixAudioArgs),
    /// extract-audio, extract-video, mix-audio (without screenshare audio) and mux-av at once.
    ProcessAll(ProcessAllArgs),
}

fn main() -> ExitCode {
    // Both rustls providers are linked (ring for ours, aws-lc-rs through the AWS SDK): ours is
    // named once for every TLS user of the process (the gRPC server, webhooks, sources).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Raw { command } => match command {
            RawCommand::Composite(args) => composite(args),
            RawCommand::ListTracks(args) => list_tracks(args),
            RawCommand::ExtractAudio(args) => extract_audio(args),
            RawCommand::ExtractVideo(args) => extract_video(args),
            RawCommand::MuxAv(args) => mux_av(args),
            RawCommand::MixAudio(args) => mix_audio(args),
            RawCommand::ProcessAll(args) => process_all(args),
        },
        Command::Render(args) => render_job(args),
        Command::Serve(args) => serve(args),
        Command::Push(args) => {
            tessera::telemetry::init("warn");
            push(&args)
        }
        Command::Layout { command } => run_layout(command),
        Command::JobWorker => {
            tessera::telemetry::init_json("info");
            tessera::job::worker::serve_order().map_err(anyhow::Error::from)
        }
        Command::Synth(args) => {
            tessera::telemetry::init("warn");
            run_synth(args)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) if let Some((number, name)) = cli::interrupt::received() => {
            eprintln!("interrupted by {name}: partial files removed");
            ExitCode::from(u8::try_from(128 + number).unwrap_or(1))
        }
        Err(err) => {
            // Our error messages already carry their causes.
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
