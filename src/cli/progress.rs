//! Progress on stderr: a bar on a terminal, a plain line every 10 % otherwise; and the peak
//! memory figure of the summary line.

use std::io::IsTerminal;

use tessera::render::Progress;

/// Peak resident memory of this process (Linux `VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

pub struct ProgressReporter {
    bar: Option<indicatif::ProgressBar>,
    phase: &'static str,
    last_decile: u64,
}

impl ProgressReporter {
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {msg} {bar:40} {pos}/{len} (eta {eta})",
            ) {
                bar.set_style(style);
            }
            bar
        });
        ProgressReporter { bar, phase: "", last_decile: 0 }
    }

    pub fn update(&mut self, p: Progress) {
        if p.phase != self.phase {
            self.phase = p.phase;
            self.last_decile = 0;
            if let Some(bar) = &self.bar {
                bar.reset();
                bar.set_message(match p.phase {
                    "composite" => "composite frames",
                    _ => "individual files",
                });
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_length(p.total);
            bar.set_position(p.done);
            return;
        }
        let decile = p.done * 10 / p.total.max(1);
        if decile > self.last_decile {
            self.last_decile = decile;
            if p.phase == "composite" {
                eprintln!(
                    "progress: composite {}% ({:.1} / {:.1} s of media)",
                    decile * 10,
                    p.media_done_ms / 1000.0,
                    p.media_total_ms / 1000.0
                );
            } else {
                eprintln!("progress: {} {} / {} files", p.phase, p.done, p.total);
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
