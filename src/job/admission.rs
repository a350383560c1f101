//! What a node admits: a job's request id and spec within their length limits, the spec
//! validated field by field, plus this node's limits on where a job may read and write (local
//! outputs always under the output root: `storage.local_root`, else `data_dir/outputs`;
//! sources under `storage.source_roots` when set).

use std::path::{Component, Path, PathBuf};

use super::config::{ServeConfig, StorageConfig};
use super::limits;
use super::spec::{FieldViolation, InvalidJob, validate};
use crate::error::quoted;
use crate::ingest::track_files::local_path;
use crate::proto as pb;

/// Every violation of `request_id`, `spec` and this node's limits; a local output path is
/// rewritten to its place under the node's output root.
pub fn admit(
    request_id: &str,
    spec: Option<pb::RenderJobSpec>,
    config: &ServeConfig,
) -> Result<pb::RenderJobSpec, InvalidJob> {
    let mut violations: Vec<FieldViolation> = limits::request_id(request_id).into_iter().collect();
    let Some(mut spec) = spec else {
        violations.push(FieldViolation { field: "spec".into(), reason: "missing".into() });
        return Err(InvalidJob(violations));
    };
    // Nothing below sees an over-long string.
    violations.extend(limits::spec_lengths(&spec));
    if !violations.is_empty() {
        return Err(InvalidJob(violations));
    }
    violations.extend(confine(&mut spec, &config.storage, &config.output_root()));
    if let Err(InvalidJob(more)) = validate(&spec) {
        violations.extend(more);
    }
    // What only this node can tell: its default storage (for a job that names none), its
    // credentials for sources.
    let storage = (spec.storage.is_none() || violations.is_empty())
        .then(|| super::destination::output_storage(&spec, config).err())
        .flatten();
    let source = violations.is_empty().then(|| super::destination::remote_source(&spec, config).err()).flatten();
    violations.extend([storage, source].into_iter().flatten().flat_map(|InvalidJob(v)| v));
    if violations.is_empty() { Ok(spec) } else { Err(InvalidJob(violations)) }
}

/// `path` made absolute under `root` (a relative path is taken relative to it); `None` when it
/// would lie outside.
pub fn under_root(root: &Path, path: &Path) -> Option<PathBuf> {
    let joined = if path.is_absolute() { path.to_path_buf() } else { root.join(path) };
    let escapes = joined.components().any(|c| matches!(c, Component::ParentDir));
    (!escapes && joined.starts_with(root)).then_some(joined)
}

/// The node's limits on where a job may read and write; rewrites a local output path to its
/// place under `output_root`, refusing one that would leave it (an absolute path elsewhere, a
/// `..`).
pub fn confine(spec: &mut pb::RenderJobSpec, limits: &StorageConfig, output_root: &Path) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    if let Some(storage) = spec.storage.as_mut()
        && matches!(storage.r#type.as_str(), "" | "local")
    {
        let prefix = Path::new(&storage.path_prefix);
        match under_root(output_root, prefix) {
            Some(path) => storage.path_prefix = path.display().to_string(),
            None => {
                let why = if prefix.components().any(|c| matches!(c, Component::ParentDir)) {
                    "`..` is not allowed"
                } else {
                    "an absolute path must lie under it"
                };
                violations.push(FieldViolation {
                    field: "storage.path_prefix".into(),
                    reason: format!(
                        "{} leaves this node's output root {} ({why})",
                        quoted(&storage.path_prefix),
                        output_root.display()
                    ),
                });
            }
        }
    }
    for (i, source) in spec.sources.iter().enumerate() {
        let local: Vec<(String, PathBuf)> = match &source.kind {
            Some(pb::source::Kind::RawArchive(path)) if !path.is_empty() && !path.contains("://") => {
                vec![(format!("sources[{i}].raw_archive"), PathBuf::from(path))]
            }
            Some(pb::source::Kind::TrackFiles(files)) => files
                .files
                .iter()
                .enumerate()
                .filter_map(|(j, f)| Some((format!("sources[{i}].track_files.files[{j}].uri"), local_path(&f.uri)?)))
                .collect(),
            _ => continue,
        };
        for (field, path) in local {
            if let Some(reason) = outside_roots(&path, limits) {
                violations.push(FieldViolation { field, reason });
            }
        }
    }
    violations
}

