//! Rendering a job: the phases (ingest, plan, composites, individual files, finalize) wired
//! together. Every stage streams: decoders, compositor and encoders run concurrently and hold
//! a few frames each. Every file appears under its final name only when it is complete.

mod composite;
mod file_source;
mod files;
pub mod individual;
mod levels;
pub mod live;
mod live_files;
mod live_pass;
pub mod manifest;
mod output;
mod pass;
mod pass_output;
pub mod plan;
pub mod preview;
mod rtpdump_source;
mod sliced;
pub mod slices;
pub mod source;
pub mod stage;
pub mod staging;

use staging::Staging;
mod transcode;
pub mod watchdog;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing::info_span;

use crate::error::{Classify, Fault};
use crate::gpu;
use crate::ingest::track_files::TrackFileSet;
use crate::ingest::{IngestError, PathShown, Recording};
use crate::layout::LayoutError;
use crate::media::MediaError;
use crate::media::encode::EncodeSettings;
use crate::outputs::{OutputSet, TrackFilter};
pub use files::individual_files;
use manifest::{MANIFEST_FILE_NAME, Manifest, OutputEntry};
pub use output::PartialFile;
pub use plan::RenderPlan;
pub use sliced::render_slice;
pub use slices::{Parallel, SliceDone, SliceFailure, SliceOrder, SliceWorkers};

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
    #[error("slice {index} (frames {} to {}): {message}", frames.0, frames.1)]
    Slice { index: usize, frames: (u64, u64), callers_fault: bool, code: &'static str, message: String },
    #[error("cancelled")]
    Cancelled,
}

/// A failure code a worker reported, as one of ours (`worker` when it is not known here).
pub(crate) fn known_code(code: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "invalid_argument",
        "bad_input",
        "undecodable_media",
        "hardware_unavailable",
        "media",
        "gpu",
        "io",
        "incomplete",
        "interrupted",
        "stalled",
    ];
    KNOWN.iter().find(|known| **known == code).copied().unwrap_or("worker")
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
            RenderError::Slice { callers_fault: true, code, .. } => Fault::BadInput(code),
            RenderError::Slice { code, .. } => Fault::Internal(code),
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
    /// Media pushed while the call happens.
    Live(live::LiveInput),
}

/// A call's media may lie at most this many hours from its start, by default.
pub const DEFAULT_MAX_CALL_SPAN_H: u64 = 24;

/// What to render.
#[derive(Debug, Clone)]
pub struct RenderRequest {
    pub input: RenderInput,
    pub output_dir: PathBuf,
    /// Where an archive input is extracted, in a `tessera-ingest-*` directory of its own that
    /// is removed when the render ends: a job's work directory in the service, a temporary
    /// directory of the CLI's own.
    pub work_dir: PathBuf,
    /// Which layouts arrange the composite when, and who is who.
    pub staging: Staging,
    pub encode: EncodeSettings,
    pub outputs: OutputSet,
    /// The tracks to work on.
    pub filter: TrackFilter,
    /// Set from elsewhere to stop the render.
    pub cancel: CancelFlag,
    /// The render fails when nothing moves for this long (see [`watchdog`]).
    pub stall_timeout_s: u64,
    /// Refuse a call whose media lies further than this from its start (see
    /// [`RenderPlan::check_call_span`]).
    pub max_call_span_h: u64,
    /// Told of each file as soon as it is complete under its final name, while the render
    /// goes on (the service uploads it meanwhile).
    pub on_file: Option<FileReady>,
    /// Render the composite video in slices by several workers (see [`slices`]); `None`: one.
    pub parallel: Option<Parallel>,
}

/// A callback for each finished file (see [`RenderRequest::on_file`]).
#[derive(Clone)]
pub struct FileReady(pub Arc<dyn Fn(&OutputEntry) + Send + Sync>);

impl FileReady {
    pub fn new(f: impl Fn(&OutputEntry) + Send + Sync + 'static) -> FileReady {
        FileReady(Arc::new(f))
    }

    pub fn notify(request: &RenderRequest, entry: &OutputEntry) {
        if let Some(ready) = &request.on_file {
            (ready.0)(entry);
        }
    }
}

