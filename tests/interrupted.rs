//! Interrupted runs leave nothing behind: a CLI render stopped by SIGINT or SIGTERM removes its
//! partial files and its extraction directory, and a server started after a crash sweeps the
//! work directories the crashed one left.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::server::*;
use support::*;
use tessera::synth::{SynthSpec, synth};

/// Every file and directory under `dir`, recursively.
fn everything_in(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for path in files_in(&folder) {
            if path.is_dir() {
                pending.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

fn named(paths: &[PathBuf], test: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    paths.iter().filter(|p| p.file_name().is_some_and(|n| test(&n.to_string_lossy()))).cloned().collect()
}

/// Starts a composite of a zipped call with a private TMPDIR, sends `signal` once a partial
/// file is being written, and checks the run leaves no partial file and no extraction.
fn interrupt_a_render(signal: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call.zip");
    let spec = SynthSpec { participants: 2, duration_ms: 30_000, width: 160, height: 90, ..SynthSpec::default() };
    synth(&spec, &input).expect("synth");
    let (tmp, out) = (dir.path().join("tmp"), dir.path().join("out"));
    std::fs::create_dir_all(&tmp).expect("tmp");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["raw", "composite", "--input-file"])
        .arg(&input)
        .arg("--output")
        .arg(&out)
        .args(["--size", "640x360", "--audio-only", "mp3"])
        .env("TMPDIR", &tmp)
        .env("WGPU_BACKEND", std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "vulkan".into()))
        .env("XDG_RUNTIME_DIR", std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "/tmp".into()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tessera");
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("the render ended ({status}) before it could be interrupted");
        }
        if !named(&everything_in(&out), |n| n.ends_with(".partial")).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let extracting = named(&everything_in(&tmp), |n| n.starts_with("tessera-ingest-"));
    assert!(!extracting.is_empty(), "the archive is extracted under TMPDIR: {:?}", everything_in(&tmp));
    let sent = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().expect("kill");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "tessera did not stop after SIG{signal}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::io::read_to_string(child.stderr.take().expect("stderr")).expect("stderr");
    assert!(!status.success(), "an interrupted render fails: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let left = everything_in(&out);
    assert!(named(&left, |n| n.ends_with(".partial")).is_empty(), "partial files left: {left:?}");
    let left = everything_in(&tmp);
    assert!(named(&left, |n| n.starts_with("tessera-ingest-")).is_empty(), "extraction left: {left:?}");
}

#[test]
fn sigint_mid_render_leaves_no_partial_file_and_no_extraction() {
    interrupt_a_render("INT");
}

#[test]
fn sigterm_mid_render_leaves_no_partial_file_and_no_extraction() {
    interrupt_a_render("TERM");
}

#[test]
fn a_restarted_server_sweeps_the_work_a_killed_one_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server_dir = dir.path().join("server");
    let stale = server_dir.join("data/work/0b7f2f4e-0000-4000-8000-00000000dead");
    for file in ["extract-x1Yz/alice/alice_audio_0.rtpdump", "out/.composite.mp4.partial", "source.archive"] {
        let path = stale.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, b"left by a killed server").expect("write");
    }
    let server = Server::start(&server_dir, &ServerOptions::default());
    let work = server.data_dir().join("work");
    assert!(everything_in(&work).is_empty(), "stale work left: {:?}\n{}", everything_in(&work), server.logs());
}
