//! The built-in layouts on landscape and portrait canvases, and the selectors.

use super::tests::{cameras, ids, who};
use super::*;

const LANDSCAPE: (u32, u32) = (1920, 1080);
const PORTRAIT: (u32, u32) = (1080, 1920);

fn builtin(name: &str) -> Layout {
    Layout::builtin(name).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn tile_of<'t>(tiles: &'t [Tile], id: &str, screenshare: bool) -> Option<&'t Tile> {
    tiles.iter().find(|t| t.key.participant_id == id && t.key.screenshare == screenshare)
}

fn largest(tiles: &[Tile]) -> &Tile {
    tiles.iter().max_by(|a, b| a.cell.area().total_cmp(&b.cell.area())).expect("a tile")
}

#[test]
fn every_file_in_layouts_parses_and_is_built_in() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("layouts");
    let mut stems = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("layouts/") {
        let path = entry.expect("entry").path();
        let stem = path.file_stem().and_then(|s| s.to_str()).expect("name").to_owned();
        let layout = Layout::load(path.to_str().expect("utf-8 path")).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(layout.name, stem, "{path:?} names itself after its file");
        assert_eq!(layout, builtin(&stem), "{stem}: the file and the compiled-in copy agree");
        stems.push(stem);
    }
    stems.sort();
    let mut names = Layout::builtin_names().to_vec();
    names.sort();
    assert_eq!(stems, names);
    assert_eq!(Layout::load("speaker").expect("a built-in by name").name, "speaker");
}

/// Checks that hold for every layout and scene: tiles inside the canvas, no overlap between
/// tiles drawn at the same z, draw order by z, each entry placed once, video inside its cell.
fn check_tiles(what: &str, tiles: &[Tile], scene: &Scene<'_>, (width, height): (u32, u32)) {
    let canvas = RectF { x: 0.0, y: 0.0, width: width as f32, height: height as f32 };
    for (i, tile) in tiles.iter().enumerate() {
        assert!(canvas.contains(&tile.cell, 0.01), "{what}: {tile:?} outside the canvas");
        assert!(tile.cell.width >= 1.0 && tile.cell.height >= 1.0, "{what}: {tile:?}");
        assert!(tile.participant_index < scene.on_stage.len(), "{what}");
        if let TileContent::Video { rect, .. } = &tile.content {
            assert!(tile.cell.contains(rect, 0.01), "{what}: video {rect:?} outside {:?}", tile.cell);
        }
        for other in &tiles[i + 1..] {
            assert!(tile.z <= other.z, "{what}: draw order by z");
            assert_ne!(tile.key, other.key, "{what}: placed twice");
            if tile.z == other.z {
                assert!(!tile.cell.overlaps(&other.cell, 0.01), "{what}: {tile:?} overlaps {other:?}");
            }
        }
    }
}

#[test]
fn every_builtin_fits_1_to_49_participants_with_and_without_shares_on_both_orientations() {
    let names = ids(49);
    for name in Layout::builtin_names() {
        let layout = builtin(name);
        for canvas in [LANDSCAPE, PORTRAIT] {
            for n in 1..=49 {
                for shares in 0..=2 {
                    let mut on_stage = cameras(&names[..n]);
                    for (i, camera) in on_stage.iter_mut().enumerate() {
                        camera.picture =
                            if i % 3 == 2 { None } else { Some(if i % 4 == 1 { (720, 1280) } else { (1280, 720) }) };
                        camera.pinned = i == n - 1;
                    }
                    for (s, sharer) in names.iter().enumerate().take(shares) {
                        on_stage.push(OnStage::screenshare(sharer, n + s, Some((1920, 1080))));
                    }
                    let speaker = names[n / 2].as_str();
                    let scene = Scene { on_stage, active_speaker: Some(speaker) };
                    let what = format!("{name} {canvas:?} n={n} shares={shares}");
                    let tiles = layout.arrange(&scene, canvas.0, canvas.1);
                    check_tiles(&what, &tiles, &scene, canvas);
                    assert!(!tiles.is_empty(), "{what}: something is shown");
                    let big = largest(&tiles);
                    match *name {
                        "grid" => assert_eq!(tiles.len(), (n + shares).min(49), "{what}: everyone"),
                        "audio-only" => {
                            assert_eq!(tiles.len(), n, "{what}: cameras only");
                            assert!(tiles.iter().all(|t| matches!(t.content, TileContent::Placeholder(_))));
                        }
                        "speaker" | "pip" if n > 1 => {
                            assert_eq!(big.key.participant_id, speaker, "{what}: the speaker is largest");
                        }
                        "spotlight" => {
                            assert_eq!(tiles.len(), 1, "{what}");
                            assert_eq!(tiles[0].key.participant_id, names[n - 1], "{what}: the pinned one");
                        }
                        "screenshare" | "auto" if shares > 0 => {
                            assert!(big.key.screenshare, "{what}: the share is largest");
                            assert_eq!(big.key.participant_id, names[shares - 1], "{what}: the newest share");
                            let video = |t: &Tile| match &t.content {
                                TileContent::Video { rect, .. } => rect.area(),
                                TileContent::Placeholder(_) => 0.0,
                            };
                            assert!(tiles.iter().all(|t| video(t) <= video(big) + 1.0), "{what}: no video larger");
                        }
                        _ => {}
                    }
                    if *name == "speaker" || (*name == "auto" && shares == 0) {
                        assert!(tile_of(&tiles, speaker, false).is_some(), "{what}: the speaker is never off-screen");
                    }
                }
            }
        }
    }
}

