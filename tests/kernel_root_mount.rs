//! The root's mount flag and device nodes, with busybox guests (issue 13,
//! defects 2 and 3): `ro` (the default) is the host mount's flag, which the
//! guest's `mount -o remount,rw /` lifts and `remount,ro` sets again, with
//! the superblock kept as the kernel keeps it; `/dev/ubda` is a block
//! device whose number is the root mount's, as distributions' boot
//! scripts check.

mod common;

use common::fsimg::dumpe2fs_header;
use common::kernel::{can_boot, test_user, KGuest};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

const INIT: &str = r#"#!/bin/sh
echo "GUEST-UP MODE=$MODE"
case "$MODE" in
  remount)
    echo before > /probe && echo WRITE1=ok
    grep ' / ' /proc/mounts
    mount -o remount,rw / && echo REMOUNT-RW=ok
    grep ' / ' /proc/mounts
    echo persisted > /probe && echo WRITE2=ok
    mount -o remount,ro / && echo REMOUNT-RO=ok
    echo after > /probe2 && echo WRITE3=ok
    ;;
  show) cat /probe; ls /probe2 ;;
  write) echo written-rw > /rw-file && echo WRITE=ok ;;
  idle) sleep 1 ;;
  devices)
    echo "NODE $(stat -c '%F %t:%T %a %g' /dev/ubda)"
    echo "XDEV $(stat -c '%t:%T' /dev/ubda) DDEV $(stat -c '%D' /)"
    echo "ROOTLINK $(readlink /dev/root)"
    echo "FSCKROOT $(cat /run/initramfs/fsck-root)"
    head -c 1 /dev/ubda >/dev/null || echo OPEN=refused
    [ -b /dev/ubdb ] && echo "UBDB $(stat -c '%t:%T' /dev/ubdb)"
    ;;
esac
poweroff -f
"#;

fn guest(test: &str) -> Option<KGuest> {
    if !can_boot(test) || !common::have_peers(test, &["dumpe2fs", "e2fsck"]) {
        return None;
    }
    let user = test_user(test)?;
    Some(KGuest::with_tree(user, |t| {
        common::uml::busybox_tree(t, INIT);
        std::fs::create_dir(t.join("run")).unwrap();
    }))
}

/// Boots the plain image `root_fs` (no COW: e2fsck and dumpe2fs read it)
/// with `extra` on the command line; returns the console.
fn boot(g: &KGuest, extra: &[&str]) -> String {
    let mut args = vec![
        "ubd0=root_fs",
        "root=/dev/ubda",
        "init=/init",
        "con=null",
        "con0=fd:0,fd:1",
    ];
    args.extend_from_slice(extra);
    let b = g.run(&args, LIMIT);
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
    b.output
}

fn mount_count(g: &KGuest) -> u32 {
    dumpe2fs_header(&g.path("root_fs"))["Mount count"]
        .parse()
        .unwrap()
}

