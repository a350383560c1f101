//! The `tessera.v1.RenderService` gRPC front: converts and delegates to the job system (the
//! scheduler and the store); every error becomes a `tonic::Status` through the one map in
//! `error`, keeping the caller's fault (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION)
//! apart from ours (INTERNAL, UNAVAILABLE). Secrets in a job's spec are never returned.

use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;
// The store is SQLite behind a lock: its calls leave the async worker to other tasks.
use tokio::task::block_in_place;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::error::status;
use crate::job::capacity;
use crate::job::live_control::LiveControlError;
use crate::job::scheduler::Scheduler;
use crate::job::spec::redacted;
use crate::job::store::count_of;
use crate::live::session::push_media;
use crate::proto::{self as pb, JobState, render_service_server::RenderService};

pub struct RenderApi {
    scheduler: Arc<Scheduler>,
}

impl RenderApi {
    pub fn new(scheduler: Arc<Scheduler>) -> RenderApi {
        RenderApi { scheduler }
    }
}

fn shown(mut job: pb::RenderJob) -> pb::RenderJob {
    job.spec = job.spec.as_ref().map(redacted);
    job
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RenderJobEvent, Status>> + Send>>;

#[tonic::async_trait]
impl RenderService for RenderApi {
    async fn create_render_job(
        &self,
        request: Request<pb::CreateRenderJobRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        let request = request.into_inner();
        let job = block_in_place(|| self.scheduler.submit(&request.request_id, request.spec)).map_err(status)?;
        Ok(Response::new(shown(job)))
    }

    async fn get_render_job(
        &self,
        request: Request<pb::GetRenderJobRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        let id = request.into_inner().id;
        let job = block_in_place(|| self.scheduler.context().events.store().get(&id)).map_err(status)?;
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
        let page = block_in_place(|| store.list(state, request.page_size, &request.page_token)).map_err(status)?;
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
        result.map(|job| Response::new(shown(job))).map_err(status)
    }

    type WatchRenderJobStream = EventStream;

    async fn watch_render_job(
        &self,
        request: Request<pb::WatchRenderJobRequest>,
    ) -> Result<Response<Self::WatchRenderJobStream>, Status> {
        let request = request.into_inner();
        let events = self.scheduler.context().events.clone();
        block_in_place(|| events.store().get(&request.id)).map_err(status)?;
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
        let counts = block_in_place(|| ctx.events.store().counts()).map_err(status)?;
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
            gpus: block_in_place(capacity::measure)
                .unwrap_or_default()
                .iter()
                .map(|g| pb::GpuStatus {
                    memory_total_mib: g.memory_total_mib,
                    memory_free_mib: g.memory_free_mib(),
                    encoder_sessions: g.encoder_sessions,
                })
                .collect(),
        }))
    }

    async fn push_media(
        &self,
        request: Request<tonic::Streaming<pb::PushMediaRequest>>,
    ) -> Result<Response<pb::PushMediaResponse>, Status> {
        let delivered = push_media(&self.scheduler, request.into_inner()).await.map_err(status)?;
        Ok(Response::new(delivered.into()))
    }

    async fn pause_render_job(
        &self,
        request: Request<pb::PauseRenderJobRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        live_control(&self.scheduler, request.into_inner().id, Scheduler::pause).await
    }

    async fn resume_render_job(
        &self,
        request: Request<pb::ResumeRenderJobRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        live_control(&self.scheduler, request.into_inner().id, Scheduler::resume).await
    }

    async fn stop_render_job(
        &self,
        request: Request<pb::StopRenderJobRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        live_control(&self.scheduler, request.into_inner().id, Scheduler::stop).await
    }
}

/// Runs a blocking live-control call (the store may be asked) off the async workers.
async fn live_control(
    scheduler: &Arc<Scheduler>,
    id: String,
    control: fn(&Scheduler, &str) -> Result<pb::RenderJob, LiveControlError>,
) -> Result<Response<pb::RenderJob>, Status> {
    let scheduler = scheduler.clone();
    let result = tokio::task::spawn_blocking(move || control(&scheduler, &id))
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
    result.map(|job| Response::new(shown(job))).map_err(status)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_owned()).unwrap_or_default()
}
