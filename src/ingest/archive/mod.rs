//! Recording containers: detection, hostile-safe extraction of `.zip` / `.tar.gz`, and
//! directory listing.
//!
//! Every archive is treated as hostile: entry names may not escape the destination, only
//! regular files and directories are allowed, only the files tessera reads are written
//! ([`is_recording_file`]), a zip's entry count and declared sizes are checked before anything
//! is written, sizes and the compression ratio are counted again as bytes come out (headers
//! are not trusted), and files are created with `create_new` so nothing is overwritten.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::GzDecoder;
use thiserror::Error;

/// Deepest directory nesting accepted when extracting or listing.
const MAX_DEPTH: usize = 64;

/// Errors from detection, extraction and listing. Display names the archive and entry.
#[derive(Debug, Error)]
pub enum ArchiveError {
    /// Not a directory, zip or tar.gz.
    #[error("{}: unsupported input format: {reason}", path.display())]
    UnsupportedFormat { path: PathBuf, reason: String },
    /// An entry name that is absolute, has `..`, a drive prefix or a NUL byte.
    #[error("{}: entry {entry:?} would be written outside the destination directory", archive.display())]
    PathEscape { archive: PathBuf, entry: String },
    /// A symlink, hardlink, device, fifo or other non-regular entry.
    #[error("{}: entry {entry:?} is a {entry_type}, which is not allowed", archive.display())]
    UnsupportedEntry { archive: PathBuf, entry: String, entry_type: String },
    /// Extracted bytes exceed a limit (`which` is "per entry" or "in total").
    #[error("{}: entry {entry:?} exceeds the extraction limit of {limit_bytes} bytes {which}", archive.display())]
    TooLarge { archive: PathBuf, entry: String, limit_bytes: u64, which: &'static str },
    /// The archive expands more than [`ExtractLimits::max_ratio`] allows: `expanded_bytes` from
    /// `compressed_bytes` (the entry's, or the whole archive's).
    #[error(
        "{}: entry {entry:?}: {compressed_bytes} compressed bytes expand to {expanded_bytes}, past the \
         extraction limit of a compression ratio of {max_ratio}",
        archive.display()
    )]
    RatioTooHigh { archive: PathBuf, entry: String, compressed_bytes: u64, expanded_bytes: u64, max_ratio: u64 },
    /// More entries than allowed.
    #[error("{}: more than {limit} entries", archive.display())]
    TooManyEntries { archive: PathBuf, limit: usize },
    /// The archive cannot be read.
    #[error("{}: corrupt or truncated archive: {reason}", archive.display())]
    Corrupt { archive: PathBuf, reason: String },
    /// Two entries name the same file.
    #[error("{}: entry {entry:?} appears more than once", archive.display())]
    DuplicateEntry { archive: PathBuf, entry: String },
    /// The extraction destination is not an empty directory.
    #[error("{}: destination is not an empty directory", path.display())]
    DestinationNotEmpty { path: PathBuf },
    /// A directory tree nested deeper than 64 levels.
    #[error("{}: directory nesting deeper than {max_depth} levels", path.display())]
    TooDeep { path: PathBuf, max_depth: usize },
    /// Filesystem error on `path`.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io { path: path.to_path_buf(), source }
}

/// Container kind of a recording input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A directory, used in place.
    Directory,
    /// A `.zip` archive.
    Zip,
    /// A gzip-compressed tar archive.
    TarGz,
}

