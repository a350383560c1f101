//! The composite pass: one walk over the call clock that decodes every track once, composes
//! each output frame on the GPU (when a composite video is asked for), mixes the audio and
//! feeds the composite video and every audio-only composite from that one mix.

use std::path::Path;

use tracing::info_span;

use super::plan::RenderPlan;
use super::source::{AudioFeed, VideoFeed, audio_source, video_source};
use super::{Progress, RenderError, RenderRequest};
use crate::audio::{Limiter, MixBuffer, level};
use crate::gpu::{self, Compositor, TileDraw};
use crate::ingest::TrackKind;
use crate::layout::{Layout, OnStage, Scene, TileContent};
use crate::media::decode::{AUDIO_CHANNELS, AUDIO_RATE_HZ, VideoFrame};
use crate::media::encode::{AudioFileEncoder, CompositeEncoder};
use crate::media::encoders::pick_video_encoder;
use crate::outputs::AudioFormat;
use crate::timeline::CallTimeline;

/// What the composite pass wrote.
#[derive(Debug, Clone)]
pub struct CompositeResult {
    pub frames: u64,
    pub duration_ms: f64,
    /// The video encoder element, when a video was written.
    pub encoder: Option<String>,
    pub adapter: Option<String>,
}

/// The composite's sinks: the video (compositor + encoder), if any, and the audio files.
struct Sinks {
    video: Option<(Compositor, CompositeEncoder)>,
    audio: Vec<AudioFileEncoder>,
}

/// Renders the call-clock window `window_ms` of `plan` into the given (partial) paths:
/// `video` for the composite video (and whether it carries the mix), `audio` for each
/// audio-only format.
pub fn render(
    plan: &RenderPlan,
    layout: &Layout,
    request: &RenderRequest,
    window_ms: (f64, f64),
    video: Option<(&Path, bool)>,
    audio: &[(AudioFormat, &Path)],
    on_progress: &mut impl FnMut(Progress),
) -> Result<CompositeResult, RenderError> {
    let settings = &request.encode;
    let mut sinks = Sinks { video: None, audio: Vec::new() };
    let mut encoder = None;
    let mut adapter = None;
    if let Some((path, with_audio)) = video {
        let chosen = info_span!("probe_encoders").in_scope(|| pick_video_encoder(settings.codec, settings.hardware))?;
        encoder = Some(chosen.element.to_owned());
        let compositor = Compositor::new(settings.width, settings.height)?;
        adapter = Some(compositor.adapter_summary());
        sinks.video = Some((compositor, CompositeEncoder::start(path, chosen, settings, with_audio)?));
    }
    for (format, path) in audio {
        sinks.audio.push(AudioFileEncoder::start(path, *format, settings.audio_bitrate_kbps)?);
    }
    let frames = render_frames(plan, layout, request, window_ms, &mut sinks, on_progress)?;
    if let Some((_, sink)) = sinks.video {
        sink.finish()?;
    }
    for sink in sinks.audio {
        sink.finish()?;
    }
    Ok(CompositeResult { frames, duration_ms: frames as f64 * 1000.0 / f64::from(settings.fps), encoder, adapter })
}

