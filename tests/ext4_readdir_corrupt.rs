//! Readdir of an indexed directory whose index is damaged: a root that
//! `dx_probe` would refuse (unknown hash, wrong limit) makes the directory
//! list block by block; bad index nodes (limits, counts, cycles, blocks
//! past the end) give a `Corrupt` error; an index that names leaves again
//! and again, or random bytes in the index, never make a listing panic,
//! hang, return an entry twice or hand out a cookie below an earlier one.

mod common;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use umlkit::block::FileDevice;
use umlkit::ext3::dx_readdir::END;
use umlkit::ext3::Ext3;

const BS: u64 = 1024;

/// An ext3 image with 1 KiB blocks and `/big`, an indexed directory of
/// `n` names (two index levels from about 6500), in `dir`.
fn image(dir: &Path, n: usize) -> PathBuf {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("big")).unwrap();
    for i in 0..n {
        std::fs::write(tree.join(format!("big/name-{i:05}")), b"").unwrap();
    }
    let img = dir.join("good.img");
    common::fsimg::make_image(&tree, &img, "ext3", 16, &["-b", "1024", "-N", "10000"]);
    img
}

/// The device block of block `lblk` of `/big`.
fn bmap(img: &Path, lblk: usize) -> u64 {
    let cmd = format!("bmap /big {lblk}");
    let out = common::stdout(&common::run(
        "debugfs",
        ["-R".as_ref(), cmd.as_ref(), img.as_os_str()],
    ));
    out.trim().parse().unwrap()
}

/// The number of blocks of `/big`.
fn dir_blocks(img: &Path) -> u64 {
    let fs = Ext3::open(FileDevice::open_read_only(img).unwrap()).unwrap();
    let big = fs.resolve(b"/big", true).unwrap();
    fs.inode(big).unwrap().i_size / BS
}

fn read(img: &Path, at: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0; len];
    std::fs::File::open(img)
        .unwrap()
        .read_exact_at(&mut b, at)
        .unwrap();
    b
}

/// A copy of `good` with `bytes` written at byte `off` of directory block
/// `lblk` of `/big`.
fn damaged(good: &Path, name: &str, lblk: usize, off: u64, bytes: &[u8]) -> PathBuf {
    let img = good.with_file_name(name);
    std::fs::copy(good, &img).unwrap();
    let at = bmap(good, lblk) * BS + off;
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    f.write_all_at(bytes, at).unwrap();
    img
}

/// Lists `/big` in one go: (name, cookie) pairs, or the error.
fn list(img: &Path) -> Result<Vec<(Vec<u8>, u64)>, umlkit::ext3::Error> {
    let fs = Ext3::open(FileDevice::open_read_only(img).unwrap()).unwrap();
    let big = fs.resolve(b"/big", true).unwrap();
    let mut out = Vec::new();
    fs.readdir_with(big, 0, |e, c| {
        out.push((e.name, c));
        true
    })?;
    Ok(out)
}

/// Every name of `/big` once, and cookies that never go back.
fn check_sound(listing: &[(Vec<u8>, u64)], n: usize, what: &str) {
    let mut names: Vec<&[u8]> = listing.iter().map(|(n, _)| &n[..]).collect();
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "{what}: a name came twice");
    assert!(names.len() <= n + 2, "{what}");
    assert!(
        listing.windows(2).all(|w| w[0].1 <= w[1].1),
        "{what}: cookies go back"
    );
}

/// Root fields (`struct dx_root`): hash version, limit, first entries.
const HASH_VERSION: u64 = 0x1C;
const ROOT_LIMIT: u64 = 0x20;
const ROOT_COUNT: u64 = 0x22;
const ROOT_ENTRY1_BLOCK: u64 = 0x2C;
/// Node fields (`struct dx_node`).
const NODE_LIMIT: u64 = 0x08;
const NODE_COUNT: u64 = 0x0A;
const NODE_ENTRY0_BLOCK: u64 = 0x0C;

