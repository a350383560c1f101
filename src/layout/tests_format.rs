//! Layout files: what parses, and errors that name the layout, the line and the field.

use super::*;

/// A valid layout; the tests change one line at a time.
const BASE: &str = r##"name = "t"
background = "#101418"

[tile]
label = true

[[regions]]
name = "a"
x = 0.0
y = 0.0
width = 1.0
height = 0.5
select = "all"
arrange = "grid"

[[regions]]
name = "b"
x = 0.0
y = 0.5
width = 1.0
height = 0.5
select = "others"
arrange = "row"
"##;

/// `BASE` with line `line` (1-based) replaced by `with` (which may span lines).
fn edit(line: usize, with: &str) -> String {
    let mut lines: Vec<&str> = BASE.lines().collect();
    lines[line - 1] = with;
    lines.join("\n") + "\n"
}

fn error(text: &str) -> LayoutError {
    Layout::parse("inline layout", text).expect_err("refused")
}

/// The error's location: (line, field).
fn at(err: &LayoutError) -> (Option<usize>, String) {
    match err {
        LayoutError::Syntax { at, .. } | LayoutError::Invalid { at, .. } | LayoutError::FallbackCycle { at, .. } => {
            (at.line, at.field.clone())
        }
        other => panic!("no location in {other}"),
    }
}

#[test]
fn the_base_parses_with_defaults() {
    let layout = Layout::parse("inline layout", BASE).expect("valid");
    assert_eq!(layout.transition_ms, 300);
    assert!(layout.tile.label);
    let b = &layout.regions[1];
    assert_eq!((b.arrange, b.fit, b.gap, b.z), (Arrange::Row, Fit::Contain, 0.0, 0));
    assert_eq!(b.max_participants, MAX_REGION_PARTICIPANTS);
    assert_eq!(b.orientation, Orientation::Any);
    assert_eq!(b.when_empty, WhenEmpty::Hide);
    assert!(b.tile.label, "regions inherit [tile]");
    assert_eq!(Layout::parse("x", &edit(9, "x = 0")).expect("integers are numbers too"), layout);
}

#[test]
fn serde_errors_name_the_line_and_the_field() {
    let err = error(&edit(22, "select = \"speakr\""));
    assert_eq!(at(&err), (Some(22), "regions[1].select".to_owned()), "{err}");
    assert!(matches!(err, LayoutError::Syntax { .. }));
    let text = err.to_string();
    assert!(text.starts_with("inline layout line 22, field `regions[1].select`: "), "{text}");
    assert!(text.contains("speakr") && text.contains("active_speaker"), "{text}");

    let err = error(&edit(23, "arrange = \"row\"\ncolour = 1"));
    let (line, field) = at(&err);
    assert_eq!(line, Some(24), "{err}");
    assert!(field.starts_with("regions[1]"), "{err}");
    assert!(err.to_string().contains("colour"), "{err}");

    let err = error(&edit(18, "x = \"zero\""));
    assert_eq!(at(&err), (Some(18), "regions[1].x".to_owned()), "{err}");

    let err = error(&edit(5, "label = 3"));
    assert_eq!(at(&err), (Some(5), "tile.label".to_owned()), "{err}");

    let err = error(&edit(23, ""));
    assert!(err.to_string().contains("arrange"), "missing field: {err}");
    assert!(at(&err).1.starts_with("regions[1]"), "{err}");

    let err = error(&edit(12, "height = = 0.5"));
    assert_eq!(at(&err).0, Some(12), "TOML syntax: {err}");

    let err = error(&edit(1, "name = \"t\"\nsurprise = 1"));
    assert_eq!(at(&err).0, Some(2), "{err}");
    assert!(err.to_string().contains("surprise"), "{err}");
}

