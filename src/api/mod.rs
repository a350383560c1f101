//! The gRPC front: the RenderService (converts proto <-> domain and delegates to `job/`) and
//! its authentication (see the README for what is served). The contract itself is `proto`.

pub mod auth;
pub mod service;
