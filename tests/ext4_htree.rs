//! The writer keeps htree (hash-indexed) directories indexed: tens of
//! thousands of names created, renamed and removed in one directory leave
//! an index that `e2fsck -fn` accepts and `debugfs htree` shows, with the
//! second index level when the root fills; a linear directory that grows
//! past one block becomes indexed; an index e2fsprogs built is kept
//! through our inserts and removals. Every remaining name is found through
//! the index by our reader and listed by `debugfs ls`.

mod common;

use common::fsck_clean;
use std::collections::BTreeMap;
use std::path::Path;
use umlkit::block::FileDevice;
use umlkit::ext3::inode::EXT4_INDEX_FL;
use umlkit::ext3::write::{WriteOptions, Writer};
use umlkit::ext3::Ext3;
use umlkit::fs::{InodeFs, Owner, RenameFlags};

const ROOT: u32 = 2;
const ME: Owner = Owner { uid: 0, gid: 0 };

fn mkfs(img: &Path, kind: &str, args: &[&str], size: &str) {
    let out = common::run(
        "mke2fs",
        ["-q", "-F", "-t", kind]
            .iter()
            .chain(args)
            .chain(&[img.to_str().unwrap(), size]),
    );
    assert!(out.status.success(), "mke2fs: {}", common::stderr(&out));
}

fn open(img: &Path) -> Writer<FileDevice> {
    Writer::open(
        FileDevice::open_read_write(img).unwrap(),
        WriteOptions::default(),
    )
    .unwrap()
}

fn debugfs(img: &Path, cmd: &str) -> String {
    common::stdout(&common::run(
        "debugfs",
        ["-R".as_ref(), cmd.as_ref(), img.as_os_str()],
    ))
}

/// `Indirect levels` of `dir`'s index as `debugfs htree` dumps it; panics
/// when debugfs finds no index.
fn htree_levels(img: &Path, dir: &str) -> u32 {
    let out = debugfs(img, &format!("htree {dir}"));
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Indirect levels:"))
        .unwrap_or_else(|| panic!("debugfs htree {dir} shows no index:\n{out}"));
    line.trim().parse().unwrap()
}

/// Names (but `.` and `..`) and inodes of the live entries of `dir` as
/// `debugfs ls -p` lists them.
fn debugfs_names(img: &Path, dir: &str) -> BTreeMap<String, u32> {
    debugfs(img, &format!("ls -p {dir}"))
        .lines()
        .filter_map(|l| {
            // /ino/mode/uid/gid/name/size/
            let f: Vec<&str> = l.split('/').collect();
            (f.len() >= 7).then(|| (f[5].to_string(), f[1].parse().unwrap()))
        })
        // Entries with inode 0 (a removed first entry of a block, empty
        // blocks) are listed too: skipped.
        .filter(|(n, ino)| n != "." && n != ".." && *ino != 0)
        .collect()
}

/// Checks that `dir` of `img` holds exactly `want` (name -> inode): our
/// reader finds each name through the index (and none of `gone`), and
/// `debugfs ls` lists the same names.
fn check_names(
    img: &Path,
    dir: u32,
    dir_path: &str,
    want: &BTreeMap<String, u32>,
    gone: &[String],
) {
    let r = Ext3::open(FileDevice::open_read_only(img).unwrap()).unwrap();
    let inode = r.inode(dir).unwrap();
    assert!(
        inode.i_flags & EXT4_INDEX_FL != 0,
        "{dir_path} lost its index"
    );
    for (name, ino) in want {
        assert_eq!(
            r.htree_lookup(dir, &inode, name.as_bytes()).unwrap(),
            Some(Some(*ino)),
            "{name} through the index"
        );
    }
    for name in gone {
        assert_eq!(
            r.htree_lookup(dir, &inode, name.as_bytes()).unwrap(),
            Some(None),
            "{name} was removed"
        );
    }
    let listed: BTreeMap<String, u32> = r
        .read_dir(dir)
        .unwrap()
        .into_iter()
        .filter(|e| e.name != b"." && e.name != b"..")
        .map(|e| (String::from_utf8(e.name).unwrap(), e.ino))
        .collect();
    assert!(&listed == want, "readdir of {dir_path} differs");
    let by_debugfs = debugfs_names(img, dir_path);
    let extra: Vec<_> = by_debugfs
        .iter()
        .filter(|(n, i)| want.get(*n) != Some(*i))
        .take(5)
        .collect();
    let missing: Vec<_> = want
        .iter()
        .filter(|(n, i)| by_debugfs.get(*n) != Some(*i))
        .take(5)
        .collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "debugfs ls {dir_path}: {} names, {} expected; not expected: {extra:?}; not listed: {missing:?}",
        by_debugfs.len(),
        want.len()
    );
}

