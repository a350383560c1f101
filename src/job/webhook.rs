//! Webhook delivery: every event of a job with a webhook is POSTed to it, in order, as the
//! proto3 JSON of its `RenderJobEvent`, signed with HMAC-SHA256 over `"{timestamp}.{body}"`
//! (`X-Tessera-Signature: v1=<hex>`, `X-Tessera-Timestamp: <unix seconds>`). A failed attempt
//! (no answer, 408, 429, 5xx) is retried with exponential backoff; each event's outcome is
//! recorded in the job (`RenderJob.webhook`), and delivery resumes after a restart from the
//! first event not yet dealt with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use tokio::sync::{Notify, mpsc};
use tokio::task::block_in_place;
use tracing::Instrument;

use super::config::WebhookConfig;
use super::events::{event_name, is_last, now_unix_ms};
use super::metrics::Metrics;
use super::store::{JobStore, StoreError};
use crate::proto as pb;
use crate::storage::http::HttpsClient;

/// Failed deliveries kept in a job's record.
const FAILURES_KEPT: usize = 20;

/// `v1=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`.
pub fn signature(secret: &[u8], timestamp_s: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!("v1={}", digest.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// What one attempt came to.
#[derive(Debug)]
enum Attempt {
    Delivered(u16),
    /// Worth trying again (no answer, 408, 429, 5xx).
    Retry(u16, String),
    /// The receiver refused it for good (other 4xx).
    Refused(u16, String),
}

#[derive(Clone)]
pub struct WebhookSender {
    store: Arc<dyn JobStore>,
    config: WebhookConfig,
    client: HttpsClient,
    metrics: Arc<Metrics>,
    /// One delivery task per job with events in flight, woken on each new event.
    active: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
}

impl WebhookSender {
    pub fn new(
        store: Arc<dyn JobStore>,
        config: WebhookConfig,
        metrics: Arc<Metrics>,
    ) -> Result<WebhookSender, rustls::Error> {
        Ok(WebhookSender { store, config, client: crate::storage::http::client()?, metrics, active: Arc::default() })
    }

    /// Delivers the events of every job named on `jobs` (and, first, of every job whose
    /// events were not all dealt with before the server last stopped).
    pub async fn run(self, mut jobs: mpsc::UnboundedReceiver<String>) {
        match block_in_place(|| self.store.jobs_with_undelivered_events()) {
            Ok(pending) => pending.into_iter().for_each(|id| self.wake(id)),
            Err(err) => tracing::error!(%err, "cannot resume webhook deliveries"),
        }
        while let Some(job_id) = jobs.recv().await {
            self.wake(job_id);
        }
    }

    fn wake(&self, job_id: String) {
        let mut active = self.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(notify) = active.get(&job_id) {
            notify.notify_one();
            return;
        }
        let notify = Arc::new(Notify::new());
        active.insert(job_id.clone(), notify.clone());
        let sender = self.clone();
        let span = tracing::info_span!("webhook", job_id = %job_id);
        tokio::spawn(
            async move {
                if let Err(err) = sender.deliver_job(&job_id, &notify).await {
                    tracing::error!(%err, "webhook delivery stopped");
                }
                sender.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&job_id);
            }
            .instrument(span),
        );
    }

    /// Delivers the job's events in order until its last one.
    async fn deliver_job(&self, job_id: &str, notify: &Notify) -> Result<(), StoreError> {
        loop {
            let job = block_in_place(|| self.store.get(job_id))?;
            let Some(hook) = job.spec.as_ref().and_then(|s| s.webhook.clone()).filter(|w| !w.url.is_empty()) else {
                return Ok(());
            };
            let done = job.webhook.as_ref().map_or(0, |w| w.last_event_seq);
            let events = block_in_place(|| self.store.events_after(job_id, done, 64))?;
            if events.is_empty() {
                if job.webhook.as_ref().and_then(|w| w.last.as_ref()).is_some() && super::state::is_final(job.state()) {
                    return Ok(());
                }
                notify.notified().await;
                continue;
            }
            for event in events {
                let record = self.deliver(&hook, &event).await;
                let last = is_last(&event);
                block_in_place(|| self.record(job_id, &record))?;
                if last {
                    return Ok(());
                }
            }
        }
    }

    /// Counts a delivered or failed event in the job's webhook status.
    fn record(&self, job_id: &str, record: &pb::WebhookDelivery) -> Result<pb::RenderJob, StoreError> {
        self.store.update(job_id, |job| {
            let status = job.webhook.get_or_insert_with(Default::default);
            if record.delivered {
                status.delivered += 1;
            } else {
                status.failed += 1;
                status.failures.push(record.clone());
                let excess = status.failures.len().saturating_sub(FAILURES_KEPT);
                status.failures.drain(..excess);
            }
            status.last_event_seq = record.event_seq;
            status.last = Some(record.clone());
            Ok(())
        })
    }

    /// Delivers one event, retrying as configured.
    async fn deliver(&self, hook: &pb::Webhook, event: &pb::RenderJobEvent) -> pb::WebhookDelivery {
        let body = serde_json::to_vec(event).unwrap_or_default();
        let mut record = pb::WebhookDelivery {
            event_seq: event.seq,
            event: event_name(event).to_owned(),
            ..pb::WebhookDelivery::default()
        };
        let mut backoff_ms = self.config.initial_backoff_ms;
        loop {
            record.attempts += 1;
            record.at_unix_ms = now_unix_ms();
            let attempt = self.attempt(hook, event, &body).await;
            self.metrics.webhook_attempt();
            let retry = match attempt {
                Attempt::Delivered(code) => {
                    record.delivered = true;
                    record.status_code = u32::from(code);
                    record.error.clear();
                    false
                }
                Attempt::Retry(code, error) => {
                    (record.status_code, record.error) = (u32::from(code), error);
                    true
                }
                Attempt::Refused(code, error) => {
                    (record.status_code, record.error) = (u32::from(code), error);
                    false
                }
            };
            if !retry || record.attempts >= self.config.max_attempts {
                break;
            }
            tracing::warn!(seq = event.seq, attempt = record.attempts, error = %record.error, "webhook delivery failed; retrying in {backoff_ms} ms");
            tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
            backoff_ms = (backoff_ms * 2).min(self.config.max_backoff_ms);
        }
        self.metrics.webhook_outcome(record.delivered);
        if !record.delivered {
            tracing::error!(seq = event.seq, attempts = record.attempts, error = %record.error, "webhook delivery given up");
        }
        record
    }

    async fn attempt(&self, hook: &pb::Webhook, event: &pb::RenderJobEvent, body: &[u8]) -> Attempt {
        let timestamp_s = now_unix_ms() / 1000;
        let request = http::Request::post(&hook.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .header("x-tessera-event", event_name(event))
            .header("x-tessera-delivery", format!("{}-{}", event.job_id, event.seq))
            .header("x-tessera-timestamp", timestamp_s.to_string())
            .header("x-tessera-signature", signature(hook.signing_secret.as_bytes(), timestamp_s, body))
            .body(Full::new(Bytes::copy_from_slice(body)));
        let request = match request {
            Ok(request) => request,
            Err(err) => return Attempt::Refused(0, format!("cannot build the request: {err}")),
        };
        let timeout = Duration::from_millis(self.config.timeout_ms);
        match tokio::time::timeout(timeout, self.client.request(request)).await {
            Err(_) => Attempt::Retry(0, format!("no answer within {} ms", self.config.timeout_ms)),
            Ok(Err(err)) => Attempt::Retry(0, format!("{err:#}")),
            Ok(Ok(response)) => {
                let code = response.status().as_u16();
                // Read (and drop) the body so the connection can be reused.
                let _ = tokio::time::timeout(timeout, response.into_body().collect()).await;
                match code {
                    200..=299 => Attempt::Delivered(code),
                    408 | 429 | 500..=599 => Attempt::Retry(code, format!("HTTP {code}")),
                    _ => Attempt::Refused(code, format!("HTTP {code}")),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'a-secret-of-16-bytes'
        let got = signature(b"a-secret-of-16-bytes", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(got, "v1=001f7b5df107572ddd8913cfe09db99120e472c5ca61a1f99f60db0123c42104");
    }
}
