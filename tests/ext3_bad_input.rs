//! Bad input: truncated images, a corrupted superblock, a directory entry
//! with a bad length, a loop in a block map and an absurd size each give a
//! clear one-line error and exit 1, never a panic or a hang; randomly
//! damaged images never panic the library.

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use umlkit::block::MemDevice;
use umlkit::ext3::Ext3;

fn image(test: &str, dir: &Path, fs_type: &str, extra: &[&str]) -> Option<PathBuf> {
    if !common::have_peers(test, &["mke2fs", "debugfs", "dumpe2fs"]) {
        return None;
    }
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("dir")).unwrap();
    for i in 0..20 {
        std::fs::write(tree.join("dir").join(format!("file{i}")), format!("{i}\n")).unwrap();
    }
    std::fs::write(tree.join("small"), "small\n").unwrap();
    std::fs::create_dir(tree.join("many")).unwrap();
    for i in 0..300 {
        std::fs::write(tree.join("many").join(format!("entry-{i}")), "").unwrap();
    }
    std::fs::write(tree.join("big"), common::pattern(3, 600 * 1024)).unwrap();
    // Twelve separate extents: more than the inode holds, so an extent block.
    let frag = std::fs::File::create(tree.join("fragmented")).unwrap();
    for i in 0..12u64 {
        frag.write_all_at(&common::pattern(i, 1024), i * 64 * 1024)
            .unwrap();
    }
    drop(frag);
    let img = dir.join("image");
    let head = ["-q", "-F", "-t", fs_type];
    let mut args: Vec<&OsStr> = head.iter().map(OsStr::new).collect();
    args.extend(extra.iter().map(OsStr::new));
    args.extend([
        OsStr::new("-d"),
        tree.as_os_str(),
        img.as_os_str(),
        OsStr::new("8M"),
    ]);
    common::run_ok(common::which("mke2fs").unwrap(), args);
    Some(img)
}

/// Runs uml_fs and checks: exit 1, one line on stderr containing `want`.
fn fails_with(args: &[&OsStr], want: &str) {
    let out = common::umlkit("uml_fs", args);
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "uml_fs {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(want),
        "uml_fs {args:?}: want {want:?} in {err}"
    );
}

fn debugfs(img: &Path, cmd: &str, write: bool) -> String {
    let mut args: Vec<&OsStr> = Vec::new();
    if write {
        args.push(OsStr::new("-w"));
    }
    args.extend([OsStr::new("-R"), OsStr::new(cmd), img.as_os_str()]);
    common::stdout(&common::run_ok(common::which("debugfs").unwrap(), args))
}

fn poke(img: &Path, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

#[test]
fn truncated_image_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = image("truncated_image", dir.path(), "ext3", &[]) else {
        return;
    };
    let cut = dir.path().join("cut");
    let bytes = std::fs::read(&img).unwrap();
    std::fs::write(&cut, &bytes[..1 << 20]).unwrap();
    fails_with(&[OsStr::new("ls"), cut.as_os_str()], "truncated");
    std::fs::write(&cut, &bytes[..1500]).unwrap();
    fails_with(&[OsStr::new("info"), cut.as_os_str()], "I/O error");
}

#[test]
fn corrupted_superblock_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = image("corrupted_superblock", dir.path(), "ext3", &[]) else {
        return;
    };
    poke(&img, 1024 + 0x18, &40u32.to_le_bytes());
    fails_with(&[OsStr::new("info"), img.as_os_str()], "s_log_block_size");
    poke(&img, 1024 + 0x38, &[0, 0]);
    fails_with(
        &[OsStr::new("info"), img.as_os_str()],
        "not an ext2/3/4 filesystem",
    );
}

#[test]
fn unsupported_incompatible_feature_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = image("unsupported_feature", dir.path(), "ext3", &[]) else {
        return;
    };
    let mut w = [0u8; 4];
    std::fs::File::open(&img)
        .unwrap()
        .read_exact_at(&mut w, 1024 + 0x60)
        .unwrap();
    let v = u32::from_le_bytes(w) | 0x10000; // encrypt
    poke(&img, 1024 + 0x60, &v.to_le_bytes());
    fails_with(
        &[OsStr::new("ls"), img.as_os_str()],
        "unsupported feature: encrypt",
    );
}

