//! Runs queued jobs, oldest first, at most `jobs.max_concurrent` at a time (a job in slices
//! counting a slot per slice), each on a blocking thread inside a `job` span (so every log
//! line of a job carries its id). Each claimed job is
//! leased to this node and its lease renewed by a heartbeat, which also brings cancels recorded
//! in the store (by any node) to the run. Jobs whose node died are taken over once their lease
//! expires. On shutdown it stops taking jobs, lets the running ones finish within the grace
//! period and queues the rest again.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

use super::admission::admit;
use super::capacity;
use super::events::now_unix_ms;
use super::runner::{self, JobContext, JobHandle};
use super::spec::InvalidJob;
use super::state::is_final;
use super::store::{LeaseStatus, LeaseTerms, StoreError};
use crate::error::{Classify, Fault, failure_of};
use crate::proto::{JobState, RenderJob};
use crate::render::live::StopReason;

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("job `{0}` is uploading its outputs and can no longer be cancelled")]
    Uploading(String),
}

impl Classify for CancelError {
    fn fault(&self) -> Fault {
        match self {
            CancelError::Store(err) => err.fault(),
            CancelError::Uploading(_) => Fault::Precondition,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the node is shutting down and takes no new jobs")]
    ShuttingDown,
    #[error(transparent)]
    Invalid(#[from] InvalidJob),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Classify for SubmitError {
    fn fault(&self) -> Fault {
        match self {
            SubmitError::ShuttingDown => Fault::Unavailable("shutting_down"),
            SubmitError::Invalid(err) => err.fault(),
            SubmitError::Store(err) => err.fault(),
        }
    }
}

/// Frees a job's slot and handle when its thread is done with it, however it ends.
struct Release {
    scheduler: Arc<Scheduler>,
    job_id: String,
    _permit: OwnedSemaphorePermit,
    /// The slots of a job's slices beyond its own (see [`slots_for`]).
    _more: Option<OwnedSemaphorePermit>,
}

/// The slots a job takes: one, or one per slice of a composite in slices (its slice processes
/// run at once), up to all of the node's.
fn slots_for(job: &RenderJob, max_concurrent: u32) -> u32 {
    let parallelism = job.spec.as_ref().map_or(1, |spec| spec.parallelism);
    parallelism.clamp(1, max_concurrent.max(1))
}

impl Drop for Release {
    fn drop(&mut self) {
        self.scheduler.handles().remove(&self.job_id);
        self.scheduler.ctx.metrics.job_stopped();
    }
}

pub struct Scheduler {
    ctx: JobContext,
    running: Mutex<HashMap<String, JobHandle>>,
    wake: Notify,
    stopping: watch::Sender<bool>,
    closed: watch::Sender<bool>,
    /// Held from claiming a job until its handle is in `running`, so shutdown sees every job.
    claiming: Mutex<()>,
    lease: LeaseTerms,
}

impl Scheduler {
    pub fn new(ctx: JobContext) -> Arc<Scheduler> {
        let lease = LeaseTerms {
            node_id: ctx.events.node_id().to_owned(),
            lease_ms: i64::try_from(ctx.config.jobs.lease_s.saturating_mul(1000)).unwrap_or(i64::MAX),
        };
        Arc::new(Scheduler {
            lease,
            ctx,
            running: Mutex::default(),
            wake: Notify::new(),
            stopping: watch::Sender::new(false),
            closed: watch::Sender::new(false),
            claiming: Mutex::new(()),
        })
    }

    pub fn context(&self) -> &JobContext {
        &self.ctx
    }

    /// Turns true when the server starts shutting down.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Turns true when the server is about to stop serving: watch streams end.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }

    pub fn close_streams(&self) {
        self.closed.send_replace(true);
    }

    pub fn accepting(&self) -> bool {
        !*self.stopping.borrow()
    }

    /// Admits and queues a job (blocking: the store is called). The same non-empty
    /// `request_id` returns the job it first created.
    pub fn submit(
        &self,
        request_id: &str,
        spec: Option<crate::proto::RenderJobSpec>,
    ) -> Result<RenderJob, SubmitError> {
        if !self.accepting() {
            return Err(SubmitError::ShuttingDown);
        }
        let spec = admit(request_id, spec, &self.ctx.config)?;
        let events = &self.ctx.events;
        let (job, created) = events.store().create(request_id, &spec, now_unix_ms())?;
        if created {
            events.notify(&job.id);
            tracing::info!(job_id = %job.id, request_id = %job.request_id, "queued");
            self.wake.notify_one();
        }
        Ok(job)
    }

    /// Held while a job is claimed and its handle put in place.
    pub(super) fn claiming_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.claiming.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn handles(&self) -> std::sync::MutexGuard<'_, HashMap<String, JobHandle>> {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues again the jobs this node was running when it last stopped (other nodes' jobs
    /// are left to their leases), then claims and runs jobs until shutdown, renewing the leases
    /// of the running ones.
    pub async fn run(self: Arc<Self>) {
        let events = &self.ctx.events;
        match events.store().requeue_own(&self.lease.node_id, now_unix_ms()) {
            Ok(ids) => {
                for id in ids {
                    tracing::warn!(job_id = %id, "was running when this node stopped; queued again");
                    events.notify(&id);
                }
            }
            Err(err) => tracing::error!(%err, "cannot re-queue interrupted jobs"),
        }
        tokio::spawn(self.clone().heartbeat());
        let slots = Arc::new(Semaphore::new(self.ctx.config.jobs.max_concurrent as usize));
        let mut stopping = self.stopping();
        loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => return },
                _ = stopping.wait_for(|s| *s) => return,
            };
            let (job, handle) = loop {
                if let Some(claimed) = self.claim() {
                    break claimed;
                }
                if !self.accepting() {
                    return;
                }
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stopping.wait_for(|s| *s) => return,
                }
            };
            // A job in slices waits for its slices' slots (the node's other jobs finishing);
            // at shutdown it runs, and is handed back, like the others.
            let more = match slots_for(&job, self.ctx.config.jobs.max_concurrent) - 1 {
                0 => None,
                n => tokio::select! {
                    permit = slots.clone().acquire_many_owned(n) => permit.ok(),
                    _ = stopping.wait_for(|s| *s) => None,
                },
            };
            self.ctx.metrics.job_started();
            let scheduler = self.clone();
            tokio::task::spawn_blocking(move || {
                let span = tracing::info_span!("job", job_id = %job.id);
                let _entered = span.enter();
                // Whatever happens below, the slot and the handle are given back.
                let _release =
                    Release { scheduler: scheduler.clone(), job_id: job.id.clone(), _permit: permit, _more: more };
                tracing::info!(request_id = %job.request_id, "started");
                let ctx = &scheduler.ctx;
                match std::panic::catch_unwind(AssertUnwindSafe(|| runner::run(ctx, &job, &handle))) {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => tracing::error!(%err, "the job store failed while running the job"),
                    Err(_) => {
                        tracing::error!("the render panicked");
                        let _ = std::fs::remove_dir_all(ctx.config.work_dir(&job.id));
                        let failure = failure_of(
                            Fault::Internal("internal"),
                            "the render stopped on an internal error (a bug); it is logged".into(),
                        );
                        if let Err(err) = runner::fail(&ctx.events, &job.id, failure) {
                            tracing::error!(%err, "cannot record the failure");
                        }
                    }
                }
            });
        }
    }

    /// The next queued job, RUNNING now, with its handle in place; none while shutting down.
    fn claim(&self) -> Option<(RenderJob, JobHandle)> {
        // A node whose GPUs have no room leaves the job to one that has.
        let needs = self.ctx.config.jobs.needs();
        if needs != capacity::Needs::default()
            && let Some(why) = capacity::refusal(capacity::measure().as_deref(), needs)
        {
            tracing::debug!(%why, "not taking a job now");
            return None;
        }
        let _claiming = self.claiming.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !self.accepting() {
            return None;
        }
        match self.ctx.events.store().claim_next(&self.lease, now_unix_ms()) {
            Ok(Some(job)) => {
                let handle = JobHandle::default();
                self.handles().insert(job.id.clone(), handle.clone());
                self.ctx.events.notify(&job.id);
                Some((job, handle))
            }
            Ok(None) => None,
            Err(err) => {
                tracing::error!(%err, "cannot take the next job");
                None
            }
        }
    }

    /// Cancels a queued or running job; a finished job is returned as it is.
    pub fn cancel(&self, id: &str) -> Result<RenderJob, CancelError> {
        let events = &self.ctx.events;
        loop {
            let job = events.store().get(id)?;
            match job.state() {
                state if is_final(state) => return Ok(job),
                JobState::Queued => match events.transition(id, JobState::Cancelled) {
                    Ok(job) => return Ok(job),
                    // Claimed meanwhile: cancel it as a running job.
                    Err(StoreError::BadTransition { .. }) => continue,
                    Err(err) => return Err(err.into()),
                },
                JobState::Uploading => return Err(CancelError::Uploading(id.to_owned())),
                _ => {
                    // Recorded in the store: whichever node runs the job sees it at its next
                    // heartbeat (and a node taking the job over ends it instead of running it).
                    events.store().request_cancel(id)?;
                    // A claim puts the job's handle in place under this lock.
                    let _claiming = self.claiming.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if let Some(handle) = self.handles().get(id) {
                        handle.cancel.cancel();
                        return Ok(job);
                    }
                    let now = events.store().get(id)?;
                    if now.state() == job.state() {
                        return Ok(now); // Running on another node: it stops there.
                    }
                    // It finished meanwhile: answer from its new state.
                }
            }
        }
    }

    /// Renews the lease of every job running here, a third of the lease apart; stops a run
    /// whose job was cancelled (on any node) or taken over by another node.
    async fn heartbeat(self: Arc<Self>) {
        let period = Duration::from_millis(u64::try_from(self.lease.lease_ms / 3).unwrap_or(1000).max(100));
        let mut stopping = self.stopping();
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                _ = stopping.wait_for(|s| *s) => {}
            }
            let running: Vec<(String, JobHandle)> =
                self.handles().iter().map(|(id, h)| (id.clone(), h.clone())).collect();
            if running.is_empty() && !self.accepting() {
                return;
            }
            for (id, handle) in running {
                let store = self.ctx.events.store().clone();
                let lease = self.lease.clone();
                let renewed =
                    tokio::task::spawn_blocking(move || store.renew_lease(&id, &lease, now_unix_ms()).map(|s| (id, s)))
                        .await;
                match renewed {
                    Ok(Ok((_, LeaseStatus::Held { cancel_requested: false }))) => {}
                    Ok(Ok((id, LeaseStatus::Held { cancel_requested: true }))) => {
                        tracing::info!(job_id = %id, "cancel recorded in the store; stopping the run");
                        handle.cancel.cancel();
                    }
                    Ok(Ok((id, LeaseStatus::Lost))) => {
                        handle.lost.store(true, Ordering::SeqCst);
                        handle.cancel.cancel();
                        // A run that has just ended gave its lease up itself: no news.
                        let store = self.ctx.events.store().clone();
                        let state =
                            tokio::task::spawn_blocking(move || store.get(&id).map(|job| (id, job.state()))).await;
                        match state {
                            Ok(Ok((id, state))) if is_final(state) => {
                                tracing::debug!(job_id = %id, "lease given up by a run that ended");
                            }
                            Ok(Ok((id, _))) => {
                                tracing::warn!(job_id = %id, "lease lost (another node took the job over); stopping the run");
                            }
                            Ok(Err(err)) => tracing::warn!(%err, "lease lost; stopping the run"),
                            Err(err) => tracing::error!(%err, "lease check task failed"),
                        }
                    }
                    Ok(Err(err)) => tracing::error!(%err, "cannot renew a lease"),
                    Err(err) => tracing::error!(%err, "lease renewal task failed"),
                }
            }
        }
    }

    /// Stops taking jobs; waits up to `grace` for the running ones, then stops them (they are
    /// queued again) and waits for them to let go.
    pub async fn shutdown(&self, grace: Duration) {
        self.stopping.send_replace(true);
        self.ctx.metrics.set_accepting(false);
        // A claim under way finishes putting its handle in place.
        drop(self.claiming.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        // A live call cannot move to another node (its senders are connected here), and a
        // rerun would start a new call: it stops now, and its files are finished and delivered
        // within the grace.
        for (id, handle) in self.handles().iter() {
            if let Some(call) = handle.live.get()
                && call.stop(StopReason::NodeShutdown).is_ok()
            {
                tracing::info!(job_id = %id, "live job stopped by the node's shutdown");
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        while !self.handles().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let left: Vec<(String, JobHandle)> = self.handles().iter().map(|(id, h)| (id.clone(), h.clone())).collect();
        for (id, handle) in &left {
            if handle.cancel.is_cancelled() {
                continue; // Cancelled by its owner: it ends as CANCELLED.
            }
            tracing::warn!(job_id = %id, "still running at shutdown: stopping it; it runs again on the next start");
            handle.requeue.store(true, Ordering::SeqCst);
            handle.cancel.cancel();
        }
        while !self.handles().is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_in_slices_takes_a_slot_per_slice_up_to_the_nodes() {
        let job = |parallelism| RenderJob {
            spec: Some(crate::proto::RenderJobSpec { parallelism, ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(slots_for(&job(0), 4), 1);
        assert_eq!(slots_for(&job(1), 4), 1);
        assert_eq!(slots_for(&job(3), 4), 3);
        assert_eq!(slots_for(&job(16), 4), 4, "never more than the node has");
        assert_eq!(slots_for(&RenderJob::default(), 4), 1, "no spec");
        assert_eq!(slots_for(&job(3), 0), 1);
    }
}
