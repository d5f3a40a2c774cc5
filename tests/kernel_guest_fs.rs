//! How the guest sees its root through the FUSE server's caching: names
//! the host kernel remembers as absent (negative entries with a timeout)
//! become visible as soon as the guest creates them, a create is at once
//! stat-able with the mode and size it has, and several guest processes
//! asking at once are all answered while the server keeps one thread hot
//! (`kernel::disk::fuse_hot`).

mod common;

use common::kernel::{can_boot, test_user, KGuest, EXT4_ROOT_ARGS};
use std::time::Duration;

const INIT: &str = r#"#!/bin/sh
umask 022
echo GUEST-UP
mkdir /d && cd /d || exit 1
# Looked up while absent, twice: the second answer is the cached one.
[ -e late ] && echo LATE-TOO-EARLY
ls late 2>/dev/null && echo LATE-LISTED
echo hello > late && [ -e late ] && echo LATE=seen
echo "LATE-DATA=$(cat late)"
stat -c 'LATE-STAT=%a %s' late
(umask 027; : > masked; stat -c 'MASKED=%a %s' masked)
rm late; [ -e late ] || echo LATE=gone
echo again > late; echo "LATE-AGAIN=$(cat late)"
mv late moved; [ -e late ] || echo LATE=renamed; echo "MOVED=$(cat moved)"
# Four processes at once, each creating, looking up and reading its own.
for p in 1 2 3 4; do
  ( mkdir p$p; i=0; while [ $i -lt 200 ]; do echo $p$i > p$p/f$i; i=$((i+1)); done
    i=0; n=0; while [ $i -lt 200 ]; do [ "$(cat p$p/f$i)" = $p$i ] && n=$((n+1)); i=$((i+1)); done
    echo "P$p=$n" ) &
done
wait
sync
poweroff -f
"#;

#[test]
fn a_name_cached_as_absent_appears_when_created_and_parallel_guests_are_answered() {
    let t = "a_name_cached_as_absent_appears_when_created_and_parallel_guests_are_answered";
    if !can_boot(t) || !common::have_peers(t, &["mke2fs", "e2fsck", "debugfs"]) {
        return;
    }
    let Some(user) = test_user(t) else {
        return;
    };
    let g = KGuest::with_ext4_root(user, INIT);
    let b = g.run(&EXT4_ROOT_ARGS, Duration::from_secs(120));
    let out = b.output.clone();
    assert!(out.contains("GUEST-UP"), "{out}");
    assert!(!out.contains("LATE-TOO-EARLY"), "{out}");
    assert!(!out.contains("LATE-LISTED"), "{out}");
    assert!(out.contains("LATE=seen"), "{out}");
    assert!(out.contains("LATE-DATA=hello"), "{out}");
    assert!(out.contains("LATE-STAT=644 6"), "{out}");
    assert!(out.contains("MASKED=640 0"), "{out}");
    assert!(out.contains("LATE=gone"), "{out}");
    assert!(out.contains("LATE-AGAIN=again"), "{out}");
    assert!(out.contains("LATE=renamed"), "{out}");
    assert!(out.contains("MOVED=again"), "{out}");
    for p in 1..=4 {
        assert!(out.contains(&format!("P{p}=200")), "process {p}: {out}");
    }
    assert!(b.halted(), "{out}");
    let img = g.path("root_ext4");
    common::fsck_clean(&img);
    let cat = common::run(
        "debugfs",
        ["-R".as_ref(), "cat /d/p3/f199".as_ref(), img.as_os_str()],
    );
    assert_eq!(common::stdout(&cat), "3199\n");
}