/// Detects the kind of `path`: directory, else magic bytes, else extension.
pub fn detect_kind(path: &Path) -> Result<ArchiveKind, ArchiveError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    if meta.is_dir() {
        return Ok(ArchiveKind::Directory);
    }
    let mut magic = Vec::with_capacity(4);
    let file = File::open(path).map_err(io_err(path))?;
    file.take(4).read_to_end(&mut magic).map_err(io_err(path))?;
    if magic.starts_with(b"PK\x03\x04") || magic.starts_with(b"PK\x05\x06") {
        return Ok(ArchiveKind::Zip);
    }
    if magic.starts_with(&[0x1f, 0x8b]) {
        return Ok(ArchiveKind::TarGz);
    }
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    if name.ends_with(".zip") {
        Ok(ArchiveKind::Zip)
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Ok(ArchiveKind::TarGz)
    } else {
        let reason = format!(
            "not a directory, and neither its first bytes ({}) nor its name identify a .zip or .tar.gz",
            magic.escape_ascii()
        );
        Err(ArchiveError::UnsupportedFormat { path: path.to_path_buf(), reason })
    }
}

/// True for the entries tessera reads, by the last part of their name: timing metadata
/// (`timing_metadata.json`, `*_timing_metadata.json`), `.rtpdump` and `.sdp` files. No other
/// entry is written.
pub fn is_recording_file(entry: &str) -> bool {
    let name = entry.rsplit(['/', '\\']).next().unwrap_or_default();
    let lower = name.to_ascii_lowercase();
    super::metadata::is_timing_metadata_name(name) || lower.ends_with(".rtpdump") || lower.ends_with(".sdp")
}

/// Extraction limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Most entries (files, directories and others) an archive may hold.
    pub max_entries: usize,
    /// Most bytes one extracted file may have.
    pub max_entry_bytes: u64,
    /// Most bytes all extracted files may have together.
    pub max_total_bytes: u64,
    /// Most bytes out per compressed byte: for a zip entry (declared sizes) and for the whole
    /// archive (bytes written; for a tar.gz, the whole decompressed stream, skipped entries
    /// included), beyond [`ExtractLimits::ratio_allowance_bytes`].
    pub max_ratio: u64,
    /// Bytes allowed out whatever the ratio (small, very compressible metadata files).
    pub ratio_allowance_bytes: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_entry_bytes: 16 << 30,
            max_total_bytes: 64 << 30,
            max_ratio: 100,
            ratio_allowance_bytes: 1 << 20,
        }
    }
}

impl ExtractLimits {
    /// Most bytes `compressed_bytes` may expand to.
    fn ratio_limit(&self, compressed_bytes: u64) -> u64 {
        compressed_bytes.saturating_mul(self.max_ratio).saturating_add(self.ratio_allowance_bytes)
    }
}

/// What [`extract`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtractSummary {
    /// Regular files written.
    pub files: usize,
    /// Bytes written.
    pub total_bytes: u64,
}

/// Extraction state shared by the zip and tar paths.
struct Extractor<'a> {
    archive: &'a Path,
    /// Size of the archive file.
    archive_bytes: u64,
    dest: &'a Path,
    limits: &'a ExtractLimits,
    entries: usize,
    summary: ExtractSummary,
    /// Bytes out of the gzip decoder so far (tar.gz only), shared with its [`CountingReader`].
    decompressed: Rc<Cell<u64>>,
}

/// Counts the bytes read through it and fails once there are more than `limit`.
struct CountingReader<R> {
    inner: R,
    count: Rc<Cell<u64>>,
    limit: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get().saturating_add(n as u64));
        if self.count.get() > self.limit {
            return Err(io::Error::other("decompressed stream past the compression ratio limit"));
        }
        Ok(n)
    }
}

