//! The life of a render job: QUEUED -> RUNNING -> UPLOADING -> COMPLETED | FAILED | CANCELLED,
//! and back to QUEUED when the node that ran it died; a live job goes RUNNING <-> PAUSED and
//! may stop (UPLOADING) while paused. Pure.

use crate::proto::JobState;

/// The states a render job passes through (PAUSED belongs to live jobs).
pub const RENDER_STATES: [JobState; 6] = [
    JobState::Queued,
    JobState::Running,
    JobState::Uploading,
    JobState::Completed,
    JobState::Failed,
    JobState::Cancelled,
];

/// Whether a job may go from `from` to `to`.
pub fn can_move(from: JobState, to: JobState) -> bool {
    use JobState::{Cancelled, Completed, Failed, Paused, Queued, Running, Uploading};
    matches!(
        (from, to),
        (Queued, Running)
            | (Running | Paused, Uploading)
            | (Uploading, Completed)
            | (Queued | Running | Uploading | Paused, Failed | Cancelled)
            | (Running, Paused)
            | (Paused, Running)
            // A job that was running when its node died runs again.
            | (Running | Uploading | Paused, Queued)
    )
}

/// True once nothing more will happen to the job.
pub fn is_final(state: JobState) -> bool {
    matches!(state, JobState::Completed | JobState::Failed | JobState::Cancelled)
}

/// The lower-case name used in messages and metrics (`queued`, `running`, ...).
pub fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Unspecified => "unspecified",
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Uploading => "uploading",
        JobState::Completed => "completed",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
        JobState::Paused => "paused",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> impl Iterator<Item = JobState> {
        [JobState::Unspecified, JobState::Paused].into_iter().chain(RENDER_STATES)
    }

    #[test]
    fn the_happy_path_and_its_exits() {
        assert!(can_move(JobState::Queued, JobState::Running));
        assert!(can_move(JobState::Running, JobState::Uploading));
        assert!(can_move(JobState::Uploading, JobState::Completed));
        assert!(can_move(JobState::Queued, JobState::Cancelled));
        assert!(can_move(JobState::Running, JobState::Failed));
        assert!(can_move(JobState::Running, JobState::Queued), "re-queued after a crash");
        assert!(!can_move(JobState::Queued, JobState::Completed), "no skipping the work");
        assert!(!can_move(JobState::Running, JobState::Completed), "outputs are uploaded first");
        assert!(can_move(JobState::Running, JobState::Paused) && can_move(JobState::Paused, JobState::Running));
        assert!(can_move(JobState::Paused, JobState::Uploading), "a paused live job may be stopped");
        assert!(!can_move(JobState::Queued, JobState::Paused), "only a running job pauses");
    }

    #[test]
    fn final_states_never_move() {
        for from in all().filter(|s| is_final(*s)) {
            for to in all() {
                assert!(!can_move(from, to), "{} -> {}", state_name(from), state_name(to));
            }
        }
    }
}
