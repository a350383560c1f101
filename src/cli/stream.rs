//! The commands of `stream-cli video raw-recording`, with its flags and file names, so users'
//! scripts keep working: `extract-audio`, `extract-video`, `mux-av`, `mix-audio` and
//! `process-all` (`list-tracks` lives in `list_tracks`). Unlike the original: any archive
//! type, deterministic order, filters everywhere (process-all and mix-audio honour them),
//! `--media` validated, `mix-audio --format`, no name collisions, nothing written into the
//! input, no temporary files left behind, a non-zero exit when any file fails, and individual
//! files padded to the call timeline on request (`--align-to-call`).

use std::path::PathBuf;

use clap::{ArgAction, Args};
use tessera::ingest::Recording;
use tessera::media::encode::EncodeSettings;
use tessera::outputs::{AudioFormat, GapFill, IndividualKind, OutputSet, TrackFilter};
use tessera::render::staging::Staging;
use tessera::render::{RenderInput, RenderRequest};

use super::RawInput;
use super::interrupt::guard;
use super::render_cmd::{print_files, run};

/// `--user-id`, `--session-id`, `--track-id`: at most one.
#[derive(Args, Debug, Clone)]
pub struct Filters {
    /// Only this user's tracks.
    #[arg(long)]
    user_id: Option<String>,
    /// Only this session's tracks.
    #[arg(long)]
    session_id: Option<String>,
    /// Only this track.
    #[arg(long)]
    track_id: Option<String>,
}

impl Filters {
    /// The filter, checked against the recording as `stream-cli` checks it.
    fn resolve(&self, recording: &Recording) -> anyhow::Result<TrackFilter> {
        let given = [&self.user_id, &self.session_id, &self.track_id].iter().filter(|f| f.is_some()).count();
        if given > 1 {
            anyhow::bail!("only one filter can be specified at a time");
        }
        let known = |what: &str, value: &str, found: bool, format: &str| -> anyhow::Result<()> {
            if found {
                Ok(())
            } else {
                anyhow::bail!(
                    "{what} `{value}` not found in recording. Use 'list-tracks --format {format}' to see the {format}"
                )
            }
        };
        if let Some(user) = &self.user_id {
            known("user id", user, recording.participants.iter().any(|p| &p.participant_id == user), "users")?;
        }
        if let Some(session) = &self.session_id {
            let found = recording.participants.iter().any(|p| &p.user_session_id == session);
            known("session id", session, found, "sessions")?;
        }
        if let Some(track) = &self.track_id {
            known("track id", track, recording.tracks().any(|(_, t)| &t.track_id == track), "tracks")?;
        }
        Ok(TrackFilter {
            participant_id: self.user_id.clone(),
            user_session_id: self.session_id.clone(),
            track_id: self.track_id.clone(),
        })
    }
}

/// Flags every processing command shares.
#[derive(Args, Debug, Clone)]
pub struct Common {
    #[command(flatten)]
    input: RawInput,
    /// Output directory (created if missing).
    #[arg(long)]
    output: PathBuf,
    #[command(flatten)]
    filters: Filters,
    /// Pad individual files to the call timeline: they start at the call start and end at its end.
    #[arg(long)]
    align_to_call: bool,
}

/// `--fill-gaps[=true|false]`, default true, as cobra's boolean flags take it.
#[derive(Args, Debug, Clone)]
pub struct FillGaps {
    /// Fill gaps between segments: silence (audio), a black frame (video).
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    fill_gaps: bool,
}

#[derive(Args, Debug)]
pub struct ExtractAudioArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    fill: FillGaps,
    /// Fill DTX silences and lost packets inside segments with silence.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    fix_dtx: bool,
}

#[derive(Args, Debug)]
pub struct ExtractVideoArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    fill: FillGaps,
}

#[derive(Args, Debug)]
pub struct MuxAvArgs {
    #[command(flatten)]
    common: Common,
    /// Which media to pair: user (camera + microphone), display (screenshare), both.
    #[arg(long, default_value = "both", value_parser = ["user", "display", "both"])]
    media: String,
}

#[derive(Args, Debug)]
pub struct MixAudioArgs {
    #[command(flatten)]
    common: Common,
    /// Container of the mix: mkv, mka, webm, weba (Opus), ogg (Opus), mp3, m4a (AAC).
    #[arg(long, default_value = "mkv")]
    format: AudioFormat,
}

#[derive(Args, Debug)]
pub struct ProcessAllArgs {
    #[command(flatten)]
    common: Common,
}

/// Runs one command's outputs over the filtered recording.
fn process(common: &Common, mut outputs: OutputSet) -> anyhow::Result<()> {
    common.input.init_logging();
    let guarded = guard(Some(&common.output))?;
    let input = common.input.path(guarded.work_dir.path(), &guarded.cancel)?;
    let recording = Recording::open_in(&input, guarded.work_dir.path())?;
    let filter = common.filters.resolve(&recording)?;
    outputs.align_to_call = common.align_to_call;
    let request = RenderRequest {
        input: RenderInput::Archive(input),
        output_dir: common.output.clone(),
        work_dir: guarded.work_dir.path().to_path_buf(),
        staging: Staging::default(),
        encode: EncodeSettings::new(1280, 720, 30),
        outputs,
        filter,
        cancel: guarded.cancel.clone(),
        stall_timeout_s: common.input.stall_timeout_s,
        max_call_span_h: common.input.max_call_span_h,
        on_file: None,
        parallel: None,
    };
    let summary = run(&request, Some(&recording))?;
    println!("wrote {} files to {}", summary.outputs.len(), summary.output_dir.display());
    print_files(&summary);
    Ok(())
}

fn individual(kinds: &[IndividualKind], gap_fill: GapFill) -> OutputSet {
    OutputSet { individual: kinds.to_vec(), gap_fill, ..OutputSet::default() }
}

pub fn extract_audio(args: ExtractAudioArgs) -> anyhow::Result<()> {
    let fill = GapFill { between_segments: args.fill.fill_gaps, inside_segments: args.fix_dtx };
    process(&args.common, individual(&[IndividualKind::AudioOnly, IndividualKind::ScreenshareAudioOnly], fill))
}

pub fn extract_video(args: ExtractVideoArgs) -> anyhow::Result<()> {
    let fill = GapFill { between_segments: args.fill.fill_gaps, inside_segments: true };
    process(&args.common, individual(&[IndividualKind::VideoOnly, IndividualKind::ScreenshareVideoOnly], fill))
}

pub fn mux_av(args: MuxAvArgs) -> anyhow::Result<()> {
    let kinds: &[IndividualKind] = match args.media.as_str() {
        "user" => &[IndividualKind::AudioVideo],
        "display" => &[IndividualKind::ScreenshareAudioVideo],
        _ => &[IndividualKind::AudioVideo, IndividualKind::ScreenshareAudioVideo],
    };
    process(&args.common, individual(kinds, GapFill::default()))
}

pub fn mix_audio(args: MixAudioArgs) -> anyhow::Result<()> {
    process(&args.common, OutputSet { composite_audio: vec![args.format], ..OutputSet::default() })
}

/// Everything `stream-cli`'s process-all writes: every track alone, the mix of the camera
/// microphones, and every audio/video pair; honouring the filter.
pub fn process_all(args: ProcessAllArgs) -> anyhow::Result<()> {
    let outputs = OutputSet {
        composite_audio: vec![AudioFormat::Mkv],
        individual: IndividualKind::ALL.to_vec(),
        mix_without_screenshare_audio: true,
        ..OutputSet::default()
    };
    process(&args.common, outputs)
}
