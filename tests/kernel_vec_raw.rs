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
