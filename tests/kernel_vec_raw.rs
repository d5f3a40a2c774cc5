//! The vector transports that need CAP_NET_RAW in the host's network
//! namespace, as the real kernel needs it: `linux` run by root inside a
//! private network namespace. `transport=raw` puts the guest on one end of
//! a veth pair through a packet socket; `transport=hybrid` on a TAP.

mod common;

use common::kernel::{can_boot, test_user, KGuest};
use common::net::{ping_body, Netns};
use std::process::Stdio;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// Boots `g` as root inside `ns` with `vec` as its only network device;
/// the guest brings `vec0` up as `me` and pings `peer`.
fn ping_from_guest(ns: &Netns, g: &KGuest, vec: &str) -> String {
    use std::os::unix::process::CommandExt;
    let mut cmd = ns.command(g.path("linux"));
    cmd.args([
        "ubd0=a.cow,root_fs",
        "root=/dev/ubda",
        "rw",
        "init=/init",
        "con=null",
        "con0=fd:0,fd:1",
        vec,
    ])
    .current_dir(g.dir.path())
    .env("HOME", g.dir.path())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    common::uml::run_with_limit(cmd, LIMIT)
        .output
        .replace('\r', "")
}

fn guest(test: &str, me: &str, peer: &str) -> Option<KGuest> {
    if !can_boot(test) || !common::have_root(test) {
        return None;
    }
    let user = test_user(test)?;
    let body = ping_body(me, peer, 8, 0).replace("eth0", "vec0");
    Some(KGuest::new(
        user,
        &format!("#!/bin/sh\n{body}poweroff -f\n"),
    ))
}

#[test]
fn a_guest_on_vec_raw_pings_across_a_veth_pair() {
    let test = "a_guest_on_vec_raw_pings_across_a_veth_pair";
    let Some(g) = guest(test, "10.6.0.2", "10.6.0.1") else {
        return;
    };
    let ns = Netns::new();
    ns.run_ok(
        "ip",
        &["link", "add", "rv0", "type", "veth", "peer", "name", "rv1"],
    );
    ns.run_ok("ip", &["addr", "add", "10.6.0.1/24", "dev", "rv1"]);
    ns.run_ok("ip", &["link", "set", "rv0", "up"]);
    ns.run_ok("ip", &["link", "set", "rv1", "up"]);
    let out = ping_from_guest(&ns, &g, "vec0:transport=raw,ifname=rv0");
    assert!(out.contains("PING-OK 10.6.0.1"), "{out}");
    // The host learned the guest's address on the far end of the pair.
    let neigh = common::stdout(&ns.run_ok("ip", &["neigh", "show", "dev", "rv1"]));
    assert!(neigh.contains("10.6.0.2"), "{neigh}");
}

#[test]
fn a_guest_on_vec_hybrid_pings_the_host_side_of_its_tap() {
    let test = "a_guest_on_vec_hybrid_pings_the_host_side_of_its_tap";
    let Some(g) = guest(test, "10.7.0.2", "10.7.0.1") else {
        return;
    };
    let ns = Netns::new();
    ns.run_ok(common::bin("tunctl"), &["-t", "hy0"]);
    ns.run_ok("ip", &["addr", "add", "10.7.0.1/24", "dev", "hy0"]);
    ns.run_ok("ip", &["link", "set", "hy0", "up"]);
    let out = ping_from_guest(&ns, &g, "vec0:transport=hybrid,ifname=hy0");
    assert!(out.contains("PING-OK 10.7.0.1"), "{out}");
}

#[test]
fn vec_raw_on_a_missing_interface_gives_the_kernels_line_and_the_guest_boots() {
    let test = "vec_raw_on_a_missing_interface_gives_the_kernels_line";
    let Some(g) = guest(test, "10.8.0.2", "10.8.0.1") else {
        return;
    };
    let ns = Netns::new();
    let out = ping_from_guest(&ns, &g, "vec0:transport=raw,ifname=nosuch0");
    assert!(
        out.contains("user_init_raw: init failed, error -19"),
        "{out}"
    );
    assert!(!out.contains("PING-OK"), "{out}");
}

