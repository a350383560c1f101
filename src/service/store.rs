//! The embedded job store: one SQLite file under the data directory, so jobs outlive the
//! server. Each job is kept whole (its `RenderJob` message, protobuf-encoded) beside the
//! columns it is looked up by; every change is one transaction. A job that was running when
//! the server stopped is queued again on the next start.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};

use super::state::{can_move, is_final, state_name};
use crate::api::pb::{self, JobState, RenderJob, render_job_event::Event};

/// Listing pages hold at most this many jobs, and this many when the caller says nothing.
pub const MAX_PAGE_SIZE: u32 = 1000;
pub const DEFAULT_PAGE_SIZE: u32 = 50;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("no job `{id}`")]
    NotFound { id: String },
    #[error("job `{id}` cannot go from {from} to {to}")]
    BadTransition { id: String, from: &'static str, to: &'static str },
    #[error("job `{id}` in the store cannot be read: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("invalid page token `{token}`")]
    BadPageToken { token: String },
}

#[derive(Debug)]
pub struct JobStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// A page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub jobs: Vec<RenderJob>,
    /// Empty on the last page.
    pub next_page_token: String,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        request_id TEXT,
        state INTEGER NOT NULL,
        job BLOB NOT NULL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS jobs_request_id ON jobs (request_id) WHERE request_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
    CREATE TABLE IF NOT EXISTS events (
        job_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event BLOB NOT NULL,
        PRIMARY KEY (job_id, seq)
    );
";

impl JobStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<JobStore, StoreError> {
        let sqlite = |source| StoreError::Sqlite { path: path.to_path_buf(), source };
        let conn = Connection::open(path).map_err(sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(sqlite)?;
        conn.execute_batch(SCHEMA).map_err(sqlite)?;
        Ok(JobStore { path: path.to_path_buf(), conn: Mutex::new(conn) })
    }

    pub(super) fn sqlite(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite { path: self.path.clone(), source }
    }

