//! Damage confined to a few records of an rtpdump (a torn write, an arrival time hours off, a
//! record cut short by a recorder that died mid-write, a snap-length capture) is skipped,
//! counted in the manifest with its reason, and the call renders in sync; damage past 1% of a
//! file's records, or a file with no usable packet, is a named error.

mod support;

use std::path::{Path, PathBuf};

use support::*;
use tessera::layout::Layout;
use tessera::synth::plan::BEEP_HZ;
use tessera::synth::{SynthPlan, SynthSpec, synth};

const FRAME_MS: f64 = 1000.0 / 30.0;

/// One record of an rtpdump file: where it starts, its length field and arrival offset.
#[derive(Debug, Clone, Copy)]
struct RecordAt {
    byte_offset: usize,
    length: usize,
    offset_ms: u32,
}

/// The records of a well-formed rtpdump (format: see `src/ingest/rtpdump.rs`).
fn records(bytes: &[u8]) -> Vec<RecordAt> {
    let preamble = bytes.iter().position(|b| *b == b'\n').expect("preamble line") + 1;
    let mut at = preamble + 16;
    let mut out = Vec::new();
    while at + 8 <= bytes.len() {
        let length = usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
        let offset_ms = u32::from_be_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        assert!(length >= 8 && at + length <= bytes.len(), "record at byte {at} is not well formed");
        out.push(RecordAt { byte_offset: at, length, offset_ms });
        at += length;
    }
    assert_eq!(at, bytes.len(), "records end at the end of the file");
    out
}

/// Index of the first RTP record (not RTCP) arriving at or after `from_ms`.
fn rtp_record_at(bytes: &[u8], from_ms: u32) -> usize {
    records(bytes)
        .iter()
        .position(|r| {
            r.offset_ms >= from_ms && u16::from_be_bytes([bytes[r.byte_offset + 2], bytes[r.byte_offset + 3]]) > 0
        })
        .unwrap_or_else(|| panic!("no RTP record at or after {from_ms} ms"))
}

/// The ways a record gets damaged.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// A torn write: the packet's first byte says RTP version 1.
    NotRtpV2,
    /// The arrival offset is five hours later than the record's neighbours.
    ArrivalHoursOff,
    /// The packet length field claims 100 bytes more than the record holds.
    LengthPastRecord,
}

fn damage(bytes: &mut [u8], record: &RecordAt, how: Damage) {
    let at = record.byte_offset;
    match how {
        Damage::NotRtpV2 => bytes[at + 8] = (bytes[at + 8] & 0x3f) | 0x40,
        Damage::ArrivalHoursOff => {
            let offset_ms = record.offset_ms + 5 * 3_600_000;
            bytes[at + 4..at + 8].copy_from_slice(&offset_ms.to_be_bytes());
        }
        Damage::LengthPastRecord => {
            let plen = u16::try_from(record.length - 8 + 100).expect("fits");
            bytes[at + 2..at + 4].copy_from_slice(&plen.to_be_bytes());
        }
    }
}

fn find(dir: &Path, participant: &str, suffix: &str) -> PathBuf {
    files_in(&dir.join(participant))
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(suffix))
        .unwrap_or_else(|| panic!("no *{suffix} for {participant}"))
}

fn file_name(path: &Path) -> String {
    path.file_name().and_then(|n| n.to_str()).expect("name").to_owned()
}

fn track<'a>(manifest: &'a serde_json::Value, participant: &str, kind: &str) -> &'a serde_json::Value {
    tracks(manifest, participant, kind)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {kind} track of {participant} in {manifest}"))
}

