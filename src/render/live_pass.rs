//! The live pass: the composite of a live call, made as the call happens. Tick by tick at the
//! output's frame rate, at wall time t + latency, it takes the tracks that joined, each
//! track's pictures captured by t and samples up to t, and feeds the same composite output as
//! the recorded pass (layouts, labels, the mix, the encoders). A track that sent nothing new
//! keeps its last picture for `hold_ms`, then shows its placeholder: a late or stalled sender
//! never holds the pass up. Paused ticks take and drop what arrives (the files have a cut);
//! a stop composes up to the stop, then the files end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::composite::{ScenePlacer, composite_output};
use super::files::{self, planned_composites};
use super::live::{Joined, JoinedMedia, LiveCall, LiveSettings, LiveState, LiveTrackInfo, StopReason};
use super::live_files::LiveFiles;
use super::manifest::{MANIFEST_FILE_NAME, Manifest};
use super::pass::{Tick, output_tick};
use super::pass_output::{PassOutput, VideoOut, tick_samples};
use super::plan::{RenderPlan, TrackPlan, Visual};
use super::source::{AudioFeed, VideoFeed};
use super::{FileReady, Progress, RenderError, RenderRequest, RenderSummary};
use crate::audio::level;
use crate::ingest::TrackKind;
use crate::media::decode::AUDIO_CHANNELS;
use crate::timeline::{CallTimeline, ParticipantSpan, SegmentSpan, TrackSpan};

/// The pass sleeps at most this long at a time, so a stop or cancel is seen promptly.
const POLL: Duration = Duration::from_millis(20);

/// A track of the live call, as the pass knows it.
struct LiveTrack {
    info: LiveTrackInfo,
    /// Set once its sender is gone and everything it sent was taken.
    ended: Arc<AtomicBool>,
    /// Call time it joined, and of the last tick it was still sending.
    joined_ms: f64,
    last_ms: f64,
}

/// Everything the pass has learned of the call so far.
struct Room {
    tracks: Vec<LiveTrack>,
    video: Vec<Option<VideoFeed>>,
    audio: Vec<Option<AudioFeed>>,
    pcm: Vec<Vec<f32>>,
    levels: Vec<f32>,
}

impl Room {
    /// Takes in the tracks that joined by tick `t_ms`: a feed each, and its place in the
    /// output's visuals (one per participant session camera, one per screenshare) from the
    /// call time it joined.
    fn admit(
        &mut self,
        joined: Vec<Joined>,
        (t_ms, composed): (f64, u64),
        output: &mut PassOutput,
        files: &mut LiveFiles,
        request: &RenderRequest,
    ) {
        for Joined { info, joined_ms, media } in joined {
            let index = self.tracks.len();
            // On stage from when it joined (the pass runs the latency behind the senders).
            let joined_ms = joined_ms.max(t_ms);
            let ended = match media {
                JoinedMedia::Video(source) => {
                    let ended = source.ended_flag();
                    self.video.push(Some(VideoFeed::new(Box::new(source))));
                    self.audio.push(None);
                    ended
                }
                JoinedMedia::Audio(source) => {
                    let ended = source.ended_flag();
                    self.video.push(None);
                    self.audio.push(Some(AudioFeed::new(Box::new(source), AUDIO_CHANNELS)));
                    if !info.screenshare || !request.outputs.mix_without_screenshare_audio {
                        output.audio_tracks.push(index);
                    }
                    ended
                }
            };
            self.pcm.push(Vec::new());
            self.levels.push(0.0);
            let visual = find_or_add_visual(output, &info, joined_ms);
            match info.kind {
                TrackKind::Video => output.visuals[visual].video_tracks.push(index),
                TrackKind::Audio => output.visuals[visual].audio_tracks.push(index),
            }
            if !info.display_name.is_empty() {
                output.stage.introduce(&info.participant_id, &info.display_name);
            }
            files.admit(index, &info, joined_ms, composed);
            tracing::info!(participant = %info.participant_id, track = %info.track_id, kind = %info.kind.as_str(), at_ms = joined_ms, "track joined");
            self.tracks.push(LiveTrack { info, ended, joined_ms, last_ms: joined_ms });
        }
    }

    /// Takes every audio track's samples up to sample frame `until` and measures them; notes
    /// which tracks are still sending.
    fn listen(&mut self, until: u64, t_ms: f64) -> Result<(), RenderError> {
        for (index, feed) in self.audio.iter_mut().enumerate() {
            let Some(feed) = feed else { continue };
            feed.take_until(until, &mut self.pcm[index])?;
            self.levels[index] = level::rms(&self.pcm[index]);
        }
        for track in &mut self.tracks {
            if !track.ended.load(Ordering::Relaxed) {
                track.last_ms = t_ms;
            }
        }
        Ok(())
    }

