//! Each job rendered in a child process of its own (`tessera job-worker`): a crash inside
//! GStreamer, a codec or the GPU driver ends that process, the job fails naming the signal,
//! and the node keeps serving. (A live job renders on the node's own threads: its senders'
//! media arrives there.)
//!
//! The parent hands the child one JSON line on its stdin, the [`WorkOrder`]: the job's spec
//! and the runner's choices (directories, a downloaded source, limits). It keeps stdin open
//! while the child works; closing it (a cancel, or the parent gone) cancels the render. The
//! child answers on stdout, one JSON [`Report`] a line: progress, each finished file (uploaded
//! by the parent while the render goes on), then its summary or its failure. Its logs go to
//! its stderr, which is the parent's.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::slice_worker::{ChildSlices, serve_slice};
use super::spec::validate;
use crate::error::{Fault, failure, failure_of};
use crate::proto as pb;
use crate::render::manifest::OutputEntry;
use crate::render::{
    CancelFlag, FileReady, Parallel, Progress, RenderError, RenderInput, RenderRequest, RenderSummary, SliceDone,
    SliceOrder, render,
};

/// What a child renders.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkOrder {
    /// For the child's logs.
    pub job_id: String,
    pub spec: pb::RenderJobSpec,
    /// The source, downloaded by the parent, when the spec names a remote one.
    pub archive: Option<PathBuf>,
    pub output_dir: PathBuf,
    pub work_dir: PathBuf,
    pub stall_timeout_s: u64,
    pub max_call_span_h: u64,
    /// Render only this slice of the composite video (the job's `parallelism`).
    #[serde(default)]
    pub slice: Option<SliceOrder>,
}

impl WorkOrder {
    /// The order for a job's `spec` as `request` (built from it) stands: its source (a
    /// downloaded one's file), directories and limits.
    pub fn of(job_id: String, spec: pb::RenderJobSpec, request: &RenderRequest) -> WorkOrder {
        WorkOrder {
            job_id,
            spec,
            archive: match &request.input {
                RenderInput::Archive(path) => Some(path.clone()),
                _ => None,
            },
            output_dir: request.output_dir.clone(),
            work_dir: request.work_dir.clone(),
            stall_timeout_s: request.stall_timeout_s,
            max_call_span_h: request.max_call_span_h,
            slice: None,
        }
    }
}

/// One line of the child's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum Report {
    Progress {
        phase: String,
        done: u64,
        total: u64,
        media_done_ms: f64,
        media_total_ms: f64,
    },
    File {
        entry: OutputEntry,
    },
    Done {
        summary: RenderSummary,
    },
    /// A slice of the composite rendered (see `WorkOrder::slice`).
    Slice {
        done: SliceDone,
    },
    Failed {
        failure: pb::Failure,
    },
    Cancelled,
}

impl Report {
    /// A progress report.
    pub fn of(p: &Progress) -> Report {
        Report::Progress {
            phase: p.phase.to_owned(),
            done: p.done,
            total: p.total,
            media_done_ms: p.media_done_ms,
            media_total_ms: p.media_total_ms,
        }
    }
}

/// How a render in a child ended, when not with its summary.
#[derive(Debug)]
pub enum WorkerError {
    Cancelled,
    /// The render failed (the child's account), or the child died (a crash).
    Failed(pb::Failure),
}

impl WorkerError {
    /// The in-process render's error, as a child would have reported it.
    pub fn of(err: &RenderError) -> WorkerError {
        match err {
            RenderError::Cancelled => WorkerError::Cancelled,
            other => WorkerError::Failed(failure(other)),
        }
    }
}

/// The phases a render reports (`render::Progress`), as the static names it carries.
fn phase_name(phase: &str) -> &'static str {
    ["composite", "individual", "live"].into_iter().find(|p| *p == phase).unwrap_or("render")
}

/// The job's slices rendered by child processes of `exe` (`None`: this program), when its spec
/// asks for parallelism. Fails, as an internal failure, when this program cannot be found.
pub fn parallel_for(order: &WorkOrder, exe: Option<&Path>) -> Result<Option<Parallel>, pb::Failure> {
    let workers = order.spec.parallelism;
    if workers <= 1 || order.slice.is_some() {
        return Ok(None);
    }
    let exe = match exe {
        Some(exe) => exe.to_path_buf(),
        None => std::env::current_exe().map_err(|err| {
            failure_of(Fault::Internal("worker"), format!("cannot find this program to start slice workers: {err}"))
        })?,
    };
    Ok(Some(Parallel { workers, slices: std::sync::Arc::new(ChildSlices::for_job(exe, order.clone())) }))
}

