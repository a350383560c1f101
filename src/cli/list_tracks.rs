//! `tessera raw list-tracks`: the tracks of a recording, in `stream-cli`'s formats (table,
//! json, users, sessions, tracks, completion), always in the same order.

use clap::Args;
use serde::Serialize;
use tessera::ingest::{ParticipantSession, Recording, Track, TrackKind};

use super::RawInput;
use super::interrupt::guard;

#[derive(Args, Debug)]
pub struct ListTracksArgs {
    #[command(flatten)]
    input: RawInput,
    /// Accepted for compatibility; list-tracks writes nothing.
    #[arg(long)]
    output: Option<std::path::PathBuf>,
    /// table, json, users, sessions, tracks or completion.
    #[arg(long, default_value = "table", value_parser = ["table", "json", "users", "sessions", "tracks", "completion"])]
    format: String,
    /// Only audio or only video tracks (all formats).
    #[arg(long, value_parser = ["audio", "video"])]
    track_type: Option<String>,
    /// What `--format completion` lists: users, sessions or tracks.
    #[arg(long, default_value = "tracks", value_parser = ["users", "sessions", "tracks"])]
    completion_type: String,
}

/// One track as `stream-cli`'s JSON has it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TrackJson {
    call_type: String,
    call_id: String,
    call_session_id: String,
    call_start_time: String,
    user_id: String,
    session_id: String,
    track_id: String,
    track_type: String,
    track_kind: &'static str,
    is_screenshare: bool,
    codec: String,
    segment_count: usize,
    track_start_time: String,
    track_end_time: String,
    segments: Vec<SegmentJson>,
    #[serde(rename = "ConcatenatedTrackFileInfo")]
    concatenated_track_file_info: Option<()>,
}

#[derive(Serialize)]
struct SegmentJson {
    #[serde(rename = "RtpDumpPath")]
    rtpdump_path: String,
    #[serde(rename = "SdpPath")]
    sdp_path: String,
    #[serde(rename = "ContainerPath")]
    container_path: String,
    #[serde(rename = "ContainerExt")]
    container_ext: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListJson {
    tracks: Vec<TrackJson>,
    user_ids: Vec<String>,
    sessions: Vec<String>,
}

fn rfc3339_ms(unix_ms: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn track_json(recording: &Recording, session: &ParticipantSession, track: &Track) -> TrackJson {
    let first = track.segments.first();
    let start = first.map_or(0, |s| s.meta.first_rtp_unix_timestamp);
    let end = track
        .segments
        .iter()
        .map(|s| s.meta.last_rtp_unix_timestamp.unwrap_or(s.meta.first_rtp_unix_timestamp))
        .max()
        .unwrap_or(start);
    TrackJson {
        call_type: recording.call.call_type.clone(),
        call_id: recording.call.call_id.clone(),
        call_session_id: recording.call.call_session_id.clone(),
        call_start_time: rfc3339_ms(recording.call.call_start_unix_ms),
        user_id: session.participant_id.clone(),
        session_id: session.user_session_id.clone(),
        track_id: track.track_id.clone(),
        track_type: first.map(|s| s.meta.track_type.as_str().to_owned()).unwrap_or_default(),
        track_kind: track.kind.as_str(),
        is_screenshare: track.screenshare,
        codec: first.map(|s| s.meta.codec.clone()).unwrap_or_default(),
        segment_count: track.segments.len(),
        track_start_time: rfc3339_ms(start),
        track_end_time: rfc3339_ms(end),
        segments: track
            .segments
            .iter()
            .map(|s| SegmentJson {
                rtpdump_path: file_name(&s.rtpdump_path),
                sdp_path: file_name(&s.sdp_path),
                container_path: String::new(),
                container_ext: String::new(),
            })
            .collect(),
        concatenated_track_file_info: None,
    }
}

fn sorted_unique(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut values: Vec<String> = values.collect();
    values.sort_unstable();
    values.dedup();
    values
}

pub fn list_tracks(args: ListTracksArgs) -> anyhow::Result<()> {
    args.input.init_logging();
    let guarded = guard(None)?;
    let recording =
        Recording::open_in(&args.input.path(guarded.work_dir.path(), &guarded.cancel)?, guarded.work_dir.path())?;
    let wanted = |t: &Track| match args.track_type.as_deref() {
        Some("audio") => t.kind == TrackKind::Audio,
        Some("video") => t.kind == TrackKind::Video,
        _ => true,
    };
    let tracks: Vec<(&ParticipantSession, &Track)> = recording.tracks().filter(|(_, t)| wanted(t)).collect();
    let users = || sorted_unique(tracks.iter().map(|(p, _)| p.participant_id.clone()));
    let sessions = || sorted_unique(tracks.iter().map(|(p, _)| p.user_session_id.clone()));
    let track_ids = || sorted_unique(tracks.iter().map(|(_, t)| t.track_id.clone()));
    let lines = match (args.format.as_str(), args.completion_type.as_str()) {
        ("users", _) | ("completion", "users") => users(),
        ("sessions", _) | ("completion", "sessions") => sessions(),
        ("tracks", _) | ("completion", _) => track_ids(),
        ("json", _) => {
            let json = ListJson {
                tracks: tracks.iter().map(|(p, t)| track_json(&recording, p, t)).collect(),
                user_ids: users(),
                sessions: sessions(),
            };
            vec![serde_json::to_string_pretty(&json)?]
        }
        _ => table(&tracks),
    };
    for line in lines {
        println!("{line}");
    }
    Ok(())
}

fn table(tracks: &[(&ParticipantSession, &Track)]) -> Vec<String> {
    let row = |user: &str, session: &str, track: &str, kind: &str, screenshare: &str, codec: &str, segments: &str| {
        format!("{user:<22} {session:<38} {track:<38} {kind:<30} {screenshare:<12} {codec:<12} {segments}")
    };
    let mut lines = vec![row("USER ID", "SESSION ID", "TRACK ID", "TYPE", "SCREENSHARE", "CODEC", "SEGMENTS")];
    for (session, track) in tracks {
        let first = track.segments.first();
        lines.push(row(
            &session.participant_id,
            &session.user_session_id,
            &track.track_id,
            first.map(|s| s.meta.track_type.as_str()).unwrap_or_default(),
            if track.screenshare { "Yes" } else { "No" },
            first.map(|s| s.meta.codec.as_str()).unwrap_or_default(),
            &track.segments.len().to_string(),
        ));
    }
    lines
}
