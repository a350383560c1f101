//! Slices of a composite (a job's `parallelism`) rendered by child processes on this node:
//! each slice's order goes to a child on its stdin, like a job's (see `worker`), and its
//! frames come back as progress. A child that dies without an answer (a crash, a kill) leaves
//! its slice to be given to a worker again (`render::sliced`).
//!
//! A job's slices run as `tessera job-worker` with the job's work order and the slice in it;
//! the CLI's run as the same command line with `--slice-worker`, the slice order alone on
//! stdin. Each child rebuilds the request from what it was given, as its parent did.

use std::ffi::OsString;
use std::path::PathBuf;

use super::worker::{Report, Say, WorkOrder, describe, run_child, serve};
use crate::error::failure;
use crate::proto as pb;
use crate::render::{
    CancelFlag, RenderError, RenderRequest, SliceDone, SliceFailure, SliceOrder, SliceWorkers, render_slice,
};

/// Test hook: with `TESSERA_TEST_ABORT_SLICE=N` set, the worker of slice N aborts (SIGABRT)
/// halfway through its first try, as a crash in a codec or driver would end it; the slice is
/// then rendered again. No input can cause this.
const ABORT_HOOK: &str = "TESSERA_TEST_ABORT_SLICE";

/// What a child is told for a slice.
type OrderLine = Box<dyn Fn(&SliceOrder) -> Result<String, String> + Send + Sync>;

/// Slices rendered by child processes of this program.
pub struct ChildSlices {
    exe: PathBuf,
    args: Vec<OsString>,
    line: OrderLine,
}

impl ChildSlices {
    /// A job's slices: `exe job-worker` with the job's order, the slice in it.
    pub fn for_job(exe: PathBuf, order: WorkOrder) -> ChildSlices {
        let line: OrderLine = Box::new(move |slice| {
            let order = WorkOrder { slice: Some(slice.clone()), ..order.clone() };
            serde_json::to_string(&order).map_err(|e| format!("the work order: {e}"))
        });
        ChildSlices { exe, args: vec!["job-worker".into()], line }
    }

    /// A command's slices: `exe args` (the command line that asked for them, with the flag
    /// that makes it a slice worker), the slice order alone on stdin.
    pub fn for_command(exe: PathBuf, args: Vec<OsString>) -> ChildSlices {
        let line: OrderLine =
            Box::new(|slice| serde_json::to_string(slice).map_err(|e| format!("the slice order: {e}")));
        ChildSlices { exe, args, line }
    }
}

impl SliceWorkers for ChildSlices {
    fn render(
        &self,
        order: &SliceOrder,
        cancel: &CancelFlag,
        on_frames: &mut dyn FnMut(u64),
    ) -> Result<SliceDone, SliceFailure> {
        let failed = |message: String| SliceFailure::Failed { callers_fault: false, code: "worker".into(), message };
        let line = (self.line)(order).map_err(failed)?;
        let ended = run_child(&self.exe, &self.args, &line, cancel, |report| {
            if let Report::Progress { done, .. } = report {
                on_frames(done);
            }
        })
        .map_err(failed)?;
        match ended.last {
            Some(Report::Slice { done }) => Ok(done),
            Some(Report::Failed { failure }) => Err(SliceFailure::Failed {
                callers_fault: failure.cause() == pb::failure::Cause::BadInput,
                code: failure.code,
                message: failure.message,
            }),
            Some(Report::Cancelled) => Err(SliceFailure::Cancelled),
            _ if cancel.is_cancelled() => Err(SliceFailure::Cancelled),
            _ => Err(SliceFailure::Died(format!("the worker ended without a result: {}", describe(ended.status)))),
        }
    }
}

/// The child's side of a slice: renders it, reporting its frames, then the slice or why not.
pub(super) fn serve_slice(request: &RenderRequest, order: &SliceOrder, say: &Say) {
    let abort_at = std::env::var(ABORT_HOOK)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|index| *index == order.slice.index && order.attempt == 0)
        .map(|_| order.slice.frames() / 2);
    if abort_at.is_some() {
        tracing::warn!(slice = order.slice.index, "test hook {ABORT_HOOK}: this worker will abort halfway");
    }
    let result = render_slice(request, order, |p| {
        say(&Report::of(&p));
        if abort_at.is_some_and(|at| p.done >= at && p.done > 0) {
            std::process::abort();
        }
    });
    match result {
        Ok(done) => say(&Report::Slice { done }),
        Err(RenderError::Cancelled) => say(&Report::Cancelled),
        Err(err) => say(&Report::Failed { failure: failure(&err) }),
    }
}

/// A command's slice worker (`--slice-worker`): reads the slice order from stdin and renders
/// it with the request `request_for` rebuilds from the command line.
pub fn serve_command_slice(
    request_for: impl FnOnce(&SliceOrder) -> Result<RenderRequest, String>,
) -> Result<(), std::io::Error> {
    serve(|order: SliceOrder, cancel, say| match request_for(&order) {
        Ok(request) => serve_slice(&RenderRequest { cancel, ..request }, &order, &say),
        Err(message) => say(&Report::Failed {
            failure: crate::error::failure_of(crate::error::Fault::BadInput("invalid_argument"), message),
        }),
    })
}
