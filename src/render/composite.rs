//! The composite as an output of the pass (the layout over every visual, the mix of every
//! mixed track, the composite video and each audio-only composite), and what every output
//! with video does per frame: who is on stage with which picture and how loud (the scene), the
//! layout's tiles for it, new pictures uploaded to the output's compositor.

use std::path::Path;

use super::pass_output::{PassOutput, RunningVideo, VideoOut, start_video};
use super::plan::{RenderPlan, Visual};
use super::slices::Slice;
use super::source::VideoFeed;
use super::stage::{Performer, Stage};
use super::{RenderError, RenderRequest};
use crate::audio::Limiter;
use crate::gpu::{self, OverlayCache, TileDraw};
use crate::ingest::TrackKind;
use crate::media::decode::{AUDIO_CHANNELS, AUDIO_RATE_HZ, VideoFrame};
use crate::media::encode::AudioFileEncoder;
use crate::outputs::AudioFormat;
use crate::timeline::CallTimeline;

/// The mix is limited to about -1 dBFS with an 80 ms release.
pub fn mix_limiter() -> Limiter {
    Limiter::new(0.891, 80.0, AUDIO_RATE_HZ, AUDIO_CHANNELS)
}

/// The frames `[first, end)` of the window `(from_ms, to_ms)` at `fps` (at least one).
pub fn frame_range((from_ms, to_ms): (f64, f64), fps: u32) -> (u64, u64) {
    let fps = f64::from(fps);
    let first = (from_ms.max(0.0) * fps / 1000.0).floor() as u64;
    let end = ((to_ms * fps / 1000.0).round() as u64).max(first + 1);
    (first, end)
}

/// The composite output over the whole call: `video` is the composite video's path and
/// whether it carries the mix, `audio` each audio-only composite.
pub fn composite_output(
    plan: &RenderPlan,
    request: &RenderRequest,
    video: Option<(&Path, bool)>,
    audio: &[(AudioFormat, &Path)],
) -> Result<PassOutput, RenderError> {
    let settings = &request.encode;
    let (mut encoder, mut adapter) = (None, None);
    let video = match video {
        Some((path, with_audio)) => {
            let (compositor, sink) = start_video(path, settings, with_audio)?;
            encoder = Some(sink.encoder.element.to_owned());
            adapter = Some(compositor.adapter_summary());
            let uploaded = vec![None; plan.visuals.len()];
            let overlays = OverlayCache::new()?;
            VideoOut::Running(Box::new(RunningVideo { compositor, encoder: sink, uploaded, overlays }))
        }
        None => VideoOut::None,
    };
    let audio_files = audio
        .iter()
        .map(|(format, path)| AudioFileEncoder::start(path, *format, settings.audio_bitrate_kbps))
        .collect::<Result<Vec<_>, _>>()?;
    let mix_screenshare = !request.outputs.mix_without_screenshare_audio;
    let audio_tracks = plan
        .tracks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.kind == TrackKind::Audio && (mix_screenshare || !t.screenshare))
        .map(|(i, _)| i)
        .collect();
    let window_ms = (0.0, plan.timeline.duration_ms);
    let (first_frame, end_frame) = frame_range(window_ms, settings.fps);
    Ok(PassOutput {
        first_frame,
        end_frame,
        warm_from: first_frame,
        window_ms,
        visuals: plan.visuals.clone(),
        stage: Stage::new(&request.staging)?,
        audio_tracks,
        limiter: mix_limiter(),
        video,
        audio_files,
        fps: settings.fps,
        encoder,
        adapter,
        compose_cpu_s: 0.0,
    })
}

/// One slice of the composite video (no sound) into `path`: frames `slice` of the composite,
/// followed from the composite's first frame (see `PassOutput::warm_from`).
pub fn slice_output(
    plan: &RenderPlan,
    request: &RenderRequest,
    path: &Path,
    slice: Slice,
) -> Result<PassOutput, RenderError> {
    let mut output = composite_output(plan, request, Some((path, false)), &[])?;
    let fps = request.encode.fps;
    output.first_frame = slice.first_frame.max(output.first_frame);
    output.end_frame = slice.end_frame.min(output.end_frame);
    output.window_ms =
        (CallTimeline::frame_time_ms(output.first_frame, fps), CallTimeline::frame_time_ms(output.end_frame, fps));
    Ok(output)
}

/// A visual on stage at a tick, and the track whose picture it shows (if any).
#[derive(Debug, Clone, Copy)]
pub struct Shown {
    /// Index into the output's visuals.
    pub visual: usize,
    pub track: Option<usize>,
}

