//! What happens to named participants of a synthetic call, and the `NAME:ACTION[:ARG]` form the
//! command line gives it in.

use std::str::FromStr;

/// Something that happens to one participant.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthEvent {
    pub participant: String,
    pub action: SynthAction,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SynthAction {
    /// Camera off from .. to (a new video segment after).
    MuteVideo { from_ms: u64, to_ms: u64 },
    /// Microphone off from .. to (a new audio segment after).
    MuteAudio { from_ms: u64, to_ms: u64 },
    /// Leaves at `leave_ms` and joins again, as a new session, at `rejoin_ms`.
    Rejoin { leave_ms: u64, rejoin_ms: u64 },
    /// Leaves for good.
    Leave { at_ms: u64 },
    /// The camera turns portrait (width and height swap).
    Rotate { at_ms: u64 },
    /// The sender's clock runs this many parts per million fast (negative: slow).
    Drift { ppm: f64 },
    /// Never sends camera video: no video track at all, only audio (and any screenshare).
    AudioOnly,
    /// Shares a screen from .. to (clipped to the participant's sessions): a screenshare video
    /// track and a screenshare audio track beside the camera and microphone.
    Screenshare { from_ms: u64, to_ms: u64 },
    /// The participant's sender sends no RTCP sender reports: its segments' timing metadata
    /// has no `*_rtcp_*` fields, whatever the call's RTCP mode.
    NoSenderReports,
    /// Talks from .. to: a turn of the call's talk schedule (see [`TalkTurn`]).
    Talk { from_ms: u64, to_ms: u64 },
    /// Coughs at this call time: a loud 200 ms burst on the microphone.
    Cough { at_ms: u64 },
}

/// One turn of a call's talk schedule: `participant` talks from `from_ms` to `to_ms`. When a
/// call has a talk schedule, every microphone is near-silent (its tone at -50 dBFS) outside
/// its participant's turns and talks (its tone at speech level, in syllables) during them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalkTurn {
    pub participant: String,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// `NAME:FROM_MS-TO_MS`, e.g. `alice:0-3000`.
impl FromStr for TalkTurn {
    type Err = String;

    fn from_str(text: &str) -> Result<TalkTurn, String> {
        let (name, range) =
            text.split_once(':').ok_or_else(|| format!("talk `{text}`: expected NAME:FROM_MS-TO_MS"))?;
        match format!("{name}:talk:{range}").parse::<SynthEvent>() {
            Ok(SynthEvent { participant, action: SynthAction::Talk { from_ms, to_ms } }) => {
                Ok(TalkTurn { participant, from_ms, to_ms })
            }
            Ok(_) => Err(format!("talk `{text}`: expected NAME:FROM_MS-TO_MS")),
            Err(e) => Err(e.replacen(&format!("event `{name}:talk:{range}`"), &format!("talk `{text}`"), 1)),
        }
    }
}

/// The actions [`SynthEvent::from_str`] knows, as the command line spells them.
pub const ACTION_NAMES: &[&str] = &[
    "mute-video",
    "mute-audio",
    "rejoin",
    "leave",
    "rotate",
    "drift",
    "audio-only",
    "screenshare",
    "no-rtcp",
    "talk",
    "cough",
];

/// `NAME:ACTION[:ARG]`: `alice:mute-video:2000-3500`, `bob:mute-audio:2000-3500`,
/// `carol:rejoin:3000-4500`, `dave:leave:5000`, `alice:rotate:3000`, `bob:drift:100` (ppm),
/// `carol:audio-only`, `dave:screenshare:1000-2500`, `carol:no-rtcp`, `alice:talk:0-3000`,
/// `bob:cough:1500`.
impl FromStr for SynthEvent {
    type Err = String;

