//! `uml_switch -vxlan`: two switches in two network namespaces joined by
//! a veth pair carry a ping between a guest on each; a Linux `vxlan`
//! device in another namespace pings a guest on our switch; datagrams with
//! a foreign VNI, short ones and ones from strangers are dropped and
//! counted. Root only.

mod common;
mod net_vde_support;

use common::kernel::{KGuest, User};
use common::net::{ping_body, Netns};
use net_vde_support::{guest_user, init, run_ours, Sw};
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};
use umlkit::switch::vxlan::header;

fn ready(test: &str) -> Option<User> {
    if !common::have_peers(test, &["ip"]) {
        return None;
    }
    guest_user(test)
}

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

/// `uml_switch -vde @/sw -mode 666 -vxlan 42 -peer PEER [extra]` in `ns`.
fn vxlan_switch(ns: &Netns, peer: &str, extra: &[&str]) -> Sw {
    let mut args: Vec<String> = [
        "-vde", "@/sw", "-mode", "666", "-vxlan", "42", "-peer", peer,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    Sw::start(ns, &args, Some("sw/ctl"))
}

fn eth(sw: &Sw, mac: u8) -> String {
    format!(
        "eth0=daemon,fe:fd:0a:09:00:{mac:02x},unix,{}",
        sw.path("sw/ctl").display()
    )
}

/// The `vxlan:` counters line of a stopped switch.
fn vxlan_counts(sw: &mut Sw) -> String {
    sw.stop();
    let err = sw.stderr();
    err.lines()
        .find(|l| l.starts_with("uml_switch: vxlan:"))
        .unwrap_or_else(|| panic!("no vxlan counters in:\n{err}"))
        .to_string()
}

#[test]
fn guests_on_two_switches_joined_by_vxlan_over_a_veth_pair_ping_each_other() {
    let test = "guests_on_two_switches_joined_by_vxlan_over_a_veth_pair";
    let Some(user) = ready(test) else {
        return;
    };
    let (n1, n2) = (Netns::new(), Netns::new());
    veth(&n1, "vxa", "192.168.77.1", &n2, "vxb", "192.168.77.2");
    let mut s1 = vxlan_switch(&n1, "192.168.77.2", &[]);
    let mut s2 = vxlan_switch(&n2, "192.168.77.1", &[]);
    let a = KGuest::new(user, &init(&ping_body("10.9.0.1", "10.9.0.2", 15, 3)));
    let b = KGuest::new(user, &init(&ping_body("10.9.0.2", "10.9.0.1", 15, 3)));
    let (ea, eb) = (eth(&s1, 1), eth(&s2, 2));
    let (oa, ob) = std::thread::scope(|s| {
        let ha = s.spawn(|| run_ours(&n1, &a, &ea));
        let hb = s.spawn(|| run_ours(&n2, &b, &eb));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    let logs = format!(
        "s1:\n{}{}\ns2:\n{}{}",
        s1.stdout(),
        s1.stderr(),
        s2.stdout(),
        s2.stderr()
    );
    assert!(
        oa.contains("PING-OK 10.9.0.2"),
        "a:\n{oa}\nb:\n{ob}\n{logs}"
    );
    assert!(ob.contains("PING-OK 10.9.0.1"), "b:\n{ob}\n{logs}");
    // Each switch learned the other guest's address on its peer's port.
    assert!(
        s1.stdout()
            .contains(" Addr: fe:fd:0a:09:00:02 New port vxlan:192.168.77.2:4789"),
        "{logs}"
    );
    let c1 = vxlan_counts(&mut s1);
    assert!(
        c1.contains("dropped: 0 malformed, 0 foreign VNI, 0 from unknown hosts"),
        "{c1}"
    );
    assert!(!c1.contains(" 0 datagrams in"), "{c1}");
    vxlan_counts(&mut s2);
}

#[test]
fn a_linux_vxlan_device_and_a_guest_on_our_switch_ping_each_other() {
    let test = "a_linux_vxlan_device_and_a_guest_on_our_switch_ping_each_other";
    if !common::have_peers(test, &["busybox"]) {
        return;
    }
    let Some(user) = ready(test) else {
        return;
    };
    let (n1, n3) = (Netns::new(), Netns::new());
    veth(&n1, "vxa", "192.168.78.1", &n3, "vxc", "192.168.78.3");
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
            "remote",
            "192.168.78.1",
            "local",
            "192.168.78.3",
            "dstport",
            "4789",
            "dev",
            "vxc",
        ],
    );
    n3.run_ok("ip", &["addr", "add", "10.9.1.3/24", "dev", "vx0"]);
    n3.run_ok("ip", &["link", "set", "vx0", "up"]);
    let mut sw = vxlan_switch(&n1, "192.168.78.3", &[]);
    let g = KGuest::new(user, &init(&ping_body("10.9.1.1", "10.9.1.3", 15, 8)));
    let e = eth(&sw, 1);
    let (out, host) = std::thread::scope(|s| {
        let hg = s.spawn(|| run_ours(&n1, &g, &e));
        // The vxlan side pings the guest while it is up.
        let hh = s.spawn(|| {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                if n3
                    .run("busybox", &["ping", "-c", "1", "-W", "1", "10.9.1.1"])
                    .status
                    .success()
                {
                    return n3.run("busybox", &["ping", "-c", "3", "-W", "2", "10.9.1.1"]);
                }
            }
            n3.run("busybox", &["ping", "-c", "1", "-W", "1", "10.9.1.1"])
        });
        (hg.join().unwrap(), hh.join().unwrap())
    });
    let logs = format!("switch:\n{}{}", sw.stdout(), sw.stderr());
    assert!(out.contains("PING-OK 10.9.1.3"), "guest:\n{out}\n{logs}");
    assert!(
        host.status.success() && common::stdout(&host).contains("3 packets received"),
        "vxlan side:\n{}\n{logs}",
        common::stdout(&host)
    );
    let c = vxlan_counts(&mut sw);
    assert!(c.contains("dropped: 0 malformed, 0 foreign VNI"), "{c}");
}

