//! Rendering a composite: the job phases (ingest, plan, compose + mix + encode, finalize)
//! wired together. Every stage streams: decoders, compositor and encoder run concurrently and
//! hold a few frames each.

mod cursors;
pub mod manifest;
mod output;
pub mod plan;

use std::path::PathBuf;
use std::time::Instant;

use tracing::info_span;

use crate::audio::{Limiter, MixBuffer};
use crate::gpu::{self, Compositor, TileDraw};
use crate::ingest::{IngestError, Recording, TrackKind};
use crate::layout::{Layout, LayoutError, TileContent};
use crate::media::MediaError;
use crate::media::decode::{AUDIO_CHANNELS, AUDIO_RATE_HZ, VideoFrame};
use crate::media::encode::{CompositeEncoder, EncodeSettings, pick_h264_encoder};
use crate::timeline::CallTimeline;
use cursors::{AudioCursor, VideoCursor};
use manifest::{MANIFEST_FILE_NAME, Manifest, OutputEntry};
pub use output::PartialFile;
pub use plan::RenderPlan;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("GPU: {0}")]
    Gpu(#[from] gpu::GpuError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {field} `{value}`: {reason}")]
    InvalidArgument { field: &'static str, value: String, reason: String },
}

/// What to render.
#[derive(Debug, Clone)]
pub struct CompositeRequest {
    /// A raw recording: directory, `.zip` or `.tar.gz`.
    pub input: PathBuf,
    pub output_dir: PathBuf,
    pub layout: String,
    pub encode: EncodeSettings,
}

/// Progress of a render, reported once per output frame.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub frames_done: u64,
    pub frames_total: u64,
    pub media_done_ms: f64,
    pub media_total_ms: f64,
}

#[derive(Debug, Clone)]
pub struct CompositeSummary {
    pub output: PathBuf,
    pub duration_ms: f64,
    pub participants: usize,
    pub frames: u64,
    pub elapsed_s: f64,
    pub encoder: String,
    pub adapter: String,
}

impl CompositeSummary {
    /// Media seconds rendered per wall-clock second.
    pub fn speed(&self) -> f64 {
        if self.elapsed_s > 0.0 { self.duration_ms / 1000.0 / self.elapsed_s } else { 0.0 }
    }
}

/// `composite_{callType}_{callId}_{callStartMs}.mp4`, as Stream names its outputs.
pub fn composite_file_name(plan: &RenderPlan) -> String {
    format!("composite_{}_{}_{}.mp4", plan.call.call_type, plan.call.call_id, plan.call.call_start_unix_ms)
}

fn validate(request: &CompositeRequest) -> Result<(), RenderError> {
    let e = &request.encode;
    let invalid =
        |field, value: String, reason: &str| RenderError::InvalidArgument { field, value, reason: reason.to_owned() };
    if e.width < 16 || e.height < 16 || e.width > 7680 || e.height > 4320 || e.width % 2 != 0 || e.height % 2 != 0 {
        return Err(invalid(
            "size",
            format!("{}x{}", e.width, e.height),
            "width and height must be even, from 16x16 to 7680x4320",
        ));
    }
    if e.fps == 0 || e.fps > 120 {
        return Err(invalid("fps", e.fps.to_string(), "must be 1 to 120"));
    }
    Ok(())
}

/// Renders the composite MP4 of a raw recording. The file appears under its final name only
/// when it is complete.
pub fn render_composite(
    request: &CompositeRequest,
    mut on_progress: impl FnMut(Progress),
) -> Result<CompositeSummary, RenderError> {
    let started = Instant::now();
    validate(request)?;
    let layout = Layout::builtin(&request.layout)?;
    let recording =
        info_span!("ingest", input = %request.input.display()).in_scope(|| Recording::open(&request.input))?;
    let plan = info_span!("plan").in_scope(|| RenderPlan::build(&recording))?;
    std::fs::create_dir_all(&request.output_dir)
        .map_err(|source| RenderError::Io { path: request.output_dir.clone(), source })?;
    let final_path = request.output_dir.join(composite_file_name(&plan));
    let partial =
        PartialFile::new(&final_path).map_err(|source| RenderError::Io { path: final_path.clone(), source })?;

    let (frames, encoder, adapter) =
        info_span!("render", call_id = %plan.call.call_id).in_scope(|| -> Result<_, RenderError> {
            let encoder = pick_h264_encoder()?;
            let mut compositor = Compositor::new(request.encode.width, request.encode.height)?;
            let adapter = compositor.adapter_summary();
            let mut sink = CompositeEncoder::start(partial.path(), encoder.clone(), &request.encode)?;
            let frames = render_frames(&plan, &layout, &request.encode, &mut compositor, &mut sink, &mut on_progress)?;
            sink.finish()?;
            Ok((frames, encoder, adapter))
        })?;
    let duration_ms = frames as f64 * 1000.0 / f64::from(request.encode.fps);
    info_span!("finalize").in_scope(|| -> Result<(), RenderError> {
        partial.commit().map_err(|source| RenderError::Io { path: final_path.clone(), source })?;
        let file = final_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let outputs = vec![OutputEntry { file, kind: "composite", offset_ms: 0.0, duration_ms }];
        Manifest::new(&plan, outputs)
            .write(&request.output_dir)
            .map_err(|source| RenderError::Io { path: request.output_dir.join(MANIFEST_FILE_NAME), source })
    })?;
    Ok(CompositeSummary {
        output: final_path,
        duration_ms,
        participants: plan.participant_count,
        frames,
        elapsed_s: started.elapsed().as_secs_f64(),
        encoder: encoder.element.to_owned(),
        adapter,
    })
}