/// Two of our guests in two namespaces joined by a veth pair, each with a
/// vector device over IP (`options`: GRE or L2TPv3) towards the other,
/// ping each other; `tcpdump` finds `expect` in what crossed the pair.
/// (This host's kernel has no `gretap` or `l2tp_eth` to test against.)
fn gre_ping(test: &str, options: (&str, &str), expect: &[&str]) {
    let (Some(a), Some(b)) = (
        guest_lingering(test, "192.168.77.1", "192.168.77.2"),
        guest_lingering(test, "192.168.77.2", "192.168.77.1"),
    ) else {
        return;
    };
    if !common::have_peers(test, &["tcpdump"]) {
        return;
    }
    let one = Netns::new();
    let two = Netns::new();
    one.run_ok(
        "ip",
        &["link", "add", "ge0", "type", "veth", "peer", "name", "ge1"],
    );
    one.run_ok("ip", &["link", "set", "ge1", "netns", &two.name]);
    one.run_ok("ip", &["addr", "add", "10.9.0.1/24", "dev", "ge0"]);
    one.run_ok("ip", &["link", "set", "ge0", "up"]);
    two.run_ok("ip", &["addr", "add", "10.9.0.2/24", "dev", "ge1"]);
    two.run_ok("ip", &["link", "set", "ge1", "up"]);
    let capture = a.path("gre.pcap");
    let mut dump = one
        .command("tcpdump")
        .args(["-i", "ge0", "-U", "-n", "-w"])
        .arg(&capture)
        .arg("ip proto 47 or ip proto 115")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // tcpdump says "listening on" once it captures; the rest of what it
    // says is kept for the failure message.
    let (said_tx, said) = std::sync::mpsc::channel::<String>();
    let mut err = dump.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        let mut told = false;
        while let Ok(1) = err.read(&mut byte) {
            seen.push(byte[0]);
            if !told && String::from_utf8_lossy(&seen).contains("listening on") {
                told = true;
                let _ = said_tx.send(String::new());
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    assert!(
        said.recv_timeout(Duration::from_secs(20)).is_ok(),
        "tcpdump did not start"
    );
    let (options_a, options_b) = options;
    let vec_a = format!("vec0:src=10.9.0.1,dst=10.9.0.2,{options_a}");
    let vec_b = format!("vec0:src=10.9.0.2,dst=10.9.0.1,{options_b}");
    let (out_a, out_b) = std::thread::scope(|s| {
        let ta = s.spawn(|| ping_from_guest(&one, &a, &vec_a));
        let tb = s.spawn(|| ping_from_guest(&two, &b, &vec_b));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    // SIGINT: tcpdump flushes its file and exits.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dump.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let _ = dump.wait();
    let tcpdump_said = reader.join().unwrap();
    assert!(out_a.contains("PING-OK 192.168.77.2"), "{out_a}");
    assert!(out_b.contains("PING-OK 192.168.77.1"), "{out_b}");
    let decoded = common::stdout(&common::run_ok(
        "tcpdump",
        [
            "-n".as_ref(),
            "-v".as_ref(),
            "-r".as_ref(),
            capture.as_os_str(),
        ],
    ));
    for word in expect {
        assert!(
            decoded.contains(word),
            "no {word:?} in:\n{decoded}\ntcpdump said: {tcpdump_said}"
        );
    }
}

fn guest_lingering(test: &str, me: &str, peer: &str) -> Option<KGuest> {
    if !can_boot(test) || !common::have_root(test) {
        return None;
    }
    let user = test_user(test)?;
    let body = ping_body(me, peer, 20, 3).replace("eth0", "vec0");
    Some(KGuest::new(
        user,
        &format!("#!/bin/sh\n{body}poweroff -f\n"),
    ))
}

#[test]
fn two_guests_on_vec_gre_with_keys_ping_each_other() {
    gre_ping(
        "two_guests_on_vec_gre_with_keys_ping_each_other",
        (
            "transport=gre,rx_key=77,tx_key=77",
            "transport=gre,rx_key=77,tx_key=77",
        ),
        &[
            "GREv0, Flags [key present], key=0x4d",
            "192.168.77.1 > 192.168.77.2: ICMP echo reply",
        ],
    );
}

#[test]
fn two_guests_on_vec_gre_with_sequence_numbers_ping_each_other() {
    gre_ping(
        "two_guests_on_vec_gre_with_sequence_numbers_ping_each_other",
        ("transport=gre,sequence=1", "transport=gre,sequence=1"),
        &[
            "GREv0, Flags [sequence# present], seq 1,",
            "192.168.77.1 > 192.168.77.2: ICMP echo reply",
        ],
    );
}

#[test]
fn two_guests_on_vec_l2tpv3_over_ip_ping_each_other() {
    // Protocol 115 straight on IP: the session id first (no data word),
    // then the cookie; tcpdump shows the packets as that protocol (it
    // does not decode L2TPv3 over IP).
    gre_ping(
        "two_guests_on_vec_l2tpv3_over_ip_ping_each_other",
        (
            "transport=l2tpv3,rx_session=5,tx_session=6,rx_cookie=7,tx_cookie=8",
            "transport=l2tpv3,rx_session=6,tx_session=5,rx_cookie=8,tx_cookie=7",
        ),
        &["proto unknown (115)", "ip-proto-115"],
    );
}
