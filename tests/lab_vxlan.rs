//! A lab split over two hosts: `pc1[host]=h1` runs in one network
//! namespace and `pc2[host]=h2` in another (`uml_lab --host NAME start`,
//! the same lab directory), the namespaces joined by a veth pair; their
//! collision domain A is one LAN over VXLAN (`A[vxlan]=42`, `A[peer]=...`
//! naming every host, each leaving itself out), so pc1 and pc2 ping each
//! other, and a Linux `vxlan` device in a third namespace on VNI 42 pings
//! pc1. Bad VXLAN keys are one line naming the file and line. Root only
//! (namespaces); the guests run as the test user.

mod common;
mod lab_support;

use common::net::Netns;
use lab_support::area;
use std::time::{Duration, Instant};

/// A veth pair `a` (in `na`, address `ia`/24) and `b` (in `nb`, `ib`/24).
fn veth(na: &Netns, a: &str, ia: &str, nb: &Netns, b: &str, ib: &str) {
    na.run_ok(
        "ip",
        &[
            "link", "add", a, "type", "veth", "peer", "name", b, "netns", &nb.name,
        ],
    );
    na.run_ok("ip", &["addr", "add", &format!("{ia}/24"), "dev", a]);
    na.run_ok("ip", &["link", "set", a, "up"]);
    nb.run_ok("ip", &["addr", "add", &format!("{ib}/24"), "dev", b]);
    nb.run_ok("ip", &["link", "set", b, "up"]);
}

/// A shell line that pings `peer` until it answers (at most `tries`
/// single pings), then `ping -c 3`.
fn ping_line(peer: &str, tries: u32) -> String {
    format!(
        "i=0; while [ $i -lt {tries} ]; do ping -c 1 -W 2 {peer} >/dev/null 2>&1 && break; i=$((i+1)); done; ping -c 3 -W 2 {peer}"
    )
}

#[test]
fn bad_vxlan_keys_are_one_line_naming_lab_conf_and_the_line() {
    let test = "bad_vxlan_keys_are_one_line_naming_lab_conf_and_the_line";
    let Some(a) = area(test) else {
        return;
    };
    for (conf, want) in [
        (
            "pc1[0]=A\nA[vxlan]=42\nA[peer]=nohost\n",
            "lab.conf:3: A[peer]: 'nohost' is not an address",
        ),
        (
            "pc1[0]=A\nA[vxlan]=16777216\n",
            "lab.conf:2: A[vxlan]: '16777216' is not a VNI",
        ),
        (
            "pc1[0]=A\nA[peer]=10.0.0.1\n",
            "lab.conf:2: A[peer] without A[vxlan]=VNI",
        ),
        (
            "pc1[0]=A\nA[vxlan]=42\n",
            "lab.conf:2: A[vxlan] needs at least one A[peer]",
        ),
        ("pc1[0]=A\npc1[host]=a.b\n", "lab.conf:2: pc1[host]='a.b'"),
    ] {
        a.write("lab.conf", conf);
        a.chown();
        let out = a.run(None, &["--host", "h1", "start", "--image", "/nonexistent"]);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{conf}: {err}");
        assert_eq!(err.lines().count(), 1, "{conf}: {err}");
        assert!(err.contains(want), "{conf}: {err}");
    }
    a.write("lab.conf", "pc1[0]=A\npc1[host]=h1\n");
    let out = a.run(None, &["--host", "h2", "start"]);
    let err = common::stderr(&out);
    assert!(err.contains("--host h2: no machine of the lab"), "{err}");
    assert!(!a.lab().join(".uml_lab-h2/lab.json").exists());
}