#[test]
fn bad_values_name_the_line_the_field_and_the_value() {
    let cases: &[(usize, &str, usize, &str, &str)] = &[
        (2, "background = \"#zz0000\"", 2, "background", "#zz0000"),
        (20, "width = 1.5", 20, "regions[1].width", "1.5"),
        (19, "y = 0.6", 21, "regions[1].height", "0.5"),
        (5, "label_size = 2", 5, "tile.label_size", "2"),
        (5, "highlight = \"blue\"", 5, "tile.highlight", "blue"),
        (5, "corner_radius = -0.1", 5, "tile.corner_radius", "-0.1"),
        (23, "arrange = \"row\"\ngap = 0.5", 24, "regions[1].gap", "0.5"),
        (23, "arrange = \"row\"\nmax_participants = 50", 24, "regions[1].max_participants", "50"),
        (23, "arrange = \"row\"\nmax_participants = 0", 24, "regions[1].max_participants", "0"),
        (1, "name = \"t\"\ntransition_ms = -1", 2, "transition_ms", "-1"),
        (1, "name = \"t\"\ntransition_ms = 20000", 2, "transition_ms", "20000"),
        (23, "arrange = \"row\"\n[regions.tile]\nplaceholder = \"grey\"", 25, "regions[1].tile.placeholder", "grey"),
        (23, "arrange = \"row\"\nplaceholder = \"#12345\"", 24, "regions[1].placeholder", "#12345"),
        (13, "select = \"all\"\nids = [\"a\"]", 14, "regions[0].ids", "[\"a\"]"),
        (13, "select = \"all\"\nrole = \"host\"", 14, "regions[0].role", "host"),
        (13, "select = \"id\"", 13, "regions[0].ids", ""),
        (13, "select = \"id\"\nids = []", 14, "regions[0].ids", "[]"),
        (13, "select = \"id\"\nids = [\"a\", \"a\"]", 14, "regions[0].ids", "[\"a\", \"a\"]"),
        (13, "select = \"role\"", 13, "regions[0].role", ""),
        (13, "select = \"all\"\nwhen_empty = \"fallback\"", 14, "regions[0].fallback", ""),
        (13, "select = \"all\"\nfallback = \"grid\"", 14, "regions[0].fallback", "grid"),
        (13, "select = \"all\"\nwhen_empty = \"fallback\"\nfallback = \"mosaic\"", 15, "regions[0].fallback", "mosaic"),
        (17, "name = \" \"", 17, "regions[1].name", ""),
    ];
    for &(line, with, expect_line, field, value) in cases {
        let err = error(&edit(line, with));
        assert_eq!(at(&err), (Some(expect_line), field.to_owned()), "{with}: {err}");
        let LayoutError::Invalid { value: got, .. } = &err else { panic!("{with}: {err}") };
        assert_eq!(got, value, "{with}: {err}");
    }
    let err = error(&edit(2, "background = \"#zz0000\""));
    assert_eq!(err.to_string(), "inline layout line 2, field `background`: invalid value `#zz0000`: expected #RRGGBB");
}

#[test]
fn a_layout_needs_regions_for_both_orientations() {
    let err = error(
        &edit(14, "arrange = \"grid\"\norientation = \"landscape\"")
            .replace("select = \"others\"", "select = \"others\"\norientation = \"landscape\""),
    );
    assert_eq!(at(&err).1, "regions", "{err}");
    assert!(err.to_string().contains("portrait"), "{err}");
    let err = error("name = \"t\"\nbackground = \"#000000\"\nregions = []\n");
    assert_eq!(at(&err), (Some(3), "regions".to_owned()), "{err}");
}

#[test]
fn fallback_cycles_are_refused_where_the_chain_starts() {
    // A layout named like a built-in that falls back into a chain leading back to that name.
    let text = edit(1, "name = \"speaker\"")
        .replace("select = \"all\"", "select = \"pinned\"\nwhen_empty = \"fallback\"\nfallback = \"spotlight\"");
    let err = error(&text);
    let LayoutError::FallbackCycle { cycle, .. } = &err else { panic!("{err}") };
    assert_eq!(cycle, "speaker -> spotlight -> speaker");
    assert_eq!(at(&err), (Some(15), "regions[0].fallback".to_owned()), "{err}");
    assert!(err.to_string().contains("fallback cycle speaker -> spotlight -> speaker"), "{err}");

    let own = edit(1, "name = \"pip\"")
        .replace("select = \"all\"", "select = \"all\"\nwhen_empty = \"fallback\"\nfallback = \"pip\"");
    let LayoutError::FallbackCycle { cycle, .. } = error(&own) else { panic!("a cycle") };
    assert_eq!(cycle, "pip -> pip");

    // A chain without a cycle loads each layout once.
    let chain = edit(1, "name = \"mine\"")
        .replace("select = \"all\"", "select = \"pinned\"\nwhen_empty = \"fallback\"\nfallback = \"spotlight\"");
    let layout = Layout::parse("inline layout", &chain).expect("no cycle");
    let WhenEmpty::Fallback(spotlight) = &layout.regions[0].when_empty else { panic!("fallback") };
    let WhenEmpty::Fallback(speaker) = &spotlight.regions[0].when_empty else { panic!("spotlight falls back") };
    assert_eq!((spotlight.name.as_str(), speaker.name.as_str()), ("spotlight", "speaker"));
}

#[test]
fn load_reads_built_ins_and_files_and_refuses_the_rest() {
    assert!(matches!(Layout::load("nope"), Err(LayoutError::Unknown { .. })));
    let err = Layout::builtin("nope").expect_err("unknown");
    assert!(err.to_string().contains("grid, speaker, spotlight, screenshare, pip, audio-only, auto"), "{err}");
    assert!(matches!(Layout::load("missing/nope.toml"), Err(LayoutError::Read { .. })));

    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("mine.toml");
    std::fs::write(&good, BASE).expect("write");
    let layout = Layout::load(good.to_str().expect("utf-8")).expect("loads");
    assert_eq!(layout.name, "t");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, edit(22, "select = \"nobody\"")).expect("write");
    let path = bad.to_str().expect("utf-8");
    let err = Layout::load(path).expect_err("bad select");
    assert!(err.to_string().starts_with(&format!("{path} line 22, field `regions[1].select`")), "{err}");

    let huge = dir.path().join("huge.toml");
    let mut text = BASE.to_owned();
    text.push_str(&"# padding\n".repeat(110_000));
    std::fs::write(&huge, text).expect("write");
    assert!(matches!(Layout::load(huge.to_str().expect("utf-8")), Err(LayoutError::TooLarge { .. })));
}
