//! Who is the active (dominant) speaker, from each participant's audio level over time. Pure
//! and deterministic: the same levels at the same times give the same speaker.
//!
//! Adapted from Jitsi's `DominantSpeakerIdentification` (jitsi-utils,
//! `src/main/java/org/jitsi/utils/dsi/DominantSpeakerIdentification.java`, Apache-2.0, by
//! Lyubomir Marinov), itself after I. Volfin and I. Cohen, "Dominant Speaker Identification
//! for Multipoint Videoconferencing" (Computer Speech & Language, 2013). As there, each
//! participant's levels (0..=127, i.e. 127 + dBov) are kept per 20 ms frame; a level under the
//! participant's learned noise floor plus one sub-band counts as silence. The *immediate*
//! time-scale is the newest frame's sub-band (13 sub-bands of 10 levels); a frame is active
//! when its sub-band is above 7, and the *medium* time-scale counts the active frames of the
//! newest block of 5 frames; a block is active when more than 4 of its frames are, and the
//! *long* time-scale counts the active blocks within [`SpeakerConfig::switch_within_ms`]. At
//! each time-scale the speech activity score is the log-likelihood of the count under a
//! binomial speech model against an exponential non-speech one (p = 0.5; lambda 0.78, 24 and
//! 47, Jitsi's). Every [`SpeakerConfig::decision_interval_ms`] a challenger replaces the
//! dominant speaker only when the logarithm of its score over the dominant's beats the
//! configured thresholds at all three time-scales (Jitsi's C1 = 3, C2 = 2, C3 = 0); among
//! several, the largest medium ratio wins.
//!
//! What differs from Jitsi: time comes from the caller (render ticks of any length, resampled
//! to 20 ms frames), not a wall clock; a challenger also needs [`SpeakerConfig::min_speech_ms`]
//! of speech in the long window (a cough never switches) and the last switch must be
//! [`SpeakerConfig::hold_ms`] old; levels under [`SpeakerConfig::silence_threshold_dbov`] are
//! silence whatever the floor; the learned floor is capped (a participant heard only while
//! talking does not learn its own speech as noise); nobody is dominant until someone has
//! spoken (Jitsi nominates an arbitrary speaker); participants come and go with the levels
//! given.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Levels are kept per frame of this length (one WebRTC audio packet).
const FRAME_MS: f64 = 20.0;
/// The loudest level (0 dBov); 0 is silence (-127 dBov and under).
const MAX_LEVEL: u8 = 127;
/// Sub-bands of the level range at the immediate time-scale (Jitsi's N1) and their width.
const SUB_BANDS: u32 = 13;
const SUB_BAND_WIDTH: u8 = 10;
/// Frames per medium block (Jitsi's N2).
const FRAMES_PER_BLOCK: usize = 5;
/// A frame is active when its sub-band is above this (Jitsi's MEDIUM_THRESHOLD).
const ACTIVE_SUB_BAND: u8 = 7;
/// A block is active when more of its frames than this are active (Jitsi's LONG_THRESHOLD).
const ACTIVE_FRAMES_PER_BLOCK: u32 = 4;
/// The speech model's probability and the non-speech model's rate per time-scale (Jitsi's).
const SPEECH_P: f64 = 0.5;
const LAMBDA_IMMEDIATE: f64 = 0.78;
const LAMBDA_MEDIUM: f64 = 24.0;
const LAMBDA_LONG: f64 = 47.0;
/// Scores are floored here (positive: they are divided and their logarithms taken).
const MIN_SCORE: f64 = 1e-10;
/// Frames over which a noise floor above the current one must hold to raise it (15 s, Jitsi's).
const FLOOR_WINDOW_FRAMES: u32 = 750;
/// The learned noise floor never rises above this (-40 dBov): louder is taken as speech.
const MAX_FLOOR_LEVEL: u8 = 87;
/// [`DominantSpeaker::speaking`] holds this long after the last active frame.
const SPEAKING_HANGOVER_FRAMES: usize = 15;

