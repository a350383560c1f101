//! The director: the layout timeline, slot stability, motion.

use super::director::stable_slots;
use super::tests::{cameras, ids, who};
use super::*;

fn key(id: &str) -> TileKey {
    TileKey { participant_id: id.to_owned(), screenshare: false }
}

fn keys(list: &[&str]) -> Vec<TileKey> {
    list.iter().map(|id| key(id)).collect()
}

fn director(name: &str) -> Director {
    Director::new(LayoutTimeline::single(Layout::builtin(name).expect("built-in")))
}

fn cell_of(tiles: &[Tile], id: &str) -> RectF {
    tiles.iter().find(|t| t.key == key(id)).map(|t| t.cell).unwrap_or_else(|| panic!("{id} not drawn"))
}

fn strip_order<'a>(tiles: &[Tile], scene: &Scene<'a>) -> Vec<&'a str> {
    let mut strip: Vec<&Tile> = tiles.iter().filter(|t| t.cell.y >= 0.8 * 1080.0).collect();
    strip.sort_by(|a, b| a.cell.x.total_cmp(&b.cell.x));
    strip.iter().map(|t| scene.on_stage[t.participant_index].participant_id).collect()
}

#[test]
fn stable_slots_keep_stayers_give_leavers_slots_to_newcomers_and_close_up() {
    let order = |previous: &[&str], current: &[&str]| -> Vec<String> {
        let current_keys = keys(current);
        stable_slots(&keys(previous), &current_keys).iter().map(|&i| current[i].to_owned()).collect()
    };
    assert_eq!(order(&[], &["a", "b"]), ["a", "b"]);
    assert_eq!(order(&["a", "b", "c"], &["c", "b", "a"]), ["a", "b", "c"], "stayers keep their order");
    assert_eq!(order(&["b", "c", "d"], &["a", "b", "d"]), ["b", "a", "d"], "a takes c's slot");
    assert_eq!(order(&["a", "b", "c"], &["a", "c"]), ["a", "c"], "close up");
    assert_eq!(order(&["a", "b"], &["a", "b", "z", "y"]), ["a", "b", "z", "y"], "newcomers append");
    assert_eq!(order(&["a", "b", "c"], &["x", "c", "y"]), ["x", "y", "c"], "two leavers, two newcomers");
}

#[test]
fn a_speaker_swap_keeps_the_strip_order() {
    let names = ids(4);
    let mut d = director("speaker");
    let mut scene = Scene { on_stage: cameras(&names), active_speaker: Some("p00") };
    let tiles = d.frame(0.0, &scene, 1920, 1080);
    assert_eq!(strip_order(&tiles, &scene), ["p01", "p02", "p03"]);
    // p02 speaks: p00 takes p02's place in the strip, p01 and p03 stay where they are.
    scene.active_speaker = Some("p02");
    let before = tiles;
    let tiles = d.frame(1000.0, &scene, 1920, 1080);
    assert_eq!(who(&tiles, &scene)[0], ("p02", false));
    let settled = d.frame(2000.0, &scene, 1920, 1080);
    assert_eq!(strip_order(&settled, &scene), ["p01", "p00", "p03"]);
    assert_eq!(cell_of(&settled, "p01"), cell_of(&before, "p01"));
    assert_eq!(cell_of(&settled, "p03"), cell_of(&before, "p03"));
    assert_eq!(cell_of(&tiles, "p01"), cell_of(&before, "p01"), "p01 never moves");
    // The stateless arrangement would have reshuffled the strip (join order).
    let plain = Layout::builtin("speaker").expect("speaker").arrange(&scene, 1920, 1080);
    assert_eq!(strip_order(&plain, &scene), ["p00", "p01", "p03"]);
}

#[test]
fn a_joiner_who_arrives_as_another_leaves_takes_the_leavers_cell() {
    let names = ids(5);
    let mut d = director("grid");
    let all = cameras(&names);
    let scene = Scene { on_stage: all[..4].to_vec(), active_speaker: None };
    let first = d.frame(0.0, &scene, 1920, 1080);
    // p01 leaves as p04 joins.
    let swapped =
        Scene { on_stage: vec![all[0].clone(), all[2].clone(), all[3].clone(), all[4].clone()], active_speaker: None };
    let tiles = d.frame(40.0, &swapped, 1920, 1080);
    assert_eq!(cell_of(&tiles, "p04"), cell_of(&first, "p01"));
    for stays in ["p00", "p02", "p03"] {
        assert_eq!(cell_of(&tiles, stays), cell_of(&first, stays), "{stays} stays put");
    }
    // A leaver alone: the others close up (and move there).
    let fewer = Scene { on_stage: vec![all[0].clone(), all[2].clone(), all[3].clone()], active_speaker: None };
    let moving = d.frame(1000.0, &fewer, 1920, 1080);
    assert_eq!(cell_of(&moving, "p02"), cell_of(&first, "p02"), "the close-up starts where they are");
    let settled = d.frame(1400.0, &fewer, 1920, 1080);
    let expect = Layout::builtin("grid").expect("grid").arrange(&fewer, 1920, 1080);
    assert_eq!(settled.iter().map(|t| t.cell).collect::<Vec<_>>(), expect.iter().map(|t| t.cell).collect::<Vec<_>>());
}

