//! Runs one claimed job (already RUNNING in the store) to its end: its source brought from
//! storage (through the node's cache), the render into the job's working directory with
//! progress events, each finished file uploaded while the render goes on (one `output_ready`
//! event each, only once the backend verified it), then UPLOADING: the last uploads and the
//! manifest, then COMPLETED. Or
//! FAILED with a cause that keeps the caller's fault apart from ours, CANCELLED, or (on
//! shutdown) back to QUEUED for the next start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::config::ServeConfig;
use super::destination;
use super::events::EventLog;
use super::metrics::Metrics;
use super::spec::{remote_source, shown_url, validate};
use super::store::StoreError;
use super::uploader::{UploadStop, Uploader, deliver};
use super::worker::{WorkOrder, WorkerError, parallel_for, render_in_child};
use crate::error::failure;
use crate::error::{Fault, failure_of};
use crate::proto::{self as pb, JobState, render_job_event::Event};
use crate::render::live::{LiveCall, LiveState, StopReason};
use crate::render::manifest::MANIFEST_FILE_NAME;
use crate::render::manifest::file_facts;
use crate::render::{CancelFlag, Progress, RenderInput, RenderSummary, render};
use crate::storage::publish::Publisher;
use crate::storage::source::SourceRef;
use crate::storage::{FileFacts, StorageError};

/// What a job needs from the node.
#[derive(Clone)]
pub struct JobContext {
    pub config: Arc<ServeConfig>,
    pub events: EventLog,
    pub metrics: Arc<Metrics>,
    /// The executable that renders each job in a child process of its own (`job-worker`);
    /// `None`: on this process's threads.
    pub worker: Option<PathBuf>,
}

/// How a running job is stopped from outside.
#[derive(Debug, Clone, Default)]
pub struct JobHandle {
    pub cancel: CancelFlag,
    /// Set with `cancel` when the server shuts down: the job goes back to the queue.
    pub requeue: Arc<AtomicBool>,
    /// Set with `cancel` when another node took the job over: this run leaves it alone.
    pub lost: Arc<AtomicBool>,
    /// A live job's call, once its run started: where PushMedia, pause, resume and stop go.
    pub live: Arc<OnceLock<Arc<LiveCall>>>,
}