/// How the dominant speaker is chosen. Deserialised from a job's JSON in camelCase; missing
/// fields take their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SpeakerConfig {
    /// A challenger needs this much speech within the long window: a cough or an interjection
    /// shorter than this never switches.
    pub min_speech_ms: u32,
    /// The long time-scale: a challenger that talks while the dominant speaker is silent takes
    /// over within about this long.
    pub switch_within_ms: u32,
    /// No switch within this long of the previous one.
    pub hold_ms: u32,
    /// How often a switch is considered (Jitsi: 300 ms).
    pub decision_interval_ms: u32,
    /// Levels under this are silence, whatever a participant's noise floor.
    pub silence_threshold_dbov: f32,
    /// Natural logarithm of the score ratio a challenger must beat the dominant speaker by at
    /// the immediate (Jitsi's C1), medium (C2) and long (C3) time-scales.
    pub immediate_log_ratio: f64,
    pub medium_log_ratio: f64,
    pub long_log_ratio: f64,
}

impl Default for SpeakerConfig {
    fn default() -> Self {
        SpeakerConfig {
            min_speech_ms: 300,
            switch_within_ms: 1000,
            hold_ms: 1000,
            decision_interval_ms: 300,
            silence_threshold_dbov: -50.0,
            immediate_log_ratio: 3.0,
            medium_log_ratio: 2.0,
            long_log_ratio: 0.0,
        }
    }
}

/// A [`SpeakerConfig`] field out of range.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SpeakerError {
    #[error("speaker detection `{field}` is {value}: {reason}")]
    Invalid { field: &'static str, value: String, reason: &'static str },
}

impl SpeakerConfig {
    /// Checks every field's range (for a job's admission; [`DominantSpeaker::new`] clamps).
    pub fn validate(&self) -> Result<(), SpeakerError> {
        let invalid = |field, value: String, reason| Err(SpeakerError::Invalid { field, value, reason });
        if !(200..=10_000).contains(&self.switch_within_ms) {
            return invalid("switchWithinMs", self.switch_within_ms.to_string(), "must be 200 to 10000 ms");
        }
        if self.min_speech_ms > self.switch_within_ms {
            return invalid("minSpeechMs", self.min_speech_ms.to_string(), "must be at most switchWithinMs");
        }
        if self.hold_ms > 600_000 {
            return invalid("holdMs", self.hold_ms.to_string(), "must be at most 600000 ms");
        }
        if !(20..=5000).contains(&self.decision_interval_ms) {
            return invalid("decisionIntervalMs", self.decision_interval_ms.to_string(), "must be 20 to 5000 ms");
        }
        if !(-127.0..=0.0).contains(&self.silence_threshold_dbov) {
            return invalid("silenceThresholdDbov", self.silence_threshold_dbov.to_string(), "must be -127 to 0");
        }
        for (field, ratio) in [
            ("immediateLogRatio", self.immediate_log_ratio),
            ("mediumLogRatio", self.medium_log_ratio),
            ("longLogRatio", self.long_log_ratio),
        ] {
            if !(-100.0..=100.0).contains(&ratio) {
                return invalid(field, ratio.to_string(), "must be a number from -100 to 100");
            }
        }
        Ok(())
    }

    /// This config with every field brought into its valid range.
    fn clamped(&self) -> SpeakerConfig {
        let switch_within_ms = self.switch_within_ms.clamp(200, 10_000);
        let ratio = |r: f64| if r.is_nan() { 0.0 } else { r.clamp(-100.0, 100.0) };
        SpeakerConfig {
            min_speech_ms: self.min_speech_ms.min(switch_within_ms),
            switch_within_ms,
            hold_ms: self.hold_ms.min(600_000),
            decision_interval_ms: self.decision_interval_ms.clamp(20, 5000),
            silence_threshold_dbov: if self.silence_threshold_dbov.is_nan() {
                -127.0
            } else {
                self.silence_threshold_dbov.clamp(-127.0, 0.0)
            },
            immediate_log_ratio: ratio(self.immediate_log_ratio),
            medium_log_ratio: ratio(self.medium_log_ratio),
            long_log_ratio: ratio(self.long_log_ratio),
        }
    }
}

