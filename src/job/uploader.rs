//! Uploads a job's files while the render goes on: the render hands over each file as soon as
//! it is complete ([`crate::render::FileReady`]); a thread of the job publishes them one by
//! one (each verified by the backend, then one `output_ready` event, then the working copy
//! removed). The first failure stops the uploads; the files not uploaded stay in the job's
//! working directory until the job ends.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use super::events::EventLog;
use super::store::StoreError;
use crate::proto::render_job_event::Event;
use crate::render::CancelFlag;
use crate::render::FileReady;
use crate::render::manifest::OutputEntry;
use crate::storage::FileFacts;
use crate::storage::publish::{PublishError, Publisher, output_file};

/// Why the uploads stopped early.
#[derive(Debug)]
pub enum UploadStop {
    Publish(PublishError),
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
    /// When the last file was verified.
    pub last_verified: Option<Instant>,
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
            let mut report = UploadReport { uploaded: Vec::new(), last_verified: None, stopped: None };
            for entry in files {
                if report.stopped.is_some() {
                    continue;
                }
                if cancel.is_cancelled() {
                    report.stopped = Some(UploadStop::Cancelled);
                    continue;
                }
                let staged = staged_dir.join(&entry.file);
                let facts = FileFacts { size_bytes: entry.size_bytes, sha256: entry.sha256.clone() };
                match runtime.block_on(publisher.publish(&staged, &entry.file, &facts)) {
                    Ok(published) => {
                        let file = output_file(&entry, &published);
                        let listed = file.clone();
                        // A job run again (after a crash) replaces its earlier entries.
                        let recorded = events.record_leased(
                            &job_id,
                            |job| {
                                job.outputs.retain(|o| o.location != listed.location);
                                job.outputs.push(listed);
                            },
                            Event::OutputReady(file),
                        );
                        match recorded {
                            Ok(_) => {
                                report.uploaded.push(entry.file.clone());
                                report.last_verified = Some(Instant::now());
                                let _ = std::fs::remove_file(&staged);
                            }
                            Err(err) => report.stopped = Some(UploadStop::Store(err)),
                        }
                    }
                    Err(err) => {
                        tracing::error!(%err, "upload failed");
                        report.stopped = Some(UploadStop::Publish(err));
                    }
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
        self.thread.join().unwrap_or_else(|_| UploadReport {
            uploaded: Vec::new(),
            last_verified: None,
            stopped: Some(UploadStop::Panicked),
        })
    }
}
