//! Audio: the call mix. Pure code, no GStreamer.

mod limiter;
mod mixer;
mod resample;

pub use limiter::Limiter;
pub use mixer::MixBuffer;
pub use resample::DriftResampler;
