//! What the render benches share: the request for a composite MP4 of a recording, and the
//! process's CPU seconds.

use std::path::PathBuf;

use tessera::media::encode::EncodeSettings;
use tessera::outputs::{OutputSet, TrackFilter};
use tessera::render::staging::Staging;
use tessera::render::{CancelFlag, RenderInput, RenderRequest};

/// The composite MP4 (and nothing else) of the recording at `input`, into `output_dir`, with
/// the service's default layout, watchdog and limits.
#[allow(dead_code, reason = "each bench includes this module; the parallel bench runs the command")]
pub fn composite_request(input: PathBuf, output_dir: PathBuf, encode: EncodeSettings) -> RenderRequest {
    RenderRequest {
        input: RenderInput::Archive(input),
        output_dir,
        work_dir: std::env::temp_dir(),
        staging: Staging::default(),
        encode,
        outputs: OutputSet::composite(),
        filter: TrackFilter::default(),
        cancel: CancelFlag::default(),
        stall_timeout_s: tessera::render::watchdog::DEFAULT_STALL_TIMEOUT_S,
        max_call_span_h: tessera::render::DEFAULT_MAX_CALL_SPAN_H,
        on_file: None,
        parallel: None,
    }
}

#[allow(dead_code, reason = "each bench includes this module; not every one has knobs")]
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Wall and CPU seconds of `work` (this process and its waited-for children together).
#[allow(dead_code, reason = "each bench includes this module; the memory bench counts no CPU")]
pub fn measure<T>(work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, f64, f64)> {
    let (own, children) = cpu_s();
    let started = std::time::Instant::now();
    let value = work()?;
    let wall = started.elapsed().as_secs_f64();
    let (own_after, children_after) = cpu_s();
    Ok((value, wall, (own_after - own) + (children_after - children)))
}

/// CPU seconds (user + system) of this process and of its waited-for children, from
/// /proc/self/stat (clock ticks of 1/100 s).
#[allow(dead_code, reason = "each bench includes this module; the memory bench counts no CPU")]
pub fn cpu_s() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default();
    // After the name: state(0) ... utime(11) stime(12) cutime(13) cstime(14); the state is
    // not a number and was filtered out, so the indices shift by one.
    let at = |i: usize| fields.get(i - 1).copied().unwrap_or(0.0) / 100.0;
    (at(11) + at(12), at(13) + at(14))
}
