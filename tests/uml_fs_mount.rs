//! `uml_fs mount` / `uml_fs umount` as a normal user (the test user when
//! CI runs as root): a tree copied in and out through the mount, a
//! directory removed, and after `umount` the image is clean for
//! `e2fsck -fn`; on a COW only the COW changes and a COW a guest holds is
//! refused; fsync'd files survive `kill -9` of the server, and a read-only
//! mount of the dirty result replays the journal in memory and writes
//! nothing.

mod common;

use common::kernel::{processes_with, test_user, User};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `script` with `sh -c` as `user` in `dir` (`$UML_FS` is our binary).
fn sh(user: User, dir: &Path, script: &str, marker: &str) -> Output {
    let mut cmd = match user.ids {
        Some((uid, gid)) => {
            let mut c = Command::new(common::which("setpriv").expect("setpriv"));
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg("--");
            c.arg("sh");
            c
        }
        None => Command::new("sh"),
    };
    cmd.arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("HOME", dir)
        .env("UML_FS", dir.join("bin/uml_fs"))
        .env("UMLKIT_TEST_MARK", marker)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The processes started by [`sh`] with `marker` (the daemonized server).
fn servers(marker: &str) -> Vec<i32> {
    processes_with(&format!("UMLKIT_TEST_MARK={marker}"))
}

fn sh_ok(user: User, dir: &Path, script: &str, marker: &str) -> String {
    let out = sh(user, dir, script, marker);
    assert!(
        out.status.success(),
        "{script}\nstdout: {}\nstderr: {}",
        common::stdout(&out),
        common::stderr(&out)
    );
    common::stdout(&out)
}

/// A scratch directory owned by the test user, with a 64 MiB ext3 image
/// `a.img`, a mount point `mnt` and a tree `tree` to copy in.
fn scratch(user: User) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = dir.path();
    common::run_ok(
        "mke2fs",
        [
            "-q",
            "-F",
            "-t",
            "ext3",
            d.join("a.img").to_str().unwrap(),
            "64M",
        ],
    );
    std::fs::create_dir(d.join("mnt")).unwrap();
    let tree = d.join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(tree.join("keep")).unwrap();
    std::fs::write(tree.join("small"), b"hello\n").unwrap();
    std::fs::write(tree.join("sub/big"), common::pattern(7, 3_000_000)).unwrap();
    std::fs::write(tree.join("sub/deeper/x"), common::pattern(8, 70_000)).unwrap();
    std::fs::write(tree.join("keep/k"), common::pattern(9, 5_000)).unwrap();
    std::os::unix::fs::symlink("../small", tree.join("keep/link")).unwrap();
    std::fs::hard_link(tree.join("small"), tree.join("keep/hard")).unwrap();
    std::fs::set_permissions(tree.join("keep/k"), std::fs::Permissions::from_mode(0o640)).unwrap();
    // Copies of the tools the user runs: the checkout may sit where the
    // test user cannot reach (a 0700 temporary directory).
    std::fs::create_dir(d.join("bin")).unwrap();
    for tool in ["uml_fs", "uml_mkcow"] {
        common::copy_executable(&common::bin(tool), &d.join("bin").join(tool));
    }
    if let Some((uid, gid)) = user.ids {
        common::run_ok(
            "chown",
            ["-R", &format!("{uid}:{gid}"), d.to_str().unwrap()],
        );
    }
    dir
}

fn peers(test: &str) -> Option<User> {
    if !common::have_peers(test, &["mke2fs", "e2fsck", "fusermount3", "setpriv"]) {
        return None;
    }
    let fuse_ok = std::fs::metadata("/dev/fuse")
        .is_ok_and(|m| std::os::unix::fs::MetadataExt::mode(&m) & 0o006 == 0o006);
    if !fuse_ok {
        common::skip(test, "/dev/fuse missing or not mode 0666");
        return None;
    }
    test_user(test)
}

#[test]
fn a_tree_copied_in_and_out_and_a_removed_directory_leave_a_clean_image_after_umount() {
    let t = "a_tree_copied_in_and_out_and_a_removed_directory_leave_a_clean_image_after_umount";
    let Some(user) = peers(t) else { return };
    let dir = scratch(user);
    let m = "UMLKIT_TEST_MOUNT_TREE";
    sh_ok(
        user,
        dir.path(),
        "set -e\n\
         \"$UML_FS\" mount a.img mnt\n\
         grep -q \" $PWD/mnt .* fuse.uml_fs \" /proc/self/mountinfo\n\
         cp -a tree mnt/tree\n\
         cp -a mnt/tree out\n\
         diff -r tree out\n\
         [ \"$(stat -c %a mnt/tree/keep/k)\" = 640 ]\n\
         [ \"$(readlink mnt/tree/keep/link)\" = ../small ]\n\
         [ \"$(stat -c %h mnt/tree/small)\" = 2 ]\n\
         rm -rf mnt/tree/sub\n\
         [ ! -e mnt/tree/sub ]\n\
         \"$UML_FS\" umount mnt\n\
         ! grep -q \" $PWD/mnt .* fuse.uml_fs \" /proc/self/mountinfo",
        m,
    );
    assert!(servers(m).is_empty(), "the server is still running");
    common::fsck_clean(&dir.path().join("a.img"));
    let img = dir.path().join("a.img");
    let i = img.to_str().unwrap();
    let info = common::stdout(&common::umlkit("uml_fs", ["info", i]));
    assert!(info.contains("clean"), "{info}");
    let ls = common::stdout(&common::umlkit("uml_fs", ["ls", i, "/tree"]));
    assert!(!ls.contains("sub") && ls.contains("keep"), "{ls}");
    let big = common::umlkit("uml_fs", ["cat", i, "/tree/keep/k"]);
    assert_eq!(big.stdout, common::pattern(9, 5_000));
}

