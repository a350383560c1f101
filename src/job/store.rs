//! The job store: every job, its numbered events and who runs it, shared by every node that
//! uses it. A trait, so the embedded SQLite store ([`super::sqlite::SqliteStore`]) and a shared
//! one (PostgreSQL) serve the same callers.
//!
//! Running a job is a lease: the node that claims it holds it until an expiry it renews by
//! heartbeat. A job whose lease expired (its node is gone) can be claimed again by any node;
//! a job with a live lease is never taken. A cancel is recorded in the store and seen by the
//! holder at its next heartbeat. Watchers wake on the store's own notification, which also
//! fires for events other nodes write.

use prost::Message;
use tokio::sync::watch;

use super::state::{can_move, is_final, state_name};
use crate::error::{Classify, Fault, quoted};
use crate::proto::{self as pb, JobState, RenderJob, render_job_event::Event};

/// Listing pages hold at most this many jobs, and this many when the caller says nothing.
pub const MAX_PAGE_SIZE: u32 = 1000;
pub const DEFAULT_PAGE_SIZE: u32 = 50;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job store {path}: {reason}")]
    Backend { path: String, reason: String },
    #[error("no job {}", quoted(id))]
    NotFound { id: String },
    #[error("job `{id}` cannot go from {from} to {to}")]
    BadTransition { id: String, from: &'static str, to: &'static str },
    #[error("job `{id}` is no longer leased by node `{node}` (another node took it over)")]
    LeaseLost { id: String, node: String },
    #[error("job `{id}` in the store cannot be read: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("invalid page token {}", quoted(token))]
    BadPageToken { token: String },
}

impl Classify for StoreError {
    fn fault(&self) -> Fault {
        match self {
            StoreError::NotFound { .. } => Fault::NotFound,
            StoreError::BadPageToken { .. } => Fault::BadInput("invalid_argument"),
            StoreError::BadTransition { .. } => Fault::Precondition,
            StoreError::LeaseLost { .. } => Fault::Internal("lease_lost"),
            StoreError::Backend { .. } | StoreError::Corrupt { .. } => Fault::Internal("store"),
        }
    }
}

/// A page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub jobs: Vec<RenderJob>,
    /// Empty on the last page.
    pub next_page_token: String,
}

/// A lease asked for or held: the node and how long a claim or renewal lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseTerms {
    pub node_id: String,
    pub lease_ms: i64,
}

/// What a heartbeat learned about a leased job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    /// Still ours, renewed; `cancel_requested` once someone asked to cancel the job.
    Held { cancel_requested: bool },
    /// Another node holds it now, or the job is no longer running.
    Lost,
}

/// A change to one job: sees the stored job, edits it, and returns the event to record.
pub type Change<'a> = &'a mut (dyn FnMut(&mut RenderJob) -> Result<Option<Event>, StoreError> + Send);

/// Where jobs, their events and their leases are kept. Every call is one transaction.
pub trait JobStore: Send + Sync + std::fmt::Debug {
    /// Stores a new QUEUED job, or, when a job with the same non-empty `request_id` exists,
    /// returns that one. The flag says whether the job is new.
    fn create(
        &self,
        request_id: &str,
        spec: &pb::RenderJobSpec,
        now_unix_ms: i64,
    ) -> Result<(RenderJob, bool), StoreError>;

    fn get(&self, id: &str) -> Result<RenderJob, StoreError>;

    /// Jobs in submission order, optionally of one state, `page_size` at a time (0: the
    /// default); `page_token` is the previous page's `next_page_token`.
    fn list(&self, state: Option<JobState>, page_size: u32, page_token: &str) -> Result<Page, StoreError>;

    /// Changes a job and records the event `change` returns (if any), in one transaction.
    /// With `holder`, the change is refused ([`StoreError::LeaseLost`]) unless that node holds
    /// the job's lease. A job leaving RUNNING/UPLOADING gives its lease up.
    fn update_with_event(
        &self,
        id: &str,
        now_unix_ms: i64,
        holder: Option<&str>,
        change: Change<'_>,
    ) -> Result<(RenderJob, Option<pb::RenderJobEvent>), StoreError>;

