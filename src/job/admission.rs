//! What a node admits: a job's spec validated field by field, plus this node's limits on where
//! a job may read and write (`storage.local_root`, `storage.source_roots`).

use std::path::{Component, Path, PathBuf};

use super::config::StorageConfig;
use super::spec::{FieldViolation, InvalidJob, validate};
use crate::ingest::track_files::local_path;
use crate::proto as pb;

/// Every violation of `spec` and of this node's limits; a relative local output path is
/// rewritten to its place under `local_root`.
pub fn admit(spec: Option<pb::RenderJobSpec>, limits: &StorageConfig) -> Result<pb::RenderJobSpec, InvalidJob> {
    let Some(mut spec) = spec else {
        return Err(InvalidJob(vec![FieldViolation { field: "spec".into(), reason: "missing".into() }]));
    };
    let mut violations = confine(&mut spec, limits);
    if let Err(InvalidJob(more)) = validate(&spec) {
        violations.extend(more);
    }
    if violations.is_empty() { Ok(spec) } else { Err(InvalidJob(violations)) }
}

/// `path` made absolute under `root` (a relative path is taken relative to it); `None` when it
/// would lie outside.
fn under_root(root: &Path, path: &Path) -> Option<PathBuf> {
    let joined = if path.is_absolute() { path.to_path_buf() } else { root.join(path) };
    let escapes = joined.components().any(|c| matches!(c, Component::ParentDir));
    (!escapes && joined.starts_with(root)).then_some(joined)
}

/// The node's limits on where a job may read and write; rewrites a relative local output
/// path to its place under `local_root`.
pub fn confine(spec: &mut pb::RenderJobSpec, limits: &StorageConfig) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    if let Some(root) = &limits.local_root
        && let Some(storage) = spec.storage.as_mut()
        && matches!(storage.r#type.as_str(), "" | "local")
    {
        match under_root(root, Path::new(&storage.path_prefix)) {
            Some(path) => storage.path_prefix = path.display().to_string(),
            None => violations.push(FieldViolation {
                field: "storage.path_prefix".into(),
                reason: format!("`{}` is outside this node's output root {}", storage.path_prefix, root.display()),
            }),
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
        Some(format!("`{}` is not under one of this node's source roots", path.display()))
    } else if !path.exists() {
        Some(format!("`{}` does not exist on this node", path.display()))
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
        assert!(confine(&mut spec, &limits).is_empty());
        let expected = outputs.join("acme/call-1").display().to_string();
        assert_eq!(spec.storage.as_ref().map(|s| s.path_prefix.clone()), Some(expected));
        let escape = format!("{}/../../etc/passwd", inputs.display());
        for (prefix, archive) in [("../etc", escape.as_str()), ("/tmp/x", "/etc/passwd")] {
            let mut bad = spec.clone();
            if let Some(storage) = bad.storage.as_mut() {
                storage.path_prefix = prefix.into();
            }
            bad.sources[0].kind = Some(pb::source::Kind::RawArchive(archive.into()));
            let fields: Vec<String> = confine(&mut bad, &limits).into_iter().map(|v| v.field).collect();
            assert_eq!(fields, vec!["storage.path_prefix", "sources[0].raw_archive"], "{prefix} {archive}");
        }
        let mut missing = spec.clone();
        missing.sources[0].kind = Some(pb::source::Kind::RawArchive(inputs.join("nope.zip").display().to_string()));
        let violations = confine(&mut missing, &StorageConfig::default());
        assert_eq!(violations.len(), 1);
        assert!(violations[0].reason.contains("does not exist"), "{:?}", violations[0]);
    }
}
