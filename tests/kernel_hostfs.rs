//! hostfs: the guest's `mount -t hostfs none DIR -o HOSTPATH` shows a host
//! directory, with the invoking user's access, writes landing on the host
//! as that user's files; with `hostfs=ROOT` nothing outside ROOT is
//! reachable (`..`, symbolic links); bad mounts fail with one line.
//! Guests run as the test user (tests/common/kernel.rs).

mod common;

use common::kernel::{boot_args, can_boot, test_user, KGuest};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

const INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc 2>/dev/null
mkdir -p /mnt/h /mnt/x
echo GUEST-UP MODE=$MODE
case "$MODE" in
  rw)
    mount -t hostfs none /mnt/h -o "$SHARE" && echo MOUNTED
    echo "READ:$(cat /mnt/h/hello.txt)"
    echo from-guest > /mnt/h/out.txt && echo WROTE
    echo "OWNER:$(stat -c %u /mnt/h/hello.txt)"
    echo "OTHER:$(stat -c %u /mnt/h/theirs.txt)"
    cat /mnt/h/private/p.txt 2>/dev/null && echo PRIVATE-READ
    grep -q ' /mnt/h ' /proc/mounts && echo LISTED
    umount /mnt/h && echo UNMOUNTED
    [ -e /mnt/h/hello.txt ] || echo GONE
    mount -t hostfs -r none /mnt/h -o "$SHARE" && echo MOUNTED-RO
    echo x 2>/dev/null > /mnt/h/ro.txt || echo RO-REFUSED
    ;;
  jail)
    mount -t hostfs none /mnt/h -o /inside && echo "INSIDE:$(cat /mnt/h/in.txt)"
    cat /mnt/h/esc 2>/dev/null
    echo "ESC-DONE"
    mount none /mnt/x -t hostfs && echo "ROOT:$(ls /mnt/x | tr '\n' ' ')"
    for p in .. ../secret inside/../../secret inside/link inside/abslink; do
      if mount -t hostfs none /mnt/x -o "$p" 2>/dev/null; then
        echo "ESCAPED:$p"; cat /mnt/x/secret.txt /mnt/x/*/secret.txt 2>/dev/null; umount /mnt/x
      else
        echo "REFUSED:$p"
      fi
    done
    ;;
  bad)
    mount -t hostfs none /mnt/x -o /no/such/dir > /tmp/e1 2>&1; echo "RC1:$?"
    echo "LINES1:$(wc -l < /tmp/e1)"; cat /tmp/e1
    mount -t hostfs none /mnt/x -o "$SHARE/hello.txt" > /tmp/e2 2>&1; echo "RC2:$?"
    echo "LINES2:$(wc -l < /tmp/e2)"; cat /tmp/e2
    mount -t hostfs none /no/such/target -o "$SHARE" > /tmp/e3 2>&1; echo "RC3:$?"
    echo "LINES3:$(wc -l < /tmp/e3)"; cat /tmp/e3
    ;;
  nested)
    unshare -U -r -m sh -c 'mount -t hostfs none /mnt/x -o "$SHARE" && echo NESTED-MOUNTED' 2>&1
    unshare -U -r -m true && echo USERNS-OK
    mount -t hostfs none /mnt/x -o "$SHARE" && echo ROOT-MOUNTED
    ;;
esac
poweroff -f
"#;

fn guest(test: &str) -> Option<KGuest> {
    if !can_boot(test) {
        return None;
    }
    let user = test_user(test)?;
    Some(KGuest::with_tree(user, |tree| {
        common::uml::busybox_tree(tree, INIT)
    }))
}

fn own(g: &KGuest, p: &Path) {
    if let Some((uid, gid)) = g.user.ids {
        std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    }
}

/// A directory of the test user's with `hello.txt` (theirs), `theirs.txt`
/// (root's, world-readable) and `private/` (root's, mode 0700).
fn share(g: &KGuest) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let share = g.path("share");
    std::fs::create_dir(&share).unwrap();
    std::fs::write(share.join("hello.txt"), "from-host\n").unwrap();
    std::fs::write(share.join("theirs.txt"), "root's\n").unwrap();
    std::fs::create_dir(share.join("private")).unwrap();
    std::fs::write(share.join("private/p.txt"), "private\n").unwrap();
    std::fs::set_permissions(
        share.join("private"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    own(g, &share);
    own(g, &share.join("hello.txt"));
    share
}

fn run(g: &KGuest, extra: &[&str]) -> String {
    let b = g.run(&boot_args("ubd0=a.cow,root_fs", extra), LIMIT);
    assert!(b.output.contains("GUEST-UP"), "{}", b.output);
    b.output
}

#[test]
fn a_guest_mounts_a_host_directory_reads_it_and_writes_as_the_invoking_user() {
    let Some(g) = guest("a_guest_mounts_a_host_directory_reads_it_and_writes_as_the_invoking_user")
    else {
        return;
    };
    let share = share(&g);
    let share_arg = format!("SHARE={}", share.display());
    let out = run(&g, &["MODE=rw", &share_arg]);
    assert!(out.contains("MOUNTED\n"), "{out}");
    assert!(out.contains("READ:from-host"), "{out}");
    assert!(out.contains("WROTE"), "{out}");
    // The invoking user is the guest's root; root's files are nobody's.
    assert!(out.contains("OWNER:0\n"), "{out}");
    assert!(out.contains("OTHER:65534\n"), "{out}");
    assert!(!out.contains("PRIVATE-READ"), "{out}");
    assert!(out.contains("LISTED"), "{out}");
    assert!(out.contains("UNMOUNTED") && out.contains("GONE"), "{out}");
    assert!(
        out.contains("MOUNTED-RO") && out.contains("RO-REFUSED"),
        "{out}"
    );
    assert!(!share.join("ro.txt").exists());
    let written = share.join("out.txt");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "from-guest\n");
    let expected_uid = g
        .user
        .ids
        .map_or_else(|| nix::unistd::getuid().as_raw(), |(u, _)| u);
    assert_eq!(std::fs::metadata(&written).unwrap().uid(), expected_uid);
}

#[test]
fn with_a_hostfs_root_neither_dotdot_nor_a_symlink_reaches_outside_it() {
    let Some(g) = guest("with_a_hostfs_root_neither_dotdot_nor_a_symlink_reaches_outside_it")
    else {
        return;
    };
    // ROOT/inside/{in.txt, esc -> ../../secret/secret.txt, link -> ../../secret,
    // abslink -> /abs/secret}; the secret beside ROOT.
    let top = g.path("top");
    let root = top.join("root");
    let inside = root.join("inside");
    let secret = top.join("secret");
    std::fs::create_dir_all(&inside).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("secret.txt"), "TOP-SECRET\n").unwrap();
    std::fs::write(inside.join("in.txt"), "in-root\n").unwrap();
    std::os::unix::fs::symlink("../../secret/secret.txt", inside.join("esc")).unwrap();
    std::os::unix::fs::symlink("../../secret", inside.join("link")).unwrap();
    std::os::unix::fs::symlink(&secret, inside.join("abslink")).unwrap();
    for p in [&top, &root, &inside, &secret] {
        own(&g, p);
    }
    let hostfs = format!("hostfs={}", root.display());
    let out = run(&g, &["MODE=jail", &hostfs]);
    assert!(out.contains("INSIDE:in-root"), "{out}");
    assert!(out.contains("ROOT:inside"), "{out}");
    assert!(out.contains("ESC-DONE"), "{out}");
    for p in [
        "..",
        "../secret",
        "inside/../../secret",
        "inside/link",
        "inside/abslink",
    ] {
        assert!(out.contains(&format!("REFUSED:{p}\n")), "{p}: {out}");
    }
    assert!(!out.contains("TOP-SECRET"), "{out}");
}

#[test]
fn only_the_guests_root_not_a_user_namespace_of_the_guests_mounts_hostfs() {
    let Some(g) = guest("only_the_guests_root_not_a_user_namespace_of_the_guests_mounts_hostfs")
    else {
        return;
    };
    let share = share(&g);
    let share_arg = format!("SHARE={}", share.display());
    let out = run(&g, &["MODE=nested", &share_arg, "umlkit.nested_userns"]);
    assert!(out.contains("USERNS-OK"), "{out}");
    assert!(!out.contains("NESTED-MOUNTED"), "{out}");
    assert!(out.to_lowercase().contains("permission denied"), "{out}");
    assert!(out.contains("ROOT-MOUNTED"), "{out}");
}

#[test]
fn bad_hostfs_mounts_fail_with_one_line_in_the_guest() {
    let Some(g) = guest("bad_hostfs_mounts_fail_with_one_line_in_the_guest") else {
        return;
    };
    let share = share(&g);
    let share_arg = format!("SHARE={}", share.display());
    let out = run(&g, &["MODE=bad", &share_arg]);
    for (n, why) in [
        (1, "No such file or directory"),
        (2, "Not a directory"),
        (3, "No such file or directory"),
    ] {
        assert!(
            out.contains(&format!("RC{n}:1\n")) || out.contains(&format!("RC{n}:255\n")),
            "{n}: {out}"
        );
        assert!(out.contains(&format!("LINES{n}:1\n")), "{n}: {out}");
        let line = out
            .lines()
            .find(|l| l.starts_with("mount:") && l.contains(why))
            .unwrap_or_else(|| panic!("{n}: no mount: line with {why}: {out}"));
        assert!(line.contains("failed"), "{line}");
    }
}