    /// Appends an event that changes nothing else (progress, output ready, failure).
    fn append_event(&self, job_id: &str, at_unix_ms: i64, event: Event) -> Result<pb::RenderJobEvent, StoreError>;

    /// A job's events after `after_seq`, oldest first, at most `limit`.
    fn events_after(&self, job_id: &str, after_seq: u64, limit: u32) -> Result<Vec<pb::RenderJobEvent>, StoreError>;

    /// The number of a job's last event (0: none yet).
    fn last_event_seq(&self, job_id: &str) -> Result<u64, StoreError>;

    /// Takes the oldest job that is QUEUED, or RUNNING/UPLOADING under an expired lease (its
    /// node is gone: the job starts again from scratch, a QUEUED event first), and leases it
    /// to `terms.node_id`. It is RUNNING, started now, when this returns.
    fn claim_next(&self, terms: &LeaseTerms, now_unix_ms: i64) -> Result<Option<RenderJob>, StoreError>;

    /// Extends the lease `terms.node_id` holds on `job_id` (the heartbeat).
    fn renew_lease(&self, job_id: &str, terms: &LeaseTerms, now_unix_ms: i64) -> Result<LeaseStatus, StoreError>;

    /// Records that the job should stop; its holder sees it at its next heartbeat.
    fn request_cancel(&self, job_id: &str) -> Result<(), StoreError>;

    /// The RUNNING/UPLOADING jobs leased by `node_id`: after a restart of that node, the runs
    /// of its previous life.
    fn leased_by(&self, node_id: &str) -> Result<Vec<String>, StoreError>;

    /// How many jobs are in each state.
    fn counts(&self) -> Result<Vec<(JobState, u64)>, StoreError>;

    /// Ids of the jobs with a webhook whose events are not all dealt with yet (after a restart).
    fn jobs_with_undelivered_events(&self) -> Result<Vec<String>, StoreError>;

    /// Changes whenever any job has a new event, whichever node (or process) wrote it.
    fn subscribe(&self) -> watch::Receiver<u64>;
}

impl dyn JobStore {
    /// Changes a job in one transaction, recording no event.
    pub fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut RenderJob) -> Result<(), StoreError> + Send,
    ) -> Result<RenderJob, StoreError> {
        let mut change = Some(change);
        self.update_with_event(id, 0, None, &mut |job| {
            change.take().map_or(Ok(()), |change| change(job)).map(|()| None)
        })
        .map(|(job, _)| job)
    }

    /// Moves a job to `to`, if its life allows it, stamping the start and stop times, and
    /// records the state change as the job's next event. `holder`: see
    /// [`JobStore::update_with_event`].
    pub fn transition(
        &self,
        id: &str,
        to: JobState,
        now_unix_ms: i64,
        holder: Option<&str>,
    ) -> Result<RenderJob, StoreError> {
        let (job, _) = self.update_with_event(id, now_unix_ms, holder, &mut |job| {
            let from = job.state();
            if !can_move(from, to) {
                return Err(StoreError::BadTransition {
                    id: id.to_owned(),
                    from: state_name(from),
                    to: state_name(to),
                });
            }
            job.set_state(to);
            if to == JobState::Running && from == JobState::Queued {
                job.started_at_unix_ms = now_unix_ms;
            }
            if is_final(to) {
                job.stopped_at_unix_ms = now_unix_ms;
            }
            Ok(Some(Event::StateChanged(to as i32)))
        })?;
        Ok(job)
    }

    /// Queues a running job again from scratch (its run was stopped): outputs and progress
    /// cleared, the lease given up, the change recorded as an event.
    pub fn requeue(&self, id: &str, now_unix_ms: i64, holder: Option<&str>) -> Result<RenderJob, StoreError> {
        let (job, _) = self.update_with_event(id, now_unix_ms, holder, &mut |job| {
            let from = job.state();
            if !can_move(from, JobState::Queued) {
                return Err(StoreError::BadTransition { id: id.to_owned(), from: state_name(from), to: "queued" });
            }
            reset_for_rerun(job);
            Ok(Some(Event::StateChanged(JobState::Queued as i32)))
        })?;
        Ok(job)
    }

    /// Queues again every job `node_id` was running in its previous life (the node restarted);
    /// returns their ids. Jobs of other nodes are left to their leases.
    pub fn requeue_own(&self, node_id: &str, now_unix_ms: i64) -> Result<Vec<String>, StoreError> {
        let ids = self.leased_by(node_id)?;
        for id in &ids {
            self.requeue(id, now_unix_ms, Some(node_id))?;
        }
        Ok(ids)
    }
}