/// A linear RMS level (full scale 1.0, as [`super::level::rms`]) on the 0..=127 scale
/// (127 + dBov, rounded); silence, NaN and negatives are 0.
fn level_of(rms: f32) -> u8 {
    if rms.is_nan() || rms <= 0.0 {
        return 0;
    }
    let dbov = 20.0 * rms.min(1.0).log10();
    (f32::from(MAX_LEVEL) + dbov).round().clamp(0.0, f32::from(MAX_LEVEL)) as u8
}

/// The natural logarithm of the binomial coefficient `n` choose `k`.
fn ln_binomial(n: u32, k: u32) -> f64 {
    let k = k.min(n);
    let k = k.min(n - k);
    (0..k).map(|i| (f64::from(n - i) / f64::from(i + 1)).ln()).sum()
}

/// Jitsi's speech activity score of `active` out of `total` with the non-speech rate `lambda`.
fn activity_score(active: u32, total: u32, lambda: f64) -> f64 {
    let active = active.min(total);
    let score = ln_binomial(total, active)
        + f64::from(active) * SPEECH_P.ln()
        + f64::from(total - active) * (1.0 - SPEECH_P).ln()
        - lambda.ln()
        + lambda * f64::from(active);
    score.max(MIN_SCORE)
}

/// A participant's level history and noise floor.
#[derive(Debug, Clone)]
struct Speaker {
    id: String,
    /// Levels per frame, newest first, as many as the long window holds.
    levels: VecDeque<u8>,
    /// The loudest level given since the last frame was pushed.
    pending: u8,
    /// The learned noise floor (0: none yet) and the candidate that may raise it.
    floor: u8,
    next_floor: u8,
    next_floor_frames: u32,
}

/// What one decision needs of a participant.
#[derive(Debug, Clone, Copy)]
struct Scores {
    /// Speech activity scores: immediate, medium, long.
    scores: [f64; 3],
    /// Active frames in the long window, and in the newest block.
    active_frames: u32,
    recent_active: u32,
}

impl Speaker {
    fn new(id: &str, frames: usize) -> Speaker {
        Speaker {
            id: id.to_owned(),
            levels: VecDeque::from(vec![0; frames]),
            pending: 0,
            floor: 0,
            next_floor: 0,
            next_floor_frames: 0,
        }
    }

    fn push(&mut self, level: u8) {
        self.levels.pop_back();
        self.levels.push_front(level);
        self.learn_floor(level);
    }

    /// Jitsi's minimum level tracking: a lower level lowers the floor at once; levels above it
    /// for [`FLOOR_WINDOW_FRAMES`] raise it to the geometric mean of it and their minimum.
    fn learn_floor(&mut self, level: u8) {
        if level == 0 {
            return;
        }
        if self.floor == 0 || level < self.floor {
            self.floor = level;
            self.next_floor = 0;
            self.next_floor_frames = 0;
            return;
        }
        self.next_floor = if self.next_floor == 0 { level } else { self.next_floor.min(level) };
        self.next_floor_frames += 1;
        if self.next_floor_frames >= FLOOR_WINDOW_FRAMES {
            let raised = (f64::from(self.floor) * f64::from(self.next_floor)).sqrt();
            self.floor = raised.clamp(0.0, f64::from(MAX_LEVEL)) as u8;
            self.next_floor = 0;
            self.next_floor_frames = 0;
        }
    }

    /// The sub-band (0..=12) of a frame's level: 0 when it is silence for this participant.
    fn sub_band(&self, level: u8, silence_level: u8) -> u8 {
        let floor = self.floor.min(MAX_FLOOR_LEVEL).saturating_add(SUB_BAND_WIDTH);
        if level < floor || level < silence_level { 0 } else { level / SUB_BAND_WIDTH }
    }

    fn active(&self, level: u8, silence_level: u8) -> bool {
        self.sub_band(level, silence_level) > ACTIVE_SUB_BAND
    }

