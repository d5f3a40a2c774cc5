//! `linux` serves a default `mke2fs -t ext4` root read-write through the
//! journaling writer (it used to fall back to read-only): a busybox guest
//! writes a file as the test user, and the image is `e2fsck`-clean with
//! the file in it.

mod common;

use common::kernel::{can_boot, test_user, KGuest};
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
    let g = KGuest::with_tree(user, |tree| {
        common::uml::busybox_tree(tree, INIT);
        let img = tree.parent().unwrap().join("root_ext4");
        common::run_ok(
            "mke2fs",
            [
                "-q".as_ref(),
                "-F".as_ref(),
                "-t".as_ref(),
                "ext4".as_ref(),
                "-d".as_ref(),
                tree.as_os_str(),
                img.as_os_str(),
                "64M".as_ref(),
            ],
        );
    });
    let args = [
        "ubd0=root_ext4",
        "root=/dev/ubda",
        "rw",
        "init=/init",
        "con=null",
        "con0=fd:0,fd:1",
    ];
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
