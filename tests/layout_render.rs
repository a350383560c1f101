//! End to end with layouts: synthetic calls rendered by `tessera raw composite --layout ...`,
//! decoded with ffmpeg: a screenshare takes the large region from its first frame to its last
//! and the layout falls back when it ends; with every built-in layout each flash and beep is
//! still at its call time; the active speaker takes the stage in turns, and a cough or a brief
//! interjection does not.

mod support;

use support::*;
use tessera::layout::{Layout, OnStage, RectF, Scene, Tile};
use tessera::synth::plan::BEEP_HZ;
use tessera::synth::{SynthParticipant, SynthPlan, SynthSpec, synth};

const FPS: f64 = 30.0;
const FRAME_MS: f64 = 1000.0 / FPS;
const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;
/// Frames are decoded at this fraction of the canvas.
const SCALE: f64 = 2.0;

fn frame_at(t_ms: f64) -> usize {
    (t_ms / FRAME_MS).round() as usize
}

fn at(cell: &RectF) -> (usize, usize) {
    let (x, y) = cell.center();
    ((f64::from(x) / SCALE) as usize, (f64::from(y) / SCALE) as usize)
}

fn near(got: [f64; 3], expected: [u8; 3], tolerance: f64) -> bool {
    got.iter().zip(expected).all(|(g, e)| (g - f64::from(e)).abs() <= tolerance)
}

fn white(got: [f64; 3]) -> bool {
    got.iter().all(|c| *c > 200.0)
}

fn decode(mp4: &std::path::Path) -> Frames {
    Frames::decode(mp4, (f64::from(WIDTH) / SCALE) as usize, (f64::from(HEIGHT) / SCALE) as usize)
}

/// The tiles `layout` gives `ids` (cameras, in join order) and a screenshare of `sharer`.
fn tiles(layout: &str, ids: &[&str], sharer: Option<&str>) -> Vec<(String, bool, RectF)> {
    let mut on_stage: Vec<OnStage<'_>> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| OnStage {
            participant_id: id,
            display_name: id,
            screenshare: false,
            picture: Some((160, 90)),
            speaking_level: 0.0,
            join_order: i,
            role: None,
            pinned: false,
            speaking: false,
        })
        .collect();
    if let Some(sharer) = sharer {
        let join_order = ids.iter().position(|id| *id == sharer).unwrap_or(0);
        on_stage.push(OnStage {
            screenshare: true,
            participant_id: sharer,
            display_name: sharer,
            join_order,
            ..on_stage[0].clone()
        });
    }
    let scene = Scene { on_stage, active_speaker: None };
    let placed: Vec<Tile> = Layout::builtin(layout).expect("built-in").arrange(&scene, WIDTH, HEIGHT);
    placed
        .into_iter()
        .map(|t| {
            let p = &scene.on_stage[t.participant_index];
            (p.participant_id.to_owned(), p.screenshare, t.cell)
        })
        .collect()
}

fn area(cell: &RectF) -> f32 {
    cell.width * cell.height
}

#[test]
fn a_screenshare_is_the_largest_region_from_its_first_frame_to_its_last_and_the_grid_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    synth_cli(
        &input,
        &["--participants", "3", "--duration-s", "7", "--size", "320x180", "--event", "carol:screenshare:2000-4500"],
    );
    let out = dir.path().join("out");
    let size = format!("{WIDTH}x{HEIGHT}");
    let mp4 = render_ok(&input, &out, &["--layout", "screenshare", "--size", &size]);
    let frames = decode(&mp4);
    let plan = SynthPlan::new(&SynthSpec { participants: 3, ..SynthSpec::default() });
    let share_rgb = plan.participants[2].screenshare.rgb;

    let shared = tiles("screenshare", &["alice", "bob", "carol"], Some("carol"));
    let (_, _, share_cell) = shared.iter().find(|(_, share, _)| *share).expect("the share is placed").clone();
    assert!(
        shared.iter().all(|(_, share, cell)| *share || area(cell) < area(&share_cell)),
        "the share's region is the largest: {shared:?}"
    );
    let point = at(&share_cell);
    let showing = |i: usize| {
        let got = frames.mean_rgb(i, point.0, point.1, 2);
        near(got, share_rgb, 24.0) || white(got)
    };
    let first = (frame_at(1500.0)..frame_at(3000.0)).find(|&i| showing(i)).expect("the share shows");
    let first_ms = first as f64 * FRAME_MS;
    eprintln!("the share is large from {first_ms:.1} ms");
    assert!(
        (first_ms - 2000.0).abs() <= 2.0 * FRAME_MS,
        "the share's first picture is at 2000 ms, shown at {first_ms:.1}"
    );
    let last = frame_at(4500.0) - 1;
    for i in first..last {
        assert!(showing(i), "frame {i} ({:.1} ms): the share is not in the large region", i as f64 * FRAME_MS);
    }
    // Once the share ends (and the tiles have moved), the layout is the grid of three cameras.
    let grid = tiles("grid", &["alice", "bob", "carol"], None);
    for (id, _, cell) in &grid {
        let rgb = plan.participants.iter().find(|p| &p.participant_id == id).expect("participant").rgb;
        for t_ms in [1000.0, 5500.0] {
            let got = frames.mean_rgb(frame_at(t_ms), at(cell).0, at(cell).1, 2);
            assert!(near(got, rgb, 24.0) || white(got), "{id} at {t_ms} ms: {got:?}, expected {rgb:?} (grid)");
        }
    }
}