#[test]
fn speaker_puts_the_active_speaker_on_stage_and_the_others_in_a_row_below() {
    let names = ids(4);
    let scene = Scene { on_stage: cameras(&names), active_speaker: Some("p02") };
    let tiles = builtin("speaker").arrange(&scene, 1920, 1080);
    assert_eq!(who(&tiles, &scene), [("p02", false), ("p00", false), ("p01", false), ("p03", false)]);
    assert!(tiles[0].cell.height > 800.0, "{:?}", tiles[0].cell);
    for strip in &tiles[1..] {
        assert!(strip.cell.y >= 0.8 * 1080.0 && strip.cell.y + strip.cell.height <= 1080.0);
        assert!((strip.cell.center().1 - tiles[1].cell.center().1).abs() < 1e-3, "one row");
    }
    // Nobody has spoken yet: the first joiner.
    let quiet = Scene { active_speaker: None, ..scene.clone() };
    assert_eq!(who(&builtin("speaker").arrange(&quiet, 1920, 1080), &quiet)[0], ("p00", false));
    // The speaker has left: the first joiner too.
    let gone = Scene { active_speaker: Some("zed"), ..scene };
    assert_eq!(who(&builtin("speaker").arrange(&gone, 1920, 1080), &gone)[0], ("p00", false));
}

#[test]
fn speaker_on_a_portrait_canvas_puts_the_others_below() {
    let names = ids(7);
    let scene = Scene { on_stage: cameras(&names), active_speaker: Some("p00") };
    let tiles = builtin("speaker").arrange(&scene, 1080, 1920);
    assert_eq!(tiles.len(), 7);
    let stage = tiles[0].cell;
    assert!(stage.width > 1000.0 && stage.y + stage.height <= 0.6 * 1920.0 + 0.01);
    assert!(tiles[1..].iter().all(|t| t.cell.y >= stage.y + stage.height), "strip below the stage");
}

#[test]
fn speaker_alone_on_stage_falls_back_to_the_grid() {
    let names = ids(1);
    let scene = Scene { on_stage: cameras(&names), active_speaker: Some("p00") };
    let layout = builtin("speaker");
    assert_eq!(layout.select(&scene, 1920, 1080).layout.name, "grid");
    let tiles = layout.arrange(&scene, 1920, 1080);
    assert_eq!(tiles, builtin("grid").arrange(&scene, 1920, 1080));
}

#[test]
fn spotlight_shows_the_pinned_participant_else_the_speaker_layout() {
    let names = ids(3);
    let mut scene = Scene { on_stage: cameras(&names), active_speaker: Some("p02") };
    let layout = builtin("spotlight");
    let tiles = layout.arrange(&scene, 1920, 1080);
    assert_eq!(tiles, builtin("speaker").arrange(&scene, 1920, 1080), "nobody pinned: speaker");
    scene.on_stage[1].pinned = true;
    let tiles = layout.arrange(&scene, 1920, 1080);
    assert_eq!(who(&tiles, &scene), [("p01", false)]);
    assert_eq!(tiles[0].cell, RectF { x: 0.0, y: 0.0, width: 1920.0, height: 1080.0 });
}

