//! `uml_fs mount` run by root: the server mounts with mount(2) itself, so
//! the kernel records the type `fuse` without the `uml_fs` subtype; `uml_fs
//! umount` must still recognise and unmount it, and leave a clean image,
//! also while the server reads a directory ahead through the mount.

mod common;

use std::path::Path;

fn mounted(dir: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let point = dir.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(point))
}

/// `uml_fs umount DIR`; when it fails, the mount is detached anyway, so
/// that nothing stays mounted behind a failed assertion.
fn uml_fs_umount(mnt: &Path) -> std::process::Output {
    let out = common::umlkit("uml_fs", [Path::new("umount"), mnt]);
    if !out.status.success() {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(mnt)
            .status();
    }
    out
}

#[test]
fn uml_fs_umount_unmounts_a_mount_root_made_and_the_image_is_clean() {
    let t = "uml_fs_umount_unmounts_a_mount_root_made_and_the_image_is_clean";
    if !common::have_root(t) || !common::have_peers(t, &["mke2fs", "e2fsck", "fusermount3"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("a.img");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    common::run_ok(
        "mke2fs",
        ["-q", "-F", "-t", "ext3", img.to_str().unwrap(), "32M"],
    );
    common::run_ok(common::bin("uml_fs"), [Path::new("mount"), &img, &mnt]);
    let written = std::fs::write(mnt.join("f"), b"root was here\n");
    let out = uml_fs_umount(&mnt);
    assert!(
        out.status.success(),
        "uml_fs umount: {}",
        common::stderr(&out)
    );
    written.unwrap();
    assert!(!mounted(&mnt), "still mounted after uml_fs umount");
    common::fsck_clean(&img);
    let cat = common::umlkit("uml_fs", ["cat", img.to_str().unwrap(), "/f"]);
    assert_eq!(cat.stdout, b"root was here\n");
}

#[test]
fn a_read_only_mount_finds_every_name_of_a_large_unindexed_directory_and_no_other() {
    let t = "a_read_only_mount_finds_every_name_of_a_large_unindexed_directory_and_no_other";
    if !common::have_root(t) || !common::have_peers(t, &["mke2fs", "fusermount3"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("big")).unwrap();
    // mke2fs -d writes directories without a hash tree.
    for i in 0..3000 {
        std::fs::write(tree.join(format!("big/file-{i:05}")), format!("{i}\n")).unwrap();
    }
    let img = dir.path().join("a.img");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    common::run_ok(
        "mke2fs",
        [
            "-q",
            "-F",
            "-t",
            "ext4",
            "-d",
            tree.to_str().unwrap(),
            img.to_str().unwrap(),
            "32M",
        ],
    );
    common::run_ok(
        common::bin("uml_fs"),
        [
            Path::new("mount"),
            Path::new("-o"),
            Path::new("ro"),
            &img,
            &mnt,
        ],
    );
    let mut wrong = Vec::new();
    for i in (0..3000).rev().step_by(7) {
        let got = std::fs::read_to_string(mnt.join(format!("big/file-{i:05}")));
        if got.as_deref().ok() != Some(format!("{i}\n").as_str()) {
            wrong.push(format!("file-{i:05}: {got:?}"));
        }
    }
    let missing = std::fs::metadata(mnt.join("big/file-03000"));
    let count = std::fs::read_dir(mnt.join("big")).map(|d| d.count());
    let out = uml_fs_umount(&mnt);
    assert!(wrong.is_empty(), "{wrong:?}");
    assert_eq!(
        missing.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::NotFound)
    );
    assert_eq!(count.unwrap(), 3000);
    assert!(
        out.status.success(),
        "uml_fs umount: {}",
        common::stderr(&out)
    );
}

#[test]
fn uml_fs_umount_succeeds_while_the_server_is_reading_a_directory_ahead() {
    let t = "uml_fs_umount_succeeds_while_the_server_is_reading_a_directory_ahead";
    if !common::have_root(t) || !common::have_peers(t, &["mke2fs", "fusermount3"]) {
        return;
    }
    const NAMES: usize = 30_000;
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..NAMES {
        std::fs::File::create(big.join(format!("f-{i:05}"))).unwrap();
    }
    let img = dir.path().join("a.img");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    common::run_ok(
        "mke2fs",
        [
            "-q",
            "-F",
            "-t",
            "ext4",
            "-N",
            "40000",
            img.to_str().unwrap(),
            "64M",
        ],
    );
    // Ours, not mke2fs -d: that takes a minute for one directory this big.
    common::run_ok(
        common::bin("uml_fs"),
        [Path::new("put"), &img, &big, Path::new("/")],
    );
    // Each round looks up every fifth name, past the point where the
    // directory is due to be read ahead (some 2,600 lookups for its size),
    // and unmounts at once, while the server lists the names through the
    // mount. Without the server stopping its read-ahead, the first round
    // fails as busy.
    for round in 0..3 {
        common::run_ok(
            common::bin("uml_fs"),
            [
                Path::new("mount"),
                Path::new("-o"),
                Path::new("ro"),
                &img,
                &mnt,
            ],
        );
        for i in (0..NAMES).step_by(5) {
            assert!(mnt.join(format!("big/f-{i:05}")).exists(), "f-{i:05}");
        }
        let out = uml_fs_umount(&mnt);
        assert!(
            out.status.success(),
            "round {round}: uml_fs umount: {}",
            common::stderr(&out)
        );
        assert!(!mounted(&mnt), "round {round}: still mounted");
    }
    // A mount busy because of the user's own open file is still refused.
    common::run_ok(common::bin("uml_fs"), [Path::new("mount"), &img, &mnt]);
    let held = std::fs::File::open(mnt.join("big/f-00001")).unwrap();
    let out = common::umlkit("uml_fs", [Path::new("umount"), &mnt]);
    drop(held);
    let cleanup = uml_fs_umount(&mnt);
    assert!(!out.status.success(), "unmounted with a file open");
    assert!(
        common::stderr(&out).contains("busy"),
        "{}",
        common::stderr(&out)
    );
    assert!(cleanup.status.success(), "{}", common::stderr(&cleanup));
}
