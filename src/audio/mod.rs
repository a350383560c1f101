//! Audio: the call mix. Pure code, no GStreamer.

mod limiter;
mod mixer;

pub use limiter::Limiter;
pub use mixer::MixBuffer;
