//! Individual files in another codec than the sender's: outputs of the composite pass, fed by
//! the same decode as the composite (a layout of one tile at the sender's picture size, the mix
//! of the file's audio). Holes become black frames and silence; a picture that changes size or
//! turns portrait is fitted into the frame.

use std::path::Path;

use super::composite::{frame_range, mix_limiter};
use super::individual::{WrittenIndividual, WrittenStream, window};
use super::pass::OutputResult;
use super::pass_output::{PassOutput, VideoOut, Waiting};
use super::plan::{RenderPlan, TrackPlan, Visual};
use super::stage::Stage;
use super::{RenderError, RenderRequest};
use crate::ingest::TrackKind;
use crate::layout::Layout;
use crate::media::encode::{AudioFileEncoder, EncodeSettings};
use crate::outputs::individual::IndividualFile;
use crate::outputs::{AudioFormat, VideoCodec};

/// One participant filling the frame, black where there is no picture.
const SINGLE_LAYOUT: &str = r##"
name = "single"
background = "#000000"

[[regions]]
name = "participant"
x = 0.0
y = 0.0
width = 1.0
height = 1.0
select = "all"
arrange = "grid"
fit = "contain"
gap = 0.0
max_participants = 1

[regions.tile]
placeholder = "#000000"
corner_radius = 0.0
highlight = "none"
label = false
avatar = false
"##;

/// How an individual file is transcoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transcode {
    /// Video (and its audio) in this codec: MP4 with AAC, or WebM with Opus.
    Video(VideoCodec),
    /// Audio alone in this format.
    Audio(AudioFormat),
}

impl Transcode {
    pub fn extension(self) -> &'static str {
        match self {
            Transcode::Video(codec) => codec.extension(),
            Transcode::Audio(format) => format.extension(),
        }
    }
}

/// What a file of these tracks becomes: `None` to remux it (the codec does not change).
pub fn choose(
    tracks: &[&TrackPlan],
    video_codec: Option<VideoCodec>,
    audio_format: Option<AudioFormat>,
) -> Option<Transcode> {
    let video: Vec<&&TrackPlan> = tracks.iter().filter(|t| t.kind == TrackKind::Video).collect();
    if video.is_empty() {
        return audio_format.map(Transcode::Audio);
    }
    let codec = video_codec?;
    let unchanged = video
        .iter()
        .all(|t| t.segments.iter().all(|s| s.spec.codec.encoding_name().eq_ignore_ascii_case(codec.as_str())));
    (!unchanged).then_some(Transcode::Video(codec))
}

/// The output of the pass that writes `file` to `path`, encoded as `how`: one tile of the
/// file's pictures at the sender's size (learned from its first picture), the mix of the
/// file's audio, over the file's window.
pub fn individual_output(
    plan: &RenderPlan,
    file: &IndividualFile,
    request: &RenderRequest,
    how: Transcode,
    path: &Path,
) -> Result<PassOutput, RenderError> {
    let window_ms = window(plan, file, request.outputs.align_to_call);
    let (first_frame, end_frame) = frame_range(window_ms, request.encode.fps);
    let audio_tracks: Vec<usize> = file
        .tracks
        .iter()
        .copied()
        .filter(|&i| plan.tracks.get(i).is_some_and(|t| t.kind == TrackKind::Audio))
        .collect();
    let with_audio = !audio_tracks.is_empty();
    let single =
        Single { frames: (first_frame, end_frame), window_ms, visuals: plan.visuals_of(&file.tracks), audio_tracks };
    single_output(single, &request.encode, how, with_audio, path)
}

/// What a file of one participant shows and hears, over which frames of the pass.
pub struct Single {
    pub frames: (u64, u64),
    pub window_ms: (f64, f64),
    pub visuals: Vec<Visual>,
    pub audio_tracks: Vec<usize>,
}

/// The output of the pass that writes `single` to `path`, encoded as `how` (with an audio
/// stream, for video, when `with_audio`).
pub fn single_output(
    single: Single,
    settings: &EncodeSettings,
    how: Transcode,
    with_audio: bool,
    path: &Path,
) -> Result<PassOutput, RenderError> {
    let (video, audio_files) = match how {
        Transcode::Video(codec) => {
            let settings = EncodeSettings { codec, ..settings.clone() };
            let waiting =
                Waiting { path: path.to_path_buf(), settings, with_audio, ticks: 0, backlog: Default::default() };
            (VideoOut::Waiting(Box::new(waiting)), Vec::new())
        }
        Transcode::Audio(format) => {
            (VideoOut::None, vec![AudioFileEncoder::start(path, format, settings.audio_bitrate_kbps)?])
        }
    };
    Ok(PassOutput {
        first_frame: single.frames.0,
        warm_from: single.frames.0,
        end_frame: single.frames.1,
        window_ms: single.window_ms,
        visuals: single.visuals,
        stage: Stage::single(Layout::parse("single", SINGLE_LAYOUT)?)?,
        audio_tracks: single.audio_tracks,
        limiter: mix_limiter(),
        video,
        audio_files,
        fps: settings.fps,
        encoder: None,
        adapter: None,
        compose_cpu_s: 0.0,
    })
}

/// What the pass wrote for a file of `tracks` (track id and kind, in the file's order),
/// encoded as `how`.
pub fn written<'a>(
    tracks: impl Iterator<Item = (&'a str, TrackKind)>,
    how: Transcode,
    result: OutputResult,
) -> WrittenIndividual {
    let (video_codec, audio_codec) = match how {
        Transcode::Video(codec) => (Some(codec), if codec.webm() { "opus" } else { "aac" }),
        Transcode::Audio(format) => (None, format.codec_name()),
    };
    let streams = tracks
        .filter(|(_, kind)| video_codec.is_some() || *kind == TrackKind::Audio)
        .map(|(track_id, kind)| WrittenStream {
            track_id: track_id.to_owned(),
            kind,
            codec: match (kind, video_codec) {
                (TrackKind::Video, Some(codec)) => codec.codec_name().to_owned(),
                _ => audio_codec.to_owned(),
            },
            end_ms: result.duration_ms,
            silence_frames: 0,
            frames: result.frames,
        })
        .collect();
    WrittenIndividual { offset_ms: result.offset_ms, duration_ms: result.duration_ms, streams, encoder: result.encoder }
}
