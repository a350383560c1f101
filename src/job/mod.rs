//! Render jobs, all of their system in one place: the spec a control plane sends (over gRPC,
//! or as a JSON file to `tessera render`) validated into what the renderer runs, the life of a
//! job (a pure state machine), the store that keeps jobs, events and leases ([`store::JobStore`],
//! SQLite behind it), events and webhooks, the scheduler and the runner, metrics and the node's
//! configuration. The gRPC front (`api/`) only converts and delegates here.

pub mod admission;
pub mod capacity;
pub mod config;
pub mod destination;
pub mod events;
pub mod limits;
pub mod live_control;
pub mod metrics;
pub mod postgres;
pub mod runner;
pub mod scheduler;
pub mod slice_worker;
pub mod spec;
pub mod sqlite;
pub mod staging;
pub mod state;
pub mod store;
pub mod uploader;
pub mod webhook;
pub mod worker;

use std::path::Path;

use crate::proto as pb;

/// Reading a job file failed.
#[derive(Debug, thiserror::Error)]
pub enum JobFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a CreateRenderJobRequest in proto3 JSON: at `{field}`: {reason}")]
    Parse { path: String, field: String, reason: String },
}

/// Reads a `CreateRenderJobRequest` in the proto3 JSON mapping (what `grpcurl -d` sends to
/// CreateRenderJob). Unknown fields are refused, with their path.
pub fn read_job_file(path: &Path) -> Result<pb::CreateRenderJobRequest, JobFileError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| JobFileError::Io { path: shown.clone(), source })?;
    parse_job(&bytes).map_err(|(field, reason)| JobFileError::Parse { path: shown, field, reason })
}

/// Parses a `CreateRenderJobRequest` from proto3 JSON; the error is (field path, reason).
pub fn parse_job(bytes: &[u8]) -> Result<pb::CreateRenderJobRequest, (String, String)> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let field = err.path().to_string();
        (if field.is_empty() { ".".to_owned() } else { field }, err.into_inner().to_string())
    })
}

#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;
