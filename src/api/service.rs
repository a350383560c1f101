//! The `tessera.v1.RenderService` gRPC front: converts and delegates to the job store and the
//! scheduler; maps every error to a `tonic::Status` here, keeping the caller's fault
//! (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION) apart from ours (INTERNAL, UNAVAILABLE).
//! Secrets in a job's spec are never returned.

use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;
// The store is SQLite behind a lock: its calls leave the async worker to other tasks.
use tokio::task::block_in_place;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::pb::{self, JobState, render_service_server::RenderService};
use crate::job::spec::{FieldViolation, InvalidJob, redacted, validate};
use crate::service::config::StorageConfig;
use crate::service::events::now_unix_ms;
use crate::service::scheduler::{CancelError, Scheduler};
use crate::service::store::{StoreError, count_of};

pub struct RenderApi {
    scheduler: Arc<Scheduler>,
}

impl RenderApi {
    pub fn new(scheduler: Arc<Scheduler>) -> RenderApi {
        RenderApi { scheduler }
    }
}

fn store_status(err: StoreError) -> Status {
    match err {
        StoreError::NotFound { .. } => Status::not_found(err.to_string()),
        StoreError::BadPageToken { .. } => Status::invalid_argument(err.to_string()),
        StoreError::BadTransition { .. } => Status::failed_precondition(err.to_string()),
        StoreError::Sqlite { .. } | StoreError::Corrupt { .. } => Status::internal(err.to_string()),
    }
}

fn shown(mut job: pb::RenderJob) -> pb::RenderJob {
    job.spec = job.spec.as_ref().map(redacted);
    job
}

fn invalid(violations: &[FieldViolation]) -> Status {
    let lines: Vec<String> = violations.iter().map(ToString::to_string).collect();
    Status::invalid_argument(format!("invalid job: {}", lines.join("; ")))
}

/// `path` made absolute under `root` (a relative path is taken relative to it); `None` when it
/// would lie outside.
fn under_root(root: &Path, path: &Path) -> Option<PathBuf> {
    let joined = if path.is_absolute() { path.to_path_buf() } else { root.join(path) };
    let escapes = joined.components().any(|c| matches!(c, Component::ParentDir));
    (!escapes && joined.starts_with(root)).then_some(joined)
}