#[test]
fn a_lab_split_over_two_namespaces_pings_across_its_vxlan_domain_and_a_linux_vxlan_device_joins() {
    let test = "a_lab_split_over_two_namespaces_pings_across_its_vxlan_domain";
    if !common::have_root(test) || !common::have_peers(test, &["ip", "busybox"]) {
        return;
    }
    let Some(a) = area(test) else {
        return;
    };
    let (n1, n2, n3) = (Netns::new(), Netns::new(), Netns::new());
    // h1 <-> h2 on 192.168.77.0/24, h1 <-> the vxlan device's namespace
    // on 192.168.78.0/24, h1 routing between them.
    veth(&n1, "l12", "192.168.77.1", &n2, "l21", "192.168.77.2");
    veth(&n1, "l13", "192.168.78.1", &n3, "l31", "192.168.78.3");
    n1.run_ok("sysctl", &["-qw", "net.ipv4.ip_forward=1"]);
    n2.run_ok(
        "ip",
        &["route", "add", "192.168.78.0/24", "via", "192.168.77.1"],
    );
    n3.run_ok(
        "ip",
        &["route", "add", "192.168.77.0/24", "via", "192.168.78.1"],
    );
    n3.run_ok(
        "ip",
        &[
            "link",
            "add",
            "vx0",
            "type",
            "vxlan",
            "id",
            "42",
            "dstport",
            "4789",
            "remote",
            "192.168.78.1",
            "local",
            "192.168.78.3",
            "dev",
            "l31",
        ],
    );
    n3.run_ok("ip", &["addr", "add", "10.9.0.3/24", "dev", "vx0"]);
    n3.run_ok("ip", &["link", "set", "vx0", "up"]);

    a.write(
        "lab.conf",
        "pc1[0]=A\npc1[host]=h1\npc2[0]=A\npc2[host]=h2\n\
         A[vxlan]=42\nA[peer]=192.168.77.1,192.168.77.2\nA[peer]=192.168.78.3\n",
    );
    a.write(
        "pc1.startup",
        "ifconfig eth0 10.9.0.1 netmask 255.255.255.0 up\n",
    );
    a.write(
        "pc2.startup",
        "ifconfig eth0 10.9.0.2 netmask 255.255.255.0 up\n",
    );
    a.chown();
    std::thread::scope(|s| {
        let h1 = s.spawn(|| a.start(Some(&n1), Some("h1")));
        let h2 = s.spawn(|| a.start(Some(&n2), Some("h2")));
        (h1.join().unwrap(), h2.join().unwrap())
    });
    // Each host booted its own half, with its own state directory.
    let st1 = a.ok(None, &["--host", "h1", "status", "--json"]);
    let st: serde_json::Value = serde_json::from_str(&st1).unwrap();
    assert_eq!(st["machines"][0]["state"], "running", "{st}");
    assert_eq!(st["machines"][1]["state"], "stopped", "{st}");
    assert_eq!(st["domains"][0]["vxlan"], 42, "{st}");
    assert!(st["domains"][0]["capture"].is_string(), "{st}");
    let log = std::fs::read_to_string(a.lab().join(".uml_lab-h1/sw/A.log")).unwrap_or_default();

    // pc1 <-> pc2 across the hosts.
    let ping = a.ok(
        None,
        &[
            "--host",
            "h1",
            "exec",
            "--timeout",
            "90",
            "pc1",
            "--",
            &ping_line("10.9.0.2", 15),
        ],
    );
    assert!(
        ping.contains("3 packets received"),
        "{ping}\n{log}\n{}",
        a.consoles()
    );
    let ping = a.ok(
        None,
        &[
            "--host",
            "h2",
            "exec",
            "--timeout",
            "90",
            "pc2",
            "--",
            &ping_line("10.9.0.1", 5),
        ],
    );
    assert!(
        ping.contains("3 packets received"),
        "{ping}\n{}",
        a.consoles()
    );

    // The Linux vxlan device pings pc1.
    let start = Instant::now();
    let mut host = n3.run("busybox", &["ping", "-c", "1", "-W", "2", "10.9.0.1"]);
    while !host.status.success() && start.elapsed() < Duration::from_secs(60) {
        host = n3.run("busybox", &["ping", "-c", "1", "-W", "2", "10.9.0.1"]);
    }
    let host = n3.run("busybox", &["ping", "-c", "3", "-W", "2", "10.9.0.1"]);
    assert!(
        common::stdout(&host).contains("3 packets received"),
        "vxlan device: {}{}\n{}",
        common::stdout(&host),
        common::stderr(&host),
        a.consoles()
    );

    // Each half halts, stopped from its own namespace.
    for (h, ns, m) in [("h1", &n1, "pc1"), ("h2", &n2, "pc2")] {
        let out = a.ok(Some(ns), &["--host", h, "stop"]);
        assert_eq!(out, format!("{m}: halted\n"), "{h}");
    }
}
