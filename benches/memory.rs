//! Peak memory of a composite render: for many participants at 1080p, and against call length.
//!
//! Each render runs in a child process (this bench re-run with `MEMORY_BENCH_CHILD` set) that
//! reads its own peak resident set (`VmHWM` in /proc/self/status) when the render is done, so
//! that no render inherits another's heap. The calls are synthesised first, by the parent, and
//! their synthesis is not counted.
//!
//! Two sets of renders:
//! - peak: `BENCH_PARTICIPANTS` (25) participants of 640x360 VP8/H.264 into a 1920x1080
//!   composite, a call of `BENCH_PEAK_DURATION_S` (60 s); goal: under 2 GiB.
//! - length: the same participants with small pictures (160x90) into a 320x180 composite, for
//!   each of `BENCH_DURATIONS_S` (`600,7200`: 10 minutes and 2 hours); goal: the peaks within
//!   10% of each other.
//!
//! `BENCH_DISTINCT` (4) participants are synthesised; the others are copies of them under new
//! names (the same media, a participant and session of their own), since synthesising 25
//! participants of two hours takes hours on 2 cores.
//!
//! Run with `cargo bench --bench memory` (the 2-hour call takes most of an hour on 2 cores).
//! Without `--bench` (`cargo test --benches`) it is a smoke run: 4 participants, 2 s, and
//! calls of 2 s and 4 s.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use tessera::ingest::sdp::Codec;
use tessera::media::encode::EncodeSettings;
use tessera::render::render;
use tessera::synth::{SynthSpec, synth};

mod render_support;
use render_support::composite_request;

const CHILD_VAR: &str = "MEMORY_BENCH_CHILD";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One render: the call's participants, length and picture sizes.
#[derive(Debug, Clone, Copy)]
struct Case {
    participants: usize,
    duration_s: u64,
    source: (u32, u32),
    output: (u32, u32),
}

/// What a child reports.
struct Measured {
    peak_rss_mib: f64,
    wall_s: f64,
}

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // a test harness asks for a listing
    }
    if let Ok(args) = std::env::var(CHILD_VAR) {
        return child(&args);
    }
    let smoke = !std::env::args().any(|a| a == "--bench") && std::env::var_os("BENCH_DURATIONS_S").is_none();
    let participants: usize = env_or("BENCH_PARTICIPANTS", if smoke { 4 } else { 25 });
    let peak_s: u64 = env_or("BENCH_PEAK_DURATION_S", if smoke { 2 } else { 60 });
    let durations: String = env_or("BENCH_DURATIONS_S", if smoke { "2,4" } else { "600,7200" }.to_owned());
    let peak = Case { participants, duration_s: peak_s, source: (640, 360), output: (1920, 1080) };
    let mut lengths = Vec::new();
    for d in durations.split(',') {
        let duration_s = d.trim().parse().map_err(|_| anyhow::anyhow!("BENCH_DURATIONS_S: `{d}` is not seconds"))?;
        lengths.push(Case { participants, duration_s, source: (160, 90), output: (320, 180) });
    }

    let mut rows = Vec::new();
    for case in std::iter::once(peak).chain(lengths.iter().copied()) {
        rows.push((case, run(case)?));
    }
    println!("\n| participants | call | pictures | composite | peak RSS | render wall |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (case, m) in &rows {
        println!(
            "| {} | {} s | {}x{} | {}x{} | {:.0} MiB | {:.1} s |",
            case.participants,
            case.duration_s,
            case.source.0,
            case.source.1,
            case.output.0,
            case.output.1,
            m.peak_rss_mib,
            m.wall_s
        );
    }
    let peaks: Vec<f64> = rows.iter().skip(1).map(|(_, m)| m.peak_rss_mib).collect();
    let (low, high) = peaks.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &p| (lo.min(p), hi.max(p)));
    if let Some((_, m)) = rows.first() {
        println!("peak at {}x{}: {:.0} MiB (goal: under 2048 MiB)", peak.output.0, peak.output.1, m.peak_rss_mib);
    }
    if peaks.len() > 1 {
        println!("longest call's peak / shortest's: {:.3} (goal: within 10%)", high / low);
    }
    Ok(())
}

