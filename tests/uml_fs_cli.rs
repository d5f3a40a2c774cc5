//! The `uml_fs` binary on images made by the real `mke2fs -d`: `info`
//! against `dumpe2fs -h`, `ls`, `cat`, `stat`, `find` against the source
//! tree, and `extract` keeping contents, modes, times, symlinks, hard links
//! and holes.

mod common;

use common::fsimg::{dumpe2fs_header, labels, make_image, random_tree, tree_paths, TreeOptions};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

struct Fixture {
    _dir: tempfile::TempDir,
    tree: PathBuf,
    image: PathBuf,
    scratch: PathBuf,
}

fn fixture(test: &str, fs_type: &str, extra: &[&str], seed: u64) -> Option<Fixture> {
    if !common::have_peers(test, &["mke2fs", "e2fsck", "dumpe2fs"]) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    random_tree(
        &tree,
        &TreeOptions {
            seed,
            files: 40,
            many: 120,
            ..TreeOptions::default()
        },
    );
    let image = dir.path().join("image");
    make_image(&tree, &image, fs_type, 48, extra);
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    Some(Fixture {
        tree,
        image,
        scratch,
        _dir: dir,
    })
}

fn uml_fs(args: &[&OsStr]) -> std::process::Output {
    common::umlkit("uml_fs", args)
}

fn ok(args: &[&OsStr]) -> Vec<u8> {
    let out = uml_fs(args);
    assert!(
        out.status.success(),
        "uml_fs {args:?} failed: {}",
        common::stderr(&out)
    );
    out.stdout
}

fn s(v: &str) -> &OsStr {
    OsStr::new(v)
}