fn render_frames(
    plan: &RenderPlan,
    layout: &Layout,
    request: &RenderRequest,
    (from_ms, to_ms): (f64, f64),
    sinks: &mut Sinks,
    on_progress: &mut impl FnMut(Progress),
) -> Result<u64, RenderError> {
    let settings = &request.encode;
    let mix_screenshare = !request.outputs.mix_without_screenshare_audio;
    let with_video = sinks.video.is_some();
    let mut video: Vec<Option<VideoFeed>> = plan
        .tracks
        .iter()
        .map(|t| (with_video && t.kind == TrackKind::Video).then(|| VideoFeed::new(video_source(t))))
        .collect();
    let mut audio: Vec<Option<AudioFeed>> = plan
        .tracks
        .iter()
        .map(|t| {
            (t.kind == TrackKind::Audio && (mix_screenshare || !t.screenshare))
                .then(|| AudioFeed::new(audio_source(t), AUDIO_CHANNELS))
        })
        .collect();
    let mut mix = MixBuffer::new(AUDIO_CHANNELS);
    let mut limiter = Limiter::new(0.891, 80.0, AUDIO_RATE_HZ, AUDIO_CHANNELS);
    let mut uploaded: Vec<Option<u64>> = vec![None; plan.visuals.len()];
    let mut levels = vec![0.0_f32; plan.tracks.len()];
    let mut pcm = Vec::new();
    let mut track_pcm = Vec::new();
    let mut nv12 = Vec::new();
    let fps = f64::from(settings.fps);
    let first_frame = (from_ms.max(0.0) * fps / 1000.0).floor() as u64;
    let end_frame = ((to_ms * fps / 1000.0).round() as u64).max(first_frame + 1);
    let frames_total = end_frame - first_frame;
    // Audio before the window is dropped (no track of a windowed plan plays there).
    let start_sample = first_frame * u64::from(AUDIO_RATE_HZ) / u64::from(settings.fps);
    for feed in audio.iter_mut().flatten() {
        feed.skip_to(start_sample)?;
    }
    mix.skip_to(start_sample);
    let (width, height) = (settings.width, settings.height);
    for n in first_frame..end_frame {
        request.cancel.check()?;
        // The mix for this frame's interval, and each track's level in it.
        let from = mix.read_position();
        let until = (n + 1) * u64::from(AUDIO_RATE_HZ) / u64::from(settings.fps);
        for (index, feed) in audio.iter_mut().enumerate() {
            let Some(feed) = feed else { continue };
            feed.take_until(until, &mut track_pcm)?;
            levels[index] = level::rms(&track_pcm);
            mix.add(from, &track_pcm);
        }
        let frames = usize::try_from(until - mix.read_position()).unwrap_or(0);
        mix.take(frames, &mut pcm);
        limiter.process(&mut pcm);

        if let Some((compositor, encoder)) = sinks.video.as_mut() {
            let t_ms = CallTimeline::frame_time_ms(n, settings.fps);
            let stage = Stage { plan, layout, canvas: (width, height), levels: &levels };
            let draws = stage.frame_draws(t_ms, &mut video, &mut uploaded, compositor)?;
            compositor.compose(&draws, layout.background.0, &mut nv12)?;
            encoder.push_video(std::mem::take(&mut nv12))?;
            encoder.push_audio(&pcm)?;
        }
        for sink in &mut sinks.audio {
            sink.push_audio(&pcm)?;
        }

        on_progress(Progress {
            phase: "composite",
            done: n + 1 - first_frame,
            total: frames_total,
            media_done_ms: CallTimeline::frame_time_ms(n + 1, settings.fps) - from_ms,
            media_total_ms: to_ms - from_ms,
        });
    }
    Ok(frames_total)
}

/// What the layout is given to place one output frame.
struct Stage<'a> {
    plan: &'a RenderPlan,
    layout: &'a Layout,
    canvas: (u32, u32),
    /// Each track's level in this frame's interval (0 for tracks that are not mixed).
    levels: &'a [f32],
}

impl Stage<'_> {
    /// The tiles of the output frame at call time `t_ms`, with new pictures uploaded.
    fn frame_draws(
        &self,
        t_ms: f64,
        video: &mut [Option<VideoFeed>],
        uploaded: &mut [Option<u64>],
        compositor: &mut Compositor,
    ) -> Result<Vec<TileDraw>, RenderError> {
        // Who is on stage, with which picture, how loud.
        let mut scene = Scene::default();
        let mut visual_of = Vec::new();
        for (index, visual) in self.plan.visuals.iter().enumerate() {
            if !visual.span.contains(t_ms) {
                continue;
            }
            let mut shown_track = None;
            for &track in &visual.video_tracks {
                if let Some(feed) = video.get_mut(track).and_then(Option::as_mut)
                    && feed.advance(t_ms)?
                    && shown_track.is_none()
                {
                    shown_track = Some(track);
                }
            }
            let shown = shown_track.and_then(|t| video.get(t)?.as_ref()?.frame());
            if let Some((frame, generation)) = shown
                && uploaded[index] != Some(generation)
            {
                compositor.upload(index as u64, &i420(frame))?;
                uploaded[index] = Some(generation);
            }
            let speaking_level =
                visual.audio_tracks.iter().filter_map(|&t| self.levels.get(t)).copied().fold(0.0, f32::max);
            scene.on_stage.push(OnStage {
                participant_id: &visual.participant_id,
                display_name: &visual.participant_id,
                screenshare: visual.screenshare,
                picture: shown.map(|(f, _)| (f.width, f.height)),
                speaking_level,
                join_order: index,
            });
            visual_of.push(index);
        }
        let (width, height) = self.canvas;
        Ok(self
            .layout
            .arrange(&scene, width, height)
            .into_iter()
            .filter_map(|tile| {
                let visual = visual_of.get(tile.participant_index)?;
                Some(match tile.content {
                    TileContent::Video { rect, uv_rect } => TileDraw {
                        rect: gpu::RectPx { x: rect.x, y: rect.y, width: rect.width, height: rect.height },
                        content: gpu::TileContent::Video { source_id: *visual as u64, uv_rect },
                    },
                    TileContent::Placeholder(rgb) => TileDraw {
                        rect: gpu::RectPx {
                            x: tile.cell.x,
                            y: tile.cell.y,
                            width: tile.cell.width,
                            height: tile.cell.height,
                        },
                        content: gpu::TileContent::Solid { rgb: rgb.0 },
                    },
                })
            })
            .collect())
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