/// Where `p` is on screen in frame `index`: the point of its colour nearest the middle of all
/// the points of its colour on a coarse grid of the frame (its tile's centre, clear of the
/// moving bar at the top of its picture and of the label at the bottom).
fn find(frames: &Frames, index: usize, p: &SynthParticipant) -> Option<(usize, usize)> {
    let step = 4;
    let matches: Vec<(usize, usize)> = (step..frames.height - step)
        .step_by(step)
        .flat_map(|y| (step..frames.width - step).step_by(step).map(move |x| (x, y)))
        .filter(|&(x, y)| near(frames.mean_rgb(index, x, y, 1), p.rgb, 16.0))
        .collect();
    if matches.len() < 4 {
        return None;
    }
    let n = matches.len() as f64;
    let mean_x = matches.iter().map(|m| m.0 as f64).sum::<f64>() / n;
    let mean_y = matches.iter().map(|m| m.1 as f64).sum::<f64>() / n;
    let distance = |m: &(usize, usize)| (m.0 as f64 - mean_x).powi(2) + (m.1 as f64 - mean_y).powi(2);
    matches.into_iter().min_by(|a, b| distance(a).total_cmp(&distance(b)))
}

#[test]
fn with_every_built_in_layout_each_flash_and_beep_is_at_its_call_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = SynthSpec { participants: 3, duration_ms: 6000, width: 320, height: 180, ..SynthSpec::default() };
    let plan = SynthPlan::new(&spec);
    let input = dir.path().join("call");
    synth(&spec, &input).expect("synth");
    let size = format!("{WIDTH}x{HEIGHT}");
    for layout in Layout::builtin_names() {
        let out = dir.path().join(format!("out-{layout}"));
        let mp4 = render_ok(&input, &out, &["--layout", layout, "--size", &size]);
        let frames = decode(&mp4);
        let mut flashes = 0;
        for p in &plan.participants {
            for &flash_ms in &p.flashes_ms {
                // Where the participant is just before the flash.
                let Some(point) = find(&frames, frame_at(flash_ms as f64 - 150.0), p) else { continue };
                flashes += assert_flashes_on_time(&frames, &p.participant_id, &[flash_ms], point, FRAME_MS);
            }
        }
        let samples = decode_audio(&mp4);
        for p in &plan.participants {
            assert_beeps_on_time(&samples, BEEP_HZ, &p.participant_id, &p.flashes_ms, FRAME_MS);
        }
        eprintln!("{layout}: {flashes} flashes on time, every beep on time");
        if *layout == "audio-only" {
            assert_eq!(flashes, 0, "audio-only shows no video");
        } else {
            assert!(flashes >= 2, "{layout}: only {flashes} flashes could be checked");
        }
    }
}

/// Who is on the speaker layout's stage at each decoded frame: the participant whose colour
/// fills the stage's centre, if any.
fn on_the_stage(frames: &Frames, plan: &SynthPlan, stage: (usize, usize), index: usize) -> Option<String> {
    let got = frames.mean_rgb(index, stage.0, stage.1, 2);
    plan.participants.iter().find(|p| near(got, p.rgb, 24.0)).map(|p| p.participant_id.clone())
}

