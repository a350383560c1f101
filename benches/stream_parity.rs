//! Stream parity: `tessera raw extract-video` and `tessera raw mix-audio` against the pipelines
//! `stream-cli video raw-recording` runs for the same commands (reference §5.3–§5.7), on the same
//! synthetic call, both timed here. Stream's way: one `gst-launch-1.0` per segment fed RFC 4571
//! framed RTP over TCP, then an ffmpeg concat `-c copy` per track; the mix adds one ffmpeg
//! adelay/amix/libopus run over the extracted audio tracks.
//!
//! `cargo bench --bench stream_parity`; tune with BENCH_PARTICIPANTS (default 4), BENCH_DURATION_S
//! (60) and BENCH_STAGGER_MS (0, participant i joins i times this late). Without `--bench` and
//! BENCH_DURATION_S (as `cargo test --benches` runs it) it only does a 2-participant, 2 s smoke run.
//! Unlike stream-cli, segment MKVs go to the output folder, not beside the rtpdumps in the input.

use std::fs::{self, File};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use tessera::ingest::rtp::parse_rtp;
use tessera::ingest::rtpdump::{RecordKind, RtpDumpReader};
use tessera::ingest::sdp::Codec;
use tessera::ingest::{Recording, Segment, TrackKind};
use tessera::synth::{SynthSpec, synth};

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");
/// Every ffmpeg command of stream-cli starts with these.
const FFMPEG_PREFIX: [&str; 5] = ["-hide_banner", "-threads", "1", "-filter_threads", "1"];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs a command with its output in `log`; fails with the log's tail when it fails.
fn run_logged(cmd: &mut Command, log: &Path) -> anyhow::Result<()> {
    let file = File::create(log)?;
    let status = cmd.stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file).status()?;
    if !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail = &text[text.char_indices().rev().nth(2000).map_or(0, |(i, _)| i)..];
        bail!("{cmd:?} failed ({status}):\n{tail}");
    }
    Ok(())
}

fn ffmpeg<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>, log: &Path) -> anyhow::Result<()> {
    run_logged(Command::new("ffmpeg").args(FFMPEG_PREFIX).args(args), log)
}

/// A port that was free a moment ago (bound to port 0, then released).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// The segment's RTP packets in (unwrapped) sequence order; RTCP records skipped.
fn packets_in_sequence_order(segment: &Segment) -> anyhow::Result<Vec<Vec<u8>>> {
    let file = File::open(&segment.rtpdump_path).with_context(|| segment.rtpdump_path.display().to_string())?;
    let mut keyed = Vec::new();
    let (mut last, mut extended) = (None::<u16>, 0i64);
    for record in RtpDumpReader::new(file)? {
        let record = record?;
        if record.kind == RecordKind::Rtcp {
            continue;
        }
        let sequence = parse_rtp(&record.data)?.sequence;
        extended += last.map_or(0, |prev| i64::from(sequence.wrapping_sub(prev) as i16));
        last = Some(sequence);
        keyed.push((extended, record.data));
    }
    keyed.sort_by_key(|(key, _)| *key);
    Ok(keyed.into_iter().map(|(_, data)| data).collect())
}

/// §5.3: one segment to MKV through `gst-launch-1.0 -e tcpserversrc ...`, fed over TCP.
fn segment_to_mkv(segment: &Segment, mkv: &Path, log: &Path) -> anyhow::Result<()> {
    let packets = packets_in_sequence_order(segment)?;
    let encoding = segment.codec.encoding_name();
    let lower = encoding.to_ascii_lowercase();
    let media = if segment.codec == Codec::Opus { "audio" } else { "video" };
    let parse = match segment.codec {
        Codec::Vp9 | Codec::Av1 | Codec::H264 => format!(" ! {lower}parse"),
        Codec::Opus | Codec::Vp8 => String::new(),
    };
    let port = free_port()?;
    let pipeline = format!(
        "-e tcpserversrc host=127.0.0.1 port={port} ! application/x-rtp-stream ! rtpstreamdepay \
         ! application/x-rtp,media={media},encoding-name={encoding},clock-rate={},payload={} \
         ! rtpjitterbuffer mode=none latency=0 do-lost=false do-retransmission=false drop-on-latency=false \
         ! rtp{lower}depay{parse} ! matroskamux streamable=false ! filesink",
        segment.clock_rate_hz, segment.payload_type
    );
    let mut args: Vec<String> = pipeline.split(' ').map(String::from).collect();
    args.push(format!("location={}", mkv.display()));
    let out = File::create(log)?;
    let mut child =
        Command::new("gst-launch-1.0").args(&args).stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out).spawn()?;
    if let Err(err) = feed(port, &packets) {
        let _ = (child.kill(), child.wait());
        return Err(err);
    }
    // Up to 5 s for gst-launch to finish the file after EOS.
    let waited = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if waited.elapsed() > Duration::from_secs(5) {
            let _ = (child.kill(), child.wait());
            bail!("gst-launch-1.0 did not exit within 5 s (stream-cli would SIGKILL it and keep the MKV)");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    ensure!(status.success(), "gst-launch-1.0 {} failed ({status}); log {}", args.join(" "), log.display());
    Ok(())
}