#[test]
fn foreign_vnis_short_datagrams_and_strangers_are_dropped_and_counted() {
    let test = "foreign_vnis_short_datagrams_and_strangers_are_dropped_and_counted";
    if !common::have_root(test) || !common::have_peers(test, &["ip"]) {
        return;
    }
    let body = || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
        common::run_ok("ip", ["link", "set", "lo", "up"]);
        let dir = tempfile::tempdir().unwrap();
        let mut sw = Command::new(common::bin("uml_switch"))
            .arg("-unix")
            .arg(dir.path().join("ctl"))
            .args(["-vxlan", "42", "-peer", "127.0.0.1:4790"])
            .args(["-vxlan-local", "127.0.0.1:4789"])
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("out")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
            .spawn()
            .unwrap();
        net_vde_support::wait_path(&dir.path().join("ctl"));
        let client =
            umlkit::switch::client::SwitchClient::connect(&dir.path().join("ctl")).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:4790").unwrap();
        let stranger = UdpSocket::bind("127.0.0.2:4790").unwrap();
        let mut inner = vec![0u8; 60];
        inner[..6].copy_from_slice(&[0xff; 6]);
        inner[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        let dgram = |vni: u32| {
            let mut d = header(vni).to_vec();
            d.extend_from_slice(&inner);
            d
        };
        let to = "127.0.0.1:4789";
        peer.send_to(&dgram(43), to).unwrap(); // foreign VNI
        peer.send_to(&[0x08, 0, 0, 0, 0, 0, 42], to).unwrap(); // short
        let mut no_i = dgram(42);
        no_i[0] = 0;
        peer.send_to(&no_i, to).unwrap(); // I flag clear
        stranger.send_to(&dgram(42), to).unwrap(); // not a peer
        peer.send_to(&dgram(42), to).unwrap(); // the good one
        let mut buf = [0u8; 2048];
        let got = client.recv(&mut buf, Duration::from_secs(3)).unwrap();
        assert_eq!(got, Some(60), "the valid datagram's frame did not arrive");
        assert_eq!(&buf[6..12], &[2, 0, 0, 0, 0, 9]);
        assert_eq!(
            client.recv(&mut buf, Duration::from_millis(300)).unwrap(),
            None,
            "a dropped datagram's frame came through"
        );
        // The client's broadcast goes to the peer with the VNI in front.
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        client.send(&f).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(n, 68);
        assert_eq!(&buf[..8], &header(42));
        assert_eq!(&buf[8..68], &f[..]);

        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(sw.id()).unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = sw.wait();
        let err = std::fs::read_to_string(dir.path().join("err")).unwrap();
        assert!(
            err.contains(
                "uml_switch: vxlan: 5 datagrams in, 1 out; dropped: 2 malformed, 1 foreign VNI, 1 from unknown hosts"
            ),
            "{err}"
        );
    };
    std::thread::spawn(body)
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e));
}