    fn scores(&self, silence_level: u8) -> Scores {
        let immediate = self.levels.front().map_or(0, |l| self.sub_band(*l, silence_level));
        let active: Vec<bool> = self.levels.iter().map(|l| self.active(*l, silence_level)).collect();
        let blocks: Vec<u32> =
            active.chunks(FRAMES_PER_BLOCK).map(|b| b.iter().filter(|a| **a).count() as u32).collect();
        let recent_active = blocks.first().copied().unwrap_or(0);
        let long_active = blocks.iter().filter(|count| **count > ACTIVE_FRAMES_PER_BLOCK).count() as u32;
        Scores {
            scores: [
                activity_score(u32::from(immediate), SUB_BANDS, LAMBDA_IMMEDIATE),
                activity_score(recent_active, FRAMES_PER_BLOCK as u32, LAMBDA_MEDIUM),
                activity_score(long_active, blocks.len() as u32, LAMBDA_LONG),
            ],
            active_frames: active.iter().filter(|a| **a).count() as u32,
            recent_active,
        }
    }
}

/// Tracks the dominant speaker of a call from levels given tick by tick.
#[derive(Debug, Clone)]
pub struct DominantSpeaker {
    config: SpeakerConfig,
    /// In order of first appearance (ties between challengers go to the earlier).
    speakers: Vec<Speaker>,
    dominant: Option<String>,
    /// Time of the first update, frames pushed since, and the last decision and switch.
    origin_ms: Option<f64>,
    frames_pushed: i64,
    last_decision_ms: Option<f64>,
    last_switch_ms: Option<f64>,
}

impl DominantSpeaker {
    /// A tracker with nobody speaking yet; fields of `config` out of range are clamped into it
    /// (see [`SpeakerConfig::validate`]).
    pub fn new(config: SpeakerConfig) -> DominantSpeaker {
        DominantSpeaker {
            config: config.clamped(),
            speakers: Vec::new(),
            dominant: None,
            origin_ms: None,
            frames_pushed: 0,
            last_decision_ms: None,
            last_switch_ms: None,
        }
    }

    /// The config in use (clamped).
    pub fn config(&self) -> &SpeakerConfig {
        &self.config
    }

    /// Frames in the long window: whole blocks covering `switch_within_ms`.
    fn window_frames(&self) -> usize {
        let blocks = (f64::from(self.config.switch_within_ms) / (FRAME_MS * FRAMES_PER_BLOCK as f64)).round();
        (blocks as usize).max(2) * FRAMES_PER_BLOCK
    }

    fn silence_level(&self) -> u8 {
        (f32::from(MAX_LEVEL) + self.config.silence_threshold_dbov).round().clamp(0.0, f32::from(MAX_LEVEL)) as u8
    }

    /// Takes the levels of the tick ending at `t_ms` (call time; ticks of any length, in
    /// order) and returns the dominant speaker's participant id. `levels` holds every
    /// participant present, as `(participant id, linear RMS level 0..=1)`, a silent one with
    /// 0 (a participant given twice counts at its louder level); one missing from it has left:
    /// its history is dropped, and when it was the dominant speaker the loudest qualified
    /// speaker takes over at once (nobody if none qualifies). `None` until someone has talked
    /// for [`SpeakerConfig::min_speech_ms`]; silence keeps the last speaker.
    pub fn update(&mut self, t_ms: f64, levels: &[(&str, f32)]) -> Option<&str> {
        let frames = self.window_frames();
        self.speakers.retain(|s| levels.iter().any(|(id, _)| *id == s.id));
        let departed = self.dominant.as_ref().is_some_and(|d| !self.speakers.iter().any(|s| &s.id == d));
        if departed {
            self.dominant = None;
        }
        for (id, rms) in levels {
            let level = level_of(*rms);
            match self.speakers.iter_mut().find(|s| s.id == *id) {
                Some(speaker) => speaker.pending = speaker.pending.max(level),
                None => {
                    let mut speaker = Speaker::new(id, frames);
                    speaker.pending = level;
                    self.speakers.push(speaker);
                }
            }
        }
        let origin_ms = *self.origin_ms.get_or_insert(t_ms - FRAME_MS);
        let due = if t_ms.is_finite() { ((t_ms - origin_ms) / FRAME_MS).floor() as i64 } else { self.frames_pushed };
        let new_frames = due - self.frames_pushed;
        if new_frames > 0 {
            self.frames_pushed = due;
            // After a long gap only the newest window matters.
            let pushed = usize::try_from(new_frames).unwrap_or(usize::MAX).min(frames);
            for speaker in &mut self.speakers {
                let level = std::mem::take(&mut speaker.pending);
                for _ in 0..pushed {
                    speaker.push(level);
                }
            }
        }
        let decision_due = self
            .last_decision_ms
            .is_none_or(|last| t_ms - last >= f64::from(self.config.decision_interval_ms) - 1e-9 || t_ms < last);
        if departed || decision_due {
            self.last_decision_ms = Some(t_ms);
            self.decide(t_ms);
        }
        self.dominant.as_deref()
    }

