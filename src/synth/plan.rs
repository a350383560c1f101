//! What a synthetic call contains, decided up front and deterministic for a seed: who joins
//! when, their colour and tone, the codec of each track, RTP bases, the call times of the
//! flashes (video) and beeps (audio) a test can look for in the output, and who talks when.

pub use super::events::{SynthAction, SynthEvent, TalkTurn};
pub use super::rng::SplitMix;
use crate::ingest::sdp::Codec;

/// Names for the first participants; later ones are `user{index}`.
const NAMES: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"];
/// Distinct, saturated colours that survive limited-range YUV and H.264 well.
const PALETTE: &[[u8; 3]] = &[
    [200, 40, 40],
    [40, 170, 60],
    [40, 70, 200],
    [210, 190, 40],
    [180, 50, 180],
    [40, 180, 190],
    [230, 120, 30],
    [120, 60, 30],
];

pub const FLASH_RGB: [u8; 3] = [255, 255, 255];
pub const FLASH_MS: u64 = 100;
pub const BEEP_HZ: f64 = 1500.0;
pub const TONE_AMPLITUDE: f32 = 0.08;
pub const BEEP_AMPLITUDE: f32 = 0.5;
/// Flashes start at this call time and repeat every period.
pub const FIRST_FLASH_MS: u64 = 1000;
pub const FLASH_PERIOD_MS: u64 = 2000;
/// A talking microphone's tone peaks at this, under a [`SYLLABLE_HZ`] envelope that dips to
/// [`SYLLABLE_FLOOR`] of it between syllables.
pub const TALK_AMPLITUDE: f32 = 0.3;
pub const SYLLABLE_HZ: f64 = 4.0;
pub const SYLLABLE_FLOOR: f64 = 0.25;
/// Outside its turns a microphone of a call with a talk schedule plays its tone at -50 dBFS.
pub const QUIET_AMPLITUDE: f32 = 0.003_162_3;
/// A cough: the participant's tone an octave up, this loud, for this long.
pub const COUGH_AMPLITUDE: f32 = 0.5;
pub const COUGH_MS: u64 = 200;

#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    pub participants: usize,
    pub duration_ms: u64,
    /// Video codec of each participant, cycled.
    pub video_codecs: Vec<Codec>,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// Participant i joins at i x this.
    pub join_stagger_ms: u64,
    pub seed: u64,
    pub call_start_unix_ms: i64,
    /// What the network did to every track.
    pub network: NetworkSpec,
    /// What the timing metadata says about RTCP.
    pub rtcp: RtcpMode,
    /// Participants are silent except around their beeps, sent with Opus DTX.
    pub dtx: bool,
    /// Video segments start 500 ms into a group of pictures: their first keyframe comes
    /// [`MID_GOP_KEYFRAME_MS`] after their first packet.
    pub start_mid_gop: bool,
    /// Mutes, rejoins, early leaves, rotations, clock drift, audio-only senders, screenshares,
    /// talk turns and coughs of named participants.
    pub events: Vec<SynthEvent>,
    /// Who talks when (with the `talk` events): none, and no `talk` event, keeps every
    /// microphone's steady tone.
    pub talk: Vec<TalkTurn>,
    /// Audio packets carry the RFC 6464 audio level header extension (ID
    /// [`super::AUDIO_LEVEL_EXT_ID`], mapped in the SDPs).
    pub audio_level_ext: bool,
}

/// Network conditions applied to every track (turned into per-track impairments by `synth`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetworkSpec {
    pub loss_pct: f64,
    pub burst_max_packets: u32,
    pub reorder_pct: f64,
    pub reorder_depth_packets: u32,
    pub duplicate_pct: f64,
    /// Lost packets resent as RTX (this share of them); RTX streams in the SDPs.
    pub rtx_recover_pct: Option<f64>,
    /// Audio sent as RED with one redundant block.
    pub red: bool,
    /// ULPFEC packets beside the video.
    pub fec: bool,
    /// Call time at which every sender restarts with a new SSRC, or jumps its timestamps.
    pub ssrc_change_at_ms: Option<u64>,
    pub timestamp_jump_at_ms: Option<u64>,
    /// Loss hits the audio tracks only (video arrives whole).
    pub loss_audio_only: bool,
    /// Every packet reaches the recorder this long after its capture, plus a random
    /// 0..=`jitter_ms` (in order). Sender reports say when media was captured; without them,
    /// arrival times are all there is.
    pub delay_ms: u32,
    pub jitter_ms: u32,
}