/// The node's limits on where a job may read and write; rewrites a relative local output
/// path to its place under `local_root`.
fn confine(spec: &mut pb::RenderJobSpec, limits: &StorageConfig) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    if let Some(root) = &limits.local_root
        && let Some(storage) = spec.storage.as_mut()
        && matches!(storage.r#type.as_str(), "" | "local")
    {
        match under_root(root, Path::new(&storage.path_prefix)) {
            Some(path) => storage.path_prefix = path.display().to_string(),
            None => violations.push(FieldViolation {
                field: "storage.path_prefix".into(),
                reason: format!("`{}` is outside this node's output root {}", storage.path_prefix, root.display()),
            }),
        }
    }
    for (i, source) in spec.sources.iter().enumerate() {
        let Some(pb::source::Kind::RawArchive(path)) = &source.kind else { continue };
        if path.is_empty() || path.contains("://") {
            continue;
        }
        let allowed = limits.source_roots.is_empty()
            || limits
                .source_roots
                .iter()
                .any(|root| Path::new(path).is_absolute() && under_root(root, Path::new(path)).is_some());
        let reason = if !allowed {
            format!("`{path}` is not under one of this node's source roots")
        } else if !Path::new(path).exists() {
            format!("`{path}` does not exist on this node")
        } else {
            continue;
        };
        violations.push(FieldViolation { field: format!("sources[{i}].raw_archive"), reason });
    }
    violations
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RenderJobEvent, Status>> + Send>>;

#[tonic::async_trait]
impl RenderService for RenderApi {
    async fn create_render_job(
        &self,
        request: Request<pb::CreateRenderJobRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        let request = request.into_inner();
        if !self.scheduler.accepting() {
            return Err(Status::unavailable("the node is shutting down and takes no new jobs"));
        }
        let mut spec = request
            .spec
            .ok_or_else(|| invalid(&[FieldViolation { field: "spec".into(), reason: "missing".into() }]))?;
        let ctx = self.scheduler.context();
        let mut violations = confine(&mut spec, &ctx.config.storage);
        if let Err(InvalidJob(more)) = validate(&spec) {
            violations.extend(more);
        }
        if !violations.is_empty() {
            return Err(invalid(&violations));
        }
        let (job, created) = block_in_place(|| ctx.events.store().create(&request.request_id, &spec, now_unix_ms()))
            .map_err(store_status)?;
        if created {
            ctx.events.notify(&job.id);
            tracing::info!(job_id = %job.id, request_id = %job.request_id, "queued");
            self.scheduler.wake();
        }
        Ok(Response::new(shown(job)))
    }

    async fn get_render_job(
        &self,
        request: Request<pb::GetRenderJobRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        let id = request.into_inner().id;
        let job = block_in_place(|| self.scheduler.context().events.store().get(&id)).map_err(store_status)?;
        Ok(Response::new(shown(job)))
    }

    async fn list_render_jobs(
        &self,
        request: Request<pb::ListRenderJobsRequest>,
    ) -> Result<Response<pb::ListRenderJobsResponse>, Status> {
        let request = request.into_inner();
        let state = match JobState::try_from(request.state) {
            Ok(JobState::Unspecified) => None,
            Ok(state) => Some(state),
            Err(_) => return Err(Status::invalid_argument(format!("state: unknown value {}", request.state))),
        };
        let store = self.scheduler.context().events.store();
        let page =
            block_in_place(|| store.list(state, request.page_size, &request.page_token)).map_err(store_status)?;
        Ok(Response::new(pb::ListRenderJobsResponse {
            jobs: page.jobs.into_iter().map(shown).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn cancel_render_job(
        &self,
        request: Request<pb::CancelRenderJobRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        let id = request.into_inner().id;
        let scheduler = self.scheduler.clone();
        let result = tokio::task::spawn_blocking(move || scheduler.cancel(&id))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        match result {
            Ok(job) => Ok(Response::new(shown(job))),
            Err(CancelError::Store(err)) => Err(store_status(err)),
            Err(err @ CancelError::Uploading(_)) => Err(Status::failed_precondition(err.to_string())),
        }
    }

    type WatchRenderJobStream = EventStream;

    async fn watch_render_job(
        &self,
        request: Request<pb::WatchRenderJobRequest>,
    ) -> Result<Response<Self::WatchRenderJobStream>, Status> {
        let request = request.into_inner();
        let events = self.scheduler.context().events.clone();
        block_in_place(|| events.store().get(&request.id)).map_err(store_status)?;
        let (tx, rx) = mpsc::channel(64);
        let stop = self.scheduler.closed();
        tokio::spawn(async move { events.follow(&request.id, request.after_seq, tx, stop).await });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_node_status(
        &self,
        _request: Request<pb::GetNodeStatusRequest>,
    ) -> Result<Response<pb::NodeStatus>, Status> {
        let ctx = self.scheduler.context();
        let counts = block_in_place(|| ctx.events.store().counts()).map_err(store_status)?;
        let queued = count_of(&counts, JobState::Queued);
        let (video_encoder, gpu_adapter) = ctx.metrics.engine();
        Ok(Response::new(pb::NodeStatus {
            node: hostname(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            max_concurrent_jobs: ctx.metrics.capacity(),
            running_jobs: ctx.metrics.running(),
            queued_jobs: u32::try_from(queued).unwrap_or(u32::MAX),
            accepting_jobs: self.scheduler.accepting(),
            video_encoder,
            gpu_adapter,
        }))
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_and_sources_stay_under_the_node_roots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (inputs, outputs) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::create_dir_all(&inputs).expect("mkdir");
        let archive = inputs.join("call.zip");
        std::fs::write(&archive, b"zip").expect("write");
        let limits = StorageConfig {
            local_root: Some(outputs.clone()),
            source_roots: vec![inputs.clone()],
            ..StorageConfig::default()
        };
        let mut spec = pb::RenderJobSpec {
            sources: vec![pb::Source { kind: Some(pb::source::Kind::RawArchive(archive.display().to_string())) }],
            storage: Some(pb::Storage {
                r#type: "local".into(),
                path_prefix: "acme/call-1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(confine(&mut spec, &limits).is_empty());
        let expected = outputs.join("acme/call-1").display().to_string();
        assert_eq!(spec.storage.as_ref().map(|s| s.path_prefix.clone()), Some(expected));
        let escape = format!("{}/../../etc/passwd", inputs.display());
        for (prefix, archive) in [("../etc", escape.as_str()), ("/tmp/x", "/etc/passwd")] {
            let mut bad = spec.clone();
            if let Some(storage) = bad.storage.as_mut() {
                storage.path_prefix = prefix.into();
            }
            bad.sources[0].kind = Some(pb::source::Kind::RawArchive(archive.into()));
            let fields: Vec<String> = confine(&mut bad, &limits).into_iter().map(|v| v.field).collect();
            assert_eq!(fields, vec!["storage.path_prefix", "sources[0].raw_archive"], "{prefix} {archive}");
        }
        let mut missing = spec.clone();
        missing.sources[0].kind = Some(pb::source::Kind::RawArchive(inputs.join("nope.zip").display().to_string()));
        let violations = confine(&mut missing, &StorageConfig::default());
        assert_eq!(violations.len(), 1);
        assert!(violations[0].reason.contains("does not exist"), "{:?}", violations[0]);
    }
}
