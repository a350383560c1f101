//! Uploads a job's files while the render goes on: the render hands over each file as soon as
//! it is complete ([`crate::render::FileReady`]); a thread of the job publishes them one by
//! one (each verified by the backend, then one `output_ready` event, then the working copy
//! removed). The first failure stops the uploads; the files not uploaded stay in the job's
//! working directory until the job ends.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use super::events::EventLog;
use super::store::StoreError;
use crate::proto::{self as pb, render_job_event::Event};
use crate::render::CancelFlag;
use crate::render::FileReady;
use crate::render::manifest::OutputEntry;
use crate::storage::FileFacts;
use crate::storage::publish::{PublishError, Publisher, output_file};

/// Why the uploads stopped early.
#[derive(Debug)]
pub enum UploadStop {
    Publish(Box<PublishError>),
    Store(StoreError),
    Cancelled,
    /// The upload thread panicked (a bug).
    Panicked,
}

/// What the uploads did.
#[derive(Debug)]
pub struct UploadReport {
    /// The files uploaded and announced.
    pub uploaded: Vec<String>,
    pub stopped: Option<UploadStop>,
}

pub struct Uploader {
    sender: Option<mpsc::Sender<OutputEntry>>,
    thread: std::thread::JoinHandle<UploadReport>,
}

impl Uploader {
    /// Starts the upload thread for the files of `staged_dir` (the render's output directory).
    pub fn start(
        events: EventLog,
        job_id: String,
        publisher: Publisher,
        staged_dir: PathBuf,
        cancel: CancelFlag,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<Uploader> {
        let (sender, files) = mpsc::channel::<OutputEntry>();
        let span = tracing::info_span!("upload", storage = publisher.store.kind());
        let thread = std::thread::Builder::new().name(format!("upload-{job_id}")).spawn(move || {
            let _entered = span.enter();
            let mut report = UploadReport { uploaded: Vec::new(), stopped: None };
            for entry in files {
                if report.stopped.is_some() {
                    continue;
                }
                if cancel.is_cancelled() {
                    report.stopped = Some(UploadStop::Cancelled);
                    continue;
                }
                match deliver(&events, &job_id, &publisher, &runtime, &staged_dir, &entry) {
                    Ok(()) => report.uploaded.push(entry.file.clone()),
                    Err(stop) => report.stopped = Some(stop),
                }
            }
            report
        })?;
        Ok(Uploader { sender: Some(sender), thread })
    }

    /// The render's hook: each finished file is queued for upload.
    pub fn file_ready(&self) -> Option<FileReady> {
        let sender = self.sender.clone()?;
        let sender = std::sync::Mutex::new(sender);
        Some(FileReady::new(move |entry: &OutputEntry| {
            if let Ok(sender) = sender.lock() {
                let _ = sender.send(entry.clone());
            }
        }))
    }

    /// Waits for every queued file.
    pub fn finish(mut self) -> UploadReport {
        self.sender = None;
        self.thread
            .join()
            .unwrap_or_else(|_| UploadReport { uploaded: Vec::new(), stopped: Some(UploadStop::Panicked) })
    }
}

/// Whether an earlier run of `job_id` announced this very object (same place, same bytes).
fn announced_before(events: &EventLog, job_id: &str, file: &pb::OutputFile) -> Result<bool, StoreError> {
    const BATCH: u32 = 512;
    let mut after = 0;
    loop {
        let batch = events.store().events_after(job_id, after, BATCH)?;
        let Some(last) = batch.last() else { return Ok(false) };
        after = last.seq;
        let same = |e: &pb::RenderJobEvent| matches!(&e.event, Some(Event::OutputReady(o)) if o.location == file.location && o.sha256 == file.sha256);
        if batch.iter().any(same) {
            return Ok(true);
        }
    }
}

/// Uploads one finished file of `staged_dir`, announces it (`output_ready`; a job run again
/// after a crash replaces its earlier entry) and removes the working copy.
pub fn deliver(
    events: &EventLog,
    job_id: &str,
    publisher: &Publisher,
    runtime: &tokio::runtime::Handle,
    staged_dir: &Path,
    entry: &OutputEntry,
) -> Result<(), UploadStop> {
    let staged = staged_dir.join(&entry.file);
    let facts = FileFacts { size_bytes: entry.size_bytes, sha256: entry.sha256.clone() };
    let published = runtime.block_on(publisher.publish(&staged, &entry.file, &facts)).map_err(|err| {
        tracing::error!(%err, "upload failed");
        UploadStop::Publish(Box::new(err))
    })?;
    let file = output_file(entry, &published);
    let listed = file.clone();
    // A run after a crash or a takeover that writes the same object again lists it, but does
    // not announce it a second time.
    let announced = announced_before(events, job_id, &file).map_err(UploadStop::Store)?;
    events
        .record_leased(
            job_id,
            |job| {
                job.outputs.retain(|o| o.location != listed.location);
                job.outputs.push(listed);
            },
            (!announced).then_some(Event::OutputReady(file)),
        )
        .map_err(UploadStop::Store)?;
    let _ = std::fs::remove_file(&staged);
    Ok(())
}
