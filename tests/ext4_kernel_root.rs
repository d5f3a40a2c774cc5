//! `linux` serves a default `mke2fs -t ext4` root read-write through the
//! journaling writer (it used to fall back to read-only): a busybox guest
//! writes a file as the test user, and the image is `e2fsck`-clean with
//! the file in it.

mod common;

use common::kernel::{can_boot, test_user, KGuest, EXT4_ROOT_ARGS};
use std::time::Duration;

const INIT: &str = r#"#!/bin/sh
echo GUEST-UP
echo written-on-ext4 > /rw-file && echo WRITE=ok
mkdir -p /d/e && echo nested > /d/e/f && echo MKDIR=ok
rm /bin/true 2>/dev/null; echo RM-DONE
poweroff -f
"#;

#[test]
fn a_default_ext4_root_boots_read_write_and_stays_clean() {
    let t = "a_default_ext4_root_boots_read_write_and_stays_clean";
    if !can_boot(t) || !common::have_peers(t, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let Some(user) = test_user(t) else {
        return;
    };
    let g = KGuest::with_ext4_root(user, INIT);
    let args = EXT4_ROOT_ARGS;
    let b = g.run(&args, Duration::from_secs(30));
    let out = b.output;
    assert!(!out.contains("served read-only"), "{out}");
    assert!(out.contains("WRITE=ok"), "{out}");
    assert!(out.contains("MKDIR=ok"), "{out}");
    let img = g.path("root_ext4");
    common::fsck_clean(&img);
    let cat = common::run(
        "debugfs",
        ["-R".as_ref(), "cat /d/e/f".as_ref(), img.as_os_str()],
    );
    assert_eq!(common::stdout(&cat), "nested\n");
}

/// Upstream e2fsprogs' defaults since 1.47 add `orphan_file` and
/// `metadata_csum_seed`: such a root is served read-write too, and a file
/// the guest holds open after removing it is freed by the time the
/// monitor exits.
#[test]
fn an_orphan_file_root_boots_read_write_and_an_open_removed_file_is_freed() {
    let t = "an_orphan_file_root_boots_read_write_and_an_open_removed_file_is_freed";
    if !can_boot(t) || !common::have_peers(t, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let Some(user) = test_user(t) else {
        return;
    };
    let init = "#!/bin/sh\necho GUEST-UP\n\
         echo written > /rw-file && echo WRITE=ok\n\
         exec 3>/held; echo held >&3; echo HELD=$(ls -i /held); rm /held\n\
         poweroff -f\n";
    let g = KGuest::with_tree(user, |tree| {
        common::uml::busybox_tree(tree, init);
        let img = tree.parent().unwrap().join("root_ext4");
        let upstream = ["-O", "orphan_file,metadata_csum_seed"];
        common::mkfs_from_with("ext4", &upstream, tree, &img, "64M");
    });
    let out = g.run(&EXT4_ROOT_ARGS, Duration::from_secs(30)).output;
    assert!(!out.contains("served read-only"), "{out}");
    assert!(out.contains("WRITE=ok"), "{out}");
    let held: u32 = out
        .split("HELD=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no inode number:\n{out}"));
    let img = g.path("root_ext4");
    common::fsck_clean(&img);
    let testi = common::run(
        "debugfs",
        [
            "-R".as_ref(),
            format!("testi <{held}>").as_ref(),
            img.as_os_str(),
        ],
    );
    assert!(
        common::stdout(&testi).contains("not in use"),
        "{}",
        common::stdout(&testi)
    );
    let features = common::run(
        "debugfs",
        ["-R".as_ref(), "feature".as_ref(), img.as_os_str()],
    );
    let features = common::stdout(&features);
    assert!(
        features.contains("orphan_file") && !features.contains("orphan_present"),
        "{features}"
    );
}