/// Why a local source path may not be read on this node, if it may not.
fn outside_roots(path: &Path, limits: &StorageConfig) -> Option<String> {
    let allowed = limits.source_roots.is_empty()
        || limits.source_roots.iter().any(|root| path.is_absolute() && under_root(root, path).is_some());
    if !allowed {
        Some(format!("{} is not under one of this node's source roots", quoted(&path.display().to_string())))
    } else if !path.exists() {
        Some(format!("{} does not exist on this node", quoted(&path.display().to_string())))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_and_sources_stay_under_the_node_roots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (inputs, outputs) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::create_dir_all(&inputs).expect("mkdir");
        let archive = inputs.join("call.zip");
        std::fs::write(&archive, b"zip").expect("write");
        let limits = StorageConfig {
            local_root: Some(outputs.clone()),
            source_roots: vec![inputs.clone()],
            ..StorageConfig::default()
        };
        let mut spec = pb::RenderJobSpec {
            sources: vec![pb::Source { kind: Some(pb::source::Kind::RawArchive(archive.display().to_string())) }],
            storage: Some(pb::Storage {
                r#type: "local".into(),
                path_prefix: "acme/call-1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(confine(&mut spec, &limits, &outputs).is_empty());
        let expected = outputs.join("acme/call-1").display().to_string();
        assert_eq!(spec.storage.as_ref().map(|s| s.path_prefix.clone()), Some(expected));
        let escape = format!("{}/../../etc/passwd", inputs.display());
        for (prefix, archive) in [("../etc", escape.as_str()), ("/tmp/x", "/etc/passwd")] {
            let mut bad = spec.clone();
            if let Some(storage) = bad.storage.as_mut() {
                storage.path_prefix = prefix.into();
            }
            bad.sources[0].kind = Some(pb::source::Kind::RawArchive(archive.into()));
            let fields: Vec<String> = confine(&mut bad, &limits, &outputs).into_iter().map(|v| v.field).collect();
            assert_eq!(fields, vec!["storage.path_prefix", "sources[0].raw_archive"], "{prefix} {archive}");
        }
        let mut missing = spec.clone();
        missing.sources[0].kind = Some(pb::source::Kind::RawArchive(inputs.join("nope.zip").display().to_string()));
        let violations = confine(&mut missing, &StorageConfig::default(), &outputs);
        assert_eq!(violations.len(), 1);
        assert!(violations[0].reason.contains("does not exist"), "{:?}", violations[0]);
    }

    #[test]
    fn without_a_local_root_outputs_go_under_the_data_dir_and_never_leave_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = ServeConfig::default();
        config.server.data_dir = dir.path().join("data");
        let root = dir.path().join("data/outputs");
        assert_eq!(config.output_root(), root);
        let spec = |prefix: &str| pb::RenderJobSpec {
            sources: vec![pb::Source { kind: Some(pb::source::Kind::RawArchive(dir.path().display().to_string())) }],
            outputs: vec![pb::Output { kind: "composite".into(), ..Default::default() }],
            storage: Some(pb::Storage { r#type: "local".into(), path_prefix: prefix.into(), ..Default::default() }),
            ..Default::default()
        };
        let admitted = admit("", Some(spec("acme/call-1")), &config).expect("admitted");
        let expected = root.join("acme/call-1").display().to_string();
        assert_eq!(admitted.storage.map(|s| s.path_prefix), Some(expected));
        let inside = root.join("x").display().to_string();
        assert!(admit("", Some(spec(&inside)), &config).is_ok(), "an absolute path under the root");
        for prefix in ["../../..", "acme/../../x", "/tmp/x", "/"] {
            let err = admit("", Some(spec(prefix)), &config).expect_err(prefix);
            assert_eq!(err.0.len(), 1, "{err}");
            assert_eq!(err.0[0].field, "storage.path_prefix", "{err}");
            assert!(err.0[0].reason.contains("leaves this node's output root"), "{err}");
        }
        let err = admit(&"r".repeat(3 << 20), Some(spec("a")), &config).expect_err("long request id");
        assert_eq!(err.to_string(), "invalid job: request_id: 3145728 bytes, over the limit of 256 bytes");
    }

    #[test]
    fn the_node_default_storage_and_source_credentials_count() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = ServeConfig::default();
        config.server.data_dir = dir.path().join("data");
        let spec = |source: &str| pb::RenderJobSpec {
            sources: vec![pb::Source { kind: Some(pb::source::Kind::RawArchive(source.into())) }],
            outputs: vec![pb::Output { kind: "composite".into(), ..Default::default() }],
            ..Default::default()
        };
        let err = admit("", Some(spec("s3://calls/a.zip")), &config).expect_err("no storage anywhere");
        assert_eq!(err.0[0].field, "storage", "{err}");
        let err = admit("", Some(spec("sftp://files.example/a.zip")), &config).expect_err("no sftp credentials");
        assert!(
            err.0.iter().any(|v| v.field == "sources[0].raw_archive" && v.reason.contains("source_storage")),
            "{err}"
        );
        config.storage.default = Some(super::super::config::StorageBlock(pb::Storage {
            r#type: "s3".into(),
            bucket: "recordings".into(),
            ..Default::default()
        }));
        config.storage.source = Some(super::super::config::StorageBlock(pb::Storage {
            r#type: "sftp".into(),
            host: "files.example".into(),
            username: "u".into(),
            password: "p".into(),
            ..Default::default()
        }));
        let admitted = admit("", Some(spec("sftp://files.example/a.zip")), &config).expect("node defaults");
        assert_eq!(admitted.storage, None, "the node's secrets are not copied into the job");
        let settings = super::super::destination::output_storage(&admitted, &config).expect("default storage");
        assert_eq!((settings.kind(), settings.key("a.mp4").as_str()), ("s3", "a.mp4"));
    }
}
