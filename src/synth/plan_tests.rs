use super::*;

#[test]
fn flash_lookup_matches_the_schedule() {
    let plan = SynthPlan::new(&SynthSpec { participants: 2, duration_ms: 20_000, ..SynthSpec::default() });
    let p = &plan.participants[1];
    for t in (0..20_000).map(|t| t as f64 + 0.5) {
        let flashing = p.flashes_ms.iter().any(|&f| t >= f as f64 && t < (f + FLASH_MS) as f64);
        let speaking = p.flashes_ms.iter().any(|&f| t >= f as f64 - 400.0 && t < (f + FLASH_MS) as f64 + 300.0);
        assert_eq!(p.flashing_at(t), flashing, "{t}");
        assert_eq!(p.speaking_at(t, true), speaking, "{t}");
    }
}

#[test]
fn plan_is_deterministic_and_flashes_are_staggered() {
    let spec = SynthSpec { participants: 4, join_stagger_ms: 300, ..SynthSpec::default() };
    let a = SynthPlan::new(&spec);
    assert_eq!(a, SynthPlan::new(&spec));
    assert_eq!(a.participants[0].flashes_ms, vec![1000, 3000, 5000, 7000, 9000]);
    assert_eq!(a.participants[1].flashes_ms[0], 1500);
    assert_eq!(a.participants[3].join_ms, 900);
    assert_eq!(a.participants[3].video_start_ms, 900);
    for p in &a.participants {
        assert!(p.flashes_ms.iter().all(|f| *f % 100 == 0 && *f >= p.video_start_ms));
    }
    let mut all: Vec<u64> = a.participants.iter().flat_map(|p| p.flashes_ms.clone()).collect();
    all.sort_unstable();
    assert!(all.windows(2).all(|w| w[1] - w[0] >= 500), "beeps never overlap: {all:?}");
}

fn event(participant: &str, action: SynthAction) -> SynthEvent {
    SynthEvent { participant: participant.to_owned(), action }
}

#[test]
fn audio_only_sends_no_video_and_still_flashes() {
    let spec = SynthSpec {
        participants: 2,
        start_mid_gop: true,
        events: vec![
            event("bob", SynthAction::AudioOnly),
            event("bob", SynthAction::Rejoin { leave_ms: 4000, rejoin_ms: 5000 }),
        ],
        ..SynthSpec::default()
    };
    let plan = SynthPlan::new(&spec);
    let (alice, bob) = (&plan.participants[0], &plan.participants[1]);
    assert!(!alice.audio_only && bob.audio_only);
    assert!(alice.sessions.iter().all(|s| !s.video_segments.is_empty()));
    assert_eq!(bob.sessions.len(), 2);
    assert!(bob.sessions.iter().all(|s| s.video_segments.is_empty() && !s.audio_segments.is_empty()));
    assert_eq!(bob.sessions[0].join_ms, bob.audio_start_ms, "an audio-only session starts with its audio");
    // A mid-GOP camera's first flash waits for its keyframe; audio needs no keyframe.
    assert_eq!(alice.flashes_ms, vec![3000, 5000, 7000, 9000]);
    assert_eq!(bob.flashes_ms, vec![2000, 6000, 8000]);
    // The rest of the plan is as without the event.
    let plain = SynthPlan::new(&SynthSpec { events: spec.events[1..].to_vec(), ..spec.clone() });
    let plain_bob = &plain.participants[1];
    assert_eq!(plain.participants[0], *alice);
    assert_eq!((plain_bob.audio_ssrc, plain_bob.video_ssrc), (bob.audio_ssrc, bob.video_ssrc));
    for (a, b) in plain_bob.sessions.iter().zip(&bob.sessions) {
        assert_eq!((&a.user_session_id, &a.audio_segments), (&b.user_session_id, &b.audio_segments));
    }
}

#[test]
fn screenshares_are_clipped_to_presence() {
    let spec = SynthSpec {
        participants: 3,
        join_stagger_ms: 350,
        events: vec![
            event("alice", SynthAction::Screenshare { from_ms: 500, to_ms: 9000 }),
            event("alice", SynthAction::Rejoin { leave_ms: 3000, rejoin_ms: 4950 }),
            event("alice", SynthAction::Leave { at_ms: 8000 }),
            event("bob", SynthAction::Screenshare { from_ms: 0, to_ms: 1000 }),
            event("bob", SynthAction::Screenshare { from_ms: 900, to_ms: 1500 }),
            event("bob", SynthAction::Screenshare { from_ms: 6010, to_ms: 7000 }),
            event("bob", SynthAction::Screenshare { from_ms: 8000, to_ms: 12_000 }),
            event("bob", SynthAction::Screenshare { from_ms: 3000, to_ms: 3090 }),
            event("carol", SynthAction::Screenshare { from_ms: 100, to_ms: 700 }),
        ],
        ..SynthSpec::default()
    };
    let plan = SynthPlan::new(&spec);
    let spans = |p: &SynthParticipant| -> Vec<Vec<(u64, u64)>> {
        p.sessions.iter().map(|s| s.screenshare_segments.clone()).collect()
    };
    let [alice, bob, carol] = [0, 1, 2].map(|i| &plan.participants[i]);
    assert_eq!(spans(alice), vec![vec![(500, 3000)], vec![(5000, 8000)]]);
    // Bob joins at 350 (audio at 363): his screenshare starts on the grid after that;
    // overlapping spans merge, the one past the end is cut there, and 90 ms is too short.
    assert_eq!(spans(bob), vec![vec![(400, 1500), (6100, 7000), (8000, 10_000)]]);
    // Carol joins at 700: nothing of her screenshare is left.
    assert_eq!(spans(carol), vec![Vec::<(u64, u64)>::new()]);
    for p in &plan.participants {
        let s = &p.screenshare;
        assert!(s.video_ssrc != p.video_ssrc && s.audio_ssrc != p.audio_ssrc && s.video_ssrc != s.audio_ssrc);
        assert!(s.rgb != p.rgb && s.tone_hz == p.tone_hz * 2.0);
        assert!(p.flashes_ms.iter().all(|f| f % 100 == 0), "screenshares move no flash");
    }
    assert!(plan.participants.iter().all(|p| !p.audio_only));
}

