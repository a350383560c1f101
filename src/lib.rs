//! tessera: turns the media of a video call into finished recordings.
//!
//! The data flow of a job, and where each part lives, is described in `ARCHITECTURE.md` of the
//! team's shared notes: ingest -> timeline -> media (decode) -> layout + gpu + audio ->
//! media (encode) -> output files.

pub mod api;
pub mod audio;
pub mod error;
pub mod gpu;
pub mod ingest;
pub mod job;
pub mod layout;
pub mod live;
pub mod media;
pub mod outputs;
pub mod proto;
pub mod render;
pub mod storage;
pub mod synth;
pub mod telemetry;
pub mod timeline;
