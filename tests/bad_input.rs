//! Bad input: each case gives an error naming the file and what is wrong, a non-zero exit,
//! and no file (half-written or not) in the output directory.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};

use support::*;
use tessera::synth::{SynthSpec, synth};

fn small_call(dir: &Path) -> PathBuf {
    let input = dir.join("call");
    let spec = SynthSpec { participants: 2, duration_ms: 1500, width: 160, height: 90, ..SynthSpec::default() };
    synth(&spec, &input).expect("synth");
    input
}

fn find(dir: &Path, suffix: &str) -> PathBuf {
    let alice = dir.join("alice");
    files_in(&alice)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no *{suffix} in {}", alice.display()))
}

/// Runs the composite on `input`, expects failure, and checks the message names each of
/// `expected` and that nothing was written.
fn expect_failure(input_flag: &str, input: &Path, out: &Path, expected: &[&str]) {
    let output = composite(input_flag, input, out, &["--size", "320x180"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "expected failure: {}", text(&output));
    for needle in expected {
        assert!(stderr.contains(needle), "stderr should mention `{needle}`: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(files_in(out).is_empty(), "nothing written: {:?}", files_in(out));
}

#[test]
fn missing_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    for p in ["alice", "bob"] {
        for f in files_in(&input.join(p)) {
            if f.to_string_lossy().ends_with("_timing_metadata.json") {
                std::fs::remove_file(f).expect("rm");
            }
        }
    }
    expect_failure("--input-dir", &input, &dir.path().join("out"), &["_timing_metadata.json", "call"]);
}

#[test]
fn unparseable_metadata_names_file_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    let meta = find(&input, "_timing_metadata.json");
    std::fs::write(&meta, b"{\n  \"call_type\": \"default\",\n  \"call_id\": 12\n}").expect("write");
    let name = meta.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
    expect_failure("--input-dir", &input, &dir.path().join("out"), &[&name, "call_id", "line 3"]);
}

#[test]
fn metadata_missing_a_required_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    let meta = find(&input, "_timing_metadata.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).expect("read")).expect("json");
    json["segments"]["video"][0].as_object_mut().expect("segment").remove("first_rtp_rtp_timestamp");
    std::fs::write(&meta, serde_json::to_vec(&json).expect("json")).expect("write");
    expect_failure("--input-dir", &input, &dir.path().join("out"), &["first_rtp_rtp_timestamp"]);
}

#[test]
fn sdp_with_an_unknown_codec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    let sdp = find(&input, "_video_0.sdp");
    std::fs::write(&sdp, "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n").expect("write");
    let name = sdp.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
    expect_failure("--input-dir", &input, &dir.path().join("out"), &[&name, "H265"]);
}

#[test]
fn sdp_with_a_clock_rate_the_codec_does_not_allow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    let sdp = find(&input, "_audio_0.sdp");
    let text = std::fs::read_to_string(&sdp).expect("read");
    assert!(text.contains("opus/48000"), "{text}");
    std::fs::write(&sdp, text.replace("opus/48000", "opus/8000")).expect("write");
    let name = sdp.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
    let expected = [name.as_str(), "rtpmap clock rate", "8000", "requires 48000"];
    expect_failure("--input-dir", &input, &dir.path().join("out"), &expected);
}

#[test]
fn missing_sdp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    let sdp = find(&input, "_audio_0.sdp");
    std::fs::remove_file(&sdp).expect("rm");
    let name = sdp.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
    expect_failure("--input-dir", &input, &dir.path().join("out"), &[&name, "missing SDP"]);
}

/// Cut inside its file header (a record cut short is skipped: see tests/damaged.rs).
#[test]
fn truncated_rtpdump() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    let dump = find(&input, "_video_0.rtpdump");
    let bytes = std::fs::read(&dump).expect("read");
    let preamble = bytes.iter().position(|b| *b == b'\n').expect("preamble") + 1;
    std::fs::write(&dump, &bytes[..preamble + 9]).expect("write");
    let name = dump.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
    expect_failure("--input-dir", &input, &dir.path().join("out"), &[&name, "header truncated", "got 9"]);
}

#[test]
fn garbage_rtpdump() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    let dump = find(&input, "_audio_0.rtpdump");
    let garbage: Vec<u8> = (0..4096_u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&dump, garbage).expect("write");
    let name = dump.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
    expect_failure("--input-dir", &input, &dir.path().join("out"), &[&name, "preamble"]);
}

