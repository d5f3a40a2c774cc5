//! uml_mkcow and uml_moo against Debian's: the same COW files, the same
//! merged images byte for byte, in-place merges that can be interrupted and
//! finished, and sparse output.

mod common;

use common::{bin, have_peers, pattern, run, run_ok, set_mtime, stderr, umlkit};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use umlkit::block::BlockDevice;
use umlkit::cow::header::{ByteOrder, Header, Layout};
use umlkit::cow::{open_cow, DiskOptions};

/// A backing file of `mib` MiB: patterned data with a hole in the middle
/// and a stretch of explicit zeros, an ext2 superblock magic (`uml_moo -d`
/// writes only into files that look like disk images), mtime fixed.
fn backing(dir: &Path, mib: u64) -> PathBuf {
    let path = dir.join("root_fs");
    let size = mib << 20;
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(size).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&pattern(1, (size / 4) as usize), 0).unwrap();
    f.write_all_at(&vec![0u8; (size / 8) as usize], size / 4)
        .unwrap();
    f.write_all_at(&pattern(2, (size / 4) as usize), size * 3 / 4)
        .unwrap();
    f.write_all_at(&[0x53, 0xEF], 1080).unwrap();
    drop(f);
    set_mtime(&path, 1_700_000_000);
    path
}

/// Writes through the COW like a guest: scattered small writes, a long run,
/// zeros over data, and a write at the very end.
fn dirty(cow: &Path, seed: u64) {
    let dev = open_writable(cow);
    let len = dev.len();
    let mut x = seed;
    for i in 0..40u64 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let off = (x >> 11) % (len - 5000);
        let n = 1 + (x >> 40) as usize % 4500;
        dev.write_all_at(off, &pattern(seed + i, n)).unwrap();
    }
    dev.write_all_at(len / 2, &pattern(seed ^ 99, 1 << 20))
        .unwrap();
    dev.write_all_at(4096, &vec![0u8; 64 << 10]).unwrap();
    dev.write_all_at(len - 700, &pattern(7, 700)).unwrap();
    dev.flush().unwrap();
}

/// Opens a COW for writing, as a guest would.
fn open_writable(cow: &Path) -> umlkit::cow::CowDevice<umlkit::block::FileDevice> {
    open_cow(
        cow,
        &DiskOptions {
            writable: true,
            ..Default::default()
        },
    )
    .unwrap()
}

