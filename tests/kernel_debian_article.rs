//! The classic UML article's destruction scenario on a stock Debian guest
//! (issue 13): `rm -rf --no-preserve-root /` as root, `kill -9` of the
//! kernel from the host, the next boot recovers the journal and finds no
//! init, and deleting the COW file boots a fresh system.

mod common;

use common::debian::{DebianGuest, PtyGuest};
use std::time::Duration;

const BOOT: Duration = Duration::from_secs(240);
const SHELL: Duration = Duration::from_secs(120);
const ARTICLE: [&str; 2] = ["ubd0=Debian1.cow,root_fs", "root=/dev/ubda"];

fn log_in(g: &mut PtyGuest) {
    g.expect("debian login:", BOOT);
    g.send("root\n");
    g.expect("root@debian:~#", SHELL);
}

#[test]
fn rm_rf_root_then_kill_9_panics_with_no_init_and_a_new_cow_boots_fresh() {
    let test = "rm_rf_root_then_kill_9";
    let Some(d) = DebianGuest::new(test) else {
        return;
    };
    let mut g = d.start(&ARTICLE);
    log_in(&mut g);
    // `echo` is a shell builtin: it still runs once /bin is gone.
    g.send("rm -rf --no-preserve-root / 2>/dev/null; echo RM-DONE-$((1+1))\n");
    g.expect("RM-DONE-2", SHELL);
    // Past the 5 s journal commit, as in the article: the deletions are
    // in the journal when the kernel dies.
    std::thread::sleep(Duration::from_secs(7));
    let pid = g.pid().expect("monitor running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert_eq!(g.wait(SHELL), Some(137), "{}", g.transcript());

    let mut g = d.start(&ARTICLE);
    let code = g.wait(BOOT);
    let out = g.transcript();
    assert!(
        out.contains("Kernel panic - not syncing: No working init found."),
        "{out}"
    );
    assert!(
        out.contains("recovery complete"),
        "no journal recovery:\n{out}"
    );
    assert_ne!(code, Some(0), "{out}");

    std::fs::remove_file(d.path("Debian1.cow")).unwrap();
    let mut g = d.start(&ARTICLE);
    log_in(&mut g);
    g.send("ls /bin/bash && echo FRESH-$((2+2))\n");
    g.expect("FRESH-4", SHELL);
    g.send("halt\n");
    assert_eq!(g.wait(BOOT), Some(0), "{}", g.transcript());
}

/// The article's networking: a TAP made once by root with `tunctl -u`,
/// `eth0=tuntap,tap0` on the kernel command line, a static address in
/// the guest's own /etc/network/interfaces, and pings both ways (in a
/// network namespace of the test's own).
#[test]
fn the_articles_tuntap_network_pings_both_ways_from_etc_network_interfaces() {
    let test = "debian_tuntap_network";
    if !common::have_root(test) {
        return;
    }
    let Some(d) = DebianGuest::new(test) else {
        return;
    };
    let _tun = common::net::TunModeGuard::open_to_users();
    let ns = common::net::Netns::new();
    let uid = d
        .user
        .ids
        .map_or_else(|| nix::unistd::getuid().as_raw(), |(u, _)| u);
    ns.run_ok(
        common::bin("tunctl"),
        &["-t", "tap0", "-u", &uid.to_string()],
    );
    ns.run_ok("ip", &["addr", "add", "192.168.0.254/24", "dev", "tap0"]);
    ns.run_ok("ip", &["link", "set", "tap0", "up"]);
    // The guest's configuration, written into its COW before the boot
    // with our own uml_fs, as a normal user would.
    let interfaces = "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n    address 192.168.0.253\n    netmask 255.255.255.0\n";
    // A copy beside the guest: the checkout may sit where the test user
    // cannot reach (a 0700 temporary directory).
    let uml_fs = d.path("uml_fs");
    common::copy_executable(&common::bin("uml_fs"), &uml_fs);
    if let Some((uid, gid)) = d.user.ids {
        std::os::unix::fs::chown(&uml_fs, Some(uid), Some(gid)).unwrap();
    }
    let mut w = std::process::Command::new(&uml_fs);
    w.args(["write", "Debian1.cow,root_fs", "/etc/network/interfaces"])
        .current_dir(d.dir.path())
        .stdin(std::process::Stdio::piped());
    if let Some((uid, gid)) = d.user.ids {
        use std::os::unix::process::CommandExt;
        w.uid(uid).gid(gid);
    }
    let mut child = w.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(interfaces.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());

    let mut args = ARTICLE.to_vec();
    args.push("eth0=tuntap,tap0");
    let mut g = d.start_in_netns(&ns.name, &args);
    log_in(&mut g);
    g.send("ping -c 2 -W 2 192.168.0.254 >/dev/null && echo GUEST-PING-$((3*3))\n");
    g.expect("GUEST-PING-9", SHELL);
    let busybox = common::which("busybox").expect("busybox");
    let host = ns.run(busybox, &["ping", "-c", "2", "-W", "2", "192.168.0.253"]);
    assert!(
        host.status.success(),
        "host side ping: {}{}",
        common::stdout(&host),
        common::stderr(&host)
    );
    g.send("halt\n");
    assert_eq!(g.wait(BOOT), Some(0), "{}", g.transcript());
}

/// Job control on the console as on the real kernel: getty and login give
/// bash the console as its terminal, so Ctrl-C interrupts `sleep 30` (not
/// init), background jobs are listed, and the guest keeps running.
#[test]
fn the_login_shell_has_job_control_and_ctrl_c_interrupts_its_command() {
    let test = "debian_job_control";
    let Some(d) = DebianGuest::new(test) else {
        return;
    };
    let mut g = d.start(&ARTICLE);
    log_in(&mut g);
    g.send("sleep 31 &\n");
    g.send("jobs; echo JOBS-$((5+5))\n");
    g.expect("JOBS-10", SHELL);
    assert!(
        g.transcript().contains("Running") && g.transcript().contains("sleep 31"),
        "{}",
        g.transcript()
    );
    assert!(
        !g.transcript().contains("no job control"),
        "{}",
        g.transcript()
    );
    g.send("sleep 30\n");
    std::thread::sleep(Duration::from_millis(500));
    g.send("\x03");
    g.send("echo STATUS-$?-X\n");
    g.expect("STATUS-130-X", Duration::from_secs(10));
    g.send("echo STILL-$((6+6))\n");
    g.expect("STILL-12", SHELL);
    g.send("halt\n");
    assert_eq!(g.wait(BOOT), Some(0), "{}", g.transcript());
}