/// The visuals in the call at `t_ms` and the track each shows: every video feed of an on-stage
/// visual is advanced to `t_ms`, the first with a picture is shown.
pub fn on_stage(visuals: &[Visual], t_ms: f64, video: &mut [Option<VideoFeed>]) -> Result<Vec<Shown>, RenderError> {
    let mut shown = Vec::new();
    for (index, visual) in visuals.iter().enumerate() {
        if !visual.span.contains(t_ms) {
            continue;
        }
        let mut track = None;
        for &t in &visual.video_tracks {
            if let Some(feed) = video.get_mut(t).and_then(Option::as_mut)
                && feed.advance(t_ms)?
                && track.is_none()
            {
                track = Some(t);
            }
        }
        shown.push(Shown { visual: index, track });
    }
    Ok(shown)
}

/// The pass's decoded pictures and levels, placed for one output at a time.
pub struct ScenePlacer<'a> {
    pub video: &'a mut [Option<VideoFeed>],
    /// Each track's level in this tick's interval.
    pub levels: &'a [f32],
    /// The composed frame (reused).
    pub nv12: &'a mut Vec<u8>,
}

impl ScenePlacer<'_> {
    fn frame(&self, shown: &Shown) -> Option<(&VideoFrame, u64)> {
        self.video.get(shown.track?)?.as_ref()?.frame()
    }

    /// The size of the picture `shown` shows, if any.
    pub fn picture_size(&self, shown: &Shown) -> Option<(u32, u32)> {
        self.frame(shown).map(|(f, _)| (f.width, f.height))
    }

    /// The performers of the visuals `shown`: their pictures' sizes and their loudness.
    fn performers<'v>(&self, visuals: &'v [Visual], shown: &[Shown]) -> Vec<Performer<'v>> {
        let mut performers = Vec::with_capacity(shown.len());
        for s in shown {
            let Some(visual) = visuals.get(s.visual) else { continue };
            let level = visual.audio_tracks.iter().filter_map(|&t| self.levels.get(t)).copied().fold(0.0, f32::max);
            performers.push(Performer {
                participant_id: &visual.participant_id,
                screenshare: visual.screenshare,
                source_id: s.visual as u64,
                picture: self.frame(s).map(|(f, _)| (f.width, f.height)),
                level,
                join_order: s.visual,
            });
        }
        performers
    }

    /// Gives the stage the performers at `t_ms` without drawing: a tick before an output's
    /// first written frame (see `PassOutput::warm_from`).
    pub fn rehearse(&self, visuals: &[Visual], stage: &mut Stage, t_ms: f64, shown: &[Shown], size: (u32, u32)) {
        let performers = self.performers(visuals, shown);
        stage.advance(t_ms, &performers, size.0, size.1);
    }

    /// The tiles of the output frame at `t_ms` and its background: new pictures uploaded, the
    /// performers given to the stage.
    pub fn draws(
        &self,
        visuals: &[Visual],
        stage: &mut Stage,
        t_ms: f64,
        shown: &[Shown],
        running: &mut RunningVideo,
    ) -> Result<(Vec<TileDraw>, [u8; 3]), RenderError> {
        for s in shown {
            if let Some((frame, generation)) = self.frame(s)
                && running.uploaded.get(s.visual).is_some_and(|u| *u != Some(generation))
            {
                running.compositor.upload(s.visual as u64, &i420(frame))?;
                running.uploaded[s.visual] = Some(generation);
            }
        }
        let performers = self.performers(visuals, shown);
        let (width, height) = running.compositor.output_size();
        let tiles = stage.advance(t_ms, &performers, width, height);
        let draws = stage.draws(t_ms, &tiles, &performers, &mut running.compositor, &mut running.overlays)?;
        Ok((draws, stage.background(t_ms).0))
    }
}

fn i420(frame: &VideoFrame) -> gpu::I420Frame<'_> {
    let plane = |i: usize| frame.data.get(frame.plane_offsets[i]..).unwrap_or(&[]);
    gpu::I420Frame {
        width: frame.width,
        height: frame.height,
        y: plane(0),
        y_stride: frame.plane_strides[0],
        u: plane(1),
        u_stride: frame.plane_strides[1],
        v: plane(2),
        v_stride: frame.plane_strides[2],
        matrix: if frame.bt709 { gpu::ColorMatrix::Bt709 } else { gpu::ColorMatrix::Bt601 },
    }
}
