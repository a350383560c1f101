//! Rendering a job: the phases (ingest, plan, composites, individual files, finalize) wired
//! together. Every stage streams: decoders, compositor and encoders run concurrently and hold
//! a few frames each. Every file appears under its final name only when it is complete.

mod composite;
mod file_source;
pub mod individual;
pub mod manifest;
mod output;
pub mod plan;
mod rtpdump_source;
pub mod source;
mod transcode;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tracing::info_span;

use crate::error::{Classify, Fault};
use crate::gpu;
use crate::ingest::track_files::TrackFileSet;
use crate::ingest::{IngestError, Recording};
use crate::layout::{Layout, LayoutError};
use crate::media::MediaError;
use crate::media::encode::EncodeSettings;
use crate::outputs::individual::{IndividualFile, TrackRef, select};
use crate::outputs::{OutputSet, TrackFilter, naming};
use manifest::{MANIFEST_FILE_NAME, Manifest, OutputEntry, StreamEntry, file_facts};
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
    #[error("{} output files failed ({written} written):\n  {}", failed.len(), failed.join("\n  "))]
    Incomplete { written: usize, failed: Vec<String> },
    #[error("cancelled")]
    Cancelled,
}

impl Classify for RenderError {
    fn fault(&self) -> Fault {
        match self {
            RenderError::Ingest(err) => err.fault(),
            RenderError::Media(err) => err.fault(),
            RenderError::Gpu(err) => err.fault(),
            RenderError::Layout(err) => err.fault(),
            RenderError::InvalidArgument { .. } => Fault::BadInput("invalid_argument"),
            RenderError::Io { .. } => Fault::Internal("io"),
            RenderError::Incomplete { .. } => Fault::Internal("incomplete"),
            RenderError::Cancelled => Fault::Internal("cancelled"),
        }
    }
}

/// Stops a render between two frames (or two individual files) when set; the files of the
/// interrupted step are removed, complete ones stay.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `Err(Cancelled)` once cancelled.
    pub fn check(&self) -> Result<(), RenderError> {
        if self.is_cancelled() { Err(RenderError::Cancelled) } else { Ok(()) }
    }
}

/// Where the call's media comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum RenderInput {
    /// A raw recording: directory, `.zip` or `.tar.gz`.
    Archive(PathBuf),
    /// Per-participant media files placed on the call clock.
    TrackFiles(TrackFileSet),
}

/// What to render.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    pub input: RenderInput,
    pub output_dir: PathBuf,
    pub layout: String,
    pub encode: EncodeSettings,
    pub outputs: OutputSet,
    /// The tracks to work on.
    pub filter: TrackFilter,
    /// Background of the composite instead of the layout's.
    pub background_rgb: Option<[u8; 3]>,
    /// Set from elsewhere to stop the render.
    pub cancel: CancelFlag,
}

/// Progress of a render phase.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// `composite` (frames) or `individual` (files).
    pub phase: &'static str,
    pub done: u64,
    pub total: u64,
    pub media_done_ms: f64,
    pub media_total_ms: f64,
}

#[derive(Debug, Clone)]
pub struct RenderSummary {
    pub output_dir: PathBuf,
    /// Every file written, as in the manifest.
    pub outputs: Vec<OutputEntry>,
    pub duration_ms: f64,
    pub participants: usize,
    pub frames: u64,
    pub elapsed_s: f64,
    /// The video encoder element, when a composite video was written.
    pub encoder: Option<String>,
    pub adapter: Option<String>,
}

impl RenderSummary {
    /// Media seconds rendered per wall-clock second.
    pub fn speed(&self) -> f64 {
        if self.elapsed_s > 0.0 { self.duration_ms / 1000.0 / self.elapsed_s } else { 0.0 }
    }
}