    /// The dominant speaker after the last update.
    pub fn current(&self) -> Option<&str> {
        self.dominant.as_deref()
    }

    /// True when `participant_id` has talked within the last 300 ms (for a speaking
    /// indicator; any participant, dominant or not).
    pub fn speaking(&self, participant_id: &str) -> bool {
        let silence_level = self.silence_level();
        self.speakers
            .iter()
            .find(|s| s.id == participant_id)
            .is_some_and(|s| s.levels.iter().take(SPEAKING_HANGOVER_FRAMES).any(|l| s.active(*l, silence_level)))
    }

    fn decide(&mut self, t_ms: f64) {
        let silence_level = self.silence_level();
        let min_frames = (f64::from(self.config.min_speech_ms) / FRAME_MS).ceil() as u32;
        let scored: Vec<(usize, Scores)> =
            self.speakers.iter().enumerate().map(|(i, s)| (i, s.scores(silence_level))).collect();
        let qualified = |s: &Scores| s.active_frames >= min_frames.max(1) && s.recent_active > 0;
        let dominant = self.dominant.as_ref().and_then(|d| self.speakers.iter().position(|s| &s.id == d));
        let Some(dominant) = dominant else {
            // Nobody yet (or the dominant speaker left): the most active qualified speaker.
            let best =
                scored.iter().filter(|(_, s)| qualified(s)).fold(
                    None,
                    |best: Option<&(usize, Scores)>, c| match best {
                        Some(b) if (b.1.scores[2], b.1.scores[1]) >= (c.1.scores[2], c.1.scores[1]) => Some(b),
                        _ => Some(c),
                    },
                );
            if let Some((index, _)) = best {
                self.switch_to(*index, t_ms);
            }
            return;
        };
        if self.last_switch_ms.is_some_and(|last| t_ms - last < f64::from(self.config.hold_ms)) {
            return;
        }
        let Some(held) = scored.get(dominant).map(|(_, s)| s.scores) else { return };
        let thresholds = [self.config.immediate_log_ratio, self.config.medium_log_ratio, self.config.long_log_ratio];
        let mut best: Option<(usize, f64)> = None;
        for (index, challenger) in &scored {
            if *index == dominant || !qualified(challenger) {
                continue;
            }
            let ratios: Vec<f64> = challenger.scores.iter().zip(&held).map(|(c, d)| (c / d).ln()).collect();
            let beats = ratios.iter().zip(&thresholds).all(|(ratio, threshold)| ratio > threshold);
            let medium = ratios.get(1).copied().unwrap_or(f64::NEG_INFINITY);
            if beats && best.is_none_or(|(_, m)| medium > m) {
                best = Some((*index, medium));
            }
        }
        if let Some((index, _)) = best {
            self.switch_to(index, t_ms);
        }
    }

    fn switch_to(&mut self, index: usize, t_ms: f64) {
        if let Some(speaker) = self.speakers.get(index) {
            self.dominant = Some(speaker.id.clone());
            self.last_switch_ms = Some(t_ms);
        }
    }
}

#[cfg(test)]
#[path = "speaker_tests.rs"]
mod tests;
