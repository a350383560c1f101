//! Live composition under load, in process: N senders push pictures at 30 fps and 10 ms PCM
//! chunks at real-time pace into a live call composed to 1280x720 at 30 fps (x264, veryfast).
//! Each picture goes through what a PushMedia frame goes through (the stream's pace, at most 60
//! pictures a second; `live::frame::picture`: checks and conversion to upright I420; the call's
//! clock; the track's bounded queue); the gRPC transport itself is not counted.
//!
//! Reported per run: late output frames (composed more than one frame interval after their
//! moment, t + latency: in a real-time encoder these are the dropped ones), p50/p95/p99 latency
//! from a picture's arrival to the hand-over to the encoder of the first output frame that shows
//! it (x264's own lookahead comes on top), CPU, and bytes per second per participant.
//!
//! Runs: 4 participants of 640x360 I420 (`BENCH_DURATION_S`, 60); the most participants that
//! hold real time (20 s each, up from 4); 4 with one sender stalling for 5 s and one flooding
//! (capture times running 3x real time: only flow control holds it); and the cheaper wire form,
//! NV12 at the tile's size (320x180 for a 2x2 grid in 1280x720); and 4 participants with an
//! individual `audio_video` file each (4 more encoders, at 640x360).
//!
//! `cargo bench --bench live_load`; without `--bench` (`cargo test --benches`) a smoke run of
//! 3 s per case.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tessera::ingest::{CallInfo, TrackKind};
use tessera::live::frame::{PixelFormat, PushedFrame, picture};
use tessera::live::session::Pace;
use tessera::media::encode::EncodeSettings;
use tessera::outputs::IndividualKind;
use tessera::render::live::{LiveCall, LiveInput, LiveSettings, LiveTrackInfo, StopReason};
use tessera::render::source::PlacedAudio;
use tessera::render::{RenderInput, render};
use tessera::timeline::Stamped;

mod render_support;
use render_support::{composite_request, cpu_s};

const FPS: f64 = 30.0;
const FRAME_MS: f64 = 1000.0 / FPS;
const LATENCY_MS: u64 = 200;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// How one sender behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Sender {
    RealTime,
    /// Sends nothing from 5 s for 5 s.
    Stalls,
    /// Capture times run this many times faster than the clock; it sends as fast as it may.
    Floods(f64),
}

#[derive(Debug, Clone, Copy)]
struct Wire {
    format: PixelFormat,
    width: u32,
    height: u32,
}

/// A picture as a sender would push it: one colour per participant, a band moving each frame.
fn planes(wire: Wire, who: usize, n: u64) -> Vec<Vec<u8>> {
    let (w, h) = (wire.width as usize, wire.height as usize);
    let mut y = vec![(40 + who * 20 % 180) as u8; w * h];
    let band = (n as usize * 4) % h;
    y[band * w..(band + 1) * w].fill(235);
    match wire.format {
        PixelFormat::Nv12 => vec![y, vec![(90 + who * 17 % 80) as u8; w * h.div_ceil(2)]],
        _ => vec![
            y,
            vec![128; w.div_ceil(2) * h.div_ceil(2)],
            vec![(90 + who * 17 % 80) as u8; w.div_ceil(2) * h.div_ceil(2)],
        ],
    }
}

struct Arrivals {
    /// (track's capture placed on the call clock, arrival) per picture, in call ms.
    pictures: Vec<(f64, f64)>,
    bytes: u64,
}