#[test]
fn zip_entry_escaping_the_output_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zip_path = dir.path().join("evil.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).expect("create"));
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("alice/alice_timing_metadata.json", options).expect("entry");
    zip.write_all(b"{}").expect("write");
    zip.start_file("../../evil.txt", options).expect("entry");
    zip.write_all(b"owned").expect("write");
    zip.finish().expect("finish");
    expect_failure("--input-file", &zip_path, &dir.path().join("out"), &["evil.zip", "../../evil.txt", "outside"]);
}

#[test]
fn symlink_in_a_tar_gz() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tar_path = dir.path().join("link.tar.gz");
    let file = std::fs::File::create(&tar_path).expect("create");
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    builder.append_link(&mut header, "alice/alice_timing_metadata.json", "/etc/passwd").expect("link");
    builder.into_inner().expect("tar").finish().expect("gz");
    expect_failure(
        "--input-file",
        &tar_path,
        &dir.path().join("out"),
        &["link.tar.gz", "alice/alice_timing_metadata.json", "symlink"],
    );
}

#[test]
fn unsupported_input_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("call.rar");
    std::fs::write(&path, b"Rar!\x1a\x07\x00 not a recording").expect("write");
    expect_failure("--input-file", &path, &dir.path().join("out"), &["call.rar", "unsupported"]);
}

#[test]
fn bad_size_is_rejected_before_any_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    let out = dir.path().join("out");
    let output = composite("--input-dir", &input, &out, &["--size", "321x180"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("321x180"), "{}", text(&output));
    assert!(files_in(&out).is_empty());
}

/// Zips every file under `dir`, named by its path relative to `dir`.
fn zip_dir(dir: &Path, zip_path: &Path) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(zip_path).expect("create"));
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let name = path.strip_prefix(dir).expect("relative").to_string_lossy().into_owned();
            zip.start_file(name, zip::write::SimpleFileOptions::default()).expect("entry");
            zip.write_all(&std::fs::read(&path).expect("read")).expect("write");
        }
    }
    zip.finish().expect("finish");
}

/// Rewrites a synthetic recording into the layout Stream's docs draw:
/// `user_N/session_1/{audio_1.rtpdump, audio_1.sdp, video_1.rtpdump, ..., timing_metadata.json}`.
fn stream_documented_layout(input: &Path, out: &Path) {
    let mut participants: Vec<PathBuf> =
        std::fs::read_dir(input).expect("read_dir").map(|e| e.expect("entry").path()).collect();
    participants.sort();
    for (user, participant) in participants.iter().enumerate() {
        let meta = files_in(participant)
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with("_timing_metadata.json"))
            .expect("metadata");
        let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).expect("read")).expect("json");
        let folder = out.join(format!("user_{}/session_1", user + 1));
        std::fs::create_dir_all(&folder).expect("mkdir");
        for kind in ["audio", "video"] {
            for (index, segment) in json["segments"][kind].as_array_mut().expect("segments").iter_mut().enumerate() {
                let old = segment["base_filename"].as_str().expect("base_filename").to_owned();
                let new = format!("{kind}_{}", index + 1);
                for ext in ["rtpdump", "sdp"] {
                    std::fs::copy(participant.join(format!("{old}.{ext}")), folder.join(format!("{new}.{ext}")))
                        .expect("copy");
                }
                segment["base_filename"] = new.into();
            }
        }
        std::fs::write(folder.join("timing_metadata.json"), serde_json::to_vec(&json).expect("json")).expect("write");
    }
}

#[test]
fn streams_documented_archive_layout_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    let layout = dir.path().join("layout");
    stream_documented_layout(&input, &layout);
    let zip_path = dir.path().join("recording.zip");
    zip_dir(&layout, &zip_path);
    let output =
        tessera(&["raw", "list-tracks", "--input-file", zip_path.to_str().expect("utf-8"), "--format", "json"]);
    assert!(output.status.success(), "{}", text(&output));
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(listed["userIds"], serde_json::json!(["alice", "bob"]), "{listed}");
    let tracks = listed["tracks"].as_array().expect("tracks");
    assert!(tracks.len() >= 4, "{listed}");
}

#[test]
fn an_error_inside_an_archive_names_the_entry_not_a_temporary_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    let sdp = find(&input, "_video_0.sdp");
    std::fs::write(&sdp, "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n").expect("write");
    let zip_path = dir.path().join("recording.zip");
    zip_dir(&input, &zip_path);
    let entry = format!("recording.zip!alice/{}", sdp.file_name().and_then(|n| n.to_str()).expect("name"));
    let out = dir.path().join("out");
    expect_failure("--input-file", &zip_path, &out, &[&entry, "H265"]);
    let output = composite("--input-file", &zip_path, &out, &["--size", "320x180"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("tessera-ingest"), "{stderr}");
}