fn render_frames(
    plan: &RenderPlan,
    layout: &Layout,
    settings: &EncodeSettings,
    compositor: &mut Compositor,
    sink: &mut CompositeEncoder,
    on_progress: &mut impl FnMut(Progress),
) -> Result<u64, RenderError> {
    let mut video: Vec<Option<VideoCursor>> = plan
        .tracks
        .iter()
        .map(|t| (t.kind == TrackKind::Video).then(|| VideoCursor::new(t.segments.clone())))
        .collect();
    let mut audio: Vec<AudioCursor> = plan
        .tracks
        .iter()
        .filter(|t| t.kind == TrackKind::Audio)
        .map(|t| AudioCursor::new(t.segments.clone()))
        .collect();
    let mut mix = MixBuffer::new(AUDIO_CHANNELS);
    let mut limiter = Limiter::new(0.891, 80.0, AUDIO_RATE_HZ, AUDIO_CHANNELS);
    let mut uploaded: Vec<Option<u64>> = vec![None; plan.visuals.len()];
    let mut pcm = Vec::new();
    let mut nv12 = Vec::new();
    let frames_total = plan.timeline.frame_count(settings.fps);
    let (width, height) = (settings.width, settings.height);
    for n in 0..frames_total {
        let t_ms = CallTimeline::frame_time_ms(n, settings.fps);
        // Who is on screen, and with which picture.
        let mut on_screen: Vec<(usize, Option<(u32, u32)>)> = Vec::new();
        for (index, visual) in plan.visuals.iter().enumerate() {
            if !visual.span.contains(t_ms) {
                continue;
            }
            let mut shown_track = None;
            for &track in &visual.video_tracks {
                if let Some(cursor) = video.get_mut(track).and_then(Option::as_mut) {
                    if cursor.advance(t_ms)? && shown_track.is_none() {
                        shown_track = Some(track);
                    }
                }
            }
            let shown = shown_track.and_then(|t| video.get(t)?.as_ref()?.frame());
            if let Some((frame, generation)) = shown {
                if uploaded[index] != Some(generation) {
                    compositor.upload(index as u64, &i420(frame))?;
                    uploaded[index] = Some(generation);
                }
            }
            on_screen.push((index, shown.map(|(f, _)| (f.width, f.height))));
        }
        let sizes: Vec<Option<(u32, u32)>> = on_screen.iter().map(|(_, size)| *size).collect();
        let draws: Vec<TileDraw> = layout
            .place(&sizes, width, height)
            .into_iter()
            .filter_map(|tile| {
                let (visual, _) = on_screen.get(tile.participant_index)?;
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
            .collect();
        compositor.compose(&draws, layout.background.0, &mut nv12)?;
        sink.push_video(std::mem::take(&mut nv12))?;

        // The mix for this frame's interval.
        let until = (n + 1) * u64::from(AUDIO_RATE_HZ) / u64::from(settings.fps);
        for cursor in &mut audio {
            cursor.fill(&mut mix, until)?;
        }
        let frames = usize::try_from(until - mix.read_position()).unwrap_or(0);
        mix.take(frames, &mut pcm);
        limiter.process(&mut pcm);
        sink.push_audio(&pcm)?;

        on_progress(Progress {
            frames_done: n + 1,
            frames_total,
            media_done_ms: CallTimeline::frame_time_ms(n + 1, settings.fps),
            media_total_ms: plan.timeline.duration_ms,
        });
    }
    Ok(frames_total)
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
