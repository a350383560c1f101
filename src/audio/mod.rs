//! Audio: the call mix, each participant's level before it and the active speaker those
//! levels show. Pure code, no GStreamer.

pub mod level;
mod limiter;
mod mixer;
mod resample;
pub mod speaker;

pub use limiter::Limiter;
pub use mixer::MixBuffer;
pub use resample::DriftResampler;