fn send(call: &Arc<LiveCall>, who: usize, behaviour: Sender, wire: Wire, duration_ms: f64) -> Arrivals {
    let info = |kind, track: &str| LiveTrackInfo {
        participant_id: format!("p{who}"),
        user_session_id: format!("p{who}-s"),
        track_id: track.into(),
        kind,
        screenshare: false,
        display_name: format!("P {who}"),
    };
    let camera = call.join_video(info(TrackKind::Video, "cam")).expect("camera");
    let microphone = call.join_audio(info(TrackKind::Audio, "mic")).expect("microphone");
    let mut arrivals = Arrivals { pictures: Vec::new(), bytes: 0 };
    let speed = if let Sender::Floods(x) = behaviour { x } else { 1.0 };
    let (mut frame, mut chunk) = (0_u64, 0_u64);
    let mut pace = Pace::pictures();
    // Independent senders, each with its own clock (the flooder's runs fast).
    let domain = format!("p{who}");
    let strides: Vec<u32> = match wire.format {
        PixelFormat::Nv12 => vec![wire.width, wire.width + wire.width % 2],
        _ => vec![wire.width, wire.width.div_ceil(2), wire.width.div_ceil(2)],
    };
    loop {
        let (frame_ms, chunk_ms) = (frame as f64 * FRAME_MS, chunk as f64 * 10.0);
        let next_ms = frame_ms.min(chunk_ms);
        if next_ms >= duration_ms * speed || call.now_ms() >= duration_ms {
            break;
        }
        let due = call.epoch().expect("started") + Duration::from_secs_f64(next_ms / speed / 1000.0);
        if !matches!(behaviour, Sender::Floods(_)) {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let stalled = behaviour == Sender::Stalls && (5000.0..10_000.0).contains(&next_ms);
        if chunk_ms <= frame_ms {
            if !stalled {
                let samples = vec![0.01_f32; 960];
                arrivals.bytes += 960 * 2;
                let position = call.place(&domain, chunk_ms) * 48.0;
                if microphone.blocking_send(PlacedAudio { position: position.max(0.0) as u64, samples }).is_err() {
                    break;
                }
            }
            chunk += 1;
            continue;
        }
        if !stalled {
            // What the PushMedia stream makes a sender wait (flow control).
            std::thread::sleep(pace.spend(1.0));
            let bytes = planes(wire, who, frame);
            arrivals.bytes += bytes.iter().map(|p| p.len() as u64).sum::<u64>();
            let views: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
            let pushed = PushedFrame {
                format: wire.format,
                width: wire.width,
                height: wire.height,
                planes: &views,
                strides: &strides,
                rotation_deg: 0,
                bt709: false,
            };
            let item = picture(&pushed).expect("a good picture");
            let at_ms = call.place(&domain, frame_ms);
            let arrival = call.now_ms();
            let stamped = Stamped { at_ms, show_from_ms: at_ms, show_until_ms: at_ms + 2000.0, item };
            if camera.blocking_send(stamped).is_err() {
                break;
            }
            arrivals.pictures.push((at_ms, arrival));
        }
        frame += 1;
    }
    arrivals
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN)
}

struct Outcome {
    late_frames: usize,
    frames: usize,
    /// Latency percentiles (ms) of the real-time senders.
    p50: f64,
    p95: f64,
    p99: f64,
    cpu_per_s: f64,
    bytes_per_s: Vec<f64>,
}

