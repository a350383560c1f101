//! A job's events: each one is numbered and stored before anyone sees it, so a watcher that
//! comes late, reconnects (`after_seq`) or outlives a restart misses nothing. Watchers wake on
//! the store's own notification (which also fires for events other nodes write); the webhook
//! sender is told which job has news.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::state::is_final;
use super::store::{JobStore, StoreError};
use crate::proto::{self as pb, JobState, render_job_event::Event};

/// How many stored events a watcher reads at a time.
const BATCH: u32 = 256;

#[derive(Debug, Clone)]
pub struct EventLog {
    store: Arc<dyn JobStore>,
    /// This node: the holder of the leases of the jobs it runs.
    node_id: String,
    /// Jobs whose events should go to their webhook: the sender is told the job id.
    webhook: Option<mpsc::UnboundedSender<String>>,
}

pub fn now_unix_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// The state a state-change event moves the job to.
pub fn state_change(event: &pb::RenderJobEvent) -> Option<JobState> {
    match event.event {
        Some(Event::StateChanged(state)) => JobState::try_from(state).ok(),
        _ => None,
    }
}

/// True for the event after which a job's stream ends.
pub fn is_last(event: &pb::RenderJobEvent) -> bool {
    state_change(event).is_some_and(is_final)
}

/// The event's name in webhooks and delivery records.
pub fn event_name(event: &pb::RenderJobEvent) -> &'static str {
    match event.event {
        Some(Event::StateChanged(_)) => "state_changed",
        Some(Event::Progress(_)) => "progress",
        Some(Event::OutputReady(_)) => "output_ready",
        Some(Event::Failed(_)) => "failed",
        None => "unknown",
    }
}

impl EventLog {
    pub fn new(store: Arc<dyn JobStore>, node_id: String, webhook: Option<mpsc::UnboundedSender<String>>) -> EventLog {
        EventLog { store, node_id, webhook }
    }

    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.store
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Tells the webhook sender that `job_id` has new events in the store (watchers learn it
    /// from the store itself).
    pub fn notify(&self, job_id: &str) {
        if let Some(webhook) = &self.webhook {
            let _ = webhook.send(job_id.to_owned());
        }
    }

    /// Stores `event` for `job_id` and wakes everyone following the job.
    pub fn publish(&self, job_id: &str, event: Event) -> Result<pb::RenderJobEvent, StoreError> {
        let stored = self.store.append_event(job_id, now_unix_ms(), event)?;
        self.notify(job_id);
        Ok(stored)
    }

    /// Changes a job this node runs and records `event` (if any), in one transaction; refused
    /// once another node took the job over.
    pub fn record_leased(
        &self,
        job_id: &str,
        change: impl FnOnce(&mut pb::RenderJob) + Send,
        event: Option<Event>,
    ) -> Result<pb::RenderJob, StoreError> {
        let mut once = Some((change, event));
        let (job, _) = self.store.update_with_event(job_id, now_unix_ms(), Some(&self.node_id), &mut |job| {
            Ok(once.take().and_then(|(change, event)| {
                change(job);
                event
            }))
        })?;
        self.notify(job_id);
        Ok(job)
    }

    /// Moves a job that is not running here to `to` (the state change is its event) and
    /// tells its followers.
    pub fn transition(&self, job_id: &str, to: JobState) -> Result<pb::RenderJob, StoreError> {
        let job = self.store.transition(job_id, to, now_unix_ms(), None)?;
        self.notify(job_id);
        Ok(job)
    }

    /// Moves a job this node runs to `to`; refused once another node took the job over.
    pub fn transition_leased(&self, job_id: &str, to: JobState) -> Result<pb::RenderJob, StoreError> {
        let job = self.store.transition(job_id, to, now_unix_ms(), Some(&self.node_id))?;
        self.notify(job_id);
        Ok(job)
    }

    /// Queues a job this node runs again (its run was stopped) and tells its followers.
    pub fn requeue(&self, job_id: &str) -> Result<pb::RenderJob, StoreError> {
        let job = self.store.requeue(job_id, now_unix_ms(), Some(&self.node_id))?;
        self.notify(job_id);
        Ok(job)
    }

    /// Something that wakes whenever any job has a new event.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.store.subscribe()
    }

    /// Sends `job_id`'s events after `after_seq` to `out` until the job's last event, the
    /// receiver goes away, or `stop` turns true (the server is shutting down).
    pub async fn follow(
        &self,
        job_id: &str,
        mut after_seq: u64,
        out: mpsc::Sender<Result<pb::RenderJobEvent, tonic::Status>>,
        mut stop: watch::Receiver<bool>,
    ) {
        // Resumed after a finished job's last event: nothing more will come. (Otherwise the
        // job's final event, when it comes, ends the stream.)
        let ended = tokio::task::block_in_place(|| {
            self.store.get(job_id).map(|job| is_final(job.state())).unwrap_or(true)
                && self.store.last_event_seq(job_id).unwrap_or(0) <= after_seq
        });
        if ended {
            return;
        }
        let mut tick = self.subscribe();
        loop {
            tick.mark_unchanged();
            let batch = match tokio::task::block_in_place(|| self.store.events_after(job_id, after_seq, BATCH)) {
                Ok(batch) => batch,
                Err(err) => {
                    let _ = out.send(Err(crate::error::status(err))).await;
                    return;
                }
            };
            let full = batch.len() == BATCH as usize;
            for event in batch {
                after_seq = event.seq;
                let last = is_last(&event);
                let sent = tokio::select! {
                    sent = out.send(Ok(event)) => sent.is_ok(),
                    // A client that stopped reading does not hold up the shutdown.
                    _ = async { stop.wait_for(|stopping| *stopping).await.map(|_| ()) } => false,
                };
                if !sent || last {
                    return;
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                changed = tick.changed() => if changed.is_err() { return },
                _ = async { stop.wait_for(|stopping| *stopping).await.map(|_| ()) } => {
                    let _ = out.send(Err(tonic::Status::unavailable("the server is shutting down; watch again with after_seq"))).await;
                    return;
                }
                () = out.closed() => return,
            }
        }
    }
}
