//! The composite video rendered in slices (see `slices`): the orchestrating render cuts the
//! call's frames on the keyframe grid, hands each slice to a worker (a child process), runs
//! the rest of the composite pass itself meanwhile (the mix, encoded once for the whole call,
//! the audio-only composites, re-encoded individual files), then joins the slices and the mix
//! into the composite MP4 without re-encoding. A slice whose worker dies is given to a worker
//! again; the job's composite progress is the sum of its slices'.
//!
//! A worker follows the call from its start without writing up to its first frame (decoding,
//! hearing levels, placing tiles; see `PassOutput::warm_from`), so its frames are the ones a
//! single render draws there.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use tracing::info_span;

use super::composite::slice_output;
use super::pass::{self, Entry, OutputResult};
use super::plan::RenderPlan;
use super::slices::{Parallel, Slice, SliceDone, SliceFailure, SliceOrder, cut};
use super::{CancelFlag, Progress, RenderError, RenderInput, RenderRequest, watched_render};
use crate::ingest::Recording;
use crate::media::Interrupt;
use crate::media::join::{Part, join_mp4};
use crate::timeline::CallTimeline;

/// A slice whose worker died is given to a worker this many more times.
const RETRIES: u32 = 2;

/// A composite video to be rendered in slices, and where its pieces are kept meanwhile.
pub(super) struct Sliced {
    parallel: Parallel,
    slices: Vec<Slice>,
    fps: u32,
    /// The slices' files and the mix, removed with it.
    dir: tempfile::TempDir,
    recording_dir: Option<PathBuf>,
}

/// The joined video's part of the composite's result.
pub(super) struct SlicedVideo {
    pub encoder: Option<String>,
    pub adapter: Option<String>,
    pub compose_cpu_s: f64,
}

enum Message {
    /// A slice's frames written so far.
    Frames { index: usize, done: u64 },
    /// The pass's own progress.
    Pass(Progress),
}

impl Sliced {
    /// The slices of the composite `request` asks for, when it asks for a video in parallel
    /// and the video is long enough to cut; `None`: one worker renders it.
    pub fn plan(plan: &RenderPlan, request: &RenderRequest) -> Result<Option<Sliced>, RenderError> {
        let Some(parallel) = request.parallel.clone() else { return Ok(None) };
        if parallel.workers <= 1 || request.outputs.composite_video.is_none() {
            return Ok(None);
        }
        let recording_dir = match &request.input {
            RenderInput::Archive(path) => Some(path.clone()),
            RenderInput::TrackFiles(_) => None,
            RenderInput::Live(_) => return Ok(None),
        };
        let encode = &request.encode;
        if encode.codec.webm() {
            return Err(RenderError::InvalidArgument {
                field: "parallelism",
                value: parallel.workers.to_string(),
                reason: format!("slices are joined into MP4; {} goes in WebM", encode.codec.codec_name()),
            });
        }
        let (first, end) = super::composite::frame_range((0.0, plan.timeline.duration_ms), encode.fps);
        let slices = cut(first, end, parallel.workers, encode.quality.keyframe_interval_frames);
        if slices.len() <= 1 {
            return Ok(None);
        }
        let dir = tempfile::Builder::new()
            .prefix("tessera-slices-")
            .tempdir_in(&request.work_dir)
            .or_else(|_| tempfile::Builder::new().prefix("tessera-slices-").tempdir())
            .map_err(super::files::io_error(&request.work_dir))?;
        Ok(Some(Sliced { parallel, slices, fps: encode.fps, dir, recording_dir }))
    }

    /// Where the pass writes the composite's mix (AAC in MP4), to be copied into the video.
    pub fn mix_path(&self) -> PathBuf {
        self.dir.path().join("mix.m4a")
    }

    fn slice_path(&self, slice: &Slice) -> PathBuf {
        self.dir.path().join(format!("slice-{:03}.mp4", slice.index))
    }

