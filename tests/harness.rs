//! Checks of the test harness itself: the real UML kernel boots a busybox
//! guest through our seccomp shim and halts within its time limit.

mod common;

use common::uml::{init_script, Guest};
use std::time::Duration;

#[test]
fn real_uml_boots_a_busybox_guest_and_halts() {
    let test = "real_uml_boots_a_busybox_guest_and_halts";
    if !common::have_peers(test, &["linux.uml", "mke2fs", "busybox"]) {
        return;
    }
    let guest = Guest::new(
        &init_script("echo hello > /data/hello; cat /etc/hostname"),
        16,
    );
    let boot = guest.boot("a.cow,root_fs", &["umid=harness"], Duration::from_secs(60));
    assert!(boot.halted(), "guest did not halt: {boot:?}");
    assert!(boot.output.contains("GUEST-UP"), "{}", boot.output);
    assert!(boot.output.contains("umlkit-guest"), "{}", boot.output);
    assert!(guest.path("a.cow").is_file(), "the kernel made no COW");
}
