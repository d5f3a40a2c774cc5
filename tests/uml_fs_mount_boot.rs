//! A COW changed through `uml_fs mount` boots afterwards under Debian's
//! `linux.uml`: the test user mounts `COW,BACKING` read-write, writes a
//! file, unmounts; the real kernel then boots that COW (no journal left to
//! recover) and its init sees the file.

mod common;

use common::kernel::{test_user, User};
use common::uml::{init_script, Guest};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const MESSAGE: &str = "written through uml_fs mount";

/// Runs `script` with `sh -c` as `user` in `dir`; panics on failure.
fn sh_ok(user: User, dir: &Path, script: &str) {
    let mut cmd = match user.ids {
        Some((uid, gid)) => {
            let mut c = Command::new(common::which("setpriv").expect("setpriv"));
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg("--")
                .arg("sh");
            c
        }
        None => Command::new("sh"),
    };
    let out = cmd
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\nstdout: {}\nstderr: {}",
        common::stdout(&out),
        common::stderr(&out)
    );
}

#[test]
fn a_cow_written_through_uml_fs_mount_boots_under_linux_uml_and_the_guest_sees_the_file() {
    let t = "a_cow_written_through_uml_fs_mount_boots_under_linux_uml_and_the_guest_sees_the_file";
    if !common::have_peers(
        t,
        &["linux.uml", "mke2fs", "busybox", "fusermount3", "setpriv"],
    ) {
        return;
    }
    let fuse_ok = std::fs::metadata("/dev/fuse")
        .is_ok_and(|m| std::os::unix::fs::MetadataExt::mode(&m) & 0o006 == 0o006);
    if !fuse_ok {
        common::skip(t, "/dev/fuse missing or not mode 0666");
        return;
    }
    let Some(user) = test_user(t) else { return };

    let guest = Guest::new(
        &init_script("echo \"SEEN: $(cat /data/from-host.txt 2>&1)\""),
        16,
    );
    let d = guest.dir.path();
    // The test user works in the guest's directory with copies of our
    // tools (the checkout may be out of its reach).
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(d.join("mnt")).unwrap();
    std::fs::create_dir(d.join("bin")).unwrap();
    for tool in ["uml_fs", "uml_mkcow"] {
        common::copy_executable(&common::bin(tool), &d.join("bin").join(tool));
    }
    if let Some((uid, gid)) = user.ids {
        common::run_ok(
            "chown",
            ["-R", &format!("{uid}:{gid}"), d.to_str().unwrap()],
        );
    }
    let before = common::kernel::fingerprint(&guest.image);
    sh_ok(
        user,
        d,
        &format!(
            "set -e\n\
             bin/uml_mkcow a.cow root_fs\n\
             bin/uml_fs mount a.cow,root_fs mnt -o rw\n\
             echo '{MESSAGE}' > mnt/data/from-host.txt\n\
             bin/uml_fs umount mnt"
        ),
    );
    assert_eq!(
        common::kernel::fingerprint(&guest.image),
        before,
        "the mount wrote into the backing file"
    );

    let boot = guest.boot("a.cow,root_fs", &["umid=fsmountboot"], LIMIT);
    assert!(
        boot.halted(),
        "linux.uml did not boot the COW and halt:\n{}",
        boot.output
    );
    assert!(
        boot.output.contains(&format!("SEEN: {MESSAGE}")),
        "the guest did not see the file written through the mount:\n{}",
        boot.output
    );
    // ("EXT4-fs (ubda): recovery complete" after a replay; the raid6
    // module's "recovery algorithm" line is another matter.)
    assert!(
        !boot
            .output
            .lines()
            .any(|l| l.contains("(ubda)") && l.to_lowercase().contains("recover")),
        "the kernel had to recover a journal uml_fs umount should have committed:\n{}",
        boot.output
    );
}
