//! The embedded job store: one SQLite file under the data directory, so jobs outlive the
//! server. Each job is kept whole (its `RenderJob` message, protobuf-encoded) beside the
//! columns it is looked up by (state, lease holder and expiry, cancel request); every change
//! is one transaction. Other processes may open the same file: their commits wake this
//! store's watchers too (SQLite's `data_version`, polled).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use prost::Message;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::watch;

use super::store::{
    Change, JobStore, LeaseStatus, LeaseTerms, Page, StoreError, apply_change, cancel_at_claim, decode, page_of,
    page_request, start_run, undelivered,
};
use crate::proto::{self as pb, JobState, RenderJob, render_job_event::Event};

/// How often commits made by other processes on the same file are looked for.
const FOREIGN_POLL: Duration = Duration::from_millis(200);

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

/// Schema changes after the first version, applied in order (`PRAGMA user_version` counts them).
const MIGRATIONS: &[&str] = &["
    ALTER TABLE jobs ADD COLUMN lease_node TEXT;
    ALTER TABLE jobs ADD COLUMN lease_expires_ms INTEGER;
    ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
"];

#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    tick: Arc<watch::Sender<u64>>,
}

/// A job in these states runs on the node holding its lease (PAUSED: a live job).
fn is_leased(state: i32) -> bool {
    state == JobState::Running as i32 || state == JobState::Uploading as i32 || state == JobState::Paused as i32
}