/// Name `i` (lengths vary so that entries are not all one size).
fn name(i: usize) -> String {
    format!("entry-{i:06}{}", &"abcdefghijklmnopqrstuvwx"[..i % 24])
}

/// Creates `n` names in a new directory, renames the first `renames` of
/// them within it, removes every second one; returns (directory inode,
/// remaining names, removed names).
fn churn(img: &Path, n: usize, renames: usize) -> (u32, BTreeMap<String, u32>, Vec<String>) {
    let w = open(img);
    let big = w.mkdir(ROOT, b"big", 0o755, ME).unwrap().ino;
    let mut names: Vec<(String, u32)> = (0..n)
        .map(|i| {
            let nm = name(i);
            let ino = w.create(big, nm.as_bytes(), 0o644, ME).unwrap().ino;
            (nm, ino)
        })
        .collect();
    for (i, e) in names.iter_mut().enumerate().take(renames) {
        let new = format!("renamed-{i}");
        w.rename(
            big,
            e.0.as_bytes(),
            big,
            new.as_bytes(),
            RenameFlags::default(),
        )
        .unwrap();
        e.0 = new;
    }
    let mut gone = Vec::new();
    let mut want = BTreeMap::new();
    for (i, (nm, ino)) in names.into_iter().enumerate() {
        if i % 2 == 0 {
            w.unlink(big, nm.as_bytes()).unwrap();
            gone.push(nm);
        } else {
            want.insert(nm, ino);
        }
    }
    // Lookups through the writer agree before the image is closed.
    for nm in want.keys().take(100) {
        assert!(w.lookup(big, nm.as_bytes()).is_ok());
    }
    w.unmount().unwrap();
    (big, want, gone)
}

