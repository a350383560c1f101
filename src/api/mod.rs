//! The gRPC front: the RenderService (converts proto <-> domain and delegates to `job/`) and
//! its authentication (see the README for what is served). The contract itself is `proto`.

pub mod auth;
pub mod service;

/// The largest gRPC message the service takes: a PushMedia picture of the largest size the
/// compositor takes (RGBA at `gpu::MAX_SIDE_PX` squared), with a MiB for the message around it.
pub const MAX_MESSAGE_BYTES: usize =
    crate::gpu::MAX_SIDE_PX as usize * crate::gpu::MAX_SIDE_PX as usize * 4 + (1 << 20);
