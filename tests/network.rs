//! A faithful call clock under real network conditions: synthetic calls with mutes, rejoins,
//! early leavers, loss, reordering, duplicates, RTX / RED / FEC, SSRC changes, timestamp
//! jumps, DTX, rotation, mid-GOP starts and bad RTCP fields, rendered and measured: every
//! flash and beep at its scheduled call time, gaps where the schedule has them, and the
//! manifest reporting what happened.

mod support;

use std::path::PathBuf;

use support::*;
use tessera::ingest::sdp::Codec;
use tessera::layout::{Layout, RectF, TileContent};
use tessera::synth::plan::{BEEP_HZ, RtcpMode};
use tessera::synth::{NetworkSpec, SynthAction, SynthEvent, SynthParticipant, SynthPlan, SynthSpec, synth};

const FPS: f64 = 30.0;
const FRAME_MS: f64 = 1000.0 / FPS;
const SIZE: (u32, u32) = (640, 360);
const PLACEHOLDER: [u8; 3] = [0x2a, 0x2f, 0x36];
/// Beeps must be heard this close to their scheduled call time.
const BEEP_TOLERANCE_MS: f64 = 20.0;

struct Rendered {
    plan: SynthPlan,
    mp4: PathBuf,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

fn spec(participants: usize, duration_ms: u64) -> SynthSpec {
    SynthSpec {
        participants,
        duration_ms,
        width: 320,
        height: 180,
        video_codecs: vec![Codec::Vp8, Codec::H264, Codec::Vp9],
        ..SynthSpec::default()
    }
}

fn event(participant: &str, action: SynthAction) -> SynthEvent {
    SynthEvent { participant: participant.to_owned(), action }
}

fn run(spec: &SynthSpec) -> Rendered {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    let out = dir.path().join("out");
    synth(spec, &input).expect("synth");
    let mp4 = render_ok(&input, &out, &["--size", "640x360"]);
    Rendered { plan: SynthPlan::new(spec), mp4, out, _dir: dir }
}

/// The sessions on screen at `t_ms`, in the layout's order (by when they appeared), as
/// (participant, session index).
fn on_screen(plan: &SynthPlan, t_ms: f64) -> Vec<(&SynthParticipant, usize)> {
    let mut sessions: Vec<(u64, &SynthParticipant, usize)> = Vec::new();
    for p in &plan.participants {
        for (k, s) in p.sessions.iter().enumerate() {
            if t_ms >= s.join_ms as f64 && t_ms < s.leave_ms as f64 {
                sessions.push((s.join_ms, p, k));
            }
        }
    }
    sessions.sort_by(|a, b| (a.0, &a.1.participant_id).cmp(&(b.0, &b.1.participant_id)));
    sessions.into_iter().map(|(_, p, k)| (p, k)).collect()
}

fn cells(count: usize) -> Vec<RectF> {
    let layout = Layout::builtin("grid").expect("grid layout");
    layout.place(&vec![Some((320, 180)); count], SIZE.0, SIZE.1).into_iter().map(|t| t.cell).collect()
}

/// The centre of `participant`'s tile at `t_ms`, in the quarter-size decoded frames.
fn tile_cell(plan: &SynthPlan, participant: &str, t_ms: f64) -> Option<RectF> {
    let screen = on_screen(plan, t_ms);
    let index = screen.iter().position(|(p, _)| p.participant_id == participant)?;
    Some(cells(screen.len())[index])
}

/// `participant`'s picture at `t_ms` once the layout has settled (the video rect in its cell).
fn tile_picture(plan: &SynthPlan, participant: &str, t_ms: f64) -> Option<RectF> {
    let screen = on_screen(plan, t_ms);
    let index = screen.iter().position(|(p, _)| p.participant_id == participant)?;
    let layout = Layout::builtin("grid").expect("grid layout");
    let tile = layout.place(&vec![Some((320, 180)); screen.len()], SIZE.0, SIZE.1).into_iter().nth(index)?;
    match tile.content {
        TileContent::Video { rect, .. } => Some(rect),
        TileContent::Placeholder(_) => Some(tile.cell),
    }
}

fn intersection(a: &RectF, b: &RectF) -> Option<RectF> {
    let (x0, y0) = (a.x.max(b.x), a.y.max(b.y));
    let (x1, y1) = ((a.x + a.width).min(b.x + b.width), (a.y + a.height).min(b.y + b.height));
    (x1 > x0 && y1 > y0).then_some(RectF { x: x0, y: y0, width: x1 - x0, height: y1 - y0 })
}

/// A point of `participant`'s picture around `t_ms`, in the quarter-size decoded frames: the
/// centre of the picture where it was 400 ms before and where it is 400 ms after, so the
/// point stays on the picture while the tile eases from one place to the other when someone
/// joins or leaves.
fn tile_centre(plan: &SynthPlan, participant: &str, t_ms: f64) -> Option<(usize, usize)> {
    let after = tile_picture(plan, participant, t_ms + 400.0).or_else(|| tile_picture(plan, participant, t_ms))?;
    let steady = match tile_picture(plan, participant, t_ms - 400.0) {
        Some(before) => intersection(&before, &after).unwrap_or(after),
        None => after,
    };
    let (x, y) = steady.center();
    Some(((x / 4.0) as usize, (y / 4.0) as usize))
}

/// A point of a placeholder's fill: left of the centre, clear of the avatar drawn there.
fn beside_avatar(cell: &RectF) -> (usize, usize) {
    let (x, y) = cell.center();
    (((x - 0.3 * cell.width) / 4.0) as usize, (y / 4.0) as usize)
}

fn frame_at(t_ms: f64) -> usize {
    (t_ms / FRAME_MS).round() as usize
}

fn close(got: [f64; 3], want: [u8; 3]) -> bool {
    (0..3).all(|c| (got[c] - f64::from(want[c])).abs() <= 18.0)
}

/// Every flash shows within a frame of its time and every beep is heard within 20 ms.
fn assert_in_sync(r: &Rendered, frames: &Frames, samples: &[f32]) {
    assert_flashes(r, frames);
    assert_beeps(r, samples);
}

/// Runs `check` on every scheduled flash (participant, call ms); at least three must exist.
fn each_flash(r: &Rendered, mut check: impl FnMut(&SynthParticipant, u64)) {
    let flashes: Vec<(&SynthParticipant, u64)> =
        r.plan.participants.iter().flat_map(|p| p.flashes_ms.iter().map(move |f| (p, *f))).collect();
    assert!(flashes.len() >= 3, "only {} flashes scheduled", flashes.len());
    for (p, flash_ms) in flashes {
        check(p, flash_ms);
    }
}

fn assert_flashes(r: &Rendered, frames: &Frames) {
    each_flash(r, |p, flash_ms| {
        let at = tile_centre(&r.plan, &p.participant_id, flash_ms as f64).expect("on screen at its flash");
        let onset = (frame_at(flash_ms as f64 - 300.0)..frame_at(flash_ms as f64 + 300.0))
            .find(|&i| frames.mean_rgb(i, at.0, at.1, 2).iter().all(|c| *c > 225.0))
            .unwrap_or_else(|| panic!("{}: no flash near {flash_ms} ms", p.participant_id));
        let onset_ms = onset as f64 * FRAME_MS;
        // The first output frame at or after the sender's frame showing it (the clock
        // estimate may be a few ms off the synthetic truth).
        let taken_ms = p.flash_frame_ms(flash_ms, r.plan.spec.fps);
        assert!(
            onset_ms >= taken_ms - 3.0 && onset_ms < taken_ms + FRAME_MS + 3.0,
            "{}: flash {flash_ms} taken at {taken_ms:.1} ms shows at {onset_ms:.1} ms",
            p.participant_id
        );
    });
}

fn assert_beeps(r: &Rendered, samples: &[f32]) {
    each_flash(r, |p, flash_ms| {
        let heard = beep_onset_ms(samples, BEEP_HZ, flash_ms as f64 - 240.0, flash_ms as f64 + 240.0)
            .unwrap_or_else(|| panic!("{}: no beep near {flash_ms} ms", p.participant_id));
        assert!(
            (heard - flash_ms as f64).abs() <= BEEP_TOLERANCE_MS,
            "{}: beep {flash_ms} heard at {heard:.1}",
            p.participant_id
        );
    });
}

fn assert_length(r: &Rendered, samples: &[f32]) {
    let duration_ms = r.plan.spec.duration_ms as f64;
    let audio_ms = samples.len() as f64 / 48.0;
    assert!((audio_ms - duration_ms).abs() <= 2.0 * FRAME_MS, "audio is {audio_ms} ms for a {duration_ms} ms call");
}

fn sum(tracks: &[&serde_json::Value], field: &str) -> f64 {
    tracks
        .iter()
        .flat_map(|t| t["segments"].as_array().expect("segments").iter())
        .map(|s| s[field].as_f64().unwrap_or(0.0))
        .sum()
}

#[test]
fn mutes_rejoins_and_early_leavers_appear_when_they_should() {
    let mut s = spec(3, 8000);
    s.events = vec![
        event("alice", SynthAction::MuteVideo { from_ms: 2000, to_ms: 3500 }),
        event("alice", SynthAction::MuteAudio { from_ms: 2000, to_ms: 3500 }),
        event("bob", SynthAction::Rejoin { leave_ms: 3000, rejoin_ms: 5000 }),
        event("carol", SynthAction::Leave { at_ms: 6500 }),
    ];
    let r = run(&s);
    let frames = Frames::decode(&r.mp4, 160, 90);
    let samples = decode_audio(&r.mp4);
    assert_length(&r, &samples);
    assert_in_sync(&r, &frames, &samples);
    let [alice, bob, carol] = [&r.plan.participants[0], &r.plan.participants[1], &r.plan.participants[2]];

    // Alice's camera off: her placeholder, in her cell; her microphone off: no tone.
    let at = beside_avatar(&tile_cell(&r.plan, "alice", 2700.0).expect("alice on screen"));
    assert!(close(frames.mean_rgb(frame_at(2700.0), at.0, at.1, 2), PLACEHOLDER), "alice muted shows her placeholder");
    let at = tile_centre(&r.plan, "alice", 3900.0).expect("alice on screen");
    assert!(close(frames.mean_rgb(frame_at(3900.0), at.0, at.1, 2), alice.rgb), "alice back at 3.9 s");
    assert!(tone_at(&samples, alice.tone_hz, 2200.0, 1200.0) < 0.004, "alice's microphone is off");
    assert!(tone_at(&samples, alice.tone_hz, 3700.0, 200.0) > 0.03, "alice's microphone is back");

    // Bob away from 3 s to 5 s: two tiles, no bob tone; back as a new session after.
    assert_eq!(on_screen(&r.plan, 4000.0).len(), 2);
    let two = cells(2);
    for (cell, p) in two.iter().zip([alice, carol]) {
        let (x, y) = cell.center();
        assert!(close(frames.mean_rgb(frame_at(4000.0), (x / 4.0) as usize, (y / 4.0) as usize, 2), p.rgb));
    }
    assert!(tone_at(&samples, bob.tone_hz, 3200.0, 1600.0) < 0.004, "bob is away");
    let at = tile_centre(&r.plan, "bob", 5300.0).expect("bob is back");
    assert!(close(frames.mean_rgb(frame_at(5300.0), at.0, at.1, 2), bob.rgb), "bob's new session shows");
    // Carol gone after 6.5 s.
    assert_eq!(on_screen(&r.plan, 7000.0).len(), 2);
    assert!(tone_at(&samples, carol.tone_hz, 6700.0, 1000.0) < 0.004, "carol left");

    // The manifest: alice's video gap, bob's two sessions.
    let manifest = manifest(&r.out);
    let video = tracks(&manifest, "alice", "video");
    let gap = &video[0]["gaps"][0];
    assert!((gap["from_ms"].as_f64().expect("from") - 2000.0).abs() < 60.0, "{gap}");
    assert!((gap["to_ms"].as_f64().expect("to") - 3500.0).abs() < 60.0, "{gap}");
    let bob_sessions = manifest["participants"]
        .as_array()
        .expect("participants")
        .iter()
        .filter(|p| p["participant_id"] == "bob")
        .count();
    assert_eq!(bob_sessions, 2);
}

#[test]
fn lost_audio_is_concealed_and_keeps_its_length() {
    let mut s = spec(2, 8000);
    s.network = NetworkSpec { loss_pct: 8.0, burst_max_packets: 2, ..NetworkSpec::default() };
    let r = run(&s);
    let samples = decode_audio(&r.mp4);
    assert_length(&r, &samples);
    // (Flashes may be lost with the video packets: the picture then waits for a keyframe.)
    assert_beeps(&r, &samples);
    // No holes: every 10 ms of each participant's talk carries its tone.
    for p in &r.plan.participants {
        let from = p.audio_start_ms as f64 + 200.0;
        let windows: Vec<f64> = (0..((7600.0 - from) / 10.0) as usize)
            .map(|k| tone_at(&samples, p.tone_hz, from + k as f64 * 10.0, 10.0))
            .collect();
        let holes = windows.iter().filter(|a| **a < 0.25 * 0.08).count();
        // 8 % of packets are lost: left silent that would be about 8 % of the windows.
        assert!(holes * 100 <= windows.len() * 3, "{}: {holes} of {} windows silent", p.participant_id, windows.len());
    }
    let manifest = manifest(&r.out);
    let audio = tracks(&manifest, "alice", "audio");
    assert!(audio[0]["packets_lost_pct"].as_f64().expect("pct") > 3.0, "{}", audio[0]);
    assert!(audio[0]["concealed_ms"].as_f64().expect("ms") >= 100.0, "{}", audio[0]);
}

#[test]
fn rtx_red_fec_reordering_and_duplicates_are_undone() {
    let mut s = spec(2, 6000);
    s.network = NetworkSpec {
        loss_pct: 5.0,
        burst_max_packets: 1,
        reorder_pct: 10.0,
        reorder_depth_packets: 40,
        duplicate_pct: 3.0,
        rtx_recover_pct: Some(100.0),
        red: true,
        fec: true,
        ..NetworkSpec::default()
    };
    let r = run(&s);
    let frames = Frames::decode(&r.mp4, 160, 90);
    let samples = decode_audio(&r.mp4);
    assert_length(&r, &samples);
    assert_in_sync(&r, &frames, &samples);
    let manifest = manifest(&r.out);
    for p in &r.plan.participants {
        for kind in ["audio", "video"] {
            let t = tracks(&manifest, &p.participant_id, kind);
            assert_eq!(sum(&t, "packets_lost"), 0.0, "{} {kind}: every loss recovered: {}", p.participant_id, t[0]);
            assert!(sum(&t, "packets_recovered") > 0.0, "{} {kind}: {}", p.participant_id, t[0]);
            assert!(sum(&t, "duplicates_or_late") > 0.0, "{} {kind}: {}", p.participant_id, t[0]);
        }
        let video = tracks(&manifest, &p.participant_id, "video");
        assert!(sum(&video, "skipped_packets") > 0.0, "FEC packets passed over");
        assert_eq!(sum(&video, "freezes"), 0.0, "nothing lost, nothing frozen");
    }
}

#[test]
fn ssrc_changes_and_timestamp_jumps_stay_on_the_call_clock() {
    let mut s = spec(2, 8000);
    s.network =
        NetworkSpec { ssrc_change_at_ms: Some(3000), timestamp_jump_at_ms: Some(5500), ..NetworkSpec::default() };
    let r = run(&s);
    let frames = Frames::decode(&r.mp4, 160, 90);
    let samples = decode_audio(&r.mp4);
    assert_length(&r, &samples);
    assert_in_sync(&r, &frames, &samples);
    let manifest = manifest(&r.out);
    for kind in ["audio", "video"] {
        let t = tracks(&manifest, "alice", kind);
        assert_eq!(sum(&t, "ssrc_changes"), 1.0, "{kind}: {}", t[0]);
        assert_eq!(sum(&t, "timestamp_discontinuities"), 1.0, "{kind}: {}", t[0]);
    }
}

/// The dark runs (start, length) along a row: a clean picture has exactly the one moving bar.
fn dark_runs(frames: &Frames, index: usize, y: usize, x0: usize, x1: usize) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for x in x0..x1 {
        let [r, g, b] = frames.mean_rgb(index, x, y, 0);
        if r + g + b < 120.0 {
            current = Some(current.map_or((x, 1), |(s, l)| (s, l + 1)));
        } else if let Some(run) = current.take() {
            runs.push(run);
        }
    }
    runs.extend(current);
    // Coding ringing at the bar's edges: join runs a pixel apart, drop single dark pixels.
    let mut joined: Vec<(usize, usize)> = Vec::new();
    for (start, len) in runs {
        match joined.last_mut() {
            Some((s, l)) if start <= *s + *l + 2 => *l = start + len - *s,
            _ => joined.push((start, len)),
        }
    }
    joined.retain(|(_, len)| *len > 2);
    joined
}

