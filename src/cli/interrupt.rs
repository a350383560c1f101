//! Ctrl-C and SIGTERM for the commands that write files. The first signal cancels the render,
//! which stops between two frames and removes its partial files and its extraction as it
//! unwinds; the command then exits with 128 + the signal's number. Work that does not stop
//! within a few seconds (an extraction, a scan), or a second signal, gets the same cleanup at
//! once: the command's own temporary directory and the hidden partial files in its output
//! directory are removed, and the process exits.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tessera::render::CancelFlag;
use tokio::signal::unix::{SignalKind, signal};

/// How long a cancelled render gets to stop by itself before the cleanup is forced.
const GRACE: Duration = Duration::from_secs(5);
/// Deepest folder under the output directory searched for partial files.
const MAX_OUTPUT_DEPTH: usize = 4;

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// The signal that stopped this process's command, 0 while none has.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The signal (its number and name) received while the command ran, if one was.
pub fn received() -> Option<(i32, &'static str)> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        SIGINT => Some((SIGINT, "SIGINT")),
        other => Some((other, "SIGTERM")),
    }
}

/// What a command that writes files runs with: the cancel flag its render watches, and a
/// temporary directory of its own (`tessera-ingest-*`) where archives are extracted and
/// sources downloaded, removed when this value is dropped or on a signal.
pub struct Guarded {
    pub cancel: CancelFlag,
    pub work_dir: tempfile::TempDir,
}

/// Sets up the signal handling of a command that writes into `output_dir` (if any).
pub fn guard(output_dir: Option<&Path>) -> anyhow::Result<Guarded> {
    let work_dir =
        tempfile::Builder::new().prefix("tessera-ingest-").tempdir().context("creating a temporary directory")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting signals")?;
    let (mut interrupt, mut terminate) = {
        let _entered = runtime.enter();
        let interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        (interrupt, signal(SignalKind::terminate()).context("listening for SIGTERM")?)
    };
    let cancel = CancelFlag::default();
    let flag = cancel.clone();
    let cleanup = Cleanup { work_dir: work_dir.path().to_path_buf(), output_dir: output_dir.map(Path::to_path_buf) };
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                let number = tokio::select! {
                    _ = interrupt.recv() => SIGINT,
                    _ = terminate.recv() => SIGTERM,
                };
                RECEIVED.store(number, Ordering::SeqCst);
                let name = received().map_or("signal", |(_, name)| name);
                eprintln!("\n{name}: stopping and removing partial files (send it again to stop at once)");
                flag.cancel();
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                    () = tokio::time::sleep(GRACE) => {}
                }
                cleanup.run();
                eprintln!("{name}: stopped");
                std::process::exit(128 + number);
            });
        })
        .context("starting the signal thread")?;
    Ok(Guarded { cancel, work_dir })
}

/// What a forced stop removes.
struct Cleanup {
    work_dir: PathBuf,
    output_dir: Option<PathBuf>,
}

impl Cleanup {
    fn run(&self) {
        let _ = std::fs::remove_dir_all(&self.work_dir);
        let mut pending: Vec<(PathBuf, usize)> = self.output_dir.iter().map(|d| (d.clone(), 0)).collect();
        while let Some((dir, depth)) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                match entry.file_type() {
                    Ok(kind) if kind.is_dir() && depth < MAX_OUTPUT_DEPTH => pending.push((path, depth + 1)),
                    Ok(kind) if kind.is_file() && name.starts_with('.') && name.ends_with(".partial") => {
                        let _ = std::fs::remove_file(&path);
                    }
                    _ => {}
                }
            }
        }
    }
}
