//! File names, as Stream's raw-recording CLI writes them, so users' scripts keep working.
//! Every id taken from the recording is made safe for a file name first, and kept short.

use sha2::{Digest, Sha256};

use super::{AudioFormat, IndividualKind, VideoCodec};
use crate::error::prefix_within;
use crate::ingest::CallInfo;

/// Longest id part of a file name, in bytes. Four of them with the rest of the longest name
/// (`individual_…_shared_audio_video_N_{callStartMs}.webm`) and the partial file's
/// `.NAME.partial` stay well under the 255 bytes of a file name.
pub const MAX_NAME_PART_BYTES: usize = 40;
/// Hex digits of the hash that ends a shortened part.
const HASH_HEX_DIGITS: usize = 8;

/// `id` with anything but ASCII letters, digits, `-` and `.` replaced by `_` (and no leading
/// dot), so a hostile id can neither leave the output directory nor hide the file. An id
/// longer than [`MAX_NAME_PART_BYTES`] keeps a readable prefix followed by `-` and a short
/// hash of the whole id (stable: the same id always gives the same name).
pub fn safe_name_part(id: &str) -> String {
    let mut out: String =
        id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    if out.starts_with('.') {
        out.replace_range(0..1, "_");
    }
    if out.is_empty() {
        out.push('_');
    }
    if out.len() > MAX_NAME_PART_BYTES {
        let digest = Sha256::digest(id.as_bytes());
        let hash: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let keep = prefix_within(&out, MAX_NAME_PART_BYTES - HASH_HEX_DIGITS - 1);
        out = format!("{keep}-{}", &hash[..HASH_HEX_DIGITS]);
    }
    out
}

fn call_part(call: &CallInfo) -> String {
    format!("{}_{}", safe_name_part(&call.call_type), safe_name_part(&call.call_id))
}

/// `composite_{callType}_{callId}_{callStartMs}.mp4` (or `.webm`).
pub fn composite_video(call: &CallInfo, codec: VideoCodec) -> String {
    format!("composite_{}_{}.{}", call_part(call), call.call_start_unix_ms, codec.extension())
}

/// `composite_{callType}_{callId}_audio_{callStartMs}.{ext}`, as `mix-audio` names it.
pub fn composite_audio(call: &CallInfo, format: AudioFormat) -> String {
    format!("composite_{}_audio_{}.{}", call_part(call), call.call_start_unix_ms, format.extension())
}

/// `individual_{callType}_{callId}_{userId}_{sessionId}_{[shared_]kind}_{callStartMs}.{ext}`.
/// A session's second and later files of one kind (a republished track) get `_{n}` after the
/// kind, so nothing is overwritten.
pub fn individual(
    call: &CallInfo,
    participant_id: &str,
    user_session_id: &str,
    kind: IndividualKind,
    n: usize,
    extension: &str,
) -> String {
    let suffix = if n > 1 { format!("_{n}") } else { String::new() };
    format!(
        "individual_{}_{}_{}_{}{suffix}_{}.{extension}",
        call_part(call),
        safe_name_part(participant_id),
        safe_name_part(user_session_id),
        kind.stream_name_part(),
        call.call_start_unix_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call() -> CallInfo {
        CallInfo {
            call_type: "default".into(),
            call_id: "abc".into(),
            call_session_id: "s".into(),
            call_start_unix_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn names_match_stream_cli() {
        assert_eq!(composite_video(&call(), VideoCodec::H264), "composite_default_abc_1700000000000.mp4");
        assert_eq!(composite_video(&call(), VideoCodec::Vp9), "composite_default_abc_1700000000000.webm");
        assert_eq!(composite_audio(&call(), AudioFormat::Mp3), "composite_default_abc_audio_1700000000000.mp3");
        assert_eq!(
            individual(&call(), "alice", "s1", IndividualKind::ScreenshareVideoOnly, 1, "mkv"),
            "individual_default_abc_alice_s1_shared_video_only_1700000000000.mkv"
        );
        assert_eq!(
            individual(&call(), "alice", "s1", IndividualKind::AudioOnly, 2, "mkv"),
            "individual_default_abc_alice_s1_audio_only_2_1700000000000.mkv"
        );
    }

    #[test]
    fn hostile_ids_stay_inside_the_directory() {
        assert_eq!(safe_name_part("../../etc/passwd"), "_._.._etc_passwd");
        assert_eq!(safe_name_part(".hidden"), "_hidden");
        assert_eq!(safe_name_part(""), "_");
        assert_eq!(safe_name_part("user@example.com"), "user_example.com");
        let name = individual(&call(), "../x", "a/b", IndividualKind::AudioOnly, 1, "mkv");
        assert!(!name.contains('/'), "{name}");
    }

    #[test]
    fn long_ids_make_names_under_255_bytes_with_a_stable_hash() {
        let long_call = CallInfo { call_id: "c".repeat(100_000), call_type: "t".repeat(256), ..call() };
        let wide = "é".repeat(128);
        let names = [
            composite_video(&long_call, VideoCodec::Vp9),
            composite_audio(&long_call, AudioFormat::Mp3),
            individual(&long_call, &wide, &"s".repeat(256), IndividualKind::ScreenshareAudioVideo, 12, "webm"),
        ];
        for name in &names {
            // Room for the partial file's `.NAME.partial` too.
            assert!(".".len() + name.len() + ".partial".len() <= 255, "{} bytes: {}", name.len(), &name[..100]);
            assert!(name.starts_with("composite_tttt") || name.starts_with("individual_tttt"), "{name}");
        }
        assert!(names[2].ends_with("_shared_audio_video_12_1700000000000.webm"), "{}", names[2]);
        // Stable, and different for ids that differ only past the kept prefix.
        let again = composite_video(&long_call, VideoCodec::Vp9);
        assert_eq!(again, names[0]);
        let other = CallInfo { call_id: format!("{}d", "c".repeat(99_999)), ..long_call.clone() };
        assert_ne!(composite_video(&other, VideoCodec::Vp9), names[0]);
        // Short ids are unchanged.
        assert_eq!(safe_name_part("alice"), "alice");
    }
}