#[test]
fn directory_entry_with_a_bad_length_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = image("bad_dirent", dir.path(), "ext2", &["-b", "1024"]) else {
        return;
    };
    let blk: u64 = debugfs(&img, "bmap /dir 0", false).trim().parse().unwrap();
    // The first entry's rec_len becomes 13 (not a multiple of 4).
    poke(&img, blk * 1024 + 4, &13u16.to_le_bytes());
    fails_with(
        &[OsStr::new("ls"), img.as_os_str(), OsStr::new("/dir")],
        "bad rec_len 13",
    );
}

#[test]
fn loop_in_a_block_map_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = image("block_map_loop", dir.path(), "ext2", &["-b", "1024"]) else {
        return;
    };
    let stat = debugfs(&img, "stat /big", false);
    let dind: u64 = stat
        .split("(DIND):")
        .nth(1)
        .expect("big has a double-indirect block")
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The double-indirect block's first entry points at itself.
    poke(&img, dind * 1024, &(dind as u32).to_le_bytes());
    fails_with(
        &[OsStr::new("cat"), img.as_os_str(), OsStr::new("/big")],
        "block map loops",
    );
    // extract reports the broken file, copies the rest and exits 1.
    let dest = dir.path().join("out");
    let out = common::umlkit(
        "uml_fs",
        [
            OsStr::new("extract"),
            img.as_os_str(),
            OsStr::new("/"),
            dest.as_os_str(),
        ],
    );
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("uml_fs: extract: /big: ") && err.contains("block map loops"),
        "{err}"
    );
    assert!(err.contains("1 file(s) could not be read"), "{err}");
    assert!(!dest.join("big").exists());
    assert_eq!(
        std::fs::read_to_string(dest.join("dir/file7")).unwrap(),
        "7\n"
    );
}

#[test]
fn extents_past_the_last_logical_block_or_the_filesystem_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = image("extent_ranges", dir.path(), "ext4", &["-b", "1024"]) else {
        return;
    };
    let pristine = std::fs::read(&img).unwrap();
    // i_block words 3..6 are the root's first extent: ee_block,
    // ee_len | ee_start_hi << 16, ee_start_lo.
    debugfs(&img, "sif /small block[3] 0xfffffff0", true);
    debugfs(&img, "sif /small block[4] 17", true);
    fails_with(
        &[OsStr::new("cat"), img.as_os_str(), OsStr::new("/small")],
        "extent 0 at block 4294967280 with 17 blocks runs past logical block 4294967295",
    );
    // A 48-bit start at the top: start + len would pass 2^48 and the
    // filesystem; the read stops at the check, not at a wrapped offset.
    std::fs::write(&img, &pristine).unwrap();
    debugfs(&img, "sif /small block[4] 0xffff0001", true);
    debugfs(&img, "sif /small block[5] 0xffffffff", true);
    fails_with(
        &[OsStr::new("cat"), img.as_os_str(), OsStr::new("/small")],
        "logical block 0 maps to block 281474976710655, outside the filesystem",
    );
}

#[test]
fn absurd_inode_size_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = image("absurd_size", dir.path(), "ext2", &["-b", "1024"]) else {
        return;
    };
    debugfs(&img, "sif /small size 0x7fffffffffffff", true);
    let start = Instant::now();
    fails_with(
        &[OsStr::new("cat"), img.as_os_str(), OsStr::new("/small")],
        "exceeds the largest file",
    );
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn randomly_damaged_images_never_panic_the_library() {
    let dir = tempfile::tempdir().unwrap();
    for (n, (fs_type, extra)) in [("ext2", &["-b", "1024"][..]), ("ext4", &[][..])]
        .into_iter()
        .enumerate()
    {
        let sub = dir.path().join(fs_type);
        std::fs::create_dir(&sub).unwrap();
        let Some(img) = image("random_damage", &sub, fs_type, extra) else {
            return;
        };
        // Index /many, so that damage also hits hash-tree blocks.
        let r = common::run(
            common::which("e2fsck").unwrap(),
            ["-fyD".as_ref(), img.as_os_str()],
        );
        assert!(r.status.code().unwrap_or(99) <= 1);
        let clean = std::fs::read(&img).unwrap();
        let mut rng = common::fsimg::Rng::new(n as u64 + 99);
        let start = Instant::now();
        for _ in 0..250 {
            let mut bytes = clean.clone();
            // Damage the metadata area: superblock, descriptors, bitmaps,
            // inode tables and the first directory blocks.
            for _ in 0..1 + rng.below(20) {
                let at = 1024 + rng.below(600 * 1024) as usize;
                bytes[at] = rng.next() as u8;
            }
            let Ok(fs) = Ext3::open(MemDevice::new(bytes)) else {
                continue;
            };
            for name in [&b"/many/entry-150"[..], b"/many/absent", b"/dir/file3"] {
                let _ = fs.resolve(name, true);
            }
            let mut buf = vec![0u8; 64 * 1024];
            let _ = fs.walk(umlkit::ext3::ROOT_INO, b"/", |node| {
                let _ = fs.read(node.meta.ino, 0, &mut buf);
                let _ = fs.readlink(node.meta.ino);
                let _ = fs.listxattr(node.meta.ino);
                Ok(true)
            });
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "damaged images are read too slowly"
        );
    }
}