#[test]
fn without_rw_writes_fail_until_the_guest_remounts_the_root_read_write_and_again_after_remount_ro()
{
    let Some(g) = guest("without_rw_writes_fail_until_the_guest_remounts") else {
        return;
    };
    assert_eq!(mount_count(&g), 0);
    let out = boot(&g, &["umid=rm1", "MODE=remount"]);
    assert!(
        out.contains("VFS: Mounted root (ext3 filesystem) readonly on device 98:0."),
        "{out}"
    );
    assert!(!out.contains("WRITE1=ok"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("/dev/ubda / fuse.ext3 ro,"), "{out}");
    assert!(out.contains("REMOUNT-RW=ok"), "{out}");
    assert!(out.contains("/dev/ubda / fuse.ext3 rw,"), "{out}");
    assert!(out.contains("WRITE2=ok"), "{out}");
    assert!(out.contains("REMOUNT-RO=ok"), "{out}");
    assert!(
        !out.contains("WRITE3=ok"),
        "a write after remount,ro: {out}"
    );
    common::fsck_clean(&g.path("root_fs"));
    let h = dumpe2fs_header(&g.path("root_fs"));
    assert_eq!(h["Mount count"], "1", "{h:?}");
    assert_eq!(h["Last mounted on"], "/", "{h:?}");
    assert_ne!(h["Last mount time"], "n/a", "{h:?}");
    assert_eq!(h["Filesystem state"], "clean", "{h:?}");
    // The next boot, read-only again, sees the write and not the refused one.
    let out = boot(&g, &["umid=rm2", "MODE=show"]);
    assert!(out.contains("\npersisted\n"), "{out}");
    assert!(out.contains("/probe2: No such file"), "{out}");
    // A boot that never writes leaves the superblock alone.
    let before = std::fs::read(g.path("root_fs")).unwrap();
    boot(&g, &["umid=rm3", "MODE=idle"]);
    assert!(
        std::fs::read(g.path("root_fs")).unwrap() == before,
        "a read-only boot changed the image"
    );
    assert_eq!(mount_count(&g), 1);
}

#[test]
fn each_read_write_boot_counts_a_mount_and_stamps_the_superblock() {
    let Some(g) = guest("each_read_write_boot_counts_a_mount") else {
        return;
    };
    let created = dumpe2fs_header(&g.path("root_fs"));
    for n in 1..=2u32 {
        let out = boot(&g, &["rw", "umid=rc", "MODE=write"]);
        assert!(out.contains("WRITE=ok"), "{out}");
        assert!(
            out.contains("VFS: Mounted root (ext3 filesystem) on device 98:0."),
            "{out}"
        );
        assert_eq!(mount_count(&g), n);
        common::fsck_clean(&g.path("root_fs"));
    }
    let h = dumpe2fs_header(&g.path("root_fs"));
    assert_eq!(h["Last mounted on"], "/", "{h:?}");
    assert_eq!(created["Last mounted on"], "<not available>", "{created:?}");
    assert_eq!(created["Last mount time"], "n/a", "{created:?}");
    assert_ne!(h["Last mount time"], "n/a", "{h:?}");
}

#[test]
fn the_roots_block_device_has_the_root_mounts_number_and_cannot_be_opened() {
    let Some(g) = guest("the_roots_block_device_has_the_root_mounts_number") else {
        return;
    };
    std::fs::write(g.path("second"), vec![0u8; 1 << 20]).unwrap();
    if let Some((uid, gid)) = g.user.ids {
        std::os::unix::fs::chown(g.path("second"), Some(uid), Some(gid)).unwrap();
    }
    let out = boot(&g, &["ubd1=second", "umid=rd", "MODE=devices"]);
    let line = |tag: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(tag))
            .unwrap_or_else(|| panic!("no {tag} in {out}"))
            .trim()
            .to_string()
    };
    let node = line("NODE ");
    assert!(node.starts_with("block special file 0:"), "{node}");
    assert!(node.ends_with(" 660 6"), "{node}");
    // The node's major:minor (hex) and the root's st_dev (hex, the
    // kernel's encoding: minor below 256 here) name one device, as
    // `mountpoint -x /dev/ubda` and `mountpoint -d /` compare them.
    let xd = line("XDEV ");
    let (x, d) = xd.split_once(" DDEV ").unwrap();
    let (major, minor) = x.split_once(':').unwrap();
    let major = u32::from_str_radix(major, 16).unwrap();
    let minor = u32::from_str_radix(minor, 16).unwrap();
    assert_eq!(major, 0, "an anonymous device, as every FUSE mount: {out}");
    assert!(minor < 256, "{out}");
    assert_eq!(
        u32::from_str_radix(d, 16).unwrap(),
        (major << 8) | minor,
        "/dev/ubda and / differ: {out}"
    );
    assert_eq!(line("ROOTLINK "), "ubda");
    let fsck = line("FSCKROOT ");
    assert!(fsck.starts_with("/dev/ubda: clean, "), "{fsck}");
    assert!(out.contains(&fsck), "the boot log says it too: {out}");
    assert!(out.contains("OPEN=refused"), "{out}");
    assert!(out.contains("Permission denied"), "{out}");
    assert_eq!(line("UBDB "), "62:10", "98:16 in hex: {out}");
}

#[test]
fn a_root_that_needs_a_full_check_gets_no_fsck_root_and_the_boot_log_says_why() {
    let Some(g) = guest("a_root_that_needs_a_full_check_gets_no_fsck_root") else {
        return;
    };
    // e2fsck's own trigger: the maximal mount count reached.
    common::run_ok(
        common::which("tune2fs").expect("tune2fs"),
        [
            "-c".as_ref(),
            "1".as_ref(),
            "-C".as_ref(),
            "1".as_ref(),
            g.path("root_fs").as_os_str(),
        ],
    );
    let out = boot(&g, &["umid=rf", "MODE=devices"]);
    assert!(
        out.contains("/dev/ubda has been mounted 1 times without being checked"),
        "{out}"
    );
    assert!(
        out.contains("FSCKROOT \n") || out.contains("FSCKROOT\n"),
        "{out}"
    );
    assert!(out.contains("No such file or directory"), "{out}");
}