/// The RTCP fields of the timing metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtcpMode {
    /// Sender reports consistent with the RTP fields.
    #[default]
    Consistent,
    /// No `*_rtcp_*` fields.
    Absent,
    /// Every `*_rtcp_*` field 0.
    Zero,
    /// Sender reports whose wall clock is 7 s off the server's (a sender with a wrong clock).
    Inconsistent,
    /// Wall clocks counted from 1900 (NTP epoch) in ms.
    NtpEpoch,
}

/// A mid-GOP segment's first keyframe comes this long after its first packet.
pub const MID_GOP_KEYFRAME_MS: u64 = 1500;

impl SynthSpec {
    /// This call with every condition of real recordings that the call clock must get right
    /// at once: recorders that joined mid-GOP; a 60 ms path with 12 ms of jitter; 2% audio
    /// loss in bursts of up to 3 packets; DTX; alice's clock +300 ppm; bob's -150 ppm, and bob
    /// sending no RTCP sender reports. (Every synthetic Opus sender stamps its packets as
    /// libwebrtc does.)
    pub fn real_world(mut self) -> SynthSpec {
        self.start_mid_gop = true;
        self.dtx = true;
        self.network.loss_pct = self.network.loss_pct.max(2.0);
        self.network.burst_max_packets = self.network.burst_max_packets.max(3);
        self.network.loss_audio_only = true;
        self.network.delay_ms = self.network.delay_ms.max(60);
        self.network.jitter_ms = self.network.jitter_ms.max(12);
        let event = |participant: &str, action| SynthEvent { participant: participant.to_owned(), action };
        self.events.extend([
            event("alice", SynthAction::Drift { ppm: 300.0 }),
            event("bob", SynthAction::Drift { ppm: -150.0 }),
            event("bob", SynthAction::NoSenderReports),
        ]);
        self.participants = self.participants.max(2);
        self
    }
}

/// One session of a participant: from join to leave, with its media segments.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSession {
    pub user_session_id: String,
    pub join_ms: u64,
    pub leave_ms: u64,
    /// Call-time spans of the video and audio segments (no video segments when audio-only).
    pub video_segments: Vec<(u64, u64)>,
    pub audio_segments: Vec<(u64, u64)>,
    /// Call-time spans of the screenshare: each is a segment of the screenshare video track and
    /// one of the screenshare audio track.
    pub screenshare_segments: Vec<(u64, u64)>,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            participants: 4,
            duration_ms: 10_000,
            video_codecs: vec![Codec::Vp8, Codec::H264],
            width: 640,
            height: 360,
            fps: 30,
            join_stagger_ms: 0,
            seed: 1,
            call_start_unix_ms: 1_769_590_800_000, // 2026-01-28T09:00:00Z
            network: NetworkSpec::default(),
            rtcp: RtcpMode::default(),
            dtx: false,
            start_mid_gop: false,
            events: Vec::new(),
            talk: Vec::new(),
            audio_level_ext: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SynthParticipant {
    pub participant_id: String,
    pub user_session_id: String,
    pub rgb: [u8; 3],
    pub tone_hz: f64,
    pub video_codec: Codec,
    pub join_ms: u64,
    pub leave_ms: u64,
    /// Video starts on the output frame grid (a multiple of 100 ms), so a flash at a multiple
    /// of 100 ms starts exactly on a frame.
    pub video_start_ms: u64,
    pub audio_start_ms: u64,
    /// Call times at which this participant flashes white and beeps, each for [`FLASH_MS`].
    pub flashes_ms: Vec<u64>,
    pub video_rtp_base: u32,
    pub audio_rtp_base: u32,
    pub video_ssrc: u32,
    pub audio_ssrc: u32,
    /// In call order; the first one's id is `user_session_id`.
    pub sessions: Vec<SynthSession>,
    pub drift_ppm: f64,
    pub rotate_at_ms: Option<u64>,
    /// The timing metadata of this sender's segments has its RTCP sender reports (as the
    /// spec's [`RtcpMode`] says); false for a sender that sends none.
    pub sender_reports: bool,
    /// Sends no camera video: its sessions have no video segments.
    pub audio_only: bool,
    /// What the screenshare tracks (if any session has screenshare segments) look and sound
    /// like, and their RTP identities.
    pub screenshare: ScreenshareSender,
    /// `None` when the call has no talk schedule; else this participant's turns (call times,
    /// sorted, merged where they overlap), possibly none.
    pub talk_ms: Option<Vec<(u64, u64)>>,
    /// Call times at which this participant coughs, each for [`COUGH_MS`], sorted.
    pub coughs_ms: Vec<u64>,
}