#[test]
fn metadata_checksums_of_superblock_and_inodes_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = image(
        "metadata_csum",
        dir.path(),
        "ext4",
        &["-O", "metadata_csum", "-b", "1024", "-I", "256"],
    ) else {
        return;
    };
    // The inode of /small, in group 0's inode table.
    let ino: u64 = debugfs(&img, "stat /small", false)
        .split("Inode:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let out = common::run_ok(common::which("dumpe2fs").unwrap(), [img.as_os_str()]);
    let text = common::stdout(&out);
    let table: u64 = text
        .split("Inode table at ")
        .nth(1)
        .unwrap()
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(ino < 2048, "/small is in group 0");
    // One bit of i_mtime changes; the checksum no longer matches.
    let at = table * 1024 + (ino - 1) * 256 + 0x10;
    let mut byte = [0u8; 1];
    std::fs::File::open(&img)
        .unwrap()
        .read_exact_at(&mut byte, at)
        .unwrap();
    poke(&img, at, &[byte[0] ^ 1]);
    fails_with(
        &[OsStr::new("stat"), img.as_os_str(), OsStr::new("/small")],
        &format!("inode {ino}: inode checksum"),
    );
    // The rest still reads.
    let ok = common::umlkit(
        "uml_fs",
        [OsStr::new("cat"), img.as_os_str(), OsStr::new("/dir/file3")],
    );
    assert_eq!(common::stdout(&ok), "3\n");
    // One changed byte in a name of /dir breaks its block's checksum.
    let blk: u64 = debugfs(&img, "bmap /dir 0", false).trim().parse().unwrap();
    let mut block = vec![0u8; 1024];
    std::fs::File::open(&img)
        .unwrap()
        .read_exact_at(&mut block, blk * 1024)
        .unwrap();
    let name_at = block
        .windows(5)
        .position(|w| w == b"file1")
        .expect("an entry named file1*");
    poke(&img, blk * 1024 + name_at as u64, b"F");
    fails_with(
        &[OsStr::new("ls"), img.as_os_str(), OsStr::new("/dir")],
        "directory block checksum",
    );
    // A changed byte in the extent block of /fragmented breaks its checksum.
    let stat = debugfs(&img, "stat /fragmented", false);
    let etb: u64 = stat
        .split("(ETB0):")
        .nth(1)
        .expect("/fragmented has an extent block")
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let good = common::umlkit(
        "uml_fs",
        [
            OsStr::new("cat"),
            img.as_os_str(),
            OsStr::new("/fragmented"),
        ],
    );
    assert!(good.status.success(), "{}", common::stderr(&good));
    poke(&img, etb * 1024 + 12 + 4, &[0xEE]);
    fails_with(
        &[
            OsStr::new("cat"),
            img.as_os_str(),
            OsStr::new("/fragmented"),
        ],
        "extent block checksum",
    );
    // A changed label breaks the superblock checksum.
    poke(&img, 1024 + 0x78, b"x");
    fails_with(
        &[OsStr::new("info"), img.as_os_str()],
        "superblock checksum",
    );
}

/// The writer over `img`, opened as an editing tool opens it.
fn writer(img: &Path) -> umlkit::ext3::write::Writer<umlkit::block::FileDevice> {
    umlkit::ext3::write::Writer::open(
        umlkit::block::FileDevice::open_read_write(img).unwrap(),
        umlkit::ext3::write::WriteOptions::default(),
    )
    .unwrap()
}

