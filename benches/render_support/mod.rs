//! What the render benches share: the request for a composite MP4 of a recording.

use std::path::PathBuf;

use tessera::media::encode::EncodeSettings;
use tessera::outputs::{OutputSet, TrackFilter};
use tessera::render::staging::Staging;
use tessera::render::{CancelFlag, RenderInput, RenderRequest};

/// The composite MP4 (and nothing else) of the recording at `input`, into `output_dir`, with
/// the service's default layout, watchdog and limits.
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
    }
}