impl std::fmt::Debug for FileReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileReady")
    }
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

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    /// CPU seconds the composing thread spent composing the composite's frames: all of the
    /// CPU compositor's work; on the GPU path only recording, submitting and reading back
    /// (a software rasteriser's own threads are not counted).
    pub compose_cpu_s: f64,
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

/// Renders every output `request` asks for from its input, then `manifest.json`; fails when
/// cancelled or when it makes no progress for `request.stall_timeout_s` (see [`watchdog`]).
pub fn render(request: &RenderRequest, on_progress: impl FnMut(Progress)) -> Result<RenderSummary, RenderError> {
    watched_render(request, on_progress, |on_progress, interrupt| match &request.input {
        RenderInput::Archive(path) => {
            let recording = info_span!("ingest", input = %path.display())
                .in_scope(|| Recording::open_in(path, &request.work_dir))?;
            interrupt.touch();
            recording_outputs(request, &recording, on_progress)
        }
        RenderInput::Live(live) => info_span!("live", call_id = %live.0.call().call_id)
            .in_scope(|| live_pass::render_live(&live.0, request, on_progress)),
        RenderInput::TrackFiles(set) => {
            let started = Instant::now();
            let plan = info_span!("plan", files = set.files.len()).in_scope(|| RenderPlan::from_track_files(set))?;
            plan.check_call_span(request.max_call_span_h)?;
            interrupt.touch();
            render_plan(request, &plan, started, on_progress)
        }
    })
}

/// [`render`] for a recording already opened (`request.input` is not read again).
pub fn render_recording(
    request: &RenderRequest,
    recording: &Recording,
    on_progress: impl FnMut(Progress),
) -> Result<RenderSummary, RenderError> {
    watched_render(request, on_progress, |on_progress, _| recording_outputs(request, recording, on_progress))
}

/// Runs `work` for a valid `request` under the watchdog (see [`watchdog`]): every progress it
/// reports counts as the render moving.
fn watched_render<T>(
    request: &RenderRequest,
    mut on_progress: impl FnMut(Progress),
    work: impl FnOnce(&mut dyn FnMut(Progress), &crate::media::Interrupt) -> Result<T, RenderError>,
) -> Result<T, RenderError> {
    validate(request)?;
    let stall_timeout = Duration::from_secs(request.stall_timeout_s.max(1));
    watchdog::watched(&request.cancel, stall_timeout, |interrupt| {
        let mut noted = |p| {
            interrupt.touch();
            on_progress(p);
        };
        work(&mut noted, interrupt)
    })
}

fn recording_outputs(
    request: &RenderRequest,
    recording: &Recording,
    on_progress: impl FnMut(Progress),
) -> Result<RenderSummary, RenderError> {
    let started = Instant::now();
    let plan = info_span!("plan").in_scope(|| RenderPlan::build_filtered(recording, &request.filter))?;
    plan.check_call_span(request.max_call_span_h).map_err(|err| err.shown(&recording.shown()))?;
    // Slices' workers open the recording where it was extracted.
    let sliced;
    let request = match (&request.parallel, recording.extracted_dir()) {
        (Some(_), Some(dir)) => {
            sliced = RenderRequest { input: RenderInput::Archive(dir.to_path_buf()), ..request.clone() };
            &sliced
        }
        _ => request,
    };
    render_plan(request, &plan, started, on_progress).map_err(|err| naming_entries(err, recording.shown()))
}