#[test]
fn lost_video_freezes_on_the_last_good_frame_instead_of_corrupting() {
    let mut s = spec(2, 8000);
    s.video_codecs = vec![Codec::Vp8, Codec::H264];
    s.network = NetworkSpec { loss_pct: 3.0, burst_max_packets: 2, ..NetworkSpec::default() };
    let r = run(&s);
    let frames = Frames::decode(&r.mp4, 640, 360);
    let manifest = manifest(&r.out);
    let two = cells(2);
    for (p, cell) in r.plan.participants.iter().zip(&two) {
        let video = tracks(&manifest, &p.participant_id, "video");
        assert!(sum(&video, "packets_lost") > 0.0 && sum(&video, "freezes") > 0.0, "{}", video[0]);
        // The picture is 320x180 scaled into the cell: the bar row is 1/8 down the picture.
        let (x0, x1) = ((cell.x + 2.0) as usize, (cell.x + cell.width - 2.0) as usize);
        let picture_h = cell.width * 180.0 / 320.0;
        let y = (cell.y + (cell.height - picture_h) / 2.0 + picture_h / 8.0) as usize;
        let bar = f64::from(cell.width) / 10.0;
        for index in frame_at(p.video_start_ms as f64 + 200.0)..frames.count() {
            let runs = dark_runs(&frames, index, y, x0, x1);
            // One bar, whole, or cut short by the picture's right edge.
            let clean = match runs.as_slice() {
                [(start, len)] => {
                    (*len as f64 - bar).abs() <= bar * 0.35 || start + len + 3 >= x1 && (*len as f64) < bar * 1.35
                }
                _ => false,
            };
            assert!(
                clean,
                "{}: frame {index} has dark runs {runs:?}, expected one bar of {bar:.0} px",
                p.participant_id
            );
        }
    }
}

