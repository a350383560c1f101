//! GStreamer: decoding RTP segments to raw frames and samples, encoding the composite.
//! Knows nothing of layouts.

pub mod black_frame;
pub mod decode;
pub mod encode;
pub mod encoders;
pub mod file_decode;
pub mod frame_pool;
pub mod interrupt;
pub mod join;
pub mod mux;
pub mod opus_fill;
pub mod pipeline;
pub mod remux;
mod rtp_feed;

pub use interrupt::{Interrupt, StopReason};
pub use pipeline::{MediaError, init};

/// What a stream carries (codec, size, parameters), as GStreamer describes it.
pub type Caps = gstreamer::Caps;
