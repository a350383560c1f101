//! One track of a recording pushed to a live job, as a sender would: decoded here, each
//! picture or chunk sent when the call clock reaches its capture time, one PushMedia stream
//! per stretch of the track (a participant who left and came back opens a new stream, as a
//! media node would).

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::push_cmd::Client;
use tessera::ingest::TrackKind;
use tessera::media::decode::VideoFrame;
use tessera::proto as pb;
use tessera::render::plan::TrackPlan;
use tessera::render::source::{PlacedAudio, audio_source, video_source};

/// The decoder runs this far ahead of the call clock.
const READ_AHEAD_MS: f64 = 500.0;
/// How often a source with nothing for now is asked again.
const IDLE_POLL: Duration = Duration::from_millis(20);
/// A pause in a track longer than this ends its stream (the participant left); the next
/// picture opens another.
const LEFT_AFTER_MS: f64 = 3000.0;

/// What the decoding thread hands to the sending side.
enum Piece {
    /// A picture or chunk, due at this call time.
    Media(f64, pb::push_media_request::Message),
    /// The track paused long enough to count as gone.
    Gap,
}

/// A PushMedia call under way: where its requests go, and its answer to come.
type OpenStream = (
    mpsc::Sender<pb::PushMediaRequest>,
    tokio::task::JoinHandle<Result<tonic::Response<pb::PushMediaResponse>, tonic::Status>>,
);

/// What one track delivered over all its streams.
#[derive(Debug, Default, Clone, Copy)]
pub struct TrackTotals {
    pub frames: u64,
    pub chunks: u64,
    pub bytes: u64,
    pub streams: u32,
}

fn hello(job_id: &str, track: &TrackPlan) -> pb::PushHello {
    use pb::PushedTrackKind as Kind;
    let kind = match (track.kind, track.screenshare) {
        (TrackKind::Video, false) => Kind::Camera,
        (TrackKind::Video, true) => Kind::Screenshare,
        (TrackKind::Audio, false) => Kind::Microphone,
        (TrackKind::Audio, true) => Kind::ScreenshareAudio,
    };
    pb::PushHello {
        job_id: job_id.to_owned(),
        participant_id: track.participant_id.clone(),
        session_id: track.user_session_id.clone(),
        display_name: String::new(),
        kind: kind as i32,
        track_id: track.track_id.clone(),
        // Every track's timestamps are this recording's call clock.
        clock_domain: "recording".into(),
    }
}

/// A decoded picture as a sender pushes it: its I420 planes with their strides.
fn video_message(frame: &VideoFrame, at_ms: f64) -> pb::push_media_request::Message {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let heights = [h, h.div_ceil(2), h.div_ceil(2)];
    let planes = (0..3)
        .map(|i| {
            let (offset, stride) = (frame.plane_offsets[i], frame.plane_strides[i]);
            let width = if i == 0 { w } else { w.div_ceil(2) };
            let end = offset + stride * (heights[i] - 1) + width;
            frame.data.get(offset..end.min(frame.data.len())).unwrap_or(&[]).to_vec()
        })
        .collect();
    pb::push_media_request::Message::Video(pb::PushedVideoFrame {
        format: pb::PixelFormat::I420 as i32,
        width: frame.width,
        height: frame.height,
        planes,
        strides: frame.plane_strides.iter().map(|&s| s as u32).collect(),
        rotation_deg: 0,
        bt709: frame.bt709,
        capture_time_us: (at_ms * 1000.0).round() as i64,
    })
}

fn audio_message(chunk: &PlacedAudio) -> pb::push_media_request::Message {
    pb::push_media_request::Message::Audio(pb::PushedAudioChunk {
        format: pb::SampleFormat::F32le as i32,
        sample_rate_hz: 48_000,
        channels: 2,
        data: chunk.samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
        capture_time_us: (chunk.position as f64 * 1000.0 / 48.0).round() as i64,
    })
}