/// Runs `job` (blocking: call from a blocking thread of the server's runtime).
pub fn run(ctx: &JobContext, job: &pb::RenderJob, handle: &JobHandle) -> Result<(), StoreError> {
    let events = &ctx.events;
    let spec = job.spec.clone().unwrap_or_default();
    let mut request = match validate(&spec) {
        Ok(request) => request,
        Err(invalid) => return fail(events, &job.id, failure(&invalid)),
    };
    let output = match destination::output_storage(&spec, &ctx.config) {
        Ok(output) => output,
        Err(invalid) => return fail(events, &job.id, failure(&invalid)),
    };
    if let RenderInput::Live(live) = &request.input {
        let _ = handle.live.set(Arc::clone(&live.0));
        events.store().update(&job.id, |job| {
            job.start_reason = pb::JobReason::ApiCall as i32;
            Ok(())
        })?;
    }
    let runtime = tokio::runtime::Handle::current();
    let work_dir = ctx.config.work_dir(&job.id);
    // A run after a crash starts from nothing.
    let _ = std::fs::remove_dir_all(&work_dir);
    request.output_dir = work_dir.join("out");
    request.work_dir = work_dir.clone();
    request.cancel = handle.cancel.clone();
    request.stall_timeout_s = ctx.config.jobs.stall_timeout_s;
    request.max_call_span_h = ctx.config.jobs.max_call_span_h;
    if let Err(source) = std::fs::create_dir_all(&request.output_dir) {
        return fail(events, &job.id, failure(&StorageError::Io { path: request.output_dir.clone(), source }));
    }
    // A downloaded source is named by its URL (as shown), not the file it was saved as.
    let mut downloaded = None;
    if let Some(url) = remote_source(&spec) {
        let source = match destination::remote_source(&spec, &ctx.config) {
            Ok(Some(source)) => source,
            Ok(None) => SourceRef::Http(url.to_owned()),
            Err(invalid) => return fail(events, &job.id, failure(&invalid)),
        };
        let archive = work_dir.join("source.archive");
        let max_bytes = ctx.config.storage.max_download_bytes;
        let cache = ctx.config.source_cache();
        let fetched =
            runtime.block_on(cache.fetch(&source, &archive, max_bytes, &ctx.config.retry_policy(), &handle.cancel));
        match fetched {
            Ok(how) => tracing::info!(url = %shown_url(url), ?how, "source ready"),
            Err(_) if handle.cancel.is_cancelled() => return stopped(ctx, &job.id, handle, &work_dir),
            Err(err) => {
                let _ = std::fs::remove_dir_all(&work_dir);
                return fail(events, &job.id, failure(&err));
            }
        }
        downloaded = Some((archive.display().to_string(), shown_url(url)));
        request.input = RenderInput::Archive(archive);
    }
    let publisher = match runtime.block_on(Publisher::open(output, ctx.config.retry_policy())) {
        Ok(publisher) => publisher,
        Err(err) => {
            let _ = std::fs::remove_dir_all(&work_dir);
            return fail(events, &job.id, failure(&err));
        }
    };
    let staged = request.output_dir.clone();
    let uploader = Uploader::start(
        events.clone(),
        job.id.clone(),
        publisher.clone(),
        staged.clone(),
        handle.cancel.clone(),
        runtime.clone(),
    );
    let uploader = match uploader {
        Ok(uploader) => uploader,
        Err(source) => return fail(events, &job.id, failure(&StorageError::Io { path: staged, source })),
    };
    request.on_file = uploader.file_ready();
    let started = Instant::now();
    let phases = u32::from(request.outputs.composite_video.is_some() || !request.outputs.composite_audio.is_empty())
        + u32::from(!request.outputs.individual.is_empty());
    let mut reporter = ProgressReporter::new(ctx, &job.id, phases.max(1));
    let order = WorkOrder::of(job.id.clone(), spec.clone(), &request);
    let result = match &ctx.worker {
        // A live job's media arrives here: it renders on this process's threads.
        Some(exe) if !matches!(request.input, RenderInput::Live(_)) => {
            render_in_child(exe, &order, &handle.cancel, request.on_file.as_ref(), |p| reporter.report(p))
        }
        // Slices still render in child processes of their own.
        _ => match parallel_for(&order, ctx.worker.as_deref()) {
            Ok(parallel) => {
                request.parallel = parallel;
                render(&request, |p| reporter.report(p)).map_err(|err| WorkerError::of(&err))
            }
            Err(failure) => Err(WorkerError::Failed(failure)),
        },
    };
    // The render's hook holds the uploader's queue open: let it go so the uploads can end.
    request.on_file = None;
    if let Some(err) = reporter.error.take() {
        tracing::error!(%err, "progress could not be stored");
    }
    if let Some(LiveState::Ended { reason }) = handle.live.get().map(|call| call.state()) {
        tracing::info!(?reason, "live call stopped");
        events.store().update(&job.id, |job| {
            job.stop_reason = job_reason(reason) as i32;
            Ok(())
        })?;
    }
    // A cancel that came as the render finished still counts.
    let result = result.and_then(|summary| match handle.cancel.is_cancelled() {
        true => Err(WorkerError::Cancelled),
        false => Ok(summary),
    });
    match result {
        Ok(summary) => {
            ctx.metrics.rendered(
                summary.duration_ms,
                started.elapsed().as_secs_f64() * 1000.0,
                summary.encoder.as_deref(),
                summary.adapter.as_deref(),
            );
            tracing::info!(
                duration_ms = summary.duration_ms,
                elapsed_s = summary.elapsed_s,
                speed = summary.speed(),
                encoder = summary.encoder.as_deref().unwrap_or(""),
                files = summary.outputs.len(),
                "rendered"
            );
            finish_uploads(ctx, job, handle, &summary, uploader, &publisher)
        }
        Err(WorkerError::Cancelled) => {
            let _ = uploader.finish();
            stopped(ctx, &job.id, handle, &work_dir)
        }
        Err(WorkerError::Failed(mut failure)) => {
            tracing::error!(code = %failure.code, message = %failure.message, "render failed");
            // The files finished before the failure are still delivered.
            let report = uploader.finish();
            if let Some(UploadStop::Store(err)) = report.stopped {
                return Err(err);
            }
            let _ = std::fs::remove_dir_all(&work_dir);
            if let Some((saved_as, url)) = &downloaded {
                failure.message = failure.message.replace(saved_as, url);
            }
            fail(events, &job.id, failure)
        }
    }
}

