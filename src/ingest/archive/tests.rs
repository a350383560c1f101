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
        [("rec/", b""), ("rec/a/x.rtpdump", b"abc"), ("rec/b.json", b"{}"), ("top.sdp", b"v=0")];
    let tar = tar_bytes(&[
        ("rec/", EntryType::Directory, b""),
        ("rec/a/x.rtpdump", R, b"abc"),
        ("rec/b.json", R, b"{}"),
        ("top.sdp", R, b"v=0"),
    ]);
    for (bytes, ext) in [(zip_bytes(&files), "zip"), (gz(&tar), "tar.gz")] {
        let (dir, result) = run(&bytes, ext, &ExtractLimits::default());
        assert_eq!(result.unwrap(), ExtractSummary { files: 3, total_bytes: 8 });
        let out = dir.path().join("out");
        let listed = list_files(&out).unwrap();
        let want: Vec<_> = ["rec/a/x.rtpdump", "rec/b.json", "top.sdp"].iter().map(|p| out.join(p)).collect();
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
    assert_eq!(e(&[("d.txt", R, b"1"), ("d.txt", R, b"2")], &l), "entry: \"d.txt\" }");
    let small = ExtractLimits { max_entries: 3, max_entry_bytes: 1000, max_total_bytes: 1500 };
    let bomb = vec![0u8; 1 << 20];
    assert_eq!(e(&[("bomb", R, &bomb)], &small), "entry: \"bomb\", limit_bytes: 1000, which: \"per entry\" }");
    let part = [7u8; 600];
    assert_eq!(
        e(&[("a", R, &part), ("b", R, &part), ("c", R, &part)], &small),
        "entry: \"c\", limit_bytes: 1500, which: \"in total\" }"
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
    let small = ExtractLimits { max_entries: 3, max_entry_bytes: 1000, max_total_bytes: 1500 };
    let bomb = vec![0u8; 1 << 20];
    assert!(zip_bytes(&[("bomb", &bomb)]).len() < 5000);
    assert_eq!(e(&[("bomb", &bomb)], &small), "entry: \"bomb\", limit_bytes: 1000, which: \"per entry\" }");
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
    let zip = zip_bytes(&[("d/", b""), ("d/a.txt", b"hello hello hello"), ("b.bin", &[9; 300])]);
    let tar = tar_bytes(&[("d/", EntryType::Directory, b""), ("d/a.txt", R, b"hello"), ("b.bin", R, &[9; 300])]);
    let limits = ExtractLimits { max_entries: 10, max_entry_bytes: 10_000, max_total_bytes: 20_000 };
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