#[test]
fn an_index_root_linux_would_refuse_makes_the_directory_list_block_by_block() {
    let test = "an_index_root_linux_would_refuse_makes_the_directory_list_block_by_block";
    if !common::have_peers(test, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let n = 500;
    let good = image(tmp.path(), n);
    let sound = list(&good).unwrap();
    assert_eq!(sound.len(), n + 2);
    assert!(sound.iter().any(|(_, c)| *c > 1 << 32), "hash cookies");
    for (name, off, bytes) in [
        ("hash.img", HASH_VERSION, &[9u8][..]),
        ("limit.img", ROOT_LIMIT, &[7, 0][..]),
        ("count.img", ROOT_COUNT, &[0, 0][..]),
    ] {
        let img = damaged(&good, name, 0, off, bytes);
        let listing = list(&img).unwrap();
        assert_eq!(listing.len(), n + 2, "{name}");
        check_sound(&listing, n, name);
        // Block order: byte offsets, within the directory.
        let size = dir_blocks(&img) * BS;
        assert!(listing.iter().all(|(_, c)| *c <= size), "{name}");
    }
}

#[test]
fn bad_index_nodes_give_corrupt_errors() {
    let test = "bad_index_nodes_give_corrupt_errors";
    if !common::have_peers(test, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let good = image(tmp.path(), 8000);
    let root = read(&good, bmap(&good, 0) * BS, 0x40);
    assert_eq!(root[0x1E], 1, "two index levels");
    let node = usize::try_from(u32::from_le_bytes(root[0x24..0x28].try_into().unwrap())).unwrap();
    let past_end = u32::try_from(dir_blocks(&good)).unwrap().to_le_bytes();
    for (name, lblk, off, bytes) in [
        ("node-limit.img", node, NODE_LIMIT, &[5u8, 0][..]),
        ("node-count0.img", node, NODE_COUNT, &[0, 0][..]),
        ("node-count.img", node, NODE_COUNT, &[0xff, 0][..]),
        (
            "node-to-root.img",
            node,
            NODE_ENTRY0_BLOCK,
            &[0, 0, 0, 0][..],
        ),
        ("node-to-node.img", 0, ROOT_ENTRY1_BLOCK, &root[0x24..0x28]),
        ("past-end.img", node, NODE_ENTRY0_BLOCK, &past_end[..]),
    ] {
        let img = damaged(&good, name, lblk, off, bytes);
        match list(&img) {
            Err(e) => assert!(e.is_corrupt(), "{name}: {e}"),
            Ok(l) => panic!("{name}: listed {} entries", l.len()),
        }
    }
}

#[test]
fn an_index_naming_leaves_again_and_again_lists_each_name_once() {
    let test = "an_index_naming_leaves_again_and_again_lists_each_name_once";
    if !common::have_peers(test, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let n = 800;
    let good = image(tmp.path(), n);
    let root = read(&good, bmap(&good, 0) * BS, BS as usize);
    assert_eq!(root[0x1E], 0, "one index level");
    // Every root entry names leaf 1; the hashes stay as they were.
    let count = usize::from(u16::from_le_bytes([root[0x22], root[0x23]]));
    let mut patched = root.clone();
    for i in 0..count {
        patched[0x24 + 8 * i..0x28 + 8 * i].copy_from_slice(&1u32.to_le_bytes());
    }
    let img = damaged(&good, "same-leaf.img", 0, 0, &patched);
    let listing = list(&img).unwrap();
    check_sound(&listing, n, "same-leaf");
    assert_eq!(listing.last().unwrap().1, END);
}

#[test]
fn random_bytes_in_an_index_never_make_readdir_panic_hang_or_repeat() {
    let test = "random_bytes_in_an_index_never_make_readdir_panic_hang_or_repeat";
    if !common::have_peers(test, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let n = 8000;
    let good = image(tmp.path(), n);
    let root = read(&good, bmap(&good, 0) * BS, 0x40);
    assert_eq!(root[0x1E], 1, "two index levels");
    let node = usize::try_from(u32::from_le_bytes(root[0x24..0x28].try_into().unwrap())).unwrap();
    let mut rng = common::fsimg::Rng::new(0x5eed);
    let (mut errors, mut listed) = (0, 0);
    for round in 0..150 {
        let (lblk, base) = if rng.below(2) == 0 {
            (0, 0x1C)
        } else {
            (node, 0x08)
        };
        let off = base + rng.below(48);
        let byte = u8::try_from(rng.below(256)).unwrap();
        let img = damaged(&good, "random.img", lblk, off, &[byte]);
        match list(&img) {
            Ok(l) => {
                check_sound(
                    &l,
                    n,
                    &format!("round {round}: block {lblk} byte {off:#x} = {byte:#x}"),
                );
                listed += 1;
            }
            Err(e) => {
                assert!(e.is_corrupt(), "round {round}: {e}");
                errors += 1;
            }
        }
    }
    assert_eq!(errors + listed, 150);
}
