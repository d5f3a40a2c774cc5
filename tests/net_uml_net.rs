//! `uml_net` by hand and run by the real kernel, inside private network
//! namespaces (root only): the argv protocol's messages against Debian's,
//! the `tuntap up` datagram with its descriptor, `add`/`del` host set-up,
//! hostile arguments with no effect, and a guest that gets its TAP from our
//! uml_net and pings the gateway.

mod common;

use common::net::{boot_in, ping_body, NetBoot, Netns};
use common::uml::{init_script, Guest};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::process::{Output, Stdio};
use std::time::Duration;

fn ours() -> String {
    common::bin("uml_net").display().to_string()
}

fn ready(test: &str, peers: &[&str]) -> bool {
    common::have_root(test) && common::have_peers(test, peers)
}

/// Runs our uml_net in `ns` with fd 1 = one end of a datagram socketpair;
/// returns the exit status, the datagram (name, text) and the descriptor.
fn tuntap_up(ns: &Netns, args: &[&str]) -> (Output, Vec<u8>, Option<RawFd>) {
    let (mine, theirs) = UnixDatagram::pair().unwrap();
    mine.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let out = ns
        .command(ours())
        .args(args)
        .stdout(Stdio::from(OwnedFd::from(theirs)))
        .output()
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut fd = None;
    let len = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(
            mine.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                for c in msg.cmsgs().unwrap() {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        fd = fds.first().copied();
                    }
                }
                msg.bytes
            }
            Err(_) => 0,
        }
    };
    buf.truncate(len);
    (out, buf, fd)
}

/// The framed reply of an `add`/`del`: (length word, text).
fn framed(out: &Output) -> (i32, String) {
    assert!(out.stdout.len() >= 4, "no framed reply: {:?}", out);
    let len = i32::from_ne_bytes(out.stdout[..4].try_into().unwrap());
    (
        len,
        String::from_utf8_lossy(&out.stdout[4..])
            .trim_end_matches('\0')
            .to_string(),
    )
}

#[test]
fn argv_protocol_messages_match_debian() {
    if !ready("argv_protocol_messages_match_debian", &["uml_net"]) {
        return;
    }
    let cases: &[&[&str]] = &[
        &[],
        &["4"],
        &["9", "tuntap"],
        &["4", "foo"],
        &["1", "tuntap", "x"],
        &["tuntap", "up"],
    ];
    for args in cases {
        let theirs = common::run("/usr/bin/uml_net", *args);
        let mine = common::run(ours(), *args);
        assert_eq!(mine.status.code(), theirs.status.code(), "{args:?}");
        assert_eq!(mine.stdout, theirs.stdout, "stdout of {args:?}");
        assert_eq!(mine.stderr, theirs.stderr, "stderr of {args:?}");
    }
    assert_eq!(common::umlkit("uml_net", ["--help"]).status.code(), Some(0));
}

