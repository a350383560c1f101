//! The composite pass: one walk over the call clock that decodes every track once and feeds
//! every output encoded here: the composite video and its audio-only composites, and each
//! individual file re-encoded to another codec. Per output frame tick: each track's audio for
//! the tick's interval (and its level), each output's mix and, where it has video, its scene
//! composed on the GPU.

use super::composite::{ScenePlacer, on_stage};
use super::levels::LevelSource;
use super::pass_output::{PassOutput, VideoOut, tick_samples};
use super::plan::RenderPlan;
use super::source::{AudioFeed, VideoFeed, audio_source, video_source};
use super::{Progress, RenderError, RenderRequest};
use crate::ingest::TrackKind;
use crate::media::decode::AUDIO_CHANNELS;
use crate::timeline::CallTimeline;

/// What an output of the pass wrote.
#[derive(Debug, Clone)]
pub struct OutputResult {
    /// Call time of the first frame: where the file's t=0 lies on the call clock.
    pub offset_ms: f64,
    pub frames: u64,
    pub duration_ms: f64,
    /// The video encoder element, when a video was written.
    pub encoder: Option<String>,
    pub adapter: Option<String>,
    /// CPU seconds of the composing thread spent composing its frames.
    pub compose_cpu_s: f64,
}

/// An output and how its failure counts.
pub struct Entry {
    pub output: PassOutput,
    /// Its failure ends only this output (an individual file), not the pass.
    pub isolated: bool,
    /// Its frames are the pass's progress (the composite).
    pub reports_progress: bool,
}

/// Picture size of a re-encoded individual file in which no picture could be decoded.
pub(super) const FALLBACK_SIZE: (u32, u32) = (1280, 720);

/// Runs the pass over the union of the outputs' frames; returns each output's result in order.
/// A failure of an output that is not isolated fails the pass.
pub fn run(
    plan: &RenderPlan,
    request: &RenderRequest,
    entries: Vec<Entry>,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Result<OutputResult, RenderError>>, RenderError> {
    let fps = request.encode.fps;
    let Some(first) = entries.iter().map(|e| e.output.first_frame.min(e.output.warm_from)).min() else {
        return Ok(Vec::new());
    };
    let end = entries.iter().map(|e| e.output.end_frame).max().unwrap_or(first);
    let tracks = plan.tracks.len();
    let (mut wants_video, mut wants_audio) = (vec![false; tracks], vec![false; tracks]);
    for entry in &entries {
        let output = &entry.output;
        if !matches!(output.video, VideoOut::None) {
            for &t in output.visuals.iter().flat_map(|v| &v.video_tracks) {
                wants_video[t] = true;
            }
        }
        for &t in &output.audio_tracks {
            wants_audio[t] = true;
        }
    }
    let mut video: Vec<Option<VideoFeed>> = plan
        .tracks
        .iter()
        .enumerate()
        .map(|(i, t)| (wants_video[i] && t.kind == TrackKind::Video).then(|| VideoFeed::new(video_source(t))))
        .collect();
    let mut audio: Vec<Option<AudioFeed>> = plan
        .tracks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            (wants_audio[i] && t.kind == TrackKind::Audio).then(|| AudioFeed::new(audio_source(t), AUDIO_CHANNELS))
        })
        .collect();
    // Audio before the first frame is dropped (no output plays there).
    let (start_sample, _) = tick_samples(first, fps);
    for feed in audio.iter_mut().flatten() {
        feed.skip_to(start_sample)?;
    }
    let level_sources: Vec<Option<LevelSource>> = plan
        .tracks
        .iter()
        .zip(&audio)
        .map(|(track, feed)| feed.as_ref().map(|_| LevelSource::for_track(track)))
        .collect();
    let mut track_pcm: Vec<Vec<f32>> = vec![Vec::new(); tracks];
    let mut levels = vec![0.0_f32; tracks];
    let mut slots: Vec<Option<Entry>> = entries.into_iter().map(Some).collect();
    let mut results: Vec<Option<Result<OutputResult, RenderError>>> = (0..slots.len()).map(|_| None).collect();
    let mut pcm = Vec::new();
    let mut nv12 = Vec::new();
    for n in first..end {
        request.cancel.check()?;
        let (from, until) = tick_samples(n, fps);
        for (index, feed) in audio.iter_mut().enumerate() {
            let Some(feed) = feed else { continue };
            feed.take_until(until, &mut track_pcm[index])?;
            if let Some(Some(source)) = level_sources.get(index) {
                levels[index] = source.level((from, until), &track_pcm[index]);
            }
        }
        let tick = Tick { t_ms: CallTimeline::frame_time_ms(n, fps), samples: (until - from) as usize };
        for (slot, result) in slots.iter_mut().zip(&mut results) {
            let Some(entry) = slot.as_mut() else { continue };
            let mut placer = ScenePlacer { video: &mut video, levels: &levels, nv12: &mut nv12 };
            if entry.output.rehearses(n) {
                rehearse_tick(&mut entry.output, tick.t_ms, &mut placer)?;
                if entry.reports_progress && n % u64::from(fps) == 0 {
                    // Nothing written yet, but the render moves (the watchdog hears it).
                    on_progress(progress(&entry.output, entry.output.first_frame, fps));
                }
                continue;
            }
            if !entry.output.covers(n) {
                continue;
            }
            match output_tick(&mut entry.output, &tick, &track_pcm, &mut pcm, &mut placer) {
                Ok(()) => {}
                Err(err) if entry.isolated => {
                    tracing::error!(%err, "an individual file failed; the others go on");
                    *result = Some(Err(err));
                    *slot = None;
                    continue;
                }
                Err(err) => return Err(err),
            }
            if entry.reports_progress {
                on_progress(progress(&entry.output, n + 1, fps));
            }
        }
    }
    for (slot, result) in slots.into_iter().zip(&mut results) {
        let Some(entry) = slot else { continue };
        let frames = entry.output.frames();
        let offset_ms = CallTimeline::frame_time_ms(entry.output.first_frame, fps);
        let compose_cpu_s = entry.output.compose_cpu_s;
        let finished = entry.output.finish(FALLBACK_SIZE);
        match finished {
            Ok((encoder, adapter)) => {
                let duration_ms = frames as f64 * 1000.0 / f64::from(fps);
                *result = Some(Ok(OutputResult { offset_ms, frames, duration_ms, encoder, adapter, compose_cpu_s }));
            }
            Err(err) if entry.isolated => *result = Some(Err(err)),
            Err(err) => return Err(err),
        }
    }
    Ok(results.into_iter().map(|r| r.unwrap_or(Err(RenderError::Cancelled))).collect())
}