/// "Free blocks:" / "Free inodes:" of `dumpe2fs -h`.
fn dumpe2fs_free(img: &Path) -> (u64, u64) {
    let out = common::stdout(&common::run_ok(
        common::which("dumpe2fs").unwrap(),
        [OsStr::new("-h"), img.as_os_str()],
    ));
    let field = |name: &str| -> u64 {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..].trim().parse().unwrap()
    };
    (field("Free blocks:"), field("Free inodes:"))
}

#[test]
fn writer_counts_free_blocks_and_inodes_from_the_groups_not_a_forged_superblock() {
    use umlkit::fs::{InodeFs, Owner, FALLOC_FL_KEEP_SIZE};
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = image("forged_free_counts", dir.path(), "ext4", &[]) else {
        return;
    };
    let before = dumpe2fs_free(&img);
    // Superblock totals of zero: allocation used to take them below zero
    // (u64 and u32 underflow, a panic with overflow checks; the wrapped
    // counts went back to disk) and fallocate saw no free space at all.
    debugfs(&img, "ssv free_blocks_count 0", true);
    debugfs(&img, "ssv free_inodes_count 0", true);
    let w = writer(&img);
    let st = w.statfs().unwrap();
    assert_eq!((st.free_blocks, st.free_inodes), before);
    let me = Owner { uid: 0, gid: 0 };
    let f = w.create(2, b"new", 0o644, me).unwrap().ino;
    assert_eq!(w.write(f, 0, &common::pattern(9, 5000)).unwrap(), 5000);
    w.fallocate(f, 0, 1 << 20, FALLOC_FL_KEEP_SIZE).unwrap();
    w.unmount().unwrap();
    drop(w);
    common::fsck_clean(&img);
    let after = dumpe2fs_free(&img);
    assert!(after.0 < before.0 && after.1 == before.1 - 1, "{after:?}");
}

#[test]
fn writer_rejects_an_itable_unused_larger_than_the_group() {
    use umlkit::fs::{InodeFs, Owner};
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = image("forged_itable_unused", dir.path(), "ext4", &[]) else {
        return;
    };
    // More unused inode table entries than the group has inodes: the
    // used part (s_inodes_per_group - bg_itable_unused) went below zero.
    // debugfs recomputes the descriptor's checksum.
    debugfs(&img, "set_bg 0 itable_unused 65535", true);
    debugfs(&img, "set_bg 0 flags 0", true);
    let desc_block: u64 = {
        let out = common::stdout(&common::run_ok(
            common::which("dumpe2fs").unwrap(),
            [img.as_os_str()],
        ));
        let line = out
            .lines()
            .find(|l| l.contains("Group descriptors at"))
            .unwrap();
        let at = line.split("Group descriptors at ").nth(1).unwrap();
        at.split('-').next().unwrap().trim().parse().unwrap()
    };
    let w = writer(&img);
    let me = Owner { uid: 0, gid: 0 };
    let err = w.create(2, b"new", 0o644, me).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Input/output error: corrupt metadata (block {desc_block})")
    );
}

#[test]
fn punching_a_file_whose_size_is_near_2_pow_64_does_not_panic() {
    use umlkit::fs::{InodeFs, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE};
    let dir = tempfile::tempdir().unwrap();
    let Some(img) = image("punch_huge_size", dir.path(), "ext4", &[]) else {
        return;
    };
    // The end of the punch was rounded up to the last block of i_size in
    // u64, which wrapped to 0: zeroing "from 4096 to 0" then indexed far
    // past the block (a panic in release builds).
    let big = Ext3::open(umlkit::block::FileDevice::open_read_only(&img).unwrap())
        .unwrap()
        .lookup(2, b"big")
        .unwrap();
    debugfs(&img, "sif /big size 0xffffffffffffffff", true);
    // The reader refuses the size ("exceeds the largest file"); fallocate
    // works on the raw record.
    let w = writer(&img);
    let punch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    w.fallocate(big, 4096, 4096, punch).unwrap();
    w.unmount().unwrap();
    drop(w);
    // The punched blocks (1 KiB blocks: 4 to 7 of the file) are a hole.
    let stat = debugfs(&img, "stat /big", false);
    assert!(stat.contains("(0-3):"), "{stat}");
    assert!(stat.contains("(8-"), "{stat}");
}