/// Removes every job work directory under `work_root`: what a node that was killed left
/// behind (partial outputs, extracted archives, downloads). Called as the server starts,
/// before any job runs on it, so none of them belongs to a running job; a job that runs again
/// starts from nothing anyway. Returns how many were removed.
pub fn sweep_stale_work(work_root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(work_root) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let result = match entry.file_type() {
            Ok(kind) if kind.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        match result {
            Ok(()) => removed += 1,
            Err(err) => tracing::warn!(path = %path.display(), %err, "cannot remove stale work"),
        }
    }
    removed
}

/// The job was stopped from outside: cancelled, or (shutdown) queued again.
fn stopped(ctx: &JobContext, job_id: &str, handle: &JobHandle, work_dir: &Path) -> Result<(), StoreError> {
    let _ = std::fs::remove_dir_all(work_dir);
    let events = &ctx.events;
    if handle.lost.load(Ordering::SeqCst) {
        tracing::warn!("stopped: another node runs the job now");
        Ok(())
    } else if handle.requeue.load(Ordering::SeqCst) {
        tracing::info!("stopped by shutdown; queued again");
        events.requeue(job_id).map(|_| ())
    } else {
        tracing::info!("cancelled");
        events.transition_leased(job_id, JobState::Cancelled).map(|_| ())
    }
}

fn job_reason(reason: StopReason) -> pb::JobReason {
    match reason {
        StopReason::ApiCall => pb::JobReason::ApiCall,
        StopReason::AllPeersLeft => pb::JobReason::AllPeersLeft,
        StopReason::MaxDuration => pb::JobReason::MaxDuration,
        StopReason::InternalError => pb::JobReason::InternalError,
        StopReason::NodeShutdown => pb::JobReason::NodeShutdown,
    }
}

/// Records `failure` and ends the job FAILED.
pub fn fail(events: &EventLog, job_id: &str, failure: pb::Failure) -> Result<(), StoreError> {
    let record = failure.clone();
    events.record_leased(job_id, |job| job.failure = Some(record), Some(Event::Failed(failure)))?;
    events.transition_leased(job_id, JobState::Failed).map(|_| ())
}

