//! The staging part of a job's spec checked field by field: the layout (a built-in name or an
//! inline layout), the layout timeline, the participants' names, roles and pins, and the
//! speaker settings. Pure.

use std::collections::HashSet;

use super::spec::Violations;
use crate::audio::speaker::SpeakerConfig;
use crate::layout::Layout;
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
        (_, false) => Layout::parse("inline layout", inline).map_err(|err| (format!("{field}_inline"), err)),
        (true, true) => Ok(Layout::grid()),
        (false, true) => Layout::builtin(name).map_err(|err| (field.to_owned(), err)),
    };
    parsed.map_err(|(field, err)| v.add(field, err.to_string())).ok()
}

/// The staging of `spec`; problems go to `v`.
pub fn staging(spec: &pb::RenderJobSpec, v: &mut Violations) -> Staging {
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
