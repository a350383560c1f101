//! The `tessera` command line, one module per command family.

pub mod interrupt;
pub mod job_cmd;
pub mod layout_cmd;
pub mod list_tracks;
pub mod progress;
pub mod push_cmd;
pub mod push_track;
pub mod remote;
pub mod render_cmd;
pub mod serve_cmd;
pub mod stream;
pub mod synth_cmd;

use std::path::PathBuf;

use clap::Args;
use tessera::ingest::sdp::Codec;

/// Where the raw recording comes from, as `stream-cli video raw-recording` takes it.
#[derive(Args, Debug, Clone)]
pub struct RawInput {
    /// A raw recording archive (.zip or .tar.gz).
    #[arg(long)]
    pub input_file: Option<PathBuf>,
    /// A raw recording extracted into a directory (never written to).
    #[arg(long)]
    pub input_dir: Option<PathBuf>,
    /// An `s3://bucket/key` or presigned `https://` URL of the archive (also `gs://`,
    /// `sftp://`). S3 credentials come from the standard AWS chain: AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL (S3-compatible stores), profiles.
    #[arg(long)]
    pub input_s3: Option<String>,
    /// Download cache for --input-s3, revalidated by ETag (default: ~/.cache/tessera).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Debug logging on stderr.
    #[arg(long)]
    pub verbose: bool,
    /// Fail the render when it makes no progress for this many seconds.
    #[arg(long, default_value_t = tessera::render::watchdog::DEFAULT_STALL_TIMEOUT_S)]
    pub stall_timeout_s: u64,
    /// Refuse a call whose media lies further than this many hours from its start.
    #[arg(long, default_value_t = tessera::render::DEFAULT_MAX_CALL_SPAN_H)]
    pub max_call_span_h: u64,
}

impl RawInput {
    /// The one input given, checked as `stream-cli` checks it; a remote one is brought into
    /// `work_dir` (through the download cache).
    pub fn path(&self, work_dir: &std::path::Path, cancel: &tessera::render::CancelFlag) -> anyhow::Result<PathBuf> {
        let given = [self.input_file.is_some(), self.input_dir.is_some(), self.input_s3.is_some()];
        match given.iter().filter(|g| **g).count() {
            0 => anyhow::bail!("one of --input-file, --input-dir or --input-s3 is required"),
            1 => {}
            _ => anyhow::bail!("only one of --input-file, --input-dir or --input-s3 can be given"),
        }
        if let Some(url) = &self.input_s3 {
            let cache = remote::cache_dir(self.cache_dir.as_deref());
            return remote::fetch_source(url, &[], &cache, work_dir, cancel);
        }
        Ok(self.input_file.clone().or_else(|| self.input_dir.clone()).unwrap_or_default())
    }

    /// Turns on debug logging when --verbose was given.
    pub fn init_logging(&self) {
        tessera::telemetry::init(if self.verbose { "debug" } else { "warn" });
    }
}

pub fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(|| format!("`{text}` is not WIDTHxHEIGHT"))?;
    let parse = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("`{text}` is not WIDTHxHEIGHT"));
    Ok((parse(w)?, parse(h)?))
}

pub fn parse_codec(text: &str) -> Result<Codec, String> {
    match text.to_ascii_lowercase().as_str() {
        "vp8" => Ok(Codec::Vp8),
        "vp9" => Ok(Codec::Vp9),
        "h264" => Ok(Codec::H264),
        other => Err(format!("unknown video codec `{other}` (expected vp8, vp9 or h264)")),
    }
}
