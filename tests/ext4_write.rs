//! The writer on ext4 images as `mke2fs -t ext4` makes them (extent,
//! 64bit, flex_bg, metadata_csum, huge_file, dir_nlink, extra_isize):
//! `uml_fs` editing commands with the default features and the
//! `^metadata_csum`, `^64bit`, `^flex_bg` variants, 1 KiB and 4 KiB blocks;
//! extent trees growing to depth 2 and shrinking back; `e2fsck -fn` clean
//! after each.

mod common;

use common::fsck_clean;
use std::path::Path;
use umlkit::block::FileDevice;
use umlkit::ext3::write::{WriteOptions, Writer};
use umlkit::fs::{InodeFs, Owner, SetAttr};

const ROOT: u32 = 2;
const ME: Owner = Owner { uid: 0, gid: 0 };

fn uml_fs(args: &[&str]) -> std::process::Output {
    common::umlkit("uml_fs", args)
}

fn ok(args: &[&str]) -> String {
    let out = uml_fs(args);
    assert!(
        out.status.success(),
        "uml_fs {args:?}: {}",
        common::stderr(&out)
    );
    common::stdout(&out)
}

fn mkfs(img: &Path, block_size: &str, extra: &[&str]) {
    let out = common::run(
        "mke2fs",
        ["-q", "-F", "-t", "ext4", "-b", block_size]
            .iter()
            .chain(extra)
            .chain(&[img.to_str().unwrap(), "64M"]),
    );
    assert!(out.status.success(), "mke2fs: {}", common::stderr(&out));
}

fn debugfs(img: &Path, cmd: &str) -> String {
    common::stdout(&common::run(
        "debugfs",
        ["-R".as_ref(), cmd.as_ref(), img.as_os_str()],
    ))
}

