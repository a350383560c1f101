//! Individual files in another codec than the sender's: the file's tracks are decoded on the
//! call clock and encoded again, through the same composite pass as the composite (a layout of
//! one tile at the sender's picture size, the mix of the file's audio). Holes become black
//! frames and silence; a picture that changes size or turns portrait is fitted into the frame.

use std::path::Path;

use super::composite;
use super::individual::{WrittenIndividual, WrittenStream, window};
use super::plan::{RenderPlan, TrackPlan};
use super::{RenderError, RenderRequest};
use crate::ingest::TrackKind;
use crate::layout::Layout;
use crate::media::decode::{Decoded, SegmentDecoder};
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
placeholder = "#000000"
"##;

/// Picture size used when no frame of the track can be decoded to learn it.
const FALLBACK_SIZE: (u32, u32) = (1280, 720);

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

/// The sender's picture size: the first decodable frame of the first video track, made even.
fn source_size(tracks: &[&TrackPlan]) -> (u32, u32) {
    let first_frame = tracks.iter().filter(|t| t.kind == TrackKind::Video).find_map(|track| {
        track.segments.iter().find_map(|segment| {
            let mut decoder = SegmentDecoder::start(&segment.spec, segment.packets().ok()?).ok()?;
            loop {
                match decoder.pull().ok()?? {
                    Decoded::Video(frame) => return Some((frame.width, frame.height)),
                    _ => continue,
                }
            }
        })
    });
    let (w, h) = first_frame.unwrap_or(FALLBACK_SIZE);
    (w.max(16).div_ceil(2) * 2, h.max(16).div_ceil(2) * 2)
}

/// Writes `file` to `path`, encoded as `how`.
pub fn transcode_individual(
    plan: &RenderPlan,
    file: &IndividualFile,
    request: &RenderRequest,
    how: Transcode,
    path: &Path,
) -> Result<WrittenIndividual, RenderError> {
    let (from_ms, to_ms) = window(plan, file, request.outputs.align_to_call);
    let sub = plan.subset(&file.tracks);
    let tracks: Vec<&TrackPlan> = sub.tracks.iter().collect();
    let mut request = request.clone();
    let (video_path, audio_targets, audio_codec) = match how {
        Transcode::Video(codec) => {
            let (width, height) = source_size(&tracks);
            request.encode.width = width;
            request.encode.height = height;
            request.encode.codec = codec;
            (Some(path), Vec::new(), if codec.webm() { "opus" } else { "aac" })
        }
        Transcode::Audio(format) => (None, vec![(format, path)], format.codec_name()),
    };
    let layout = Layout::parse("single", SINGLE_LAYOUT)?;
    let with_audio = tracks.iter().any(|t| t.kind == TrackKind::Audio);
    let video = video_path.map(|p| (p, with_audio));
    let result = composite::render(&sub, &layout, &request, (from_ms, to_ms), video, &audio_targets, &mut |_| {})?;
    let streams = sub
        .tracks
        .iter()
        .filter(|t| video_path.is_some() || t.kind == TrackKind::Audio)
        .map(|t| WrittenStream {
            track_id: t.track_id.clone(),
            kind: t.kind,
            codec: match t.kind {
                TrackKind::Audio => audio_codec.to_owned(),
                TrackKind::Video => request.encode.codec.codec_name().to_owned(),
            },
            end_ms: result.duration_ms,
            silence_frames: 0,
            frames: result.frames,
        })
        .collect();
    Ok(WrittenIndividual {
        offset_ms: (from_ms * f64::from(request.encode.fps) / 1000.0).floor() * 1000.0 / f64::from(request.encode.fps),
        duration_ms: result.duration_ms,
        streams,
        encoder: result.encoder,
    })
}
