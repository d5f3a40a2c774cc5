//! The ext3 library against the real e2fsprogs: random trees are turned
//! into ext2/ext3/ext4 images with `mke2fs -d` (big directories indexed
//! by `e2fsck -fyD`), and every file's content and metadata read by umlkit
//! must equal the source tree and what `debugfs stat` reports.

mod common;

use common::fsimg::{debugfs_stats, make_image, random_tree, tree_paths, TreeOptions};
use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use umlkit::block::FileDevice;
use umlkit::ext3::inode::{EXT4_INDEX_FL, EXT4_INLINE_DATA_FL};
use umlkit::ext3::{Ext3, FileType};

fn image_path(root: &Path, p: &Path) -> Vec<u8> {
    let rel = p.strip_prefix(root).unwrap();
    let mut v = b"/".to_vec();
    v.extend_from_slice(rel.as_os_str().as_bytes());
    v
}

fn read_all(fs: &Ext3<FileDevice>, ino: u32, chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        let n = fs.read(ino, out.len() as u64, &mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Compares the image with the tree it was made from; returns the inodes
/// seen and whether an indexed (htree) directory was among them.
fn compare_with_tree(fs: &Ext3<FileDevice>, root: &Path) -> (Vec<u32>, bool) {
    let mut inodes = BTreeSet::new();
    let mut saw_htree = false;
    for (n, p) in tree_paths(root).iter().enumerate() {
        let ip = image_path(root, p);
        let shown = String::from_utf8_lossy(&ip).into_owned();
        let ino = fs
            .resolve(&ip, false)
            .unwrap_or_else(|e| panic!("{shown}: {e}"));
        inodes.insert(ino);
        let m = fs.getattr(ino).unwrap();
        let h = p.symlink_metadata().unwrap();
        if p != root {
            assert_eq!(m.mode(), h.mode(), "{shown}: mode");
            assert_eq!((m.uid, m.gid), (h.uid(), h.gid()), "{shown}: owner");
            assert_eq!(m.mtime.sec, h.mtime(), "{shown}: mtime");
        }
        match m.file_type {
            FileType::Directory => {
                saw_htree |= m.flags & EXT4_INDEX_FL != 0;
                let mut want: Vec<Vec<u8>> = std::fs::read_dir(p)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().as_bytes().to_vec())
                    .collect();
                let mut got: Vec<Vec<u8>> = fs
                    .read_dir(ino)
                    .unwrap()
                    .into_iter()
                    .map(|e| e.name)
                    .filter(|n| n != b"." && n != b".." && !(p == root && n == b"lost+found"))
                    .collect();
                want.sort();
                got.sort();
                assert_eq!(got, want, "{shown}: entries");
            }
            FileType::Regular => {
                assert_eq!(m.nlink as u64, h.nlink(), "{shown}: links");
                assert_eq!(m.size, h.len(), "{shown}: size");
                let want = std::fs::read(p).unwrap();
                // Odd chunk sizes exercise reads that straddle blocks.
                let got = read_all(fs, ino, [4096, 1000, 1 << 20][n % 3]);
                assert!(got == want, "{shown}: content differs");
            }
            FileType::Symlink => {
                let want = std::fs::read_link(p).unwrap();
                assert_eq!(
                    fs.readlink(ino).unwrap(),
                    want.as_os_str().as_bytes(),
                    "{shown}: target"
                );
            }
            FileType::CharDevice | FileType::BlockDevice => {
                let rdev = h.rdev();
                let want = (
                    nix::sys::stat::major(rdev) as u32,
                    nix::sys::stat::minor(rdev) as u32,
                );
                assert_eq!(m.rdev, want, "{shown}: device number");
            }
            FileType::Fifo | FileType::Socket => {}
        }
    }
    (inodes.into_iter().collect(), saw_htree)
}

fn debugfs_kind(t: FileType) -> &'static str {
    match t {
        FileType::Regular => "regular",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::CharDevice => "character",
        FileType::BlockDevice => "block",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
    }
}