    fn from_str(text: &str) -> Result<SynthEvent, String> {
        let mut parts = text.splitn(3, ':');
        let (name, action, arg) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
        let bad = |why: &str| format!("event `{text}`: {why}");
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad(&format!("`{s}` is not a number of ms")));
        let arg_text = arg.unwrap_or("");
        let range = || -> Result<(u64, u64), String> {
            let (a, b) = arg_text.split_once('-').ok_or_else(|| bad("expected FROM_MS-TO_MS"))?;
            let (a, b) = (number(a)?, number(b)?);
            if a >= b {
                return Err(bad("the range ends before it starts"));
            }
            Ok((a, b))
        };
        let action = match action {
            "mute-video" => range().map(|(from_ms, to_ms)| SynthAction::MuteVideo { from_ms, to_ms })?,
            "mute-audio" => range().map(|(from_ms, to_ms)| SynthAction::MuteAudio { from_ms, to_ms })?,
            "rejoin" => range().map(|(leave_ms, rejoin_ms)| SynthAction::Rejoin { leave_ms, rejoin_ms })?,
            "leave" => SynthAction::Leave { at_ms: number(arg_text)? },
            "rotate" => SynthAction::Rotate { at_ms: number(arg_text)? },
            "drift" => SynthAction::Drift {
                ppm: arg_text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| p.abs() <= 1000.0)
                    .ok_or_else(|| bad("drift must be -1000..=1000 ppm"))?,
            },
            "audio-only" | "no-rtcp" => match arg.filter(|a| !a.trim().is_empty()) {
                None if action == "audio-only" => SynthAction::AudioOnly,
                None => SynthAction::NoSenderReports,
                Some(extra) => return Err(bad(&format!("{action} takes no argument (got `{extra}`)"))),
            },
            "screenshare" => range().map(|(from_ms, to_ms)| SynthAction::Screenshare { from_ms, to_ms })?,
            "talk" => range().map(|(from_ms, to_ms)| SynthAction::Talk { from_ms, to_ms })?,
            "cough" => SynthAction::Cough { at_ms: number(arg_text)? },
            other => {
                return Err(bad(&format!("unknown action `{other}` ({})", ACTION_NAMES.join(", "))));
            }
        };
        if name.is_empty() {
            return Err(bad("no participant name"));
        }
        Ok(SynthEvent { participant: name.to_owned(), action })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SynthEvent, String> {
        text.parse::<SynthEvent>()
    }

    fn action(text: &str) -> SynthAction {
        match parse(text) {
            Ok(event) => event.action,
            Err(e) => panic!("{text}: {e}"),
        }
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(
            parse("alice:mute-video:2000-3500"),
            Ok(SynthEvent {
                participant: "alice".into(),
                action: SynthAction::MuteVideo { from_ms: 2000, to_ms: 3500 }
            })
        );
        assert_eq!(action("bob:mute-audio:2000-3500"), SynthAction::MuteAudio { from_ms: 2000, to_ms: 3500 });
        assert_eq!(action("carol:rejoin:3000-4500"), SynthAction::Rejoin { leave_ms: 3000, rejoin_ms: 4500 });
        assert_eq!(action("dave:leave:5000"), SynthAction::Leave { at_ms: 5000 });
        assert_eq!(action("alice:rotate: 3000 "), SynthAction::Rotate { at_ms: 3000 });
        assert_eq!(action("bob:drift:100"), SynthAction::Drift { ppm: 100.0 });
        assert_eq!(action("bob:drift:-80.5"), SynthAction::Drift { ppm: -80.5 });
        assert_eq!(action("carol:audio-only"), SynthAction::AudioOnly);
        assert_eq!(action("carol:no-rtcp"), SynthAction::NoSenderReports);
        assert_eq!(action("dave:screenshare:1000-2500"), SynthAction::Screenshare { from_ms: 1000, to_ms: 2500 });
        assert_eq!(parse("user12:audio-only").map(|e| e.participant), Ok("user12".to_owned()));
        assert_eq!(action("alice:talk:0-3000"), SynthAction::Talk { from_ms: 0, to_ms: 3000 });
        assert_eq!(action("bob:cough:1500"), SynthAction::Cough { at_ms: 1500 });
    }

    #[test]
    fn talk_turns_parse_with_precise_errors() {
        assert_eq!(
            "bob:3000-6000".parse::<TalkTurn>(),
            Ok(TalkTurn { participant: "bob".into(), from_ms: 3000, to_ms: 6000 })
        );
        let error = |text: &str| text.parse::<TalkTurn>().expect_err(text);
        assert_eq!(error("bob"), "talk `bob`: expected NAME:FROM_MS-TO_MS");
        assert_eq!(error("bob:6000-3000"), "talk `bob:6000-3000`: the range ends before it starts");
        assert_eq!(error("bob:3000"), "talk `bob:3000`: expected FROM_MS-TO_MS");
        assert_eq!(error(":0-100"), "talk `:0-100`: no participant name");
        assert_eq!(error("bob:1s-2s"), "talk `bob:1s-2s`: `1s` is not a number of ms");
    }

    #[test]
    fn rejects_bad_events_with_a_helpful_message() {
        let error = |text: &str| match parse(text) {
            Ok(event) => panic!("{text} parsed as {event:?}"),
            Err(e) => e,
        };
        let unknown = error("alice:wave:100");
        assert!(unknown.starts_with("event `alice:wave:100`: unknown action `wave`"), "{unknown}");
        for name in ACTION_NAMES {
            assert!(unknown.contains(name), "{unknown} lists {name}");
        }
        assert!(error("alice").contains("unknown action ``"));
        assert!(error("alice:screenshare:2500-1000").contains("the range ends before it starts"));
        assert!(error("alice:screenshare:1000").contains("expected FROM_MS-TO_MS"));
        assert!(error("alice:screenshare").contains("expected FROM_MS-TO_MS"));
        assert!(error("alice:screenshare:1s-2s").contains("`1s` is not a number of ms"));
        assert!(error("alice:mute-video:5-5").contains("the range ends before it starts"));
        assert!(error("alice:leave:soon").contains("`soon` is not a number of ms"));
        assert!(error("alice:drift:2000").contains("drift must be -1000..=1000 ppm"));
        assert!(error("alice:audio-only:1000").contains("audio-only takes no argument"));
        assert!(error(":audio-only").contains("no participant name"));
        assert!(error(":leave:100").contains("no participant name"));
        assert!(error("alice:talk:3000-1000").contains("the range ends before it starts"));
        assert!(error("alice:cough").contains("`` is not a number of ms"));
    }
}