#[test]
fn tuntap_up_hands_back_a_configured_tap_and_its_descriptor() {
    if !ready(
        "tuntap_up_hands_back_a_configured_tap_and_its_descriptor",
        &["ip"],
    ) {
        return;
    }
    let ns = Netns::new();
    let (out, msg, fd) = tuntap_up(&ns, &["4", "tuntap", "up", "10.0.4.1"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let fd = fd.expect("no descriptor in the reply");
    assert!(msg.len() >= 16, "reply too short: {msg:?}");
    let name = String::from_utf8_lossy(&msg[..16])
        .trim_end_matches('\0')
        .to_string();
    assert!(name.starts_with("tap"), "{name}");
    let link = ns
        .link(&name)
        .expect("the tap exists while its descriptor is open");
    assert!(
        link.contains("tun type tap") && link.contains("user root"),
        "{link}"
    );
    let addr = common::stdout(&ns.run_ok("ip", &["-4", "addr", "show", "dev", &name]));
    assert!(addr.contains("inet 10.0.4.1/32"), "{addr}");
    assert!(addr.contains(",UP"), "{addr}");
    nix::unistd::close(fd).unwrap();
    // The kernel unregisters a closed TAP asynchronously; on a loaded
    // machine that takes longer than a fixed 100 ms.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while ns.link(&name).is_some() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ns.link(&name).is_none(), "the tap outlived its descriptor");

    // Without a gateway argument: the original's text and no descriptor.
    let (out, msg, fd) = tuntap_up(&ns, &["4", "tuntap", "up"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(fd.is_none());
    assert_eq!(msg, b"Too few arguments to tuntap_up\n\0");
    // A hostile gateway: refused, no descriptor, no device.
    let (out, msg, fd) = tuntap_up(&ns, &["4", "tuntap", "up", "-something"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(fd.is_none());
    assert!(
        String::from_utf8_lossy(&msg).contains("bad gateway address"),
        "{msg:?}"
    );
    assert!(
        !common::stdout(&ns.run_ok("ip", &["link"])).contains("tap"),
        "a tap was left behind"
    );
}

#[test]
fn add_and_del_route_the_guest_address_and_publish_proxy_arp() {
    if !ready(
        "add_and_del_route_the_guest_address_and_publish_proxy_arp",
        &["ip"],
    ) {
        return;
    }
    let ns = Netns::new();
    ns.run_ok(common::bin("tunctl"), &["-t", "tap0"]);
    ns.run_ok("ip", &["link", "set", "tap0", "up"]);
    ns.run_ok(
        "ip",
        &[
            "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1",
        ],
    );
    ns.run_ok("ip", &["addr", "add", "10.0.6.1/24", "dev", "dummy0"]);
    ns.run_ok("ip", &["link", "set", "dummy0", "up"]);

    let out = ns.run(ours(), &["4", "add", "tap0", "10.0.6.2", "255.255.255.0"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    assert_eq!(framed(&out), (0, String::new()));
    let routes = common::stdout(&ns.run_ok("ip", &["route"]));
    assert!(routes.contains("10.0.6.2 dev tap0"), "{routes}");
    let proxy = common::stdout(&ns.run_ok("cat", &["/proc/sys/net/ipv4/conf/tap0/proxy_arp"]));
    assert_eq!(proxy.trim(), "1");
    let neigh = common::stdout(&ns.run_ok("ip", &["neigh", "show", "proxy"]));
    assert!(neigh.contains("10.0.6.2 dev dummy0"), "{neigh}");

    let out = ns.run(
        ours(),
        &["4", "tuntap", "del", "tap0", "10.0.6.2", "255.255.255.0"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let routes = common::stdout(&ns.run_ok("ip", &["route"]));
    assert!(!routes.contains("10.0.6.2"), "{routes}");
    let proxy = common::stdout(&ns.run_ok("cat", &["/proc/sys/net/ipv4/conf/tap0/proxy_arp"]));
    assert_eq!(proxy.trim(), "0");
    assert!(!common::stdout(&ns.run_ok("ip", &["neigh", "show", "proxy"])).contains("10.0.6.2"));
}

#[test]
fn hostile_arguments_are_refused_without_touching_the_host() {
    if !ready(
        "hostile_arguments_are_refused_without_touching_the_host",
        &["ip"],
    ) {
        return;
    }
    let ns = Netns::new();
    ns.run_ok(common::bin("tunctl"), &["-t", "othertap", "-u", "nobody"]);
    ns.run_ok(
        "ip",
        &[
            "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1",
        ],
    );
    ns.run_ok("ip", &["link", "set", "dummy0", "up"]);
    let state = || {
        let mut s = common::stdout(&ns.run_ok("ip", &["route", "show", "table", "all"]));
        s.push_str(&common::stdout(
            &ns.run_ok("ip", &["neigh", "show", "proxy"]),
        ));
        for dev in ["lo", "dummy0", "othertap"] {
            s.push_str(&common::stdout(&ns.run_ok(
                "cat",
                &[format!("/proc/sys/net/ipv4/conf/{dev}/proxy_arp")],
            )));
        }
        s
    };
    let before = state();
    let long = "a".repeat(300);
    let cases: Vec<Vec<&str>> = vec![
        vec!["4", "add", "lo", "10.0.7.2", "255.255.255.0"],
        vec!["4", "add", "dummy0", "10.0.7.2", "255.255.255.0"],
        vec!["4", "add", "othertap", "10.0.7.2", "255.255.255.0"],
        vec!["4", "del", "othertap", "10.0.7.2", "255.255.255.0"],
        vec!["4", "add", "nosuch0", "10.0.7.2", "255.255.255.0"],
        vec!["4", "add", "tap0", "down", "255.255.255.0"],
        vec!["4", "add", "tap0", "10.0.7.2", "-net"],
        vec!["4", "add", &long, "10.0.7.2", "255.255.255.0"],
        vec!["4", "add", "lo", &long, &long],
        vec!["4", "add", "lo"],
        vec!["4", "del"],
        vec!["4", "tuntap", "frob"],
        vec!["4", "tuntap", "add", "lo"],
        vec!["4", "ethertap", "tap0", "3", "10.0.7.1"],
        vec!["4", "slip", "up", "10.0.7.1"],
        vec!["5", "tuntap", "up", "10.0.7.1"],
        vec!["0x7fffffff", "add"],
        vec!["4", "frobnicate", "x"],
    ];
    for args in &cases {
        let out = ns.run(ours(), args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} was accepted: {}",
            common::stderr(&out)
        );
    }
    assert_eq!(state(), before, "a refused request changed the host");
}

#[test]
fn guest_gets_its_tap_from_our_uml_net_and_pings_the_gateway() {
    let test = "guest_gets_its_tap_from_our_uml_net_and_pings_the_gateway";
    if !ready(test, &["ip", "linux.uml", "mke2fs", "busybox"]) {
        return;
    }
    let ns = Netns::new();
    let guest = Guest::new(&init_script(&ping_body("10.0.5.2", "10.0.5.1", 10, 0)), 16);
    let bin_dir = common::bin("uml_net")
        .parent()
        .unwrap()
        .display()
        .to_string();
    let how = NetBoot {
        env: vec![("PATH", format!("{bin_dir}:/usr/bin:/bin"))],
        ..Default::default()
    };
    let boot = boot_in(
        &ns,
        &guest,
        "a.cow,root_fs",
        &["eth0=tuntap,,,10.0.5.1"],
        &how,
        Duration::from_secs(90),
    );
    assert!(
        boot.output.contains("TUN/TAP backend - IP = 10.0.5.1"),
        "{}",
        boot.output
    );
    assert!(
        boot.output.contains("PING-OK 10.0.5.1"),
        "guest could not ping the gateway:\n{}",
        boot.output
    );
    assert!(boot.halted());
}

/// Our uml_net installed setuid root in a temporary prefix, run by a
/// normal user: `tuntap up` gives that user a TAP of their own, `add` works
/// on it, and `add` on another user's TAP is refused.
#[test]
fn setuid_uml_net_serves_a_normal_user_only_for_their_own_tap() {
    let test = "setuid_uml_net_serves_a_normal_user_only_for_their_own_tap";
    if !ready(test, &["ip", "setpriv"]) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let ns = Netns::new();
    let (_, uid, gid) = common::net::test_user();
    let prefix = tempfile::tempdir().unwrap();
    std::fs::set_permissions(prefix.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let helper = prefix.path().join("uml_net");
    common::copy_executable(&common::bin("uml_net"), &helper);
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let as_user = |args: &[&str]| -> Vec<String> {
        let mut v = vec![
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".to_string(),
            helper.display().to_string(),
        ];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    };

    // tuntap up through a socketpair, as the kernel does.
    let (mine, theirs) = UnixDatagram::pair().unwrap();
    let out = ns
        .command("setpriv")
        .args(as_user(&["4", "tuntap", "up", "10.0.8.1"]))
        .stdout(Stdio::from(OwnedFd::from(theirs)))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let mut buf = vec![0u8; 4096];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        mine.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT,
    )
    .unwrap();
    let fd = msg
        .cmsgs()
        .unwrap()
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("a descriptor");
    let name = String::from_utf8_lossy(&buf[..16])
        .trim_end_matches('\0')
        .to_string();
    let link = ns.link(&name).expect("the tap");
    assert!(
        link.contains("user umlkit-test"),
        "the tap is not the caller's: {link}"
    );

    let out = ns.run(
        "setpriv",
        &as_user(&["4", "add", &name, "10.0.8.2", "255.255.255.0"]),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(common::stdout(&ns.run_ok("ip", &["route"])).contains(&format!("10.0.8.2 dev {name}")));

    ns.run_ok(common::bin("tunctl"), &["-t", "roottap"]);
    let before = common::stdout(&ns.run_ok("ip", &["route"]));
    let out = ns.run(
        "setpriv",
        &as_user(&["4", "add", "roottap", "10.0.8.3", "255.255.255.0"]),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not by the caller"),
        "{:?}",
        out
    );
    let out = ns.run(
        "setpriv",
        &as_user(&["4", "add", "lo", "10.0.8.3", "255.255.255.0"]),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        common::stdout(&ns.run_ok("ip", &["route"])),
        before,
        "a refused add changed the routes"
    );
    nix::unistd::close(fd).unwrap();
}

/// `ip_forward` in `ns`, as the kernel prints it.
fn forwarding(ns: &Netns) -> String {
    common::stdout(&ns.run_ok("cat", &["/proc/sys/net/ipv4/ip_forward"]))
        .trim()
        .to_string()
}

fn set_forwarding(ns: &Netns, value: &str) {
    ns.run_ok(
        "sh",
        &[
            "-c",
            &format!("echo {value} > /proc/sys/net/ipv4/ip_forward"),
        ],
    );
}

/// A namespace with forwarding off and a veth `dummy0` routing `net`
/// (`a.b.c.1/24`): where `add` publishes proxy ARP entries.
fn ns_with_lan(first_addr: &str) -> Netns {
    let ns = Netns::new();
    set_forwarding(&ns, "0");
    ns.run_ok(
        "ip",
        &[
            "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1",
        ],
    );
    ns.run_ok("ip", &["addr", "add", first_addr, "dev", "dummy0"]);
    ns.run_ok("ip", &["link", "set", "dummy0", "up"]);
    ns
}

/// `tuntap up` that must succeed: the TAP's name and descriptor.
fn up_ok(ns: &Netns, gate: &str) -> (String, RawFd) {
    let (out, msg, fd) = tuntap_up(ns, &["4", "tuntap", "up", gate]);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let fd = fd.expect("no descriptor in the reply");
    let name = String::from_utf8_lossy(&msg[..16])
        .trim_end_matches('\0')
        .to_string();
    (name, fd)
}

fn add_ok(ns: &Netns, dev: &str, addr: &str) {
    let out = ns.run(ours(), &["4", "add", dev, addr, "255.255.255.0"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", out);
}

/// Waits up to 15 s for `done`; true when it came.
fn within_bound(mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

fn proxies(ns: &Netns) -> String {
    common::stdout(&ns.run_ok("ip", &["neigh", "show", "proxy"]))
}

fn routes(ns: &Netns) -> String {
    common::stdout(&ns.run_ok("ip", &["route"]))
}

#[test]
fn closing_the_tap_withdraws_its_proxy_arp_and_route_and_restores_ip_forward() {
    let test = "closing_the_tap_withdraws_its_proxy_arp_and_route_and_restores_ip_forward";
    if !ready(test, &["ip"]) {
        return;
    }
    let ns = ns_with_lan("10.0.11.1/24");
    let (tap, fd) = up_ok(&ns, "10.0.11.254");
    add_ok(&ns, &tap, "10.0.11.2");
    assert!(
        proxies(&ns).contains("10.0.11.2 dev dummy0"),
        "{}",
        proxies(&ns)
    );
    assert!(routes(&ns).contains(&format!("10.0.11.2 dev {tap}")));
    assert_eq!(forwarding(&ns), "1");

    nix::unistd::close(fd).unwrap();
    let clean = within_bound(|| {
        !proxies(&ns).contains("10.0.11.2")
            && !routes(&ns).contains("10.0.11.2 ")
            && forwarding(&ns) == "0"
    });
    assert!(
        clean,
        "left behind after the TAP closed:\n{}{}ip_forward={}",
        proxies(&ns),
        routes(&ns),
        forwarding(&ns)
    );
    // The LAN's own route and address are untouched.
    assert!(routes(&ns).contains("10.0.11.0/24 dev dummy0"));
}

#[test]
fn ip_forward_stays_on_until_the_last_of_two_taps_goes() {
    let test = "ip_forward_stays_on_until_the_last_of_two_taps_goes";
    if !ready(test, &["ip"]) {
        return;
    }
    let ns = ns_with_lan("10.0.13.1/24");
    let (tap_a, fd_a) = up_ok(&ns, "10.0.13.254");
    let (tap_b, fd_b) = up_ok(&ns, "10.0.13.253");
    add_ok(&ns, &tap_a, "10.0.13.2");
    add_ok(&ns, &tap_b, "10.0.13.3");
    assert_eq!(forwarding(&ns), "1");

    nix::unistd::close(fd_a).unwrap();
    assert!(
        within_bound(|| ns.link(&tap_a).is_none() && !proxies(&ns).contains("10.0.13.2 ")),
        "{tap_a} or its proxy entry stayed: {}",
        proxies(&ns)
    );
    // Time for a wrong restore to happen, had it been coming.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        forwarding(&ns),
        "1",
        "ip_forward went off while {tap_b} lives"
    );
    assert!(
        proxies(&ns).contains("10.0.13.3 dev dummy0"),
        "{}",
        proxies(&ns)
    );

    nix::unistd::close(fd_b).unwrap();
    assert!(
        within_bound(|| forwarding(&ns) == "0" && !proxies(&ns).contains("10.0.13.3")),
        "after the last TAP: ip_forward={} proxies: {}",
        forwarding(&ns),
        proxies(&ns)
    );
}

#[test]
fn a_failed_tuntap_up_restores_ip_forward_before_exiting() {
    let test = "a_failed_tuntap_up_restores_ip_forward_before_exiting";
    if !ready(test, &["ip"]) {
        return;
    }
    let ns = ns_with_lan("10.0.14.1/24");
    // Standard output is not a socket: the answer cannot be sent.
    let out = ns
        .command(ours())
        .args(["4", "tuntap", "up", "10.0.14.254"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{:?}", out);
    assert!(common::stderr(&out).contains("sendmsg"), "{:?}", out);
    assert_eq!(forwarding(&ns), "0", "a failed up left ip_forward on");
    assert!(
        within_bound(|| !common::stdout(&ns.run_ok("ip", &["link"])).contains("tap")),
        "the TAP of a failed up stayed"
    );

    // Forwarding that was on before stays on.
    set_forwarding(&ns, "1");
    let out = ns
        .command(ours())
        .args(["4", "tuntap", "up", "10.0.14.254"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(forwarding(&ns), "1");
}

/// The real kernel runs `uml_net add` when the guest sets its address and
/// no `del` when it halts: what add did must still go once it has exited.
#[test]
fn a_real_uml_guest_leaves_no_proxy_arp_or_ip_forward_after_it_halts() {
    let test = "a_real_uml_guest_leaves_no_proxy_arp_or_ip_forward_after_it_halts";
    if !ready(test, &["ip", "linux.uml", "mke2fs", "busybox"]) {
        return;
    }
    // The guest's network is also on dummy0, so add publishes it there;
    // its host route over the TAP is what carries the ping replies.
    let ns = ns_with_lan("10.0.12.100/24");
    let guest = Guest::new(
        &init_script(&ping_body("10.0.12.2", "10.0.12.1", 10, 0)),
        16,
    );
    let bin_dir = common::bin("uml_net")
        .parent()
        .unwrap()
        .display()
        .to_string();
    let how = NetBoot {
        env: vec![("PATH", format!("{bin_dir}:/usr/bin:/bin"))],
        ..Default::default()
    };
    // Whether add's proxy entry was there while the guest ran.
    let done = std::sync::atomic::AtomicBool::new(false);
    let (boot, seen) = std::thread::scope(|sc| {
        let watch = sc.spawn(|| {
            let mut seen = false;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                seen |= proxies(&ns).contains("10.0.12.2 dev dummy0");
                std::thread::sleep(Duration::from_millis(100));
            }
            seen
        });
        let boot = boot_in(
            &ns,
            &guest,
            "a.cow,root_fs",
            &["eth0=tuntap,,,10.0.12.1"],
            &how,
            Duration::from_secs(90),
        );
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (boot, watch.join().unwrap())
    });
    assert!(seen, "add published no proxy entry:\n{}", boot.output);
    assert!(
        boot.output.contains("PING-OK 10.0.12.1"),
        "guest could not ping the gateway:\n{}",
        boot.output
    );
    assert!(boot.halted(), "{}", boot.output);
    let clean = within_bound(|| !proxies(&ns).contains("10.0.12.2") && forwarding(&ns) == "0");
    assert!(
        clean,
        "left behind by a halted guest: {}ip_forward={}",
        proxies(&ns),
        forwarding(&ns)
    );
}
