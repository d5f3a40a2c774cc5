//! The bundled fixtures: a small ext3 guest image and a COW file the real
//! UML kernel wrote over it. `cargo test --test fixtures -- --ignored`
//! regenerates them (needs linux.uml, mke2fs and busybox).

mod common;

use common::uml::{init_script, Guest};
use common::{bin, have_peers, run_ok, set_mtime, stdout};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Git keeps no mtimes: the COW header records this one for the image.
const FIXTURE_MTIME: i64 = 1_700_000_000;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

#[test]
#[ignore = "regenerates fixtures/ with the real UML kernel"]
fn regenerate_fixtures() {
    assert!(have_peers(
        "regenerate_fixtures",
        &["linux.uml", "mke2fs", "busybox"]
    ));
    let guest = Guest::new(
        &init_script(
            "echo 'Hello from a umlkit guest.' > /etc/motd\n\
             echo fixture-guest > /etc/hostname\n\
             mkdir -p /root/notes\n\
             echo 'This file was written inside the guest and merged by uml_moo.' > /root/notes/merged.txt\n\
             mount -o remount,ro /",
        ),
        8,
    );
    set_mtime(&guest.image, FIXTURE_MTIME);
    let boot = guest.boot(
        "guest.cow,root_fs",
        &["umid=fixture"],
        Duration::from_secs(60),
    );
    assert!(boot.halted(), "{}", boot.output);
    std::fs::copy(&guest.image, fixtures().join("root_fs.ext3")).unwrap();
    std::fs::copy(guest.path("guest.cow"), fixtures().join("guest.cow")).unwrap();
}

#[test]
fn the_bundled_cow_merges_into_an_image_holding_the_guests_writes() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("root_fs.ext3");
    std::fs::copy(fixtures().join("root_fs.ext3"), &image).unwrap();
    set_mtime(&image, FIXTURE_MTIME);
    let merged = dir.path().join("merged.ext3");
    run_ok(
        bin("uml_moo"),
        [&image, &fixtures().join("guest.cow"), &merged],
    );
    let before = std::fs::read(&image).unwrap();
    let after = std::fs::read(&merged).unwrap();
    assert_eq!(before.len(), after.len());
    assert!(before != after, "the COW changed nothing");
    if !have_peers(
        "the_bundled_cow_merges_into_an_image_holding_the_guests_writes",
        &["debugfs", "e2fsck"],
    ) {
        return;
    }
    let cat = run_ok(
        common::which("debugfs").unwrap(),
        [
            Path::new("-R"),
            Path::new("cat /root/notes/merged.txt"),
            &merged,
        ],
    );
    assert!(
        stdout(&cat).contains("merged by uml_moo"),
        "{}",
        stdout(&cat)
    );
    common::fsck_clean(&merged);
}