/// Random operations (names, offsets, sizes, fallocate modes, attributes)
/// on writer `w`, drawn from `rng`; an error is as good as success, only
/// a panic or a hang counts. Returns how many succeeded.
fn random_ops(
    w: &umlkit::ext3::write::Writer<MemDevice>,
    rng: &mut common::fsimg::Rng,
    ops: usize,
) -> usize {
    use umlkit::fs::{InodeFs, Owner, RenameFlags, SetAttr, XattrMode};
    let me = Owner { uid: 0, gid: 0 };
    const NAMES: [&[u8]; 9] = [
        b"a",
        b"b",
        b"dir",
        b"many",
        b"big",
        b"small",
        b"fragmented",
        b"lost+found",
        b"file3",
    ];
    // Offsets around the edges: block and map boundaries, 2^32 blocks,
    // the largest sizes.
    const OFFSETS: [u64; 10] = [
        0,
        1000,
        12 * 1024,
        70_000,
        268 * 1024,
        1 << 20,
        (1 << 32) - 1,
        1 << 40,
        (1 << 44) - 3,
        u64::MAX - 10,
    ];
    let mut dirs = vec![2u32];
    let mut files = Vec::new();
    let pick = |rng: &mut common::fsimg::Rng, v: &[u32]| v[rng.below(v.len() as u64) as usize];
    let mut ok = 0;
    for _ in 0..ops {
        let name = NAMES[rng.below(NAMES.len() as u64) as usize];
        let parent = pick(rng, &dirs);
        let off = OFFSETS[rng.below(OFFSETS.len() as u64) as usize].saturating_add(rng.below(5000));
        let done = match rng.below(14) {
            0 => w
                .create(parent, name, 0o644, me)
                .map(|m| files.push(m.ino))
                .is_ok(),
            1 => w
                .mkdir(parent, name, 0o755, me)
                .map(|m| dirs.push(m.ino))
                .is_ok(),
            2 | 3 => w
                .lookup(parent, name)
                .map(|m| {
                    if m.file_type == umlkit::ext3::FileType::Directory {
                        dirs.push(m.ino);
                    } else {
                        files.push(m.ino);
                    }
                })
                .is_ok(),
            4 | 5 if !files.is_empty() => {
                let data = common::pattern(rng.next(), rng.below(20_000) as usize);
                w.write(pick(rng, &files), off, &data).is_ok()
            }
            6 if !files.is_empty() => {
                let size = Some(off);
                let changes = SetAttr {
                    size,
                    ..Default::default()
                };
                w.setattr(pick(rng, &files), &changes).is_ok()
            }
            7 if !files.is_empty() => {
                let mode = [0, 1, 3][rng.below(3) as usize];
                let len = rng.below(1 << 21);
                w.fallocate(pick(rng, &files), off, len, mode).is_ok()
            }
            8 => {
                let to = pick(rng, &dirs);
                let new = NAMES[rng.below(NAMES.len() as u64) as usize];
                w.rename(parent, name, to, new, RenameFlags::default())
                    .is_ok()
            }
            9 => w.unlink(parent, name).is_ok() || w.rmdir(parent, name).is_ok(),
            10 => {
                let all: Vec<u32> = dirs.iter().chain(&files).copied().collect();
                let value = vec![b'v'; rng.below(3000) as usize];
                let attr = [&b"user.x"[..], b"user.long-name", b"trusted.t"][rng.below(3) as usize];
                w.setxattr(pick(rng, &all), attr, &value, XattrMode::Any)
                    .is_ok()
            }
            11 => {
                let target = vec![b'a'; 1 + rng.below(300) as usize];
                w.symlink(parent, name, &target, me).is_ok()
            }
            12 if !files.is_empty() => w.link(pick(rng, &files), parent, name).is_ok(),
            _ => {
                let mut buf = vec![0u8; 9000];
                w.readdir(parent, rng.below(5000), &mut |_| true).is_ok()
                    && files
                        .first()
                        .is_none_or(|&f| w.read(f, off, &mut buf).is_ok())
            }
        };
        ok += usize::from(done);
    }
    let _ = w.unmount();
    ok
}

