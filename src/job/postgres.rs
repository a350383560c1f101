//! The shared job store: PostgreSQL, so that every node of a farm works from one queue. Same
//! model as the embedded SQLite store (each job kept whole as its protobuf beside the columns
//! it is looked up by; numbered events; leases with an expiry renewed by heartbeat), same
//! trait. Claims take the oldest runnable job with `FOR UPDATE SKIP LOCKED`, so nodes claiming
//! at once never wait for each other or take the same job. Every transaction that records
//! events sends `NOTIFY tessera_events`; each store listens on a connection of its own and
//! wakes its watchers, on any node. Were a notification lost (the listening connection
//! dropped, then reconnected), watchers are woken every [`POLL_FALLBACK`] anyway: the delay
//! of an event reaching a watcher on another node is bounded by it.
//!
//! The `postgres` crate is the blocking client of `tokio-postgres`; the store's callers are
//! blocking already (the trait is shared with SQLite). One connection per store, serialized
//! by a mutex, reconnected when it breaks.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Transaction};
use prost::Message;
use tokio::sync::watch;

use super::store::{
    Change, JobStore, LeaseStatus, LeaseTerms, Page, StoreError, apply_change, cancel_at_claim, decode, page_of,
    page_request, start_run, undelivered,
};
use crate::proto::{self as pb, JobState, RenderJob, render_job_event::Event};

/// Watchers are woken at least this often, notification or not.
pub const POLL_FALLBACK: Duration = Duration::from_secs(1);
const CHANNEL: &str = "tessera_events";
/// Held while migrating, so that nodes starting together migrate once.
const MIGRATION_LOCK: i64 = 0x0074_6573_7365_7261; // "tessera"

