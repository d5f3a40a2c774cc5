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
    std::fs::copy(common::bin("linux"), dir.path().join("linux")).unwrap();
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