#[test]
fn dtx_silences_keep_their_length() {
    let mut s = spec(2, 10_000);
    s.dtx = true;
    let r = run(&s);
    let frames = Frames::decode(&r.mp4, 160, 90);
    let samples = decode_audio(&r.mp4);
    assert_length(&r, &samples);
    assert_in_sync(&r, &frames, &samples);
    let manifest = manifest(&r.out);
    let audio = tracks(&manifest, "alice", "audio");
    let packets = sum(&audio, "packets");
    // 10 s of 20 ms packets is 500; DTX sends one packet per 400 ms once a silence settles.
    assert!(packets < 400.0, "DTX sends few packets in silence: {packets} for 10 s");
    assert_eq!(sum(&audio, "packets_lost"), 0.0, "DTX is not loss");
}

#[test]
fn bad_rtcp_fields_fall_back_and_are_reported() {
    for (mode, note) in [
        (RtcpMode::Absent, "absent or 0"),
        (RtcpMode::Zero, "absent or 0"),
        (RtcpMode::Inconsistent, "inconsistent"),
        (RtcpMode::NtpEpoch, "NTP epoch"),
    ] {
        let mut s = spec(2, 4000);
        s.rtcp = mode;
        let r = run(&s);
        let frames = Frames::decode(&r.mp4, 160, 90);
        let samples = decode_audio(&r.mp4);
        assert_in_sync(&r, &frames, &samples);
        let manifest = manifest(&r.out);
        let segment = &tracks(&manifest, "bob", "audio")[0]["segments"][0];
        let notes = segment["notes"].to_string();
        assert!(notes.contains(note), "{mode:?}: notes {notes}");
    }
}