/// Dials `127.0.0.1:port` every 50 ms (500 ms timeout, 10 s in all), writes every packet with a
/// 2-byte big-endian length prefix (RFC 4571) as fast as the socket takes them, then closes.
fn feed(port: u16, packets: &[Vec<u8>]) -> anyhow::Result<()> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let started = Instant::now();
    let mut socket = loop {
        match TcpStream::connect_timeout(&address, Duration::from_millis(500)) {
            Ok(socket) => break socket,
            Err(_) if started.elapsed() < Duration::from_secs(10) => std::thread::sleep(Duration::from_millis(50)),
            Err(err) => return Err(err).context(format!("gst-launch-1.0 never listened on port {port}")),
        }
    };
    socket.set_nodelay(true)?; // Go's default for TCP connections
    let mut frame = Vec::with_capacity(1500);
    for packet in packets {
        let len = u16::try_from(packet.len()).context("RTP packet over 65535 bytes")?;
        frame.clear();
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(packet);
        socket.write_all(&frame)?;
    }
    Ok(()) // dropping the socket closes it: tcpserversrc sends EOS
}

/// §5.3 + §5.4 for every track of `kind`: segment MKVs, concat list, `ffmpeg -f concat -c copy`.
/// Returns each individual file with its start (first segment's `first_rtp_unix_timestamp`).
fn stream_extract(recording: &Recording, kind: TrackKind, out: &Path) -> anyhow::Result<Vec<(PathBuf, i64)>> {
    let work = out.join("segments");
    fs::create_dir_all(&work)?;
    let (call, kind_part) = (&recording.call, kind.as_str());
    let (call_part, ms) = (format!("{}_{}", call.call_type, call.call_id), call.call_start_unix_ms);
    let mut files = Vec::new();
    for (session, track) in recording.tracks().filter(|(_, t)| t.kind == kind) {
        let mut list = String::new();
        for segment in &track.segments {
            let stem = segment.rtpdump_path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let mkv = work.join(format!("{stem}.mkv"));
            segment_to_mkv(segment, &mkv, &work.join(format!("{stem}.gst.log")))?;
            list.push_str(&format!("file '{}'\n", mkv.display()));
        }
        let ids = format!("{}_{}", session.participant_id, session.user_session_id);
        let concat = out.join(format!("concat_{ids}_{kind_part}_{ms}.txt"));
        fs::write(&concat, list)?;
        let shared = if track.screenshare { "shared_" } else { "" };
        let output = out.join(format!("individual_{call_part}_{ids}_{shared}{kind_part}_only_{ms}.mkv"));
        let (list_arg, out_arg, log) = (concat.display().to_string(), output.display().to_string(), work.join("c.log"));
        ffmpeg(["-f", "concat", "-safe", "0", "-i", &list_arg, "-c", "copy", "-y", &out_arg], &log)?;
        let start = track.segments.first().map_or(0, |s| s.meta.first_rtp_unix_timestamp);
        files.push((output, start));
    }
    Ok(files)
}

/// §5.7: every audio track extracted, then one ffmpeg adelay/amix/libopus run.
fn stream_mix(recording: &Recording, out: &Path) -> anyhow::Result<()> {
    let mut tracks = stream_extract(recording, TrackKind::Audio, &out.join("tracks"))?;
    let first = tracks.first().map(|t| t.1).context("no audio track")?;
    tracks.iter_mut().for_each(|t| t.1 -= first);
    tracks.sort_by_key(|t| t.1);
    let shift = tracks.first().map_or(0, |t| t.1);
    let call = &recording.call;
    let output =
        out.join(format!("composite_{}_{}_audio_{}.mkv", call.call_type, call.call_id, call.call_start_unix_ms));
    let mut args: Vec<String> = Vec::new();
    let (mut filters, mut labels) = (Vec::new(), String::new());
    for (i, (file, offset)) in tracks.iter().enumerate() {
        args.extend(["-i".into(), file.display().to_string()]);
        let delay = offset - shift;
        if delay > 0 {
            filters.push(format!("[{i}:a]adelay={delay}|{delay}[a{i}]"));
            labels.push_str(&format!("[a{i}]"));
        } else {
            labels.push_str(&format!("[{i}:a]"));
        }
    }
    if tracks.len() == 1 {
        args.extend(["-c".into(), "copy".into()]);
    } else {
        filters.push(format!("{labels}amix=inputs={}:normalize=0", tracks.len()));
        args.extend(["-filter_complex".into(), filters.join(";")]);
        args.extend(["-c:a", "libopus", "-b:a", "128k"].map(String::from));
    }
    args.extend(["-y".into(), output.display().to_string()]);
    ffmpeg(args, &out.join("mix.log"))
}

