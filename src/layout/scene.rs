//! The scene: who is on stage at one moment (in the call, with or without a picture, how loud,
//! since when). The layout engine decides from it who is visible, in which order and where;
//! the caller only reports. Pure.

/// One participant's camera or screenshare on stage at a moment.
#[derive(Debug, Clone, PartialEq)]
pub struct OnStage<'a> {
    pub participant_id: &'a str,
    /// Shown on labels; the participant id when the job names nobody.
    pub display_name: &'a str,
    pub screenshare: bool,
    /// The size of the current picture; `None` while there is none (camera off, not yet
    /// decoded): a placeholder tile. A screenshare without a picture is not placed at all.
    pub picture: Option<(u32, u32)>,
    /// How loud the participant is in this frame's interval: RMS of the samples, 0..1.
    pub speaking_level: f32,
    /// Rank of the participant's first appearance in the call (0 = first); for screenshares,
    /// a higher rank means a newer share.
    pub join_order: usize,
    /// The participant's role in the call, if the job gives one (`select = "role"`).
    pub role: Option<&'a str>,
    /// Whether the job pins this participant (`select = "pinned"`).
    pub pinned: bool,
    /// Whether the participant is speaking now (the speaking highlight).
    pub speaking: bool,
}

impl<'a> OnStage<'a> {
    /// A camera with nothing else set: silent, no role, not pinned; the display name is the id.
    pub fn camera(participant_id: &'a str, join_order: usize, picture: Option<(u32, u32)>) -> OnStage<'a> {
        OnStage {
            participant_id,
            display_name: participant_id,
            screenshare: false,
            picture,
            speaking_level: 0.0,
            join_order,
            role: None,
            pinned: false,
            speaking: false,
        }
    }

    /// `participant_id`'s screenshare with a picture of `picture` pixels.
    pub fn screenshare(participant_id: &'a str, join_order: usize, picture: Option<(u32, u32)>) -> OnStage<'a> {
        OnStage { screenshare: true, ..OnStage::camera(participant_id, join_order, picture) }
    }
}

/// Everyone on stage at one moment, in any order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scene<'a> {
    pub on_stage: Vec<OnStage<'a>>,
    /// The participant id of the active (dominant) speaker; `None` while nobody has spoken.
    pub active_speaker: Option<&'a str>,
}

/// Indices into `scene.on_stage` in the order the grid fills: by join order, cameras before
/// screenshares of the same rank, then participant id (deterministic whatever the input order).
pub fn display_order(scene: &Scene<'_>) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scene.on_stage.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&scene.on_stage[a], &scene.on_stage[b]);
        a.join_order
            .cmp(&b.join_order)
            .then_with(|| a.screenshare.cmp(&b.screenshare))
            .then_with(|| a.participant_id.cmp(b.participant_id))
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::TileContent;

    use crate::layout::Layout;

    fn on_stage(id: &str, join_order: usize, picture: Option<(u32, u32)>) -> OnStage<'_> {
        OnStage::camera(id, join_order, picture)
    }

    #[test]
    fn the_scene_is_placed_in_join_order_whatever_order_it_comes_in() {
        let layout = Layout::builtin("grid").expect("grid");
        let scene = Scene {
            on_stage: vec![
                on_stage("carol", 2, Some((640, 360))),
                on_stage("alice", 0, Some((640, 360))),
                on_stage("bob", 1, None),
            ],
            active_speaker: None,
        };
        let tiles = layout.arrange(&scene, 1280, 720);
        assert_eq!(tiles.len(), 3);
        let ids: Vec<&str> = tiles.iter().map(|t| scene.on_stage[t.participant_index].participant_id).collect();
        assert_eq!(ids, ["alice", "bob", "carol"], "grid cells fill in join order");
        assert!(matches!(tiles[1].content, TileContent::Placeholder(_)), "bob has no picture");
        assert!(matches!(tiles[0].content, TileContent::Video { .. }));
        // The same as placing the pictures in display order directly.
        let direct = layout.place(&[Some((640, 360)), None, Some((640, 360))], 1280, 720);
        assert_eq!(tiles.iter().map(|t| t.cell).collect::<Vec<_>>(), direct.iter().map(|t| t.cell).collect::<Vec<_>>());
    }

    #[test]
    fn a_screenshare_follows_the_camera_that_joined_with_it_and_ties_break_by_id() {
        let mut share = on_stage("alice", 0, Some((1920, 1080)));
        share.screenshare = true;
        let scene =
            Scene { on_stage: vec![share, on_stage("bob", 0, None), on_stage("alice", 0, None)], active_speaker: None };
        let order = display_order(&scene);
        assert_eq!(order, vec![2, 1, 0]);
    }

    #[test]
    fn more_on_stage_than_the_region_takes_shows_the_first_joiners() {
        let layout = Layout::builtin("grid").expect("grid");
        let ids: Vec<String> = (0..60).map(|i| format!("p{i:02}")).collect();
        let scene = Scene {
            on_stage: ids.iter().enumerate().rev().map(|(i, id)| on_stage(id, i, None)).collect(),
            active_speaker: None,
        };
        let tiles = layout.arrange(&scene, 1920, 1080);
        let max = layout.regions[0].max_participants;
        assert_eq!(tiles.len(), max);
        assert!(tiles.iter().all(|t| scene.on_stage[t.participant_index].join_order < max));
    }
}