/// The screenshare tracks of a participant: its own colour desaturated towards grey (so it
/// differs from every camera), white during the participant's flashes, and its tone an octave
/// up, without beeps (the microphone beeps).
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenshareSender {
    pub rgb: [u8; 3],
    pub tone_hz: f64,
    pub video_rtp_base: u32,
    pub audio_rtp_base: u32,
    pub video_ssrc: u32,
    pub audio_ssrc: u32,
}

impl SynthParticipant {
    pub fn flashing_at(&self, t_ms: f64) -> bool {
        self.near_flash(t_ms, 0.0, 0.0)
    }

    /// True when the participant talks at `t_ms` (always, unless the call uses DTX: then only
    /// from 400 ms before each beep to 300 ms after it).
    pub fn speaking_at(&self, t_ms: f64, dtx: bool) -> bool {
        !dtx || self.near_flash(t_ms, 400.0, 300.0)
    }

    /// True when `t_ms` lies from `before_ms` before a flash to `after_ms` after its end. Called
    /// for every sample of an hours-long call: a binary search in the sorted flash times.
    fn near_flash(&self, t_ms: f64, before_ms: f64, after_ms: f64) -> bool {
        let end = |f: u64| (f + FLASH_MS) as f64 + after_ms;
        let next = self.flashes_ms.partition_point(|&f| end(f) <= t_ms);
        self.flashes_ms.get(next).is_some_and(|&f| t_ms >= f as f64 - before_ms)
    }

    /// Call time at which this sender captured its first frame showing the flash at
    /// `flash_ms`: its frames are `1/fps` apart on its own (drifting) clock from the start of
    /// its video. An output frame should show the flash from the first output tick at or after
    /// this.
    pub fn flash_frame_ms(&self, flash_ms: u64, fps: u32) -> f64 {
        let frame_ms = 1000.0 / f64::from(fps.max(1));
        let scale = 1.0 + self.drift_ppm * 1e-6;
        let media_ms = flash_ms.saturating_sub(self.video_start_ms) as f64 * scale;
        let n = (media_ms / frame_ms - 1e-9).ceil();
        self.video_start_ms as f64 + n * frame_ms / scale
    }

    /// True when `t_ms` lies in one of the participant's sessions.
    pub fn present_at(&self, t_ms: f64) -> bool {
        self.sessions.iter().any(|s| t_ms >= s.join_ms as f64 && t_ms < s.leave_ms as f64)
    }

    /// The turn of the talk schedule `t_ms` lies in, if any.
    fn turn_at(&self, t_ms: f64) -> Option<(u64, u64)> {
        let turns = self.talk_ms.as_deref()?;
        let next = turns.partition_point(|&(_, to)| to as f64 <= t_ms);
        turns.get(next).copied().filter(|&(from, _)| t_ms >= from as f64)
    }

