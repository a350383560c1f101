//! Writing one individual file by remuxing: each track's encoded frames, as sent, into
//! Matroska with their call-clock times. No decode, no re-encode: original codec, resolution
//! and orientation are kept. Audio holes (loss, DTX, mutes, and the stretch before the track
//! starts or after it ends inside the file) are filled with Opus silence frames so a decoder
//! plays the file at the right length; video shows one black keyframe over a hole between
//! segments and holds the last whole picture over a loss.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::RenderError;
use super::plan::{RenderPlan, TrackPlan};
use crate::ingest::TrackKind;
use crate::ingest::sdp::MediaKind;
use crate::media::MediaError;
use crate::media::black_frame::BlackFiller;
use crate::media::decode::{Decoded, SegmentDecoder};
use crate::media::mux::{Container, FileMuxer, MuxInput};
use crate::media::opus_fill::{OPUS_SILENCE_FRAME, OPUS_SILENCE_FRAME_MS, OpusGapFiller, opus_packet_duration_ms};
use crate::outputs::GapFill;
use crate::outputs::individual::IndividualFile;

/// A video frame's assumed length when the stream does not say (the file's last frame).
const DEFAULT_VIDEO_FRAME_MS: f64 = 33.3;
/// Video holes between segments longer than this show black (shorter ones hold the picture).
const MIN_BLACK_HOLE_MS: f64 = 150.0;

/// One stream of a written individual file.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenStream {
    pub track_id: String,
    pub kind: TrackKind,
    /// RTP encoding name, lower case (`opus`, `vp8`, `h264`, ...).
    pub codec: String,
    /// Where the stream's media ends in the file.
    pub end_ms: f64,
    /// Opus silence frames inserted (audio only).
    pub silence_frames: u64,
    pub frames: u64,
}

/// An individual file, written.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenIndividual {
    /// Where the file's t=0 lies on the call clock.
    pub offset_ms: f64,
    pub duration_ms: f64,
    pub streams: Vec<WrittenStream>,
    /// The video encoder element, when the file was encoded here.
    pub encoder: Option<String>,
}

/// The call-clock window a file covers.
pub fn window(plan: &RenderPlan, file: &IndividualFile, align_to_call: bool) -> (f64, f64) {
    if align_to_call {
        return (0.0, plan.timeline.duration_ms);
    }
    let spans = file.tracks.iter().filter_map(|&i| plan.tracks.get(i)).map(|t| (t.span.start_ms(), t.span.end_ms()));
    let (from, to) = spans.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (s, e)| (a.min(s), b.max(e)));
    if from.is_finite() && to.is_finite() { (from.max(0.0), to) } else { (0.0, 0.0) }
}

