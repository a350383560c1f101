//! How the composite is staged over the call: which layout applies from when, who is who
//! (names, roles, pins), and how the active speaker is chosen. Built from a job's spec or the
//! command line; the pass turns it into a [`Director`] per output.

use crate::audio::speaker::SpeakerConfig;
use crate::layout::{Director, Layout, LayoutError, LayoutTimeline, Rgb};

/// What the job says about one participant.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParticipantInfo {
    pub id: String,
    /// Shown on labels; empty: the id.
    pub name: String,
    pub role: Option<String>,
    pub pinned: bool,
}

/// The layouts of the composite over the call, and the people in it.
#[derive(Debug, Clone)]
pub struct Staging {
    /// `(at_ms, layout)` in call time order; the first applies from 0.
    pub layouts: Vec<(u64, Layout)>,
    pub participants: Vec<ParticipantInfo>,
    pub speaker: SpeakerConfig,
}

impl Default for Staging {
    /// The built-in grid, nobody named, the default speaker detection.
    fn default() -> Self {
        Staging::single(Layout::grid())
    }
}

impl Staging {
    /// One layout for the whole call.
    pub fn single(layout: Layout) -> Staging {
        Staging { layouts: vec![(0, layout)], participants: Vec::new(), speaker: SpeakerConfig::default() }
    }

    /// The layout that applies from the call's start.
    pub fn first_layout(&self) -> Option<&Layout> {
        self.layouts.first().map(|(_, layout)| layout)
    }

    /// Every layout's background replaced by `rgb` (the job's `video.backgroundRgb`).
    pub fn set_background(&mut self, rgb: [u8; 3]) {
        for (_, layout) in &mut self.layouts {
            layout.background = Rgb(rgb);
        }
    }

    /// What the job says about `participant_id`.
    pub fn participant(&self, participant_id: &str) -> Option<&ParticipantInfo> {
        self.participants.iter().find(|p| p.id == participant_id)
    }

    /// The name shown for `participant_id`: the job's, else the id.
    pub fn display_name<'a>(&'a self, participant_id: &'a str) -> &'a str {
        self.participant(participant_id).map(|p| p.name.as_str()).filter(|n| !n.is_empty()).unwrap_or(participant_id)
    }

    /// A director placing tiles by these layouts over time.
    pub fn director(&self) -> Result<Director, LayoutError> {
        Ok(Director::new(LayoutTimeline::new(self.layouts.clone())?))
    }
}
