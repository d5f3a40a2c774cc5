//! The guest kernel `linux` with vector network devices (`vecN:`), as an
//! unprivileged user: a guest on a host TAP (`transport=tap`) pings the
//! host side, two guests on Debian's `vde_switch` (`transport=vde`, through
//! vdeplug4's `vde_plug`) ping each other, and bad options give the
//! kernel's lines.

mod common;

use common::kernel::{can_boot, test_user, KGuest};
use common::net::{ping_body, Netns, TunModeGuard};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(25);

fn init(body: &str) -> String {
    format!("#!/bin/sh\n{body}poweroff -f\n")
}

/// [`ping_body`] on `vec0` instead of `eth0`.
fn vec_ping(me: &str, peer: &str, tries: u32, linger: u32) -> String {
    ping_body(me, peer, tries, linger).replace("eth0", "vec0")
}

fn args(extra: &[&str]) -> Vec<String> {
    [
        "ubd0=a.cow,root_fs",
        "root=/dev/ubda",
        "rw",
        "init=/init",
        "con=null",
        "con0=fd:0,fd:1",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

fn run_guest(g: &KGuest, args: &[String]) -> (Option<i32>, String) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let b = g.run(&a, LIMIT);
    (b.status.and_then(|s| s.code()), b.output)
}

/// Runs our guest `g` inside `ns` as `ids`, killed after the time limit.
fn run_in(ns: &Netns, g: &KGuest, (uid, gid): (u32, u32), a: &[String]) -> common::uml::Boot {
    use std::os::unix::process::CommandExt;
    let mut cmd = ns.command(common::which("setpriv").expect("setpriv"));
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(g.path("linux"))
        .args(a)
        .current_dir(g.dir.path())
        .env("HOME", g.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    common::uml::run_with_limit(cmd, LIMIT)
}

/// Debian's `vde_switch -s DIR`, run as `ids` (its console on a pipe kept
/// open); killed on drop.
struct VdeSwitch {
    child: Child,
    _stdin: std::process::ChildStdin,
    dir: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

impl VdeSwitch {
    fn start(ids: Option<(u32, u32)>) -> VdeSwitch {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let dir = tmp.path().join("sw");
        let mut cmd = match ids {
            Some((uid, gid)) => {
                let mut c = Command::new(common::which("setpriv").expect("setpriv"));
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg("vde_switch");
                c
            }
            None => Command::new("vde_switch"),
        };
        let mut child = cmd
            .arg("-s")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("vde_switch");
        let stdin = child.stdin.take().unwrap();
        let ctl = dir.join("ctl");
        let start = Instant::now();
        while !ctl.exists() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(ctl.exists(), "vde_switch made no {}", ctl.display());
        VdeSwitch {
            child,
            _stdin: stdin,
            dir,
            _tmp: tmp,
        }
    }
}

impl Drop for VdeSwitch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_guest_with_vec_tap_pings_the_host_side_of_a_tunctl_tap() {
    let test = "a_guest_with_vec_tap_pings_the_host_side";
    if !can_boot(test) || !common::have_root(test) {
        return;
    }
    let Some(user) = test_user(test) else {
        return;
    };
    let Some((uid, gid)) = user.ids else {
        common::skip(test, "needs root to make the TAP for the test user");
        return;
    };
    let _tun = TunModeGuard::open_to_users();
    let ns = Netns::new();
    let tap = "kvtap0";
    ns.run_ok(common::bin("tunctl"), &["-t", tap, "-u", &uid.to_string()]);
    ns.run_ok("ip", &["addr", "add", "10.5.0.1/24", "dev", tap]);
    ns.run_ok("ip", &["link", "set", tap, "up"]);
    let g = KGuest::new(
        user,
        &init(&format!(
            "cat /sys/class/net/vec0/address\n{}",
            vec_ping("10.5.0.2", "10.5.0.1", 8, 0)
        )),
    );
    let a = args(&[&format!(
        "vec0:transport=tap,ifname={tap},mac=fe:fd:0a:05:00:02,depth=128,gro=1,unknown_key=1"
    )]);
    let b = run_in(&ns, &g, (uid, gid), &a);
    let out = b.output.replace('\r', "");
    assert!(out.contains("fe:fd:0a:05:00:02"), "{out}");
    assert!(!out.contains("Choosing a random"), "{out}");
    assert!(out.contains("PING-OK 10.5.0.1"), "{out}");
}

#[test]
fn two_guests_on_a_vde_switch_ping_each_other_over_vec_vde() {
    let test = "two_guests_on_a_vde_switch_ping_each_other";
    if !can_boot(test) || !common::have_peers(test, &["vde_switch", "vde_plug"]) {
        return;
    }
    let Some(user) = test_user(test) else {
        return;
    };
    let _tun = TunModeGuard::open_to_users();
    let sw = VdeSwitch::start(user.ids);
    let vnl = format!("vde://{}", sw.dir.display());
    let a = KGuest::new(user, &init(&vec_ping("10.6.0.1", "10.6.0.2", 10, 3)));
    let b = KGuest::new(user, &init(&vec_ping("10.6.0.2", "10.6.0.1", 10, 3)));
    let args_a = args(&[&format!(
        "vec0:transport=vde,vnl={vnl},mac=fe:fd:0a:06:00:01"
    )]);
    let args_b = args(&[&format!("vec0:transport=vde,vnl={vnl}")]);
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| run_guest(&a, &args_a));
        let hb = s.spawn(|| run_guest(&b, &args_b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert!(
        ra.1.contains("PING-OK 10.6.0.2"),
        "a:\n{}\nb:\n{}",
        ra.1,
        rb.1
    );
    assert!(
        rb.1.contains("PING-OK 10.6.0.1"),
        "b:\n{}\na:\n{}",
        rb.1,
        ra.1
    );
    assert!(
        rb.1.contains("Choosing a random ethernet address for device vec0"),
        "{}",
        rb.1
    );
}

#[test]
fn vec_devices_that_cannot_be_opened_give_the_kernels_lines_and_the_guest_boots_without_them() {
    let test = "vec_devices_that_cannot_be_opened";
    if !can_boot(test) {
        return;
    }
    let Some(user) = test_user(test) else {
        return;
    };
    let g = KGuest::new(
        user,
        &init("echo VEC-COUNT=$(grep -c vec /proc/net/dev); echo GUEST-RAN\n"),
    );
    let (code, out) = run_guest(
        &g,
        &args(&[
            "vec0:transport=tap,ifname=a=b",
            "vec1:ifname=x",
            "vec2:transport=vde,vnl=vde:///nonexistent/switch",
            "vec3:transport=raw,ifname=lo",
            "vec4:transport=fd,fd=x",
            "vec5:transport=gre,dst=10.0.0.1",
            "vec6:transport=tap,ifname=no-such-tap,mac=01:02:03:04:05:06",
        ]),
    );
    assert_eq!(code, Some(0), "{out}");
    for line in [
        "vector_setup - Couldn't parse 'transport'",
        "missing transport for unit 1",
        "vde: vde_open failed",
        "user_init_raw: init failed, error -1",
        "fd open: bad or missing fd argument",
        "socket_open : could not resolve src, error = Name or service not known",
        "uml_tap: failed to select tap interface",
        "user_init_tap: init failed, error -1",
    ] {
        assert!(out.contains(line), "no '{line}':\n{out}");
    }
    assert!(out.contains("GUEST-RAN"), "{out}");
    assert!(out.contains("VEC-COUNT=0"), "{out}");
}

#[test]
fn a_bad_vec_unit_is_refused_with_the_kernels_vector_setup_line() {
    let test = "a_bad_vec_unit_is_refused";
    if !can_boot(test) {
        return;
    }
    let Some(user) = test_user(test) else {
        return;
    };
    let g = KGuest::new(user, &init("echo GUEST-RAN\n"));
    for (bad, line) in [
        (
            "vecX:transport=tap",
            "vector_setup - Couldn't parse 'X' : Bad device number",
        ),
        (
            "vec0=transport=tap",
            "vector_setup - Couldn't parse '0=transport=tap' : Expected ':' after device number",
        ),
    ] {
        let (code, out) = run_guest(&g, &args(&[bad]));
        assert_eq!(code, Some(1), "{bad}: {out}");
        assert!(out.contains(line), "{bad}: {out}");
        assert_eq!(out.trim().lines().count(), 1, "{bad}: not one line: {out}");
        assert!(!out.contains("GUEST-RAN"), "{out}");
    }
}

#[test]
fn two_guests_on_l2tpv3_over_udp_ping_each_other() {
    let test = "two_guests_on_l2tpv3_over_udp";
    if !can_boot(test) || !common::have_root(test) {
        return;
    }
    let Some(user) = test_user(test) else {
        return;
    };
    let Some(ids) = user.ids else {
        common::skip(test, "needs root to make the network namespace");
        return;
    };
    let _tun = TunModeGuard::open_to_users();
    let ns = Netns::new();
    let a = KGuest::new(user, &init(&vec_ping("10.7.0.1", "10.7.0.2", 10, 3)));
    let b = KGuest::new(user, &init(&vec_ping("10.7.0.2", "10.7.0.1", 10, 3)));
    let common_opts = "transport=l2tpv3,udp=1,src=127.0.0.1,dst=127.0.0.1,counter=1";
    let args_a = args(&[&format!(
        "vec0:{common_opts},srcport=1701,dstport=1702,rx_session=0xffffffff,tx_session=0xfffffffe,rx_cookie=7,tx_cookie=8"
    )]);
    let args_b = args(&[&format!(
        "vec0:{common_opts},srcport=1702,dstport=1701,rx_session=0xfffffffe,tx_session=0xffffffff,rx_cookie=8,tx_cookie=7"
    )]);
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| run_in(&ns, &a, ids, &args_a));
        let hb = s.spawn(|| run_in(&ns, &b, ids, &args_b));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    let (ra, rb) = (ra.output.replace('\r', ""), rb.output.replace('\r', ""));
    assert!(ra.contains("PING-OK 10.7.0.2"), "a:\n{ra}\nb:\n{rb}");
    assert!(rb.contains("PING-OK 10.7.0.1"), "b:\n{rb}\na:\n{ra}");
}
