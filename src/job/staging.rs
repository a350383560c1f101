//! The staging part of a job's spec checked field by field: the layout (a built-in name or an
//! inline layout), the layout timeline, the participants' names, roles and pins, and the
//! speaker settings. Pure.

use std::collections::HashSet;

use super::spec::Violations;
use crate::audio::speaker::SpeakerConfig;
use crate::layout::{INLINE_ORIGIN, Layout};
use crate::proto as pb;
use crate::render::staging::{ParticipantInfo, Staging};

/// Layout changes one job may ask for.
pub const MAX_LAYOUT_CHANGES: usize = 1000;
/// Participants one job may describe.
pub const MAX_PARTICIPANTS: usize = 1000;
/// An inline layout's text.
pub const MAX_LAYOUT_INLINE_BYTES: usize = 64 * 1024;
/// A participant's display name (a label shows far fewer characters).
pub const MAX_DISPLAY_NAME_BYTES: usize = 256;

/// The layout a `(name, inline)` pair asks for: the inline text when given, else the built-in
/// name (empty: `grid`). Problems go to `v` under `field`.
fn layout(name: &str, inline: &str, field: &str, v: &mut Violations) -> Option<Layout> {
    let parsed = match (name.is_empty(), inline.is_empty()) {
        (false, false) => {
            v.add(field, "give a layout name or an inline layout, not both");
            return None;
        }
        (_, false) => Layout::parse(INLINE_ORIGIN, inline).map_err(|err| (format!("{field}_inline"), err)),
        (true, true) => Ok(Layout::grid()),
        (false, true) => Layout::builtin(name).map_err(|err| (field.to_owned(), err)),
    };
    parsed.map_err(|(field, err)| v.add(field, err.to_string())).ok()
}

/// The staging of `spec`; problems go to `v`.
pub(super) fn staging(spec: &pb::RenderJobSpec, v: &mut Violations) -> Staging {
    let mut staging = Staging::default();
    let first = layout(&spec.layout, &spec.layout_inline, "layout", v);
    let mut layouts = vec![(0, first.unwrap_or_else(Layout::grid))];
    let mut seen = HashSet::new();
    if spec.layout_timeline.len() > MAX_LAYOUT_CHANGES {
        v.add(
            "layout_timeline",
            format!("{} changes, over the limit of {MAX_LAYOUT_CHANGES}", spec.layout_timeline.len()),
        );
    } else {
        for (i, change) in spec.layout_timeline.iter().enumerate() {
            let field = format!("layout_timeline[{i}]");
            if !seen.insert(change.at_ms) {
                v.add(format!("{field}.at_ms"), format!("{} ms is given twice", change.at_ms));
                continue;
            }
            if let Some(layout) = layout(&change.layout, &change.layout_inline, &format!("{field}.layout"), v) {
                if change.at_ms == 0 {
                    layouts[0] = (0, layout);
                } else {
                    layouts.push((change.at_ms, layout));
                }
            }
        }
    }
    layouts.sort_by_key(|(at_ms, _)| *at_ms);
    staging.layouts = layouts;
    staging.participants = participants(&spec.participants, v);
    staging.speaker = speaker(spec.speaker.as_ref(), v);
    staging
}

fn participants(given: &[pb::Participant], v: &mut Violations) -> Vec<ParticipantInfo> {
    if given.len() > MAX_PARTICIPANTS {
        v.add("participants", format!("{} participants, over the limit of {MAX_PARTICIPANTS}", given.len()));
        return Vec::new();
    }
    let mut ids = HashSet::new();
    let mut out = Vec::with_capacity(given.len());
    for (i, p) in given.iter().enumerate() {
        let field = |f: &str| format!("participants[{i}].{f}");
        if p.id.is_empty() {
            v.add(field("id"), "empty");
            continue;
        }
        if !ids.insert(p.id.as_str()) {
            v.add(field("id"), "the participant is listed twice");
            continue;
        }
        if p.name.chars().any(char::is_control) {
            v.add(field("name"), "contains control characters");
            continue;
        }
        out.push(ParticipantInfo {
            id: p.id.clone(),
            name: p.name.trim().to_owned(),
            role: (!p.role.is_empty()).then(|| p.role.clone()),
            pinned: p.pinned,
        });
    }
    out
}