#[test]
fn moves_are_eased_halfway_at_half_time_and_content_follows() {
    let names = ids(2);
    let all = cameras(&names);
    let mut d = director("grid");
    let one = Scene { on_stage: all[..1].to_vec(), active_speaker: None };
    let alone = cell_of(&d.frame(0.0, &one, 1920, 1080), "p00");
    let two = Scene { on_stage: all.clone(), active_speaker: None };
    let target = cell_of(&Layout::builtin("grid").expect("grid").arrange(&two, 1920, 1080), "p00");
    let start = d.frame(1000.0, &two, 1920, 1080);
    assert_eq!(cell_of(&start, "p00"), alone, "the move starts where the tile was");
    assert_eq!(
        cell_of(&start, "p01"),
        cell_of(&Layout::builtin("grid").expect("grid").arrange(&two, 1920, 1080), "p01"),
        "a newcomer cuts in"
    );
    let mid = d.frame(1150.0, &two, 1920, 1080);
    let halfway = alone.lerp(&target, 0.5);
    let drawn = cell_of(&mid, "p00");
    assert!(
        (drawn.x - halfway.x).abs() < 0.01 && (drawn.width - halfway.width).abs() < 0.01,
        "{drawn:?} vs {halfway:?}"
    );
    let tile = mid.iter().find(|t| t.key == key("p00")).expect("p00");
    assert_eq!(tile.content, fit_frame(drawn, 640, 360, Fit::Contain), "the picture is fitted to the drawn cell");
    let quarter = cell_of(&d.frame(1075.0, &two, 1920, 1080), "p00");
    let linear_quarter = alone.lerp(&target, 0.25);
    assert!((quarter.width - alone.width).abs() < (linear_quarter.width - alone.width).abs(), "eased: slow start");
    assert_eq!(cell_of(&d.frame(1300.0, &two, 1920, 1080), "p00"), target);
}

#[test]
fn transition_ms_zero_cuts() {
    let mut layout = Layout::builtin("grid").expect("grid");
    layout.transition_ms = 0;
    let mut d = Director::new(LayoutTimeline::single(layout.clone()));
    let names = ids(2);
    let all = cameras(&names);
    d.frame(0.0, &Scene { on_stage: all[..1].to_vec(), active_speaker: None }, 1920, 1080);
    let two = Scene { on_stage: all, active_speaker: None };
    assert_eq!(d.frame(40.0, &two, 1920, 1080), layout.arrange(&two, 1920, 1080));
}

#[test]
fn a_new_target_mid_move_continues_from_the_drawn_position() {
    let names = ids(3);
    let all = cameras(&names);
    let mut d = director("grid");
    let scene = |n: usize| Scene { on_stage: all[..n].to_vec(), active_speaker: None };
    d.frame(0.0, &scene(1), 1920, 1080);
    d.frame(1000.0, &scene(2), 1920, 1080);
    let drawn = cell_of(&d.frame(1100.0, &scene(2), 1920, 1080), "p00");
    // A third joins mid-move: p00 heads for its new cell from where it is.
    let again = cell_of(&d.frame(1100.0, &scene(3), 1920, 1080), "p00");
    assert_eq!(again, drawn, "no jump");
    let target = cell_of(&Layout::builtin("grid").expect("grid").arrange(&scene(3), 1920, 1080), "p00");
    let mid = cell_of(&d.frame(1250.0, &scene(3), 1920, 1080), "p00");
    let expect = drawn.lerp(&target, 0.5);
    assert!((mid.x - expect.x).abs() < 0.01 && (mid.y - expect.y).abs() < 0.01, "{mid:?} vs {expect:?}");
    assert_eq!(cell_of(&d.frame(1400.0, &scene(3), 1920, 1080), "p00"), target);
}