/// The job's request rebuilt from an order (the runner's choices applied to the spec's).
pub fn request_of(order: &WorkOrder) -> Result<RenderRequest, pb::Failure> {
    let mut request = validate(&order.spec).map_err(|invalid| failure(&invalid))?;
    if let Some(archive) = &order.archive {
        request.input = RenderInput::Archive(archive.clone());
    }
    request.output_dir = order.output_dir.clone();
    request.work_dir = order.work_dir.clone();
    request.stall_timeout_s = order.stall_timeout_s;
    request.max_call_span_h = order.max_call_span_h;
    Ok(request)
}

/// Renders `order` in a child process (`exe job-worker`): progress to `on_progress`, each
/// finished file to `on_file`, as they come. A cancel of `cancel` ends the child.
pub fn render_in_child(
    exe: &Path,
    order: &WorkOrder,
    cancel: &CancelFlag,
    on_file: Option<&FileReady>,
    mut on_progress: impl FnMut(Progress),
) -> Result<RenderSummary, WorkerError> {
    let internal = |what: String| WorkerError::Failed(failure_of(Fault::Internal("worker"), what));
    let line = serde_json::to_string(order).map_err(|e| internal(format!("the work order: {e}")))?;
    let ended = run_child(exe, &["job-worker".into()], &line, cancel, |report| match report {
        Report::Progress { phase, done, total, media_done_ms, media_total_ms } => {
            on_progress(Progress { phase: phase_name(&phase), done, total, media_done_ms, media_total_ms });
        }
        Report::File { entry } => {
            if let Some(ready) = on_file {
                (ready.0)(&entry);
            }
        }
        _ => {}
    })
    .map_err(internal)?;
    match ended.last {
        Some(Report::Done { summary }) => Ok(summary),
        Some(Report::Failed { failure }) => Err(WorkerError::Failed(failure)),
        Some(Report::Cancelled) => Err(WorkerError::Cancelled),
        _ if cancel.is_cancelled() => Err(WorkerError::Cancelled),
        _ => Err(internal(format!("the render process ended without a result: {}", describe(ended.status)))),
    }
}

/// How a child process ended: its last final report (a summary, a slice, a failure, a
/// cancel) and its exit status.
pub(super) struct ChildEnd {
    pub last: Option<Report>,
    pub status: Option<ExitStatus>,
}

/// Runs `exe args` with `line` on its stdin, held open until the child ends or `cancel` fires;
/// its progress and file reports go to `on_report` as they come.
pub(super) fn run_child(
    exe: &Path,
    args: &[OsString],
    line: &str,
    cancel: &CancelFlag,
    mut on_report: impl FnMut(Report),
) -> Result<ChildEnd, String> {
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the render process {}: {e}", exe.display()))?;
    let pid = child.id();
    tracing::info!(pid, "render process started");
    let mut stdin = child.stdin.take();
    if let Some(input) = stdin.as_mut() {
        let _ = writeln!(input, "{line}").and_then(|()| input.flush());
    }
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("the render process has no stdout".into());
    };
    // Cancel: close the child's stdin (it stops, removing its partial files), and kill it if
    // it has not ended a while later.
    let watcher = CancelWatch::start(cancel.clone(), stdin, pid);
    let mut last = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        match serde_json::from_str::<Report>(&line) {
            Ok(report @ (Report::Progress { .. } | Report::File { .. })) => on_report(report),
            Ok(report) => last = Some(report),
            Err(err) => tracing::warn!(%err, line = %line, "render process: a line not understood"),
        }
    }
    let status = child.wait().ok();
    watcher.stop();
    Ok(ChildEnd { last, status })
}

/// An exit status in words: the signal that ended a crashed process, or its code.
pub(super) fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(status) => match status.signal() {
            Some(signal) => format!("killed by signal {signal} ({})", signal_name(signal)),
            None => format!("exit code {}", status.code().unwrap_or(-1)),
        },
        None => "its status is unknown".into(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        _ => "a signal",
    }
}

