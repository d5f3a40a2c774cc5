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
