//! Prometheus metrics of a node, in the text exposition format at `/metrics`: jobs by state,
//! queue depth and capacity, render speed, the encoder in use, webhook deliveries.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::state::{RENDER_STATES, state_name};
use super::store::{JobStore, StoreError, count_of};
use crate::proto::JobState;

#[derive(Debug, Default)]
pub struct Metrics {
    running: AtomicU64,
    capacity: AtomicU64,
    accepting: AtomicU64,
    finished_media_ms: AtomicU64,
    finished_wall_ms: AtomicU64,
    webhook_attempts: AtomicU64,
    webhook_delivered: AtomicU64,
    webhook_failed: AtomicU64,
    /// (video encoder, GPU adapter, speed) of the last finished render.
    last: Mutex<Option<(String, String, f64)>>,
}

impl Metrics {
    pub fn new(capacity: u32) -> Metrics {
        let metrics = Metrics::default();
        metrics.capacity.store(u64::from(capacity), Ordering::Relaxed);
        metrics.accepting.store(1, Ordering::Relaxed);
        metrics
    }

    pub fn job_started(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    pub fn job_stopped(&self) {
        self.running.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn running(&self) -> u32 {
        u32::try_from(self.running.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
    }

    pub fn capacity(&self) -> u32 {
        u32::try_from(self.capacity.load(Ordering::Relaxed)).unwrap_or(u32::MAX)
    }

    pub fn set_accepting(&self, accepting: bool) {
        self.accepting.store(u64::from(accepting), Ordering::Relaxed);
    }

    pub fn accepting(&self) -> bool {
        self.accepting.load(Ordering::Relaxed) == 1
    }

    /// A render finished: `media_ms` of call in `wall_ms`.
    pub fn rendered(&self, media_ms: f64, wall_ms: f64, encoder: Option<&str>, adapter: Option<&str>) {
        self.finished_media_ms.fetch_add(media_ms.max(0.0) as u64, Ordering::Relaxed);
        self.finished_wall_ms.fetch_add(wall_ms.max(0.0) as u64, Ordering::Relaxed);
        let speed = if wall_ms > 0.0 { media_ms / wall_ms } else { 0.0 };
        let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (old_encoder, old_adapter) = last.take().map(|(e, a, _)| (e, a)).unwrap_or_default();
        *last = Some((encoder.map_or(old_encoder, str::to_owned), adapter.map_or(old_adapter, str::to_owned), speed));
    }

    /// The encoder and adapter of the last render ("" before the first).
    pub fn engine(&self) -> (String, String) {
        let last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        last.as_ref().map(|(e, a, _)| (e.clone(), a.clone())).unwrap_or_default()
    }

    pub fn webhook_attempt(&self) {
        self.webhook_attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn webhook_outcome(&self, delivered: bool) {
        let counter = if delivered { &self.webhook_delivered } else { &self.webhook_failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, store: &dyn JobStore) -> Result<String, StoreError> {
        let counts = store.counts()?;
        let mut text = String::from("# HELP tessera_jobs Jobs in the store by state.\n# TYPE tessera_jobs gauge\n");
        for state in RENDER_STATES {
            let n = count_of(&counts, state);
            let _ = writeln!(text, "tessera_jobs{{state=\"{}\"}} {n}", state_name(state));
        }
        let queued = count_of(&counts, JobState::Queued);
        let gauge = |text: &mut String, name: &str, help: &str, value: String| {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        };
        let counter = |text: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        gauge(&mut text, "tessera_queue_depth", "Jobs waiting for a slot.", queued.to_string());
        gauge(
            &mut text,
            "tessera_jobs_running",
            "Jobs rendering or uploading on this node.",
            self.running().to_string(),
        );
        gauge(&mut text, "tessera_max_concurrent_jobs", "Jobs this node runs at once.", self.capacity().to_string());
        gauge(
            &mut text,
            "tessera_accepting_jobs",
            "1 while the node takes new jobs.",
            u64::from(self.accepting()).to_string(),
        );
        let media_s = self.finished_media_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let wall_s = self.finished_wall_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        let _ = writeln!(
            text,
            "# HELP tessera_rendered_media_seconds_total Call time rendered by finished jobs.\n\
             # TYPE tessera_rendered_media_seconds_total counter\ntessera_rendered_media_seconds_total {media_s}\n\
             # HELP tessera_render_seconds_total Wall-clock time those renders took.\n\
             # TYPE tessera_render_seconds_total counter\ntessera_render_seconds_total {wall_s}"
        );
        let last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some((encoder, adapter, speed)) = last {
            gauge(
                &mut text,
                "tessera_last_render_speed_ratio",
                "Call seconds per wall-clock second of the last render.",
                speed.to_string(),
            );
            let _ = writeln!(
                text,
                "# HELP tessera_encoder_info The video encoder and GPU adapter of the last render.\n\
                 # TYPE tessera_encoder_info gauge\ntessera_encoder_info{{encoder=\"{}\",adapter=\"{}\"}} 1",
                label(&encoder),
                label(&adapter)
            );
        }
        counter(
            &mut text,
            "tessera_webhook_attempts_total",
            "Webhook POSTs made.",
            self.webhook_attempts.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            text,
            "# HELP tessera_webhook_deliveries_total Webhook events by outcome.\n\
             # TYPE tessera_webhook_deliveries_total counter\n\
             tessera_webhook_deliveries_total{{outcome=\"delivered\"}} {}\n\
             tessera_webhook_deliveries_total{{outcome=\"failed\"}} {}",
            self.webhook_delivered.load(Ordering::Relaxed),
            self.webhook_failed.load(Ordering::Relaxed)
        );
        Ok(text)
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Serves `/metrics` on `listener` until `stop` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: std::sync::Arc<Metrics>,
    store: std::sync::Arc<dyn JobStore>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::http::StatusCode;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let (metrics, store) = (metrics.clone(), store.clone());
            async move {
                match tokio::task::block_in_place(|| metrics.render(store.as_ref())) {
                    Ok(text) => (StatusCode::OK, [("content-type", "text/plain; version=0.0.4")], text),
                    Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, [("content-type", "text/plain")], err.to_string()),
                }
            }
        }),
    );
    axum::serve(listener, app).with_graceful_shutdown(stop).await
}
