//! Recording containers: detection, hostile-safe extraction of `.zip` / `.tar.gz`, and
//! directory listing.
//!
//! Every archive is treated as hostile: entry names may not escape the destination, only
//! regular files and directories are allowed, sizes are counted as bytes are written (headers
//! are not trusted), and files are created with `create_new` so nothing is overwritten.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

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

/// Extraction limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Most entries (files, directories and others) an archive may hold.
    pub max_entries: usize,
    /// Most bytes one extracted file may have.
    pub max_entry_bytes: u64,
    /// Most bytes all extracted files may have together.
    pub max_total_bytes: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self { max_entries: 100_000, max_entry_bytes: 16 << 30, max_total_bytes: 64 << 30 }
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
    dest: &'a Path,
    limits: &'a ExtractLimits,
    entries: usize,
    summary: ExtractSummary,
}

impl Extractor<'_> {
    fn corrupt(&self, reason: impl std::fmt::Display) -> ArchiveError {
        ArchiveError::Corrupt { archive: self.archive.to_path_buf(), reason: reason.to_string() }
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

    fn make_dir(&self, entry: &str) -> Result<(), ArchiveError> {
        let path = self.target(entry)?;
        fs::create_dir_all(&path).map_err(io_err(&path))
    }

    /// Streams `reader` into a new file for `entry`, enforcing the size limits.
    fn write_file(&mut self, entry: &str, reader: &mut dyn Read) -> Result<(), ArchiveError> {
        let path = self.target(entry)?;
        if path == self.dest {
            return Err(self.unsupported(entry, "file with an empty name"));
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
                Err(e) => return Err(self.corrupt(format!("entry {entry:?}: {e}"))),
            };
            written = written.saturating_add(n as u64);
            let total = self.summary.total_bytes.saturating_add(n as u64);
            let (entry_limit, total_limit) = (self.limits.max_entry_bytes, self.limits.max_total_bytes);
            if written > entry_limit || total > total_limit {
                let (limit_bytes, which) =
                    if written > entry_limit { (entry_limit, "per entry") } else { (total_limit, "in total") };
                let (archive, entry) = (self.archive.to_path_buf(), entry.to_owned());
                return Err(ArchiveError::TooLarge { archive, entry, limit_bytes, which });
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
        for index in 0..zip.len() {
            self.count_entry()?;
            let mut file = zip.by_index(index).map_err(|e| self.corrupt(e))?;
            let name = file.name().map_err(|e| self.corrupt(e))?.into_owned();
            if file.encrypted() {
                return Err(self.unsupported(&name, "encrypted file"));
            }
            let file_type = file.unix_mode().map_or(0, |mode| mode & 0o170_000);
            match file_type {
                0o040_000 => self.make_dir(&name)?,
                0 | 0o100_000 if file.is_dir() => self.make_dir(&name)?,
                0 | 0o100_000 => self.write_file(&name, &mut file)?,
                0o120_000 => return Err(self.unsupported(&name, "symlink")),
                0o010_000 => return Err(self.unsupported(&name, "fifo")),
                0o020_000 => return Err(self.unsupported(&name, "character device")),
                0o060_000 => return Err(self.unsupported(&name, "block device")),
                0o140_000 => return Err(self.unsupported(&name, "socket")),
                other => return Err(self.unsupported(&name, &format!("file of mode {other:o}"))),
            }
        }
        Ok(())
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
        let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
        let entries = tar.entries().map_err(|e| self.corrupt(e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.corrupt(e))?;
            self.count_entry()?;
            let name = String::from_utf8(entry.path_bytes().into_owned())
                .map_err(|e| self.corrupt(format!("entry name is not UTF-8: {}", e.as_bytes().escape_ascii())))?;
            let kind = match entry.header().entry_type() {
                EntryType::Regular | EntryType::Continuous => {
                    self.write_file(&name, &mut entry)?;
                    continue;
                }
                EntryType::Directory => {
                    self.make_dir(&name)?;
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
        io::copy(&mut rest, &mut io::sink()).map_err(|e| self.corrupt(format!("after the last entry: {e}")))?;
        Ok(())
    }
}

/// Extracts the zip or tar.gz `archive` into `dest_dir`, which must exist and be empty.
pub fn extract(archive: &Path, dest_dir: &Path, limits: &ExtractLimits) -> Result<ExtractSummary, ArchiveError> {
    let mut listing = fs::read_dir(dest_dir).map_err(io_err(dest_dir))?;
    if listing.next().is_some() {
        return Err(ArchiveError::DestinationNotEmpty { path: dest_dir.to_path_buf() });
    }
    let mut extractor = Extractor { archive, dest: dest_dir, limits, entries: 0, summary: ExtractSummary::default() };
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
mod tests {
    use super::*;
    use std::io::Cursor;
    use tar::{EntryType, Header};
    use zip::write::SimpleFileOptions;

    fn zip_bytes(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in files {
            let opts = SimpleFileOptions::default().unix_permissions(0o644);
            if name.ends_with('/') {
                w.add_directory(*name, opts).unwrap();
            } else {
                w.start_file(*name, opts).unwrap();
                w.write_all(data).unwrap();
            }
        }
        w.finish().unwrap().into_inner()
    }

    /// Raw tar entries: the name goes straight into the header, so `..` and `/` survive.
    fn tar_bytes(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = Header::new_gnu();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            if matches!(kind, EntryType::Symlink | EntryType::Link) {
                h.set_link_name("target.txt").unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn gz(tar: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(tar).unwrap();
        e.finish().unwrap()
    }

    fn run(
        bytes: &[u8],
        ext: &str,
        limits: &ExtractLimits,
    ) -> (tempfile::TempDir, Result<ExtractSummary, ArchiveError>) {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join(format!("in.{ext}"));
        fs::write(&archive, bytes).unwrap();
        let dest = dir.path().join("out");
        fs::create_dir(&dest).unwrap();
        let result = extract(&archive, &dest, limits);
        (dir, result)
    }

    fn err(bytes: &[u8], ext: &str, limits: &ExtractLimits) -> String {
        let (_dir, result) = run(bytes, ext, limits);
        let e = result.unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains(&format!("in.{ext}")), "{shown}");
        format!("{e:?}").split_once(", ").map(|(_, rest)| rest.to_owned()).unwrap_or_default()
    }

    const R: EntryType = EntryType::Regular;

    #[test]
    fn valid_nested_archives_extract() {
        let files: [(&str, &[u8]); 4] =
            [("rec/", b""), ("rec/a/x.rtpdump", b"abc"), ("rec/b.json", b"{}"), ("top.sdp", b"v=0")];
        let tar = tar_bytes(&[
            ("rec/", EntryType::Directory, b""),
            ("rec/a/x.rtpdump", R, b"abc"),
            ("rec/b.json", R, b"{}"),
            ("top.sdp", R, b"v=0"),
        ]);
        for (bytes, ext) in [(zip_bytes(&files), "zip"), (gz(&tar), "tar.gz")] {
            let (dir, result) = run(&bytes, ext, &ExtractLimits::default());
            assert_eq!(result.unwrap(), ExtractSummary { files: 3, total_bytes: 8 });
            let out = dir.path().join("out");
            let listed = list_files(&out).unwrap();
            let want: Vec<_> = ["rec/a/x.rtpdump", "rec/b.json", "top.sdp"].iter().map(|p| out.join(p)).collect();
            assert_eq!(listed, want);
            assert_eq!(fs::read(out.join("rec/a/x.rtpdump")).unwrap(), b"abc");
            assert_eq!(
                detect_kind(&dir.path().join(format!("in.{ext}"))).unwrap(),
                if ext == "zip" { ArchiveKind::Zip } else { ArchiveKind::TarGz }
            );
        }
    }

    #[test]
    fn hostile_tar_gz() {
        let l = ExtractLimits::default();
        let e = |entries: &[(&str, EntryType, &[u8])], l: &ExtractLimits| err(&gz(&tar_bytes(entries)), "tar.gz", l);
        assert_eq!(e(&[("ok.txt", R, b"1"), ("../evil", R, b"x")], &l), "entry: \"../evil\" }");
        assert_eq!(e(&[("a/../../evil", R, b"x")], &l), "entry: \"a/../../evil\" }");
        assert_eq!(e(&[("/etc/evil", R, b"x")], &l), "entry: \"/etc/evil\" }");
        assert_eq!(e(&[("a\\..\\..\\evil", R, b"x")], &l), "entry: \"a\\\\..\\\\..\\\\evil\" }");
        assert_eq!(e(&[("C:evil", R, b"x")], &l), "entry: \"C:evil\" }");
        assert_eq!(e(&[("link", EntryType::Symlink, b"")], &l), "entry: \"link\", entry_type: \"symlink\" }");
        assert_eq!(e(&[("hard", EntryType::Link, b"")], &l), "entry: \"hard\", entry_type: \"hardlink\" }");
        assert_eq!(e(&[("fifo", EntryType::Fifo, b"")], &l), "entry: \"fifo\", entry_type: \"fifo\" }");
        assert_eq!(e(&[("dev", EntryType::Char, b"")], &l), "entry: \"dev\", entry_type: \"character device\" }");
        assert_eq!(e(&[("d.txt", R, b"1"), ("d.txt", R, b"2")], &l), "entry: \"d.txt\" }");
        let small = ExtractLimits { max_entries: 3, max_entry_bytes: 1000, max_total_bytes: 1500 };
        let bomb = vec![0u8; 1 << 20];
        assert_eq!(e(&[("bomb", R, &bomb)], &small), "entry: \"bomb\", limit_bytes: 1000, which: \"per entry\" }");
        let part = [7u8; 600];
        assert_eq!(
            e(&[("a", R, &part), ("b", R, &part), ("c", R, &part)], &small),
            "entry: \"c\", limit_bytes: 1500, which: \"in total\" }"
        );
        let many: Vec<(&str, EntryType, &[u8])> = ["1", "2", "3", "4", "5"].iter().map(|n| (*n, R, &b""[..])).collect();
        assert_eq!(e(&many, &small), "limit: 3 }");
        let tar = gz(&tar_bytes(&[("a.txt", R, b"hello")]));
        assert!(err(&tar[..tar.len() - 12], "tar.gz", &l).starts_with("reason: "));
    }

    #[test]
    fn hostile_zip() {
        let l = ExtractLimits::default();
        let e = |files: &[(&str, &[u8])], l: &ExtractLimits| err(&zip_bytes(files), "zip", l);
        assert_eq!(e(&[("ok", b"1"), ("../evil", b"x")], &l), "entry: \"../evil\" }");
        assert_eq!(e(&[("/abs/evil", b"x")], &l), "entry: \"/abs/evil\" }");
        assert_eq!(e(&[("..\\evil", b"x")], &l), "entry: \"..\\\\evil\" }");
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.add_symlink("link", "/etc/passwd", SimpleFileOptions::default()).unwrap();
        let link = w.finish().unwrap().into_inner();
        assert_eq!(err(&link, "zip", &l), "entry: \"link\", entry_type: \"symlink\" }");
        let fifo = zip_bytes(&[("fifo", b"")]);
        let mut patched = fifo.clone();
        let attrs = (0o010_644u32 << 16).to_le_bytes(); // external attributes: S_IFIFO | 0644
        let at = patched.windows(4).position(|w| w == (0o100_644u32 << 16).to_le_bytes()).unwrap();
        patched[at..at + 4].copy_from_slice(&attrs);
        assert_eq!(err(&patched, "zip", &l), "entry: \"fifo\", entry_type: \"fifo\" }");
        let mut dup = zip_bytes(&[("a.txt", b"same"), ("b.txt", b"same")]);
        for i in 0..dup.len() - 5 {
            if &dup[i..i + 5] == b"b.txt" {
                dup[i] = b'a';
            }
        }
        assert_eq!(err(&dup, "zip", &l), "entry: \"a.txt\" }");
        let small = ExtractLimits { max_entries: 3, max_entry_bytes: 1000, max_total_bytes: 1500 };
        let bomb = vec![0u8; 1 << 20];
        assert!(zip_bytes(&[("bomb", &bomb)]).len() < 5000);
        assert_eq!(e(&[("bomb", &bomb)], &small), "entry: \"bomb\", limit_bytes: 1000, which: \"per entry\" }");
        assert_eq!(e(&[("1", b""), ("2", b""), ("3", b""), ("4", b"")], &small), "limit: 3 }");
        let ok = zip_bytes(&[("a.txt", b"hello")]);
        assert!(err(&ok[..ok.len() - 30], "zip", &l).starts_with("reason: "));
    }

    #[test]
    fn detection_and_destination() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        fs::write(p("x.tgz"), b"not gzip").unwrap();
        fs::write(p("y.bin"), b"PK\x05\x06rest").unwrap();
        fs::write(p("z.txt"), b"\x00\x01").unwrap();
        assert_eq!(detect_kind(dir.path()).unwrap(), ArchiveKind::Directory);
        assert_eq!(detect_kind(&p("x.tgz")).unwrap(), ArchiveKind::TarGz);
        assert_eq!(detect_kind(&p("y.bin")).unwrap(), ArchiveKind::Zip);
        let e = detect_kind(&p("z.txt")).unwrap_err();
        assert!(matches!(&e, ArchiveError::UnsupportedFormat { reason, .. } if reason.contains("\\x00\\x01")), "{e}");
        assert!(matches!(detect_kind(&p("missing")), Err(ArchiveError::Io { .. })));
        let e = extract(&p("x.tgz"), dir.path(), &ExtractLimits::default()).unwrap_err();
        assert!(matches!(e, ArchiveError::DestinationNotEmpty { .. }), "{e}");
        fs::create_dir(p("empty")).unwrap();
        let e = extract(&p("x.tgz"), &p("empty"), &ExtractLimits::default()).unwrap_err();
        assert!(matches!(e, ArchiveError::Corrupt { .. }), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn list_files_skips_symlinks_and_bounds_depth() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f.txt"), b"1").unwrap();
        fs::write(root.join("z.txt"), b"2").unwrap();
        std::os::unix::fs::symlink(root.join("z.txt"), root.join("a/link.txt")).unwrap();
        std::os::unix::fs::symlink(root, root.join("a/loop")).unwrap();
        assert_eq!(list_files(root).unwrap(), vec![root.join("a/b/f.txt"), root.join("z.txt")]);
        let deep: PathBuf = std::iter::repeat_n("d", 66).collect();
        fs::create_dir_all(root.join(&deep)).unwrap();
        let e = list_files(root).unwrap_err();
        assert!(matches!(e, ArchiveError::TooDeep { max_depth: 64, .. }), "{e}");
    }

    #[test]
    fn fuzz_extraction_never_panics() {
        let mut state = 0x0123_4567_89ab_cdefu64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let zip = zip_bytes(&[("d/", b""), ("d/a.txt", b"hello hello hello"), ("b.bin", &[9; 300])]);
        let tar = tar_bytes(&[("d/", EntryType::Directory, b""), ("d/a.txt", R, b"hello"), ("b.bin", R, &[9; 300])]);
        let limits = ExtractLimits { max_entries: 10, max_entry_bytes: 10_000, max_total_bytes: 20_000 };
        for i in 0..500 {
            let (mut bytes, ext) = match i % 3 {
                0 => (zip.clone(), "zip"),
                1 => (tar.clone(), "tar.gz"),
                _ => (gz(&tar), "tar.gz"),
            };
            for _ in 0..=next() % 4 {
                let at = (next() as usize) % bytes.len();
                bytes[at] = next() as u8;
            }
            if next() % 4 == 0 {
                bytes.truncate((next() as usize) % bytes.len());
            }
            if i % 3 == 1 {
                bytes = gz(&bytes);
            }
            let (_dir, _result) = run(&bytes, ext, &limits);
        }
    }
}