/// UPLOADING: waits for the files still being uploaded, uploads any the render did not hand
/// over and the manifest last, then COMPLETED. Or FAILED naming the upload that failed (the
/// files not uploaded are kept in the job's working directory).
fn finish_uploads(
    ctx: &JobContext,
    job: &pb::RenderJob,
    handle: &JobHandle,
    summary: &RenderSummary,
    uploader: Uploader,
    publisher: &Publisher,
) -> Result<(), StoreError> {
    let events = &ctx.events;
    let render_end = Instant::now();
    events.transition_leased(&job.id, JobState::Uploading)?;
    events.store().update(&job.id, |stored| {
        stored.encoder = summary.encoder.clone().unwrap_or_default();
        let elapsed_ms = summary.elapsed_s * 1000.0;
        stored.progress = Some(pb::Progress {
            fraction: 1.0,
            media_time_done_ms: summary.duration_ms.round() as i64,
            eta_ms: 0,
            phase: "upload".into(),
            speed: if elapsed_ms > 0.0 { summary.duration_ms / elapsed_ms } else { 0.0 },
        });
        Ok(())
    })?;
    let report = uploader.finish();
    match report.stopped {
        None => {}
        Some(UploadStop::Store(err)) => return Err(err),
        Some(UploadStop::Cancelled) => {
            let work_dir = summary.output_dir.parent().unwrap_or(&summary.output_dir);
            return stopped(ctx, &job.id, handle, work_dir);
        }
        Some(UploadStop::Publish(err)) => return fail(events, &job.id, failure(&*err)),
        Some(UploadStop::Panicked) => {
            let failure = failure_of(
                Fault::Internal("internal"),
                "the upload stopped on an internal error (a bug); it is logged".into(),
            );
            return fail(events, &job.id, failure);
        }
    }
    let runtime = tokio::runtime::Handle::current();
    for entry in summary.outputs.iter().filter(|e| !report.uploaded.contains(&e.file)) {
        match deliver(events, &job.id, publisher, &runtime, &summary.output_dir, entry) {
            Ok(()) => {}
            Err(UploadStop::Store(err)) => return Err(err),
            Err(UploadStop::Publish(err)) => return fail(events, &job.id, failure(&*err)),
            Err(UploadStop::Cancelled | UploadStop::Panicked) => {}
        }
    }
    let manifest = summary.output_dir.join(MANIFEST_FILE_NAME);
    let facts = match file_facts(&manifest) {
        Ok((size_bytes, sha256)) => FileFacts { size_bytes, sha256 },
        Err(source) => return fail(events, &job.id, failure(&StorageError::Io { path: manifest, source })),
    };
    if let Err(err) = runtime.block_on(publisher.publish(&manifest, MANIFEST_FILE_NAME, &facts)) {
        return fail(events, &job.id, failure(&err));
    }
    tracing::info!(
        files = summary.outputs.len() + 1,
        upload_tail_ms = render_end.elapsed().as_millis() as u64,
        "every output uploaded and verified"
    );
    if let Some(work_dir) = summary.output_dir.parent() {
        let _ = std::fs::remove_dir_all(work_dir);
    }
    events.transition_leased(&job.id, JobState::Completed)?;
    tracing::info!("completed");
    Ok(())
}

/// Turns the renderer's per-phase progress into the job's, stored and published at most once
/// per interval.
struct ProgressReporter<'a> {
    ctx: &'a JobContext,
    job_id: &'a str,
    phases: u32,
    started: Instant,
    last: Option<Instant>,
    /// The first error storing progress (reported once the render ends).
    error: Option<StoreError>,
    /// Phases finished so far, and the name of the one under way.
    phase: (u32, &'static str),
}

impl<'a> ProgressReporter<'a> {
    fn new(ctx: &'a JobContext, job_id: &'a str, phases: u32) -> Self {
        ProgressReporter { ctx, job_id, phases, started: Instant::now(), last: None, error: None, phase: (0, "") }
    }

    fn report(&mut self, p: Progress) {
        if self.phase.1 != p.phase {
            if !self.phase.1.is_empty() {
                self.phase.0 += 1;
            }
            self.phase.1 = p.phase;
        }
        let interval = std::time::Duration::from_millis(self.ctx.config.jobs.progress_interval_ms);
        if self.last.is_some_and(|last| last.elapsed() < interval) || self.error.is_some() {
            return;
        }
        self.last = Some(Instant::now());
        let within = if p.total > 0 { p.done as f64 / p.total as f64 } else { 0.0 };
        let fraction = ((f64::from(self.phase.0) + within) / f64::from(self.phases)).clamp(0.0, 1.0);
        let elapsed_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let eta_ms = if fraction > 0.0 { elapsed_ms * (1.0 - fraction) / fraction } else { 0.0 };
        let progress = pb::Progress {
            fraction,
            media_time_done_ms: p.media_done_ms.round() as i64,
            eta_ms: eta_ms.round() as i64,
            phase: p.phase.to_owned(),
            speed: if elapsed_ms > 0.0 { p.media_done_ms / elapsed_ms } else { 0.0 },
        };
        let stored = self.ctx.events.store().update(self.job_id, |job| {
            job.progress = Some(progress.clone());
            Ok(())
        });
        if let Err(err) = stored.and_then(|_| self.ctx.events.publish(self.job_id, Event::Progress(progress))) {
            self.error = Some(err);
        }
    }
}
