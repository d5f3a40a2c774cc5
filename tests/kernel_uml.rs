//! `linux` against the real `linux.uml` on the same COW (scenario 5 of
//! issue 8, the direction that needs no writer yet): a COW written by
//! `linux.uml` and left with a dirty journal boots under `linux`, which
//! replays the journal in memory and sees the files.

mod common;

use common::kernel::{can_boot, test_user, KGuest};
use std::time::Duration;

#[test]
fn our_kernel_boots_a_cow_written_by_linux_uml_and_sees_its_files() {
    let test = "our_kernel_boots_a_cow_written_by_linux_uml";
    if !common::have_peers(test, &["linux.uml"]) || !can_boot(test) {
        return;
    }
    let Some(user) = test_user(test) else {
        return;
    };
    let init = common::uml::init_script(
        "if [ -f /written ]; then cat /written; else echo written-by-linux-uml > /written; fi",
    );
    let g = common::uml::Guest::new(&init, 64);
    let b = g.boot("a.cow,root_fs", &[], Duration::from_secs(60));
    assert!(b.halted(), "linux.uml did not halt: {}", b.output);
    assert!(b.output.contains("GUEST-DONE"), "{}", b.output);
    let backing = common::kernel::fingerprint(&g.image);

    let dir = g.dir;
    common::copy_executable(&common::bin("linux"), &dir.path().join("linux"));
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    if let Some((uid, gid)) = user.ids {
        let _ = std::process::Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}")])
            .arg(dir.path())
            .status();
    }
    let ours = KGuest { dir, user };
    let b = ours.run(
        &[
            "ubd0=a.cow,root_fs",
            "root=/dev/ubda",
            "rw",
            "init=/init",
            "umid=ku5",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
    assert!(b.output.contains("written-by-linux-uml"), "{}", b.output);
    assert!(
        b.output.contains("EXT4-fs (ubda): recovery complete"),
        "the dirty journal left by linux.uml was not replayed: {}",
        b.output
    );
    assert_eq!(common::kernel::fingerprint(&ours.path("root_fs")), backing);
}

#[test]
fn linux_uml_boots_a_cow_written_by_our_kernel_and_sees_its_files() {
    let test = "linux_uml_boots_a_cow_written_by_our_kernel";
    if !common::have_peers(test, &["linux.uml"]) || !can_boot(test) {
        return;
    }
    let Some(user) = test_user(test) else {
        return;
    };
    let init = common::uml::init_script(
        "if [ -f /written ]; then cat /written; else echo written-by-umlkit > /written; fi",
    );
    let ours = KGuest::new(user, &init);
    let b = ours.run(
        &[
            "ubd0=a.cow,root_fs",
            "root=/dev/ubda",
            "rw",
            "init=/init",
            "umid=ku6",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{}", b.output);
    let b = common::uml::boot(
        ours.dir.path(),
        &[
            "ubd0=a.cow,root_fs".to_string(),
            "root=/dev/ubda".to_string(),
            "rw".to_string(),
            "init=/init".to_string(),
        ],
        Duration::from_secs(60),
    );
    assert!(b.halted(), "{}", b.output);
    assert!(b.output.contains("written-by-umlkit"), "{}", b.output);
}

/// `linux` is killed with SIGKILL right after the guest's `sync`: what the
/// guest synced is committed in the COW's journal, not yet written home.
/// The real kernel then boots that COW, replays our journal (checksummed
/// v3 on ext4) and sees every synced file; the merged image is fsck-clean.
fn linux_uml_replays_what_our_kernel_committed_before_a_kill(fs: &str, umid: &str) {
    let test = format!("linux_uml_replays_what_our_kernel_committed_before_a_kill ({fs})");
    if !common::have_peers(&test, &["linux.uml", "mke2fs", "e2fsck"]) || !can_boot(&test) {
        return;
    }
    let Some(user) = test_user(&test) else {
        return;
    };
    let init = "#!/bin/sh\nmount -t proc proc /proc\n\
        if [ -f /data/kept ]; then echo \"KEPT=$(cat /data/kept) COUNT=$(ls /data/many | wc -l)\"; sync; poweroff -f; fi\n\
        mkdir /data/many; i=0; while [ $i -lt 200 ]; do echo $i > /data/many/f$i; i=$((i + 1)); done\n\
        rm /data/many/f7; echo synced-before-the-kill > /data/kept\n\
        sync\necho SYNCED\nsleep 600\n";
    let ours = KGuest::new(user, init);
    if fs != "ext3" {
        let tree = ours.path("tree");
        common::uml::busybox_tree(&tree, init);
        common::mkfs_from(fs, &tree, &ours.path("root_fs"), "64M");
        std::fs::remove_dir_all(&tree).unwrap();
        if let Some((uid, gid)) = ours.user.ids {
            std::os::unix::fs::chown(ours.path("root_fs"), Some(uid), Some(gid)).unwrap();
        }
    }
    let cow = format!("a-{fs}.cow");
    let disk = format!("ubd0={cow},root_fs");
    let umid = format!("umid={umid}");
    let running = ours.start(&[&disk, "root=/dev/ubda", "rw", "init=/init", &umid]);
    assert!(
        running.wait_for("SYNCED", Duration::from_secs(60)),
        "{}",
        running.output()
    );
    nix::sys::signal::kill(running.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = running.finish(Duration::from_secs(30));

    let cow_path = ours.path(&cow);
    let info = common::stdout(&common::run_ok(
        common::bin("uml_fs"),
        [
            "--no-replay".as_ref(),
            "info".as_ref(),
            cow_path.as_os_str(),
        ],
    ));
    assert!(
        info.contains("needs_recovery"),
        "the kill left no committed journal to replay:\n{info}"
    );
    let b = common::uml::boot(
        ours.dir.path(),
        &[
            disk.clone(),
            "root=/dev/ubda".to_string(),
            "rw".to_string(),
            "init=/init".to_string(),
        ],
        Duration::from_secs(60),
    );
    assert!(b.halted(), "{}", b.output);
    assert!(
        b.output.contains("recovery complete"),
        "linux.uml did not replay the journal: {}",
        b.output
    );
    assert!(
        b.output.contains("KEPT=synced-before-the-kill COUNT=199"),
        "{}",
        b.output
    );
    let merged = ours.path("merged");
    common::run_ok(
        common::bin("uml_moo"),
        [cow_path.as_path(), merged.as_path()],
    );
    common::fsck_clean(&merged);
}

#[test]
fn linux_uml_replays_an_ext3_journal_our_kernel_committed_before_a_kill() {
    linux_uml_replays_what_our_kernel_committed_before_a_kill("ext3", "kx3");
}

#[test]
fn linux_uml_replays_an_ext4_journal_our_kernel_committed_before_a_kill() {
    linux_uml_replays_what_our_kernel_committed_before_a_kill("ext4", "kx4");
}
