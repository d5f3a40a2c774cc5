//! The writer with the real UML kernel on a default `mke2fs -t ext4`
//! image: a checksum-v3 journal that `linux.uml` left dirty is replayed by
//! our writer into the COW, our change after it is seen by the next
//! `linux.uml` boot, and the merged image is `e2fsck -fn` clean.

mod common;

use common::uml::{busybox_tree, Guest};
use common::{bin, have_peers, mkfs_from, run, run_ok, stdout};
use std::time::Duration;

const PEERS: &[&str] = &["linux.uml", "mke2fs", "busybox", "e2fsck"];
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn an_ext4_journal_left_dirty_by_linux_uml_is_replayed_and_our_change_is_seen_by_it() {
    let t = "an_ext4_journal_left_dirty_by_linux_uml_is_replayed_and_our_change_is_seen_by_it";
    if !have_peers(t, PEERS) {
        return;
    }
    let init = "#!/bin/sh\nmount -t proc proc /proc\n\
         if [ -e /data/ours ]; then echo OURS=$(cat /data/ours); poweroff -f; fi\n\
         mkdir /data/d; for i in 1 2 3 4 5 6 7 8; do echo file $i > /data/d/f$i; done\n\
         rm /data/d/f3; mv /data/d/f4 /data/moved\n\
         sync\necho GUEST-DONE\npoweroff -f\n";
    let guest = Guest::new(init, 16);
    // The same tree on a default ext4 image.
    let tree = guest.path("tree4");
    busybox_tree(&tree, init);
    mkfs_from("ext4", &tree, &guest.image, "32M");
    let cow = guest.path("a.cow");
    run_ok(bin("uml_mkcow"), [&cow, &guest.image]);
    let boot = guest.boot("a.cow,root_fs", &[], LIMIT);
    assert!(boot.output.contains("GUEST-DONE"), "{}", boot.output);
    let cow_s = cow.to_str().unwrap();
    let info = stdout(&run_ok(bin("uml_fs"), ["--no-replay", "info", cow_s]));
    assert!(
        info.contains("needs_recovery") && info.contains("metadata_csum"),
        "the guest left a clean filesystem:\n{info}"
    );
    // Any editing command opens for writing: replay, then our change.
    common::run_ok(bin("uml_fs"), ["mkdir", cow_s, "/data/ourdir"]);
    let mut child = std::process::Command::new(bin("uml_fs"))
        .args(["write", cow_s, "/data/ours"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"host\n").unwrap();
    assert!(child.wait().unwrap().success());
    let info = stdout(&run_ok(bin("uml_fs"), ["--no-replay", "info", cow_s]));
    assert!(!info.contains("needs_recovery"), "{info}");
    assert_eq!(
        stdout(&run_ok(
            bin("uml_fs"),
            ["--no-replay", "cat", cow_s, "/data/moved"]
        )),
        "file 4\n"
    );
    assert!(
        !run(bin("uml_fs"), ["--no-replay", "cat", cow_s, "/data/d/f3"])
            .status
            .success()
    );
    let merged = guest.path("merged");
    run_ok(bin("uml_moo"), [cow.as_path(), merged.as_path()]);
    common::fsck_clean(&merged);
    let boot = guest.boot("a.cow,root_fs", &[], LIMIT);
    assert!(boot.output.contains("OURS=host"), "{}", boot.output);
}

/// An `orphan_file` image (upstream e2fsprogs' default since 1.47) that
/// `linux.uml` left with an open, unlinked file in its orphan file: our
/// writer frees the inode, clears the file's entry (with its checksum,
/// which the next `linux.uml` mount verifies) and `orphan_present`.
#[test]
fn an_orphan_linux_uml_left_in_the_orphan_file_is_freed_by_our_writer() {
    let t = "an_orphan_linux_uml_left_in_the_orphan_file_is_freed_by_our_writer";
    if !have_peers(t, &["linux.uml", "mke2fs", "busybox", "e2fsck", "debugfs"]) {
        return;
    }
    let init = "#!/bin/sh\nmount -t proc proc /proc\n\
         if [ -e /data/ours ]; then echo OURS=$(cat /data/ours); poweroff -f; fi\n\
         exec 3>/data/held; echo held >&3; echo HELD=$(ls -i /data/held)\n\
         rm /data/held; sync\necho GUEST-DONE\npoweroff -f\n";
    let guest = Guest::new(init, 16);
    let tree = guest.path("tree4");
    busybox_tree(&tree, init);
    let upstream = ["-O", "orphan_file,metadata_csum_seed"];
    common::mkfs_from_with("ext4", &upstream, &tree, &guest.image, "32M");
    let cow = guest.path("a.cow");
    run_ok(bin("uml_mkcow"), [&cow, &guest.image]);
    let boot = guest.boot("a.cow,root_fs", &[], LIMIT);
    assert!(boot.output.contains("GUEST-DONE"), "{}", boot.output);
    let held: u32 = boot
        .output
        .split("HELD=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no inode number:\n{}", boot.output));
    let cow_s = cow.to_str().unwrap();
    let info = stdout(&run_ok(bin("uml_fs"), ["--no-replay", "info", cow_s]));
    assert!(
        info.contains("orphan_present") && info.contains("needs_recovery"),
        "the guest left no orphan_present:\n{info}"
    );
    // Opening for writing processes the orphan; chmod allocates nothing,
    // so the inode is seen free before anything could reuse it.
    run_ok(bin("uml_fs"), ["chmod", cow_s, "755", "/data"]);
    let info = stdout(&run_ok(bin("uml_fs"), ["--no-replay", "info", cow_s]));
    assert!(!info.contains("orphan_present"), "{info}");
    let freed = guest.path("freed");
    run_ok(bin("uml_moo"), [cow.as_path(), freed.as_path()]);
    common::fsck_clean(&freed);
    let testi = stdout(&run_ok(
        "debugfs",
        ["-R", &format!("testi <{held}>"), freed.to_str().unwrap()],
    ));
    assert!(testi.contains("not in use"), "inode {held}: {testi}");
    let mut child = std::process::Command::new(bin("uml_fs"))
        .args(["write", cow_s, "/data/ours"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"host\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let merged = guest.path("merged");
    run_ok(bin("uml_moo"), [cow.as_path(), merged.as_path()]);
    common::fsck_clean(&merged);
    // linux.uml refuses to mount an orphan file block with a bad checksum.
    let boot = guest.boot("a.cow,root_fs", &[], LIMIT);
    assert!(boot.output.contains("OURS=host"), "{}", boot.output);
}