#[test]
fn a_phone_turned_to_portrait_keeps_its_shape() {
    let mut s = spec(2, 5000);
    s.events = vec![event("bob", SynthAction::Rotate { at_ms: 2500 })];
    let r = run(&s);
    let frames = Frames::decode(&r.mp4, 640, 360);
    let bob = &r.plan.participants[1];
    let cell = &cells(2)[1];
    let (cx, cy) = cell.center();
    let (cx, cy) = (cx as usize, cy as usize);
    let edge = (cell.x + cell.width * 0.1) as usize;
    // Landscape: bob fills the cell's width; portrait: a centred column, bars at the sides.
    assert!(close(frames.mean_rgb(frame_at(1700.0), edge, cy, 2), bob.rgb), "landscape before");
    assert!(close(frames.mean_rgb(frame_at(3300.0), cx, cy, 2), bob.rgb), "portrait centre");
    let side = frames.mean_rgb(frame_at(3300.0), edge, cy, 2);
    assert!(!close(side, bob.rgb), "portrait leaves the sides of the cell empty: {side:?}");
    // Portrait height fills the cell: the column reaches near the top and bottom.
    let near_top = (cell.y + cell.height * 0.35) as usize;
    assert!(close(frames.mean_rgb(frame_at(3300.0), cx, near_top, 1), bob.rgb), "portrait height fills the cell");
}

