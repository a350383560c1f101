use super::*;
use std::io::Cursor;
use tar::{EntryType, Header};
use zip::write::SimpleFileOptions;

fn zip_bytes(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in files {
        let opts = SimpleFileOptions::default().unix_permissions(0o644);
        if name.ends_with('/') {
            w.add_directory(*name, opts).unwrap();
        } else {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// Raw tar entries: the name goes straight into the header, so `..` and `/` survive.
fn tar_bytes(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        if matches!(kind, EntryType::Symlink | EntryType::Link) {
            h.set_link_name("target.txt").unwrap();
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gz(tar: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(tar).unwrap();
    e.finish().unwrap()
}

fn run(bytes: &[u8], ext: &str, limits: &ExtractLimits) -> (tempfile::TempDir, Result<ExtractSummary, ArchiveError>) {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join(format!("in.{ext}"));
    fs::write(&archive, bytes).unwrap();
    let dest = dir.path().join("out");
    fs::create_dir(&dest).unwrap();
    let result = extract(&archive, &dest, limits);
    (dir, result)
}

fn err(bytes: &[u8], ext: &str, limits: &ExtractLimits) -> String {
    let (_dir, result) = run(bytes, ext, limits);
    let e = result.unwrap_err();
    let shown = e.to_string();
    assert!(shown.contains(&format!("in.{ext}")), "{shown}");
    format!("{e:?}").split_once(", ").map(|(_, rest)| rest.to_owned()).unwrap_or_default()
}

const R: EntryType = EntryType::Regular;

#[test]
fn valid_nested_archives_extract() {
    let files: [(&str, &[u8]); 4] =
        [("rec/", b""), ("rec/a/x.rtpdump", b"abc"), ("rec/b_timing_metadata.json", b"{}"), ("top.sdp", b"v=0")];
    let tar = tar_bytes(&[
        ("rec/", EntryType::Directory, b""),
        ("rec/a/x.rtpdump", R, b"abc"),
        ("rec/b_timing_metadata.json", R, b"{}"),
        ("top.sdp", R, b"v=0"),
    ]);
    for (bytes, ext) in [(zip_bytes(&files), "zip"), (gz(&tar), "tar.gz")] {
        let (dir, result) = run(&bytes, ext, &ExtractLimits::default());
        assert_eq!(result.unwrap(), ExtractSummary { files: 3, total_bytes: 8 });
        let out = dir.path().join("out");
        let listed = list_files(&out).unwrap();
        let want: Vec<_> =
            ["rec/a/x.rtpdump", "rec/b_timing_metadata.json", "top.sdp"].iter().map(|p| out.join(p)).collect();
        assert_eq!(listed, want);
        assert_eq!(fs::read(out.join("rec/a/x.rtpdump")).unwrap(), b"abc");
        assert_eq!(
            detect_kind(&dir.path().join(format!("in.{ext}"))).unwrap(),
            if ext == "zip" { ArchiveKind::Zip } else { ArchiveKind::TarGz }
        );
    }
}

#[test]
fn hostile_tar_gz() {
    let l = ExtractLimits::default();
    let e = |entries: &[(&str, EntryType, &[u8])], l: &ExtractLimits| err(&gz(&tar_bytes(entries)), "tar.gz", l);
    assert_eq!(e(&[("ok.txt", R, b"1"), ("../evil", R, b"x")], &l), "entry: \"../evil\" }");
    assert_eq!(e(&[("a/../../evil", R, b"x")], &l), "entry: \"a/../../evil\" }");
    assert_eq!(e(&[("/etc/evil", R, b"x")], &l), "entry: \"/etc/evil\" }");
    assert_eq!(e(&[("a\\..\\..\\evil", R, b"x")], &l), "entry: \"a\\\\..\\\\..\\\\evil\" }");
    assert_eq!(e(&[("C:evil", R, b"x")], &l), "entry: \"C:evil\" }");
    assert_eq!(e(&[("link", EntryType::Symlink, b"")], &l), "entry: \"link\", entry_type: \"symlink\" }");
    assert_eq!(e(&[("hard", EntryType::Link, b"")], &l), "entry: \"hard\", entry_type: \"hardlink\" }");
    assert_eq!(e(&[("fifo", EntryType::Fifo, b"")], &l), "entry: \"fifo\", entry_type: \"fifo\" }");
    assert_eq!(e(&[("dev", EntryType::Char, b"")], &l), "entry: \"dev\", entry_type: \"character device\" }");
    assert_eq!(e(&[("d.sdp", R, b"1"), ("d.sdp", R, b"2")], &l), "entry: \"d.sdp\" }");
    let small =
        ExtractLimits { max_entries: 3, max_entry_bytes: 1000, max_total_bytes: 1500, ..ExtractLimits::default() };
    let bomb = vec![0u8; 1 << 20];
    assert_eq!(
        e(&[("bomb.rtpdump", R, &bomb)], &small),
        "entry: \"bomb.rtpdump\", limit_bytes: 1000, which: \"per entry\" }"
    );
    let part = [7u8; 600];
    assert_eq!(
        e(&[("a.sdp", R, &part), ("b.sdp", R, &part), ("c.sdp", R, &part)], &small),
        "entry: \"c.sdp\", limit_bytes: 1500, which: \"in total\" }"
    );
    let many: Vec<(&str, EntryType, &[u8])> = ["1", "2", "3", "4", "5"].iter().map(|n| (*n, R, &b""[..])).collect();
    assert_eq!(e(&many, &small), "limit: 3 }");
    let tar = gz(&tar_bytes(&[("a.txt", R, b"hello")]));
    assert!(err(&tar[..tar.len() - 12], "tar.gz", &l).starts_with("reason: "));
}

#[test]
fn hostile_zip() {
    let l = ExtractLimits::default();
    let e = |files: &[(&str, &[u8])], l: &ExtractLimits| err(&zip_bytes(files), "zip", l);
    assert_eq!(e(&[("ok", b"1"), ("../evil", b"x")], &l), "entry: \"../evil\" }");
    assert_eq!(e(&[("/abs/evil", b"x")], &l), "entry: \"/abs/evil\" }");
    assert_eq!(e(&[("..\\evil", b"x")], &l), "entry: \"..\\\\evil\" }");
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.add_symlink("link", "/etc/passwd", SimpleFileOptions::default()).unwrap();
    let link = w.finish().unwrap().into_inner();
    assert_eq!(err(&link, "zip", &l), "entry: \"link\", entry_type: \"symlink\" }");
    let fifo = zip_bytes(&[("fifo", b"")]);
    let mut patched = fifo.clone();
    let attrs = (0o010_644u32 << 16).to_le_bytes(); // external attributes: S_IFIFO | 0644
    let at = patched.windows(4).position(|w| w == (0o100_644u32 << 16).to_le_bytes()).unwrap();
    patched[at..at + 4].copy_from_slice(&attrs);
    assert_eq!(err(&patched, "zip", &l), "entry: \"fifo\", entry_type: \"fifo\" }");
    let mut dup = zip_bytes(&[("a.txt", b"same"), ("b.txt", b"same")]);
    for i in 0..dup.len() - 5 {
        if &dup[i..i + 5] == b"b.txt" {
            dup[i] = b'a';
        }
    }
    assert_eq!(err(&dup, "zip", &l), "entry: \"a.txt\" }");
    let small =
        ExtractLimits { max_entries: 3, max_entry_bytes: 1000, max_total_bytes: 1500, ..ExtractLimits::default() };
    let bomb = vec![0u8; 1 << 20];
    assert!(zip_bytes(&[("bomb.rtpdump", &bomb)]).len() < 5000);
    assert_eq!(
        e(&[("bomb.rtpdump", &bomb)], &small),
        "entry: \"bomb.rtpdump\", limit_bytes: 1000, which: \"per entry\" }"
    );
    assert_eq!(e(&[("1", b""), ("2", b""), ("3", b""), ("4", b"")], &small), "limit: 3 }");
    let ok = zip_bytes(&[("a.txt", b"hello")]);
    assert!(err(&ok[..ok.len() - 30], "zip", &l).starts_with("reason: "));
}

#[test]
fn detection_and_destination() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    fs::write(p("x.tgz"), b"not gzip").unwrap();
    fs::write(p("y.bin"), b"PK\x05\x06rest").unwrap();
    fs::write(p("z.txt"), b"\x00\x01").unwrap();
    assert_eq!(detect_kind(dir.path()).unwrap(), ArchiveKind::Directory);
    assert_eq!(detect_kind(&p("x.tgz")).unwrap(), ArchiveKind::TarGz);
    assert_eq!(detect_kind(&p("y.bin")).unwrap(), ArchiveKind::Zip);
    let e = detect_kind(&p("z.txt")).unwrap_err();
    assert!(matches!(&e, ArchiveError::UnsupportedFormat { reason, .. } if reason.contains("\\x00\\x01")), "{e}");
    assert!(matches!(detect_kind(&p("missing")), Err(ArchiveError::Io { .. })));
    let e = extract(&p("x.tgz"), dir.path(), &ExtractLimits::default()).unwrap_err();
    assert!(matches!(e, ArchiveError::DestinationNotEmpty { .. }), "{e}");
    fs::create_dir(p("empty")).unwrap();
    let e = extract(&p("x.tgz"), &p("empty"), &ExtractLimits::default()).unwrap_err();
    assert!(matches!(e, ArchiveError::Corrupt { .. }), "{e}");
}

#[cfg(unix)]
#[test]
fn list_files_skips_symlinks_and_bounds_depth() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("a/b")).unwrap();
    fs::write(root.join("a/b/f.txt"), b"1").unwrap();
    fs::write(root.join("z.txt"), b"2").unwrap();
    std::os::unix::fs::symlink(root.join("z.txt"), root.join("a/link.txt")).unwrap();
    std::os::unix::fs::symlink(root, root.join("a/loop")).unwrap();
    assert_eq!(list_files(root).unwrap(), vec![root.join("a/b/f.txt"), root.join("z.txt")]);
    let deep: PathBuf = std::iter::repeat_n("d", 66).collect();
    fs::create_dir_all(root.join(&deep)).unwrap();
    let e = list_files(root).unwrap_err();
    assert!(matches!(e, ArchiveError::TooDeep { max_depth: 64, .. }), "{e}");
}

#[test]
fn fuzz_extraction_never_panics() {
    let mut state = 0x0123_4567_89ab_cdefu64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let zip = zip_bytes(&[("d/", b""), ("d/a.sdp", b"hello hello hello"), ("b.rtpdump", &[9; 300])]);
    let tar = tar_bytes(&[("d/", EntryType::Directory, b""), ("d/a.sdp", R, b"hello"), ("b.rtpdump", R, &[9; 300])]);
    let limits =
        ExtractLimits { max_entries: 10, max_entry_bytes: 10_000, max_total_bytes: 20_000, ..ExtractLimits::default() };
    for i in 0..500 {
        let (mut bytes, ext) = match i % 3 {
            0 => (zip.clone(), "zip"),
            1 => (tar.clone(), "tar.gz"),
            _ => (gz(&tar), "tar.gz"),
        };
        for _ in 0..=next() % 4 {
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
        }
        if next() % 4 == 0 {
            bytes.truncate((next() as usize) % bytes.len());
        }
        if i % 3 == 1 {
            bytes = gz(&bytes);
        }
        let (_dir, _result) = run(&bytes, ext, &limits);
    }
}

/// Every regular file under `dir`, relative, sorted.
fn written(dir: &Path) -> Vec<String> {
    list_files(dir).unwrap().iter().map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned()).collect()
}

#[test]
fn only_the_entries_tessera_reads_are_written() {
    let read = [
        "rec/a_timing_metadata.json",
        "rec/user_1/session_1/audio_1.rtpdump",
        "rec/user_1/session_1/audio_1.sdp",
        "rec/user_1/session_1/timing_metadata.json",
    ];
    let unread = ["rec/notes.txt", "rec/user_1/session_1/video_1.mp4", "rec/timing_metadata.json.bak", "rec/x.json"];
    let files: Vec<(&str, &[u8])> = read.iter().chain(&unread).map(|n| (*n, &b"data"[..])).collect();
    let entries: Vec<(&str, EntryType, &[u8])> = files.iter().map(|(n, d)| (*n, R, *d)).collect();
    for (bytes, ext) in [(zip_bytes(&files), "zip"), (gz(&tar_bytes(&entries)), "tar.gz")] {
        let (dir, result) = run(&bytes, ext, &ExtractLimits::default());
        assert_eq!(result.unwrap(), ExtractSummary { files: 4, total_bytes: 16 }, "{ext}");
        assert_eq!(written(&dir.path().join("out")), read, "{ext}");
    }
}

#[test]
fn a_bomb_is_refused_by_its_compression_ratio() {
    let zeros = vec![0u8; 32 << 20];
    let zip = zip_bytes(&[("call/a_timing_metadata.json", b"{}"), ("call/a.rtpdump", &zeros)]);
    assert!(zip.len() < 100_000, "{}", zip.len());
    let (dir, result) = run(&zip, "zip", &ExtractLimits::default());
    let shown = result.unwrap_err().to_string();
    assert!(shown.contains("\"call/a.rtpdump\"") && shown.contains("compression ratio"), "{shown}");
    assert_eq!(written(&dir.path().join("out")), Vec::<String>::new(), "nothing written before the check");
    // A tar.gz has no directory to check first: the decompressed stream is counted, entries
    // that are never written included.
    let tar = tar_bytes(&[("call/a_timing_metadata.json", R, b"{}"), ("call/junk.bin", R, &zeros)]);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&tar).unwrap();
    let tar = encoder.finish().unwrap();
    assert!(tar.len() < 100_000, "{}", tar.len());
    let (dir, result) = run(&tar, "tar.gz", &ExtractLimits::default());
    let shown = result.unwrap_err().to_string();
    assert!(shown.contains("\"call/junk.bin\"") && shown.contains("compression ratio"), "{shown}");
    assert_eq!(written(&dir.path().join("out")), vec!["call/a_timing_metadata.json".to_owned()]);
}

#[test]
fn zip_limits_are_checked_on_the_central_directory_before_anything_is_written() {
    let small =
        ExtractLimits { max_entries: 3, max_entry_bytes: 1000, max_total_bytes: 1500, ..ExtractLimits::default() };
    let many = zip_bytes(&[("1.sdp", b"x"), ("2.sdp", b"x"), ("3.sdp", b"x"), ("4.sdp", b"x")]);
    let (dir, result) = run(&many, "zip", &small);
    assert!(matches!(result, Err(ArchiveError::TooManyEntries { limit: 3, .. })), "{result:?}");
    assert_eq!(written(&dir.path().join("out")), Vec::<String>::new());
    let part = [7u8; 600];
    let big = zip_bytes(&[("a.rtpdump", &part), ("b.rtpdump", &part), ("c.rtpdump", &part)]);
    let (dir, result) = run(&big, "zip", &small);
    let shown = result.unwrap_err().to_string();
    assert!(shown.contains("\"c.rtpdump\"") && shown.contains("1500 bytes in total"), "{shown}");
    assert_eq!(written(&dir.path().join("out")), Vec::<String>::new());
}
