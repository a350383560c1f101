//! The gRPC side: the contract compiled from `proto/tessera/v1/`, the RenderService front and
//! its authentication (see the README for what is served).

pub mod auth;
pub mod service;

/// Generated types and service traits of `tessera.v1`.
pub mod pb {
    #![allow(clippy::all, reason = "generated code")]
    tonic::include_proto!("tessera.v1");
    // serde for every message, following the proto3 JSON mapping.
    include!(concat!(env!("OUT_DIR"), "/tessera.v1.serde.rs"));

    /// The encoded file descriptor set, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("tessera_descriptor");
}