#[test]
fn screenshare_promotes_the_share_with_a_picture_and_falls_back_to_the_grid() {
    let names = ids(3);
    let mut scene = Scene { on_stage: cameras(&names), active_speaker: None };
    let layout = builtin("screenshare");
    assert_eq!(layout.arrange(&scene, 1920, 1080), builtin("grid").arrange(&scene, 1920, 1080));
    // A share without a picture yet is placed nowhere.
    scene.on_stage.push(OnStage::screenshare("p01", 3, None));
    assert_eq!(layout.select(&scene, 1920, 1080).layout.name, "grid");
    assert!(tile_of(&layout.arrange(&scene, 1920, 1080), "p01", true).is_none());
    // Its first picture: on stage in that very frame.
    scene.on_stage[3].picture = Some((1920, 1080));
    let tiles = layout.arrange(&scene, 1920, 1080);
    assert_eq!(who(&tiles, &scene)[0], ("p01", true));
    assert!(tiles[0].cell.height > 0.75 * 1080.0);
    assert_eq!(tiles.len(), 4, "cameras in the strip");
    // An older share goes to the strip, the newest takes the stage.
    scene.on_stage.push(OnStage::screenshare("p02", 4, Some((1280, 720))));
    let tiles = layout.arrange(&scene, 1920, 1080);
    assert_eq!(who(&tiles, &scene)[0], ("p02", true));
    assert!(tile_of(&tiles, "p01", true).is_some_and(|t| t.cell.y >= 0.8 * 1080.0));
}

#[test]
fn auto_is_speaker_without_a_share_and_screenshare_with_one() {
    let names = ids(3);
    let mut scene = Scene { on_stage: cameras(&names), active_speaker: Some("p01") };
    let auto = builtin("auto");
    assert_eq!(auto.arrange(&scene, 1920, 1080), builtin("speaker").arrange(&scene, 1920, 1080));
    assert_eq!(auto.arrange(&scene, 1080, 1920), builtin("speaker").arrange(&scene, 1080, 1920));
    scene.on_stage.push(OnStage::screenshare("p00", 3, Some((1920, 1080))));
    let tiles = auto.arrange(&scene, 1920, 1080);
    let share = builtin("screenshare").arrange(&scene, 1920, 1080);
    assert_eq!(
        tiles.iter().map(|t| (&t.key, t.cell)).collect::<Vec<_>>(),
        share.iter().map(|t| (&t.key, t.cell)).collect::<Vec<_>>()
    );
}

#[test]
fn pip_draws_the_speaker_full_frame_and_one_other_in_a_rounded_corner_on_top() {
    let names = ids(3);
    let scene = Scene { on_stage: cameras(&names), active_speaker: Some("p01") };
    for (width, height) in [LANDSCAPE, PORTRAIT] {
        let tiles = builtin("pip").arrange(&scene, width, height);
        assert_eq!(who(&tiles, &scene), [("p01", false), ("p00", false)], "{width}x{height}");
        assert_eq!(tiles[0].cell, RectF { x: 0.0, y: 0.0, width: width as f32, height: height as f32 });
        let corner = &tiles[1];
        assert_eq!((tiles[0].z, corner.z), (0, 1));
        assert!(corner.cell.area() < 0.1 * (width * height) as f32);
        assert!(corner.cell.x + corner.cell.width < width as f32 - 20.0, "a margin on the right");
        assert!(corner.cell.y + corner.cell.height < height as f32 - 20.0, "a margin below");
        assert!(corner.cell.center().0 > width as f32 / 2.0 && corner.cell.center().1 > height as f32 / 2.0);
        assert!((corner.cell.width / corner.cell.height - 16.0 / 9.0).abs() < 0.02, "16:9: {:?}", corner.cell);
        assert!(corner.style.corner_radius_px > 0.0 && corner.style.border_px > 0.0);
    }
}

#[test]
fn audio_only_shows_avatars_with_the_speaking_highlight() {
    let names = ids(3);
    let mut on_stage = cameras(&names);
    on_stage[2].speaking = true;
    on_stage.push(OnStage::screenshare("p00", 3, Some((1920, 1080))));
    let scene = Scene { on_stage, active_speaker: Some("p02") };
    let tiles = builtin("audio-only").arrange(&scene, 1920, 1080);
    assert_eq!(tiles.len(), 3);
    for tile in &tiles {
        assert!(matches!(tile.content, TileContent::Placeholder(_)));
        assert_eq!(tile.picture, None);
        assert!(tile.style.avatar && tile.style.label && tile.style.highlight.is_some());
    }
    assert!(tiles[2].speaking && !tiles[0].speaking);
}

fn custom(regions: &str) -> Layout {
    let text = format!("name = \"custom\"\nbackground = \"#000000\"\n{regions}");
    Layout::parse("inline layout", &text).unwrap_or_else(|err| panic!("{err}"))
}

fn region(name: &str, y: f32, select: &str, arrange: &str, extra: &str) -> String {
    format!(
        "[[regions]]\nname = \"{name}\"\nx = 0\ny = {y}\nwidth = 1\nheight = 0.25\nselect = \"{select}\"\n\
         arrange = \"{arrange}\"\n{extra}\n"
    )
}

