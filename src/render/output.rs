//! Output files appear under their final name only when complete: they are written as a
//! hidden `.NAME.partial` beside it, renamed on success and removed on failure.

use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct PartialFile {
    partial: PathBuf,
    final_path: PathBuf,
    committed: bool,
}

impl PartialFile {
    pub fn new(final_path: &Path) -> std::io::Result<PartialFile> {
        let name = final_path
            .file_name()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "output path has no file name"))?;
        let partial = final_path.with_file_name(format!(".{}.partial", name.to_string_lossy()));
        Ok(PartialFile { partial, final_path: final_path.to_path_buf(), committed: false })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.partial
    }

    /// Moves the finished file to its final name.
    pub fn commit(mut self) -> std::io::Result<()> {
        let file = std::fs::File::open(&self.partial)?;
        file.sync_all()?;
        std::fs::rename(&self.partial, &self.final_path)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_file_is_removed_and_committed_file_is_renamed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out.mp4");
        let partial = PartialFile::new(&target).expect("partial");
        std::fs::write(partial.path(), b"half").expect("write");
        let partial_path = partial.path().to_path_buf();
        drop(partial);
        assert!(!partial_path.exists() && !target.exists());

        let partial = PartialFile::new(&target).expect("partial");
        std::fs::write(partial.path(), b"whole").expect("write");
        partial.commit().expect("commit");
        assert_eq!(std::fs::read(&target).expect("read"), b"whole");
    }
}
