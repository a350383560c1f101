//! Shared GStreamer plumbing: initialisation, pipelines built from a description, bus errors,
//! and shutting a pipeline down when its owner goes away.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::interrupt::{Interrupt, StopReason};
use crate::error::{Classify, Fault};

/// How often a wait on a pipeline looks at its bus and its interrupt.
const POLL: Duration = Duration::from_millis(100);
/// How often a push waiting for room in an appsrc looks again.
const ROOM_POLL: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("GStreamer could not start: {0}")]
    Init(String),
    #[error("GStreamer element `{element}` is missing (install the plugin set that provides it)")]
    MissingElement { element: String },
    #[error("building the pipeline `{description}` failed: {reason}")]
    Build { description: String, reason: String },
    #[error("{what}: GStreamer error from {element}: {message}{debug}")]
    Stream {
        what: String,
        element: String,
        message: String,
        debug: String,
        /// GStreamer says the stream's data is at fault (a decode, demux or format error),
        /// not the machine or a plugin.
        bad_data: bool,
    },
    #[error("{what}: pipeline state change to {state} failed")]
    StateChange { what: String, state: &'static str },
    #[error("no working {codec} encoder (hardware: {hardware}; tried: {tried})")]
    NoEncoder {
        codec: &'static str,
        hardware: String,
        tried: String,
        /// The job required a hardware encoder (its choice, not our failure).
        hardware_required: bool,
    },
    #[error("invalid {field} `{value}`: {reason}")]
    InvalidSetting { field: &'static str, value: String, reason: String },
    /// The media itself cannot be read or decoded: the recording's fault.
    #[error("{what}: {reason}")]
    Data { what: String, reason: String },
    /// Something of ours failed around the media: a thread that could not start or panicked,
    /// an I/O error, a pipeline that misbehaves.
    #[error("{what}: {reason}")]
    Internal { what: String, reason: String },
    /// A wait on the pipeline was stopped from outside: a cancel, or a stall (see
    /// [`Interrupt`]).
    #[error("{what}: {reason}")]
    Interrupted { what: String, reason: StopReason },
}

impl Classify for MediaError {
    fn fault(&self) -> Fault {
        match self {
            MediaError::Data { .. } | MediaError::Stream { bad_data: true, .. } => Fault::BadInput("undecodable_media"),
            MediaError::InvalidSetting { .. } => Fault::BadInput("invalid_argument"),
            MediaError::NoEncoder { hardware_required: true, .. } => Fault::BadInput("hardware_unavailable"),
            MediaError::Interrupted { reason: StopReason::Cancelled, .. } => Fault::Internal("cancelled"),
            MediaError::Interrupted { reason: StopReason::Stalled { .. }, .. } => Fault::Internal("stalled"),
            MediaError::Init(_)
            | MediaError::MissingElement { .. }
            | MediaError::Build { .. }
            | MediaError::Stream { .. }
            | MediaError::StateChange { .. }
            | MediaError::NoEncoder { .. }
            | MediaError::Internal { .. } => Fault::Internal("media"),
        }
    }
}

/// Initialises GStreamer once; later calls are cheap.
pub fn init() -> Result<(), MediaError> {
    gst::init().map_err(|e| MediaError::Init(e.to_string()))
}

/// Fails with [`MediaError::MissingElement`] when an element factory is not installed.
pub fn require_elements(names: &[&str]) -> Result<(), MediaError> {
    init()?;
    for name in names {
        if gst::ElementFactory::find(name).is_none() {
            return Err(MediaError::MissingElement { element: (*name).to_owned() });
        }
    }
    Ok(())
}

/// A pipeline that is set to NULL when dropped, with a human description for errors, and the
/// interrupt of the thread that launched it (which ends its waits).
#[derive(Debug)]
pub struct OwnedPipeline {
    pub pipeline: gst::Pipeline,
    pub what: String,
    /// End of stream was taken off the bus while looking for errors.
    eos_seen: AtomicBool,
    interrupt: Interrupt,
}

impl OwnedPipeline {
    /// Builds a pipeline from a `gst-launch` style description.
    pub fn launch(description: &str, what: String) -> Result<OwnedPipeline, MediaError> {
        init()?;
        let element = gst::parse::launch(description)
            .map_err(|e| MediaError::Build { description: description.to_owned(), reason: e.to_string() })?;
        let pipeline = element.downcast::<gst::Pipeline>().map_err(|_| MediaError::Build {
            description: description.to_owned(),
            reason: "the description did not produce a pipeline".to_owned(),
        })?;
        Ok(OwnedPipeline { pipeline, what, eos_seen: AtomicBool::new(false), interrupt: Interrupt::current() })
    }

    /// `Err(Interrupted)` once this pipeline's interrupt is stopped.
    pub fn check_interrupt(&self) -> Result<(), MediaError> {
        self.interrupt.check(&self.what)
    }

    /// Notes that data moved through this pipeline.
    pub fn touch(&self) {
        self.interrupt.touch();
    }

    /// Pushes `buffer` into `src` once `src` has room, never blocking for good: a pipeline
    /// error (an element downstream failed, so the queue never drains) or the interrupt ends the
    /// wait. `src` must have a byte limit, and this must be its only producer.
    pub fn push(&self, src: &gst_app::AppSrc, buffer: gst::Buffer) -> Result<(), MediaError> {
        self.wait_for_room(src)?;
        let pushed = src.push_buffer(buffer);
        self.pushed(pushed)
    }

    /// [`OwnedPipeline::push`] for a sample: its buffer with its caps and segment (the appsrc
    /// passes a new segment on when `handle-segment-change` is set).
    pub fn push_sample(&self, src: &gst_app::AppSrc, sample: &gst::Sample) -> Result<(), MediaError> {
        self.wait_for_room(src)?;
        let pushed = src.push_sample(sample);
        self.pushed(pushed)
    }

    fn wait_for_room(&self, src: &gst_app::AppSrc) -> Result<(), MediaError> {
        let max_bytes = src.max_bytes();
        loop {
            if let Some(err) = self.first_error() {
                return Err(err);
            }
            self.check_interrupt()?;
            if max_bytes == 0 || src.current_level_bytes() < max_bytes {
                return Ok(());
            }
            std::thread::sleep(ROOM_POLL);
        }
    }

    fn pushed(&self, result: Result<gst::FlowSuccess, gst::FlowError>) -> Result<(), MediaError> {
        result.map_err(|flow| {
            self.first_error().unwrap_or_else(|| MediaError::Internal {
                what: self.what.clone(),
                reason: format!("the pipeline refused data: {flow:?}"),
            })
        })?;
        self.touch();
        Ok(())
    }

    /// The element called `name`, cast to `T`.
    pub fn element<T: IsA<gst::Element>>(&self, name: &str) -> Result<T, MediaError> {
        self.pipeline.by_name(name).and_then(|e| e.downcast::<T>().ok()).ok_or_else(|| MediaError::Build {
            description: self.what.clone(),
            reason: format!("no element named `{name}` of the expected type"),
        })
    }

    pub fn play(&self) -> Result<(), MediaError> {
        self.pipeline.set_state(gst::State::Playing).map(|_| ()).map_err(|_| {
            self.first_error().unwrap_or(MediaError::StateChange { what: self.what.clone(), state: "PLAYING" })
        })
    }

    /// The first error message waiting on the bus, if any. Other messages are dropped, except
    /// that an end of stream is remembered for [`OwnedPipeline::wait_eos`].
    pub fn first_error(&self) -> Option<MediaError> {
        let bus = self.pipeline.bus()?;
        while let Some(message) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Eos]) {
            match message.view() {
                gst::MessageView::Error(err) => return Some(self.stream_error(err)),
                _ => self.eos_seen.store(true, Ordering::SeqCst),
            }
        }
        None
    }

    /// Waits for end of stream; returns the first error instead if one comes, and gives up
    /// after `timeout` or once the interrupt is stopped.
    pub fn wait_eos(&self, timeout: gst::ClockTime) -> Result<(), MediaError> {
        if self.eos_seen.load(Ordering::SeqCst) {
            return self.first_error().map_or(Ok(()), Err);
        }
        let bus = self.pipeline.bus().ok_or_else(|| MediaError::Internal {
            what: self.what.clone(),
            reason: "pipeline has no bus".to_owned(),
        })?;
        let started = Instant::now();
        let poll = gst::ClockTime::from_nseconds(u64::try_from(POLL.as_nanos()).unwrap_or(u64::MAX));
        loop {
            if let Some(message) = bus.timed_pop_filtered(poll, &[gst::MessageType::Eos, gst::MessageType::Error]) {
                return match message.view() {
                    gst::MessageView::Error(err) => Err(self.stream_error(err)),
                    _ => Ok(()),
                };
            }
            self.check_interrupt()?;
            if started.elapsed() >= Duration::from_nanos(timeout.nseconds()) {
                return Err(MediaError::Internal {
                    what: self.what.clone(),
                    reason: format!("no end of stream after {} s", timeout.seconds()),
                });
            }
        }
    }

    fn stream_error(&self, err: &gst::message::Error) -> MediaError {
        MediaError::Stream {
            what: self.what.clone(),
            element: err.src().map(|s| s.path_string().to_string()).unwrap_or_else(|| "?".into()),
            message: err.error().to_string(),
            debug: err.debug().map(|d| format!(" ({d})")).unwrap_or_default(),
            bad_data: matches!(
                err.error().kind::<gst::StreamError>(),
                Some(gst::StreamError::Decode | gst::StreamError::Demux | gst::StreamError::Format)
            ),
        }
    }
}

impl Drop for OwnedPipeline {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