/// How long the writer's random-operation loop runs: `WRITER_FUZZ_SECS`
/// (for a long run, e.g. built with overflow checks), else a few hundred
/// rounds.
fn writer_fuzz_budget() -> Option<Duration> {
    std::env::var("WRITER_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
}

#[test]
fn random_operations_on_damaged_images_never_panic_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let budget = writer_fuzz_budget();
    let (mut rounds, mut opened, mut ops_ok) = (0u64, 0u64, 0usize);
    let start = Instant::now();
    for (n, (fs_type, extra)) in [("ext2", &["-b", "1024"][..]), ("ext4", &[][..])]
        .into_iter()
        .enumerate()
    {
        let sub = dir.path().join(fs_type);
        std::fs::create_dir(&sub).unwrap();
        let Some(img) = image("writer_random_ops", &sub, fs_type, extra) else {
            return;
        };
        let clean = std::fs::read(&img).unwrap();
        let fs_start = Instant::now();
        for round in 0u64.. {
            match budget {
                Some(b) if fs_start.elapsed() >= b / 2 => break,
                None if round >= 150 => break,
                _ => {}
            }
            let seed = ((n as u64) << 32) | round;
            let mut rng = common::fsimg::Rng::new(seed);
            let mut bytes = clean.clone();
            // A third of the rounds on the clean image; the others with
            // damage in the metadata area (superblock, descriptors,
            // bitmaps, inode tables, first directory blocks).
            if round % 3 != 0 {
                for _ in 0..1 + rng.below(20) {
                    let at = 1024 + rng.below(600 * 1024) as usize;
                    bytes[at] = rng.next() as u8;
                }
            }
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let opts = umlkit::ext3::write::WriteOptions::default();
                let w = umlkit::ext3::write::Writer::open(MemDevice::new(bytes), opts).ok()?;
                Some(random_ops(&w, &mut rng, 60))
            }));
            let Ok(done) = run else {
                panic!("{fs_type} round {round} (seed {seed:#x}) panicked");
            };
            // The clean image always opens.
            assert!(done.is_some() || round % 3 != 0, "{fs_type} round {round}");
            opened += u64::from(done.is_some());
            ops_ok += done.unwrap_or(0);
            rounds += 1;
        }
    }
    eprintln!(
        "writer random operations: {rounds} rounds in {:?}, {opened} images opened, \
         {ops_ok} operations succeeded",
        start.elapsed()
    );
    // Most operations on the clean images work: the loop exercises the
    // writer, not only its error paths.
    assert!(ops_ok as u64 > opened * 10, "{ops_ok} of {opened}");
}

#[test]
fn a_damaged_orphan_file_is_a_clear_error_when_opening_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let extra = ["-b", "1024", "-O", "orphan_file"];
    let Some(img) = image("orphan_file", dir.path(), "ext4", &extra) else {
        return;
    };
    // As a kernel that crashed leaves it: the orphan file is read.
    debugfs(&img, "feature orphan_present", true);
    let pristine = std::fs::read(&img).unwrap();
    let blocks = debugfs(&img, "blocks <12>", false);
    let first: u64 = blocks.split_whitespace().next().unwrap().parse().unwrap();
    let want = format!("corrupt metadata (block {first})");
    let chmod = |img: &Path| {
        [
            OsStr::new("chmod").to_os_string(),
            img.as_os_str().to_os_string(),
            "755".into(),
            "/small".into(),
        ]
    };
    // The tail's magic, then an entry the checksum does not cover.
    poke(&img, first * 1024 + 1016, b"XXXX");
    let args = chmod(&img);
    fails_with(
        &args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>(),
        &want,
    );
    std::fs::write(&img, &pristine).unwrap();
    poke(&img, first * 1024, &13u32.to_le_bytes());
    fails_with(
        &args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>(),
        &want,
    );
    // No orphan file inode (the superblock is block 1), then one larger
    // than the 512 blocks Linux reads.
    std::fs::write(&img, &pristine).unwrap();
    debugfs(&img, "ssv orphan_file_inum 0", true);
    fails_with(
        &args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>(),
        "corrupt metadata (block 1)",
    );
    std::fs::write(&img, &pristine).unwrap();
    debugfs(&img, "sif <12> size 1048576", true);
    fails_with(
        &args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>(),
        "corrupt metadata (inode 12)",
    );
    // Undamaged, it opens, and the flag is cleared.
    std::fs::write(&img, &pristine).unwrap();
    let out = common::umlkit("uml_fs", &args);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(!debugfs(&img, "feature", false).contains("orphan_present"));
    common::fsck_clean(&img);
}