/// Closes a child's stdin when the job is cancelled; kills the child if it is still there
/// [`KILL_AFTER`] later.
struct CancelWatch {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A cancelled child that has not ended by then is killed.
const KILL_AFTER: std::time::Duration = std::time::Duration::from_secs(20);

impl CancelWatch {
    fn start(cancel: CancelFlag, stdin: Option<std::process::ChildStdin>, pid: u32) -> CancelWatch {
        use std::sync::atomic::Ordering;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ended = std::sync::Arc::clone(&done);
        let thread = std::thread::Builder::new()
            .name("tessera-worker-cancel".into())
            .spawn(move || {
                let mut stdin = stdin;
                while !ended.load(Ordering::SeqCst) && !cancel.is_cancelled() {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                drop(stdin.take());
                let deadline = std::time::Instant::now() + KILL_AFTER;
                while !ended.load(Ordering::SeqCst) {
                    if std::time::Instant::now() >= deadline {
                        tracing::warn!(pid, "the cancelled render process did not stop: killing it");
                        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            })
            .ok();
        CancelWatch { done, thread }
    }

    fn stop(mut self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Writes one report as a JSON line on stdout.
pub(super) type Say = std::sync::Arc<dyn Fn(&Report) + Send + Sync>;

/// A child's side: reads its order (one JSON line) from stdin and hands it to `work` with a
/// cancel flag that is set once stdin closes (the parent cancels, or is gone), and with the
/// way to report on stdout.
pub(super) fn serve<T: DeserializeOwned>(work: impl FnOnce(T, CancelFlag, Say)) -> Result<(), std::io::Error> {
    let mut input = BufReader::new(std::io::stdin());
    let mut line = String::new();
    input.read_line(&mut line)?;
    let stdout = std::sync::Mutex::new(std::io::stdout());
    let say: Say = std::sync::Arc::new(move |report: &Report| {
        if let Ok(text) = serde_json::to_string(report) {
            let mut out = stdout.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = writeln!(out, "{text}").and_then(|()| out.flush());
        }
    });
    let order: T = match serde_json::from_str(&line) {
        Ok(order) => order,
        Err(err) => {
            say(&Report::Failed { failure: failure_of(Fault::Internal("worker"), format!("the work order: {err}")) });
            return Ok(());
        }
    };
    let cancel = CancelFlag::default();
    let stdin_cancel = cancel.clone();
    std::thread::Builder::new().name("tessera-worker-stdin".into()).spawn(move || {
        let mut rest = String::new();
        while input.read_line(&mut rest).is_ok_and(|n| n > 0) {
            rest.clear();
        }
        stdin_cancel.cancel();
    })?;
    work(order, cancel, say);
    Ok(())
}

/// The child's side (`tessera job-worker`): reads the order from stdin, renders it (or its
/// slice), reports on stdout. A closed stdin cancels the render.
pub fn serve_order() -> Result<(), std::io::Error> {
    serve(|order: WorkOrder, cancel, say| {
        let _span = tracing::info_span!("job", job_id = %order.job_id, process = "worker").entered();
        match request_of(&order) {
            Ok(mut request) => {
                request.cancel = cancel;
                match &order.slice {
                    Some(slice) => serve_slice(&request, slice, &say),
                    None => serve_render(request, &order, &say),
                }
            }
            Err(failure) => say(&Report::Failed { failure }),
        }
    })
}

/// Renders a whole job in the child, its slices (if any) in children of its own.
fn serve_render(mut request: RenderRequest, order: &WorkOrder, say: &Say) {
    match parallel_for(order, None) {
        Ok(parallel) => request.parallel = parallel,
        Err(failure) => return say(&Report::Failed { failure }),
    }
    let file_say = std::sync::Arc::clone(say);
    request.on_file = Some(FileReady::new(move |entry| file_say(&Report::File { entry: entry.clone() })));
    let result = render(&request, |p| say(&Report::of(&p)));
    match result {
        Ok(summary) => say(&Report::Done { summary }),
        Err(RenderError::Cancelled) => say(&Report::Cancelled),
        Err(err) => say(&Report::Failed { failure: failure(&err) }),
    }
}