#[test]
fn a_recorder_that_joined_mid_gop_shows_each_flash_when_it_was_captured() {
    let mut s = spec(3, 9000);
    s.start_mid_gop = true;
    s.video_codecs = vec![Codec::H264, Codec::Vp8, Codec::Vp9];
    let r = run(&s);
    let frames = Frames::decode(&r.mp4, 160, 90);
    let samples = decode_audio(&r.mp4);
    assert_in_sync(&r, &frames, &samples);
}

#[test]
fn a_segment_starting_mid_gop_waits_for_its_first_keyframe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("call");
    // Through the command line: the options a user would type.
    synth_cli(
        &input,
        &["--participants", "2", "--duration-s", "5", "--size", "320x180", "--codecs", "h264,vp8", "--start-mid-gop"],
    );
    let out = dir.path().join("out");
    let mp4 = render_ok(&input, &out, &["--size", "640x360"]);
    let frames = Frames::decode(&mp4, 160, 90);
    let plan = SynthPlan::new(&SynthSpec {
        participants: 2,
        duration_ms: 5000,
        width: 320,
        height: 180,
        video_codecs: vec![Codec::H264, Codec::Vp8],
        start_mid_gop: true,
        ..SynthSpec::default()
    });
    for (p, cell) in plan.participants.iter().zip(&cells(2)) {
        let (x, y) = cell.center();
        let at = ((x / 4.0) as usize, (y / 4.0) as usize);
        let fill = beside_avatar(cell);
        assert!(
            close(frames.mean_rgb(frame_at(800.0), fill.0, fill.1, 2), PLACEHOLDER),
            "{}: placeholder before the keyframe",
            p.participant_id
        );
        assert!(
            close(frames.mean_rgb(frame_at(1800.0), at.0, at.1, 2), p.rgb),
            "{}: picture after the keyframe",
            p.participant_id
        );
    }
    let manifest = manifest(&out);
    let video = tracks(&manifest, "alice", "video");
    let offset = video[0]["segments"][0]["first_keyframe_offset_ms"].as_f64().expect("offset");
    assert!((offset - 1500.0).abs() <= 40.0, "first keyframe {offset} ms in");
}