#[test]
fn uml_fs_put_mkdir_mv_rm_on_ext4_images_leave_them_clean() {
    if !common::have_peers(
        "uml_fs_put_mkdir_mv_rm_on_ext4_images_leave_them_clean",
        &["mke2fs", "e2fsck", "debugfs"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    std::fs::write(tree.join("a"), b"hello\n").unwrap();
    std::fs::write(tree.join("sub/big"), common::pattern(3, 3_000_000)).unwrap();
    for i in 0..300 {
        std::fs::write(tree.join(format!("sub/deeper/file-{i:03}")), b"x").unwrap();
    }
    std::os::unix::fs::symlink("a", tree.join("l")).unwrap();
    let cases: [(&str, &[&str]); 6] = [
        ("4096", &[]),
        ("4096", &["-O", "orphan_file,metadata_csum_seed"]),
        ("1024", &[]),
        ("1024", &["-O", "^metadata_csum"]),
        ("4096", &["-O", "^64bit"]),
        ("1024", &["-O", "^flex_bg"]),
    ];
    for (bs, extra) in cases {
        let img = dir.path().join("e.img");
        mkfs(&img, bs, extra);
        let i = img.to_str().unwrap();
        ok(&["put", "--owner", "0:0", i, tree.to_str().unwrap(), "/t"]);
        ok(&["mkdir", "-p", i, "/x/y/z"]);
        ok(&["mv", i, "/t/a", "/x/y"]);
        ok(&["rm", "-r", i, "/t/sub/deeper"]);
        fsck_clean(&img);
        assert_eq!(ok(&["cat", i, "/x/y/a"]), "hello\n");
        let big = std::fs::read(tree.join("sub/big")).unwrap();
        let out = uml_fs(&["cat", i, "/t/sub/big"]);
        assert!(out.stdout == big, "-b {bs} {extra:?}: /t/sub/big differs");
        let stat = debugfs(&img, "stat /t/sub/big");
        assert!(
            stat.contains("Flags: 0x80000"),
            "not an extent file: {stat}"
        );
        assert!(!ok(&["ls", i, "/t/sub"]).contains("deeper"));
    }
}

#[test]
fn an_extent_tree_grows_to_depth_two_and_shrinks_back_to_the_inode() {
    if !common::have_peers(
        "an_extent_tree_grows_to_depth_two_and_shrinks_back_to_the_inode",
        &["mke2fs", "e2fsck", "debugfs"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("d.img");
    mkfs(&img, "1024", &[]);
    let w = Writer::open(
        FileDevice::open_read_write(&img).unwrap(),
        WriteOptions::default(),
    )
    .unwrap();
    let f = w.create(ROOT, b"holes", 0o644, ME).unwrap();
    // Every other block: one extent each; 84 fit a 1 KiB leaf, so 500
    // need 6 leaves under index blocks (depth 2).
    for k in 0..500u64 {
        w.write(f.ino, k * 2048, &[u8::try_from(k % 251).unwrap(); 1024])
            .unwrap();
    }
    w.unmount().unwrap();
    drop(w);
    fsck_clean(&img);
    let ex = debugfs(&img, "ex /holes");
    assert!(ex.contains(" 2/ 2 "), "no depth-2 tree: {ex}");
    let r = umlkit::ext3::Ext3::open(FileDevice::open_read_only(&img).unwrap()).unwrap();
    let mut buf = vec![0u8; 1024];
    r.read(f.ino, 499 * 2048, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == u8::try_from(499 % 251).unwrap()));
    r.read(f.ino, 1024, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0), "a hole reads as zeros");
    drop(r);
    let w = Writer::open(
        FileDevice::open_read_write(&img).unwrap(),
        WriteOptions::default(),
    )
    .unwrap();
    let set = SetAttr {
        size: Some(5 * 1024),
        ..SetAttr::default()
    };
    w.setattr(f.ino, &set).unwrap();
    w.unmount().unwrap();
    drop(w);
    fsck_clean(&img);
    let ex = debugfs(&img, "ex /holes");
    let lines: Vec<&str> = ex.lines().skip(1).collect();
    assert!(
        lines.len() == 3 && lines.iter().all(|l| l.starts_with(" 0/ 0")),
        "tree not back in the inode: {ex}"
    );
}

#[test]
fn an_image_copied_after_any_commit_has_the_descriptors_of_the_groups_it_changed() {
    if !common::have_peers(
        "an_image_copied_after_any_commit_has_the_descriptors_of_the_groups_it_changed",
        &["mke2fs", "e2fsck"],
    ) {
        return;
    }
    // Group descriptors (counters, bitmap checksums) are written once per
    // changed group at commit: a copy of the image taken right after each
    // committed operation, with the writer still open, must be clean.
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("g.img");
    let snap = dir.path().join("snap.img");
    mkfs(&img, "1024", &[]); // 8 groups of 8 MiB, metadata_csum, flex_bg
    let opts = WriteOptions {
        sync_each_op: true,
        ..WriteOptions::default()
    };
    let w = Writer::open(FileDevice::open_read_write(&img).unwrap(), opts).unwrap();
    let check = |what: &str| {
        std::fs::copy(&img, &snap).unwrap();
        let s = Writer::open(
            FileDevice::open_read_write(&snap).unwrap(),
            WriteOptions::default(),
        )
        .unwrap_or_else(|e| panic!("after {what}: {e}"));
        s.unmount().unwrap();
        drop(s);
        fsck_clean(&snap);
    };
    let mut files = Vec::new();
    for d in 0..4 {
        // Directories spread to the group with the most free inodes.
        let dino = w
            .mkdir(ROOT, format!("d{d}").as_bytes(), 0o755, ME)
            .unwrap()
            .ino;
        check(&format!("mkdir d{d}"));
        let f = w.create(dino, b"f", 0o644, ME).unwrap().ino;
        w.write(f, 0, &common::pattern(d, 3 << 20)).unwrap();
        check(&format!("write d{d}/f"));
        files.push((dino, f));
    }
    w.unlink(files[1].0, b"f").unwrap();
    check("unlink d1/f");
    w.unmount().unwrap();
    drop(w);
    fsck_clean(&img);
}