    /// Runs the pass over `entries` on this node while the workers render the slices, then
    /// joins the slices and the mix into `video`. Returns the pass's results and the video's.
    pub fn run(
        &self,
        plan: &RenderPlan,
        request: &RenderRequest,
        entries: Vec<Entry>,
        video: &Path,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<(Vec<Result<OutputResult, RenderError>>, SlicedVideo), RenderError> {
        // Stopped by the job's cancel, or by a failure of either side.
        let cancel = CancelFlag::default();
        let local = RenderRequest { cancel: cancel.clone(), ..request.clone() };
        let total: u64 = self.slices.iter().map(Slice::frames).sum();
        let mut done = vec![0_u64; self.slices.len()];
        let (tx, rx) = mpsc::channel::<Message>();
        let interrupt = Interrupt::current();
        let span = tracing::Span::current();
        let (pass_result, slices_result) = std::thread::scope(|scope| {
            let pass_tx = tx.clone();
            let (pass_cancel, pass_interrupt, pass_span, local) = (&cancel, interrupt.clone(), span.clone(), &local);
            let pass = scope.spawn(move || {
                let (_span, _entered) = (pass_span.enter(), pass_interrupt.enter());
                let result = pass::run(plan, local, entries, &mut |p| {
                    let _ = pass_tx.send(Message::Pass(p));
                });
                if result.is_err() {
                    pass_cancel.cancel();
                }
                result
            });
            let (slices_tx, slices_cancel) = (tx.clone(), &cancel);
            let slices = scope.spawn(move || {
                let _span = span.enter();
                self.render_slices([slices_cancel, &request.cancel], &slices_tx)
            });
            drop(tx);
            loop {
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(Message::Frames { index, done: frames }) => {
                        if let Some(d) = done.get_mut(index) {
                            *d = frames;
                        }
                        on_progress(self.progress(done.iter().sum(), total));
                    }
                    // The mix's walk over the call only shows the render moves.
                    Ok(Message::Pass(p)) if p.phase == "composite" => {
                        on_progress(self.progress(done.iter().sum(), total));
                    }
                    Ok(Message::Pass(p)) => on_progress(p),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
                if request.cancel.is_cancelled() {
                    local.cancel.cancel();
                }
            }
            (
                pass.join().unwrap_or_else(|_| Err(panicked("the composite pass"))),
                slices.join().unwrap_or_else(|_| Err(panicked("the slices"))),
            )
        });
        request.cancel.check()?;
        let (results, slices_done) = both(pass_result, slices_result)?;
        let parts: Vec<Part> = self
            .slices
            .iter()
            .map(|s| Part { path: self.slice_path(s), offset_ns: s.first_frame * 1_000_000_000 / u64::from(self.fps) })
            .collect();
        info_span!("join", slices = parts.len()).in_scope(|| join_mp4(&parts, Some(&self.mix_path()), video))?;
        let first = slices_done.first();
        Ok((
            results,
            SlicedVideo {
                encoder: first.and_then(|d| d.encoder.clone()),
                adapter: first.and_then(|d| d.adapter.clone()),
                compose_cpu_s: slices_done.iter().map(|d| d.compose_cpu_s).sum(),
            },
        ))
    }

    fn progress(&self, done: u64, total: u64) -> Progress {
        let ms = |frames: u64| CallTimeline::frame_time_ms(frames, self.fps);
        Progress { phase: "composite", done, total, media_done_ms: ms(done), media_total_ms: ms(total) }
    }

    /// Every slice rendered at once, each by a worker of its own; the first failure stops the
    /// others. `cancels`: the slices' own flag (which stops them), and the job's (which is
    /// passed on to the first within a tenth of a second; a worker that dies meanwhile, as the
    /// terminal's Ctrl-C ends it, is not tried again).
    fn render_slices(
        &self,
        cancels: [&CancelFlag; 2],
        tx: &mpsc::Sender<Message>,
    ) -> Result<Vec<SliceDone>, RenderError> {
        let results: Vec<Result<SliceDone, RenderError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .slices
                .iter()
                .map(|slice| {
                    let (tx, span) = (tx.clone(), tracing::Span::current());
                    scope.spawn(move || {
                        let _span = info_span!(parent: &span, "slice", index = slice.index).entered();
                        let result = self.render_one(*slice, cancels, &tx);
                        if result.is_err() {
                            cancels[0].cancel();
                        }
                        result
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(Err(RenderError::Cancelled))).collect()
        });
        // The failure that stopped the others, not their cancels.
        let mut done = Vec::with_capacity(results.len());
        let mut cancelled = None;
        for result in results {
            match result {
                Ok(d) => done.push(d),
                Err(RenderError::Cancelled) => cancelled = Some(RenderError::Cancelled),
                Err(err) => return Err(err),
            }
        }
        cancelled.map_or(Ok(done), Err)
    }

    /// One slice, given to a worker again when its worker dies.
    fn render_one(
        &self,
        slice: Slice,
        cancels: [&CancelFlag; 2],
        tx: &mpsc::Sender<Message>,
    ) -> Result<SliceDone, RenderError> {
        let cancel = cancels[0];
        let mut attempt = 0;
        loop {
            let order =
                SliceOrder { slice, path: self.slice_path(&slice), recording_dir: self.recording_dir.clone(), attempt };
            let mut on_frames = |done| {
                let _ = tx.send(Message::Frames { index: slice.index, done });
            };
            match self.parallel.slices.render(&order, cancel, &mut on_frames) {
                Ok(done) if done.frames == slice.frames() => return Ok(done),
                Ok(done) => {
                    return Err(slice_error(
                        &slice,
                        false,
                        "incomplete",
                        format!("the worker wrote {} of {} frames", done.frames, slice.frames()),
                    ));
                }
                Err(SliceFailure::Cancelled) => return Err(RenderError::Cancelled),
                Err(SliceFailure::Died(why)) if attempt < RETRIES && !cancels.iter().any(|c| c.is_cancelled()) => {
                    tracing::warn!(slice = slice.index, attempt, %why, "a slice's worker died: rendering it again");
                    on_frames(0);
                    attempt += 1;
                }
                Err(SliceFailure::Died(why)) => {
                    let tries = attempt + 1;
                    return Err(slice_error(&slice, false, "worker", format!("its worker died {tries} times: {why}")));
                }
                Err(SliceFailure::Failed { callers_fault, code, message }) => {
                    return Err(slice_error(&slice, callers_fault, &code, message));
                }
            }
        }
    }
}

fn panicked(what: &str) -> RenderError {
    RenderError::Media(crate::media::MediaError::Internal { what: what.into(), reason: "the thread panicked".into() })
}

/// Both results, or the failure that stopped the other side (not the cancel it caused there).
fn both<A, B>(a: Result<A, RenderError>, b: Result<B, RenderError>) -> Result<(A, B), RenderError> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(RenderError::Cancelled), Err(err)) | (Err(err), _) | (_, Err(err)) => Err(err),
    }
}

