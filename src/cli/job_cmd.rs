//! `tessera render JOB.json`: runs a render job spec (the JSON a control plane would send to
//! CreateRenderJob) without a server.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use tessera::job::read_job_file;
use tessera::job::spec::{remote_source, validate};
use tessera::job::worker::{WorkOrder, parallel_for};
use tessera::render::RenderInput;
use tessera::storage::settings::remote_settings;

use super::remote::{cache_dir, fetch_source, node_storage, publish_outputs};

use super::interrupt::guard;
use super::progress::peak_rss_mib;
use super::render_cmd::{print_files, run};

#[derive(Args)]
pub struct RenderArgs {
    /// A CreateRenderJobRequest in proto3 JSON: `{"requestId": ..., "spec": {...}}`.
    job: PathBuf,
    /// Write the outputs here instead of the spec's storage.
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Download cache for a remote source, revalidated by ETag (default: ~/.cache/tessera).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Debug logging on stderr.
    #[arg(long)]
    verbose: bool,
}

pub fn render_job(args: RenderArgs) -> anyhow::Result<()> {
    tessera::telemetry::init(if args.verbose { "debug" } else { "warn" });
    let job = read_job_file(&args.job)?;
    let mut spec = job.spec.unwrap_or_default();
    if let Some(dir) = &args.output_dir {
        let storage = spec.storage.get_or_insert_with(Default::default);
        storage.r#type = "local".into();
        storage.path_prefix = dir.display().to_string();
    }
    if spec.webhook.as_ref().is_some_and(|w| !w.url.is_empty()) {
        anyhow::bail!(
            "{}: spec.webhook: webhooks are delivered by `tessera serve`; `tessera render` has none",
            args.job.display()
        );
    }
    let mut request = validate(&spec).map_err(|invalid| {
        let lines: Vec<String> = invalid.0.iter().map(|v| format!("  {v}")).collect();
        anyhow::anyhow!("{} is not a valid job:\n{}", args.job.display(), lines.join("\n"))
    })?;
    // Remote storage: rendered into the run's own directory, then uploaded.
    let block = spec
        .storage
        .clone()
        .with_context(|| format!("{}: spec.storage: say where the outputs go", args.job.display()))?;
    let remote = match block.r#type.as_str() {
        "" | "local" => None,
        _ => Some(remote_settings(&block, &node_storage()).map_err(|violations| {
            let lines: Vec<String> = violations.iter().map(|(f, r)| format!("  storage.{f}: {r}")).collect();
            anyhow::anyhow!("{} is not a valid job:\n{}", args.job.display(), lines.join("\n"))
        })?),
    };
    // A remote source is downloaded first (through the cache), into the run's own directory,
    // removed at the end.
    let guarded = guard(remote.is_none().then_some(request.output_dir.as_path()))?;
    request.work_dir = guarded.work_dir.path().to_path_buf();
    request.cancel = guarded.cancel.clone();
    if remote.is_some() {
        request.output_dir = guarded.work_dir.path().join("out");
    }
    if let Some(url) = remote_source(&spec) {
        let cache = cache_dir(args.cache_dir.as_deref());
        let blocks: Vec<_> = spec.source_storage.iter().collect();
        let archive = fetch_source(url, &blocks, &cache, guarded.work_dir.path(), &guarded.cancel)?;
        request.input = RenderInput::Archive(archive);
    }
    // Its slices (if any) render in `tessera job-worker` processes, as the service's do.
    request.parallel = parallel_for(&WorkOrder::of(job.request_id.clone(), spec.clone(), &request), None)
        .map_err(|failure| anyhow::anyhow!(failure.message))?;
    let span = tracing::info_span!("job", request_id = %job.request_id);
    let summary = span.in_scope(|| run(&request, None))?;
    if let Some(settings) = remote {
        publish_outputs(settings, &summary)?;
    }
    let peak = peak_rss_mib().map(|m| format!(", peak RSS {m} MiB")).unwrap_or_default();
    println!(
        "job {}: {:.1} s call, {} participants, {} files in {:.1} s ({:.2}x real time{peak}) -> {}",
        if job.request_id.is_empty() { "(no request id)" } else { job.request_id.as_str() },
        summary.duration_ms / 1000.0,
        summary.participants,
        summary.outputs.len(),
        summary.elapsed_s,
        summary.speed(),
        summary.output_dir.display()
    );
    print_files(&summary);
    Ok(())
}
