//! Live composition: media pushed by a sender that already decodes each participant
//! (`PushMedia`), checked and turned into the pictures and samples the render composes.
//!
//! - `frame`: a pushed picture (I420, NV12 or RGBA, any strides, rotated) to an upright I420
//!   picture.
//! - `pcm`: a pushed PCM chunk (S16LE or F32LE, 1 to 8 channels) to stereo f32.
//! - `session`: one PushMedia stream (a track of a live job): hello, checks, the call clock,
//!   and the bounded queue that paces the sender.

pub mod frame;
pub mod pcm;
pub mod session;

/// What is wrong with pushed media: the sender's fault, named by field and value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LiveError {
    #[error("video frame: {field} {reason}")]
    BadFrame { field: String, reason: String },
    #[error("audio chunk: {field} {reason}")]
    BadAudio { field: String, reason: String },
}