/// Best time of `runs` runs of `work` into a fresh `out` each time.
fn best_of(runs: u32, out: &Path, mut work: impl FnMut(&Path) -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..runs {
        if out.exists() {
            fs::remove_dir_all(out)?;
        }
        fs::create_dir_all(out)?;
        let started = Instant::now();
        work(out)?;
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// One output file as ffprobe sees it.
struct Probed {
    name: String,
    codec: String,
    start_s: f64,
    duration_s: f64,
    kib: u64,
}

/// Every top-level `.mkv` in `dir`, by name.
fn probe_dir(dir: &Path) -> anyhow::Result<Vec<Probed>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "mkv") {
            continue;
        }
        let entries =
            ["-v", "error", "-show_entries", "stream=codec_name:format=start_time,duration", "-of", "default=nw=1"];
        let probe = Command::new("ffprobe").args(entries).arg(&path).output()?;
        ensure!(probe.status.success(), "ffprobe {} failed", path.display());
        let text = String::from_utf8_lossy(&probe.stdout).into_owned();
        let field = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)).unwrap_or("?").to_owned();
        let number = |key: &str| field(key).parse::<f64>().unwrap_or(f64::NAN);
        found.push(Probed {
            name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            codec: field("codec_name="),
            start_s: number("start_time="),
            duration_s: number("duration="),
            kib: fs::metadata(&path)?.len() / 1024,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Prints both sides' files; true when counts match and every duration is within 0.2 s.
fn verify(ours: &Path, theirs: &Path) -> anyhow::Result<bool> {
    let (ours, theirs) = (probe_dir(ours)?, probe_dir(theirs)?);
    let mut ok = !ours.is_empty() && ours.len() == theirs.len();
    println!("  files: tessera {}, Stream {}", ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        if a.name != b.name {
            println!("  names differ: tessera {} vs Stream {}", a.name, b.name);
        }
        let close = (a.duration_s - b.duration_s).abs() <= 0.2;
        ok &= close;
        let flag = if close { "" } else { "  DURATIONS DIFFER BY MORE THAN 0.2 s" };
        let show = |p: &Probed| format!("{:.3} s from {:.3} ({}, {} KiB)", p.duration_s, p.start_s, p.codec, p.kib);
        println!("  {}{flag}\n    tessera {}\n    Stream  {}", a.name, show(a), show(b));
    }
    Ok(ok)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return Ok(()); // `cargo test --benches` asks for a listing
    }
    let full = args.iter().any(|a| a == "--bench") || std::env::var_os("BENCH_DURATION_S").is_some();
    let (participants, duration_s, runs) =
        if full { (env_or("BENCH_PARTICIPANTS", 4usize), env_or("BENCH_DURATION_S", 60u64), 2) } else { (2, 2, 1) };
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("call");
    let spec = SynthSpec {
        participants,
        duration_ms: duration_s * 1000,
        video_codecs: vec![Codec::Vp8, Codec::H264],
        join_stagger_ms: env_or("BENCH_STAGGER_MS", 0),
        ..SynthSpec::default()
    };
    synth(&spec, &input)?;
    let recording = Recording::open(&input)?;
    println!(
        "input: {participants} participants, {duration_s} s, 640x360 VP8/H.264 + Opus, join stagger {} ms{}",
        spec.join_stagger_ms,
        if full { "" } else { " (smoke run; `cargo bench` for the real one)" }
    );
    println!("one segment per track and no gaps, so Stream's gap fillers are not needed (none made);");
    println!("no DTX, so Stream's DTX fix would insert nothing. Best of {runs} run(s) per side.");

    let mut results = Vec::new();
    let mut all_ok = true;
    for task in ["extract-video", "mix-audio"] {
        let ours_dir = dir.path().join(format!("{task}-tessera"));
        let tessera_s = best_of(runs, &ours_dir, |out| {
            let mut cmd = Command::new(TESSERA);
            cmd.args(["raw", task, "--input-dir"]).arg(&input).arg("--output").arg(out);
            run_logged(&mut cmd, &dir.path().join(format!("{task}-tessera.log")))
        })?;
        let stream_dir = dir.path().join(format!("{task}-stream"));
        let stream_s = best_of(runs, &stream_dir, |out| match task {
            "extract-video" => stream_extract(&recording, TrackKind::Video, out).map(|_| ()),
            _ => stream_mix(&recording, out),
        })?;
        let ratio = tessera_s / stream_s;
        println!("\n{task}: tessera {tessera_s:.2} s, Stream pipeline {stream_s:.2} s");
        println!("  tessera takes {ratio:.2}x the time (below 1 is faster)");
        let ok = verify(&ours_dir, &stream_dir)?;
        all_ok &= ok;
        results.push(format!(
            "RESULT task={task} tessera_s={tessera_s:.3} stream_s={stream_s:.3} ratio={ratio:.3} verified={ok}"
        ));
    }
    println!();
    results.iter().for_each(|line| println!("{line}"));
    ensure!(all_ok, "outputs differ: file counts or durations (more than 0.2 s) do not match");
    Ok(())
}
