//! Packaging a synthetic recording as `.tar.gz` or `.zip` (Stream delivers one ZIP per call).

use std::io::{BufWriter, Write};
use std::path::Path;

use super::SynthError;
use crate::ingest::archive::list_files;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Directory,
    TarGz,
    Zip,
}

impl OutputFormat {
    pub fn from_path(path: &Path) -> OutputFormat {
        let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        if name.ends_with(".zip") {
            OutputFormat::Zip
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            OutputFormat::TarGz
        } else {
            OutputFormat::Directory
        }
    }
}

pub fn package(root: &Path, output: &Path, format: OutputFormat) -> Result<(), SynthError> {
    let io = |source| SynthError::Io { path: output.to_path_buf(), source };
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let files = list_files(root).map_err(|e| SynthError::Write { path: root.to_path_buf(), reason: e.to_string() })?;
    let file = BufWriter::new(std::fs::File::create(output).map_err(io)?);
    let name_of = |path: &Path| -> Result<String, SynthError> {
        let relative = path
            .strip_prefix(root)
            .map_err(|e| SynthError::Write { path: path.to_path_buf(), reason: e.to_string() })?;
        Ok(relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/"))
    };
    match format {
        OutputFormat::Directory => Ok(()),
        OutputFormat::TarGz => {
            let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
            for path in &files {
                builder.append_path_with_name(path, name_of(path)?).map_err(io)?;
            }
            builder.into_inner().map_err(io)?.finish().map_err(io)?.flush().map_err(io)
        }
        OutputFormat::Zip => {
            let mut zip = zip::ZipWriter::new(file);
            let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            for path in &files {
                let zip_error =
                    |e: zip::result::ZipError| SynthError::Write { path: output.to_path_buf(), reason: e.to_string() };
                zip.start_file(name_of(path)?, options).map_err(zip_error)?;
                let mut input =
                    std::fs::File::open(path).map_err(|source| SynthError::Io { path: path.clone(), source })?;
                std::io::copy(&mut input, &mut zip).map_err(io)?;
            }
            zip.finish()
                .map_err(|e| SynthError::Write { path: output.to_path_buf(), reason: e.to_string() })?
                .flush()
                .map_err(io)
        }
    }
}