fn validate(request: &RenderRequest) -> Result<(), RenderError> {
    let e = &request.encode;
    let invalid =
        |field, value: String, reason: &str| RenderError::InvalidArgument { field, value, reason: reason.to_owned() };
    if e.width < 16
        || e.height < 16
        || e.width > 7680
        || e.height > 4320
        || !e.width.is_multiple_of(2)
        || !e.height.is_multiple_of(2)
    {
        return Err(invalid(
            "size",
            format!("{}x{}", e.width, e.height),
            "width and height must be even, from 16x16 to 7680x4320",
        ));
    }
    if e.fps == 0 || e.fps > 120 {
        return Err(invalid("fps", e.fps.to_string(), "must be 1 to 120"));
    }
    if e.quality.crf > 51 {
        return Err(invalid("crf", e.quality.crf.to_string(), "must be 0 to 51"));
    }
    if e.quality.keyframe_interval_frames == 0 {
        return Err(invalid("keyframe interval", "0".into(), "must be at least one frame"));
    }
    if request.outputs.is_empty() {
        return Err(invalid("outputs", "none".into(), "ask for at least one output"));
    }
    if matches!(request.input, RenderInput::TrackFiles(_)) && !request.outputs.individual.is_empty() {
        return Err(invalid(
            "outputs",
            "individual".into(),
            "track files are individual recordings already; ask for composites",
        ));
    }
    Ok(())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RenderError + '_ {
    move |source| RenderError::Io { path: path.to_path_buf(), source }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A finished file's manifest entry.
struct Finished {
    kind: String,
    session: Option<(String, String)>,
    streams: Vec<StreamEntry>,
    encoder: Option<String>,
    offset_ms: f64,
    duration_ms: f64,
}

/// Moves a complete file to its final name and describes it.
fn commit(partial: PartialFile, path: &Path, finished: Finished) -> Result<OutputEntry, RenderError> {
    partial.commit().map_err(io_error(path))?;
    let (size_bytes, sha256) = file_facts(path).map_err(io_error(path))?;
    let (participant_id, user_session_id) = finished.session.unzip();
    Ok(OutputEntry {
        file: file_name(path),
        kind: finished.kind,
        participant_id,
        user_session_id,
        streams: finished.streams,
        encoder: finished.encoder,
        offset_ms: finished.offset_ms,
        duration_ms: finished.duration_ms,
        size_bytes,
        sha256,
    })
}

/// Renders every output `request` asks for from its input, then `manifest.json`.
pub fn render(request: &RenderRequest, on_progress: impl FnMut(Progress)) -> Result<RenderSummary, RenderError> {
    validate(request)?;
    match &request.input {
        RenderInput::Archive(path) => {
            let recording = info_span!("ingest", input = %path.display()).in_scope(|| Recording::open(path))?;
            render_recording(request, &recording, on_progress)
        }
        RenderInput::TrackFiles(set) => {
            let started = Instant::now();
            let plan = info_span!("plan", files = set.files.len()).in_scope(|| RenderPlan::from_track_files(set))?;
            render_plan(request, &plan, started, on_progress)
        }
    }
}

/// [`render`] for a recording already opened (`request.input` is not read again).
pub fn render_recording(
    request: &RenderRequest,
    recording: &Recording,
    on_progress: impl FnMut(Progress),
) -> Result<RenderSummary, RenderError> {
    let started = Instant::now();
    validate(request)?;
    let plan = info_span!("plan").in_scope(|| RenderPlan::build_filtered(recording, &request.filter))?;
    render_plan(request, &plan, started, on_progress)
}

/// Renders the outputs of a plan (see [`render`]).
fn render_plan(
    request: &RenderRequest,
    plan: &RenderPlan,
    started: Instant,
    mut on_progress: impl FnMut(Progress),
) -> Result<RenderSummary, RenderError> {
    let mut layout = Layout::builtin(&request.layout)?;
    if let Some(rgb) = request.background_rgb {
        layout.background = crate::layout::Rgb(rgb);
    }
    let dir = &request.output_dir;
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let wanted = &request.outputs;
    let mut outputs = Vec::new();
    let mut summary = RenderSummary {
        output_dir: dir.clone(),
        outputs: Vec::new(),
        duration_ms: plan.timeline.duration_ms,
        participants: plan.participant_count,
        frames: 0,
        elapsed_s: 0.0,
        encoder: None,
        adapter: None,
    };

    if wanted.composite_video.is_some() || !wanted.composite_audio.is_empty() {
        let _span = info_span!("composite", call_id = %plan.call.call_id).entered();
        let (entries, result) = write_composites(plan, &layout, request, &mut on_progress)?;
        outputs.extend(entries);
        summary.frames = result.frames;
        summary.duration_ms = result.duration_ms;
        summary.encoder = result.encoder;
        summary.adapter = result.adapter;
    }

    let mut failed = Vec::new();
    if !wanted.individual.is_empty() {
        let _span = info_span!("individual", call_id = %plan.call.call_id).entered();
        let files = individual_files(plan, &wanted.individual);
        let total = files.len() as u64;
        for (done, file) in files.iter().enumerate() {
            request.cancel.check()?;
            match write_individual_file(plan, file, request, dir) {
                Ok(entry) => outputs.push(entry),
                Err(err) => {
                    let what = format!("{} of {} / {}", file.kind, file.participant_id, file.user_session_id);
                    tracing::error!(%err, "{what} failed");
                    failed.push(format!("{what}: {err}"));
                }
            }
            on_progress(Progress {
                phase: "individual",
                done: done as u64 + 1,
                total,
                media_done_ms: plan.timeline.duration_ms,
                media_total_ms: plan.timeline.duration_ms,
            });
        }
    }

    info_span!("finalize").in_scope(|| {
        Manifest::new(plan, outputs.clone()).write(dir).map_err(io_error(&dir.join(MANIFEST_FILE_NAME)))
    })?;
    if !failed.is_empty() {
        return Err(RenderError::Incomplete { written: outputs.len(), failed });
    }
    summary.outputs = outputs;
    summary.elapsed_s = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The composite video and audio-only composites `request` asks for, from one pass.
fn write_composites(
    plan: &RenderPlan,
    layout: &Layout,
    request: &RenderRequest,
    on_progress: &mut impl FnMut(Progress),
) -> Result<(Vec<OutputEntry>, composite::CompositeResult), RenderError> {
    let (dir, wanted) = (&request.output_dir, &request.outputs);
    let mut encode = request.encode.clone();
    let video_path = wanted.composite_video.map(|codec| {
        encode.codec = codec;
        dir.join(naming::composite_video(&plan.call, codec))
    });
    let audio_paths: Vec<_> =
        wanted.composite_audio.iter().map(|&f| (f, dir.join(naming::composite_audio(&plan.call, f)))).collect();
    let video_partial = video_path.as_deref().map(|p| PartialFile::new(p).map_err(io_error(p))).transpose()?;
    let audio_partials =
        audio_paths.iter().map(|(_, p)| PartialFile::new(p).map_err(io_error(p))).collect::<Result<Vec<_>, _>>()?;
    let audio_targets: Vec<_> =
        audio_paths.iter().zip(&audio_partials).map(|((format, _), partial)| (*format, partial.path())).collect();
    let request = RenderRequest { encode, ..request.clone() };
    let result = composite::render(
        plan,
        layout,
        &request,
        (0.0, plan.timeline.duration_ms),
        video_partial.as_ref().map(|p| (p.path(), true)),
        &audio_targets,
        on_progress,
    )?;
    let stream = |kind, codec: &str| StreamEntry { kind, codec: codec.to_owned(), track_id: None, remuxed: false };
    let finished = |kind: &str, streams, encoder| Finished {
        kind: kind.to_owned(),
        session: None,
        streams,
        encoder,
        offset_ms: 0.0,
        duration_ms: result.duration_ms,
    };
    let mut entries = Vec::new();
    if let (Some(partial), Some(path)) = (video_partial, video_path.as_deref()) {
        let codec = request.encode.codec;
        let streams =
            vec![stream("video", codec.codec_name()), stream("audio", if codec.webm() { "opus" } else { "aac" })];
        let encoder = result.encoder.clone();
        entries.push(commit(partial, path, finished("composite", streams, encoder))?);
    }
    for ((format, path), partial) in audio_paths.iter().zip(audio_partials) {
        let streams = vec![stream("audio", format.codec_name())];
        entries.push(commit(partial, path, finished("composite_audio", streams, None))?);
    }
    Ok((entries, result))
}

/// The individual files of `kinds` for this plan.
pub fn individual_files(plan: &RenderPlan, kinds: &[crate::outputs::IndividualKind]) -> Vec<IndividualFile> {
    let refs: Vec<TrackRef<'_>> = plan
        .tracks
        .iter()
        .map(|t| TrackRef {
            participant_id: &t.participant_id,
            user_session_id: &t.user_session_id,
            track_id: &t.track_id,
            kind: t.kind,
            screenshare: t.screenshare,
            start_ms: t.span.start_ms(),
        })
        .collect();
    select(&refs, kinds)
}

/// Writes one individual file into `dir` under its Stream-compatible name.
pub fn write_individual_file(
    plan: &RenderPlan,
    file: &IndividualFile,
    request: &RenderRequest,
    dir: &Path,
) -> Result<OutputEntry, RenderError> {
    let outputs = &request.outputs;
    let tracks: Vec<&plan::TrackPlan> = file.tracks.iter().filter_map(|&i| plan.tracks.get(i)).collect();
    let how = transcode::choose(&tracks, outputs.individual_video_codec, outputs.individual_audio_format);
    let extension = how.map_or("mkv", transcode::Transcode::extension);
    let name =
        naming::individual(&plan.call, &file.participant_id, &file.user_session_id, file.kind, file.n, extension);
    let path = dir.join(name);
    let partial = PartialFile::new(&path).map_err(io_error(&path))?;
    let written = match how {
        Some(how) => transcode::transcode_individual(plan, file, request, how, partial.path())?,
        None => individual::write_individual(plan, file, outputs.align_to_call, outputs.gap_fill, partial.path())?,
    };
    let streams = written
        .streams
        .iter()
        .map(|s| StreamEntry {
            kind: s.kind.as_str(),
            codec: s.codec.clone(),
            track_id: Some(s.track_id.clone()),
            remuxed: how.is_none(),
        })
        .collect();
    let finished = Finished {
        kind: file.kind.as_str().into(),
        session: Some((file.participant_id.clone(), file.user_session_id.clone())),
        streams,
        encoder: written.encoder,
        offset_ms: written.offset_ms,
        duration_ms: written.duration_ms,
    };
    commit(partial, &path, finished)
}