fn compare_with_debugfs(fs: &Ext3<FileDevice>, image: &Path, inodes: &[u32]) {
    let stats = debugfs_stats(image, inodes);
    assert_eq!(
        stats.len(),
        inodes.len(),
        "debugfs answered for every inode"
    );
    let extra = fs.superblock().s_inode_size > 128;
    for (&ino, d) in &stats {
        let m = fs.getattr(ino).unwrap();
        let ctx = format!("inode {ino}");
        assert_eq!(d.kind, debugfs_kind(m.file_type), "{ctx}: type");
        assert_eq!(d.mode, u32::from(m.perm), "{ctx}: mode");
        assert_eq!(d.flags, m.flags, "{ctx}: flags");
        assert_eq!((d.uid, d.gid), (m.uid, m.gid), "{ctx}: owner");
        assert_eq!(d.size, m.size, "{ctx}: size");
        assert_eq!(d.links, u32::from(m.nlink), "{ctx}: links");
        assert_eq!(d.blockcount, m.blocks, "{ctx}: blockcount");
        for (name, ours) in [("atime", m.atime), ("mtime", m.mtime), ("ctime", m.ctime)] {
            let &(secs, x) = d
                .times
                .get(name)
                .unwrap_or_else(|| panic!("{ctx}: debugfs has no {name}"));
            let want = umlkit::ext3::inode::decode_timestamp(secs, extra.then_some(x));
            assert_eq!(ours, want, "{ctx}: {name}");
        }
    }
}

fn run_case(test: &str, fs_type: &str, extra: &[&str], seed: u64) {
    run_case_with(test, fs_type, extra, seed, None);
}