#[test]
fn selectors_take_each_camera_once_in_file_order() {
    let names = ids(6);
    let mut on_stage = cameras(&names);
    on_stage[4].role = Some("host");
    on_stage[1].role = Some("host");
    on_stage[5].pinned = true;
    on_stage.push(OnStage::screenshare("p03", 6, Some((1920, 1080))));
    let scene = Scene { on_stage, active_speaker: Some("p04") };
    let layout = custom(
        &[
            region("ids", 0.0, "id", "row", "ids = [\"p03\", \"nobody\", \"p02\"]"),
            region("hosts", 0.25, "role", "row", "role = \"host\""),
            region("speaker", 0.5, "active_speaker", "single", ""),
            region("rest", 0.75, "others", "row", ""),
        ]
        .concat(),
    );
    let selection = layout.select(&scene, 1920, 1080);
    let named: Vec<Vec<&str>> = selection
        .regions
        .iter()
        .map(|(_, members)| members.iter().map(|&i| scene.on_stage[i].participant_id).collect())
        .collect();
    // p04 is a host, taken by `hosts` before `speaker`: the speaker region shows the first free camera.
    assert_eq!(named, [vec!["p03", "p02"], vec!["p01", "p04"], vec!["p00"], vec!["p05"]]);
    assert!(selection.placed().all(|i| !scene.on_stage[i].screenshare), "others takes no share");

    let pinned_and_all =
        custom(&[region("pinned", 0.0, "pinned", "row", ""), region("all", 0.25, "all", "grid", "")].concat());
    let tiles = pinned_and_all.arrange(&scene, 1920, 1080);
    let shown = who(&tiles, &scene);
    assert_eq!(shown[0], ("p05", false));
    assert_eq!(
        shown[1..],
        [("p00", false), ("p01", false), ("p02", false), ("p03", false), ("p04", false), ("p03", true)]
    );
}

#[test]
fn single_and_max_participants_leave_the_rest_to_later_regions() {
    let names = ids(5);
    let scene = Scene { on_stage: cameras(&names), active_speaker: None };
    let layout = custom(
        &[
            region("one", 0.0, "all", "single", ""),
            region("two", 0.25, "all", "row", "max_participants = 2"),
            region("rest", 0.5, "others", "column", ""),
        ]
        .concat(),
    );
    let selection = layout.select(&scene, 1920, 1080);
    let counts: Vec<usize> = selection.regions.iter().map(|(_, m)| m.len()).collect();
    assert_eq!(counts, [1, 2, 2]);
}

#[test]
fn regions_apply_to_their_orientation_only_and_z_orders_the_drawing() {
    let names = ids(2);
    let scene = Scene { on_stage: cameras(&names), active_speaker: None };
    let layout = custom(
        &[
            region("top", 0.0, "all", "single", "z = 5"),
            region("wide", 0.5, "all", "single", "orientation = \"landscape\""),
            region("tall", 0.5, "all", "single", "orientation = \"portrait\"\nz = -1"),
        ]
        .concat(),
    );
    let landscape = layout.arrange(&scene, 1920, 1080);
    assert_eq!(landscape.iter().map(|t| t.z).collect::<Vec<_>>(), [0, 5]);
    assert_eq!(who(&landscape, &scene), [("p01", false), ("p00", false)]);
    let portrait = layout.arrange(&scene, 1080, 1920);
    assert_eq!(portrait.iter().map(|t| t.z).collect::<Vec<_>>(), [-1, 5]);
}

#[test]
fn a_hidden_empty_region_draws_nothing_and_a_fallback_replaces_the_layout() {
    let names = ids(2);
    let scene = Scene { on_stage: cameras(&names), active_speaker: None };
    let hide =
        custom(&[region("shares", 0.0, "screenshare", "single", ""), region("rest", 0.5, "all", "row", "")].concat());
    let selection = hide.select(&scene, 1920, 1080);
    assert_eq!(selection.layout.name, "custom");
    assert_eq!(selection.regions.iter().map(|(_, m)| m.len()).collect::<Vec<_>>(), [0, 2]);
    let fall = custom(&region("shares", 0.0, "screenshare", "single", "when_empty = \"fallback\"\nfallback = \"pip\""));
    assert_eq!(fall.select(&scene, 1920, 1080).layout.name, "pip");
    assert_eq!(fall.arrange(&scene, 1920, 1080), builtin("pip").arrange(&scene, 1920, 1080));
}
