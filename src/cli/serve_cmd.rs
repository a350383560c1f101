//! `tessera serve`: the render service. gRPC (RenderService behind bearer auth; the standard
//! health service and reflection v1 and v1alpha open) on `server.listen`, over TLS when configured;
//! Prometheus metrics on `server.metrics_listen`; jobs in `data_dir/jobs.sqlite`. SIGTERM or
//! SIGINT: stop taking jobs, let the running ones finish within the grace period (the rest
//! are queued again), end the watch streams, exit.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tessera::api::auth::BearerAuth;
use tessera::api::service::RenderApi;
use tessera::job::config::ServeConfig;
use tessera::job::events::EventLog;
use tessera::job::metrics::{self, Metrics};
use tessera::job::postgres::{self, PostgresStore};
use tessera::job::runner::{self, JobContext};
use tessera::job::scheduler::Scheduler;
use tessera::job::sqlite::SqliteStore;
use tessera::job::store::JobStore;
use tessera::job::webhook::WebhookSender;
use tessera::proto::{self as pb, render_service_server::RenderServiceServer};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};

#[derive(Args)]
pub struct ServeArgs {
    /// The configuration file (TOML; see config.example.toml). Without it: the defaults and
    /// TESSERA__SECTION__KEY environment overrides.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The job store: a postgres:// URL shared by the nodes of a farm (overrides `store.url`).
    #[arg(long, value_name = "URL")]
    store: Option<String>,
}

pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = ServeConfig::load(args.config.as_deref(), std::env::vars())?;
    if let Some(url) = args.store {
        config.store.url = url;
        config.check().map_err(anyhow::Error::msg)?;
    }
    if config.log.format == "json" {
        tessera::telemetry::init_json(&config.log.level);
    } else {
        tessera::telemetry::init(&config.log.level);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(run(config))
}

async fn run(config: ServeConfig) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.server.data_dir)
        .with_context(|| format!("creating the data dir {}", config.server.data_dir.display()))?;
    let swept = runner::sweep_stale_work(&config.work_root());
    if swept > 0 {
        tracing::info!(swept, "removed the work left by an earlier run");
    }
    let config = Arc::new(config);
    let store: Arc<dyn JobStore> = if config.store.url.is_empty() {
        SqliteStore::open(&config.store_path())?
    } else {
        let store = PostgresStore::open(&config.store.url)?;
        tracing::info!(store = %postgres::redacted(&config.store.url), "job store: PostgreSQL");
        store
    };
    let node_id = config.node_id()?;
    let metrics = Arc::new(Metrics::new(config.jobs.max_concurrent));
    let (webhook_tx, webhook_rx) = tokio::sync::mpsc::unbounded_channel();
    let events = EventLog::new(store.clone(), node_id.clone(), Some(webhook_tx));
    let sender = WebhookSender::new(store.clone(), config.webhooks.clone(), metrics.clone())
        .map_err(|e| anyhow::anyhow!("webhook TLS set-up: {e}"))?;
    tokio::spawn(sender.run(webhook_rx));
    // Each job renders in a child process of this executable (`tessera job-worker`).
    let worker = match config.jobs.isolate {
        true => Some(std::env::current_exe().context("finding this executable (the render process)")?),
        false => None,
    };
    let scheduler = Scheduler::new(JobContext { config: config.clone(), events, metrics: metrics.clone(), worker });
    tokio::spawn(scheduler.clone().run());

    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    let grpc_addr = listener.local_addr()?;
    let metrics_task = match config.metrics_addr().map_err(anyhow::Error::msg)? {
        Some(addr) => {
            let metrics_listener = TcpListener::bind(addr).await.with_context(|| format!("metrics on {addr}"))?;
            println!("tessera serve: metrics on http://{}/metrics", metrics_listener.local_addr()?);
            let mut stop = scheduler.closed();
            let stop = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            Some(tokio::spawn(metrics::serve(metrics_listener, metrics.clone(), store.clone(), stop)))
        }
        None => None,
    };

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<RenderServiceServer<RenderApi>>().await;
    let reflection = |builder: tonic_reflection::server::Builder<'static>| {
        builder
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection(tonic_reflection::server::Builder::configure()).build_v1()?;
    let reflection_v1alpha = reflection(tonic_reflection::server::Builder::configure()).build_v1alpha()?;
    let auth = BearerAuth::new(config.auth.bearer_tokens.clone());
    let check = move |request| auth.check(request);

    let mut server = Server::builder();
    let tls = match (&config.tls.cert_path, &config.tls.key_path) {
        (Some(cert), Some(key)) => {
            let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
            let identity = Identity::from_pem(read(cert)?, read(key)?);
            server = server.tls_config(ServerTlsConfig::new().identity(identity)).context("TLS configuration")?;
            true
        }
        _ => false,
    };
    println!(
        "tessera serve: node {node_id} listening on {grpc_addr} ({}), {} jobs at once, data in {}",
        if tls { "TLS" } else { "plaintext" },
        config.jobs.max_concurrent,
        config.server.data_dir.display()
    );
    let router = server
        .add_service(health_service)
        .add_service(InterceptedService::new(
            // A pushed 4K I420 picture is 12.4 MB: messages up to MAX_MESSAGE_BYTES pass.
            RenderServiceServer::new(RenderApi::new(scheduler.clone()))
                .max_decoding_message_size(tessera::api::MAX_MESSAGE_BYTES),
            check,
        ))
        // The schema is public (proto/), and grpcurl needs it for every call.
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);

    let signals = {
        let scheduler = scheduler.clone();
        let grace = Duration::from_secs(config.jobs.shutdown_grace_s);
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down: no new jobs; running jobs get {} s", grace.as_secs());
            // The overall status ("") too: load balancers probe that one.
            health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
            health.set_not_serving::<RenderServiceServer<RenderApi>>().await;
            scheduler.shutdown(grace).await;
            scheduler.close_streams();
        }
    };
    let serving = router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
        signals.await;
    });
    serving.await.context("gRPC server")?;
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    tracing::info!("stopped");
    println!("tessera serve: stopped");
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