/// A job made ready to run again from scratch: QUEUED, no outputs, no progress.
pub fn reset_for_rerun(job: &mut RenderJob) {
    job.set_state(JobState::Queued);
    job.outputs.clear();
    job.progress = None;
}

/// The number of jobs in `state` in a [`JobStore::counts`] answer.
pub fn count_of(counts: &[(JobState, u64)], state: JobState) -> u64 {
    counts.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n)
}

/// A stored job decoded.
pub(super) fn decode(id: &str, bytes: &[u8]) -> Result<RenderJob, StoreError> {
    RenderJob::decode(bytes).map_err(|e| StoreError::Corrupt { id: id.to_owned(), reason: e.to_string() })
}

/// Where a listing starts (after this submission number) and how many jobs its page holds.
pub(super) fn page_request(page_size: u32, page_token: &str) -> Result<(i64, u32), StoreError> {
    let after = if page_token.is_empty() {
        0
    } else {
        page_token.parse().map_err(|_| StoreError::BadPageToken { token: page_token.to_owned() })?
    };
    let size = if page_size == 0 { DEFAULT_PAGE_SIZE } else { page_size.min(MAX_PAGE_SIZE) };
    Ok((after, size))
}

/// A page from rows `(submission number, id, job)` read after `after`, one more than `size`
/// when there is another page.
pub(super) fn page_of(rows: Vec<(i64, String, Vec<u8>)>, size: u32, after: i64) -> Result<Page, StoreError> {
    let more = rows.len() > size as usize;
    let mut jobs = Vec::with_capacity(rows.len().min(size as usize));
    let mut last_seq = after;
    for (seq, id, bytes) in rows.into_iter().take(size as usize) {
        jobs.push(decode(&id, &bytes)?);
        last_seq = seq;
    }
    Ok(Page { jobs, next_page_token: if more { last_seq.to_string() } else { String::new() } })
}

/// Applies `change` to `job` (leased to `lease_node`), refused unless `holder` (when given)
/// holds the lease; returns the event to record.
pub(super) fn apply_change(
    job: &mut RenderJob,
    lease_node: Option<&str>,
    holder: Option<&str>,
    change: Change<'_>,
) -> Result<Option<Event>, StoreError> {
    if let Some(node) = holder
        && lease_node != Some(node)
    {
        return Err(StoreError::LeaseLost { id: job.id.clone(), node: node.to_owned() });
    }
    change(job)
}

/// A job a claim found cancelled while its node was gone: it ends instead of running again.
pub(super) fn cancel_at_claim(job: &mut RenderJob, now_unix_ms: i64) {
    job.set_state(JobState::Cancelled);
    job.stopped_at_unix_ms = now_unix_ms;
}

/// A claimed job made RUNNING, started now. Returns true when it was taken over from a node
/// whose lease expired: the run starts again from scratch, a QUEUED event first.
pub(super) fn start_run(job: &mut RenderJob, now_unix_ms: i64) -> bool {
    let taken_over = job.state() != JobState::Queued;
    if taken_over {
        tracing::warn!(job_id = %job.id, "lease expired; taking the job over");
        reset_for_rerun(job);
    }
    job.set_state(JobState::Running);
    job.started_at_unix_ms = now_unix_ms;
    taken_over
}

/// Of the jobs `ids`, those with a webhook whose events are not all dealt with yet.
pub(super) fn undelivered(store: &dyn JobStore, ids: Vec<String>) -> Result<Vec<String>, StoreError> {
    let mut pending = Vec::new();
    for id in ids {
        let job = store.get(&id)?;
        let has_webhook = job.spec.as_ref().and_then(|s| s.webhook.as_ref()).is_some_and(|w| !w.url.is_empty());
        let dealt_with = job.webhook.as_ref().map_or(0, |w| w.last_event_seq);
        if has_webhook && dealt_with < store.last_event_seq(&id)? {
            pending.push(id);
        }
    }
    Ok(pending)
}
