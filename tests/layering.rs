//! The house's layering (ARCHITECTURE.md): imports point down. Each top-level module of the
//! library may use only modules of a lower layer, never one above it nor one beside it.

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom first. Modules of one layer do not use each other.
const LAYERS: &[&[&str]] = &[
    &["proto", "telemetry"],
    &["error"],
    &["timeline", "layout", "audio", "gpu"],
    &["ingest"],
    &["outputs"],
    &["media"],
    &["render", "synth"],
    &["storage"],
    &["job"],
    &["live"],
    &["api"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `crate::NAME` a file's text mentions.
fn uses(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .map(|(i, m)| text[i + m.len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn imports_point_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src");
        let module = relative.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or("");
        let module = module.trim_end_matches(".rs");
        if matches!(module, "lib" | "main" | "cli") {
            continue; // The crate root and the binary sit above everything.
        }
        let layer = layer_of(module).unwrap_or_else(|| panic!("module `{module}` is in no layer: add it to LAYERS"));
        seen.insert(module.to_owned());
        let text = std::fs::read_to_string(&file).expect("read");
        for used in uses(&text) {
            if used == module {
                continue;
            }
            match layer_of(&used) {
                Some(l) if l < layer => {}
                _ => violations.push(format!("{} uses crate::{used}", relative.display())),
            }
        }
    }
    assert!(violations.is_empty(), "imports pointing up or sideways:\n  {}", violations.join("\n  "));
    assert!(seen.len() >= 14, "every module was checked: {seen:?}");
}