    fn ended(&self, track: usize) -> bool {
        self.tracks.get(track).is_some_and(|t| t.ended.load(Ordering::Relaxed))
    }

    /// Visuals whose tracks have all ended leave the stage at `t_ms`; individual files whose
    /// tracks have all ended are finished.
    fn retire(&self, output: &mut PassOutput, files: &mut LiveFiles, t_ms: f64) {
        files.retire(|track| self.ended(track));
        for visual in &mut output.visuals {
            if visual.span.end_ms.is_finite() {
                continue;
            }
            let all_ended = visual.video_tracks.iter().chain(&visual.audio_tracks).all(|&t| self.ended(t));
            if all_ended {
                visual.span.end_ms = t_ms;
            }
        }
    }

    /// The tracks as a plan (for the manifest): each spans from its joining to its last tick.
    fn plan(&self, call: &LiveCall, visuals: Vec<Visual>, duration_ms: f64) -> RenderPlan {
        let tracks: Vec<TrackPlan> = self
            .tracks
            .iter()
            .map(|t| TrackPlan {
                participant_id: t.info.participant_id.clone(),
                user_session_id: t.info.user_session_id.clone(),
                track_id: t.info.track_id.clone(),
                kind: t.info.kind,
                screenshare: t.info.screenshare,
                segments: Vec::new(),
                file: None,
                span: TrackSpan { segments: vec![SegmentSpan { start_ms: t.joined_ms, end_ms: t.last_ms }] },
            })
            .collect();
        let mut participants: Vec<&str> = tracks.iter().map(|t| t.participant_id.as_str()).collect();
        participants.sort_unstable();
        participants.dedup();
        RenderPlan {
            call: call.call().clone(),
            participant_count: participants.len(),
            tracks,
            visuals,
            timeline: CallTimeline { duration_ms },
        }
    }
}

fn find_or_add_visual(output: &mut PassOutput, info: &LiveTrackInfo, t_ms: f64) -> usize {
    let same = |v: &Visual| {
        v.participant_id == info.participant_id
            && v.user_session_id == info.user_session_id
            && v.screenshare == info.screenshare
            && !v.span.end_ms.is_finite()
    };
    if let Some(index) = output.visuals.iter().position(same) {
        return index;
    }
    output.visuals.push(Visual {
        participant_id: info.participant_id.clone(),
        user_session_id: info.user_session_id.clone(),
        screenshare: info.screenshare,
        span: ParticipantSpan { start_ms: t_ms, end_ms: f64::INFINITY },
        video_tracks: Vec::new(),
        audio_tracks: Vec::new(),
    });
    if let VideoOut::Running(running) = &mut output.video {
        running.uploaded.push(None);
    }
    output.visuals.len() - 1
}