    pub(super) fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut conn)
    }

    /// Stores a new QUEUED job, or, when a job with the same non-empty `request_id` exists,
    /// returns that one. The flag says whether the job is new.
    pub fn create(
        &self,
        request_id: &str,
        spec: &pb::RenderJobSpec,
        now_unix_ms: i64,
    ) -> Result<(RenderJob, bool), StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(self.sqlite())?;
            if !request_id.is_empty() {
                let existing: Option<(String, Vec<u8>)> = tx
                    .query_row("SELECT id, job FROM jobs WHERE request_id = ?1", params![request_id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                    .map_err(self.sqlite())?;
                if let Some((id, bytes)) = existing {
                    return Ok((decode(&id, &bytes)?, false));
                }
            }
            let job = RenderJob {
                id: format!("job-{}", uuid::Uuid::new_v4().simple()),
                request_id: request_id.to_owned(),
                spec: Some(spec.clone()),
                state: JobState::Queued as i32,
                invoked_at_unix_ms: now_unix_ms,
                ..RenderJob::default()
            };
            let request = (!request_id.is_empty()).then_some(request_id);
            tx.execute(
                "INSERT INTO jobs (id, request_id, state, job) VALUES (?1, ?2, ?3, ?4)",
                params![job.id, request, job.state, job.encode_to_vec()],
            )
            .map_err(self.sqlite())?;
            self.insert_event(&tx, &job.id, now_unix_ms, Event::StateChanged(JobState::Queued as i32))?;
            tx.commit().map_err(self.sqlite())?;
            Ok((job, true))
        })
    }

    pub fn get(&self, id: &str) -> Result<RenderJob, StoreError> {
        self.with_conn(|conn| {
            let bytes: Option<Vec<u8>> = conn
                .query_row("SELECT job FROM jobs WHERE id = ?1", params![id], |r| r.get(0))
                .optional()
                .map_err(self.sqlite())?;
            let bytes = bytes.ok_or_else(|| StoreError::NotFound { id: id.to_owned() })?;
            decode(id, &bytes)
        })
    }

    /// Jobs in submission order, optionally of one state, `page_size` at a time (0: the
    /// default); `page_token` is the previous page's `next_page_token`.
    pub fn list(&self, state: Option<JobState>, page_size: u32, page_token: &str) -> Result<Page, StoreError> {
        let after: i64 = if page_token.is_empty() {
            0
        } else {
            page_token.parse().map_err(|_| StoreError::BadPageToken { token: page_token.to_owned() })?
        };
        let size = if page_size == 0 { DEFAULT_PAGE_SIZE } else { page_size.min(MAX_PAGE_SIZE) };
        self.with_conn(|conn| {
            let state_filter = state.map(|s| s as i32);
            let mut statement = conn
                .prepare(
                    "SELECT seq, id, job FROM jobs WHERE seq > ?1 AND (?2 IS NULL OR state = ?2) \
                     ORDER BY seq LIMIT ?3",
                )
                .map_err(self.sqlite())?;
            let rows = statement
                .query_map(params![after, state_filter, i64::from(size) + 1], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?))
                })
                .map_err(self.sqlite())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(self.sqlite())?;
            let more = rows.len() > size as usize;
            let mut jobs = Vec::with_capacity(rows.len().min(size as usize));
            let mut last_seq = after;
            for (seq, id, bytes) in rows.into_iter().take(size as usize) {
                jobs.push(decode(&id, &bytes)?);
                last_seq = seq;
            }
            Ok(Page { jobs, next_page_token: if more { last_seq.to_string() } else { String::new() } })
        })
    }

    /// Changes a job in one transaction: `change` sees the stored job and edits it.
    pub fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut RenderJob) -> Result<(), StoreError>,
    ) -> Result<RenderJob, StoreError> {
        self.update_with_event(id, 0, |job| change(job).map(|()| None)).map(|(job, _)| job)
    }

    /// Changes a job and records the event `change` returns (if any), in one transaction.
    pub fn update_with_event(
        &self,
        id: &str,
        now_unix_ms: i64,
        change: impl FnOnce(&mut RenderJob) -> Result<Option<Event>, StoreError>,
    ) -> Result<(RenderJob, Option<pb::RenderJobEvent>), StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(self.sqlite())?;
            let bytes: Option<Vec<u8>> = tx
                .query_row("SELECT job FROM jobs WHERE id = ?1", params![id], |r| r.get(0))
                .optional()
                .map_err(self.sqlite())?;
            let mut job = decode(id, &bytes.ok_or_else(|| StoreError::NotFound { id: id.to_owned() })?)?;
            let event = change(&mut job)?;
            tx.execute(
                "UPDATE jobs SET state = ?2, job = ?3 WHERE id = ?1",
                params![id, job.state, job.encode_to_vec()],
            )
            .map_err(self.sqlite())?;
            let event = event.map(|event| self.insert_event(&tx, id, now_unix_ms, event)).transpose()?;
            tx.commit().map_err(self.sqlite())?;
            Ok((job, event))
        })
    }

    /// Moves a job to `to`, if its life allows it, stamping the start and stop times, and
    /// records the state change as the job's next event.
    pub fn transition(&self, id: &str, to: JobState, now_unix_ms: i64) -> Result<RenderJob, StoreError> {
        let (job, _) = self.update_with_event(id, now_unix_ms, |job| {
            let from = job.state();
            if !can_move(from, to) {
                return Err(StoreError::BadTransition {
                    id: id.to_owned(),
                    from: state_name(from),
                    to: state_name(to),
                });
            }
            job.set_state(to);
            if to == JobState::Running {
                job.started_at_unix_ms = now_unix_ms;
            }
            if is_final(to) {
                job.stopped_at_unix_ms = now_unix_ms;
            }
            Ok(Some(Event::StateChanged(to as i32)))
        })?;
        Ok(job)
    }

    /// Queues a running job again from scratch (its node stopped): outputs and progress
    /// cleared, the change recorded as an event.
    pub fn requeue(&self, id: &str, now_unix_ms: i64) -> Result<RenderJob, StoreError> {
        let (job, _) = self.update_with_event(id, now_unix_ms, |job| {
            let from = job.state();
            if !can_move(from, JobState::Queued) {
                return Err(StoreError::BadTransition { id: id.to_owned(), from: state_name(from), to: "queued" });
            }
            job.set_state(JobState::Queued);
            job.outputs.clear();
            job.progress = None;
            Ok(Some(Event::StateChanged(JobState::Queued as i32)))
        })?;
        Ok(job)
    }

    /// Queues again every job that was running or uploading (after the server stopped);
    /// returns their ids.
    pub fn requeue_interrupted(&self, now_unix_ms: i64) -> Result<Vec<String>, StoreError> {
        let interrupted: Vec<String> = self.with_conn(|conn| {
            let mut statement =
                conn.prepare("SELECT id FROM jobs WHERE state IN (?1, ?2) ORDER BY seq").map_err(self.sqlite())?;
            statement
                .query_map(params![JobState::Running as i32, JobState::Uploading as i32], |r| r.get(0))
                .map_err(self.sqlite())?
                .collect::<Result<Vec<String>, _>>()
                .map_err(self.sqlite())
        })?;
        for id in &interrupted {
            self.requeue(id, now_unix_ms)?;
        }
        Ok(interrupted)
    }

    /// Takes the oldest queued job, in one transaction: it is RUNNING, started now, when this
    /// returns.
    pub fn claim_next(&self, now_unix_ms: i64) -> Result<Option<RenderJob>, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(self.sqlite())?;
            let next: Option<(String, Vec<u8>)> = tx
                .query_row(
                    "SELECT id, job FROM jobs WHERE state = ?1 ORDER BY seq LIMIT 1",
                    params![JobState::Queued as i32],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(self.sqlite())?;
            let Some((id, bytes)) = next else { return Ok(None) };
            let mut job = decode(&id, &bytes)?;
            job.set_state(JobState::Running);
            job.started_at_unix_ms = now_unix_ms;
            tx.execute(
                "UPDATE jobs SET state = ?2, job = ?3 WHERE id = ?1",
                params![id, job.state, job.encode_to_vec()],
            )
            .map_err(self.sqlite())?;
            self.insert_event(&tx, &id, now_unix_ms, Event::StateChanged(JobState::Running as i32))?;
            tx.commit().map_err(self.sqlite())?;
            Ok(Some(job))
        })
    }

    /// How many jobs are in each state.
    pub fn counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        self.with_conn(|conn| {
            let mut statement = conn
                .prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
                .map_err(self.sqlite())?;
            let rows = statement
                .query_map([], |r| Ok((r.get::<_, i32>(0)?, r.get::<_, i64>(1)?)))
                .map_err(self.sqlite())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(self.sqlite())?;
            Ok(rows
                .into_iter()
                .map(|(state, n)| (JobState::try_from(state).unwrap_or(JobState::Unspecified), n.unsigned_abs()))
                .collect())
        })
    }
}

/// The number of jobs in `state` in a [`JobStore::counts`] answer.
pub fn count_of(counts: &[(JobState, u64)], state: JobState) -> u64 {
    counts.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n)
}

pub(super) fn decode(id: &str, bytes: &[u8]) -> Result<RenderJob, StoreError> {
    RenderJob::decode(bytes).map_err(|e| StoreError::Corrupt { id: id.to_owned(), reason: e.to_string() })
}
