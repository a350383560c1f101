//! Live jobs from outside: the call of a live job running on this node (where PushMedia
//! streams go), and pause, resume and stop. Pausing and resuming are recorded in the store as
//! PAUSED and RUNNING (with their events); a stop ends the call, and the run then finishes and
//! uploads the files as for any job, recording why it stopped.

use std::sync::Arc;

use super::scheduler::Scheduler;
use super::state::{is_final, state_name};
use super::store::StoreError;
use crate::error::{Classify, Fault};
use crate::proto::{self as pb, JobState};
use crate::render::live::{LiveCall, LiveError, StopReason};

#[derive(Debug, thiserror::Error)]
pub enum LiveControlError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("job `{0}` has no live source")]
    NotLive(String),
    #[error("live job `{0}` has not started yet; try again once it is RUNNING")]
    NotStarted(String),
    #[error("live job `{id}` is {state}: it takes no more media or control")]
    Over { id: String, state: &'static str },
    #[error("live job `{0}` runs on another node: send its media and control there")]
    Elsewhere(String),
    #[error("live job `{id}`: {source}")]
    Call {
        id: String,
        #[source]
        source: LiveError,
    },
}

impl Classify for LiveControlError {
    fn fault(&self) -> Fault {
        match self {
            LiveControlError::Store(err) => err.fault(),
            LiveControlError::NotStarted(_) => Fault::Unavailable("not_started"),
            LiveControlError::NotLive(_)
            | LiveControlError::Over { .. }
            | LiveControlError::Elsewhere(_)
            | LiveControlError::Call { .. } => Fault::Precondition,
        }
    }
}

fn is_live(job: &pb::RenderJob) -> bool {
    job.spec.as_ref().is_some_and(|spec| spec.sources.iter().any(|s| matches!(s.kind, Some(pb::source::Kind::Live(_)))))
}

impl Scheduler {
    /// The call of live job `id`, running on this node (blocking: the store may be asked).
    pub fn live_call(&self, id: &str) -> Result<Arc<LiveCall>, LiveControlError> {
        if let Some(Some(call)) = self.handles().get(id).map(|handle| handle.live.get().cloned()) {
            return Ok(call);
        }
        let store = self.context().events.store();
        if !is_live(&store.get(id)?) {
            return Err(LiveControlError::NotLive(id.to_owned()));
        }
        // A claim moves the job to RUNNING and puts its handle in place under this lock: with
        // it held, a job RUNNING in the store without a handle here runs elsewhere.
        let _claiming = self.claiming_lock();
        if let Some(handle) = self.handles().get(id) {
            // Claimed here, its run not yet started.
            return handle.live.get().cloned().ok_or_else(|| LiveControlError::NotStarted(id.to_owned()));
        }
        Err(match store.get(id)?.state() {
            JobState::Queued => LiveControlError::NotStarted(id.to_owned()),
            state if is_final(state) || state == JobState::Uploading => {
                LiveControlError::Over { id: id.to_owned(), state: state_name(state) }
            }
            _ => LiveControlError::Elsewhere(id.to_owned()),
        })
    }

    /// Pauses live job `id`: PAUSED, and what is captured until it resumes is left out.
    pub fn pause(&self, id: &str) -> Result<pb::RenderJob, LiveControlError> {
        let call = self.live_call(id)?;
        call.pause().map_err(|source| LiveControlError::Call { id: id.to_owned(), source })?;
        Ok(self.context().events.transition_leased(id, JobState::Paused)?)
    }

    /// Resumes paused live job `id`: RUNNING again.
    pub fn resume(&self, id: &str) -> Result<pb::RenderJob, LiveControlError> {
        let call = self.live_call(id)?;
        call.resume().map_err(|source| LiveControlError::Call { id: id.to_owned(), source })?;
        Ok(self.context().events.transition_leased(id, JobState::Running)?)
    }

    /// Stops live job `id` now: its files are finished and uploaded.
    pub fn stop(&self, id: &str) -> Result<pb::RenderJob, LiveControlError> {
        let call = self.live_call(id)?;
        call.stop(StopReason::ApiCall).map_err(|source| LiveControlError::Call { id: id.to_owned(), source })?;
        Ok(self.context().events.store().get(id)?)
    }
}