/// `err` with the paths of files extracted from the recording's archive named as its entries
/// (the extraction is gone by the time anyone reads the message).
fn naming_entries(err: RenderError, shown: PathShown<'_>) -> RenderError {
    let text = |text: String| shown.text(&text);
    let media = |err| match err {
        MediaError::Build { description, reason } => {
            MediaError::Build { description: text(description), reason: text(reason) }
        }
        MediaError::Stream { what, element, message, debug, bad_data } => {
            MediaError::Stream { what: text(what), element, message: text(message), debug: text(debug), bad_data }
        }
        MediaError::StateChange { what, state } => MediaError::StateChange { what: text(what), state },
        MediaError::Data { what, reason } => MediaError::Data { what: text(what), reason: text(reason) },
        MediaError::Internal { what, reason } => MediaError::Internal { what: text(what), reason: text(reason) },
        other => other,
    };
    match err {
        RenderError::Ingest(err) => RenderError::Ingest(err.shown(&shown)),
        RenderError::Media(err) => RenderError::Media(media(err)),
        RenderError::Incomplete { written, failed } => {
            RenderError::Incomplete { written, failed: failed.into_iter().map(text).collect() }
        }
        RenderError::Slice { index, frames, callers_fault, code, message } => {
            RenderError::Slice { index, frames, callers_fault, code, message: text(message) }
        }
        other => other,
    }
}

/// Renders the outputs of a plan (see [`render`]).
fn render_plan(
    request: &RenderRequest,
    plan: &RenderPlan,
    started: Instant,
    mut on_progress: impl FnMut(Progress),
) -> Result<RenderSummary, RenderError> {
    let dir = &request.output_dir;
    std::fs::create_dir_all(dir).map_err(files::io_error(dir))?;
    let mut summary = RenderSummary {
        output_dir: dir.clone(),
        outputs: Vec::new(),
        duration_ms: plan.timeline.duration_ms,
        participants: plan.participant_count,
        frames: 0,
        elapsed_s: 0.0,
        encoder: None,
        adapter: None,
        compose_cpu_s: 0.0,
    };

    let written = files::write_outputs(plan, request, &mut on_progress)?;
    let (outputs, failed) = (written.entries, written.failed);
    if let Some(result) = written.composite {
        summary.frames = result.frames;
        summary.duration_ms = result.duration_ms;
        summary.encoder = result.encoder;
        summary.adapter = result.adapter;
        summary.compose_cpu_s = result.compose_cpu_s;
    }

    info_span!("finalize").in_scope(|| {
        Manifest::new(plan, outputs.clone()).write(dir).map_err(files::io_error(&dir.join(MANIFEST_FILE_NAME)))
    })?;
    if !failed.is_empty() {
        return Err(RenderError::Incomplete { written: outputs.len(), failed });
    }
    summary.outputs = outputs;
    summary.elapsed_s = started.elapsed().as_secs_f64();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::failure::Cause;

    fn cause(err: &RenderError) -> (Cause, String) {
        let failure = crate::error::failure(err);
        (failure.cause(), failure.code)
    }

    #[test]
    fn whose_fault_a_render_failure_is_follows_its_type() {
        let media = |err| RenderError::Media(err);
        let data = || MediaError::Data { what: "decoding a.rtpdump".into(), reason: "garbage".into() };
        let internal = || MediaError::Internal { what: "decoding a.rtpdump".into(), reason: "feeder panicked".into() };
        let no_encoder = |hardware_required| MediaError::NoEncoder {
            codec: "h264",
            hardware: "require".into(),
            tried: "nvh264enc".into(),
            hardware_required,
        };
        let io = RenderError::Io { path: "/out/x.mp4".into(), source: std::io::Error::other("disk full") };
        let bad_size = RenderError::InvalidArgument { field: "size", value: "3x3".into(), reason: "odd".into() };
        let cases = [
            (media(data()), Cause::BadInput, "undecodable_media"),
            (media(internal()), Cause::Internal, "media"),
            (media(no_encoder(true)), Cause::BadInput, "hardware_unavailable"),
            (media(no_encoder(false)), Cause::Internal, "media"),
            (RenderError::Gpu(gpu::GpuError::Wgpu("lost".into())), Cause::Internal, "gpu"),
            (io, Cause::Internal, "io"),
            (bad_size, Cause::BadInput, "invalid_argument"),
            (RenderError::Ingest(IngestError::NoMetadata { path: "call".into() }), Cause::BadInput, "bad_input"),
        ];
        for (err, want_cause, want_code) in cases {
            assert_eq!(cause(&err), (want_cause, want_code.to_owned()), "{err}");
        }
    }
}