/// `hash_alg`: rehash the directories with this algorithm (`tune2fs -E
/// hash_alg=`, then `e2fsck -fyD`).
fn run_case_with(test: &str, fs_type: &str, extra: &[&str], seed: u64, hash_alg: Option<&str>) {
    let inline = extra.iter().any(|e| e.contains("inline_data"));
    if !common::have_peers(test, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let opt = TreeOptions {
        seed,
        sparse_trailing_hole: !inline,
        ..TreeOptions::default()
    };
    random_tree(&tree, &opt);
    let image = dir.path().join("image");
    make_image(&tree, &image, fs_type, 64, extra);
    if let Some(alg) = hash_alg {
        let opt = format!("hash_alg={alg}");
        common::run_ok(
            common::which("tune2fs").unwrap(),
            ["-E".as_ref(), std::ffi::OsStr::new(&opt), image.as_os_str()],
        );
        let r = common::run(
            common::which("e2fsck").unwrap(),
            ["-fyD".as_ref(), image.as_os_str()],
        );
        assert!(r.status.code().unwrap_or(99) <= 1, "{}", common::stdout(&r));
        let dump = common::fsimg::dumpe2fs_header(&image);
        assert_eq!(dump["Default directory hash"], alg);
    }
    // Extended attributes: a short one (in the inode when it is large
    // enough) and a 600-byte one (in an attribute block), set by debugfs.
    let long_value = common::pattern(9, 600)
        .iter()
        .map(|b| b'a' + b % 26)
        .collect::<Vec<u8>>();
    let value_file = dir.path().join("value");
    std::fs::write(&value_file, &long_value).unwrap();
    let debugfs = common::which("debugfs").unwrap();
    for cmd in [
        "ea_set /large user.color blue".to_string(),
        format!("ea_set -f {} /large user.long", value_file.display()),
    ] {
        common::run_ok(
            &debugfs,
            [
                "-w".as_ref(),
                "-R".as_ref(),
                std::ffi::OsStr::new(&cmd),
                image.as_os_str(),
            ],
        );
    }
    let fs = Ext3::open(FileDevice::open_read_only(&image).unwrap()).unwrap();
    let large = fs.resolve(b"/large", false).unwrap();
    // (debugfs sets none without the ext_attr feature.)
    if fs
        .superblock()
        .s_feature_compat
        .contains(umlkit::ext3::features::Compat::EXT_ATTR)
    {
        let mut names = fs.listxattr(large).unwrap();
        names.sort();
        assert_eq!(names, vec![b"user.color".to_vec(), b"user.long".to_vec()]);
        assert_eq!(
            fs.getxattr(large, b"user.color").unwrap().as_deref(),
            Some(&b"blue"[..])
        );
        assert_eq!(fs.getxattr(large, b"user.long").unwrap(), Some(long_value));
        assert_eq!(fs.getxattr(large, b"user.none").unwrap(), None);
    }
    let (inodes, saw_htree) = compare_with_tree(&fs, &tree);
    let indexed = fs
        .superblock()
        .s_feature_compat
        .contains(umlkit::ext3::features::Compat::DIR_INDEX);
    assert!(
        saw_htree || !indexed,
        "e2fsck -D indexed no directory: the htree path was not exercised"
    );
    compare_with_debugfs(&fs, &image, &inodes);
    if inline {
        let inline_inodes = inodes
            .iter()
            .filter(|&&i| fs.getattr(i).unwrap().flags & EXT4_INLINE_DATA_FL != 0)
            .count();
        assert!(
            inline_inodes > 10,
            "only {inline_inodes} inline-data inodes: inline data was not exercised"
        );
    }
    // Lookups through the hash index find every name of the big (indexed)
    // directory, as the linear scan does, and know when a name is absent.
    let many_ino = fs.resolve(b"/many", false).unwrap();
    let many_inode = fs.inode(many_ino).unwrap();
    let indexed = fs
        .superblock()
        .s_feature_compat
        .contains(umlkit::ext3::features::Compat::DIR_INDEX);
    assert_eq!(
        many_inode.i_flags & EXT4_INDEX_FL != 0,
        indexed,
        "/many is indexed exactly when dir_index is on"
    );
    if indexed {
        for e in fs
            .read_dir(many_ino)
            .unwrap()
            .iter()
            .filter(|e| e.name != b"." && e.name != b"..")
        {
            assert_eq!(
                fs.htree_lookup(many_ino, &many_inode, &e.name).unwrap(),
                Some(Some(e.ino))
            );
            assert_eq!(fs.lookup_linear(many_ino, &e.name).unwrap(), e.ino);
        }
        assert_eq!(
            fs.htree_lookup(many_ino, &many_inode, b"no-such-entry")
                .unwrap(),
            Some(None)
        );
    }
    // readdir resumes from any cookie: one entry per call gives the same
    // listing as reading the directory at once (the FUSE readdir pattern).
    let many = fs.resolve(b"/many", false).unwrap();
    let all = fs.read_dir(many).unwrap();
    let mut resumed = Vec::new();
    let mut cookie = 0;
    loop {
        let mut got = None;
        fs.readdir_with(many, cookie, |e, next| {
            got = Some((e, next));
            false
        })
        .unwrap();
        let Some((e, next)) = got else { break };
        assert!(next > cookie, "cookies must grow");
        resumed.push(e);
        cookie = next;
    }
    assert_eq!(resumed, all);
    // The sparse file's far data really is far (triple-indirect with 1 KiB
    // blocks) and its holes read as zeros.
    let sparse = fs.resolve(b"/sparse", false).unwrap();
    let mut buf = vec![1u8; 8];
    assert_eq!(fs.read(sparse, opt.sparse_far, &mut buf).unwrap(), 8);
    assert_eq!(&buf, b"far data");
    fs.read(sparse, 30 << 20, &mut buf).unwrap();
    assert_eq!(buf, [0u8; 8]);
}

#[test]
fn ext2_with_1k_blocks_and_128_byte_inodes_reads_like_the_source_and_debugfs() {
    run_case("ext2_1k", "ext2", &["-b", "1024", "-I", "128"], 11);
}

#[test]
fn ext3_reads_like_the_source_and_debugfs() {
    run_case("ext3", "ext3", &[], 22);
}

#[test]
fn ext4_with_extents_64bit_and_metadata_csum_reads_like_the_source_and_debugfs() {
    run_case(
        "ext4",
        "ext4",
        &["-b", "4096", "-O", "64bit,metadata_csum"],
        33,
    );
}

#[test]
fn ext4_with_inline_data_reads_like_the_source_and_debugfs() {
    run_case("ext4_inline", "ext4", &["-O", "inline_data"], 44);
}

#[test]
fn revision_0_ext2_without_filetype_or_dir_index_reads_like_the_source_and_debugfs() {
    run_case("ext2_rev0", "ext2", &["-r", "0", "-b", "1024"], 55);
}

#[test]
fn ext4_with_meta_bg_reads_like_the_source_and_debugfs() {
    run_case(
        "ext4_meta_bg",
        "ext4",
        &["-O", "meta_bg,^resize_inode", "-b", "1024"],
        66,
    );
}

#[test]
fn ext4_with_bigalloc_reads_like_the_source_and_debugfs() {
    run_case(
        "ext4_bigalloc",
        "ext4",
        &["-O", "bigalloc", "-b", "1024", "-C", "16384"],
        77,
    );
}

#[test]
fn ext3_with_tea_hashed_directories_reads_like_the_source_and_debugfs() {
    run_case_with("ext3_tea", "ext3", &[], 88, Some("tea"));
}

#[test]
fn ext3_with_legacy_hashed_directories_reads_like_the_source_and_debugfs() {
    run_case_with("ext3_legacy", "ext3", &[], 99, Some("legacy"));
}