/// The schema, version by version (`tessera_schema.version` counts those applied).
const MIGRATIONS: &[&str] = &["
    CREATE TABLE jobs (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        request_id TEXT UNIQUE,
        state INTEGER NOT NULL,
        job BYTEA NOT NULL,
        lease_node TEXT,
        lease_expires_ms BIGINT,
        cancel_requested BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX jobs_state ON jobs (state, seq);
    CREATE TABLE events (
        job_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        event BYTEA NOT NULL,
        PRIMARY KEY (job_id, seq)
    );
"];

/// States whose job runs on the node holding its lease (PAUSED: a live job).
const LEASED: [i32; 3] = [JobState::Running as i32, JobState::Uploading as i32, JobState::Paused as i32];

pub struct PostgresStore {
    /// The URL without its password, for messages.
    shown: String,
    url: String,
    conn: Mutex<Option<Client>>,
    tick: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("url", &self.shown).finish()
    }
}

/// `url` (`postgres://user:password@host/db`, or `host=... password=...`) with its password
/// replaced by `***`.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        let words: Vec<String> = url
            .split_whitespace()
            .map(|word| if word.starts_with("password=") { "password=***".to_owned() } else { word.to_owned() })
            .collect();
        return words.join(" ");
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@').and_then(|(userinfo, host)| Some((userinfo.split_once(':')?.0, host))) {
        Some((user, host)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_owned(),
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`), creating or migrating the
    /// schema if needed, and starts listening for other nodes' events.
    pub fn open(url: &str) -> Result<Arc<PostgresStore>, StoreError> {
        let store = Arc::new(PostgresStore {
            shown: redacted(url),
            url: url.to_owned(),
            conn: Mutex::new(None),
            tick: Arc::new(watch::Sender::new(0)),
        });
        store.with_client(|client| store.migrate(client))?;
        store.listen()?;
        Ok(store)
    }

    fn backend(&self) -> impl Fn(postgres::Error) -> StoreError + '_ {
        |source| StoreError::Backend { path: self.shown.clone(), reason: describe(&source) }
    }

    fn connect(&self) -> Result<Client, StoreError> {
        Client::connect(&self.url, NoTls).map_err(self.backend())
    }

    fn migrate(&self, client: &mut Client) -> Result<(), StoreError> {
        let pg = self.backend();
        let mut tx = client.transaction().map_err(&pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(&pg)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS tessera_schema (version INTEGER NOT NULL)").map_err(&pg)?;
        let version: Option<i32> =
            tx.query_opt("SELECT version FROM tessera_schema", &[]).map_err(&pg)?.map(|row| row.get(0));
        if version.is_none() {
            tx.execute("INSERT INTO tessera_schema (version) VALUES (0)", &[]).map_err(&pg)?;
        }
        let applied = usize::try_from(version.unwrap_or(0)).unwrap_or(0);
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Backend {
                path: self.shown.clone(),
                reason: format!("schema version {applied} is newer than this build's ({})", MIGRATIONS.len()),
            });
        }
        for (n, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
            tx.batch_execute(migration).map_err(&pg)?;
            let version = i32::try_from(n + 1).unwrap_or(i32::MAX);
            tx.execute("UPDATE tessera_schema SET version = $1", &[&version]).map_err(&pg)?;
        }
        tx.commit().map_err(&pg)
    }

    /// A thread that listens for `NOTIFY tessera_events` on its own connection and bumps the
    /// tick on each (and every [`POLL_FALLBACK`] regardless); it reconnects when the connection
    /// breaks and ends with the store.
    fn listen(self: &Arc<Self>) -> Result<(), StoreError> {
        let store: Weak<PostgresStore> = Arc::downgrade(self);
        let tick = Arc::clone(&self.tick);
        let mut client = Some(off_runtime(|| self.listening())?);
        std::thread::Builder::new()
            .name("tessera-store-listen".into())
            .spawn(move || {
                while let Some(alive) = store.upgrade() {
                    if client.is_none() {
                        client = alive
                            .listening()
                            .map_err(|err| tracing::warn!(%err, "job store: cannot listen for events; polling"))
                            .ok();
                    }
                    drop(alive);
                    match client.as_mut() {
                        Some(conn) => {
                            let woke = conn.notifications().timeout_iter(POLL_FALLBACK).next();
                            if woke.is_err() || conn.is_closed() {
                                client = None;
                            }
                        }
                        None => std::thread::sleep(POLL_FALLBACK),
                    }
                    tick.send_modify(|n| *n += 1);
                }
            })
            .map_err(|e| StoreError::Backend { path: self.shown.clone(), reason: e.to_string() })?;
        Ok(())
    }

    fn listening(&self) -> Result<Client, StoreError> {
        let mut client = self.connect()?;
        client.batch_execute(&format!("LISTEN {CHANNEL}")).map_err(self.backend())?;
        Ok(client)
    }

    /// Runs `f` on the store's connection, connecting (again) first when there is none or it
    /// broke.
    fn with_client<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        off_runtime(|| {
            let mut conn = self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut client = match conn.take() {
                Some(client) if !client.is_closed() => client,
                _ => self.connect()?,
            };
            let result = f(&mut client);
            if !client.is_closed() {
                *conn = Some(client);
            }
            result
        })
    }

    /// Runs `f` in a transaction; notifies every store's watchers when it recorded events.
    fn write<T: Send>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<(T, bool), StoreError> + Send,
    ) -> Result<T, StoreError> {
        let tick = self.with_client(|client| {
            let pg = self.backend();
            let mut tx = client.transaction().map_err(&pg)?;
            let (value, wrote_events) = f(&mut tx)?;
            if wrote_events {
                tx.batch_execute(&format!("NOTIFY {CHANNEL}")).map_err(&pg)?;
            }
            tx.commit().map_err(&pg)?;
            Ok((value, wrote_events))
        })?;
        if tick.1 {
            self.tick.send_modify(|n| *n += 1);
        }
        Ok(tick.0)
    }

    /// Numbers and stores `event` for `job_id` inside `tx`; the job's row is locked first, so
    /// two nodes appending to one job number their events one after the other.
    fn insert_event(
        &self,
        tx: &mut Transaction<'_>,
        job_id: &str,
        at_unix_ms: i64,
        event: Event,
    ) -> Result<pb::RenderJobEvent, StoreError> {
        let pg = self.backend();
        if tx.query_opt("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", &[&job_id]).map_err(&pg)?.is_none() {
            return Err(StoreError::NotFound { id: job_id.to_owned() });
        }
        let last: i64 =
            tx.query_one("SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = $1", &[&job_id]).map_err(&pg)?.get(0);
        let stored = pb::RenderJobEvent {
            job_id: job_id.to_owned(),
            at_unix_ms,
            seq: last.unsigned_abs() + 1,
            event: Some(event),
        };
        let seq = i64::try_from(stored.seq).unwrap_or(i64::MAX);
        tx.execute(
            "INSERT INTO events (job_id, seq, event) VALUES ($1, $2, $3)",
            &[&job_id, &seq, &stored.encode_to_vec()],
        )
        .map_err(&pg)?;
        Ok(stored)
    }

    /// Stores `job` (its state column, and the lease and cancel request it no longer needs
    /// once it leaves the leased states).
    fn save(&self, tx: &mut Transaction<'_>, job: &RenderJob) -> Result<(), StoreError> {
        let leased = LEASED.contains(&job.state);
        tx.execute(
            "UPDATE jobs SET state = $2, job = $3, \
             lease_node = CASE WHEN $4 THEN lease_node END, \
             lease_expires_ms = CASE WHEN $4 THEN lease_expires_ms END, \
             cancel_requested = CASE WHEN $4 THEN cancel_requested ELSE FALSE END \
             WHERE id = $1",
            &[&job.id, &job.state, &job.encode_to_vec(), &leased],
        )
        .map_err(self.backend())?;
        Ok(())
    }

    /// The job and its lease holder, its row locked until the transaction ends.
    fn load(&self, tx: &mut Transaction<'_>, id: &str) -> Result<(RenderJob, Option<String>), StoreError> {
        let row = tx
            .query_opt("SELECT job, lease_node FROM jobs WHERE id = $1 FOR UPDATE", &[&id])
            .map_err(self.backend())?
            .ok_or_else(|| StoreError::NotFound { id: id.to_owned() })?;
        let bytes: Vec<u8> = row.get(0);
        Ok((decode(id, &bytes)?, row.get(1)))
    }

    fn ids(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<String>, StoreError> {
        self.with_client(|client| {
            Ok(client.query(sql, params).map_err(self.backend())?.iter().map(|row| row.get(0)).collect())
        })
    }
}

/// Runs `f` where the blocking client may run. That client drives a runtime of its own, which
/// cannot start inside a task of another runtime (the server's async code): there, a thread
/// outside it makes the call.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// A PostgreSQL error with its server message, when it has one.
fn describe(err: &postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => err.to_string(),
    }
}

impl JobStore for PostgresStore {
    fn create(
        &self,
        request_id: &str,
        spec: &pb::RenderJobSpec,
        now_unix_ms: i64,
    ) -> Result<(RenderJob, bool), StoreError> {
        self.write(|tx| {
            let pg = self.backend();
            let request = (!request_id.is_empty()).then_some(request_id);
            if let Some(request) = request {
                // Two nodes creating the same request at once: the second waits for the first.
                tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&request]).map_err(&pg)?;
                let existing =
                    tx.query_opt("SELECT id, job FROM jobs WHERE request_id = $1", &[&request]).map_err(&pg)?;
                if let Some(row) = existing {
                    let (id, bytes): (String, Vec<u8>) = (row.get(0), row.get(1));
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
            tx.execute(
                "INSERT INTO jobs (id, request_id, state, job) VALUES ($1, $2, $3, $4)",
                &[&job.id, &request, &job.state, &job.encode_to_vec()],
            )
            .map_err(&pg)?;
            self.insert_event(tx, &job.id, now_unix_ms, Event::StateChanged(JobState::Queued as i32))?;
            Ok(((job, true), true))
        })
    }

    fn get(&self, id: &str) -> Result<RenderJob, StoreError> {
        self.with_client(|client| {
            let row = client.query_opt("SELECT job FROM jobs WHERE id = $1", &[&id]).map_err(self.backend())?;
            let bytes: Vec<u8> = row.ok_or_else(|| StoreError::NotFound { id: id.to_owned() })?.get(0);
            decode(id, &bytes)
        })
    }

    fn list(&self, state: Option<JobState>, page_size: u32, page_token: &str) -> Result<Page, StoreError> {
        let (after, size) = page_request(page_size, page_token)?;
        self.with_client(|client| {
            let state_filter = state.map(|s| s as i32);
            let rows = client
                .query(
                    "SELECT seq, id, job FROM jobs WHERE seq > $1 AND ($2::INTEGER IS NULL OR state = $2) \
                     ORDER BY seq LIMIT $3",
                    &[&after, &state_filter, &(i64::from(size) + 1)],
                )
                .map_err(self.backend())?;
            let rows = rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect();
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
        self.with_client(|client| {
            let rows = client
                .query(
                    "SELECT event FROM events WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    &[&job_id, &after, &i64::from(limit)],
                )
                .map_err(self.backend())?;
            rows.iter()
                .map(|row| {
                    let bytes: Vec<u8> = row.get(0);
                    pb::RenderJobEvent::decode(bytes.as_slice())
                        .map_err(|e| StoreError::Corrupt { id: job_id.to_owned(), reason: e.to_string() })
                })
                .collect()
        })
    }

    fn last_event_seq(&self, job_id: &str) -> Result<u64, StoreError> {
        self.with_client(|client| {
            let row = client
                .query_one("SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = $1", &[&job_id])
                .map_err(self.backend())?;
            Ok(row.get::<_, i64>(0).unsigned_abs())
        })
    }

    fn claim_next(&self, terms: &LeaseTerms, now_unix_ms: i64) -> Result<Option<RenderJob>, StoreError> {
        self.write(|tx| {
            let pg = self.backend();
            let mut wrote = false;
            let (id, mut job) = loop {
                // Rows another node is claiming right now are skipped, not waited for.
                let next = tx
                    .query_opt(
                        "SELECT id, job, cancel_requested FROM jobs WHERE state = $1 \
                         OR (state = ANY($2) AND COALESCE(lease_expires_ms, 0) < $3) \
                         ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED",
                        &[&(JobState::Queued as i32), &LEASED.to_vec(), &now_unix_ms],
                    )
                    .map_err(&pg)?;
                let Some(row) = next else { return Ok((None, wrote)) };
                let (id, bytes, cancel_requested): (String, Vec<u8>, bool) = (row.get(0), row.get(1), row.get(2));
                let mut job = decode(&id, &bytes)?;
                if !cancel_requested {
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
                "UPDATE jobs SET state = $2, job = $3, lease_node = $4, lease_expires_ms = $5, \
                 cancel_requested = FALSE WHERE id = $1",
                &[&id, &job.state, &job.encode_to_vec(), &terms.node_id, &(now_unix_ms + terms.lease_ms)],
            )
            .map_err(&pg)?;
            self.insert_event(tx, &id, now_unix_ms, Event::StateChanged(JobState::Running as i32))?;
            Ok((Some(job), true))
        })
    }

    fn renew_lease(&self, job_id: &str, terms: &LeaseTerms, now_unix_ms: i64) -> Result<LeaseStatus, StoreError> {
        self.write(|tx| {
            let row = tx
                .query_opt(
                    "UPDATE jobs SET lease_expires_ms = $3 WHERE id = $1 AND lease_node = $2 AND state = ANY($4) \
                     RETURNING cancel_requested",
                    &[&job_id, &terms.node_id, &(now_unix_ms + terms.lease_ms), &LEASED.to_vec()],
                )
                .map_err(self.backend())?;
            Ok((row.map_or(LeaseStatus::Lost, |row| LeaseStatus::Held { cancel_requested: row.get(0) }), false))
        })
    }

    fn request_cancel(&self, job_id: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx
                .execute("UPDATE jobs SET cancel_requested = TRUE WHERE id = $1", &[&job_id])
                .map_err(self.backend())?;
            if changed == 0 {
                return Err(StoreError::NotFound { id: job_id.to_owned() });
            }
            Ok(((), false))
        })
    }

    fn leased_by(&self, node_id: &str) -> Result<Vec<String>, StoreError> {
        self.ids(
            "SELECT id FROM jobs WHERE lease_node = $1 AND state = ANY($2) ORDER BY seq",
            &[&node_id, &LEASED.to_vec()],
        )
    }

    fn counts(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        self.with_client(|client| {
            let rows = client
                .query("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state", &[])
                .map_err(self.backend())?;
            Ok(rows
                .iter()
                .map(|row| {
                    let (state, n): (i32, i64) = (row.get(0), row.get(1));
                    (JobState::try_from(state).unwrap_or(JobState::Unspecified), n.unsigned_abs())
                })
                .collect())
        })
    }

    fn jobs_with_undelivered_events(&self) -> Result<Vec<String>, StoreError> {
        undelivered(self, self.ids("SELECT DISTINCT job_id FROM events", &[])?)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.tick.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn a_password_never_shows() {
        assert_eq!(redacted("postgres://tessera:s3cret@db:5432/jobs"), "postgres://tessera:***@db:5432/jobs");
        assert_eq!(redacted("postgres://tessera@db/jobs"), "postgres://tessera@db/jobs");
        assert_eq!(redacted("host=db user=t password=s3cret dbname=jobs"), "host=db user=t password=*** dbname=jobs");
    }
}
