//! Audio: the call mix and each participant's level before it. Pure code, no GStreamer.

pub mod level;
mod limiter;
mod mixer;
mod resample;

pub use limiter::Limiter;
pub use mixer::MixBuffer;
pub use resample::DriftResampler;