/// Decodes `track` on this thread, handing each piece over when the clock (from `epoch`)
/// is within [`READ_AHEAD_MS`] of it.
fn decode(track: &TrackPlan, epoch: Instant, out: &mpsc::Sender<Piece>) -> anyhow::Result<()> {
    let now_ms = || epoch.elapsed().as_secs_f64() * 1000.0;
    let wait_for = |at_ms: f64| {
        let ahead = at_ms - READ_AHEAD_MS - now_ms();
        if ahead > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(ahead / 1000.0));
        }
    };
    // A source has nothing "for now" until the clock reaches its next stretch: it is done
    // only once the clock is past the track's end.
    let end_ms = track.span.end_ms() + READ_AHEAD_MS;
    let mut last_ms: Option<f64> = None;
    let mut hand_over = |at_ms: f64, message| -> anyhow::Result<bool> {
        if last_ms.is_some_and(|last| at_ms - last > LEFT_AFTER_MS) && out.blocking_send(Piece::Gap).is_err() {
            return Ok(false);
        }
        last_ms = Some(at_ms);
        Ok(out.blocking_send(Piece::Media(at_ms, message)).is_ok())
    };
    match track.kind {
        TrackKind::Video => {
            let mut source = video_source(track);
            loop {
                let Some(frame) = source.next_frame(now_ms() + READ_AHEAD_MS).context("decoding")? else {
                    if now_ms() > end_ms {
                        break;
                    }
                    std::thread::sleep(IDLE_POLL);
                    continue;
                };
                wait_for(frame.at_ms);
                if !hand_over(frame.at_ms, video_message(&frame.item, frame.at_ms))? {
                    break;
                }
            }
        }
        TrackKind::Audio => {
            let mut source = audio_source(track);
            let horizon = || ((now_ms() + READ_AHEAD_MS) * 48.0) as u64;
            loop {
                let Some(chunk) = source.next_chunk(horizon()).context("decoding")? else {
                    if now_ms() > end_ms {
                        break;
                    }
                    std::thread::sleep(IDLE_POLL);
                    continue;
                };
                let at_ms = chunk.position as f64 / 48.0;
                wait_for(at_ms);
                if !hand_over(at_ms, audio_message(&chunk))? {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Pushes `track` into live job `job_id` at the pace of the call clock started at `epoch`.
pub async fn push_track(
    client: Client,
    job_id: String,
    track: TrackPlan,
    epoch: Instant,
) -> anyhow::Result<TrackTotals> {
    let (tx, mut pieces) = mpsc::channel::<Piece>(64);
    let decoding = {
        let track = track.clone();
        tokio::task::spawn_blocking(move || decode(&track, epoch, &tx))
    };
    let mut totals = TrackTotals::default();
    let mut stream: Option<OpenStream> = None;
    while let Some(piece) = pieces.recv().await {
        match piece {
            Piece::Gap => close(&mut stream, &mut totals).await?,
            Piece::Media(at_ms, message) => {
                let due = epoch + Duration::from_secs_f64(at_ms.max(0.0) / 1000.0);
                tokio::time::sleep_until(due.into()).await;
                if stream.is_none() {
                    let (requests, rx) = mpsc::channel(8);
                    let hello = pb::push_media_request::Message::Hello(hello(&job_id, &track));
                    requests.send(pb::PushMediaRequest { message: Some(hello) }).await.ok();
                    let mut client = client.clone();
                    let call = tokio::spawn(async move { client.push_media(ReceiverStream::new(rx)).await });
                    stream = Some((requests, call));
                    totals.streams += 1;
                }
                if let Some((requests, _)) = &stream
                    && requests.send(pb::PushMediaRequest { message: Some(message) }).await.is_err()
                {
                    // The call ended early: its answer says why.
                    close(&mut stream, &mut totals).await?;
                }
            }
        }
    }
    close(&mut stream, &mut totals).await?;
    decoding.await.context("decoder thread")??;
    Ok(totals)
}

/// Ends the open stream, if any, and adds what the server says it took.
async fn close(stream: &mut Option<OpenStream>, totals: &mut TrackTotals) -> anyhow::Result<()> {
    let Some((requests, call)) = stream.take() else { return Ok(()) };
    drop(requests);
    let delivered = call.await.context("push task")?.context("PushMedia")?.into_inner();
    totals.frames += delivered.frames;
    totals.chunks += delivered.chunks;
    totals.bytes += delivered.bytes;
    Ok(())
}