fn slice_error(slice: &Slice, callers_fault: bool, code: &str, message: String) -> RenderError {
    RenderError::Slice {
        index: slice.index,
        frames: (slice.first_frame, slice.end_frame),
        callers_fault,
        code: super::known_code(code),
        message,
    }
}

/// The worker's side: renders `order`'s slice of `request`'s composite video (no sound) into
/// `order.path`, following the call from its start (see the module's note).
pub fn render_slice(
    request: &RenderRequest,
    order: &SliceOrder,
    on_progress: impl FnMut(Progress),
) -> Result<SliceDone, RenderError> {
    watched_render(request, on_progress, |on_progress, _| {
        let input = match (&order.recording_dir, &request.input) {
            (Some(dir), _) => RenderInput::Archive(dir.clone()),
            (None, input) => input.clone(),
        };
        // The recording stays open (an archive extracted) while the slice renders.
        let (plan, _recording) = match &input {
            RenderInput::Archive(path) => {
                let recording = Recording::open_in(path, &request.work_dir)?;
                (RenderPlan::build_filtered(&recording, &request.filter)?, Some(recording))
            }
            RenderInput::TrackFiles(set) => (RenderPlan::from_track_files(set)?, None),
            RenderInput::Live(_) => {
                return Err(RenderError::InvalidArgument {
                    field: "parallelism",
                    value: "live".into(),
                    reason: "a live call is rendered as it happens, not in slices".into(),
                });
            }
        };
        plan.check_call_span(request.max_call_span_h)?;
        let mut encode = request.encode.clone();
        if let Some(codec) = request.outputs.composite_video {
            encode.codec = codec;
        }
        let request = &RenderRequest { encode, ..request.clone() };
        let output = slice_output(&plan, request, &order.path, order.slice)?;
        let entries = vec![Entry { output, isolated: false, reports_progress: true }];
        let result = info_span!("slice", index = order.slice.index, attempt = order.attempt)
            .in_scope(|| pass::run(&plan, request, entries, on_progress))?
            .into_iter()
            .next()
            .unwrap_or(Err(RenderError::Cancelled))?;
        Ok(SliceDone {
            frames: result.frames,
            encoder: result.encoder,
            adapter: result.adapter,
            compose_cpu_s: result.compose_cpu_s,
        })
    })
}
