//! The gRPC contract compiled from `proto/tessera/v1/`: generated types and service traits of
//! `tessera.v1`, with serde following the proto3 JSON mapping. At the bottom of the crate:
//! every module may import it.

#![allow(clippy::all, clippy::pedantic, reason = "generated code")]

tonic::include_proto!("tessera.v1");
// serde for every message, following the proto3 JSON mapping.
include!(concat!(env!("OUT_DIR"), "/tessera.v1.serde.rs"));

/// The encoded file descriptor set, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("tessera_descriptor");