/// Synthesises the call of `case` and renders it in a child process.
fn run(case: Case) -> anyhow::Result<Measured> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("call");
    let distinct = case.participants.min(env_or("BENCH_DISTINCT", 4)).max(1);
    let spec = SynthSpec {
        participants: distinct,
        duration_ms: case.duration_s * 1000,
        video_codecs: vec![Codec::Vp8, Codec::H264],
        width: case.source.0,
        height: case.source.1,
        ..SynthSpec::default()
    };
    eprintln!("{case:?}: synthesising {distinct} participants");
    let synthesised = synth(&spec, &input)?;
    let ids: Vec<String> = synthesised.plan.participants.iter().map(|p| p.participant_id.clone()).collect();
    for k in distinct..case.participants {
        let id = &ids[k % distinct];
        replicate(&input.join(id), id, &input.join(format!("copy{k:02}")), &format!("copy{k:02}"), k)?;
    }
    eprintln!("{case:?}: rendering in a child process");
    let args = format!("{},{},{},{}", input.display(), dir.path().join("out").display(), case.output.0, case.output.1);
    let output = Command::new(std::env::current_exe()?).env(CHILD_VAR, args).output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "the render of {case:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |name: &str| -> anyhow::Result<f64> {
        stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("the child printed no {name}: {stdout}"))
    };
    let rendered = field("participants")?;
    anyhow::ensure!(rendered == case.participants as f64, "{case:?}: the render saw {rendered} participants");
    Ok(Measured { peak_rss_mib: field("peak_rss_kib")? / 1024.0, wall_s: field("wall_s")? })
}

/// Adds `dir` (participant `id`'s recording) to the call again as participant `new_id`: the
/// same media under new names (hard links) and a timing file naming the new participant and a
/// new session. Synthesising 25 participants of a 2-hour call takes hours on 2 cores; the
/// render decodes, mixes and composes every copy like any participant.
fn replicate(dir: &Path, id: &str, new_dir: &Path, new_id: &str, k: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(new_dir)?;
    let new_session = format!("{:08x}", 0xc0de_0000_u32 + k as u32);
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        // `{id}_{session8}_rest`
        let mut parts = name.splitn(3, '_');
        let (Some(_), Some(session), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!("{}: not an `ID_SESSION_...` file", path.display());
        };
        let new_path = new_dir.join(format!("{new_id}_{new_session}_{rest}"));
        if rest == "timing_metadata.json" {
            let text = std::fs::read_to_string(&path)?;
            let text = text.replace(&format!("\"{id}\""), &format!("\"{new_id}\"")).replace(session, &new_session);
            let text = text.replace(&format!("\"{id}_{new_session}_"), &format!("\"{new_id}_{new_session}_"));
            std::fs::write(new_path, text)?;
        } else {
            std::fs::hard_link(&path, new_path)?;
        }
    }
    Ok(())
}

/// The child: renders `INPUT,OUTPUT,WIDTH,HEIGHT` and prints its peak RSS and wall time.
fn child(args: &str) -> anyhow::Result<()> {
    let parts: Vec<&str> = args.split(',').collect();
    let [input, output, width, height] = parts[..] else {
        anyhow::bail!("{CHILD_VAR} `{args}` is not INPUT,OUTPUT,WIDTH,HEIGHT");
    };
    let encode = EncodeSettings::new(width.parse()?, height.parse()?, 30);
    let request = composite_request(input.into(), output.into(), encode);
    let started = Instant::now();
    let summary = render(&request, |_| {})?;
    let wall_s = started.elapsed().as_secs_f64();
    let peak = peak_rss_kib(Path::new("/proc/self/status"))?;
    println!("peak_rss_kib={peak} wall_s={wall_s:.2} participants={}", summary.participants);
    Ok(())
}

/// `VmHWM` (peak resident set, KiB) from a /proc status file.
fn peak_rss_kib(status: &Path) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(status)?;
    text.lines()
        .find_map(|line| line.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{} has no VmHWM line", status.display()))
}
