//! The embedded job store: one SQLite file under the data directory, so jobs outlive the
//! server. Each job is kept whole (its `RenderJob` message, protobuf-encoded) beside the
//! columns it is looked up by; every change is one transaction. A job that was running when
//! the server stopped is queued again on the next start.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};

use super::state::{can_move, is_final, state_name};
use crate::api::pb::{self, JobState, RenderJob};

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

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite { path: self.path.clone(), source }
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
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
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(self.sqlite())?;
            let bytes: Option<Vec<u8>> = tx
                .query_row("SELECT job FROM jobs WHERE id = ?1", params![id], |r| r.get(0))
                .optional()
                .map_err(self.sqlite())?;
            let mut job = decode(id, &bytes.ok_or_else(|| StoreError::NotFound { id: id.to_owned() })?)?;
            change(&mut job)?;
            tx.execute(
                "UPDATE jobs SET state = ?2, job = ?3 WHERE id = ?1",
                params![id, job.state, job.encode_to_vec()],
            )
            .map_err(self.sqlite())?;
            tx.commit().map_err(self.sqlite())?;
            Ok(job)
        })
    }

    /// Moves a job to `to`, if its life allows it, stamping the start and stop times.
    pub fn transition(&self, id: &str, to: JobState, now_unix_ms: i64) -> Result<RenderJob, StoreError> {
        self.update(id, |job| {
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
            Ok(())
        })
    }

    /// Queues again every job that was running or uploading (after the server stopped);
    /// returns their ids. Their outputs are cleared: the run starts over.
    pub fn requeue_interrupted(&self) -> Result<Vec<String>, StoreError> {
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
            self.update(id, |job| {
                job.set_state(JobState::Queued);
                job.outputs.clear();
                job.progress = None;
                Ok(())
            })?;
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
            tx.commit().map_err(self.sqlite())?;
            Ok(Some(job))
        })
    }

    /// Appends an event to a job's history, numbering it (1, 2, 3, ... per job); returns it
    /// as stored.
    pub fn append_event(&self, mut event: pb::RenderJobEvent) -> Result<pb::RenderJobEvent, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(self.sqlite())?;
            let last: i64 = tx
                .query_row("SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = ?1", params![event.job_id], |r| {
                    r.get(0)
                })
                .map_err(self.sqlite())?;
            event.seq = last.unsigned_abs() + 1;
            tx.execute(
                "INSERT INTO events (job_id, seq, event) VALUES (?1, ?2, ?3)",
                params![event.job_id, event.seq as i64, event.encode_to_vec()],
            )
            .map_err(self.sqlite())?;
            tx.commit().map_err(self.sqlite())?;
            Ok(event)
        })
    }

    /// A job's events after `after_seq`, oldest first, at most `limit`.
    pub fn events_after(
        &self,
        job_id: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<pb::RenderJobEvent>, StoreError> {
        self.with_conn(|conn| {
            let mut statement = conn
                .prepare("SELECT event FROM events WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")
                .map_err(self.sqlite())?;
            let rows = statement
                .query_map(params![job_id, after_seq as i64, limit], |r| r.get::<_, Vec<u8>>(0))
                .map_err(self.sqlite())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(self.sqlite())?;
            rows.iter()
                .map(|bytes| {
                    pb::RenderJobEvent::decode(bytes.as_slice())
                        .map_err(|e| StoreError::Corrupt { id: job_id.to_owned(), reason: e.to_string() })
                })
                .collect()
        })
    }

    /// The number of a job's last event (0: none yet).
    pub fn last_event_seq(&self, job_id: &str) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = ?1", params![job_id], |r| {
                r.get::<_, i64>(0)
            })
            .map(i64::unsigned_abs)
            .map_err(self.sqlite())
        })
    }

    /// Ids of the jobs with a webhook whose events are not all dealt with yet (after a restart).
    pub fn jobs_with_undelivered_events(&self) -> Result<Vec<String>, StoreError> {
        let ids: Vec<String> = self.with_conn(|conn| {
            let mut statement = conn.prepare("SELECT DISTINCT job_id FROM events").map_err(self.sqlite())?;
            statement
                .query_map([], |r| r.get(0))
                .map_err(self.sqlite())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(self.sqlite())
        })?;
        let mut pending = Vec::new();
        for id in ids {
            let job = self.get(&id)?;
            let has_webhook = job.spec.as_ref().and_then(|s| s.webhook.as_ref()).is_some_and(|w| !w.url.is_empty());
            let dealt_with = job.webhook.as_ref().map_or(0, |w| w.last_event_seq);
            if has_webhook && dealt_with < self.last_event_seq(&id)? {
                pending.push(id);
            }
        }
        Ok(pending)
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

fn decode(id: &str, bytes: &[u8]) -> Result<RenderJob, StoreError> {
    RenderJob::decode(bytes).map_err(|e| StoreError::Corrupt { id: id.to_owned(), reason: e.to_string() })
}
