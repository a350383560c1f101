//! A composite rendered in slices on one node: `tessera raw composite --parallelism N` for N
//! in BENCH_PARALLELISM (1,2,4) on the same synthetic call, wall time and speed-up against
//! N = 1 run in the same rounds, and the CPU all its processes used. The frame count of every
//! output is checked to be the single render's.
//!
//! Also what isolation costs a job: the same one-second job rendered in this process and in a
//! render process of its own (`tessera job-worker`, as the service runs every job); the
//! difference is a process's start (loading the program, GStreamer's registry, the GPU
//! adapter) and the order and reports crossing pipes.
//!
//! Each timed step runs BENCH_RUNS times (2) in rounds; the tables show the lowest wall and
//! CPU of each. Knobs: BENCH_DURATION_S (120), BENCH_PARTICIPANTS (4), BENCH_SIZE (1280x720),
//! BENCH_PRESET (veryfast), BENCH_PARALLELISM (1,2,4), BENCH_RUNS (2). Without `--bench` and
//! BENCH_DURATION_S it is a 4 s smoke run at 320x180.

use std::path::Path;
use std::process::Command;

use tessera::job::worker::{WorkOrder, render_in_child, request_of};
use tessera::proto as pb;
use tessera::render::{CancelFlag, render};
use tessera::synth::{SynthSpec, synth};

mod render_support;
use render_support::{env_or, measure};