#[test]
fn fifty_thousand_names_created_renamed_and_removed_keep_a_valid_htree_index() {
    let t = "fifty_thousand_names_created_renamed_and_removed_keep_a_valid_htree_index";
    if !common::have_peers(t, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    // Default ext4 (metadata_csum: dx_tail and dirent tails) and ext3
    // with dir_index, 4 KiB blocks.
    for kind in ["ext4", "ext3"] {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("big.img");
        mkfs(&img, kind, &["-b", "4096", "-N", "60000"], "256M");
        let (big, want, gone) = churn(&img, 50_000, 10_000);
        fsck_clean(&img);
        let levels = htree_levels(&img, "/big");
        eprintln!("{kind}: 50000 names, index depth {levels}");
        check_names(&img, big, "/big", &want, &gone);
    }
}

#[test]
fn a_one_kib_block_directory_grows_a_second_index_level() {
    let t = "a_one_kib_block_directory_grows_a_second_index_level";
    if !common::have_peers(t, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    // 1 KiB blocks: the root holds 123 leaves under metadata_csum, so
    // 8000 names need a second level.
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("small.img");
    mkfs(&img, "ext4", &["-b", "1024", "-N", "10000"], "64M");
    let (big, want, gone) = churn(&img, 8000, 2000);
    fsck_clean(&img);
    assert_eq!(htree_levels(&img, "/big"), 1);
    check_names(&img, big, "/big", &want, &gone);
}

#[test]
fn a_linear_directory_grown_past_one_block_becomes_indexed() {
    let t = "a_linear_directory_grown_past_one_block_becomes_indexed";
    if !common::have_peers(t, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    for (kind, bs, extra) in [
        ("ext4", "4096", &[][..]),
        ("ext3", "1024", &[][..]),
        ("ext4", "1024", &["-O", "^dir_index"][..]),
    ] {
        let indexed = extra.is_empty();
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("lin.img");
        mkfs(&img, kind, &[&["-b", bs][..], extra].concat(), "32M");
        let bs: u64 = bs.parse().unwrap();
        let w = open(&img);
        let d = w.mkdir(ROOT, b"d", 0o755, ME).unwrap().ino;
        let mut want = BTreeMap::new();
        let mut i = 0;
        // One block full, then a few more names.
        while w.getattr(d).unwrap().size == bs || i < 10 {
            let nm = name(i);
            let ino = w.create(d, nm.as_bytes(), 0o644, ME).unwrap().ino;
            want.insert(nm, ino);
            i += 1;
        }
        for _ in 0..5 {
            let nm = name(i);
            let ino = w.create(d, nm.as_bytes(), 0o644, ME).unwrap().ino;
            want.insert(nm, ino);
            i += 1;
        }
        w.unmount().unwrap();
        drop(w);
        fsck_clean(&img);
        let r = Ext3::open(FileDevice::open_read_only(&img).unwrap()).unwrap();
        let flags = r.inode(d).unwrap().i_flags;
        drop(r);
        assert_eq!(
            flags & EXT4_INDEX_FL != 0,
            indexed,
            "{kind} {extra:?}: indexed exactly with dir_index"
        );
        if indexed {
            assert_eq!(htree_levels(&img, "/d"), 0);
            check_names(&img, d, "/d", &want, &[]);
        } else {
            assert_eq!(debugfs_names(&img, "/d"), want);
        }
    }
}

#[test]
fn an_index_built_by_e2fsprogs_is_kept_through_our_inserts_and_removals() {
    let t = "an_index_built_by_e2fsprogs_is_kept_through_our_inserts_and_removals";
    if !common::have_peers(t, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    for (kind, extra) in [("ext4", &["-b", "4096"][..]), ("ext3", &["-b", "1024"][..])] {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("big")).unwrap();
        for i in 0..1500 {
            std::fs::write(tree.join("big").join(name(i)), b"x").unwrap();
        }
        let img = dir.path().join("k.img");
        common::fsimg::make_image(&tree, &img, kind, 64, extra);
        let levels_before = htree_levels(&img, "/big");
        let w = open(&img);
        let big = w.lookup(ROOT, b"big").unwrap().ino;
        let mut want: BTreeMap<String, u32> = (0..1500)
            .map(|i| (name(i), w.lookup(big, name(i).as_bytes()).unwrap().ino))
            .collect();
        let mut gone = Vec::new();
        for i in 1500..4000 {
            let nm = name(i);
            let ino = w.create(big, nm.as_bytes(), 0o644, ME).unwrap().ino;
            want.insert(nm, ino);
        }
        for i in (0..4000).step_by(3) {
            let nm = name(i);
            w.unlink(big, nm.as_bytes()).unwrap();
            want.remove(&nm);
            gone.push(nm);
        }
        // A subdirectory moved in and out: `..` of an indexed directory
        // and the parents' link counts.
        let sub = w.mkdir(ROOT, b"sub", 0o755, ME).unwrap().ino;
        w.rename(ROOT, b"sub", big, b"sub", RenameFlags::default())
            .unwrap();
        w.rename(big, b"sub", ROOT, b"sub-back", RenameFlags::default())
            .unwrap();
        w.rmdir(ROOT, b"sub-back").unwrap();
        let _ = sub;
        w.unmount().unwrap();
        drop(w);
        fsck_clean(&img);
        let levels = htree_levels(&img, "/big");
        assert!(
            levels >= levels_before,
            "{kind}: depth {levels_before} -> {levels}"
        );
        check_names(&img, big, "/big", &want, &gone);
    }
}

#[test]
fn an_indexed_directory_moved_exchanged_renamed_over_and_removed_stays_valid() {
    let t = "an_indexed_directory_moved_exchanged_renamed_over_and_removed_stays_valid";
    if !common::have_peers(t, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    // Moving an indexed directory rewrites `..`, which lives in the index
    // root (whose dx_tail checksum must follow under metadata_csum).
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("mv.img");
    mkfs(&img, "ext4", &["-b", "1024"], "16M");
    let w = open(&img);
    let a = w.mkdir(ROOT, b"a", 0o755, ME).unwrap().ino;
    let d = w.mkdir(ROOT, b"d", 0o755, ME).unwrap().ino;
    let mut want = BTreeMap::new();
    for i in 0..300 {
        let ino = w.create(d, name(i).as_bytes(), 0o644, ME).unwrap().ino;
        want.insert(name(i), ino);
    }
    w.rename(ROOT, b"d", a, b"d", RenameFlags::default())
        .unwrap();
    assert_eq!(w.lookup(d, b"..").unwrap().ino, a);
    // Renaming over an existing name of the indexed directory.
    let over = want.remove(&name(1)).unwrap();
    w.rename(
        d,
        name(1).as_bytes(),
        d,
        name(2).as_bytes(),
        RenameFlags::default(),
    )
    .unwrap();
    want.insert(name(2), over);
    // Exchanging it with a plain directory moves both `..` entries.
    let e = w.mkdir(ROOT, b"e", 0o755, ME).unwrap().ino;
    w.rename(
        a,
        b"d",
        ROOT,
        b"e",
        RenameFlags {
            exchange: true,
            ..RenameFlags::default()
        },
    )
    .unwrap();
    assert_eq!(w.lookup(d, b"..").unwrap().ino, ROOT);
    assert_eq!(w.lookup(e, b"..").unwrap().ino, a);
    w.rename(a, b"d", ROOT, b"e-back", RenameFlags::default())
        .unwrap();
    w.rename(ROOT, b"e", a, b"d", RenameFlags::default())
        .unwrap();
    // An indexed directory emptied name by name can be removed.
    let gone = w.mkdir(ROOT, b"gone", 0o755, ME).unwrap().ino;
    for i in 0..300 {
        w.create(gone, name(i).as_bytes(), 0o644, ME).unwrap();
    }
    assert!(w.getattr(gone).unwrap().flags & EXT4_INDEX_FL != 0);
    assert!(w.rmdir(ROOT, b"gone").is_err());
    for i in 0..300 {
        w.unlink(gone, name(i).as_bytes()).unwrap();
    }
    w.rmdir(ROOT, b"gone").unwrap();
    w.unmount().unwrap();
    drop(w);
    fsck_clean(&img);
    assert!(htree_levels(&img, "/a/d") == 0);
    check_names(&img, d, "/a/d", &want, &[]);
}

#[test]
fn a_readdir_under_way_while_leaves_split_misses_no_name() {
    let t = "a_readdir_under_way_while_leaves_split_misses_no_name";
    if !common::have_peers(t, &["mke2fs", "e2fsck"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("rd.img");
    mkfs(&img, "ext4", &["-b", "1024"], "32M");
    let w = open(&img);
    let d = w.mkdir(ROOT, b"d", 0o755, ME).unwrap().ino;
    for i in 0..2000 {
        w.create(d, name(i).as_bytes(), 0o644, ME).unwrap();
    }
    let mut seen = Vec::new();
    let mut cookie = 0;
    w.readdir(d, 0, &mut |e| {
        seen.push(e.name);
        cookie = e.next_cookie;
        seen.len() < 1000
    })
    .unwrap();
    let leaves_before = w.getattr(d).unwrap().size;
    for i in 2000..5000 {
        w.create(d, name(i).as_bytes(), 0o644, ME).unwrap();
    }
    assert!(w.getattr(d).unwrap().size > leaves_before, "no leaf split");
    w.readdir(d, cookie, &mut |e| {
        seen.push(e.name);
        true
    })
    .unwrap();
    for i in 0..2000 {
        let nm = name(i).into_bytes();
        assert!(seen.contains(&nm), "{} missed", name(i));
    }
    w.unmount().unwrap();
    drop(w);
    fsck_clean(&img);
}

#[test]
fn a_directory_whose_two_level_index_is_full_becomes_linear_and_stays_clean() {
    let t = "a_directory_whose_two_level_index_is_full_becomes_linear_and_stays_clean";
    if !common::have_peers(t, &["mke2fs", "e2fsck"]) {
        return;
    }
    // Without large_dir an index has two levels at most (Linux then
    // answers ENOSPC). 1 KiB blocks and 255-byte names (three per leaf)
    // fill 123 x 126 leaves after some tens of thousands of names; the
    // writer then clears the index and goes on linearly.
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("full.img");
    mkfs(&img, "ext4", &["-b", "1024", "-N", "70000"], "160M");
    let w = open(&img);
    let d = w.mkdir(ROOT, b"d", 0o755, ME).unwrap().ino;
    let long = |i: usize| format!("{i:07}{}", "n".repeat(248));
    let mut n = 0;
    while w.getattr(d).unwrap().flags & EXT4_INDEX_FL != 0 || n < 10 {
        assert!(n < 65_000, "the index never filled");
        w.create(d, long(n).as_bytes(), 0o644, ME).unwrap();
        n += 1;
    }
    eprintln!("index full after {n} names");
    assert!(n > 10_000, "the index was cleared early, after {n} names");
    for i in n..n + 20 {
        w.create(d, long(i).as_bytes(), 0o644, ME).unwrap();
    }
    for i in (0..n + 20).step_by(97) {
        w.unlink(d, long(i).as_bytes()).unwrap();
    }
    w.unmount().unwrap();
    drop(w);
    fsck_clean(&img);
    let r = Ext3::open(FileDevice::open_read_only(&img).unwrap()).unwrap();
    let names: std::collections::BTreeSet<Vec<u8>> =
        r.read_dir(d).unwrap().into_iter().map(|e| e.name).collect();
    for i in 0..n + 20 {
        assert_eq!(names.contains(long(i).as_bytes()), i % 97 != 0, "name {i}");
    }
}

#[test]
fn every_hash_version_signed_and_unsigned_gives_an_index_e2fsck_accepts() {
    let t = "every_hash_version_signed_and_unsigned_gives_an_index_e2fsck_accepts";
    if !common::have_peers(t, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    // s_def_hash_version picks the hash of new indexes; s_flags whether
    // name bytes are signed or unsigned chars, which changes the hash of
    // names with bytes above 0x7F (e2fsck checks every name's hash).
    for alg in ["legacy", "half_md4", "tea"] {
        for (flags, what) in [("1", "signed"), ("2", "unsigned")] {
            let dir = tempfile::tempdir().unwrap();
            let img = dir.path().join("h.img");
            mkfs(&img, "ext4", &["-b", "1024"], "16M");
            for cmd in [
                format!("ssv def_hash_version {alg}"),
                format!("ssv flags {flags}"),
            ] {
                let out = common::run(
                    "debugfs",
                    ["-w".as_ref(), "-R".as_ref(), cmd.as_ref(), img.as_os_str()],
                );
                assert!(out.status.success(), "debugfs {cmd}");
            }
            let w = open(&img);
            let d = w.mkdir(ROOT, b"d", 0o755, ME).unwrap().ino;
            let mut want = BTreeMap::new();
            for i in 0..400 {
                let nm = format!(
                    "n\u{e4}m\u{e9}-{i}-\u{fc}\u{df}{}",
                    &"\u{263a}"[..3 * (i % 2)]
                );
                let ino = w.create(d, nm.as_bytes(), 0o644, ME).unwrap().ino;
                want.insert(nm, ino);
            }
            w.unmount().unwrap();
            drop(w);
            fsck_clean(&img);
            let htree = debugfs(&img, "htree /d");
            let version = match alg {
                "legacy" => 0,
                "half_md4" => 1,
                _ => 2,
            };
            assert!(
                htree.contains(&format!("Hash Version: {version}")),
                "{alg} {what}:\n{htree}"
            );
            check_names(&img, d, "/d", &want, &[]);
        }
    }
}

#[test]
fn a_damaged_index_block_is_a_checksum_error_not_a_wrong_answer() {
    let t = "a_damaged_index_block_is_a_checksum_error_not_a_wrong_answer";
    if !common::have_peers(t, &["mke2fs", "debugfs"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("bad.img");
    mkfs(&img, "ext4", &["-b", "1024"], "16M");
    let w = open(&img);
    let d = w.mkdir(ROOT, b"d", 0o755, ME).unwrap().ino;
    for i in 0..300 {
        w.create(d, name(i).as_bytes(), 0o644, ME).unwrap();
    }
    w.unmount().unwrap();
    drop(w);
    let root_block: u64 = debugfs(&img, "bmap /d 0").trim().parse().unwrap();
    // The second index entry's hash.
    let at = root_block * 1024 + 0x28;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .open(&img)
        .unwrap();
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x40]).unwrap();
    drop(f);
    let r = Ext3::open(FileDevice::open_read_only(&img).unwrap()).unwrap();
    let err = r.lookup(d, name(7).as_bytes()).unwrap_err().to_string();
    assert!(err.contains("checksum"), "{err}");
}
