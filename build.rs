//! Build step: compiles the gRPC contract in `proto/` (with its proto3 JSON mapping) and validates every WGSL shader in
//! `shaders/` with naga, so a shader error fails the build on a machine without a GPU.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    compile_protos(&out_dir)?;
    validate_shaders(Path::new("shaders"))?;
    Ok(())
}

fn compile_protos(out_dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/tessera/v1/render.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptor_path = out_dir.join("tessera_descriptor.bin");
    tonic_prost_build::configure().file_descriptor_set_path(&descriptor_path).compile_protos(&protos, &["proto"])?;
    // The proto3 JSON mapping of every message (what grpcurl sends, what `tessera render` reads).
    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new().register_descriptors(&descriptors)?.build(&[".tessera.v1"])?;
    Ok(())
}

fn validate_shaders(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wgsl"))
        .collect();
    paths.sort();
    for path in paths {
        println!("cargo:rerun-if-changed={}", path.display());
        let source = std::fs::read_to_string(&path)?;
        let module = naga::front::wgsl::parse_str(&source).map_err(|err| {
            format!("{}: {}", path.display(), err.emit_to_string_with_path(&source, &path.display().to_string()))
        })?;
        let mut validator =
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default());
        validator.validate(&module).map_err(|err| {
            format!("{}: {}", path.display(), err.emit_to_string_with_path(&source, &path.display().to_string()))
        })?;
    }
    Ok(())
}