#[test]
fn the_speaker_takes_the_stage_in_turns_but_not_on_a_cough_or_a_brief_interjection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = SynthPlan::new(&SynthSpec { participants: 4, ..SynthSpec::default() });
    // The stage: where the speaker layout puts the active speaker.
    let ids = ["alice", "bob", "carol", "dave"];
    let on_stage: Vec<OnStage<'_>> =
        ids.iter().enumerate().map(|(i, id)| OnStage::camera(id, i, Some((320, 180)))).collect();
    let scene = Scene { on_stage, active_speaker: Some("bob") };
    let placed = Layout::builtin("speaker").expect("speaker").arrange(&scene, WIDTH, HEIGHT);
    let stage_cell = placed.iter().find(|t| t.participant_index == 1).expect("bob placed").cell;
    assert!(placed.iter().all(|t| t.participant_index == 1 || area(&t.cell) < area(&stage_cell)));
    let stage = at(&stage_cell);

    for (variant, extra) in [("decoded audio", None), ("RFC 6464 levels", Some("--audio-level-ext"))] {
        let input = dir.path().join(format!("call-{}", extra.is_some()));
        let mut args = vec!["--participants", "4", "--duration-s", "10", "--size", "320x180"];
        // Turns: alice, bob, carol; alice breaks into bob's turn for 400 ms; dave coughs in carol's.
        args.extend(["--talk", "alice:0-3000", "--talk", "bob:3000-6000", "--talk", "carol:6000-10000"]);
        args.extend(["--talk", "alice:4500-4900", "--event", "dave:cough:7500"]);
        args.extend(extra);
        synth_cli(&input, &args);
        let out = dir.path().join(format!("out-{}", extra.is_some()));
        let size = format!("{WIDTH}x{HEIGHT}");
        let mp4 = render_ok(&input, &out, &["--layout", "speaker", "--size", &size]);
        let frames = decode(&mp4);
        // The one on the stage, or "flash" while the picture there flashes white.
        let who = |t_ms: f64| {
            let index = frame_at(t_ms);
            match white(frames.mean_rgb(index, stage.0, stage.1, 2)) {
                true => Some("flash".to_owned()),
                false => on_the_stage(&frames, &plan, stage, index),
            }
        };
        let shows = |id: &str, t_ms: f64| matches!(who(t_ms).as_deref(), Some(w) if w == id || w == "flash");
        let timeline: Vec<(usize, Option<String>)> =
            (0..frames.count()).step_by(3).map(|i| (i, on_the_stage(&frames, &plan, stage, i))).collect();
        eprintln!("{variant}: {timeline:?}");
        let takes_over = |id: &str, from_ms: f64| {
            (frame_at(from_ms)..frames.count())
                .find(|&i| on_the_stage(&frames, &plan, stage, i).as_deref() == Some(id))
                .map(|i| i as f64 * FRAME_MS)
        };
        for (id, turn_ms) in [("bob", 3000.0), ("carol", 6000.0)] {
            let at_ms = takes_over(id, turn_ms).unwrap_or_else(|| panic!("{variant}: {id} never takes the stage"));
            eprintln!("{variant}: {id} starts talking at {turn_ms} ms, on the stage at {at_ms:.0} ms");
            // Within about a second of sustained speech, and its move (300 ms) done.
            assert!(at_ms - turn_ms <= 1400.0, "{variant}: {id} took {:.0} ms to take the stage", at_ms - turn_ms);
        }
        for t_ms in (2000..3000).step_by(100) {
            assert!(
                shows("alice", f64::from(t_ms)),
                "{variant}: alice's turn at {t_ms} ms: {:?}",
                who(f64::from(t_ms))
            );
        }
        let bob_from = takes_over("bob", 3000.0).unwrap_or(4400.0) + 400.0;
        for t_ms in (bob_from as u32..6000).step_by(100) {
            assert!(
                shows("bob", f64::from(t_ms)),
                "{variant}: bob keeps the stage at {t_ms} ms: {:?}",
                who(f64::from(t_ms))
            );
        }
        // No empty frames while tiles move. Settled, about 74% of the frame is pictures; in the
        // middle of a swap the speaker leaving the stage and the one taking it are both
        // mid-size, and about 40% is.
        for index in 0..frames.count() {
            assert!(covered(&frames, index) > 0.33, "{variant}: frame {index} is mostly empty");
        }
        let carol_from = takes_over("carol", 6000.0).unwrap_or(7400.0) + 400.0;
        for t_ms in (carol_from as u32..9900).step_by(100) {
            assert!(
                shows("carol", f64::from(t_ms)),
                "{variant}: carol keeps the stage at {t_ms} ms: {:?}",
                who(f64::from(t_ms))
            );
        }
    }
}