impl SqliteStore {
    /// Opens (creating or migrating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Arc<SqliteStore>, StoreError> {
        let conn = Self::connect(path)?;
        let store = Arc::new(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            tick: Arc::new(watch::Sender::new(0)),
        });
        store.watch_foreign_commits()?;
        Ok(store)
    }

    fn connect(path: &Path) -> Result<Connection, StoreError> {
        let sqlite = |source: rusqlite::Error| backend(path, &source);
        let mut conn = Connection::open(path).map_err(sqlite)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(sqlite)?;
        conn.execute_batch(SCHEMA).map_err(sqlite)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sqlite)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sqlite)?;
        for (n, migration) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
            tx.execute_batch(migration).map_err(sqlite)?;
            tx.pragma_update(None, "user_version", i64::try_from(n + 1).unwrap_or(i64::MAX)).map_err(sqlite)?;
        }
        tx.commit().map_err(sqlite)?;
        Ok(conn)
    }

    /// A thread that bumps the tick when another connection (another process, another node on
    /// the same file) commits; it ends with the store.
    fn watch_foreign_commits(self: &Arc<Self>) -> Result<(), StoreError> {
        let conn = Self::connect(&self.path)?;
        let store: Weak<SqliteStore> = Arc::downgrade(self);
        let tick = Arc::clone(&self.tick);
        std::thread::Builder::new()
            .name("tessera-store-watch".into())
            .spawn(move || {
                let version = |conn: &Connection| conn.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0));
                let mut last = version(&conn).ok();
                while store.upgrade().is_some() {
                    std::thread::sleep(FOREIGN_POLL);
                    let now = version(&conn).ok();
                    if now != last {
                        last = now;
                        tick.send_modify(|n| *n += 1);
                    }
                }
            })
            .map_err(|e| StoreError::Backend { path: self.path.display().to_string(), reason: e.to_string() })?;
        Ok(())
    }

    fn sqlite(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| backend(&self.path, &source)
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut conn)
    }

    /// Runs `f` in an immediate (write) transaction; wakes watchers when it committed events.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<(T, bool), StoreError>) -> Result<T, StoreError> {
        let (value, wrote_events) = self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(self.sqlite())?;
            let out = f(&tx)?;
            tx.commit().map_err(self.sqlite())?;
            Ok(out)
        })?;
        if wrote_events {
            self.tick.send_modify(|n| *n += 1);
        }
        Ok(value)
    }

    /// Numbers and stores `event` for `job_id` inside `tx`.
    fn insert_event(
        &self,
        tx: &Transaction<'_>,
        job_id: &str,
        at_unix_ms: i64,
        event: Event,
    ) -> Result<pb::RenderJobEvent, StoreError> {
        let last: i64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = ?1", params![job_id], |r| r.get(0))
            .map_err(self.sqlite())?;
        let stored = pb::RenderJobEvent {
            job_id: job_id.to_owned(),
            at_unix_ms,
            seq: last.unsigned_abs() + 1,
            event: Some(event),
        };
        tx.execute(
            "INSERT INTO events (job_id, seq, event) VALUES (?1, ?2, ?3)",
            params![job_id, stored.seq as i64, stored.encode_to_vec()],
        )
        .map_err(self.sqlite())?;
        Ok(stored)
    }

    /// Stores `job` (its state column, and the lease and cancel request it no longer needs
    /// once it leaves RUNNING/UPLOADING).
    fn save(&self, tx: &Transaction<'_>, job: &RenderJob) -> Result<(), StoreError> {
        tx.execute(
            "UPDATE jobs SET state = ?2, job = ?3, \
             lease_node = CASE WHEN ?4 THEN lease_node END, \
             lease_expires_ms = CASE WHEN ?4 THEN lease_expires_ms END, \
             cancel_requested = CASE WHEN ?4 THEN cancel_requested ELSE 0 END \
             WHERE id = ?1",
            params![job.id, job.state, job.encode_to_vec(), is_leased(job.state)],
        )
        .map_err(self.sqlite())?;
        Ok(())
    }

    fn load(&self, tx: &Transaction<'_>, id: &str) -> Result<(RenderJob, Option<String>), StoreError> {
        let row: Option<(Vec<u8>, Option<String>)> = tx
            .query_row("SELECT job, lease_node FROM jobs WHERE id = ?1", params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(self.sqlite())?;
        let (bytes, holder) = row.ok_or_else(|| StoreError::NotFound { id: id.to_owned() })?;
        Ok((decode(id, &bytes)?, holder))
    }

    fn ids(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<String>, StoreError> {
        self.with_conn(|conn| {
            let mut statement = conn.prepare(sql).map_err(self.sqlite())?;
            statement
                .query_map(params, |r| r.get(0))
                .map_err(self.sqlite())?
                .collect::<Result<Vec<String>, _>>()
                .map_err(self.sqlite())
        })
    }
}

fn backend(path: &Path, source: &rusqlite::Error) -> StoreError {
    StoreError::Backend { path: path.display().to_string(), reason: source.to_string() }
}

impl JobStore for SqliteStore {
    fn create(
        &self,
        request_id: &str,
        spec: &pb::RenderJobSpec,
        now_unix_ms: i64,
    ) -> Result<(RenderJob, bool), StoreError> {
        self.write(|tx| {
            if !request_id.is_empty() {
                let existing: Option<(String, Vec<u8>)> = tx
                    .query_row("SELECT id, job FROM jobs WHERE request_id = ?1", params![request_id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                    .map_err(self.sqlite())?;
                if let Some((id, bytes)) = existing {
                    return Ok(((decode(&id, &bytes)?, false), false));
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
            self.insert_event(tx, &job.id, now_unix_ms, Event::StateChanged(JobState::Queued as i32))?;
            Ok(((job, true), true))
        })
    }

    fn get(&self, id: &str) -> Result<RenderJob, StoreError> {
        self.with_conn(|conn| {
            let bytes: Option<Vec<u8>> = conn
                .query_row("SELECT job FROM jobs WHERE id = ?1", params![id], |r| r.get(0))
                .optional()
                .map_err(self.sqlite())?;
            let bytes = bytes.ok_or_else(|| StoreError::NotFound { id: id.to_owned() })?;
            decode(id, &bytes)
        })
    }

    fn list(&self, state: Option<JobState>, page_size: u32, page_token: &str) -> Result<Page, StoreError> {
        let (after, size) = page_request(page_size, page_token)?;
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
            page_of(rows, size, after)
        })
    }

    fn update_with_event(
        &self,
        id: &str,
        now_unix_ms: i64,
        holder: Option<&str>,
        change: Change<'_>,
    ) -> Result<(RenderJob, Option<pb::RenderJobEvent>), StoreError> {
        self.write(|tx| {
            let (mut job, lease_node) = self.load(tx, id)?;
            let event = apply_change(&mut job, lease_node.as_deref(), holder, change)?;
            self.save(tx, &job)?;
            let event = event.map(|event| self.insert_event(tx, id, now_unix_ms, event)).transpose()?;
            let wrote = event.is_some();
            Ok(((job, event), wrote))
        })
    }

    fn append_event(&self, job_id: &str, at_unix_ms: i64, event: Event) -> Result<pb::RenderJobEvent, StoreError> {
        self.write(|tx| Ok((self.insert_event(tx, job_id, at_unix_ms, event)?, true)))
    }

    fn events_after(&self, job_id: &str, after_seq: u64, limit: u32) -> Result<Vec<pb::RenderJobEvent>, StoreError> {
        let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
        self.with_conn(|conn| {
            let mut statement = conn
                .prepare("SELECT event FROM events WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3")
                .map_err(self.sqlite())?;
            let rows = statement
                .query_map(params![job_id, after, limit], |r| r.get::<_, Vec<u8>>(0))
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

    fn last_event_seq(&self, job_id: &str) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = ?1", params![job_id], |r| {
                r.get::<_, i64>(0)
            })
            .map(i64::unsigned_abs)
            .map_err(self.sqlite())
        })
    }

    fn claim_next(&self, terms: &LeaseTerms, now_unix_ms: i64) -> Result<Option<RenderJob>, StoreError> {
        self.write(|tx| {
            let mut wrote = false;
            let (id, mut job) = loop {
                let next: Option<(String, Vec<u8>, i64)> = tx
                    .query_row(
                        "SELECT id, job, cancel_requested FROM jobs WHERE state = ?1 \
                         OR (state IN (?2, ?3, ?5) AND COALESCE(lease_expires_ms, 0) < ?4) ORDER BY seq LIMIT 1",
                        params![
                            JobState::Queued as i32,
                            JobState::Running as i32,
                            JobState::Uploading as i32,
                            now_unix_ms,
                            JobState::Paused as i32
                        ],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()
                    .map_err(self.sqlite())?;
                let Some((id, bytes, cancel_requested)) = next else { return Ok((None, wrote)) };
                let mut job = decode(&id, &bytes)?;
                if cancel_requested == 0 {
                    break (id, job);
                }
                cancel_at_claim(&mut job, now_unix_ms);
                self.save(tx, &job)?;
                self.insert_event(tx, &id, now_unix_ms, Event::StateChanged(JobState::Cancelled as i32))?;
                wrote = true;
            };
            if start_run(&mut job, now_unix_ms) {
                self.insert_event(tx, &id, now_unix_ms, Event::StateChanged(JobState::Queued as i32))?;
            }
            tx.execute(
                "UPDATE jobs SET state = ?2, job = ?3, lease_node = ?4, lease_expires_ms = ?5, cancel_requested = 0 \
                 WHERE id = ?1",
                params![id, job.state, job.encode_to_vec(), terms.node_id, now_unix_ms + terms.lease_ms],
            )
            .map_err(self.sqlite())?;
            self.insert_event(tx, &id, now_unix_ms, Event::StateChanged(JobState::Running as i32))?;
            Ok((Some(job), true))
        })
    }

    fn renew_lease(&self, job_id: &str, terms: &LeaseTerms, now_unix_ms: i64) -> Result<LeaseStatus, StoreError> {
        self.write(|tx| {
            let changed = tx
                .execute(
                    "UPDATE jobs SET lease_expires_ms = ?3 WHERE id = ?1 AND lease_node = ?2 AND state IN (?4, ?5, ?6)",
                    params![
                        job_id,
                        terms.node_id,
                        now_unix_ms + terms.lease_ms,
                        JobState::Running as i32,
                        JobState::Uploading as i32,
                        JobState::Paused as i32
                    ],
                )
                .map_err(self.sqlite())?;
            if changed == 0 {
                return Ok((LeaseStatus::Lost, false));
            }
            let cancel: i64 = tx
                .query_row("SELECT cancel_requested FROM jobs WHERE id = ?1", params![job_id], |r| r.get(0))
                .map_err(self.sqlite())?;
            Ok((LeaseStatus::Held { cancel_requested: cancel != 0 }, false))
        })
    }

    fn request_cancel(&self, job_id: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx
                .execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?1", params![job_id])
                .map_err(self.sqlite())?;
            if changed == 0 {
                return Err(StoreError::NotFound { id: job_id.to_owned() });
            }
            Ok(((), false))
        })
    }

    fn leased_by(&self, node_id: &str) -> Result<Vec<String>, StoreError> {
        self.ids(
            "SELECT id FROM jobs WHERE lease_node = ?1 AND state IN (?2, ?3, ?4) ORDER BY seq",
            params![node_id, JobState::Running as i32, JobState::Uploading as i32, JobState::Paused as i32],
        )
    }

    fn counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
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

    fn jobs_with_undelivered_events(&self) -> Result<Vec<String>, StoreError> {
        undelivered(self, self.ids("SELECT DISTINCT job_id FROM events", [])?)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.tick.subscribe()
    }
}
