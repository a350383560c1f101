//! How an opened recording's files are named to people: a file extracted from an archive by
//! the archive and its entry (`recording.zip!user_1/session_1/audio_1.rtpdump`), never by the
//! temporary path it was extracted to, which is gone once the run ends.

use std::path::{Path, PathBuf};

use super::IngestError;
use super::archive::ArchiveError;

/// Names the files of one recording.
#[derive(Debug, Clone, Copy)]
pub struct PathShown<'a> {
    /// Where the archive was extracted; `None` for a directory read in place.
    pub extracted: Option<&'a Path>,
    /// The recording as it was given.
    pub source: &'a Path,
}

impl PathShown<'_> {
    /// `path` as shown: `SOURCE!ENTRY` for an extracted file, else unchanged.
    pub fn path(&self, path: &Path) -> PathBuf {
        match self.extracted.and_then(|root| path.strip_prefix(root).ok()) {
            Some(entry) => PathBuf::from(format!("{}!{}", self.source.display(), entry.display())),
            None => path.to_path_buf(),
        }
    }

    /// `text` with every extracted path in it shown as in [`PathShown::path`].
    pub fn text(&self, text: &str) -> String {
        let Some(root) = self.extracted else {
            return text.to_owned();
        };
        let (root, source) = (root.display().to_string(), self.source.display().to_string());
        text.replace(&format!("{root}/"), &format!("{source}!")).replace(&root, &source)
    }
}

impl IngestError {
    /// This error with its paths as `shown` names them.
    pub fn shown(mut self, shown: &PathShown<'_>) -> IngestError {
        match &mut self {
            IngestError::Io { path, .. }
            | IngestError::Archive(ArchiveError::Io { path, .. } | ArchiveError::TooDeep { path, .. })
            | IngestError::NoMetadata { path }
            | IngestError::Metadata { path, .. }
            | IngestError::MixedCalls { path, .. }
            | IngestError::MissingRtpdump { path, .. }
            | IngestError::Sdp { path, .. }
            | IngestError::KindMismatch { path, .. }
            | IngestError::Rtpdump { path, .. }
            | IngestError::Damaged { path, .. }
            | IngestError::NoMediaPackets { path, .. }
            | IngestError::CallTooLong { path, .. } => *path = shown.path(path),
            IngestError::AmbiguousRtpdump { path, candidates, .. } => {
                *path = shown.path(path);
                *candidates = shown.text(candidates);
            }
            IngestError::MissingSdp { path, rtpdump } => {
                *path = shown.path(path);
                *rtpdump = shown.path(rtpdump);
            }
            IngestError::Archive(_) => {}
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracted_files_are_named_by_archive_and_entry() {
        let shown = PathShown { extracted: Some(Path::new("/tmp/tessera-ingest-x1")), source: Path::new("in/rec.zip") };
        let file = Path::new("/tmp/tessera-ingest-x1/user_1/session_1/audio_1.rtpdump");
        assert_eq!(shown.path(file), PathBuf::from("in/rec.zip!user_1/session_1/audio_1.rtpdump"));
        assert_eq!(shown.path(Path::new("/elsewhere/a.sdp")), PathBuf::from("/elsewhere/a.sdp"));
        let text = "decoding /tmp/tessera-ingest-x1/a/b.rtpdump and /tmp/tessera-ingest-x1";
        assert_eq!(shown.text(text), "decoding in/rec.zip!a/b.rtpdump and in/rec.zip");
        let err = IngestError::MissingSdp { path: file.with_extension("sdp"), rtpdump: file.to_path_buf() };
        let text = err.shown(&shown).to_string();
        assert!(!text.contains("/tmp/") && text.contains("in/rec.zip!user_1/session_1/audio_1.sdp"), "{text}");
        let directory = PathShown { extracted: None, source: Path::new("/data/call") };
        assert_eq!(directory.path(Path::new("/data/call/a.sdp")), PathBuf::from("/data/call/a.sdp"));
    }
}
