//! Writing already-encoded streams into one container file without re-encoding:
//! `appsrc (one per stream) -> queue -> muxer -> filesink`. Each stream is pushed from its own
//! thread; the muxer interleaves them by timestamp.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::pipeline::{MediaError, OwnedPipeline, require_elements};
use crate::ingest::sdp::MediaKind;

/// Containers that take encoded frames as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Matroska,
    WebM,
}

impl Container {
    fn muxer(self) -> &'static str {
        match self {
            Container::Matroska => "matroskamux",
            Container::WebM => "webmmux",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Container::Matroska => "mkv",
            Container::WebM => "webm",
        }
    }
}

/// A container file being written from encoded streams.
#[derive(Debug)]
pub struct FileMuxer {
    pipeline: OwnedPipeline,
    inputs: Vec<gst_app::AppSrc>,
}

/// One input stream of a [`FileMuxer`], movable to the thread that feeds it.
#[derive(Debug, Clone)]
pub struct MuxInput {
    src: gst_app::AppSrc,
    what: String,
    caps: Option<gst::Caps>,
    last_pts_ns: Option<u64>,
}

impl FileMuxer {
    /// Starts a muxer writing `path` with one input per entry of `streams`.
    pub fn start(path: &Path, container: Container, streams: &[MediaKind]) -> Result<FileMuxer, MediaError> {
        require_elements(&["appsrc", "queue", container.muxer(), "filesink"])?;
        let mut description = format!("{} name=mux ! filesink name=out ", container.muxer());
        for (i, kind) in streams.iter().enumerate() {
            let pad = match kind {
                MediaKind::Audio => "audio_%u",
                MediaKind::Video => "video_%u",
            };
            description.push_str(&format!(
                "appsrc name=s{i} format=time is-live=false block=true max-bytes=4194304 ! mux.{pad} "
            ));
        }
        let pipeline = OwnedPipeline::launch(&description, format!("writing {}", path.display()))?;
        let sink: gst::Element = pipeline.element("out")?;
        sink.set_property("location", path.to_string_lossy().as_ref());
        let inputs = (0..streams.len()).map(|i| pipeline.element(&format!("s{i}"))).collect::<Result<Vec<_>, _>>()?;
        pipeline.play()?;
        Ok(FileMuxer { pipeline, inputs })
    }

    /// The inputs, in stream order, each to be fed and ended by one thread.
    pub fn inputs(&self) -> Vec<MuxInput> {
        self.inputs
            .iter()
            .map(|src| MuxInput { src: src.clone(), what: self.pipeline.what.clone(), caps: None, last_pts_ns: None })
            .collect()
    }

    /// The first error the pipeline reported, if any.
    pub fn error(&self) -> Option<MediaError> {
        self.pipeline.first_error()
    }

    /// `Err(Interrupted)` once the interrupt the muxer was started under is stopped.
    pub fn check_interrupt(&self) -> Result<(), MediaError> {
        self.pipeline.check_interrupt()
    }

    /// Stops the pipeline: every blocked push returns.
    pub fn abort(&self) {
        let _ = self.pipeline.pipeline.set_state(gst::State::Null);
    }

    /// Waits until every input has ended and the file is complete.
    pub fn finish(self) -> Result<(), MediaError> {
        self.pipeline.wait_eos(gst::ClockTime::from_seconds(600))
    }
}

impl MuxInput {
    /// Sets the stream's caps from its first frame. Containers take them once: a later change
    /// (a new resolution, new H.264 parameter sets) travels in-band, in the keyframes and the
    /// parameter sets the parser repeats before them.
    pub fn use_caps(&mut self, caps: &gst::Caps) {
        if self.caps.is_none() {
            self.src.set_caps(Some(caps));
            self.caps = Some(caps.clone());
        }
    }

    /// Pushes a frame made of `bytes` with the stream's current caps (see [`MuxInput::use_caps`]).
    pub fn push_bytes(
        &mut self,
        bytes: &'static [u8],
        pts_ms: f64,
        duration_ms: Option<f64>,
    ) -> Result<(), MediaError> {
        self.push_buffer(gst::Buffer::from_slice(bytes), pts_ms, duration_ms)
    }

    /// Pushes one frame at `pts_ms` in the file with the stream's current caps. Timestamps never
    /// go backwards: a frame that would is placed just after the previous one.
    pub fn push_buffer(
        &mut self,
        buffer: gst::Buffer,
        pts_ms: f64,
        duration_ms: Option<f64>,
    ) -> Result<(), MediaError> {
        if self.caps.is_none() {
            return Err(MediaError::Internal {
                what: self.what.clone(),
                reason: "frame pushed before any caps".into(),
            });
        }
        let mut pts_ns = (pts_ms.max(0.0) * 1e6).round() as u64;
        if let Some(last) = self.last_pts_ns {
            pts_ns = pts_ns.max(last + 1);
        }
        self.last_pts_ns = Some(pts_ns);
        let mut buffer = buffer;
        {
            let b = buffer.make_mut();
            b.set_pts(gst::ClockTime::from_nseconds(pts_ns));
            b.set_dts(gst::ClockTime::NONE);
            b.set_duration(duration_ms.map(|d| gst::ClockTime::from_nseconds((d.max(0.0) * 1e6).round() as u64)));
        }
        self.src.push_buffer(buffer).map(|_| ()).map_err(|flow| MediaError::Data {
            what: self.what.clone(),
            reason: format!("muxer refused data: {flow:?}"),
        })
    }

    /// Ends this stream.
    pub fn end(&self) {
        let _ = self.src.end_of_stream();
    }
}