fn run(behaviours: &[Sender], wire: Wire, duration_s: f64, individual: bool) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let info = CallInfo {
        call_type: "default".into(),
        call_id: "load".into(),
        call_session_id: String::new(),
        call_start_unix_ms: 0,
    };
    let settings = LiveSettings { latency_ms: LATENCY_MS, hold_ms: 2000, idle_timeout_ms: None, max_duration_ms: None };
    let call = LiveCall::new(info, settings);
    let mut request = composite_request(dir.path().into(), dir.path().join("out"), EncodeSettings::new(1280, 720, 30));
    request.input = RenderInput::Live(LiveInput(Arc::clone(&call)));
    if individual {
        request.outputs.individual = vec![IndividualKind::AudioVideo];
    }
    let (cpu_before, wall) = (cpu_s().0, Instant::now());
    let composer = {
        let call = Arc::clone(&call);
        std::thread::spawn(move || {
            let mut ticks = Vec::new();
            // (The first report, of no frame, says the call's clock started.)
            let tick = |p: tessera::render::Progress| (p.done > 0).then(|| (p.media_done_ms - FRAME_MS, call.now_ms()));
            render(&request, |p| ticks.extend(tick(p))).expect("live render");
            ticks
        })
    };
    let duration_ms = duration_s * 1000.0;
    // Senders start with the call's clock (when the pass's encoders run).
    assert!(call.wait_started(Duration::from_secs(60)), "the live call started");
    let senders: Vec<_> = behaviours
        .iter()
        .enumerate()
        .map(|(who, &behaviour)| {
            let call = Arc::clone(&call);
            std::thread::spawn(move || send(&call, who, behaviour, wire, duration_ms))
        })
        .collect();
    let arrivals: Vec<Arrivals> = senders.into_iter().map(|s| s.join().expect("sender")).collect();
    call.stop(StopReason::ApiCall).ok();
    let ticks = composer.join().expect("composer");
    let cpu_per_s = (cpu_s().0 - cpu_before) / wall.elapsed().as_secs_f64();
    let late_frames = ticks.iter().filter(|(t, composed)| *composed > t + LATENCY_MS as f64 + FRAME_MS).count();
    let mut latencies = Vec::new();
    for (behaviour, arrivals) in behaviours.iter().zip(&arrivals) {
        if *behaviour != Sender::RealTime {
            continue;
        }
        for &(at_ms, arrival) in &arrivals.pictures {
            let first = ticks.partition_point(|(t, _)| *t + 1e-6 < at_ms);
            if let Some((_, composed)) = ticks.get(first) {
                latencies.push(composed - arrival);
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    Outcome {
        late_frames,
        frames: ticks.len(),
        p50: percentile(&latencies, 0.5),
        p95: percentile(&latencies, 0.95),
        p99: percentile(&latencies, 0.99),
        cpu_per_s,
        bytes_per_s: arrivals.iter().map(|a| a.bytes as f64 / duration_s).collect(),
    }
}

fn report(name: &str, outcome: &Outcome) {
    let mean_bytes = outcome.bytes_per_s.iter().sum::<f64>() / outcome.bytes_per_s.len().max(1) as f64;
    println!(
        "| {name} | {} / {} | {:.0} / {:.0} / {:.0} ms | {:.2} cores | {:.2} MB/s |",
        outcome.late_frames,
        outcome.frames,
        outcome.p50,
        outcome.p95,
        outcome.p99,
        outcome.cpu_per_s,
        mean_bytes / 1e6
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let duration_s: f64 = if full { env_or("BENCH_DURATION_S", 60.0) } else { 3.0 };
    let short_s: f64 = if full { 20.0 } else { 3.0 };
    let camera = Wire { format: PixelFormat::I420, width: 640, height: 360 };
    let tile = Wire { format: PixelFormat::Nv12, width: 320, height: 180 };
    println!("latency {LATENCY_MS} ms, 1280x720 at 30 fps, x264 veryfast");
    println!("| run | late frames / frames | latency p50 / p95 / p99 | CPU | bytes per participant |");
    println!("| --- | --- | --- | --- | --- |");
    report("4 x 640x360 I420", &run(&[Sender::RealTime; 4], camera, duration_s, false));
    let mut most = 0;
    for n in [4, 6, 9, 12, 16, 25, 36, 49] {
        let outcome = run(&vec![Sender::RealTime; n], camera, short_s, false);
        report(&format!("{n} x 640x360 I420"), &outcome);
        let holds = outcome.late_frames * 100 <= outcome.frames && outcome.p95 <= 300.0;
        if !holds {
            break;
        }
        most = n;
        if !full {
            break;
        }
    }
    let stall_flood = [Sender::RealTime, Sender::RealTime, Sender::Stalls, Sender::Floods(3.0)];
    let long_enough = if full { short_s } else { 3.0 };
    let outcome = run(&stall_flood, camera, long_enough, false);
    report("2 real time + 1 stalling + 1 flooding", &outcome);
    let each: Vec<String> = outcome.bytes_per_s.iter().map(|b| format!("{:.2}", b / 1e6)).collect();
    println!("  MB/s per sender (real time, real time, stalling, flooding): {}", each.join(", "));
    report("4 x 320x180 NV12 (tile size)", &run(&[Sender::RealTime; 4], tile, short_s, false));
    let with_files = run(&[Sender::RealTime; 4], camera, short_s, true);
    report("4 x 640x360 I420 + an audio_video file each", &with_files);
    println!("most participants holding real time (no late frames over 1%, p95 <= 300 ms): {most}");
}
