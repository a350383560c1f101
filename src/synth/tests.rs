//! `synth` end to end: what `Recording::open` sees in its output.

use super::*;
use crate::ingest::rtp::parse_rtp;
use crate::ingest::rtpdump::RtpDumpReader;
use crate::ingest::{Track, TrackKind};

/// The SSRCs of the RTP packets of a segment's dump.
fn ssrcs(path: &Path) -> Vec<u32> {
    let file = std::fs::File::open(path).expect("open rtpdump");
    let mut reader = RtpDumpReader::new(file).expect("rtpdump header");
    let mut out = Vec::new();
    while let Some(record) = reader.next_record().expect("rtpdump record") {
        let ssrc = parse_rtp(&record.data).expect("rtp packet").ssrc;
        if !out.contains(&ssrc) {
            out.push(ssrc);
        }
    }
    out
}

#[test]
fn audio_only_and_screenshare_reach_the_recording() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = SynthSpec {
        participants: 2,
        duration_ms: 3000,
        width: 160,
        height: 90,
        events: vec!["alice:audio-only".parse().expect("event"), "bob:screenshare:1000-2500".parse().expect("event")],
        ..SynthSpec::default()
    };
    let out = synth(&spec, dir.path()).expect("synth");
    let (alice, bob) = (&out.plan.participants[0], &out.plan.participants[1]);
    assert!(alice.audio_only && !alice.flashes_ms.is_empty(), "an audio-only sender still beeps");
    assert_eq!(bob.sessions[0].screenshare_segments, vec![(1000, 2500)]);
    let names: Vec<String> = std::fs::read_dir(dir.path().join("alice"))
        .expect("alice's files")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("video") && !n.contains("screenshare")), "{names:?}");

    let recording = crate::ingest::Recording::open(dir.path()).expect("open");
    assert_eq!(recording.participants.len(), 2);
    let summary = |tracks: &[Track]| -> Vec<(TrackKind, bool, usize)> {
        tracks.iter().map(|t| (t.kind, t.screenshare, t.segments.len())).collect()
    };
    let (a, b) = (&recording.participants[0], &recording.participants[1]);
    assert_eq!((a.participant_id.as_str(), b.participant_id.as_str()), ("alice", "bob"));
    assert_eq!(summary(&a.tracks), vec![(TrackKind::Audio, false, 1)]);
    assert_eq!(
        summary(&b.tracks),
        vec![
            (TrackKind::Audio, false, 1),
            (TrackKind::Audio, true, 1),
            (TrackKind::Video, false, 1),
            (TrackKind::Video, true, 1)
        ]
    );
    let short = &bob.user_session_id[..8];
    let [mic, share_audio, camera, share] = [0, 1, 2, 3].map(|i| &b.tracks[i]);
    assert_eq!(share.track_id, format!("{short}:TRACK_TYPE_SCREEN_SHARE:0"));
    assert_eq!(share_audio.track_id, format!("{short}:TRACK_TYPE_SCREEN_SHARE_AUDIO:0"));
    assert_eq!(share.segments[0].codec, camera.segments[0].codec);
    assert_eq!(share_audio.segments[0].codec, mic.segments[0].codec);
    assert_eq!(share.segments[0].meta.track_type, TrackType::ScreenShare);
    assert_eq!(share_audio.segments[0].meta.track_type, TrackType::ScreenShareAudio);
    assert!(share.segments[0].rtpdump_path.ends_with(format!("bob_{short}_screenshare_0.rtpdump")));
    assert!(share_audio.segments[0].rtpdump_path.ends_with(format!("bob_{short}_screenshare_audio_0.rtpdump")));
    let start = recording.call.call_start_unix_ms;
    for track in [share, share_audio] {
        let meta = &track.segments[0].meta;
        // A libwebrtc-like Opus packet leaves with the capture 6.5 ms after its decoded audio.
        let first_ms = meta.first_rtp_unix_timestamp - start;
        assert!((1000..=1007).contains(&first_ms), "{} starts at {first_ms} ms", track.track_id);
        let last_ms = meta.last_rtp_unix_timestamp.expect("last packet") - start;
        assert!((2400..=2507).contains(&last_ms), "{} ends at {last_ms} ms", track.track_id);
    }
    let ssrc_of = |t: &Track| ssrcs(&t.segments[0].rtpdump_path);
    assert_eq!(ssrc_of(share), vec![bob.screenshare.video_ssrc]);
    assert_eq!(ssrc_of(share_audio), vec![bob.screenshare.audio_ssrc]);
    assert_eq!(ssrc_of(camera), vec![bob.video_ssrc]);
    assert_eq!(ssrc_of(mic), vec![bob.audio_ssrc]);
}