/// A backing file of `mib` MiB in `dir` and a fresh COW over it.
fn backing_and_cow(dir: &Path, mib: u64) -> (PathBuf, PathBuf) {
    let b = backing(dir, mib);
    let cow = dir.join("a.cow");
    run_ok(bin("uml_mkcow"), [&cow, &b]);
    (b, cow)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn our_uml_mkcow_writes_the_same_file_as_debian_and_stays_sparse() {
    if !have_peers(
        "our_uml_mkcow_writes_the_same_file_as_debian_and_stays_sparse",
        &["uml_mkcow"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let b = backing(dir.path(), 8);
    run_ok(bin("uml_mkcow"), [dir.path().join("ours.cow"), b.clone()]);
    run_ok("uml_mkcow", [dir.path().join("theirs.cow"), b]);
    let ours = read(&dir.path().join("ours.cow"));
    assert_eq!(ours, read(&dir.path().join("theirs.cow")));
    let meta = std::fs::metadata(dir.path().join("ours.cow")).unwrap();
    assert!(
        meta.blocks() * 512 <= 16 << 10,
        "COW allocates {} blocks",
        meta.blocks()
    );
    assert_eq!(meta.mode() & 0o777, 0o644 & !current_umask());
}

fn current_umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
}

#[test]
fn uml_mkcow_refuses_an_existing_cow_without_f_and_replaces_it_with_f() {
    let dir = tempfile::tempdir().unwrap();
    let b = backing(dir.path(), 1);
    let cow = dir.path().join("a.cow");
    std::fs::write(&cow, b"precious").unwrap();
    let out = umlkit("uml_mkcow", [&cow, &b]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("a.cow: File exists"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read(&cow), b"precious");
    run_ok(bin("uml_mkcow"), [Path::new("-f"), &cow, &b]);
    assert_eq!(&read(&cow)[..4], b"OOOM");
    let usage = umlkit("uml_mkcow", ["only-one"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn merged_image_equals_debian_uml_moo_byte_for_byte_and_the_model() {
    if !have_peers(
        "merged_image_equals_debian_uml_moo_byte_for_byte_and_the_model",
        &["uml_moo"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (b, cow) = backing_and_cow(dir.path(), 16);
    dirty(&cow, 5);
    // The model: the COW's view read through the library.
    let view = open_cow(&cow, &DiskOptions::default()).unwrap();
    let mut model = vec![0u8; view.len() as usize];
    view.read_exact_at(0, &mut model).unwrap();
    drop(view);

    let ours = dir.path().join("ours.img");
    let theirs = dir.path().join("theirs.img");
    run_ok(bin("uml_moo"), [&cow, &ours]);
    run_ok("uml_moo", [&cow, &theirs]);
    let ours_bytes = read(&ours);
    assert!(
        ours_bytes == read(&theirs),
        "our merge differs from Debian's"
    );
    assert!(ours_bytes == model, "our merge differs from the COW's view");
    // The hole of the backing file (3/8 of the image) stays a hole. (The
    // backing file's explicit zeros are data that copy_file_range copies
    // as they are where the kernel offers it; zeros the guest wrote stay
    // holes.)
    let allocated = std::fs::metadata(&ours).unwrap().blocks() * 512;
    assert!(allocated < (16 << 20) * 3 / 4, "allocated {allocated}");

    // The three-argument form names the backing file first.
    let third = dir.path().join("third.img");
    run_ok(bin("uml_moo"), [&b, &cow, &third]);
    assert!(read(&third) == model);
}

#[test]
fn in_place_merge_equals_debian_in_place_merge() {
    if !have_peers("in_place_merge_equals_debian_in_place_merge", &["uml_moo"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (b, cow) = backing_and_cow(dir.path(), 8);
    dirty(&cow, 11);
    let copy = dir.path().join("copy_fs");
    std::fs::copy(&b, &copy).unwrap();
    set_mtime(&copy, 1_700_000_000);

    run_ok(bin("uml_moo"), [Path::new("-d"), &cow]);
    // Debian's parser wants -d before -b.
    run_ok("uml_moo", [Path::new("-d"), Path::new("-b"), &copy, &cow]);
    assert!(read(&b) == read(&copy), "in-place results differ");
    assert!(!umlkit::cow::merge::marker_path(&cow).exists());
    // The backing file changed, so the merged COW no longer opens.
    let again = umlkit("uml_moo", [Path::new("-d"), &cow]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("mtime mismatch"),
        "{}",
        stderr(&again)
    );
}

/// What a merge killed half-way leaves: its marker, part of the COW's
/// sectors in the backing file, and a new backing mtime. Returns the
/// backing file, the COW and the image an uninterrupted merge makes.
fn interrupted_merge(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (b, cow) = backing_and_cow(dir, 8);
    dirty(&cow, 3);
    let expected = dir.join("expected.img");
    run_ok(bin("uml_moo"), [&cow, &expected]);

    let view = open_cow(&cow, &DiskOptions::default()).unwrap();
    let header = view.header().clone();
    let mut half = vec![0u8; (view.len() / 2) as usize];
    view.read_exact_at(0, &mut half).unwrap();
    drop(view);
    let marker = umlkit::cow::merge::marker_path(&cow);
    std::fs::write(
        &marker,
        format!(
            "uml_moo in-place merge in progress\nbacking {}\nsize {}\nmtime {}\n",
            b.display(),
            header.size,
            header.mtime
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&b).unwrap();
        f.write_all_at(&half, 0).unwrap();
    }
    assert_ne!(std::fs::metadata(&b).unwrap().mtime(), 1_700_000_000);
    (b, cow, expected)
}

fn assert_merged(backing: &Path, expected: &Path) {
    let mut merged = read(backing);
    merged.truncate(read(expected).len());
    assert!(
        merged == read(expected),
        "resumed merge differs from an uninterrupted one"
    );
}

#[test]
fn an_interrupted_in_place_merge_is_finished_by_running_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let (b, cow, expected) = interrupted_merge(dir.path());
    let marker = umlkit::cow::merge::marker_path(&cow);

    let out = run_ok(bin("uml_moo"), [Path::new("-d"), &cow]);
    assert!(
        stderr(&out).contains("finished an interrupted merge"),
        "{}",
        stderr(&out)
    );
    assert_merged(&b, &expected);
    assert!(!marker.exists());
}

#[test]
fn a_merge_killed_while_finishing_an_interrupted_one_can_still_be_finished() {
    // The run that finishes an interrupted merge is killed at its first
    // write(2): where rewriting the marker in place had truncated it,
    // leaving a half-merged backing file that no run would touch again.
    if !have_peers(
        "a_merge_killed_while_finishing_an_interrupted_one_can_still_be_finished",
        &["strace"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (b, cow, expected) = interrupted_merge(dir.path());
    let marker = umlkit::cow::merge::marker_path(&cow);
    let before = std::fs::read(&marker).unwrap();

    let killed = run(
        "strace",
        [
            std::ffi::OsStr::new("-f"),
            "-qq".as_ref(),
            "-o".as_ref(),
            "/dev/null".as_ref(),
            "-e".as_ref(),
            "trace=write".as_ref(),
            "-e".as_ref(),
            "inject=write:signal=KILL:when=1".as_ref(),
            bin("uml_moo").as_os_str(),
            "-d".as_ref(),
            cow.as_os_str(),
        ],
    );
    assert!(!killed.status.success(), "the injected kill did not happen");
    assert_eq!(
        std::fs::read(&marker).unwrap(),
        before,
        "the marker of the interrupted merge changed"
    );
    let out = run_ok(bin("uml_moo"), [Path::new("-d"), &cow]);
    assert!(
        stderr(&out).contains("finished an interrupted merge"),
        "{}",
        stderr(&out)
    );
    assert_merged(&b, &expected);
    assert!(!marker.exists());
}

#[test]
fn killing_an_in_place_merge_at_random_points_then_rerunning_gives_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let (b, cow) = backing_and_cow(dir.path(), 32);
    {
        // Many dirty sectors, so that the merge takes a moment.
        let dev = open_writable(&cow);
        for i in 0..24u64 {
            dev.write_all_at(i * (1 << 20) + 512, &pattern(i + 40, 900 << 10))
                .unwrap();
        }
        // A guest's filesystem keeps its magic: a half-merged backing file
        // still looks like a disk image.
        dev.write_all_at(1080, &[0x53, 0xEF]).unwrap();
    }
    let expected = dir.path().join("expected.img");
    run_ok(bin("uml_moo"), [&cow, &expected]);
    for delay_us in [200u64, 1000, 3000, 8000] {
        let mut child = std::process::Command::new(bin("uml_moo"))
            .args([Path::new("-q"), Path::new("-d"), &cow])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(delay_us));
        let _ = child.kill();
        let _ = child.wait();
    }
    // Unfinished (marker left) or never started (backing untouched): the
    // same command finishes the job. A run that completed left neither.
    let marker = umlkit::cow::merge::marker_path(&cow);
    if marker.exists() || std::fs::metadata(&b).unwrap().mtime() == 1_700_000_000 {
        run_ok(bin("uml_moo"), [Path::new("-d"), &cow]);
    }
    assert!(!marker.exists());
    let mut merged = read(&b);
    merged.truncate(read(&expected).len());
    assert!(merged == read(&expected));
}

#[test]
fn reset_cow_leaves_an_empty_cow_that_opens_over_the_merged_backing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cow) = backing_and_cow(dir.path(), 4);
    dirty(&cow, 8);
    let expected = dir.path().join("expected.img");
    run_ok(bin("uml_moo"), [&cow, &expected]);
    run_ok(
        bin("uml_moo"),
        [Path::new("-d"), Path::new("--reset-cow"), &cow],
    );
    let dev =
        open_cow(&cow, &DiskOptions::default()).expect("reset COW opens over the merged backing");
    assert_eq!(dev.dirty_sectors(), 0);
    let mut view = vec![0u8; dev.len() as usize];
    dev.read_exact_at(0, &mut view).unwrap();
    view.truncate(read(&expected).len());
    assert!(view == read(&expected));
    let allocated = std::fs::metadata(&cow).unwrap().blocks() * 512;
    assert!(
        allocated <= 64 << 10,
        "reset COW still allocates {allocated} bytes"
    );
}

#[test]
fn a_64_gib_sparse_backing_merges_without_reading_its_holes() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("big_fs");
    let f = std::fs::File::create(&b).unwrap();
    f.set_len(64 << 30).unwrap();
    {
        use std::os::unix::fs::FileExt;
        f.write_all_at(b"superblock", 1024).unwrap();
    }
    drop(f);
    let cow = dir.path().join("a.cow");
    run_ok(bin("uml_mkcow"), [&cow, &b]);
    {
        let dev = open_writable(&cow);
        dev.write_all_at(40 << 30, b"written by the guest").unwrap();
    }
    let out = dir.path().join("merged");
    run_ok(bin("uml_moo"), [&cow, &out]);
    let meta = std::fs::metadata(&out).unwrap();
    assert_eq!(meta.len(), 64 << 30);
    assert!(
        meta.blocks() * 512 <= 1 << 20,
        "merged image allocates {} bytes",
        meta.blocks() * 512
    );
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(&out).unwrap();
    let mut buf = [0u8; 20];
    f.read_exact_at(&mut buf, 40 << 30).unwrap();
    assert_eq!(&buf, b"written by the guest");
    f.read_exact_at(&mut buf[..10], 1024).unwrap();
    assert_eq!(&buf[..10], b"superblock");
}

/// Builds a COW file of an old layout by hand from the spec's tables, with
/// the given sectors present.
fn old_cow(path: &Path, layout: Layout, backing: &Path, sectors: &[u64]) {
    let meta = std::fs::metadata(backing).unwrap();
    let h = Header::with_layout(
        layout,
        if layout == Layout::V1 {
            ByteOrder::Little
        } else {
            ByteOrder::Big
        },
        backing.to_str().unwrap().as_bytes().to_vec(),
        meta.mtime() as u32,
        meta.len(),
        512,
        if layout == Layout::V3Broken {
            4096
        } else {
            512
        },
    )
    .unwrap();
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::create(path).unwrap();
    f.write_all_at(&h.to_bytes().unwrap(), 0).unwrap();
    f.set_len(h.file_len_needed()).unwrap();
    let mut bitmap = vec![0u8; h.bitmap_len as usize];
    for &s in sectors {
        bitmap[(s / 8) as usize] |= 1 << (s % 8);
        f.write_all_at(&pattern(s + 1000, 512), h.data_offset + s * 512)
            .unwrap();
    }
    f.write_all_at(&bitmap, h.bitmap_offset).unwrap();
}

#[test]
fn old_layouts_merge_like_debian_uml_moo() {
    if !have_peers("old_layouts_merge_like_debian_uml_moo", &["uml_moo"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let b = backing(dir.path(), 2);
    for layout in [Layout::V1, Layout::V2, Layout::V3Broken] {
        let cow = dir.path().join(format!("{layout:?}.cow"));
        old_cow(&cow, layout, &b, &[0, 1, 7, 8, 100, 2047, 4000]);
        let ours = dir.path().join("ours.img");
        let theirs = dir.path().join("theirs.img");
        run_ok(bin("uml_moo"), [&cow, &ours]);
        let out = run("uml_moo", [&cow, &theirs]);
        if layout == Layout::V3Broken {
            // Debian's 64-bit build reads the packed layout only; ours follows
            // the kernel. Check against the sectors themselves.
            let merged = read(&ours);
            assert_eq!(&merged[100 * 512..101 * 512], &pattern(1100, 512)[..]);
            continue;
        }
        assert!(out.status.success(), "{layout:?}: {}", stderr(&out));
        assert!(
            read(&ours) == read(&theirs),
            "{layout:?} merge differs from Debian's"
        );
        assert_eq!(&read(&ours)[7 * 512..8 * 512], &pattern(1007, 512)[..]);
    }
}

#[test]
fn sigterm_during_a_merge_to_a_new_image_leaves_no_output_and_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cow) = backing_and_cow(dir.path(), 64);
    {
        let dev = open_writable(&cow);
        for i in 0..64u64 {
            dev.write_all_at(i << 20, &pattern(i, 1 << 20)).unwrap();
        }
    }
    let out = dir.path().join("merged");
    let mut interrupted = 0;
    for delay_ms in [5u64, 20, 60] {
        let child = std::process::Command::new(bin("uml_moo"))
            .args([&cow, &out])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::SIGTERM,
        );
        let result = child.wait_with_output().unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("uml_moo-tmp")),
            "temporary left: {names:?}"
        );
        if result.status.success() {
            assert_eq!(std::fs::metadata(&out).unwrap().len(), 64 << 20);
            std::fs::remove_file(&out).unwrap();
        } else {
            interrupted += 1;
            assert!(!out.exists(), "partial output after an interrupted merge");
            // A signal that arrives before the handler is installed kills the
            // process outright (and nothing was created yet); otherwise the
            // merge says it was interrupted.
            use std::os::unix::process::ExitStatusExt;
            if result.status.signal().is_none() {
                assert!(String::from_utf8_lossy(&result.stderr).contains("interrupted"));
            }
        }
    }
    eprintln!("{interrupted} of 3 merges were interrupted");
}

#[test]
fn in_place_merge_of_a_relative_cow_path_works_and_leaves_no_marker() {
    let dir = tempfile::tempdir().unwrap();
    let (b, cow) = backing_and_cow(dir.path(), 2);
    dirty(&cow, 21);
    let expected = dir.path().join("expected.img");
    run_ok(bin("uml_moo"), [&cow, &expected]);
    let out = std::process::Command::new(bin("uml_moo"))
        .args(["-d", "a.cow"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("merging a.cow into {} in place", b.display())),
        "{}",
        stderr(&out)
    );
    assert!(!umlkit::cow::merge::marker_path(&cow).exists());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("uml_moo-merging")),
        "marker left: {names:?}"
    );
    let mut merged = read(&b);
    merged.truncate(read(&expected).len());
    assert!(merged == read(&expected));
}

#[test]
fn quiet_in_place_merge_says_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cow) = backing_and_cow(dir.path(), 2);
    dirty(&cow, 5);
    let out = run_ok(bin("uml_moo"), [Path::new("-q"), Path::new("-d"), &cow]);
    assert_eq!(stderr(&out), "");
}