#[test]
fn a_cow_mount_writes_only_the_cow_and_a_cow_a_guest_holds_is_refused() {
    let t = "a_cow_mount_writes_only_the_cow_and_a_cow_a_guest_holds_is_refused";
    let Some(user) = peers(t) else { return };
    if !common::have_peers(t, &["python3"]) {
        return;
    }
    let dir = scratch(user);
    let m = "UMLKIT_TEST_MOUNT_COW";
    let before = common::kernel::fingerprint(&dir.path().join("a.img"));
    sh_ok(
        user,
        dir.path(),
        &format!(
            "set -e\n\
             {mkcow} a.cow a.img\n\
             \"$UML_FS\" mount a.cow mnt\n\
             cp -a tree/keep mnt/keep\n\
             \"$UML_FS\" umount mnt\n\
             \"$UML_FS\" mount -o ro a.cow,a.img mnt\n\
             cmp tree/keep/k mnt/keep/k\n\
             ! touch mnt/new 2>/dev/null\n\
             \"$UML_FS\" umount mnt",
            mkcow = "bin/uml_mkcow"
        ),
        m,
    );
    assert_eq!(
        common::kernel::fingerprint(&dir.path().join("a.img")),
        before
    );
    // A guest's lock: F_SETLK on the whole COW, as the kernel takes it.
    let out = sh(
        user,
        dir.path(),
        "python3 -c 'import fcntl,os,sys\n\
         f=open(\"a.cow\",\"r+\"); fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB)\n\
         r=os.system(\"\\\"$UML_FS\\\" mount a.cow mnt\"); sys.exit(0 if r else 1)'",
        m,
    );
    let err = common::stderr(&out);
    assert!(out.status.success(), "a held COW was mounted: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("uml_fs: "), "{err}");
    assert!(err.contains("in use"), "{err}");
    assert!(!std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(dir.path().join("mnt").to_str().unwrap()));
    assert!(servers(m).is_empty());
}

#[test]
fn fsynced_files_survive_kill_9_and_a_read_only_mount_replays_in_memory() {
    let t = "fsynced_files_survive_kill_9_and_a_read_only_mount_replays_in_memory";
    let Some(user) = peers(t) else { return };
    let dir = scratch(user);
    let m = "UMLKIT_TEST_MOUNT_KILL";
    sh_ok(
        user,
        dir.path(),
        "set -e\n\
         \"$UML_FS\" mount a.img mnt\n\
         mkdir mnt/d\n\
         dd if=tree/sub/big of=mnt/d/big bs=64k conv=fsync status=none\n\
         dd if=tree/small of=mnt/d/small conv=fsync status=none\n\
         python3 -c 'import os; fd=os.open(\"mnt/d\", os.O_RDONLY); os.fsync(fd)'",
        m,
    );
    let pids = servers(m);
    assert_eq!(pids.len(), 1, "one server: {pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    for _ in 0..200 {
        if servers(m).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sh_ok(
        user,
        dir.path(),
        "fusermount3 -u mnt",
        "UMLKIT_TEST_UNMOUNT",
    );
    let img = dir.path().join("a.img");
    let dirty = common::kernel::fingerprint(&img);
    sh_ok(
        user,
        dir.path(),
        "set -e\n\
         \"$UML_FS\" mount -o ro a.img mnt\n\
         cmp tree/sub/big mnt/d/big\n\
         cmp tree/small mnt/d/small\n\
         ! mkdir mnt/e 2>/dev/null\n\
         \"$UML_FS\" umount mnt",
        m,
    );
    assert_eq!(
        common::kernel::fingerprint(&img).0,
        dirty.0,
        "a read-only mount wrote to the image"
    );
    sh_ok(
        user,
        dir.path(),
        "set -e\n\
         \"$UML_FS\" mount a.img mnt\n\
         cmp tree/sub/big mnt/d/big\n\
         \"$UML_FS\" umount mnt",
        m,
    );
    common::fsck_clean(&img);
}

#[test]
fn bad_mount_and_umount_arguments_are_one_line_errors() {
    let t = "bad_mount_and_umount_arguments_are_one_line_errors";
    let Some(user) = peers(t) else { return };
    let dir = scratch(user);
    for (script, want) in [
        ("\"$UML_FS\" mount nothing.img mnt", "nothing.img"),
        ("\"$UML_FS\" mount -o rw,bogus a.img mnt", "-o bogus"),
        ("\"$UML_FS\" mount a.img no-such-dir", "no-such-dir"),
        ("\"$UML_FS\" umount mnt", "not mounted"),
        ("\"$UML_FS\" umount /proc", "not a uml_fs mount"),
    ] {
        let out = sh(user, dir.path(), script, "UMLKIT_TEST_MOUNT_BAD");
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{script}: {err}");
        assert_eq!(err.lines().count(), 1, "{script}: {err}");
        assert!(
            err.starts_with("uml_fs: ") && err.contains(want),
            "{script}: {err}"
        );
    }
}
