use super::*;

/// A talker's level at `t_ms`: a 0.3 tone (RMS 0.21) under a 4 Hz syllable envelope.
fn speech(t_ms: f64) -> f32 {
    let envelope = 0.25 + 0.75 * 0.5 * (1.0 - (std::f64::consts::TAU * 4.0 * t_ms / 1000.0).cos());
    (0.3 / std::f64::consts::SQRT_2 * envelope) as f32
}

/// Background: a tone at -50 dBFS.
const QUIET: f32 = 0.0022;

/// The dominant speaker after each tick of `tick_ms` up to `until_ms`, levels from `at`.
fn run(
    config: SpeakerConfig,
    tick_ms: f64,
    until_ms: f64,
    at: impl Fn(f64) -> Vec<(&'static str, f32)>,
) -> Vec<(f64, Option<String>)> {
    let mut tracker = DominantSpeaker::new(config);
    let mut out = Vec::new();
    let mut n = 1;
    loop {
        let t_ms = n as f64 * tick_ms;
        if t_ms > until_ms {
            return out;
        }
        let dominant = tracker.update(t_ms, &at(t_ms - tick_ms / 2.0)).map(str::to_owned);
        out.push((t_ms, dominant));
        n += 1;
    }
}

/// The dominant speaker at `t_ms` in a run.
fn at_time(run: &[(f64, Option<String>)], t_ms: f64) -> Option<&str> {
    run.iter().take_while(|(t, _)| *t <= t_ms).last().and_then(|(_, d)| d.as_deref())
}

/// When `who` first became dominant at or after `from_ms`.
fn first_time(run: &[(f64, Option<String>)], who: &str, from_ms: f64) -> Option<f64> {
    run.iter().find(|(t, d)| *t >= from_ms && d.as_deref() == Some(who)).map(|(t, _)| *t)
}

/// Who was dominant at some point from `from_ms` on.
fn dominants_from(run: &[(f64, Option<String>)], from_ms: f64) -> Vec<Option<&str>> {
    let mut seen: Vec<Option<&str>> = Vec::new();
    for (_, d) in run.iter().filter(|(t, _)| *t >= from_ms) {
        if seen.last() != Some(&d.as_deref()) {
            seen.push(d.as_deref());
        }
    }
    seen
}

fn talking(t: f64, turns: &[(&str, f64, f64)], who: &str) -> f32 {
    if turns.iter().any(|(name, from, to)| *name == who && t >= *from && t < *to) { speech(t) } else { QUIET }
}

#[test]
fn turns_switch_within_a_second_at_any_tick_length() {
    let turns =
        [("alice", 0.0, 3000.0), ("bob", 3000.0, 6000.0), ("carol", 6000.0, 9000.0), ("alice", 9000.0, 12_000.0)];
    for tick_ms in [20.0, 1000.0 / 30.0, 40.0, 1000.0 / 60.0] {
        let run = run(SpeakerConfig::default(), tick_ms, 12_000.0, |t| {
            ["alice", "bob", "carol"].iter().map(|who| (*who, talking(t, &turns, who))).collect()
        });
        assert_eq!(first_time(&run, "alice", 0.0).map(|t| t <= 700.0), Some(true), "tick {tick_ms}");
        for (who, from, _) in &turns[1..] {
            let switched = first_time(&run, who, *from).unwrap_or(f64::INFINITY);
            assert!(switched - from <= 1000.0, "tick {tick_ms}: {who} took over {:.0} ms late", switched - from);
        }
        assert_eq!(
            dominants_from(&run, 0.0),
            vec![None, Some("alice"), Some("bob"), Some("carol"), Some("alice")],
            "tick {tick_ms}"
        );
    }
}

#[test]
fn a_cough_never_switches() {
    // Bob coughs loudly for 250 ms while alice talks, while everyone is silent, and before
    // anyone has spoken.
    for cough_ms in [500.0, 2000.0, 5000.0] {
        let run = run(SpeakerConfig::default(), 20.0, 8000.0, |t| {
            let alice = if (1000.0..3000.0).contains(&t) { speech(t) } else { QUIET };
            let bob = if (cough_ms..cough_ms + 250.0).contains(&t) { 0.5 } else { QUIET };
            vec![("alice", alice), ("bob", bob)]
        });
        assert!(
            run.iter().all(|(_, d)| d.as_deref() != Some("bob")),
            "cough at {cough_ms}: {:?}",
            dominants_from(&run, 0.0)
        );
        assert_eq!(at_time(&run, 8000.0), Some("alice"));
    }
}

#[test]
fn brief_overlap_at_a_lower_level_keeps_the_speaker() {
    let run = run(SpeakerConfig::default(), 1000.0 / 30.0, 6000.0, |t| {
        let bob = if (2000.0..2500.0).contains(&t) { 0.05 } else { QUIET };
        vec![("alice", speech(t)), ("bob", bob)]
    });
    assert_eq!(dominants_from(&run, 0.0), vec![None, Some("alice")]);
}

#[test]
fn silence_keeps_the_last_speaker() {
    let run = run(SpeakerConfig::default(), 20.0, 20_000.0, |t| {
        let bob = if (1000.0..3000.0).contains(&t) { speech(t) } else { 0.0 };
        vec![("alice", QUIET), ("bob", bob), ("carol", 0.0)]
    });
    assert_eq!(dominants_from(&run, 0.0), vec![None, Some("bob")]);
}

#[test]
fn steady_background_noise_is_not_speech() {
    // Carol's microphone hums at -40 dBov all along: her floor, not her voice.
    let run = run(SpeakerConfig::default(), 20.0, 10_000.0, |t| {
        let alice = if (1000.0..3000.0).contains(&t) { speech(t) } else { QUIET };
        vec![("alice", alice), ("carol", 0.01)]
    });
    assert_eq!(dominants_from(&run, 0.0), vec![None, Some("alice")]);
}

#[test]
fn participants_come_and_go() {
    let mut tracker = DominantSpeaker::new(SpeakerConfig::default());
    let mut t = 0.0;
    let mut step = |tracker: &mut DominantSpeaker, levels: &dyn Fn(f64) -> Vec<(&'static str, f32)>, until: f64| {
        let mut last = None;
        while t < until {
            t += 20.0;
            last = tracker.update(t, &levels(t)).map(str::to_owned);
        }
        last
    };
    // Alice alone talks; bob joins silent.
    assert_eq!(step(&mut tracker, &|t| vec![("alice", speech(t))], 1000.0).as_deref(), Some("alice"));
    assert!(tracker.speaking("alice") && !tracker.speaking("bob"));
    assert_eq!(step(&mut tracker, &|t| vec![("alice", speech(t)), ("bob", QUIET)], 2000.0).as_deref(), Some("alice"));
    // Bob talks while alice is silent: bob; then bob leaves while dominant, alice silent: nobody.
    assert_eq!(step(&mut tracker, &|t| vec![("alice", QUIET), ("bob", speech(t))], 4000.0).as_deref(), Some("bob"));
    assert!(tracker.speaking("bob") && !tracker.speaking("alice"));
    assert_eq!(step(&mut tracker, &|_| vec![("alice", QUIET)], 4100.0), None);
    assert!(!tracker.speaking("bob"), "bob left");
    // Carol joins talking while alice is silent, then leaves; alice talking takes over at once.
    assert_eq!(step(&mut tracker, &|t| vec![("alice", QUIET), ("carol", speech(t))], 5000.0).as_deref(), Some("carol"));
    assert_eq!(
        step(&mut tracker, &|t| vec![("alice", speech(t)), ("carol", speech(t))], 6000.0).as_deref(),
        Some("carol")
    );
    assert_eq!(tracker.update(6020.0, &[("alice", speech(6020.0))]), Some("alice"));
    assert_eq!(tracker.current(), Some("alice"));
    // The same participant given twice counts once, at its louder level.
    assert_eq!(tracker.update(6040.0, &[("alice", 0.0), ("alice", speech(6040.0))]), Some("alice"));
}

#[test]
fn the_same_levels_give_the_same_speakers() {
    let levels = |t: f64| {
        let wobble = ((t * 0.37).sin() * 0.5 + 0.5) as f32;
        vec![("a", speech(t) * wobble), ("b", speech(t + 130.0) * (1.0 - wobble)), ("c", QUIET * wobble)]
    };
    let first = run(SpeakerConfig::default(), 1000.0 / 30.0, 20_000.0, levels);
    let second = run(SpeakerConfig::default(), 1000.0 / 30.0, 20_000.0, levels);
    assert_eq!(first, second);
}

#[test]
fn hold_delays_a_switch() {
    // Bob answers 300 ms after alice stops; with a 3 s hold he waits until 3 s after alice's
    // nomination.
    let turns = [("alice", 0.0, 1000.0), ("bob", 1300.0, 6000.0)];
    let config = SpeakerConfig { hold_ms: 3000, ..SpeakerConfig::default() };
    let run = run(config, 20.0, 6000.0, |t| ["alice", "bob"].iter().map(|w| (*w, talking(t, &turns, w))).collect());
    let nominated = first_time(&run, "alice", 0.0).unwrap_or(f64::INFINITY);
    let switched = first_time(&run, "bob", 0.0).unwrap_or(f64::INFINITY);
    assert!(switched >= nominated + 3000.0 && switched <= nominated + 3400.0, "{nominated} -> {switched}");
}

#[test]
fn scores_follow_jitsi() {
    // Jitsi's thresholds at work: an immediate sub-band of 3 or less scores the floor, 4 up
    // scores positive; one active block of the long window is far above none.
    assert_eq!(activity_score(3, 13, LAMBDA_IMMEDIATE), MIN_SCORE);
    assert!(activity_score(4, 13, LAMBDA_IMMEDIATE) > 0.9);
    assert_eq!(activity_score(0, 10, LAMBDA_LONG), MIN_SCORE);
    assert!((activity_score(1, 10, LAMBDA_LONG) - 38.521).abs() < 0.001);
    assert!((ln_binomial(13, 6) - 1716f64.ln()).abs() < 1e-9);
    assert_eq!(ln_binomial(5, 0), 0.0);
    assert_eq!(level_of(1.0), 127);
    assert_eq!(level_of(0.1), 107);
    assert_eq!(level_of(0.0), 0);
    assert_eq!(level_of(f32::NAN), 0);
    assert_eq!(level_of(-0.5), 0);
    assert_eq!(level_of(1e-9), 0);
}

#[test]
fn config_reads_camel_case_json_and_checks_ranges() {
    let config: SpeakerConfig =
        serde_json::from_str(r#"{"minSpeechMs": 400, "holdMs": 2000, "silenceThresholdDbov": -60}"#).expect("json");
    assert_eq!(
        config,
        SpeakerConfig { min_speech_ms: 400, hold_ms: 2000, silence_threshold_dbov: -60.0, ..SpeakerConfig::default() }
    );
    assert_eq!(config.validate(), Ok(()));
    let unknown = serde_json::from_str::<SpeakerConfig>(r#"{"minSpeech": 400}"#).expect_err("unknown field");
    assert!(unknown.to_string().contains("unknown field `minSpeech`"), "{unknown}");
    let error = |config: SpeakerConfig| config.validate().expect_err("invalid").to_string();
    assert_eq!(
        error(SpeakerConfig { switch_within_ms: 100, ..SpeakerConfig::default() }),
        "speaker detection `switchWithinMs` is 100: must be 200 to 10000 ms"
    );
    assert!(error(SpeakerConfig { min_speech_ms: 1500, ..SpeakerConfig::default() }).contains("minSpeechMs"));
    assert!(
        error(SpeakerConfig { decision_interval_ms: 0, ..SpeakerConfig::default() }).contains("decisionIntervalMs")
    );
    assert!(
        error(SpeakerConfig { silence_threshold_dbov: 3.0, ..SpeakerConfig::default() })
            .contains("silenceThresholdDbov")
    );
    assert!(error(SpeakerConfig { medium_log_ratio: f64::NAN, ..SpeakerConfig::default() }).contains("mediumLogRatio"));
    assert!(error(SpeakerConfig { hold_ms: 700_000, ..SpeakerConfig::default() }).contains("holdMs"));
    // Out of range is clamped by the tracker.
    let tracker = DominantSpeaker::new(SpeakerConfig {
        switch_within_ms: 50,
        min_speech_ms: 9000,
        silence_threshold_dbov: f32::NAN,
        long_log_ratio: f64::INFINITY,
        ..SpeakerConfig::default()
    });
    assert_eq!(tracker.config().validate(), Ok(()));
    assert_eq!(tracker.config().switch_within_ms, 200);
    assert_eq!(tracker.config().min_speech_ms, 200);
}
