//! Track files as a source: per-participant media files (a participant's audio and video in one
//! file or apart), each placed on the call clock by its start offset. What is in a file (which
//! media, how long) is learned by probing it (`media::file_decode`); this is the pure part.

use std::path::PathBuf;

use super::CallInfo;

/// One participant's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    pub path: PathBuf,
    pub participant_id: String,
    pub user_session_id: String,
    pub screenshare: bool,
    /// Where the file's time 0 lies on the call clock.
    pub start_offset_ms: i64,
}

/// A call given as track files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFileSet {
    pub call: CallInfo,
    pub files: Vec<TrackFile>,
}

impl TrackFileSet {
    /// The call described by `call_type`, `call_id` and its start (empty: `default`, `tracks`).
    pub fn call(call_type: &str, call_id: &str, call_start_unix_ms: i64) -> CallInfo {
        let or = |value: &str, default: &str| if value.is_empty() { default.to_owned() } else { value.to_owned() };
        CallInfo {
            call_type: or(call_type, "default"),
            call_id: or(call_id, "tracks"),
            call_session_id: String::new(),
            call_start_unix_ms,
        }
    }

    /// A track id for the `kind` stream of file `index`: its file name and the medium, unique
    /// within the set.
    pub fn track_id(&self, index: usize, kind: super::TrackKind) -> String {
        let name = self
            .files
            .get(index)
            .and_then(|f| f.path.file_name())
            .map_or_else(|| format!("file{index}"), |n| n.to_string_lossy().into_owned());
        format!("{index}:{name}:{}", kind.as_str())
    }
}

/// `uri` as a local path: a plain path or a `file://` URL; `None` for any other scheme.
pub fn local_path(uri: &str) -> Option<PathBuf> {
    match uri.split_once("://") {
        None => Some(PathBuf::from(uri)),
        Some(("file", rest)) if rest.starts_with('/') => Some(PathBuf::from(rest)),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::TrackKind;

    #[test]
    fn local_paths_and_file_urls_only() {
        assert_eq!(local_path("/data/a.mkv"), Some(PathBuf::from("/data/a.mkv")));
        assert_eq!(local_path("rel/a.webm"), Some(PathBuf::from("rel/a.webm")));
        assert_eq!(local_path("file:///data/a.mp4"), Some(PathBuf::from("/data/a.mp4")));
        assert_eq!(local_path("https://x/a.mp4"), None);
        assert_eq!(local_path("file://host/a.mp4"), None);
    }

    #[test]
    fn defaults_and_track_ids() {
        let call = TrackFileSet::call("", "", 5);
        assert_eq!((call.call_type.as_str(), call.call_id.as_str(), call.call_start_unix_ms), ("default", "tracks", 5));
        let set = TrackFileSet {
            call,
            files: vec![TrackFile {
                path: PathBuf::from("/x/alice.mkv"),
                participant_id: "alice".into(),
                user_session_id: "alice".into(),
                screenshare: false,
                start_offset_ms: 0,
            }],
        };
        assert_eq!(set.track_id(0, TrackKind::Video), "0:alice.mkv:video");
        assert_eq!(set.track_id(3, TrackKind::Audio), "3:file3:audio");
    }
}