/// Writes `file` to `path` as Matroska.
pub fn write_individual(
    plan: &RenderPlan,
    file: &IndividualFile,
    align_to_call: bool,
    fill: GapFill,
    path: &Path,
) -> Result<WrittenIndividual, RenderError> {
    let (from_ms, to_ms) = window(plan, file, align_to_call);
    let tracks: Vec<TrackPlan> = file.tracks.iter().filter_map(|&i| plan.tracks.get(i).cloned()).collect();
    let kinds: Vec<MediaKind> =
        tracks.iter().map(|t| if t.kind == TrackKind::Audio { MediaKind::Audio } else { MediaKind::Video }).collect();
    let muxer = FileMuxer::start(path, Container::Matroska, &kinds)?;
    // The stream that failed first: the others may then fail only because they were stopped.
    let first_failed = Arc::new(AtomicUsize::new(usize::MAX));
    let mut feeders = Vec::with_capacity(tracks.len());
    for (index, (track, input)) in tracks.into_iter().zip(muxer.inputs()).enumerate() {
        let first_failed = Arc::clone(&first_failed);
        let feeder = std::thread::Builder::new()
            .name("tessera-remux".into())
            .spawn(move || {
                let result = feed_track(&track, input.clone(), (from_ms, to_ms), fill);
                if result.is_err() {
                    let _ = first_failed.compare_exchange(usize::MAX, index, Ordering::SeqCst, Ordering::SeqCst);
                }
                input.end();
                result
            })
            .map_err(|e| MediaError::Data {
                what: format!("writing {}", path.display()),
                reason: format!("cannot start a feeder thread: {e}"),
            })?;
        feeders.push(feeder);
    }
    // A stream that fails leaves the others blocked on a muxer waiting for it: stop the
    // pipeline as soon as anything fails, so every feeder returns.
    let mut bus_error = None;
    while !feeders.iter().all(std::thread::JoinHandle::is_finished) {
        bus_error = muxer.error();
        if bus_error.is_some() || first_failed.load(Ordering::SeqCst) != usize::MAX {
            muxer.abort();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut streams = Vec::with_capacity(feeders.len());
    let mut first_error = None;
    let first_failed = first_failed.load(Ordering::SeqCst);
    for (index, feeder) in feeders.into_iter().enumerate() {
        match feeder.join() {
            Ok(Ok(stream)) => streams.push(stream),
            Ok(Err(err)) if index == first_failed || first_error.is_none() => first_error = Some(err),
            Ok(Err(_)) => {}
            Err(_) => {
                first_error.get_or_insert(MediaError::Data {
                    what: format!("writing {}", path.display()),
                    reason: "a feeder thread panicked".into(),
                });
            }
        }
    }
    // A pipeline error explains a refused push better than the push itself.
    if let Some(err) = bus_error.or_else(|| muxer.error()).or(first_error) {
        return Err(err.into());
    }
    muxer.finish()?;
    let duration_ms = streams.iter().map(|s| s.end_ms).fold(0.0, f64::max);
    Ok(WrittenIndividual { offset_ms: from_ms, duration_ms, streams, encoder: None })
}

/// Pushes every frame of `track` (all segments, in order) into `input`, at file time
/// `call time - from_ms`; audio holes in `[from_ms, to_ms)` are filled with silence as `fill`
/// asks.
fn feed_track(
    track: &TrackPlan,
    mut input: MuxInput,
    (from_ms, to_ms): (f64, f64),
    fill: GapFill,
) -> Result<WrittenStream, MediaError> {
    let audio = track.kind == TrackKind::Audio;
    let mut filler = OpusGapFiller::new(0.0);
    let mut black = BlackFiller::default();
    let mut has_caps = false;
    let mut frames = 0_u64;
    let mut end_ms = 0.0_f64;
    let mut codec = String::new();
    for segment in &track.segments {
        codec = segment.spec.codec.encoding_name().to_ascii_lowercase();
        let mut reader = SegmentDecoder::depayload(&segment.spec)?;
        let mut first_of_segment = true;
        while let Some(decoded) = reader.next()? {
            let Decoded::Encoded(frame) = decoded else { continue };
            let at_ms = segment.call_ms_of_pts(reader.first_ticks(), frame.pts_ms) - from_ms;
            input.use_caps(&frame.caps);
            if audio {
                let duration_ms = frame
                    .buffer
                    .map_readable()
                    .ok()
                    .and_then(|map| opus_packet_duration_ms(map.as_slice()))
                    .or(frame.duration_ms)
                    .unwrap_or(OPUS_SILENCE_FRAME_MS);
                let fill_hole = if first_of_segment { fill.between_segments } else { fill.inside_segments };
                if !fill_hole {
                    filler.skip_to(at_ms);
                }
                let step = filler.before_packet(at_ms, duration_ms);
                push_silence(&mut input, &step.silence_at_ms)?;
                if !step.keep {
                    first_of_segment = false;
                    continue;
                }
                input.push_buffer(frame.buffer, at_ms, Some(duration_ms))?;
                end_ms = filler.end_ms();
            } else {
                if first_of_segment && fill.between_segments && at_ms - end_ms > MIN_BLACK_HOLE_MS {
                    let like = Some((segment.spec.codec, &frame.caps));
                    black.push(&mut input, like, end_ms, DEFAULT_VIDEO_FRAME_MS)?;
                }
                input.push_buffer(frame.buffer, at_ms, frame.duration_ms)?;
                end_ms = end_ms.max(at_ms + frame.duration_ms.unwrap_or(DEFAULT_VIDEO_FRAME_MS));
                black.remember(segment.spec.codec, &frame.caps);
            }
            first_of_segment = false;
            has_caps = true;
            frames += 1;
        }
    }
    let file_end_ms = to_ms - from_ms;
    if audio && has_caps && fill.between_segments {
        let silence = filler.fill_to(file_end_ms);
        push_silence(&mut input, &silence)?;
        end_ms = filler.end_ms();
    }
    if !audio && fill.between_segments && file_end_ms - end_ms > MIN_BLACK_HOLE_MS {
        // Black from the track's end to the file's: one frame at each end of the hole.
        if black.push(&mut input, None, end_ms, DEFAULT_VIDEO_FRAME_MS)? {
            black.push(&mut input, None, file_end_ms - DEFAULT_VIDEO_FRAME_MS, DEFAULT_VIDEO_FRAME_MS)?;
            end_ms = file_end_ms;
        }
    }
    Ok(WrittenStream {
        track_id: track.track_id.clone(),
        kind: track.kind,
        codec,
        end_ms,
        silence_frames: filler.silence_frames,
        frames,
    })
}

fn push_silence(input: &mut MuxInput, starts_ms: &[f64]) -> Result<(), MediaError> {
    for &at_ms in starts_ms {
        input.push_bytes(&OPUS_SILENCE_FRAME, at_ms, Some(OPUS_SILENCE_FRAME_MS))?;
    }
    Ok(())
}