/// The composite's progress once frames before `end` are written.
fn progress(output: &PassOutput, end: u64, fps: u32) -> Progress {
    let written_ms = CallTimeline::frame_time_ms(end, fps) - CallTimeline::frame_time_ms(output.first_frame, fps);
    let (from_ms, to_ms) = output.window_ms;
    Progress {
        phase: "composite",
        done: end - output.first_frame,
        total: output.frames(),
        media_done_ms: written_ms,
        media_total_ms: to_ms - from_ms,
    }
}

/// A tick an output follows without writing: the scene advances as it would for a frame.
fn rehearse_tick(output: &mut PassOutput, t_ms: f64, placer: &mut ScenePlacer<'_>) -> Result<(), RenderError> {
    let shown = on_stage(&output.visuals, t_ms, placer.video)?;
    if let VideoOut::Running(running) = &output.video {
        let (width, height) = running.compositor.output_size();
        placer.rehearse(&output.visuals, &mut output.stage, t_ms, &shown, (width, height));
    }
    Ok(())
}

/// One output frame tick of the pass.
pub(super) struct Tick {
    pub t_ms: f64,
    /// Sample frames in the tick's interval.
    pub samples: usize,
}

/// Feeds one output for one tick: its mix, and its picture where it has video.
pub(super) fn output_tick(
    output: &mut PassOutput,
    tick: &Tick,
    track_pcm: &[Vec<f32>],
    pcm: &mut Vec<f32>,
    placer: &mut ScenePlacer<'_>,
) -> Result<(), RenderError> {
    pcm.clear();
    pcm.resize(tick.samples * AUDIO_CHANNELS, 0.0);
    for &track in &output.audio_tracks {
        for (sum, sample) in pcm.iter_mut().zip(&track_pcm[track]) {
            *sum += *sample;
        }
    }
    output.limiter.process(pcm);
    let shown = on_stage(&output.visuals, tick.t_ms, placer.video)?;
    if let VideoOut::Waiting(_) = output.video {
        match shown.iter().find_map(|s| placer.picture_size(s)) {
            Some(size) => output.start_video(size)?,
            None => output.wait(pcm)?,
        }
    }
    if let VideoOut::Running(running) = &mut output.video {
        let (draws, background) = placer.draws(&output.visuals, &mut output.stage, tick.t_ms, &shown, running)?;
        if placer.nv12.is_empty() {
            *placer.nv12 = running.encoder.frame_buffer();
        }
        let started_ns = thread_cpu_ns();
        running.compositor.compose(&draws, background, placer.nv12)?;
        output.compose_cpu_s += thread_cpu_ns().saturating_sub(started_ns) as f64 / 1e9;
        let encoder = &mut running.encoder;
        encoder.push_video(std::mem::take(placer.nv12))?;
        encoder.push_audio(pcm)?;
    }
    for sink in &mut output.audio_files {
        sink.push_audio(pcm)?;
    }
    Ok(())
}

/// CPU time of the calling thread in nanoseconds (the first field of
/// /proc/thread-self/schedstat), or 0 where that cannot be read. Composition runs on this
/// thread: wall time would count the encoder's threads that preempt it on a busy node.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