#[test]
fn colours_are_distinct_for_25() {
    let plan = SynthPlan::new(&SynthSpec { participants: 25, ..SynthSpec::default() });
    for (i, a) in plan.participants.iter().enumerate() {
        for b in &plan.participants[i + 1..] {
            assert_ne!(a.rgb, b.rgb);
            assert_ne!(a.screenshare.rgb, b.screenshare.rgb);
            assert_ne!(a.rgb, b.screenshare.rgb);
            assert_ne!(a.screenshare.rgb, b.rgb);
            assert_ne!(a.participant_id, b.participant_id);
        }
    }
}

#[test]
fn talk_schedule_turns_and_coughs() {
    let turn = |participant: &str, from_ms, to_ms| TalkTurn { participant: participant.to_owned(), from_ms, to_ms };
    let spec = SynthSpec {
        participants: 3,
        talk: vec![turn("bob", 3000, 6000), turn("alice", 0, 3000), turn("alice", 2500, 3200)],
        events: vec![
            event("alice", SynthAction::Talk { from_ms: 9000, to_ms: 9500 }),
            event("carol", SynthAction::Cough { at_ms: 4000 }),
            event("carol", SynthAction::Cough { at_ms: 1000 }),
        ],
        ..SynthSpec::default()
    };
    let plan = SynthPlan::new(&spec);
    let [alice, bob, carol] = [0, 1, 2].map(|i| &plan.participants[i]);
    assert_eq!(alice.talk_ms, Some(vec![(0, 3200), (9000, 9500)]));
    assert_eq!(bob.talk_ms, Some(vec![(3000, 6000)]));
    assert_eq!(carol.talk_ms, Some(vec![]), "in a call with a schedule, carol never talks");
    assert_eq!(carol.coughs_ms, vec![1000, 4000]);
    assert_eq!(
        [0.0, 3100.0, 3300.0, 5999.0, 6000.0, 9200.0].map(|t| plan.talker_at(t)),
        [Some("alice"), Some("alice"), Some("bob"), Some("bob"), None, Some("alice")]
    );
    assert!(carol.coughing_at(1000.0) && carol.coughing_at(1199.0) && !carol.coughing_at(1200.0));
    assert!(!carol.coughing_at(999.0) && carol.coughing_at(4100.0) && !alice.coughing_at(1100.0));
    // Syllables: the envelope starts at its floor, peaks 125 ms into the turn, repeats at 4 Hz.
    assert!((alice.talk_amplitude(0.0, false) - TALK_AMPLITUDE * SYLLABLE_FLOOR as f32).abs() < 1e-6);
    assert!((alice.talk_amplitude(125.0, false) - TALK_AMPLITUDE).abs() < 1e-6);
    assert!((alice.talk_amplitude(375.0, false) - TALK_AMPLITUDE).abs() < 1e-6);
    assert_eq!(bob.talk_amplitude(100.0, false), QUIET_AMPLITUDE);
    // With DTX, outside its turns a microphone is silent but around its beeps.
    let beep = bob.flashes_ms[0] as f64;
    assert_eq!(bob.talk_amplitude(beep + 50.0, true), QUIET_AMPLITUDE);
    assert_eq!(bob.talk_amplitude(beep - 1000.0, true), 0.0);

    // Without a schedule nothing changes: no turns, the rest of the plan as before.
    let plain = SynthPlan::new(&SynthSpec { talk: Vec::new(), events: spec.events[1..].to_vec(), ..spec.clone() });
    assert!(plain.participants.iter().all(|p| p.talk_ms.is_none()));
    assert_eq!(plain.talker_at(100.0), None);
    let strip = |p: &SynthParticipant| SynthParticipant { talk_ms: None, coughs_ms: Vec::new(), ..p.clone() };
    for (a, b) in plan.participants.iter().zip(&plain.participants) {
        assert_eq!(strip(a), strip(b));
    }
}
