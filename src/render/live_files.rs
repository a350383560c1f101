//! Individual files of a live call, encoded from the pushed pictures and PCM by the live pass
//! as the recorded pass encodes a re-encoded file: one tile at the sender's picture size, the
//! session's own audio. For each kind asked for, a file opens when the first track of a
//! participant session of that kind joins, takes the session's other medium when it joins,
//! and is finished, committed and announced as soon as all its tracks have left: the files of a
//! participant who left are ready while the call goes on. With `align_to_call` a file starts
//! at the call's start (black and silence before the session joined) and runs to its end.
//! A session that leaves and comes back gets a second file (`_2`), as a republished track does
//! in a recording. A file that fails is reported; the call and the other files go on.

use std::collections::HashMap;
use std::thread::JoinHandle;

use super::FileReady;
use super::composite::ScenePlacer;
use super::files::{Planned, commit_individual};
use super::live::LiveTrackInfo;
use super::manifest::OutputEntry;
use super::pass::{FALLBACK_SIZE, OutputResult, Tick, output_tick};
use super::pass_output::{PassOutput, tick_samples};
use super::plan::Visual;
use super::transcode::{self, Single, Transcode};
use super::{RenderError, RenderRequest};
use crate::ingest::{CallInfo, TrackKind};
use crate::media::decode::AUDIO_CHANNELS;
use crate::outputs::individual::IndividualFile;
use crate::outputs::{AudioFormat, IndividualKind, naming};
use crate::timeline::{CallTimeline, ParticipantSpan};

/// An individual file being encoded.
struct OpenFile {
    file: IndividualFile,
    how: Transcode,
    planned: Planned,
    output: PassOutput,
    /// Its tracks' ids and kinds, in the file's order (audio first).
    streams: Vec<(String, TrackKind)>,
    /// Frames composed into it.
    frames: u64,
}

impl OpenFile {
    fn has(&self, kind: TrackKind) -> bool {
        self.streams.iter().any(|(_, k)| *k == kind)
    }

    /// What the file is, in a failure's description.
    fn what(&self) -> String {
        format!("{} of {} / {}", self.file.kind, self.file.participant_id, self.file.user_session_id)
    }
}

/// A file being finished on a thread of its own.
struct Finishing {
    /// The file's place in the manifest: kind as asked, participant, session, n.
    order: (usize, String, String, usize),
    what: String,
    thread: JoinHandle<Result<OutputEntry, RenderError>>,
}

/// The individual files of a live call.
pub(super) struct LiveFiles {
    call: CallInfo,
    /// The kinds asked for, duplicates removed.
    kinds: Vec<IndividualKind>,
    video: Transcode,
    audio: Transcode,
    align_to_call: bool,
    request: RenderRequest,
    open: Vec<OpenFile>,
    /// Files opened so far per session and kind (the next one's `n`).
    opened: HashMap<(String, String, IndividualKind), usize>,
    finishing: Vec<Finishing>,
    failed: Vec<String>,
}