#[test]
fn damaged_records_are_skipped_counted_and_the_call_renders_in_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    let spec = SynthSpec { participants: 2, duration_ms: 7000, width: 320, height: 180, ..SynthSpec::default() };
    synth(&spec, &input).expect("synth");
    let plan = SynthPlan::new(&spec);

    // Alice's audio: a torn write at 2 s and an arrival time hours off at 4 s (her beeps are at
    // 1, 3 and 5 s). Her video: a snap-length record at 1.5 s (the picture waits for the
    // keyframe at 2 s) and a last record cut short.
    let audio = find(&input, "alice", "_audio_0.rtpdump");
    let mut bytes = std::fs::read(&audio).expect("read");
    let all = records(&bytes);
    let (torn, late) = (rtp_record_at(&bytes, 2000), rtp_record_at(&bytes, 4000));
    damage(&mut bytes, &all[torn], Damage::NotRtpV2);
    damage(&mut bytes, &all[late], Damage::ArrivalHoursOff);
    std::fs::write(&audio, &bytes).expect("write");
    let video = find(&input, "alice", "_video_0.rtpdump");
    let mut bytes = std::fs::read(&video).expect("read");
    let all = records(&bytes);
    let snapped = rtp_record_at(&bytes, 1500);
    damage(&mut bytes, &all[snapped], Damage::LengthPastRecord);
    let last = all.last().expect("records");
    bytes.truncate(last.byte_offset + last.length / 2);
    std::fs::write(&video, &bytes).expect("write");

    let out = dir.path().join("out");
    let mp4 = render_ok(&input, &out, &["--size", "320x180"]);
    let frames = Frames::decode(&mp4, 160, 90);
    let samples = decode_audio(&mp4);
    let layout = Layout::builtin("grid").expect("grid layout");
    let cells = layout.place(&[Some((320, 180)), Some((320, 180))], 320, 180);
    for (p, cell) in plan.participants.iter().zip(&cells) {
        let (x, y) = cell.cell.center();
        let at = ((x / 2.0) as usize, (y / 2.0) as usize);
        let flashes = assert_flashes_on_time(&frames, &p.participant_id, &p.flashes_ms, at, FRAME_MS);
        assert!(flashes >= 3, "{}: {flashes} flashes", p.participant_id);
        assert_beeps_on_time(&samples, BEEP_HZ, &p.participant_id, &p.flashes_ms, 20.0);
    }

    let manifest = manifest(&out);
    let audio = track(&manifest, "alice", "audio");
    assert_eq!(audio["records_skipped"], 2, "{audio}");
    assert_eq!(audio["records_skipped_reasons"], serde_json::json!({"not_rtp_v2": 1, "arrival_out_of_range": 1}));
    let segment = &audio["segments"][0];
    assert_eq!(
        (segment["rtpdump"].as_str(), &segment["records_skipped"]),
        (Some(file_name(&find(&input, "alice", "_audio_0.rtpdump")).as_str()), &serde_json::json!(2))
    );
    let video = track(&manifest, "alice", "video");
    assert_eq!(video["records_skipped"], 2, "{video}");
    assert_eq!(video["records_skipped_reasons"], serde_json::json!({"length_past_record": 1, "truncated": 1}));
    for kind in ["audio", "video"] {
        let bob = track(&manifest, "bob", kind);
        assert_eq!(
            (&bob["records_skipped"], &bob["records_skipped_reasons"]),
            (&serde_json::json!(0), &serde_json::json!({}))
        );
    }
}

/// Runs the composite on `input`, expects failure naming each of `expected`, and checks that
/// nothing was written.
fn expect_failure(input: &Path, out: &Path, expected: &[&str]) {
    let output = composite("--input-dir", input, out, &["--size", "320x180"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "expected failure: {}", text(&output));
    eprintln!("{stderr}");
    for needle in expected {
        assert!(stderr.contains(needle), "stderr should mention `{needle}`: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(files_in(out).is_empty(), "nothing written: {:?}", files_in(out));
}

fn small_call(dir: &Path) -> PathBuf {
    let input = dir.join("call");
    let spec = SynthSpec { participants: 2, duration_ms: 1500, width: 160, height: 90, ..SynthSpec::default() };
    synth(&spec, &input).expect("synth");
    input
}

#[test]
fn damage_past_one_percent_of_the_records_is_a_named_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    let audio = find(&input, "alice", "_audio_0.rtpdump");
    let mut bytes = std::fs::read(&audio).expect("read");
    let all = records(&bytes);
    // 3 torn records of about 75: 4%.
    let first = rtp_record_at(&bytes, 500);
    for index in [first, first + 10, first + 20] {
        damage(&mut bytes, &all[index], Damage::NotRtpV2);
    }
    std::fs::write(&audio, &bytes).expect("write");
    let out = dir.path().join("out");
    let name = file_name(&audio);
    let total = all.len().to_string();
    let first = format!("record {first}");
    expect_failure(&input, &out, &[&name, "3 of", &total, &first, "RTP version is 1", "1%"]);
}

#[test]
fn a_file_with_no_usable_packet_is_a_named_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    let video = find(&input, "alice", "_video_0.rtpdump");
    let mut bytes = std::fs::read(&video).expect("read");
    let all = records(&bytes);
    for record in &all {
        damage(&mut bytes, record, Damage::LengthPastRecord);
    }
    std::fs::write(&video, &bytes).expect("write");
    let out = dir.path().join("out");
    let count = format!("{} of {}", all.len(), all.len());
    expect_failure(&input, &out, &[&file_name(&video), &count, "record 0", "packet length"]);
}

#[test]
fn a_garbage_record_length_early_in_the_file_is_a_named_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = small_call(dir.path());
    let video = find(&input, "alice", "_video_0.rtpdump");
    let mut bytes = std::fs::read(&video).expect("read");
    let all = records(&bytes);
    let at = all[5].byte_offset;
    bytes[at..at + 2].copy_from_slice(&[0, 3]);
    std::fs::write(&video, &bytes).expect("write");
    let out = dir.path().join("out");
    expect_failure(&input, &out, &[&file_name(&video), "record 5", "length 3", "unread"]);
}