impl Extractor<'_> {
    fn corrupt(&self, reason: impl std::fmt::Display) -> ArchiveError {
        ArchiveError::Corrupt { archive: self.archive.to_path_buf(), reason: reason.to_string() }
    }

    /// `entry` took the archive past its compression ratio limit.
    fn ratio(&self, entry: &str, compressed_bytes: u64, expanded_bytes: u64) -> ArchiveError {
        ArchiveError::RatioTooHigh {
            archive: self.archive.to_path_buf(),
            entry: entry.to_owned(),
            compressed_bytes,
            expanded_bytes,
            max_ratio: self.limits.max_ratio,
        }
    }

    /// A read error while at `entry`: the decompressed stream past its ratio limit, or a
    /// corrupt archive.
    fn read_error(&self, entry: &str, err: impl std::fmt::Display) -> ArchiveError {
        let decompressed = self.decompressed.get();
        if decompressed > self.limits.ratio_limit(self.archive_bytes) {
            return self.ratio(entry, self.archive_bytes, decompressed);
        }
        if entry.is_empty() { self.corrupt(err) } else { self.corrupt(format!("entry {entry:?}: {err}")) }
    }

    fn too_large(&self, entry: &str, limit_bytes: u64, which: &'static str) -> ArchiveError {
        ArchiveError::TooLarge { archive: self.archive.to_path_buf(), entry: entry.to_owned(), limit_bytes, which }
    }

    fn unsupported(&self, entry: &str, entry_type: &str) -> ArchiveError {
        ArchiveError::UnsupportedEntry {
            archive: self.archive.to_path_buf(),
            entry: entry.to_owned(),
            entry_type: entry_type.to_owned(),
        }
    }

    fn count_entry(&mut self) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                archive: self.archive.to_path_buf(),
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    /// Maps an entry name to a path under `dest`, rejecting anything that could escape.
    fn target(&self, entry: &str) -> Result<PathBuf, ArchiveError> {
        let escape = || ArchiveError::PathEscape { archive: self.archive.to_path_buf(), entry: entry.to_owned() };
        if entry.starts_with(['/', '\\']) || entry.contains('\0') {
            return Err(escape());
        }
        let mut path = self.dest.to_path_buf();
        let mut depth = 0;
        for (index, part) in entry.split(['/', '\\']).enumerate() {
            let drive = part.len() >= 2 && part.as_bytes().get(1) == Some(&b':');
            if part == ".." || (index == 0 && drive) {
                return Err(escape());
            }
            if !part.is_empty() && part != "." {
                path.push(part);
                depth += 1;
            }
        }
        if depth > MAX_DEPTH {
            return Err(self.unsupported(entry, "path nested deeper than 64 levels"));
        }
        Ok(path)
    }

    /// Streams `reader` into a new file for `entry`, enforcing the limits; an entry tessera
    /// does not read is only checked, never written.
    fn write_file(&mut self, entry: &str, reader: &mut dyn Read) -> Result<(), ArchiveError> {
        let path = self.target(entry)?;
        if path == self.dest {
            return Err(self.unsupported(entry, "file with an empty name"));
        }
        if !is_recording_file(entry) {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut out = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(ArchiveError::DuplicateEntry {
                    archive: self.archive.to_path_buf(),
                    entry: entry.to_owned(),
                });
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        let result = self.copy_limited(entry, reader, &mut out, &path);
        if result.is_err() {
            drop(out);
            let _ = fs::remove_file(&path);
        }
        result
    }

    fn copy_limited(
        &mut self,
        entry: &str,
        reader: &mut dyn Read,
        out: &mut File,
        path: &Path,
    ) -> Result<(), ArchiveError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut written: u64 = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(entry, e)),
            };
            written = written.saturating_add(n as u64);
            let total = self.summary.total_bytes.saturating_add(n as u64);
            if written > self.limits.max_entry_bytes {
                return Err(self.too_large(entry, self.limits.max_entry_bytes, "per entry"));
            }
            if total > self.limits.max_total_bytes {
                return Err(self.too_large(entry, self.limits.max_total_bytes, "in total"));
            }
            if total > self.limits.ratio_limit(self.archive_bytes) {
                return Err(self.ratio(entry, self.archive_bytes, total));
            }
            self.summary.total_bytes = total;
            out.write_all(buf.get(..n).unwrap_or(&[])).map_err(io_err(path))?;
        }
        out.flush().map_err(io_err(path))?;
        self.summary.files += 1;
        Ok(())
    }

    fn extract_zip(&mut self) -> Result<(), ArchiveError> {
        let file = File::open(self.archive).map_err(io_err(self.archive))?;
        let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| self.corrupt(e))?;
        if zip.has_duplicate_names() {
            return Err(ArchiveError::DuplicateEntry {
                archive: self.archive.to_path_buf(),
                entry: self.first_duplicate_zip_name(),
            });
        }
        if zip.len() > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                archive: self.archive.to_path_buf(),
                limit: self.limits.max_entries,
            });
        }
        // First pass, on the central directory alone: every name and type, and the declared
        // sizes of the files to write. Nothing is written unless all of them pass.
        let mut wanted = Vec::new();
        let mut declared_total: u64 = 0;
        for index in 0..zip.len() {
            let file = zip.by_index_raw(index).map_err(|e| self.corrupt(e))?;
            let name = file.name().map_err(|e| self.corrupt(e))?.into_owned();
            if file.encrypted() {
                return Err(self.unsupported(&name, "encrypted file"));
            }
            let is_file = self.zip_entry_is_file(&name, file.unix_mode(), file.is_dir())?;
            let path = self.target(&name)?;
            if !is_file || !is_recording_file(&name) {
                continue;
            }
            if path == self.dest {
                return Err(self.unsupported(&name, "file with an empty name"));
            }
            let (size, compressed) = (file.size(), file.compressed_size());
            declared_total = declared_total.saturating_add(size);
            if size > self.limits.max_entry_bytes {
                return Err(self.too_large(&name, self.limits.max_entry_bytes, "per entry"));
            }
            if declared_total > self.limits.max_total_bytes {
                return Err(self.too_large(&name, self.limits.max_total_bytes, "in total"));
            }
            if size > self.limits.ratio_limit(compressed) {
                return Err(self.ratio(&name, compressed, size));
            }
            wanted.push((index, name));
        }
        if declared_total > self.limits.ratio_limit(self.archive_bytes) {
            let last = wanted.last().map(|(_, name)| name.as_str()).unwrap_or_default();
            return Err(self.ratio(last, self.archive_bytes, declared_total));
        }
        // Second pass: the files, counted again as they are written (headers can lie).
        for (index, name) in wanted {
            let mut file = zip.by_index(index).map_err(|e| self.corrupt(e))?;
            self.write_file(&name, &mut file)?;
        }
        Ok(())
    }

    /// True for a regular file, false for a directory; an error for anything else.
    fn zip_entry_is_file(&self, name: &str, unix_mode: Option<u32>, is_dir: bool) -> Result<bool, ArchiveError> {
        match unix_mode.map_or(0, |mode| mode & 0o170_000) {
            0o040_000 => Ok(false),
            0 | 0o100_000 => Ok(!is_dir),
            0o120_000 => Err(self.unsupported(name, "symlink")),
            0o010_000 => Err(self.unsupported(name, "fifo")),
            0o020_000 => Err(self.unsupported(name, "character device")),
            0o060_000 => Err(self.unsupported(name, "block device")),
            0o140_000 => Err(self.unsupported(name, "socket")),
            other => Err(self.unsupported(name, &format!("file of mode {other:o}"))),
        }
    }

    /// Finds a repeated name by walking the local headers (the central directory index
    /// `ZipArchive` builds keeps only one entry per name).
    fn first_duplicate_zip_name(&self) -> String {
        let unknown = "<a name listed twice in the central directory>".to_owned();
        let Ok(mut reader) = File::open(self.archive).map(BufReader::new) else {
            return unknown;
        };
        let mut seen = HashSet::new();
        for _ in 0..=self.limits.max_entries {
            let Ok(Some(mut entry)) = zip::read::read_zipfile_from_stream(&mut reader) else {
                break;
            };
            let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
            if !seen.insert(name.clone()) {
                return name;
            }
            if io::copy(&mut entry, &mut io::sink()).is_err() {
                break;
            }
        }
        unknown
    }

    fn extract_tar_gz(&mut self) -> Result<(), ArchiveError> {
        use tar::EntryType;
        let file = File::open(self.archive).map_err(io_err(self.archive))?;
        let gzip = CountingReader {
            inner: GzDecoder::new(BufReader::new(file)),
            count: self.decompressed.clone(),
            limit: self.limits.ratio_limit(self.archive_bytes),
        };
        let mut tar = tar::Archive::new(gzip);
        let entries = tar.entries().map_err(|e| self.read_error("", e))?;
        // The entry being read: reading on to the next one skips the rest of its data.
        let mut current = String::new();
        for entry in entries {
            let mut entry = entry.map_err(|e| self.read_error(&current, e))?;
            self.count_entry()?;
            let name = String::from_utf8(entry.path_bytes().into_owned())
                .map_err(|e| self.corrupt(format!("entry name is not UTF-8: {}", e.as_bytes().escape_ascii())))?;
            current.clone_from(&name);
            let kind = match entry.header().entry_type() {
                EntryType::Regular | EntryType::Continuous => {
                    self.write_file(&name, &mut entry)?;
                    continue;
                }
                EntryType::Directory => {
                    self.target(&name)?;
                    continue;
                }
                EntryType::XGlobalHeader => continue,
                EntryType::Symlink => "symlink".to_owned(),
                EntryType::Link => "hardlink".to_owned(),
                EntryType::Char => "character device".to_owned(),
                EntryType::Block => "block device".to_owned(),
                EntryType::Fifo => "fifo".to_owned(),
                EntryType::GNUSparse => "sparse file".to_owned(),
                other => format!("tar entry of type {:?}", other.as_byte() as char),
            };
            return Err(self.unsupported(&name, &kind));
        }
        // Read to the end of the gzip stream so a truncated or corrupt trailer is reported.
        let mut rest = tar.into_inner().take(self.limits.max_total_bytes);
        io::copy(&mut rest, &mut io::sink()).map_err(|e| match self.read_error(&current, &e) {
            ArchiveError::Corrupt { .. } => self.corrupt(format!("after the last entry: {e}")),
            ratio => ratio,
        })?;
        Ok(())
    }
}

