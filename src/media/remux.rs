//! Remuxing a segment's RTP payload into Matroska without decoding: original codec,
//! resolution and timestamps kept. `appsrc -> depayloader -> [parser] ->
//! matroskamux -> filesink`.

use std::path::Path;
use std::sync::OnceLock;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::decode::{DecodeSpec, depayload_chain, feed_error};
use super::pipeline::{MediaError, OwnedPipeline, require_elements};
use super::rtp_feed::{feed, rtp_caps};
use crate::ingest::packets::PacketSource;

/// Writes the segment's media (`packets`), as sent, into a Matroska file at `output`.
pub fn remux_segment_to_mkv(
    spec: &DecodeSpec,
    packets: &mut dyn PacketSource,
    output: &Path,
) -> Result<(), MediaError> {
    let (chain, elements) = depayload_chain(spec.codec);
    require_elements(elements)?;
    require_elements(&["matroskamux", "filesink"])?;
    let description = format!(
        "appsrc name=src format=time is-live=false block=true max-bytes=1048576 \
         ! {chain} ! matroskamux ! filesink name=out"
    );
    let pipeline = OwnedPipeline::launch(&description, format!("remuxing {}", spec.rtpdump_path.display()))?;
    let src: gst_app::AppSrc = pipeline.element("src")?;
    let sink: gst::Element = pipeline.element("out")?;
    sink.set_property("location", output.to_string_lossy().as_ref());
    src.set_caps(Some(&rtp_caps(spec)));
    pipeline.play()?;
    let first = OnceLock::new();
    let fed = feed(spec, packets, &src, &first);
    pipeline.wait_eos(gst::ClockTime::from_seconds(600))?;
    fed.map_err(|err| feed_error(pipeline.what.clone(), err))
}