    /// True when `t_ms` lies in one of this participant's talk turns.
    pub fn talking_at(&self, t_ms: f64) -> bool {
        self.turn_at(t_ms).is_some()
    }

    /// True during one of this participant's coughs.
    pub fn coughing_at(&self, t_ms: f64) -> bool {
        let next = self.coughs_ms.partition_point(|&c| (c + COUGH_MS) as f64 <= t_ms);
        self.coughs_ms.get(next).is_some_and(|&c| t_ms >= c as f64)
    }

    /// The peak amplitude of the microphone's tone at `t_ms` in a call with a talk schedule:
    /// [`TALK_AMPLITUDE`] under the syllable envelope during a turn, else [`QUIET_AMPLITUDE`]
    /// (silence where a DTX call is silent, see [`SynthParticipant::speaking_at`]).
    pub fn talk_amplitude(&self, t_ms: f64, dtx: bool) -> f32 {
        match self.turn_at(t_ms) {
            Some((from, _)) => {
                let phase = std::f64::consts::TAU * SYLLABLE_HZ * (t_ms - from as f64) / 1000.0;
                let envelope = SYLLABLE_FLOOR + (1.0 - SYLLABLE_FLOOR) * 0.5 * (1.0 - phase.cos());
                TALK_AMPLITUDE * envelope as f32
            }
            None if self.speaking_at(t_ms, dtx) => QUIET_AMPLITUDE,
            None => 0.0,
        }
    }
}

