//! Decoding a media file (Matroska, WebM, MP4, Ogg, ...): what it holds (probed with
//! GStreamer's discoverer), and one medium of it decoded through
//! `filesrc -> decodebin -> convert -> appsink` to the same frames and chunks as a recorded
//! segment (I420 pictures, 48 kHz stereo f32). The other medium of the file is not decoded:
//! decodebin stops at its encoded stream, which goes to a fakesink.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_pbutils as gst_pbutils;

use super::decode::{Decoded, convert, pull_sample};
use super::pipeline::{MediaError, OwnedPipeline, require_elements};
use crate::ingest::sdp::MediaKind;

/// Longest a file may take to be probed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a media file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FileStreams {
    pub audio: bool,
    pub video: bool,
    pub duration_ms: f64,
}

/// Probes `path`: which media it holds and how long it is. A file GStreamer cannot read is the
/// caller's fault ([`MediaError::Data`]).
pub fn probe(path: &Path) -> Result<FileStreams, MediaError> {
    super::init()?;
    let what = format!("probing {}", path.display());
    let bad = |reason: String| MediaError::Data { what: what.clone(), reason };
    if !path.is_file() {
        return Err(bad("no such file".into()));
    }
    let discoverer = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(PROBE_TIMEOUT.as_secs()))
        .map_err(|e| MediaError::Internal { what: what.clone(), reason: e.to_string() })?;
    let uri = glib::filename_to_uri(path, None)
        .map_err(|e| MediaError::Internal { what: what.clone(), reason: e.to_string() })?;
    let info = discoverer.discover_uri(&uri).map_err(|e| bad(e.to_string()))?;
    let streams = FileStreams {
        audio: !info.audio_streams().is_empty(),
        video: !info.video_streams().is_empty(),
        duration_ms: info.duration().map_or(0.0, |d| d.nseconds() as f64 / 1e6),
    };
    if !streams.audio && !streams.video {
        return Err(bad("no audio or video stream".into()));
    }
    Ok(streams)
}

/// A running decoder for one medium of a file.
#[derive(Debug)]
pub struct FileDecoder {
    pipeline: OwnedPipeline,
    sink: gst_app::AppSink,
    media: MediaKind,
    done: bool,
}

fn prefix(media: MediaKind) -> &'static str {
    match media {
        MediaKind::Audio => "audio/",
        MediaKind::Video => "video/",
    }
}

/// Whether decodebin should stop at a stream with `caps`: an elementary stream of the medium
/// not wanted (a container is always opened, whatever its caps' name says).
fn is_unwanted_elementary(caps: &gst::CapsRef, wanted: MediaKind) -> bool {
    let Some(name) = caps.structure(0).map(|s| s.name().to_string()) else { return false };
    let other = match wanted {
        MediaKind::Audio => MediaKind::Video,
        MediaKind::Video => MediaKind::Audio,
    };
    if !name.starts_with(prefix(other)) {
        return false;
    }
    let demuxers = gst::ElementFactory::factories_with_type(gst::ElementFactoryType::DEMUXER, gst::Rank::MARGINAL);
    !demuxers.iter().any(|factory| factory.can_sink_any_caps(caps))
}

impl FileDecoder {
    /// Starts decoding the `media` of the file at `path`; frames and chunks carry their time
    /// since the file's start.
    pub fn start(path: &Path, media: MediaKind) -> Result<FileDecoder, MediaError> {
        let convert = match media {
            MediaKind::Video => "videoconvert name=convert ! video/x-raw,format=I420",
            MediaKind::Audio => {
                "audioconvert name=convert ! audioresample \
                 ! audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved"
            }
        };
        require_elements(&["filesrc", "decodebin", "fakesink"])?;
        // decodebin's pads appear once it knows the file; the wanted one is linked to `convert`.
        let description = format!(
            "filesrc name=src ! decodebin name=dec \
             {convert} ! appsink name=sink sync=false max-buffers=8 drop=false"
        );
        let what = format!("decoding the {} of {}", prefix(media).trim_end_matches('/'), path.display());
        let pipeline = OwnedPipeline::launch(&description, what)?;
        let src: gst::Element = pipeline.element("src")?;
        src.set_property("location", path.to_string_lossy().as_ref());
        let decodebin: gst::Element = pipeline.element("dec")?;
        let sink: gst_app::AppSink = pipeline.element("sink")?;
        if media == MediaKind::Video {
            super::decode::accept_video_meta(&sink);
        }
        let first_convert: gst::Element = pipeline.element("convert")?;
        let target = first_convert.static_pad("sink").ok_or_else(|| MediaError::Build {
            description: description.clone(),
            reason: "the converter has no sink pad".into(),
        })?;
        decodebin.connect("autoplug-continue", false, move |args| {
            let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
            let go_on = caps.is_none_or(|caps| !is_unwanted_elementary(&caps, media));
            Some(go_on.to_value())
        });
        let linked = Arc::new(Mutex::new(false));
        let bin = pipeline.pipeline.clone();
        decodebin.connect_pad_added(move |_, pad| {
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            let wanted = caps.structure(0).is_some_and(|s| s.name().starts_with(prefix(media)))
                && caps.structure(0).is_some_and(|s| s.name().ends_with("x-raw"));
            let mut done = linked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if wanted && !*done && pad.link(&target).is_ok() {
                *done = true;
                return;
            }
            // Another stream (or a second one of the medium): drained, not decoded.
            if let Ok(fake) = gst::ElementFactory::make("fakesink").property("sync", false).build()
                && bin.add(&fake).is_ok()
            {
                let _ = fake.sync_state_with_parent();
                if let Some(sink_pad) = fake.static_pad("sink") {
                    let _ = pad.link(&sink_pad);
                }
            }
        });
        pipeline.play()?;
        Ok(FileDecoder { pipeline, sink, media, done: false })
    }

    /// The next decoded frame or chunk; `Ok(None)` once the file is exhausted.
    pub fn pull(&mut self) -> Result<Option<Decoded>, MediaError> {
        if self.done {
            return Ok(None);
        }
        match pull_sample(&self.pipeline, &self.sink, || Ok(())) {
            Ok(Some(sample)) => convert(&sample, self.media, false, &self.pipeline.what).map(Some),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(err) => {
                self.done = true;
                Err(err)
            }
        }
    }
}