fn speaker(settings: Option<&pb::SpeakerSettings>, v: &mut Violations) -> SpeakerConfig {
    let mut config = SpeakerConfig::default();
    let Some(s) = settings else { return config };
    let ms = |value: u32, field: &str, v: &mut Violations| -> Option<u32> {
        match value {
            0 => None,
            1..=60_000 => Some(value),
            _ => {
                v.add(format!("speaker.{field}"), format!("{value} ms is over 60000"));
                None
            }
        }
    };
    if let Some(value) = ms(s.min_speech_ms, "min_speech_ms", v) {
        config.min_speech_ms = value;
    }
    if let Some(value) = ms(s.switch_within_ms, "switch_within_ms", v) {
        config.switch_within_ms = value;
    }
    if let Some(value) = ms(s.hold_ms, "hold_ms", v) {
        config.hold_ms = value;
    }
    if s.silence_threshold_dbov != 0.0 {
        if (-127.0..0.0).contains(&s.silence_threshold_dbov) {
            config.silence_threshold_dbov = s.silence_threshold_dbov as f32;
        } else {
            v.add("speaker.silence_threshold_dbov", format!("{} is not within -127 to 0", s.silence_threshold_dbov));
        }
    }
    if config.min_speech_ms >= config.switch_within_ms {
        v.add(
            "speaker.min_speech_ms",
            format!("{} ms must be under switch_within_ms ({} ms)", config.min_speech_ms, config.switch_within_ms),
        );
    }
    config
}

#[cfg(test)]
mod tests {
    use crate::job::spec::validate;
    use crate::proto as pb;

    fn spec(staging: serde_json::Value) -> pb::RenderJobSpec {
        let mut json = serde_json::json!({
            "sources": [{"rawArchive": "call"}], "outputs": [{"kind": "composite"}], "storage": {"pathPrefix": "out"}
        });
        if let (Some(obj), Some(extra)) = (json.as_object_mut(), staging.as_object()) {
            obj.extend(extra.clone());
        }
        serde_json::from_value(json).expect("a spec")
    }

    fn fields(spec: &pb::RenderJobSpec) -> Vec<(String, String)> {
        validate(spec).err().map(|e| e.0.into_iter().map(|v| (v.field, v.reason)).collect()).unwrap_or_default()
    }

    #[test]
    fn a_timeline_with_names_an_inline_layout_and_speaker_settings_becomes_the_staging() {
        let inline = "name = \"mine\"\nbackground = \"#000000\"\n[[regions]]\nname = \"all\"\nx = 0.0\ny = 0.0\n\
                      width = 1.0\nheight = 1.0\nselect = \"all\"\narrange = \"grid\"\nfit = \"cover\"\n";
        let request = validate(&spec(serde_json::json!({
            "layout": "speaker",
            "layoutTimeline": [{"atMs": 60000, "layoutInline": inline}, {"atMs": 30000, "layout": "screenshare"}],
            "participants": [{"id": "alice", "name": " Alice Liddell ", "role": "host", "pinned": true}, {"id": "bob"}],
            "speaker": {"minSpeechMs": 200, "holdMs": 1500, "silenceThresholdDbov": -45.0}
        })))
        .expect("valid");
        let staging = &request.staging;
        let names: Vec<(u64, &str)> = staging.layouts.iter().map(|(at, l)| (*at, l.name.as_str())).collect();
        assert_eq!(names, [(0, "speaker"), (30000, "screenshare"), (60000, "mine")]);
        assert_eq!(staging.display_name("alice"), "Alice Liddell");
        assert_eq!(staging.display_name("bob"), "bob", "no name: the id");
        assert_eq!(staging.display_name("carol"), "carol", "not listed: the id");
        let alice = staging.participant("alice").expect("alice");
        assert_eq!((alice.role.as_deref(), alice.pinned), (Some("host"), true));
        assert_eq!((staging.speaker.min_speech_ms, staging.speaker.hold_ms), (200, 1500));
        assert_eq!(staging.speaker.switch_within_ms, 1000, "unset: the default");
        assert!((staging.speaker.silence_threshold_dbov + 45.0).abs() < 1e-6);
    }

    #[test]
    fn bad_layouts_names_and_speaker_settings_are_reported_by_field() {
        let got = fields(&spec(serde_json::json!({
            "layout": "mosaic",
            "layoutTimeline": [
                {"atMs": 1000, "layoutInline": "name = \"x\"\nbackground = \"blue\"\n"},
                {"atMs": 1000, "layout": "grid"},
                {"atMs": 2000, "layout": "grid", "layoutInline": "name = \"y\""}
            ],
            "participants": [{"id": "alice"}, {"id": "alice"}, {"id": ""}, {"id": "bob", "name": "a\u{7}b"}],
            "speaker": {"minSpeechMs": 90000, "silenceThresholdDbov": 3.0}
        })));
        let names: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            [
                "layout",
                "layout_timeline[0].layout_inline",
                "layout_timeline[1].at_ms",
                "layout_timeline[2].layout",
                "participants[1].id",
                "participants[2].id",
                "participants[3].name",
                "speaker.min_speech_ms",
                "speaker.silence_threshold_dbov",
            ],
            "{got:?}"
        );
        assert!(got[0].1.contains("mosaic"), "{got:?}");
        assert!(got[1].1.contains("inline layout"), "the inline layout's error names it: {got:?}");
    }
}