impl LiveFiles {
    /// Files in the sender's codec cannot be made from decoded pictures: video is encoded in
    /// the job's individual codec (else the composite's), audio alone in its individual format
    /// (else Opus in Matroska, as a recording's remuxed audio).
    pub fn new(call: &CallInfo, request: &RenderRequest) -> LiveFiles {
        let wanted = &request.outputs;
        let mut kinds = Vec::new();
        for &kind in &wanted.individual {
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        LiveFiles {
            call: call.clone(),
            kinds,
            video: Transcode::Video(wanted.individual_video_codec.unwrap_or(request.encode.codec)),
            audio: Transcode::Audio(wanted.individual_audio_format.unwrap_or(AudioFormat::Mkv)),
            align_to_call: wanted.align_to_call,
            request: request.clone(),
            open: Vec::new(),
            opened: HashMap::new(),
            finishing: Vec::new(),
            failed: Vec::new(),
        }
    }

    /// Track `index` joined, on stage from call time `joined_ms`; `composed` frames of the
    /// call are in the files so far. It goes into its session's open file of each kind that
    /// takes it, or opens one.
    pub fn admit(&mut self, index: usize, info: &LiveTrackInfo, joined_ms: f64, composed: u64) {
        let fps = self.request.encode.fps;
        for kind in self.kinds.clone() {
            let medium = if info.kind == TrackKind::Audio { kind.wants_audio() } else { kind.wants_video() };
            if !medium || kind.screenshare() != info.screenshare {
                continue;
            }
            let same = |f: &OpenFile| {
                f.file.kind == kind
                    && f.file.participant_id == info.participant_id
                    && f.file.user_session_id == info.user_session_id
                    && !f.has(info.kind)
            };
            if let Some(open) = self.open.iter_mut().find(|f| same(f)) {
                join(open, index, info);
                continue;
            }
            match self.open_file(kind, info, joined_ms, composed, fps) {
                Ok(mut open) => {
                    join(&mut open, index, info);
                    self.open.push(open);
                }
                Err(err) => {
                    let what = format!("{kind} of {} / {}", info.participant_id, info.user_session_id);
                    tracing::error!(%err, "{what} failed");
                    self.failed.push(format!("{what}: {err}"));
                }
            }
        }
    }

    fn open_file(
        &mut self,
        kind: IndividualKind,
        info: &LiveTrackInfo,
        joined_ms: f64,
        composed: u64,
        fps: u32,
    ) -> Result<OpenFile, RenderError> {
        let key = (info.participant_id.clone(), info.user_session_id.clone(), kind);
        let n = *self.opened.entry(key).and_modify(|n| *n += 1).or_insert(1);
        let how = if kind.wants_video() { self.video } else { self.audio };
        let name =
            naming::individual(&self.call, &info.participant_id, &info.user_session_id, kind, n, how.extension());
        let planned = Planned::new(self.request.output_dir.join(name))?;
        // From the frame of the pass's grid the joining falls in.
        let first_frame = (joined_ms * f64::from(fps) / 1000.0 + 1e-6).floor().max(0.0) as u64;
        let start_ms = CallTimeline::frame_time_ms(first_frame, fps);
        let visual = Visual {
            participant_id: info.participant_id.clone(),
            user_session_id: info.user_session_id.clone(),
            screenshare: info.screenshare,
            span: ParticipantSpan { start_ms, end_ms: f64::INFINITY },
            video_tracks: Vec::new(),
            audio_tracks: Vec::new(),
        };
        let single = Single {
            frames: (first_frame, u64::MAX),
            window_ms: (start_ms, f64::INFINITY),
            visuals: vec![visual],
            audio_tracks: Vec::new(),
        };
        let output =
            transcode::single_output(single, &self.request.encode, how, kind.wants_audio(), planned.partial.path())?;
        let file = IndividualFile {
            kind,
            participant_id: info.participant_id.clone(),
            user_session_id: info.user_session_id.clone(),
            tracks: Vec::new(),
            n,
        };
        let mut open = OpenFile { file, how, planned, output, streams: Vec::new(), frames: 0 };
        if self.align_to_call {
            // From the call's start: the frames composed before it joined are black and silent.
            open.output.first_frame = 0;
            open.output.window_ms.0 = 0.0;
            prefill(&mut open, composed, fps)?;
        }
        Ok(open)
    }

    /// Feeds every open file for grid frame `n` (a tick that was not paused).
    pub fn tick(
        &mut self,
        n: u64,
        tick: &Tick,
        track_pcm: &[Vec<f32>],
        mixed: &mut Vec<f32>,
        placer: &mut ScenePlacer<'_>,
    ) {
        let mut index = 0;
        while index < self.open.len() {
            let open = &mut self.open[index];
            if n < open.output.first_frame {
                index += 1;
                continue;
            }
            match output_tick(&mut open.output, tick, track_pcm, mixed, placer) {
                Ok(()) => {
                    open.frames += 1;
                    index += 1;
                }
                Err(err) => {
                    let open = self.open.swap_remove(index);
                    tracing::error!(%err, "{} failed; the call and the other files go on", open.what());
                    self.failed.push(format!("{}: {err}", open.what()));
                }
            }
        }
    }

    /// Finishes the files whose tracks have all ended (`ended(track)`), each on a thread of its
    /// own so that the call goes on meanwhile. With `align_to_call` they run to the call's end.
    pub fn retire(&mut self, ended: impl Fn(usize) -> bool) {
        if self.align_to_call {
            return;
        }
        let mut index = 0;
        while index < self.open.len() {
            let open = &self.open[index];
            if !open.file.tracks.is_empty() && open.file.tracks.iter().all(|&t| ended(t)) {
                let open = self.open.swap_remove(index);
                self.finish(open);
            } else {
                index += 1;
            }
        }
    }

    fn finish(&mut self, open: OpenFile) {
        let kind_order = self.kinds.iter().position(|&k| k == open.file.kind).unwrap_or(usize::MAX);
        let order = (kind_order, open.file.participant_id.clone(), open.file.user_session_id.clone(), open.file.n);
        let what = open.what();
        let on_file = self.request.on_file.clone();
        let fps = self.request.encode.fps;
        let spawned = std::thread::Builder::new()
            .name("tessera-live-file".into())
            .spawn(move || finish_file(open, fps, on_file.as_ref()));
        match spawned {
            Ok(thread) => self.finishing.push(Finishing { order, what, thread }),
            Err(err) => self.failed.push(format!("{what}: cannot start a thread to finish it: {err}")),
        }
    }

    /// Finishes every file still open (the call ended) and waits for all of them. Returns the
    /// committed files in manifest order (kind as asked, participant, session, n), and the
    /// failed ones with their reasons.
    pub fn end(mut self) -> (Vec<OutputEntry>, Vec<String>) {
        for open in std::mem::take(&mut self.open) {
            self.finish(open);
        }
        let mut finished = Vec::new();
        let mut failed = std::mem::take(&mut self.failed);
        for Finishing { order, what, thread } in std::mem::take(&mut self.finishing) {
            match thread.join() {
                Ok(Ok(entry)) => finished.push((order, entry)),
                Ok(Err(err)) => {
                    tracing::error!(%err, "{what} failed");
                    failed.push(format!("{what}: {err}"));
                }
                Err(_) => failed.push(format!("{what}: the thread finishing it panicked")),
            }
        }
        finished.sort_by(|a, b| a.0.cmp(&b.0));
        (finished.into_iter().map(|(_, entry)| entry).collect(), failed)
    }
}

impl Drop for LiveFiles {
    /// A call that ends in an error or a cancel still waits for the files being finished, so
    /// that none is committed after the render returned.
    fn drop(&mut self) {
        for finishing in self.finishing.drain(..) {
            let _ = finishing.thread.join();
        }
    }
}

/// Adds track `index` to a file: its audio is the file's sound, its video the file's picture.
fn join(open: &mut OpenFile, index: usize, info: &LiveTrackInfo) {
    let visual = &mut open.output.visuals[0];
    match info.kind {
        TrackKind::Audio => {
            visual.audio_tracks.push(index);
            open.output.audio_tracks.push(index);
            open.file.tracks.insert(0, index);
            open.streams.insert(0, (info.track_id.clone(), info.kind));
        }
        TrackKind::Video => {
            visual.video_tracks.push(index);
            open.file.tracks.push(index);
            open.streams.push((info.track_id.clone(), info.kind));
        }
    }
}

/// `frames` black, silent frames at the start of a file aligned to the call.
fn prefill(open: &mut OpenFile, frames: u64, fps: u32) -> Result<(), RenderError> {
    let mut silence = Vec::new();
    for n in 0..frames {
        let (from, until) = tick_samples(n, fps);
        silence.clear();
        silence.resize(usize::try_from(until - from).unwrap_or(0) * AUDIO_CHANNELS, 0.0);
        open.output.wait(&silence)?;
        for sink in &mut open.output.audio_files {
            sink.push_audio(&silence)?;
        }
        open.frames += 1;
    }
    Ok(())
}

/// Ends a file's encoders, commits it under its final name and announces it.
fn finish_file(open: OpenFile, fps: u32, on_file: Option<&FileReady>) -> Result<OutputEntry, RenderError> {
    let OpenFile { file, how, planned, output, streams, frames } = open;
    let offset_ms = output.window_ms.0;
    let compose_cpu_s = output.compose_cpu_s;
    let (encoder, adapter) = output.finish(FALLBACK_SIZE)?;
    let duration_ms = frames as f64 * 1000.0 / f64::from(fps);
    let result = OutputResult { offset_ms, frames, duration_ms, encoder, adapter, compose_cpu_s };
    let written = transcode::written(streams.iter().map(|(id, kind)| (id.as_str(), *kind)), how, result);
    let entry = commit_individual(&file, planned, written, false)?;
    if let Some(ready) = on_file {
        (ready.0)(&entry);
    }
    tracing::info!(file = %entry.file, duration_ms, "individual file of the live call ready");
    Ok(entry)
}