fn frames(mp4: &Path) -> anyhow::Result<u64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-show_entries", "stream=nb_frames", "-of", "csv=p=0"])
        .arg(mp4)
        .output()?;
    anyhow::ensure!(out.status.success(), "ffprobe {}: {}", mp4.display(), String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

/// `tessera raw composite` of `input` with `parallelism`; returns the frames written.
fn composite(input: &Path, out: &Path, size: &str, preset: &str, parallelism: u32) -> anyhow::Result<u64> {
    let _ = std::fs::remove_dir_all(out);
    let ran = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["raw", "composite", "--input-dir"])
        .arg(input)
        .arg("--output")
        .arg(out)
        .args(["--size", size, "--preset", preset, "--parallelism", &parallelism.to_string()])
        .output()?;
    anyhow::ensure!(
        ran.status.success(),
        "tessera raw composite --parallelism {parallelism} failed: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let mp4 = std::fs::read_dir(out)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "mp4"))
        .ok_or_else(|| anyhow::anyhow!("no mp4 in {}", out.display()))?;
    frames(&mp4)
}

/// Runs a slice worker with `order` on its stdin (held open while it works: a worker whose
/// stdin closes stops); fails unless it reports the slice done.
fn run_slice(command: &mut Command, order: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let mut input = child.stdin.take();
    if let Some(input) = input.as_mut() {
        writeln!(input, "{order}")?;
    }
    let out = child.wait_with_output()?;
    drop(input);
    let last = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_owned();
    anyhow::ensure!(
        out.status.success() && last.contains(r#""report":"slice""#),
        "the slice worker answered {last}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Each slice of `workers` rendered alone (its worker as `--parallelism` starts it), and the
/// mix alone: on a node with a core per busy thread of each, the render in slices takes about
/// the longest of these, plus the join. An estimate, for a node with more cores than this one.
fn critical_path(
    input: &Path,
    dir: &Path,
    size: &str,
    preset: &str,
    duration_s: u64,
    workers: u32,
) -> anyhow::Result<()> {
    if workers <= 1 {
        return Ok(());
    }
    let frames = duration_s * 30;
    let slices = tessera::render::slices::cut(0, frames, workers, 60);
    let composite = |out: &Path| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
        command.args(["raw", "composite", "--input-dir"]).arg(input).arg("--output").arg(out);
        command.args(["--size", size, "--preset", preset]);
        command
    };
    let mut walls = Vec::new();
    for slice in &slices {
        let order = tessera::render::SliceOrder {
            slice: *slice,
            path: dir.join(format!("alone-{}.mp4", slice.index)),
            recording_dir: Some(input.to_path_buf()),
            attempt: 0,
        };
        let line = serde_json::to_string(&order)?;
        let ((), wall, _) = measure(|| run_slice(composite(&dir.join("alone")).arg("--slice-worker"), &line))?;
        walls.push(wall);
    }
    let mix = dir.join("mix-alone");
    let ((), mix_wall, _) = measure(|| {
        let ran = composite(&mix).args(["--no-video", "--audio-only", "m4a"]).output()?;
        anyhow::ensure!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
        Ok(())
    })?;
    let longest = walls.iter().copied().fold(mix_wall, f64::max);
    println!(
        "\nparallelism {workers}, each part alone: slices {} s, the mix {mix_wall:.1} s; the longest, {longest:.1} s, \
         is {:.2}x real time",
        walls.iter().map(|w| format!("{w:.1}")).collect::<Vec<_>>().join(" / "),
        duration_s as f64 / longest
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let smoke = !std::env::args().any(|a| a == "--bench") && std::env::var("BENCH_DURATION_S").is_err();
    let duration_s: u64 = env_or("BENCH_DURATION_S", if smoke { 4 } else { 120 });
    let participants: usize = env_or("BENCH_PARTICIPANTS", 4);
    let size: String = env_or("BENCH_SIZE", if smoke { "320x180".into() } else { "1280x720".to_owned() });
    let preset: String = env_or("BENCH_PRESET", "veryfast".to_owned());
    let runs: usize = env_or("BENCH_RUNS", if smoke { 1 } else { 2 });
    let list: String = env_or("BENCH_PARALLELISM", "1,2,4".to_owned());
    let parallelism: Vec<u32> = list.split(',').filter_map(|p| p.trim().parse().ok()).collect();
    anyhow::ensure!(parallelism.first() == Some(&1), "BENCH_PARALLELISM must start with 1 (the baseline)");

    let dir = tempfile::tempdir()?;
    let input = dir.path().join("call");
    let spec = SynthSpec { participants, duration_ms: duration_s * 1000, ..SynthSpec::default() };
    synth(&spec, &input)?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "# {participants} participants (640x360 cameras), {duration_s} s call -> {size} {preset}, {cores} cores, \
         best of {runs}"
    );

    let mut best: Vec<(f64, f64, u64)> = vec![(f64::INFINITY, f64::INFINITY, 0); parallelism.len()];
    for _ in 0..runs {
        for (i, &p) in parallelism.iter().enumerate() {
            let out = dir.path().join(format!("out-{p}"));
            let (written, wall, cpu) = measure(|| composite(&input, &out, &size, &preset, p))?;
            best[i] = (best[i].0.min(wall), best[i].1.min(cpu), written);
        }
    }
    let (base_wall, _, base_frames) = best[0];
    println!("| parallelism | wall | speed | speed-up vs 1 | CPU (all processes) |");
    println!("| --- | --- | --- | --- | --- |");
    for (&p, &(wall, cpu, written)) in parallelism.iter().zip(&best) {
        anyhow::ensure!(written == base_frames, "parallelism {p} wrote {written} frames, one worker {base_frames}");
        println!(
            "| {p} | {wall:.1} s | {:.2}x real time | {:.2}x | {cpu:.1} s |",
            duration_s as f64 / wall,
            base_wall / wall
        );
    }

    critical_path(&input, dir.path(), &size, &preset, duration_s, *parallelism.last().unwrap_or(&1))?;

    // What a job's render process costs: one second of call, in process and in a child.
    let small = dir.path().join("small");
    synth(&SynthSpec { participants: 2, duration_ms: 1000, width: 160, height: 90, ..SynthSpec::default() }, &small)?;
    let spec: pb::RenderJobSpec = serde_json::from_value(serde_json::json!({
        "sources": [{"rawArchive": small.display().to_string()}],
        "video": {"width": 320, "height": 180, "fps": 30, "preset": "ultrafast"},
        "outputs": [{"kind": "composite"}],
    }))?;
    let order = |n: usize| WorkOrder {
        job_id: format!("bench-{n}"),
        spec: spec.clone(),
        archive: None,
        output_dir: dir.path().join(format!("job-{n}")),
        work_dir: dir.path().join(format!("work-{n}")),
        stall_timeout_s: 60,
        max_call_span_h: 24,
        slice: None,
    };
    let tries = if smoke { 2 } else { 5 };
    let (mut in_process, mut in_child) = (f64::INFINITY, f64::INFINITY);
    // The first in-process render also starts GStreamer and the GPU here: not counted.
    let request = request_of(&order(0)).map_err(|f| anyhow::anyhow!("{}", f.message))?;
    render(&request, |_| {})?;
    for n in 0..tries {
        let request = request_of(&order(n)).map_err(|f| anyhow::anyhow!("{}", f.message))?;
        let ((), wall, _) = measure(|| Ok(render(&request, |_| {}).map(|_| ())?))?;
        in_process = in_process.min(wall);
        let exe = Path::new(env!("CARGO_BIN_EXE_tessera"));
        let ((), wall, _) = measure(|| {
            render_in_child(exe, &order(n), &CancelFlag::default(), None, |_| {})
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("{e:?}"))
        })?;
        in_child = in_child.min(wall);
    }
    println!("\n| one-second job | wall (best of {tries}) |");
    println!("| --- | --- |");
    println!("| rendered in this process | {:.0} ms |", in_process * 1000.0);
    println!("| rendered in a render process (`jobs.isolate`) | {:.0} ms |", in_child * 1000.0);
    println!("| a render process's cost | {:.0} ms |", (in_child - in_process) * 1000.0);
    Ok(())
}
