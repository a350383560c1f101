//! Binding segments to their files in the layouts Stream writes.

use super::*;

const SDP_HEAD: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n";

fn sdp(codec: &str) -> String {
    match codec {
        "opus" => format!("{SDP_HEAD}m=audio 5000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n"),
        other => format!("{SDP_HEAD}m=video 5000 RTP/AVP 96\r\na=rtpmap:96 {other}/90000\r\n"),
    }
}

fn segment(base_filename: &str, kind: &str, first_rtp_unix_ms: i64) -> String {
    let (codec, track_type) =
        if kind == "audio" { ("audio/opus", "TRACK_TYPE_AUDIO") } else { ("video/VP8", "TRACK_TYPE_VIDEO") };
    format!(
        r#"{{"base_filename": "{base_filename}", "codec": "{codec}", "track_id": "t:{track_type}:0",
            "track_type": "{track_type}", "first_rtp_rtp_timestamp": 1000,
            "first_rtp_unix_timestamp": {first_rtp_unix_ms}, "last_rtp_rtp_timestamp": 97000,
            "last_rtp_unix_timestamp": {}}}"#,
        first_rtp_unix_ms + 2000
    )
}

/// Timing metadata of one session with one audio and one video segment.
fn metadata(participant: &str, audio: &str, video: &str) -> String {
    format!(
        r#"{{"call_type": "default", "call_id": "c1", "call_session_id": "cs1",
            "call_start_time": "2026-01-28T09:00:00.000Z", "participant_id": "{participant}",
            "user_session_id": "{participant}-session",
            "segments": {{"audio": [{}], "video": [{}]}}}}"#,
        segment(audio, "audio", 1_769_590_801_000),
        segment(video, "video", 1_769_590_801_000)
    )
}

fn write(root: &Path, relative: &str, text: &str) {
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Writes `audio_1` (Opus) and `video_1` (`video_codec`) with their dumps into `folder`.
fn session_files(root: &Path, folder: &str, video_codec: &str) {
    for (name, codec) in [("audio_1", "opus"), ("video_1", video_codec)] {
        write(root, &format!("{folder}/{name}.rtpdump"), "");
        write(root, &format!("{folder}/{name}.sdp"), &sdp(codec));
    }
}

fn open(root: &Path) -> Result<Recording, IngestError> {
    Recording::open(root)
}

#[test]
fn streams_documented_layout_binds_each_segment_in_its_own_session_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (user, codec) in [("user_1", "VP8"), ("user_2", "H264")] {
        write(root, &format!("{user}/session_1/timing_metadata.json"), &metadata(user, "audio_1", "video_1"));
        session_files(root, &format!("{user}/session_1"), codec);
    }
    let recording = open(root).unwrap();
    assert_eq!(recording.participants.len(), 2);
    for session in &recording.participants {
        let folder = session.metadata_path.parent().unwrap();
        assert!(folder.ends_with(format!("{}/session_1", session.participant_id)), "{}", folder.display());
        for (_, track) in recording.tracks().filter(|(p, _)| p.participant_id == session.participant_id) {
            for segment in &track.segments {
                assert_eq!(segment.rtpdump_path.parent(), Some(folder), "{}", segment.rtpdump_path.display());
            }
        }
    }
    let video_codec = |participant: &str| {
        let found = recording.tracks().find(|(p, t)| p.participant_id == participant && t.kind == TrackKind::Video);
        found.unwrap().1.segments[0].codec
    };
    assert_eq!((video_codec("user_1"), video_codec("user_2")), (Codec::Vp8, Codec::H264));
}