/// Extracts the zip or tar.gz `archive` into `dest_dir`, which must exist and be empty.
pub fn extract(archive: &Path, dest_dir: &Path, limits: &ExtractLimits) -> Result<ExtractSummary, ArchiveError> {
    let mut listing = fs::read_dir(dest_dir).map_err(io_err(dest_dir))?;
    if listing.next().is_some() {
        return Err(ArchiveError::DestinationNotEmpty { path: dest_dir.to_path_buf() });
    }
    let archive_bytes = fs::metadata(archive).map_err(io_err(archive))?.len();
    let mut extractor = Extractor {
        archive,
        archive_bytes,
        dest: dest_dir,
        limits,
        entries: 0,
        summary: ExtractSummary::default(),
        decompressed: Rc::new(Cell::new(0)),
    };
    match detect_kind(archive)? {
        ArchiveKind::Zip => extractor.extract_zip()?,
        ArchiveKind::TarGz => extractor.extract_tar_gz()?,
        ArchiveKind::Directory => {
            return Err(ArchiveError::UnsupportedFormat {
                path: archive.to_path_buf(),
                reason: "is a directory, not an archive".to_owned(),
            });
        }
    }
    Ok(extractor.summary)
}

/// All regular files under `root`, sorted. Symlinks and special files are skipped; nesting
/// deeper than 64 levels is an error.
pub fn list_files(root: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let mut files = Vec::new();
    let mut pending = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = pending.pop() {
        if depth > MAX_DEPTH {
            return Err(ArchiveError::TooDeep { path: dir, max_depth: MAX_DEPTH });
        }
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(io_err(&path))?;
            if file_type.is_dir() {
                pending.push((path, depth + 1));
            } else if file_type.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests;
