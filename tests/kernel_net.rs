//! The guest kernel `linux` with network devices, as an unprivileged user:
//! two guests on our uml_switch ping each other (daemon transport), and a
//! guest on a host TAP pings the host side (tuntap transport).

mod common;

use common::kernel::{can_boot, test_user, KGuest};
use common::net::{ping_body, Netns, TunModeGuard};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(25);

/// The tests that widen /dev/net/tun's mode run one at a time, so one
/// test's guard does not put the old mode back under another.
static TUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tun_open_to_users() -> (std::sync::MutexGuard<'static, ()>, TunModeGuard) {
    let lock = TUN.lock().unwrap_or_else(|e| e.into_inner());
    (lock, TunModeGuard::open_to_users())
}

fn init(body: &str) -> String {
    format!("#!/bin/sh\n{body}poweroff -f\n")
}

fn args(mac_eth: &str) -> Vec<String> {
    [
        "ubd0=a.cow,root_fs",
        "root=/dev/ubda",
        "rw",
        "init=/init",
        "con=null",
        "con0=fd:0,fd:1",
        mac_eth,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Our uml_switch on a socket in a temp dir, open to every user; killed on drop.
struct Switch {
    child: Child,
    ctl: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Switch {
    fn start() -> Switch {
        Self::start_in(None)
    }

    /// The switch inside `ns` (its abstract data socket lives there).
    fn start_in(ns: Option<&Netns>) -> Switch {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let ctl = dir.path().join("switch.ctl");
        let mut cmd = match ns {
            Some(ns) => ns.command(common::bin("uml_switch")),
            None => Command::new(common::bin("uml_switch")),
        };
        let child = cmd
            .arg("-unix")
            .arg(&ctl)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while !ctl.exists() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(ctl.exists(), "uml_switch did not make its socket");
        std::fs::set_permissions(&ctl, std::fs::Permissions::from_mode(0o777)).unwrap();
        Switch {
            child,
            ctl,
            _dir: dir,
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs our guest `g` inside `ns` as `ids`, killed after the time limit.
fn run_in(ns: &Netns, g: &KGuest, ids: (u32, u32), args: &[String]) -> common::uml::Boot {
    run_in_with(ns, g, ids, args, &[])
}

/// [`run_in`] with more environment variables.
fn run_in_with(
    ns: &Netns,
    g: &KGuest,
    ids: (u32, u32),
    args: &[String],
    env: &[(&str, String)],
) -> common::uml::Boot {
    use std::os::unix::process::CommandExt;
    let mut cmd = ns.command(common::which("setpriv").unwrap_or_else(|| "setpriv".into()));
    cmd.arg(format!("--reuid={}", ids.0))
        .arg(format!("--regid={}", ids.1))
        .arg("--clear-groups")
        .arg("--")
        .arg(g.path("linux"))
        .args(args)
        .current_dir(g.dir.path())
        .env("HOME", g.dir.path())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    common::uml::run_with_limit(cmd, LIMIT)
}

/// The test user and its ids, for a test that boots our guest as root's
/// helper does; `None` (after a loud skip) when that cannot run here.
fn booting_user(test: &str) -> Option<(common::kernel::User, (u32, u32))> {
    if !can_boot(test) || !common::have_root(test) {
        return None;
    }
    let user = test_user(test)?;
    let ids = user.ids?;
    Some((user, ids))
}

fn run_guest(g: &KGuest, args: &[String]) -> (Option<i32>, String) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let b = g.run(&a, LIMIT);
    (b.status.and_then(|s| s.code()), b.output)
}

#[test]
fn two_guests_on_our_switch_ping_each_other_over_the_daemon_transport() {
    let test = "two_guests_on_our_switch_ping_each_other";
    if !can_boot(test) {
        return;
    }
    let Some(user) = test_user(test) else {
        return;
    };
    let _tun = tun_open_to_users();
    let sw = Switch::start();
    let ctl = sw.ctl.display().to_string();
    let a = KGuest::new(user, &init(&ping_body("10.0.0.1", "10.0.0.2", 8, 3)));
    let b = KGuest::new(user, &init(&ping_body("10.0.0.2", "10.0.0.1", 8, 3)));
    let args_a = args(&format!("eth0=daemon,fe:fd:0a:00:00:01,unix,{ctl}"));
    let args_b = args(&format!("eth0=daemon,fe:fd:0a:00:00:02,unix,{ctl}"));
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| run_guest(&a, &args_a));
        let hb = s.spawn(|| run_guest(&b, &args_b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    for (who, (_, out), peer) in [("a", &ra, "10.0.0.2"), ("b", &rb, "10.0.0.1")] {
        assert!(
            out.contains(&format!(
                "daemon backend (uml_switch version 3) - unix:{ctl}"
            )),
            "guest {who}: no boot line\n{out}"
        );
        assert!(
            out.contains(&format!("PING-OK {peer}")),
            "guest {who} could not ping {peer}\n{out}"
        );
    }
    assert!(ra.1.contains("Netdevice 0 (fe:fd:0a:00:00:01)"), "{}", ra.1);
}

#[test]
fn a_switch_that_is_not_there_gives_a_boot_line_and_the_guest_boots_without_eth0() {
    let test = "a_switch_that_is_not_there";
    if !can_boot(test) {
        return;
    }
    let Some(user) = test_user(test) else {
        return;
    };
    let g = KGuest::new(
        user,
        &init("echo ETH0-COUNT=$(grep -c eth0 /proc/net/dev); echo GUEST-RAN\n"),
    );
    let (code, out) = run_guest(&g, &args("eth0=daemon,,unix,/nonexistent/switch.ctl"));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("daemon_open : control connect failed"),
        "{out}"
    );
    assert!(out.contains("GUEST-RAN"), "{out}");
    assert!(out.contains("ETH0-COUNT=0"), "{out}");
    assert!(!out.contains("Netdevice 0"), "{out}");
}

#[test]
fn devices_that_cannot_be_opened_give_a_boot_line_and_the_guest_boots_without_them() {
    let test = "devices_that_cannot_be_opened_give_a_boot_line";
    if !can_boot(test) {
        return;
    }
    let Some(user) = test_user(test) else {
        return;
    };
    let g = KGuest::new(
        user,
        &init("echo ETH-COUNT=$(grep -c eth /proc/net/dev); echo GUEST-RAN\n"),
    );
    // No uml_net on PATH for the helper form of tuntap; a bad TTL for
    // mcast (refused when the command line is read).
    let empty = g.path("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let mut a = args("eth0=tuntap,,,10.0.9.1");
    a.push("eth1=mcast,,,,x".into());
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut cmd = g.command(&a);
    cmd.env("PATH", &empty)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let b = common::uml::run_with_limit(cmd, LIMIT);
    let out = b.output.replace('\r', "");
    assert_eq!(b.status.and_then(|s| s.code()), Some(0), "{out}");
    assert!(
        out.contains("eth0: tuntap_open : running uml_net failed, errno = 2"),
        "{out}"
    );
    assert!(out.contains("eth1: mcast_setup - Bad ttl : 'x'"), "{out}");
    assert!(out.contains("GUEST-RAN"), "{out}");
    assert!(out.contains("ETH-COUNT=0"), "{out}");
    assert!(!out.contains("Netdevice"), "{out}");
}

#[test]
fn a_guest_on_a_host_tap_pings_the_host_side_over_the_tuntap_transport() {
    let Some((user, (uid, gid))) = booting_user("a_guest_on_a_host_tap_pings_the_host_side") else {
        return;
    };
    let _tun = tun_open_to_users();
    let ns = Netns::new();
    let tap = "kntap0";
    ns.run_ok(common::bin("tunctl"), &["-t", tap, "-u", &uid.to_string()]);
    ns.run_ok("ip", &["addr", "add", "10.1.0.1/24", "dev", tap]);
    ns.run_ok("ip", &["link", "set", tap, "up"]);
    let g = KGuest::new(user, &init(&ping_body("10.1.0.2", "10.1.0.1", 8, 0)));
    let a = args(&format!("eth0=tuntap,{tap},fe:fd:0a:01:00:02"));
    let b = run_in(&ns, &g, (uid, gid), &a);
    let out = b.output.replace('\r', "");
    assert!(
        out.contains("Netdevice 0 (fe:fd:0a:01:00:02) : TUN/TAP backend"),
        "{out}"
    );
    assert!(out.contains("PING-OK 10.1.0.1"), "{out}");
}

/// Boots our guest (`ours_eth`, address `ours_ip`) and a real `linux.uml`
/// guest (`real_eth`, `real_ip`) side by side in `ns`, each pinging the
/// other; asserts both pings and returns both boot logs.
fn ours_and_real_ping_each_other(
    ns: &Netns,
    (user, ids): (common::kernel::User, (u32, u32)),
    (ours_eth, ours_ip): (&str, &str),
    (real_eth, real_ip): (&str, &str),
) -> (String, String) {
    let ours = KGuest::new(user, &init(&ping_body(ours_ip, real_ip, 15, 4)));
    let real = common::uml::Guest::new(
        &common::uml::init_script(&ping_body(real_ip, ours_ip, 15, 4)),
        16,
    );
    let a = args(ours_eth);
    let (ro, rr) = std::thread::scope(|s| {
        let ho = s.spawn(|| run_in(ns, &ours, ids, &a));
        let hr = s.spawn(|| {
            common::net::boot_in(
                ns,
                &real,
                "a.cow,root_fs",
                &[real_eth],
                &common::net::NetBoot::default(),
                LIMIT,
            )
        });
        (ho.join().unwrap(), hr.join().unwrap())
    });
    let (ro, rr) = (ro.output.replace('\r', ""), rr.output.replace('\r', ""));
    assert!(
        ro.contains(&format!("PING-OK {real_ip}")),
        "ours:\n{ro}\nreal:\n{rr}"
    );
    assert!(
        rr.contains(&format!("PING-OK {ours_ip}")),
        "real:\n{rr}\nours:\n{ro}"
    );
    (ro, rr)
}

#[test]
fn our_guest_and_a_real_uml_guest_on_our_switch_ping_each_other() {
    let test = "our_guest_and_a_real_uml_guest_on_our_switch";
    if !common::have_peers(test, &["ip", "linux.uml", "mke2fs", "busybox"]) {
        return;
    }
    let Some(who) = booting_user(test) else {
        return;
    };
    let _tun = tun_open_to_users();
    let ns = Netns::new();
    let sw = Switch::start_in(Some(&ns));
    let ctl = sw.ctl.display().to_string();
    ours_and_real_ping_each_other(
        &ns,
        who,
        (
            &format!("eth0=daemon,fe:fd:0a:02:00:01,unix,{ctl}"),
            "10.2.0.1",
        ),
        (
            &format!("eth0=daemon,fe:fd:0a:02:00:02,unix,{ctl}"),
            "10.2.0.2",
        ),
    );
}

#[test]
fn a_guest_gets_its_tap_from_a_setuid_uml_net_and_pings_the_gateway() {
    let Some((user, ids)) = booting_user("a_guest_gets_its_tap_from_a_setuid_uml_net") else {
        return;
    };
    let _tun = tun_open_to_users();
    let ns = Netns::new();
    // Our uml_net, installed setuid root in a prefix on the guest's PATH.
    let prefix = tempfile::tempdir().unwrap();
    std::fs::set_permissions(prefix.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let helper = prefix.path().join("uml_net");
    common::copy_executable(&common::bin("uml_net"), &helper);
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o4755)).unwrap();

    // No route to 10.0.9.2 exists on the host until the kernel has
    // uml_net add it: the ping's replies depend on it.
    let g = KGuest::new(user, &init(&ping_body("10.0.9.2", "10.0.9.1", 8, 0)));
    let a = args("eth0=tuntap,,fe:fd:0a:00:09:02,10.0.9.1");
    let path = format!("{}:/usr/bin:/bin", prefix.path().display());
    let b = run_in_with(&ns, &g, ids, &a, &[("PATH", path)]);
    let out = b.output.replace('\r', "");
    assert!(
        out.contains("Netdevice 0 (fe:fd:0a:00:09:02) : TUN/TAP backend - IP = 10.0.9.1"),
        "{out}"
    );
    assert!(out.contains("PING-OK 10.0.9.1"), "{out}");
    // The TAP lives as long as the guest.
    let links = common::stdout(&ns.run_ok("ip", &["-o", "link", "show"]));
    assert!(!links.contains("tap"), "a TAP outlived the guest: {links}");
}

/// Multicast on the namespace's loopback: what a host with a network
/// interface has by default.
fn multicast_on_loopback(ns: &Netns) {
    ns.run_ok("ip", &["link", "set", "lo", "multicast", "on"]);
    ns.run_ok("ip", &["route", "add", "224.0.0.0/4", "dev", "lo"]);
}

#[test]
fn our_guest_and_a_real_uml_guest_on_one_multicast_group_ping_each_other() {
    let test = "our_guest_and_a_real_uml_guest_on_one_multicast_group";
    if !common::have_peers(test, &["ip", "linux.uml", "mke2fs", "busybox"]) {
        return;
    }
    let Some(who) = booting_user(test) else {
        return;
    };
    let _tun = tun_open_to_users();
    let ns = Netns::new();
    multicast_on_loopback(&ns);
    let (ro, rr) = ours_and_real_ping_each_other(
        &ns,
        who,
        (
            "eth0=mcast,fe:fd:0a:03:00:01,239.192.168.7,1107",
            "10.3.0.1",
        ),
        (
            "eth0=mcast,fe:fd:0a:03:00:02,239.192.168.7,1107",
            "10.3.0.2",
        ),
    );
    for line in [
        "Configured mcast device: 239.192.168.7:1107-1",
        "Netdevice 0 (fe:fd:0a:03:00:01) : mcast backend multicast address: 239.192.168.7:1107, TTL:1",
    ] {
        assert!(ro.contains(line), "ours lacks '{line}':\n{ro}");
    }
    assert!(
        rr.contains("Configured mcast device: 239.192.168.7:1107-1"),
        "{rr}"
    );
}

#[test]
fn two_of_our_guests_on_unicast_udp_ping_each_other() {
    let Some((user, ids)) = booting_user("two_of_our_guests_on_unicast_udp") else {
        return;
    };
    let _tun = tun_open_to_users();
    let ns = Netns::new();
    let a = KGuest::new(user, &init(&ping_body("10.4.0.1", "10.4.0.2", 15, 3)));
    let b = KGuest::new(user, &init(&ping_body("10.4.0.2", "10.4.0.1", 15, 3)));
    let args_a = args("eth0=ucast,fe:fd:0a:04:00:01,127.0.0.1,2201,2202");
    let args_b = args("eth0=ucast,fe:fd:0a:04:00:02,127.0.0.1,2202,2201");
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| run_in(&ns, &a, ids, &args_a));
        let hb = s.spawn(|| run_in(&ns, &b, ids, &args_b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    let (ra, rb) = (ra.output.replace('\r', ""), rb.output.replace('\r', ""));
    assert!(
        ra.contains("ucast backend address: 127.0.0.1:2202 listen port: 2201"),
        "{ra}"
    );
    assert!(ra.contains("PING-OK 10.4.0.2"), "a:\n{ra}\nb:\n{rb}");
    assert!(rb.contains("PING-OK 10.4.0.1"), "b:\n{rb}\na:\n{ra}");
}