#[test]
fn a_segment_not_in_its_folder_binds_to_the_one_match_elsewhere_and_never_to_one_of_several() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "user_1/session_1/timing_metadata.json", &metadata("user_1", "audio_1", "shared_video"));
    session_files(root, "user_1/session_1", "VP8");
    write(root, "media/shared_video.rtpdump", "");
    write(root, "media/shared_video.sdp", &sdp("H264"));
    let recording = open(root).unwrap();
    let (_, video) = recording.tracks().find(|(_, t)| t.kind == TrackKind::Video).unwrap();
    assert_eq!(video.segments[0].rtpdump_path, root.join("media/shared_video.rtpdump"));

    write(root, "elsewhere/shared_video.rtpdump", "");
    write(root, "elsewhere/shared_video.sdp", &sdp("H264"));
    let e = open(root).unwrap_err();
    assert!(
        matches!(&e, IngestError::AmbiguousRtpdump { base_filename, .. } if base_filename == "shared_video"),
        "{e}"
    );
}

#[test]
fn streams_flat_naming_still_binds() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "alice_s1_timing_metadata.json", &metadata("alice", "alice_s1_audio_0", "alice_s1_video_0"));
    write(root, "bob_s2_timing_metadata.json", &metadata("bob", "bob_s2_audio_0", "bob_s2_video_0"));
    for name in ["alice_s1_audio_0", "bob_s2_audio_0"] {
        write(root, &format!("{name}.rtpdump"), "");
        write(root, &format!("{name}.sdp"), &sdp("opus"));
    }
    for name in ["alice_s1_video_0", "bob_s2_video_0"] {
        write(root, &format!("{name}.rtpdump"), "");
        write(root, &format!("{name}.sdp"), &sdp("VP8"));
    }
    let recording = open(root).unwrap();
    let ids: Vec<&str> = recording.participants.iter().map(|p| p.participant_id.as_str()).collect();
    assert_eq!(ids, ["alice", "bob"]);
    assert!(recording.tracks().all(|(p, t)| file_name(&t.segments[0].rtpdump_path).starts_with(&p.participant_id)));
}

#[test]
fn an_archive_is_extracted_into_the_work_dir_and_its_errors_name_entries() {
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("recording.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    let files = [
        ("user_1/session_1/timing_metadata.json", metadata("user_1", "audio_1", "video_1")),
        ("user_1/session_1/audio_1.rtpdump", String::new()),
        ("user_1/session_1/audio_1.sdp", sdp("opus")),
        ("user_1/session_1/video_1.rtpdump", String::new()),
        ("user_1/session_1/video_1.sdp", sdp("VP8")),
        ("user_1/session_1/notes.txt", "not read".to_owned()),
    ];
    for (name, text) in &files {
        zip.start_file(*name, options).unwrap();
        std::io::Write::write_all(&mut zip, text.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    let work = dir.path().join("work");
    let recording = Recording::open_in(&zip_path, &work).unwrap();
    let extracted: Vec<PathBuf> = std::fs::read_dir(&work).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(extracted.len(), 1, "{extracted:?}");
    assert!(file_name(&extracted[0]).starts_with("tessera-ingest-"));
    assert!(!extracted[0].join("user_1/session_1/notes.txt").exists(), "unread entries are not extracted");
    let (_, audio) = recording.tracks().find(|(_, t)| t.kind == TrackKind::Audio).unwrap();
    // An empty dump: the scan's error names the entry, not the extraction.
    let e = recording.scan(&audio.segments[0]).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}!user_1/session_1/audio_1.rtpdump: ", zip_path.display())), "{e}");
    drop(recording);
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0, "the extraction goes with the recording");
}

#[test]
fn an_ambiguous_segment_names_a_few_candidates_and_counts_the_rest() {
    let paths: Vec<PathBuf> = (0..7).map(|i| PathBuf::from(format!("u/s{i}/audio_1.rtpdump"))).collect();
    let refs: Vec<&PathBuf> = paths.iter().collect();
    let list = candidate_list(&refs);
    assert!(list.starts_with("u/s0/audio_1.rtpdump, u/s1/audio_1.rtpdump"), "{list}");
    assert!(list.ends_with("u/s4/audio_1.rtpdump and 2 more"), "{list}");
    assert_eq!(candidate_list(&refs[..2]), "u/s0/audio_1.rtpdump, u/s1/audio_1.rtpdump");
}
