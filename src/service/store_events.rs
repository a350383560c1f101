//! The job store's event history: every event of a job numbered 1, 2, 3, ... in the same
//! transaction as the change it reports (see `JobStore::update_with_event`), read back in
//! order by watchers and the webhook sender.

use prost::Message;
use rusqlite::{Transaction, params};

use super::store::{JobStore, StoreError};
use crate::api::pb::{self, render_job_event::Event};

impl JobStore {
    /// Numbers and stores `event` for `job_id` inside `tx`.
    pub(super) fn insert_event(
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

    /// Appends an event that changes nothing else (progress, output ready, failure).
    pub fn append_event(&self, job_id: &str, at_unix_ms: i64, event: Event) -> Result<pb::RenderJobEvent, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction().map_err(self.sqlite())?;
            let stored = self.insert_event(&tx, job_id, at_unix_ms, event)?;
            tx.commit().map_err(self.sqlite())?;
            Ok(stored)
        })
    }

    /// A job's events after `after_seq`, oldest first, at most `limit`.
    pub fn events_after(
        &self,
        job_id: &str,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<pb::RenderJobEvent>, StoreError> {
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
}