/// Share of the frame's sampled pixels that are not the layouts' background (#101418).
fn covered(frames: &Frames, index: usize) -> f64 {
    let points: Vec<(usize, usize)> =
        (2..frames.height).step_by(4).flat_map(|y| (2..frames.width).step_by(4).map(move |x| (x, y))).collect();
    let background = points.iter().filter(|&&(x, y)| near(frames.mean_rgb(index, x, y, 0), [16, 20, 24], 10.0)).count();
    1.0 - background as f64 / points.len() as f64
}

#[test]
fn a_job_changes_layout_on_its_timeline_shows_its_names_and_renders_the_same_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    synth_cli(&input, &["--participants", "3", "--duration-s", "5", "--size", "320x180"]);
    let plan = SynthPlan::new(&SynthSpec { participants: 3, ..SynthSpec::default() });
    // Carol alone, full frame, from an inline layout; from 2.5 s the spotlight on the pinned bob.
    let inline = "name = \"carol-only\"\nbackground = \"#101418\"\n[[regions]]\nname = \"one\"\nx = 0.0\ny = 0.0\n\
                  width = 1.0\nheight = 1.0\nselect = \"id\"\nids = [\"carol\"]\narrange = \"single\"\nfit = \"cover\"\n";
    let mut outputs = Vec::new();
    for run in ["first", "second"] {
        let out = dir.path().join(run);
        let job = serde_json::json!({"spec": {
            "sources": [{"rawArchive": input.to_str().expect("utf-8")}],
            "layoutInline": inline,
            "layoutTimeline": [{"atMs": "2500", "layout": "spotlight"}],
            "participants": [{"id": "bob", "name": "Bob Dylan", "pinned": true}, {"id": "alice", "name": "Алиса"}],
            "video": {"width": WIDTH, "height": HEIGHT},
            "outputs": [{"kind": "composite"}],
            "storage": {"type": "local", "pathPrefix": out.to_str().expect("utf-8")}
        }});
        let path = dir.path().join(format!("{run}.json"));
        std::fs::write(&path, job.to_string()).expect("write job");
        let result = tessera(&["render", path.to_str().expect("utf-8")]);
        assert!(result.status.success(), "{}", text(&result));
        outputs.push(files_in(&out).into_iter().find(|f| f.extension().is_some_and(|e| e == "mp4")).expect("mp4"));
    }
    let frames = decode(&outputs[0]);
    let centre = ((f64::from(WIDTH) / SCALE / 2.0) as usize, (f64::from(HEIGHT) / SCALE / 2.0) as usize);
    let rgb = |id: &str| plan.participants.iter().find(|p| p.participant_id == id).expect("participant").rgb;
    for (t_ms, who) in [(500.0, "carol"), (2000.0, "carol"), (3000.0, "bob"), (4500.0, "bob")] {
        let got = frames.mean_rgb(frame_at(t_ms), centre.0, centre.1, 2);
        assert!(near(got, rgb(who), 24.0) || white(got), "{t_ms} ms: {who} expected, got {got:?}");
    }
    for index in 0..frames.count() {
        let share = covered(&frames, index);
        assert!(share > 0.5, "frame {index}: only {:.0}% of the picture is drawn", share * 100.0);
    }
    // The label carries the job's name: Bob's tile has white text pixels at its bottom left
    // (at full size: the spotlight's label is small at 360 lines).
    let full = Frames::decode_window(&outputs[0], WIDTH as usize, HEIGHT as usize, Some((4000.0, FRAME_MS)));
    let label_text = (full.height * 3 / 4..full.height)
        .flat_map(|y| (0..full.width / 2).map(move |x| (x, y)))
        .filter(|&(x, y)| white(full.mean_rgb(0, x, y, 0)))
        .count();
    assert!(label_text > 10, "the name label's text: {label_text} white pixels");
    // Same input, same output: the same pictures and the same sound.
    let again = decode(&outputs[1]);
    assert!(frames.data == again.data, "two renders of the same job show different pictures");
    assert!(decode_audio(&outputs[0]) == decode_audio(&outputs[1]), "two renders of the same job sound different");
}