/// The turns of `participant` in `talk` and its `talk` events, sorted, overlapping or touching
/// turns merged; `None` when the call has no talk schedule at all.
fn talk_turns(spec: &SynthSpec, participant: &str, events: &[SynthAction]) -> Option<Vec<(u64, u64)>> {
    let scheduled = !spec.talk.is_empty() || spec.events.iter().any(|e| matches!(e.action, SynthAction::Talk { .. }));
    if !scheduled {
        return None;
    }
    let mut turns: Vec<(u64, u64)> = spec
        .talk
        .iter()
        .filter(|t| t.participant == participant)
        .map(|t| (t.from_ms, t.to_ms))
        .chain(events.iter().filter_map(|a| match *a {
            SynthAction::Talk { from_ms, to_ms } => Some((from_ms, to_ms)),
            _ => None,
        }))
        .filter(|(from, to)| from < to)
        .collect();
    turns.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (from, to) in turns {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    Some(merged)
}

#[derive(Debug, Clone, PartialEq)]
pub struct SynthPlan {
    pub spec: SynthSpec,
    pub call_type: String,
    pub call_id: String,
    pub call_session_id: String,
    pub participants: Vec<SynthParticipant>,
}

impl SynthPlan {
    /// The participant whose talk turn `t_ms` lies in (the first by join order when turns
    /// overlap); `None` between turns or without a talk schedule.
    pub fn talker_at(&self, t_ms: f64) -> Option<&str> {
        self.participants.iter().find(|p| p.talking_at(t_ms)).map(|p| p.participant_id.as_str())
    }
}

fn colour(index: usize) -> [u8; 3] {
    if let Some(rgb) = PALETTE.get(index) {
        return *rgb;
    }
    // Beyond the palette: hues around the circle at moderate saturation.
    let hue = (index as f64 * 137.508) % 360.0;
    let (s, v) = (0.7, 0.8);
    let c = v * s;
    let x = c * (1.0 - ((hue / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (hue / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    let to_u8 = |f: f64| ((f + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    [to_u8(r), to_u8(g), to_u8(b)]
}

impl SynthPlan {
    pub fn new(spec: &SynthSpec) -> SynthPlan {
        let mut rng = SplitMix::new(spec.seed);
        let n = spec.participants.max(1);
        let stagger_ms = ((FLASH_PERIOD_MS / n as u64) / 100 * 100).max(100);
        let participants = (0..n)
            .map(|i| {
                let participant_id = NAMES.get(i).map_or_else(|| format!("user{i:02}"), |s| (*s).to_owned());
                let events: Vec<SynthAction> =
                    spec.events.iter().filter(|e| e.participant == participant_id).map(|e| e.action).collect();
                let join_ms = i as u64 * spec.join_stagger_ms;
                let leave_ms = events
                    .iter()
                    .filter_map(|a| match a {
                        SynthAction::Leave { at_ms } => Some(*at_ms),
                        _ => None,
                    })
                    .fold(spec.duration_ms, u64::min);
                let video_start_ms = join_ms.div_ceil(100) * 100;
                let audio_start_ms = join_ms + (13 * i as u64) % 40;
                let mut video_rtp_base = rng.next_u32();
                let mut audio_rtp_base = rng.next_u32();
                // Exercise RTP timestamp wrap-around half a second into some tracks.
                if i % 4 == 1 {
                    audio_rtp_base = u32::MAX - 24_000;
                }
                if i % 4 == 2 {
                    video_rtp_base = u32::MAX - 45_000;
                }
                let first_session = rng.uuid();
                let audio_only = events.contains(&SynthAction::AudioOnly);
                let sessions = sessions(
                    &events,
                    first_session.clone(),
                    (if audio_only { None } else { Some(video_start_ms) }, audio_start_ms, leave_ms),
                    &mut rng,
                );
                let first = FIRST_FLASH_MS + i as u64 * stagger_ms;
                let keyframe_wait = if spec.start_mid_gop { MID_GOP_KEYFRAME_MS } else { 0 };
                let covered = |spans: &[(u64, u64)], t: u64, lead: u64| {
                    spans.iter().any(|&(a, b)| t >= a + lead && t + FLASH_MS + 100 <= b)
                };
                let flashes_ms = (0..)
                    .map(|k| first + k * FLASH_PERIOD_MS)
                    .take_while(|t| t + FLASH_MS + 100 <= leave_ms)
                    .filter(|&t| {
                        sessions.iter().any(|s| {
                            (audio_only || covered(&s.video_segments, t, keyframe_wait.max(100)))
                                && covered(&s.audio_segments, t, 100)
                        })
                    })
                    .collect();
                let (rgb, tone_hz) = (colour(i), 220.0 + 55.0 * i as f64);
                let talk_ms = talk_turns(spec, &participant_id, &events);
                SynthParticipant {
                    participant_id,
                    user_session_id: first_session,
                    rgb,
                    tone_hz,
                    video_codec: spec
                        .video_codecs
                        .get(i % spec.video_codecs.len().max(1))
                        .copied()
                        .unwrap_or(Codec::Vp8),
                    join_ms,
                    leave_ms,
                    video_start_ms,
                    audio_start_ms,
                    flashes_ms,
                    video_rtp_base,
                    audio_rtp_base,
                    video_ssrc: rng.next_u32(),
                    audio_ssrc: rng.next_u32(),
                    sessions,
                    drift_ppm: events
                        .iter()
                        .find_map(|a| match a {
                            SynthAction::Drift { ppm } => Some(*ppm),
                            _ => None,
                        })
                        .unwrap_or(0.0),
                    rotate_at_ms: events.iter().find_map(|a| match a {
                        SynthAction::Rotate { at_ms } => Some(at_ms.div_ceil(100) * 100),
                        _ => None,
                    }),
                    sender_reports: !events.contains(&SynthAction::NoSenderReports),
                    audio_only,
                    screenshare: ScreenshareSender::new(spec.seed, i, rgb, tone_hz),
                    talk_ms,
                    coughs_ms: {
                        let mut coughs: Vec<u64> = events
                            .iter()
                            .filter_map(|a| match a {
                                SynthAction::Cough { at_ms } => Some(*at_ms),
                                _ => None,
                            })
                            .collect();
                        coughs.sort_unstable();
                        coughs
                    },
                }
            })
            .collect();
        SynthPlan {
            spec: spec.clone(),
            call_type: "default".into(),
            call_id: format!("synth-{}", spec.seed),
            call_session_id: rng.uuid(),
            participants,
        }
    }
}

impl ScreenshareSender {
    /// Drawn from a random stream of its own, so plans without screenshares stay as they were.
    fn new(seed: u64, index: usize, rgb: [u8; 3], tone_hz: f64) -> ScreenshareSender {
        let mut rng = SplitMix::new(seed ^ 0x5C8E_E45A_0000_0000 ^ (index as u64) << 16);
        ScreenshareSender {
            rgb: rgb.map(|c| (128 + (i16::from(c) - 128) / 4) as u8),
            tone_hz: tone_hz * 2.0,
            video_rtp_base: rng.next_u32(),
            audio_rtp_base: rng.next_u32(),
            video_ssrc: rng.next_u32(),
            audio_ssrc: rng.next_u32(),
        }
    }
}

/// Cuts `spans` at `[from, to)`: what remains of each span, in order.
fn cut(spans: Vec<(u64, u64)>, from: u64, to: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for (a, b) in spans {
        if a < from.min(b) {
            out.push((a, from.min(b)));
        }
        if to.max(a) < b {
            out.push((to.max(a), b));
        }
    }
    out
}

fn grid(t: u64) -> u64 {
    t.div_ceil(100) * 100
}

/// The sessions of one participant: one from join to leave, split at each rejoin, with
/// media segments split at each mute. Media restarts on the 100 ms grid after a gap. No video
/// start: the participant is audio-only. Screenshares are clipped to each session.
fn sessions(
    events: &[SynthAction],
    first_session: String,
    (video_start_ms, audio_start_ms, leave_ms): (Option<u64>, u64, u64),
    rng: &mut SplitMix,
) -> Vec<SynthSession> {
    let mut video: Vec<(u64, u64)> = video_start_ms.map(|v| (v, leave_ms)).into_iter().collect();
    let mut audio = vec![(audio_start_ms, leave_ms)];
    let mut bounds = vec![(video_start_ms.map_or(audio_start_ms, |v| v.min(audio_start_ms)), leave_ms)];
    let mut screenshares = Vec::new();
    for action in events {
        match *action {
            SynthAction::Screenshare { from_ms, to_ms } => screenshares.push((from_ms, to_ms)),
            SynthAction::MuteVideo { from_ms, to_ms } => video = cut(video, from_ms, grid(to_ms)),
            SynthAction::MuteAudio { from_ms, to_ms } => audio = cut(audio, from_ms, grid(to_ms)),
            SynthAction::Rejoin { leave_ms, rejoin_ms } => {
                video = cut(video, leave_ms, grid(rejoin_ms));
                audio = cut(audio, leave_ms, grid(rejoin_ms));
                bounds = cut(bounds, leave_ms, grid(rejoin_ms));
            }
            _ => {}
        }
    }
    bounds
        .into_iter()
        .enumerate()
        .map(|(k, (join_ms, leave_ms))| {
            let inside = |spans: &[(u64, u64)]| -> Vec<(u64, u64)> {
                spans.iter().copied().filter(|&(a, b)| a >= join_ms && b <= leave_ms && b > a).collect()
            };
            SynthSession {
                user_session_id: if k == 0 { first_session.clone() } else { rng.uuid() },
                join_ms,
                leave_ms,
                video_segments: inside(&video),
                audio_segments: inside(&audio),
                screenshare_segments: clip_screenshares(&screenshares, join_ms, leave_ms),
            }
        })
        .collect()
}

/// Screenshare segments within a session `[join_ms, leave_ms)`: each span clipped to it and
/// started on the 100 ms grid, overlapping or touching spans merged, and what is left shorter
/// than 100 ms dropped (too short to carry media).
fn clip_screenshares(spans: &[(u64, u64)], join_ms: u64, leave_ms: u64) -> Vec<(u64, u64)> {
    let mut clipped: Vec<(u64, u64)> =
        spans.iter().map(|&(a, b)| (grid(a.max(join_ms)), b.min(leave_ms))).filter(|&(a, b)| b > a).collect();
    clipped.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (a, b) in clipped {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged.retain(|&(a, b)| b >= a + 100);
    merged
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
