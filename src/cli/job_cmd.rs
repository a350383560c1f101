//! `tessera render JOB.json`: runs a render job spec (the JSON a control plane would send to
//! CreateRenderJob) without a server.

use std::path::PathBuf;

use clap::Args;
use tessera::job::read_job_file;
use tessera::job::spec::{remote_source, shown_url, validate};
use tessera::render::RenderInput;
use tessera::storage::fetch::fetch_blocking;

use super::interrupt::guard;
use super::progress::peak_rss_mib;
use super::render_cmd::{print_files, run};

#[derive(Args)]
pub struct RenderArgs {
    /// A CreateRenderJobRequest in proto3 JSON: `{"requestId": ..., "spec": {...}}`.
    job: PathBuf,
    /// Write the outputs here instead of the spec's local storage path.
    #[arg(long)]
    output_dir: Option<PathBuf>,
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
    // A remote source is downloaded first, into the run's own directory, removed at the end.
    let guarded = guard(Some(&request.output_dir))?;
    request.work_dir = guarded.work_dir.path().to_path_buf();
    request.cancel = guarded.cancel.clone();
    if let Some(url) = remote_source(&spec) {
        let archive = guarded.work_dir.path().join("source.archive");
        let bytes = fetch_blocking(url, &archive, u64::MAX, &guarded.cancel)?;
        eprintln!("fetched {} ({bytes} bytes)", shown_url(url));
        request.input = RenderInput::Archive(archive);
    }
    let span = tracing::info_span!("job", request_id = %job.request_id);
    let summary = span.in_scope(|| run(&request, None))?;
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