/// Renders the live call `call` into the composites `request` asks for, until it stops (by
/// a call to [`LiveCall::stop`], when nobody has sent for its idle timeout, or at its maximum
/// duration), then writes the manifest. Fails when cancelled.
pub fn render_live(
    call: &Arc<LiveCall>,
    request: &RenderRequest,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<RenderSummary, RenderError> {
    let started = Instant::now();
    let result = compose_live(call, request, on_progress, started);
    let reason = match &result {
        Ok((_, reason, _)) => *reason,
        // A cancel is a call too (CancelRenderJob, or the node shutting down).
        Err(RenderError::Cancelled) => StopReason::ApiCall,
        Err(_) => StopReason::InternalError,
    };
    call.end(reason);
    let (summary, _, failed) = result?;
    if !failed.is_empty() {
        return Err(RenderError::Incomplete { written: summary.outputs.len(), failed });
    }
    Ok(summary)
}

fn compose_live(
    call: &Arc<LiveCall>,
    request: &RenderRequest,
    on_progress: &mut dyn FnMut(Progress),
    started: Instant,
) -> Result<(RenderSummary, StopReason, Vec<String>), RenderError> {
    let dir = &request.output_dir;
    std::fs::create_dir_all(dir).map_err(files::io_error(dir))?;
    let skeleton = RenderPlan {
        call: call.call().clone(),
        tracks: Vec::new(),
        visuals: Vec::new(),
        timeline: CallTimeline { duration_ms: 0.0 },
        participant_count: 0,
    };
    let (video, audio) = planned_composites(&skeleton, request)?;
    let targets: Vec<_> = audio.iter().map(|(format, planned)| (*format, planned.partial.path())).collect();
    let mut output = composite_output(&skeleton, request, video.as_ref().map(|v| (v.partial.path(), true)), &targets)?;
    (output.first_frame, output.end_frame, output.window_ms) = (0, u64::MAX, (0.0, f64::INFINITY));
    // The encoders run: the call's clock starts now (and the job says so: phase `live`).
    call.start();
    on_progress(Progress { phase: "live", done: 0, total: 0, media_done_ms: 0.0, media_total_ms: 0.0 });

    let settings = call.settings().clone();
    let fps = request.encode.fps;
    let mut room =
        Room { tracks: Vec::new(), video: Vec::new(), audio: Vec::new(), pcm: Vec::new(), levels: Vec::new() };
    let (mut frames, mut mixed, mut nv12) = (0_u64, Vec::new(), Vec::new());
    let mut singles = LiveFiles::new(call.call(), request);
    let mut stop: Option<(StopReason, f64)> = None;
    for k in 0_u64.. {
        let t_ms = CallTimeline::frame_time_ms(k, fps);
        if stop.is_some_and(|(_, at_ms)| t_ms >= at_ms) {
            break;
        }
        // Wait for the tick's moment (a stopped call composes what it has at once).
        loop {
            request.cancel.check()?;
            let state = call.state();
            if let LiveState::Stopping { reason, at_ms } = state {
                stop.get_or_insert((reason, at_ms));
            }
            let due_ms = t_ms + settings.latency_ms as f64;
            let now_ms = call.now_ms();
            if stop.is_some() || now_ms >= due_ms {
                break;
            }
            std::thread::sleep(POLL.min(Duration::from_secs_f64((due_ms - now_ms) / 1000.0)));
        }
        if stop.is_some_and(|(_, at_ms)| t_ms >= at_ms) {
            break;
        }
        room.admit(call.take_joined(), (t_ms, frames), &mut output, &mut singles, request);
        let samples = tick_samples(k, fps);
        room.listen(samples.1, t_ms)?;
        room.retire(&mut output, &mut singles, t_ms);
        let tick = Tick { t_ms, samples: (samples.1 - samples.0) as usize };
        let mut placer = ScenePlacer { video: &mut room.video, levels: &room.levels, nv12: &mut nv12 };
        if call.paused_at(t_ms) {
            // Pictures are taken and dropped like the samples: nothing of the pause is kept.
            super::composite::on_stage(&output.visuals, t_ms, placer.video)?;
        } else {
            output_tick(&mut output, &tick, &room.pcm, &mut mixed, &mut placer)?;
            singles.tick(k, &tick, &room.pcm, &mut mixed, &mut placer);
            frames += 1;
        }
        on_progress(Progress {
            phase: "live",
            done: frames,
            total: 0,
            media_done_ms: frames as f64 * 1000.0 / f64::from(fps),
            media_total_ms: 0.0,
        });
        if stop.is_none()
            && let Some(reason) = self_stop(call, &settings, t_ms)
        {
            // The tick just composed is the last.
            let _ = call.stop(reason);
            stop = Some((reason, t_ms));
        }
    }
    let reason = stop.map_or(StopReason::ApiCall, |(reason, _)| reason);
    let end_ms = CallTimeline::frame_time_ms(frames, fps);
    let compose_cpu_s = output.compose_cpu_s;
    let visuals = output.visuals.clone();
    let (encoder, adapter) = output.finish((request.encode.width, request.encode.height))?;
    let result = super::pass::OutputResult {
        offset_ms: 0.0,
        frames,
        duration_ms: end_ms,
        encoder: encoder.clone(),
        adapter: adapter.clone(),
        compose_cpu_s,
    };
    let mut outputs = Vec::new();
    for entry in files::commit_composites(request, video, audio, &result)? {
        FileReady::notify(request, &entry);
        outputs.push(entry);
    }
    let (individual, failed) = singles.end();
    outputs.extend(individual);
    let plan = room.plan(call, visuals, end_ms);
    Manifest::new(&plan, outputs.clone()).write(dir).map_err(files::io_error(&dir.join(MANIFEST_FILE_NAME)))?;
    tracing::info!(frames, ?reason, "live call ended");
    let summary = RenderSummary {
        output_dir: dir.clone(),
        outputs,
        duration_ms: end_ms,
        participants: plan.participant_count,
        frames,
        elapsed_s: started.elapsed().as_secs_f64(),
        encoder,
        adapter,
        compose_cpu_s,
    };
    Ok((summary, reason, failed))
}

/// Whether the call stops by itself after the tick at `t_ms`: at its maximum duration, or
/// when nobody has sent anything for its idle timeout.
fn self_stop(call: &LiveCall, settings: &LiveSettings, t_ms: f64) -> Option<StopReason> {
    let frame_after = |limit_ms: u64| t_ms + 1e-6 >= limit_ms as f64;
    if settings.max_duration_ms.is_some_and(frame_after) {
        return Some(StopReason::MaxDuration);
    }
    let idle_ms = call.idle_since_ms().map(|since| call.now_ms() - since);
    match (settings.idle_timeout_ms, idle_ms) {
        (Some(timeout), Some(idle)) if idle >= timeout as f64 => Some(StopReason::AllPeersLeft),
        _ => None,
    }
}
