//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `warn` for the CLI); the
//! server logs JSON lines, each with its span's fields (the job id inside a job).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Text lines; colours only on a terminal.
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// One JSON object per line, with the current span's fields and the span list.
pub fn init_json(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
