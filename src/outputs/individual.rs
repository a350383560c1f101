//! Which individual files a recording gives: per participant session and output kind, the
//! tracks each file holds. A session that republished a track gets one file per track; an
//! `audio_video` file pairs the session's audio and video tracks in start order, and a session
//! with only one medium still gets its file, with that medium alone.

use super::IndividualKind;
use crate::ingest::TrackKind;

/// What selection needs to know of a track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackRef<'a> {
    pub participant_id: &'a str,
    pub user_session_id: &'a str,
    pub track_id: &'a str,
    pub kind: TrackKind,
    pub screenshare: bool,
    pub start_ms: f64,
}

/// One individual file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndividualFile {
    pub kind: IndividualKind,
    pub participant_id: String,
    pub user_session_id: String,
    /// Indices of the tracks it holds: the audio track first, then the video track.
    pub tracks: Vec<usize>,
    /// 1 for the session's first file of this kind, 2 for the next, ...
    pub n: usize,
}

/// The files for `kinds` (duplicates ignored), in a stable order: by kind as asked, then
/// participant and session id.
pub fn select(tracks: &[TrackRef<'_>], kinds: &[IndividualKind]) -> Vec<IndividualFile> {
    let mut sessions: Vec<(&str, &str)> = tracks.iter().map(|t| (t.participant_id, t.user_session_id)).collect();
    sessions.sort_unstable();
    sessions.dedup();
    let mut seen = Vec::new();
    let mut files = Vec::new();
    for &kind in kinds {
        if seen.contains(&kind) {
            continue;
        }
        seen.push(kind);
        for &(participant, session) in &sessions {
            let of = |medium: TrackKind| -> Vec<usize> {
                let mut picked: Vec<usize> = (0..tracks.len())
                    .filter(|&i| {
                        let t = &tracks[i];
                        t.participant_id == participant
                            && t.user_session_id == session
                            && t.kind == medium
                            && t.screenshare == kind.screenshare()
                    })
                    .collect();
                picked.sort_by(|&a, &b| {
                    tracks[a].start_ms.total_cmp(&tracks[b].start_ms).then(tracks[a].track_id.cmp(tracks[b].track_id))
                });
                picked
            };
            let audio = if kind.wants_audio() { of(TrackKind::Audio) } else { Vec::new() };
            let video = if kind.wants_video() { of(TrackKind::Video) } else { Vec::new() };
            for i in 0..audio.len().max(video.len()) {
                let held: Vec<usize> = audio.get(i).into_iter().chain(video.get(i)).copied().collect();
                files.push(IndividualFile {
                    kind,
                    participant_id: participant.to_owned(),
                    user_session_id: session.to_owned(),
                    tracks: held,
                    n: i + 1,
                });
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track<'a>(
        p: &'a str,
        s: &'a str,
        id: &'a str,
        kind: TrackKind,
        screenshare: bool,
        start_ms: f64,
    ) -> TrackRef<'a> {
        TrackRef { participant_id: p, user_session_id: s, track_id: id, kind, screenshare, start_ms }
    }

    fn recording() -> Vec<TrackRef<'static>> {
        vec![
            track("bob", "b1", "a", TrackKind::Audio, false, 0.0),
            track("alice", "a1", "v", TrackKind::Video, false, 0.0),
            track("alice", "a1", "a", TrackKind::Audio, false, 10.0),
            track("alice", "a1", "ss", TrackKind::Video, true, 500.0),
            track("alice", "a1", "ssa", TrackKind::Audio, true, 500.0),
            // Carol republished her camera: two video tracks.
            track("carol", "c1", "v2", TrackKind::Video, false, 900.0),
            track("carol", "c1", "v1", TrackKind::Video, false, 0.0),
            track("carol", "c1", "a", TrackKind::Audio, false, 0.0),
        ]
    }

    #[test]
    fn audio_video_pairs_and_falls_back_to_one_medium() {
        let tracks = recording();
        let files = select(&tracks, &[IndividualKind::AudioVideo]);
        let summary: Vec<(&str, Vec<usize>, usize)> =
            files.iter().map(|f| (f.participant_id.as_str(), f.tracks.clone(), f.n)).collect();
        assert_eq!(
            summary,
            vec![("alice", vec![2, 1], 1), ("bob", vec![0], 1), ("carol", vec![7, 6], 1), ("carol", vec![5], 2)]
        );
    }

    #[test]
    fn single_medium_and_screenshare_kinds() {
        let tracks = recording();
        let files = select(
            &tracks,
            &[IndividualKind::VideoOnly, IndividualKind::ScreenshareAudioVideo, IndividualKind::VideoOnly],
        );
        let summary: Vec<(IndividualKind, &str, Vec<usize>)> =
            files.iter().map(|f| (f.kind, f.participant_id.as_str(), f.tracks.clone())).collect();
        assert_eq!(
            summary,
            vec![
                (IndividualKind::VideoOnly, "alice", vec![1]),
                (IndividualKind::VideoOnly, "carol", vec![6]),
                (IndividualKind::VideoOnly, "carol", vec![5]),
                (IndividualKind::ScreenshareAudioVideo, "alice", vec![4, 3]),
            ]
        );
        assert!(select(&tracks, &[IndividualKind::ScreenshareAudioOnly]).iter().all(|f| f.tracks == vec![4]));
    }
}
