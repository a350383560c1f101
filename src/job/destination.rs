//! Where a job's outputs go and where its source comes from, on this node: the job's storage
//! block or the node's default (`[storage.default]`), local paths confined under the node's
//! output root; a remote source resolved to a backend with the job's `source_storage`, the
//! node's `[storage.source]` or its default.

use std::path::Path;

use super::admission::under_root;
use super::config::ServeConfig;
use super::spec::{FieldViolation, InvalidJob};
use crate::error::quoted;
use crate::proto as pb;
use crate::storage::settings::{Backend, StorageSettings, remote_settings};
use crate::storage::source::{SourceRef, source_ref};

/// The storage block a job's outputs go to: its own, else the node's default.
pub fn output_block<'a>(spec: &'a pb::RenderJobSpec, config: &'a ServeConfig) -> Option<&'a pb::Storage> {
    spec.storage.as_ref().or(config.storage.default.as_ref().map(|block| &block.0))
}

/// The settings of the job's output storage, checked.
pub fn output_storage(spec: &pb::RenderJobSpec, config: &ServeConfig) -> Result<StorageSettings, InvalidJob> {
    let invalid = |field: &str, reason: String| InvalidJob(vec![FieldViolation { field: field.into(), reason }]);
    let Some(block) = output_block(spec, config) else {
        return Err(invalid("storage", "say where the outputs go: this node has no default storage".into()));
    };
    match block.r#type.as_str() {
        // A job's own local path was confined and made absolute when it was admitted.
        "" | "local" if spec.storage.is_some() => Ok(StorageSettings {
            backend: Backend::Local { dir: block.path_prefix.clone().into() },
            path_prefix: String::new(),
            url_expiry: config.node_storage().url_expiry.unwrap_or(crate::storage::settings::DEFAULT_URL_EXPIRY),
        }),
        "" | "local" => {
            let root = config.output_root();
            let dir = under_root(&root, Path::new(&block.path_prefix)).ok_or_else(|| {
                invalid(
                    "storage.path_prefix",
                    format!("{} leaves this node's output root {}", quoted(&block.path_prefix), root.display()),
                )
            })?;
            let url_expiry = config.node_storage().url_expiry.unwrap_or(crate::storage::settings::DEFAULT_URL_EXPIRY);
            Ok(StorageSettings { backend: Backend::Local { dir }, path_prefix: String::new(), url_expiry })
        }
        _ => remote_settings(block, &config.node_storage()).map_err(|violations| {
            InvalidJob(
                violations
                    .into_iter()
                    .map(|(field, reason)| FieldViolation { field: format!("storage.{field}"), reason })
                    .collect(),
            )
        }),
    }
}

/// The job's raw archive when it is remote, resolved to where it is read from.
pub fn remote_source(spec: &pb::RenderJobSpec, config: &ServeConfig) -> Result<Option<SourceRef>, InvalidJob> {
    let Some(url) = super::spec::remote_source(spec) else { return Ok(None) };
    let mut blocks: Vec<&pb::Storage> = spec.source_storage.iter().collect();
    blocks.extend(config.storage.source.iter().map(|b| &b.0));
    blocks.extend(config.storage.default.iter().map(|b| &b.0));
    source_ref(url, &blocks, &config.node_storage()).map_err(|err| {
        InvalidJob(vec![FieldViolation { field: "sources[0].raw_archive".into(), reason: err.to_string() }])
    })
}