#[test]
fn help_lists_every_subcommand_and_exits_0() {
    let out = uml_fs(&[s("--help")]);
    assert!(out.status.success());
    let text = common::stdout(&out);
    for sub in [
        "info",
        "ls",
        "cat",
        "stat",
        "find",
        "extract",
        "diff",
        "--no-replay",
    ] {
        assert!(text.contains(sub), "--help lacks {sub}: {text}");
    }
    let bad = uml_fs(&[s("frobnicate")]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn info_numbers_match_dumpe2fs_for_ext3_and_ext4() {
    for (fs_type, extra) in [
        ("ext3", &[][..]),
        (
            "ext4",
            &["-O", "64bit,metadata_csum", "-L", "guest-root"][..],
        ),
    ] {
        let Some(f) = fixture("info_matches_dumpe2fs", fs_type, extra, 5) else {
            return;
        };
        let ours = labels(&String::from_utf8_lossy(&ok(&[
            s("info"),
            f.image.as_os_str(),
        ])));
        let theirs = dumpe2fs_header(&f.image);
        for key in [
            "Filesystem volume name",
            "Last mounted on",
            "Filesystem UUID",
            "Filesystem magic number",
            "Filesystem revision #",
            "Filesystem features",
            "Filesystem state",
            "Inode count",
            "Block count",
            "Reserved block count",
            "Free blocks",
            "Free inodes",
            "First block",
            "Block size",
            "Blocks per group",
            "Inodes per group",
            "Mount count",
            "Maximum mount count",
            "First inode",
            "Inode size",
            "Journal inode",
        ] {
            assert_eq!(ours.get(key), theirs.get(key), "{fs_type}: {key}");
        }
        assert_eq!(ours["Needs recovery"], "no");
    }
}

#[test]
fn ls_cat_stat_and_find_agree_with_the_source_tree() {
    let Some(f) = fixture("ls_cat_stat_find", "ext3", &[], 6) else {
        return;
    };
    let img = f.image.as_os_str();
    // ls of the big directory: the names, sorted.
    let mut want: Vec<String> = std::fs::read_dir(f.tree.join("many"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    want.sort();
    let got = String::from_utf8(ok(&[s("ls"), img, s("/many")])).unwrap();
    assert_eq!(got.lines().collect::<Vec<_>>(), want);
    // ls -l shows modes and symlink targets; ls -R descends.
    let long = String::from_utf8_lossy(&ok(&[s("ls"), s("-l"), img, s("/")])).into_owned();
    assert!(
        long.lines()
            .any(|l| l.starts_with("prw-r-----") && l.ends_with(" fifo")),
        "{long}"
    );
    assert!(
        long.lines()
            .any(|l| l.starts_with('d') && l.ends_with(" many")),
        "{long}"
    );
    let rec = String::from_utf8_lossy(&ok(&[s("ls"), s("-R"), img, s("/deep0")])).into_owned();
    assert!(
        rec.contains(
            "/deep0/deep1/deep2/deep3/deep4/deep5/deep6/deep7/deep8/deep9/deep10:\ndeep11\n"
        ),
        "{rec}"
    );
    // cat: large and sparse files byte for byte.
    for name in ["large", "sparse", "empty"] {
        let got = ok(&[s("cat"), img, OsStr::new(&format!("/{name}"))]);
        assert!(
            got == std::fs::read(f.tree.join(name)).unwrap(),
            "cat /{name}"
        );
    }
    // A missing path: one line on stderr, exit 1.
    let out = uml_fs(&[s("cat"), img, s("/no/such/file")]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("uml_fs: ") && err.contains("no such file or directory"),
        "{err}"
    );
    // stat: mode, size and a symlink target.
    let st = String::from_utf8_lossy(&ok(&[s("stat"), img, s("/large")])).into_owned();
    let size = f.tree.join("large").metadata().unwrap().len();
    assert!(st.contains(&format!("  Size: {size}\n")), "{st}");
    assert!(st.contains("Mode: 0644 (-rw-r--r--)"), "{st}");
    // find -name / -type, in find's single-dash spelling.
    let found = String::from_utf8(ok(&[
        s("find"),
        img,
        s("/many"),
        s("-name"),
        s("*-0001?"),
        s("-type"),
        s("f"),
    ]))
    .unwrap();
    let names: Vec<&str> = found.lines().collect();
    assert_eq!(names.len(), 10, "{found}");
    assert!(names
        .iter()
        .all(|n| n.starts_with("/many/entry-with-a-longish-name-0001")));
    let dirs = String::from_utf8(ok(&[s("find"), img, s("/deep0"), s("--type"), s("d")])).unwrap();
    let want_dirs = tree_paths(&f.tree.join("deep0"))
        .iter()
        .filter(|p| p.symlink_metadata().unwrap().is_dir())
        .count();
    assert!(want_dirs >= 12);
    assert_eq!(dirs.lines().count(), want_dirs, "{dirs}");
}

/// Checks an extracted tree against its source.
fn compare_extracted(src: &Path, dst: &Path, as_root: bool) {
    let mut inode_map = std::collections::HashMap::new();
    for p in tree_paths(src) {
        let rel = p.strip_prefix(src).unwrap();
        let q = dst.join(rel);
        let shown = String::from_utf8_lossy(rel.as_os_str().as_bytes()).into_owned();
        let a = p.symlink_metadata().unwrap();
        let Ok(b) = q.symlink_metadata() else {
            // Only what a normal user cannot create may be missing.
            assert!(
                a.file_type().is_char_device()
                    || a.file_type().is_block_device()
                    || a.file_type().is_socket(),
                "{shown} missing"
            );
            assert!(
                !as_root || a.file_type().is_socket(),
                "{shown} missing although root"
            );
            continue;
        };
        assert_eq!(a.mode(), b.mode(), "{shown}: mode");
        if !a.is_dir() {
            // Hard links inside the tree stay hard links.
            let first = *inode_map.entry(a.ino()).or_insert(b.ino());
            assert_eq!(first, b.ino(), "{shown}: hard link broken");
        }
        if rel.as_os_str().is_empty() {
            continue;
        }
        assert_eq!(a.mtime(), b.mtime(), "{shown}: mtime");
        if as_root {
            assert_eq!((a.uid(), a.gid()), (b.uid(), b.gid()), "{shown}: owner");
        }
        if a.is_file() {
            assert!(
                std::fs::read(&p).unwrap() == std::fs::read(&q).unwrap(),
                "{shown}: content"
            );
            // Holes stay holes.
            assert!(
                b.blocks() <= a.blocks() + 8,
                "{shown}: {} blocks, source {}",
                b.blocks(),
                a.blocks()
            );
        } else if a.file_type().is_symlink() {
            assert_eq!(
                std::fs::read_link(&p).unwrap(),
                std::fs::read_link(&q).unwrap(),
                "{shown}: target"
            );
        } else if a.file_type().is_char_device() || a.file_type().is_block_device() {
            assert_eq!(a.rdev(), b.rdev(), "{shown}: device number");
        }
    }
}

#[test]
fn extract_keeps_contents_modes_times_links_and_holes() {
    for (fs_type, extra) in [("ext2", &["-b", "1024"][..]), ("ext4", &[][..])] {
        let Some(f) = fixture("extract_keeps_everything", fs_type, extra, 7) else {
            return;
        };
        let dest = f.scratch.join("out");
        let out = uml_fs(&[s("extract"), f.image.as_os_str(), s("/"), dest.as_os_str()]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        // lost+found is the image's own; the rest is the source tree.
        std::fs::remove_dir(dest.join("lost+found")).unwrap();
        compare_extracted(&f.tree, &dest, nix::unistd::geteuid().is_root());
        let sparse = dest.join("sparse").metadata().unwrap();
        assert!(
            sparse.blocks() * 512 < sparse.len() / 10,
            "the sparse file was filled in"
        );
        // A single file into an existing directory keeps its name.
        ok(&[
            s("extract"),
            f.image.as_os_str(),
            s("/large"),
            f.scratch.as_os_str(),
        ]);
        assert!(
            std::fs::read(f.scratch.join("large")).unwrap()
                == std::fs::read(f.tree.join("large")).unwrap()
        );
    }
}

#[test]
fn extract_as_a_normal_user_reports_device_nodes_and_owners_but_succeeds() {
    let test = "extract_as_normal_user";
    if !common::have_root(test) || !common::have_peers(test, &["setpriv"]) {
        return;
    }
    let Some(f) = fixture(test, "ext3", &[], 8) else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    for p in [f._dir.path(), f.scratch.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    std::fs::set_permissions(&f.image, std::fs::Permissions::from_mode(0o644)).unwrap();
    let dest = f.scratch.join("out");
    let out = common::run(
        common::which("setpriv").unwrap(),
        [
            s("--reuid=65534"),
            s("--regid=65534"),
            s("--clear-groups"),
            common::bin("uml_fs").as_os_str(),
            s("extract"),
            f.image.as_os_str(),
            s("/"),
            dest.as_os_str(),
        ],
    );
    let err = common::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("skipped /null (character device 1,3)"),
        "{err}"
    );
    assert!(
        err.contains("skipped /disk (block device 259,70000)"),
        "{err}"
    );
    assert!(err.contains("belong to other users"), "{err}");
    let lf = dest.join("lost+found");
    std::fs::set_permissions(&lf, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::remove_dir(lf).unwrap();
    compare_extracted(&f.tree, &dest, false);
    assert_eq!(dest.join("large").metadata().unwrap().uid(), 65534);
}

/// An 8 MiB ext3 image with 1 KiB blocks holding `files` (name, contents),
/// made by the real mke2fs; `None` (skipped loudly) without e2fsprogs.
fn small_image(test: &str, dir: &Path, files: &[(&str, Vec<u8>)]) -> Option<PathBuf> {
    if !common::have_peers(test, &["mke2fs", "debugfs"]) {
        return None;
    }
    let tree = dir.join("tree");
    std::fs::create_dir(&tree).unwrap();
    for (name, data) in files {
        std::fs::write(tree.join(name), data).unwrap();
    }
    let image = dir.join("image");
    common::run_ok(
        common::which("mke2fs").unwrap(),
        [
            s("-q"),
            s("-F"),
            s("-t"),
            s("ext3"),
            s("-b"),
            s("1024"),
            s("-d"),
            tree.as_os_str(),
            image.as_os_str(),
            s("8M"),
        ],
    );
    Some(image)
}

/// Runs one `debugfs -w` request on `image` and returns its output.
fn debugfs(image: &Path, request: &str) -> String {
    let out = common::run_ok(
        common::which("debugfs").unwrap(),
        [s("-w"), s("-R"), s(request), image.as_os_str()],
    );
    common::stdout(&out)
}

/// The physical block of logical block `lblk` of `path` in `image`.
fn bmap(image: &Path, path: &str, lblk: u64) -> u64 {
    let text = debugfs(image, &format!("bmap {path} {lblk}"));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("bmap {path}: {text}"))
}

/// The inode number of `path` in `image`.
fn inode_of(image: &Path, path: &str) -> u32 {
    let text = debugfs(image, &format!("stat {path}"));
    let at = text.find("Inode: ").expect("debugfs stat names the inode") + 7;
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// Bytes allocated under `dir` (not following symlinks).
fn allocated_under(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        total += meta.blocks() * 512;
        if meta.is_dir() {
            total += allocated_under(&entry.path());
        }
    }
    total
}

/// Asserts the one-line failure of an extraction stopped by a cross-link
/// and returns the line.
fn expect_cross_link_failure(out: &std::process::Output) -> String {
    let err = common::stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("cross-linked"), "{err}");
    err
}

#[test]
fn extract_stops_at_a_block_shared_by_two_files_naming_both_inodes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = small_image(
        "extract_cross_linked_files",
        dir.path(),
        &[("a", vec![b'a'; 3000]), ("b", vec![b'b'; 3000])],
    ) else {
        return;
    };
    let shared = bmap(&image, "/a", 1);
    debugfs(&image, &format!("sif /b block[1] {shared}"));
    let (a, b) = (inode_of(&image, "/a"), inode_of(&image, "/b"));
    let dest = dir.path().join("out");
    let out = uml_fs(&[s("extract"), image.as_os_str(), s("/"), dest.as_os_str()]);
    let err = expect_cross_link_failure(&out);
    assert!(err.contains(&format!("block {shared} ")), "{err}");
    assert!(err.contains(&format!("inode {a} ")), "{err}");
    assert!(err.contains(&format!("inode {b}")), "{err}");
}

#[test]
fn extract_of_an_image_whose_map_repeats_one_block_stops_before_writing_gigabytes() {
    let dir = tempfile::tempdir().unwrap();
    let block = |c: u8| vec![c; 1024];
    let Some(image) = small_image(
        "extract_block_map_bomb",
        dir.path(),
        &[
            ("bomb", block(b'B')),
            ("d", block(b'D')),
            ("x", block(b'X')),
            ("y", block(b'Y')),
            ("z", block(b'Z')),
        ],
    ) else {
        return;
    };
    // z (triple indirect) -> y (double) -> x (single) -> d: every entry of
    // each level names the one block below, so the map covers 16 GiB.
    let [d, x, y, z] = ["/d", "/x", "/y", "/z"].map(|p| bmap(&image, p, 0));
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&image)
            .unwrap();
        for (at, entry) in [(x, d), (y, x), (z, y)] {
            let table: Vec<u8> = (0..256)
                .flat_map(|_| (entry as u32).to_le_bytes())
                .collect();
            f.write_all_at(&table, at * 1024).unwrap();
        }
    }
    for (field, value) in [
        ("block[IND]", x),
        ("block[DIND]", y),
        ("block[TIND]", z),
        ("size", 2 << 30),
    ] {
        debugfs(&image, &format!("sif /bomb {field} {value}"));
    }
    let bomb = inode_of(&image, "/bomb");
    let dest = dir.path().join("out");
    let out = uml_fs(&[s("extract"), image.as_os_str(), s("/"), dest.as_os_str()]);
    let err = expect_cross_link_failure(&out);
    assert!(err.contains(&format!("inode {bomb}")), "{err}");
    assert!(
        [d, x, y, z]
            .iter()
            .any(|b| err.contains(&format!("block {b} "))),
        "names none of the repeated blocks: {err}"
    );
    let written = allocated_under(&dest);
    assert!(
        written <= 8 << 20,
        "{written} bytes written from an 8 MiB image"
    );
    assert!(!dest.join("bomb").exists(), "partial file left");
}

#[test]
fn extract_keeps_a_size_past_the_mapped_blocks_as_a_hole() {
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = small_image(
        "extract_size_past_mapped_blocks",
        dir.path(),
        &[("short", b"start of a sparse file\n".to_vec())],
    ) else {
        return;
    };
    debugfs(&image, &format!("sif /short size {}", 3u64 << 30));
    let dest = dir.path().join("short");
    ok(&[
        s("extract"),
        image.as_os_str(),
        s("/short"),
        dest.as_os_str(),
    ]);
    let meta = dest.metadata().unwrap();
    assert_eq!(meta.len(), 3 << 30);
    assert!(meta.blocks() * 512 <= 64 << 10, "the hole was filled in");
    let mut head = vec![0u8; 23];
    use std::os::unix::fs::FileExt;
    std::fs::File::open(&dest)
        .unwrap()
        .read_exact_at(&mut head, 0)
        .unwrap();
    assert_eq!(head, b"start of a sparse file\n");
}

#[test]
fn ls_and_cat_exit_0_when_the_reader_of_their_output_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..400_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let Some(image) = small_image(
        "ls_cat_broken_pipe",
        dir.path(),
        &[("big", big), ("small", b"hello\n".to_vec())],
    ) else {
        return;
    };
    let uml_fs = common::bin("uml_fs");
    let img = image.as_os_str();
    for (args, read_first) in [
        (vec![s("ls"), s("-R"), img, s("/")], 0),
        (vec![s("ls"), s("-l"), img, s("/")], 0),
        (vec![s("cat"), img, s("/small")], 0),
        (vec![s("cat"), img, s("/big")], 0),
        (vec![s("cat"), img, s("/big")], 100),
        (vec![s("stat"), img, s("/big")], 0),
        (vec![s("info"), img], 0),
    ] {
        common::assert_quiet_success_on_closed_pipe(
            &format!("uml_fs {args:?} (reader gone after {read_first} bytes)"),
            common::run_into_closed_pipe(&uml_fs, &args, read_first),
        );
    }
}
