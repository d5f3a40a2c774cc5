//! A stock Debian guest under `linux`, exactly as in the classic UML
//! article (issue 13): a debootstrapped bookworm with sysvinit, booted as
//! a normal user with the article's own command line
//! `linux ubd0=Debian1.cow,root_fs root=/dev/ubda`, driven through a pty
//! as a person at a terminal would.

mod common;

use common::debian::DebianGuest;
use std::time::Duration;

/// A Debian boot on a loaded two-core machine.
const BOOT: Duration = Duration::from_secs(240);
const SHELL: Duration = Duration::from_secs(60);

/// The article's command line, word for word.
const ARTICLE: [&str; 2] = ["ubd0=Debian1.cow,root_fs", "root=/dev/ubda"];

/// Logs in as root (empty password) and waits for the shell.
fn log_in(g: &mut common::debian::PtyGuest, host: &str) {
    g.expect(&format!("{host} login:"), BOOT);
    g.send("root\n");
    g.expect(&format!("root@{host}:~#"), SHELL);
}

/// Runs `cmd` in the guest's shell and waits for its `marker` line.
fn run(g: &mut common::debian::PtyGuest, cmd: &str, marker: &str) -> String {
    g.send(&format!("{cmd}; echo {marker}-$?\n"));
    // The echo of the typed line holds "{marker}-$?", not "{marker}-0".
    g.expect(&format!("{marker}-0"), SHELL);
    g.since_mark()
}

#[test]
fn a_stock_debian_boots_to_login_with_the_articles_command_line_and_keeps_its_changes() {
    let test = "a_stock_debian_boots_to_login_with_the_articles_command_line";
    let Some(d) = DebianGuest::new(test) else {
        return;
    };
    let mut g = d.start(&ARTICLE);
    log_in(&mut g, "debian");
    let boot = g.transcript();
    assert!(
        boot.contains("/dev/ubda: clean, "),
        "the root check: {boot}"
    );
    for bad in [
        "missing or incorrect",
        "maintenance shell",
        "of the root filesystem failed",
        "Read-only file system",
    ] {
        assert!(!boot.contains(bad), "{bad:?} in the boot:\n{boot}");
    }
    g.send("df -h / | tail -n 1\n");
    g.expect("/dev/ubda", SHELL);
    run(&mut g, "echo debian1 > /etc/hostname", "HOSTNAME-WRITTEN");
    g.send("halt\n");
    let code = g.wait(BOOT);
    assert_eq!(code, Some(0), "halt:\n{}", g.transcript());
    assert!(
        g.transcript().contains("reboot: System halted"),
        "{}",
        g.transcript()
    );
    // The next boot of the same COW comes up as debian1.
    let mut g = d.start(&ARTICLE);
    log_in(&mut g, "debian1");
    g.send("cat /etc/hostname\n");
    g.expect("\ndebian1", SHELL);
    g.send("halt\n");
    assert_eq!(g.wait(BOOT), Some(0), "{}", g.transcript());
}

#[test]
fn the_debian_image_has_the_articles_fstab_inittab_and_an_empty_root_password() {
    let test = "the_debian_image_has_the_articles_fstab";
    let Some(image) = common::debian::image(test) else {
        return;
    };
    if !common::have_peers(test, &["debugfs"]) {
        return;
    }
    let cat = |path: &str| {
        let out = common::run_ok(
            common::which("debugfs").unwrap(),
            [
                "-R".as_ref(),
                format!("cat {path}").as_ref(),
                image.as_os_str(),
            ],
        );
        common::stdout(&out)
    };
    assert_eq!(
        cat("/etc/fstab"),
        "/dev/ubda / ext3 defaults,errors=remount-ro 0 1\n"
    );
    assert!(cat("/etc/shadow").starts_with("root::"));
    let inittab = cat("/etc/inittab");
    assert!(
        inittab.contains("\nC0:2345:respawn:/sbin/getty 38400 console\n"),
        "{inittab}"
    );
    assert!(!inittab.contains("\n1:2345:respawn"), "{inittab}");
    assert!(cat("/etc/init.d/checkroot.sh").contains("mountpoint -qx $rootdev"));
    common::fsck_clean(&image);
}