/// A talk schedule with audio levels: the levels each microphone's packets carry follow the
/// turns and the cough, and the dominant speaker drawn from them follows the turns.
#[test]
fn talk_schedule_reaches_the_audio_levels() {
    use crate::audio::speaker::{DominantSpeaker, SpeakerConfig};
    use crate::ingest::audio_level::segment_levels;

    let dir = tempfile::tempdir().expect("tempdir");
    let turn = |participant: &str, from_ms, to_ms| TalkTurn { participant: participant.to_owned(), from_ms, to_ms };
    let spec = SynthSpec {
        participants: 2,
        duration_ms: 6000,
        width: 160,
        height: 90,
        talk: vec![turn("alice", 0, 3000), turn("bob", 3000, 6000)],
        events: vec!["alice:cough:4500".parse().expect("event"), "bob:audio-only".parse().expect("event")],
        audio_level_ext: true,
        network: NetworkSpec { red: true, ..NetworkSpec::default() },
        ..SynthSpec::default()
    };
    synth(&spec, dir.path()).expect("synth");
    let recording = crate::ingest::Recording::open(dir.path()).expect("open");
    // Each microphone's levels as (call ms, -dBov): its first packet's ticks are its start.
    let mut placed = Vec::new();
    for participant in &recording.participants {
        let track = participant.tracks.iter().find(|t| t.kind == TrackKind::Audio).expect("microphone");
        let segment = &track.segments[0];
        assert_eq!(segment.audio_level_ext, Some(AUDIO_LEVEL_EXT_ID));
        let points =
            segment_levels(&segment.rtpdump_path, segment.payload_type, segment.clock_rate_hz, &segment.aux, 1)
                .expect("levels");
        let first = points.first().expect("levels").ticks;
        let start_ms = (segment.meta.first_rtp_unix_timestamp - recording.call.call_start_unix_ms) as f64;
        let levels: Vec<(f64, u8)> =
            points.iter().map(|p| (start_ms + (p.ticks - first) as f64 / 48.0, p.level.minus_dbov)).collect();
        assert!(levels.len() > 250, "{} levels", levels.len());
        placed.push((participant.participant_id.clone(), levels));
    }
    let level_at = |who: usize, t_ms: f64| -> u8 {
        placed[who].1.iter().find(|(at, _)| *at >= t_ms).map_or(127, |(_, level)| *level)
    };
    // Talking: a 0.3 tone in syllables (-13 to -25 dBov); otherwise -53 dBov; a cough -9 dBov.
    for t in [500.0, 1500.0, 2500.0] {
        assert!(level_at(0, t) <= 28 && level_at(1, t) >= 45, "{t}: {} / {}", level_at(0, t), level_at(1, t));
    }
    for t in [3500.0, 5500.0] {
        assert!(level_at(1, t) <= 28 && level_at(0, t) >= 45, "{t}: {} / {}", level_at(0, t), level_at(1, t));
    }
    assert!(level_at(0, 4600.0) <= 12, "cough {}", level_at(0, 4600.0));

    let mut tracker = DominantSpeaker::new(SpeakerConfig::default());
    let mut seen: Vec<String> = Vec::new();
    for n in 1..=300 {
        let t_ms = f64::from(n) * 20.0;
        let levels: Vec<(&str, f32)> = placed
            .iter()
            .map(|(id, levels)| {
                let level = levels.iter().find(|(at, _)| *at >= t_ms - 20.0).map_or(127, |(_, l)| *l);
                let level = crate::ingest::audio_level::AudioLevel { minus_dbov: level, voice: false };
                (id.as_str(), level.linear())
            })
            .collect();
        if let Some(speaker) = tracker.update(t_ms, &levels)
            && seen.last().is_none_or(|last| last != speaker)
        {
            seen.push(speaker.to_owned());
        }
        if n == 150 {
            assert_eq!(tracker.current(), Some("alice"), "at 3 s");
        }
        if n == 200 {
            assert_eq!(tracker.current(), Some("bob"), "at 4 s");
        }
    }
    assert_eq!(seen, vec!["alice".to_owned(), "bob".to_owned()], "the cough does not switch");
}