#[test]
fn a_screenshare_is_on_stage_in_the_frame_of_its_first_picture_while_the_others_move() {
    let names = ids(3);
    let mut on_stage = cameras(&names);
    on_stage.push(OnStage::screenshare("p01", 3, None));
    let mut d = director("auto");
    let scene = Scene { on_stage: on_stage.clone(), active_speaker: Some("p00") };
    let before = d.frame(0.0, &scene, 1920, 1080);
    assert!(before.iter().all(|t| !t.key.screenshare), "no picture, no share tile");
    on_stage[3].picture = Some((1920, 1080));
    let scene = Scene { on_stage, active_speaker: Some("p00") };
    let tiles = d.frame(33.3, &scene, 1920, 1080);
    let target = Layout::builtin("auto").expect("auto").arrange(&scene, 1920, 1080);
    let share = tiles.iter().find(|t| t.key.screenshare).expect("the share");
    assert_eq!(Some(share.cell), target.iter().find(|t| t.key.screenshare).map(|t| t.cell), "in place at once");
    assert_eq!(cell_of(&tiles, "p00"), cell_of(&before, "p00"), "the speaker's move to the strip starts now");
    let done = d.frame(400.0, &scene, 1920, 1080);
    assert_eq!(done, target);
}

#[test]
fn the_timeline_switches_layouts_with_a_move() {
    let grid = Layout::builtin("grid").expect("grid");
    let speaker = Layout::builtin("speaker").expect("speaker");
    let timeline = LayoutTimeline::new(vec![(5000, speaker.clone())]).expect("timeline");
    assert_eq!(timeline.entries().len(), 2, "grid until the first entry");
    assert_eq!(timeline.at(0.0).name, "grid");
    assert_eq!(timeline.at(4999.9).name, "grid");
    assert_eq!(timeline.at(5000.0).name, "speaker");
    assert_eq!(timeline.at(-5.0).name, "grid");
    let mut d = Director::new(timeline);
    let names = ids(3);
    let scene = Scene { on_stage: cameras(&names), active_speaker: Some("p01") };
    let before = d.frame(4960.0, &scene, 1920, 1080);
    assert_eq!(before, grid.arrange(&scene, 1920, 1080));
    let switching = d.frame(5000.0, &scene, 1920, 1080);
    assert_eq!(cell_of(&switching, "p01"), cell_of(&before, "p01"), "moves from its grid cell");
    let mid = cell_of(&d.frame(5150.0, &scene, 1920, 1080), "p01");
    let target = cell_of(&speaker.arrange(&scene, 1920, 1080), "p01");
    let halfway = cell_of(&before, "p01").lerp(&target, 0.5);
    assert!((mid.width - halfway.width).abs() < 0.01, "{mid:?} vs {halfway:?}");
    assert_eq!(d.frame(5300.0, &scene, 1920, 1080), speaker.arrange(&scene, 1920, 1080));
}

#[test]
fn a_fallback_switch_moves_too() {
    let names = ids(2);
    let all = cameras(&names);
    let mut d = director("speaker");
    let one = Scene { on_stage: all[..1].to_vec(), active_speaker: Some("p00") };
    let full = cell_of(&d.frame(0.0, &one, 1920, 1080), "p00");
    let two = Scene { on_stage: all, active_speaker: Some("p00") };
    let start = d.frame(1000.0, &two, 1920, 1080);
    assert_eq!(cell_of(&start, "p00"), full, "grid (fallback) to speaker: a move, not a cut");
    assert_eq!(
        d.frame(1300.0, &two, 1920, 1080),
        Layout::builtin("speaker").expect("speaker").arrange(&two, 1920, 1080)
    );
}

#[test]
fn timelines_refuse_two_layouts_at_once_and_sort() {
    let grid = Layout::builtin("grid").expect("grid");
    let pip = Layout::builtin("pip").expect("pip");
    let err = LayoutTimeline::new(vec![(10, grid.clone()), (10, pip.clone())]).expect_err("duplicate");
    assert!(matches!(err, LayoutError::DuplicateTime { at_ms: 10 }), "{err}");
    let timeline = LayoutTimeline::new(vec![(9000, grid), (0, pip)]).expect("sorted");
    let order: Vec<(u64, &str)> = timeline.entries().iter().map(|(at, l)| (*at, l.name.as_str())).collect();
    assert_eq!(order, [(0, "pip"), (9000, "grid")]);
    assert_eq!(LayoutTimeline::new(Vec::new()).expect("empty").at(0.0).name, "grid");
}

#[test]
fn the_same_frames_give_the_same_tiles() {
    let names = ids(6);
    let run = || {
        let mut d = director("auto");
        let mut out = Vec::new();
        for frame in 0..90 {
            let t_ms = f64::from(frame) * 1000.0 / 30.0;
            let mut on_stage = cameras(&names[..(2 + frame as usize / 20).min(6)]);
            if frame > 40 {
                on_stage.push(OnStage::screenshare("p01", 9, Some((1920, 1080))));
            }
            let speaker = names[(frame as usize / 13) % on_stage.len().min(6)].as_str();
            let scene = Scene { on_stage, active_speaker: Some(speaker) };
            out.push(d.frame(t_ms, &scene, 1280, 720));
        }
        out
    };
    assert_eq!(run(), run());
}
