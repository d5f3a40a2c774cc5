//! The writer with the real UML kernel: a COW edited offline by `uml_fs`
//! (new /init, new /etc/hostname) boots and the guest sees the changes; a
//! file the guest wrote is modified by us and the guest reads it back on
//! the next boot; a journal left dirty by the guest's kernel (powered off
//! without unmounting) is replayed by our writer into the COW, after which
//! the merged image is `e2fsck -fn` clean.

mod common;

use common::uml::{init_script, Guest};
use common::{bin, have_peers, run, run_ok, stdout};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const PEERS: &[&str] = &["linux.uml", "mke2fs", "busybox", "e2fsck"];
const LIMIT: Duration = Duration::from_secs(60);

fn uml_fs_stdin(args: &[&str], input: &[u8]) {
    let mut child = Command::new(bin("uml_fs"))
        .args(args)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "uml_fs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fsck_merged(guest: &Guest, cow: &Path) {
    let merged = guest.path("merged");
    let _ = std::fs::remove_file(&merged);
    run_ok(bin("uml_moo"), [cow, merged.as_path()]);
    common::fsck_clean(&merged);
}

#[test]
fn guest_boots_a_cow_edited_offline_and_reads_back_our_changes_to_its_files() {
    let t = "guest_boots_a_cow_edited_offline_and_reads_back_our_changes_to_its_files";
    if !have_peers(t, PEERS) {
        return;
    }
    let guest = Guest::new(&init_script("echo ORIGINAL-INIT"), 16);
    let cow = guest.path("a.cow");
    let spec = format!("{},{}", cow.display(), guest.image.display());
    let new_init = init_script(
        "echo NEW-INIT\n\
         echo HOST=$(cat /etc/hostname)\n\
         echo GUESTFILE=$(cat /data/guest.txt 2>/dev/null)\n\
         echo 'written by the guest' > /data/guest.txt\n\
         mount -o remount,ro /",
    );
    uml_fs_stdin(&["write", &spec, "/init"], new_init.as_bytes());
    run_ok(bin("uml_fs"), ["chmod", &spec, "755", "/init"]);
    uml_fs_stdin(&["write", &spec, "/etc/hostname"], b"edited-offline\n");
    let boot = guest.boot("a.cow,root_fs", &[], LIMIT);
    assert!(boot.halted(), "{}", boot.output);
    assert!(boot.output.contains("NEW-INIT"), "{}", boot.output);
    assert!(
        boot.output.contains("HOST=edited-offline"),
        "{}",
        boot.output
    );
    assert!(
        boot.output.contains("GUESTFILE=\r") || boot.output.contains("GUESTFILE=\n"),
        "{}",
        boot.output
    );
    // The guest's file, modified by us, read back by the guest.
    let cow_s = cow.to_str().unwrap();
    assert_eq!(
        stdout(&run_ok(bin("uml_fs"), ["cat", cow_s, "/data/guest.txt"])),
        "written by the guest\n"
    );
    uml_fs_stdin(
        &["write", cow_s, "/data/guest.txt"],
        b"changed-by-the-host\n",
    );
    let boot = guest.boot("a.cow,root_fs", &[], LIMIT);
    assert!(boot.halted(), "{}", boot.output);
    assert!(
        boot.output.contains("GUESTFILE=changed-by-the-host"),
        "{}",
        boot.output
    );
    fsck_merged(&guest, &cow);
}

#[test]
fn a_journal_left_dirty_by_the_guest_kernel_is_replayed_into_the_cow_and_fsck_is_clean() {
    let t = "a_journal_left_dirty_by_the_guest_kernel_is_replayed_into_the_cow_and_fsck_is_clean";
    if !have_peers(t, PEERS) {
        return;
    }
    // Writes files, syncs (commits the journal) and powers off without
    // unmounting: needs_recovery stays set.
    let guest = Guest::new(
        "#!/bin/sh\nmount -t proc proc /proc\n\
         mkdir /data/d; for i in 1 2 3 4 5 6 7 8; do echo file $i > /data/d/f$i; done\n\
         rm /data/d/f3; mv /data/d/f4 /data/moved\n\
         sync\necho GUEST-DONE\npoweroff -f\n",
        16,
    );
    let cow = guest.path("a.cow");
    run_ok(bin("uml_mkcow"), [&cow, &guest.image]);
    let boot = guest.boot("a.cow,root_fs", &[], LIMIT);
    assert!(boot.output.contains("GUEST-DONE"), "{}", boot.output);
    let cow_s = cow.to_str().unwrap();
    let info = stdout(&run_ok(bin("uml_fs"), ["--no-replay", "info", cow_s]));
    assert!(
        info.contains("needs_recovery"),
        "the guest left a clean filesystem:\n{info}"
    );
    // Any editing command opens for writing: replay, then our change.
    run_ok(bin("uml_fs"), ["touch", cow_s, "/data/after-replay"]);
    let info = stdout(&run_ok(bin("uml_fs"), ["--no-replay", "info", cow_s]));
    assert!(!info.contains("needs_recovery"), "{info}");
    assert_eq!(
        stdout(&run_ok(
            bin("uml_fs"),
            ["--no-replay", "cat", cow_s, "/data/moved"]
        )),
        "file 4\n"
    );
    assert!(
        !run(bin("uml_fs"), ["--no-replay", "cat", cow_s, "/data/d/f3"])
            .status
            .success()
    );
    fsck_merged(&guest, &cow);
}
