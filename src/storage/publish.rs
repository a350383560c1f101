//! Publishing a job's finished files to its storage. A job renders into its own working
//! directory; each file is then moved to the destination under a temporary name, checked
//! (size and SHA-256 against the manifest) and renamed into place, so a file under its final
//! name is always whole, and a job run again after a crash replaces its files instead of
//! adding copies. A failed attempt is retried; the working copy stays until the file is in
//! place. Local disk is the destination this build has.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Classify, Fault};
use crate::proto as pb;
use crate::render::PartialFile;
use crate::render::manifest::{OutputEntry, file_facts};

/// Attempts per file, and the first wait between them (doubling).
const ATTEMPTS: u32 = 3;
const FIRST_RETRY_MS: u64 = 200;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(
        "publishing {file} to {destination} failed after {attempts} attempts: {reason} (the rendered file is kept at {kept})"
    )]
    Failed { file: String, destination: String, attempts: u32, reason: String, kept: String },
}

impl Classify for PublishError {
    fn fault(&self) -> Fault {
        Fault::Internal("upload_failed")
    }
}

/// Where a job's files go.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A directory on this machine.
    Local(PathBuf),
}

impl Destination {
    fn describe(&self) -> String {
        match self {
            Destination::Local(dir) => dir.display().to_string(),
        }
    }

    /// Publishes `staged` (a file of `size_bytes` and `sha256`) as `name`; returns its URL.
    pub fn publish(&self, staged: &Path, name: &str, expected: Option<(u64, &str)>) -> Result<String, PublishError> {
        let mut wait_ms = FIRST_RETRY_MS;
        let mut attempt = 1;
        loop {
            let result = match self {
                Destination::Local(dir) => publish_local(staged, dir, name, expected),
            };
            match result {
                Ok(url) => return Ok(url),
                Err(reason) if attempt >= ATTEMPTS => {
                    return Err(PublishError::Failed {
                        file: name.to_owned(),
                        destination: self.describe(),
                        attempts: attempt,
                        reason,
                        kept: staged.display().to_string(),
                    });
                }
                Err(reason) => {
                    tracing::warn!(file = name, attempt, %reason, "publishing failed; retrying in {wait_ms} ms");
                    std::thread::sleep(Duration::from_millis(wait_ms));
                    wait_ms *= 2;
                    attempt += 1;
                }
            }
        }
    }
}

fn publish_local(staged: &Path, dir: &Path, name: &str, expected: Option<(u64, &str)>) -> Result<String, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let target = dir.join(name);
    // The render's own partial-file rule: complete under the final name or not there at all.
    let partial = PartialFile::new(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let temporary = partial.path();
    // Copy rather than move: the working copy stays until the file is verified in place.
    std::fs::copy(staged, temporary).map_err(|e| format!("copying to {}: {e}", temporary.display()))?;
    if let Some((size_bytes, sha256)) = expected {
        let (got_size, got_sha) =
            file_facts(temporary).map_err(|e| format!("reading back {}: {e}", temporary.display()))?;
        if got_size != size_bytes || got_sha != sha256 {
            return Err(format!(
                "{} does not match what was rendered ({got_size} bytes, sha256 {got_sha}; expected {size_bytes}, {sha256})",
                temporary.display()
            ));
        }
    }
    partial.commit().map_err(|e| format!("moving into place as {}: {e}", target.display()))?;
    let absolute = std::path::absolute(&target).unwrap_or(target);
    Ok(format!("file://{}", absolute.display()))
}

/// The event/`RenderJob.outputs` entry of a published file.
pub fn output_file(entry: &OutputEntry, url: String) -> pb::OutputFile {
    pb::OutputFile {
        kind: entry.kind.clone(),
        participant_id: entry.participant_id.clone().unwrap_or_default(),
        url,
        size_bytes: entry.size_bytes,
        sha256: entry.sha256.clone(),
        duration_ms: entry.duration_ms.round() as i64,
        call_offset_ms: entry.offset_ms.round() as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_checked_and_replaces_an_earlier_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let staged = dir.path().join("work/a.mp4");
        std::fs::create_dir_all(staged.parent().expect("parent")).expect("mkdir");
        std::fs::write(&staged, b"rendered").expect("write");
        let (size, sha) = file_facts(&staged).expect("facts");
        let out = dir.path().join("out");
        let destination = Destination::Local(out.clone());
        std::fs::create_dir_all(&out).expect("mkdir");
        std::fs::write(out.join("a.mp4"), b"from a run that crashed").expect("old");
        let url = destination.publish(&staged, "a.mp4", Some((size, &sha))).expect("publish");
        assert!(url.starts_with("file:///") && url.ends_with("/out/a.mp4"), "{url}");
        assert_eq!(std::fs::read(out.join("a.mp4")).expect("read"), b"rendered");
        let names: Vec<_> = std::fs::read_dir(&out).expect("ls").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names.len(), 1, "no temporary or duplicate left: {names:?}");
        assert!(staged.exists(), "the working copy is the caller's to remove");
    }

    #[test]
    fn a_mismatch_is_retried_then_reported_with_the_kept_copy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let staged = dir.path().join("a.mp4");
        std::fs::write(&staged, b"rendered").expect("write");
        let destination = Destination::Local(dir.path().join("out"));
        let err = destination.publish(&staged, "a.mp4", Some((8, "not-the-hash"))).expect_err("mismatch");
        let message = err.to_string();
        assert!(message.contains("after 3 attempts") && message.contains("kept at"), "{message}");
        assert!(!dir.path().join("out/a.mp4").exists(), "nothing under the final name");
    }
}
