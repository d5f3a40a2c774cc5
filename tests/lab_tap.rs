//! A Netkit TAP domain (`pc1[0]=tap,HOSTIP,GUESTIP`) inside a private
//! network namespace: `uml_lab start` as the test user boots pc1 with
//! `eth0=tuntap,,MAC,HOSTIP` through our setuid `uml_net`, the guest gets
//! GUESTIP at boot, and the host side and the guest ping each other; after
//! `stop` (in the namespace) pc1 halts and its TAP is gone. Root only (namespace, setuid helper).

mod common;
mod lab_support;

use common::net::Netns;
use lab_support::area;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

#[test]
fn a_tap_domain_gets_its_addresses_and_the_host_and_guest_ping_each_other() {
    let test = "a_tap_domain_gets_its_addresses_and_the_host_and_guest_ping_each_other";
    if !common::have_root(test) || !common::have_peers(test, &["ip", "busybox", "setpriv"]) {
        return;
    }
    let Some(mut a) = area(test) else {
        return;
    };
    // Our uml_net, setuid root in a root-owned directory put first on PATH.
    let prefix = tempfile::tempdir().unwrap();
    std::fs::set_permissions(prefix.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let helper = prefix.path().join("uml_net");
    common::copy_executable(&common::bin("uml_net"), &helper);
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o4755)).unwrap();
    a.path = Some(format!(
        "{}:/usr/sbin:/usr/bin:/sbin:/bin",
        prefix.path().display()
    ));
    let ns = Netns::new();
    a.write("lab.conf", "pc1[0]=tap,10.0.20.1,10.0.20.2\n");
    a.chown();
    a.start(Some(&ns), None);

    // The host side has the TAP with HOSTIP; the guest answers on GUESTIP.
    let addrs = common::stdout(&ns.run_ok("ip", &["-4", "addr"]));
    assert!(addrs.contains("10.0.20.1"), "{addrs}");
    let start = Instant::now();
    let mut host = ns.run("busybox", &["ping", "-c", "1", "-W", "2", "10.0.20.2"]);
    while !host.status.success() && start.elapsed() < Duration::from_secs(60) {
        host = ns.run("busybox", &["ping", "-c", "1", "-W", "2", "10.0.20.2"]);
    }
    let host = ns.run("busybox", &["ping", "-c", "3", "-W", "2", "10.0.20.2"]);
    assert!(
        common::stdout(&host).contains("3 packets received"),
        "host side: {}{}\n{addrs}\n{}",
        common::stdout(&host),
        common::stderr(&host),
        a.consoles()
    );
    let ping = a.ok(
        None,
        &[
            "exec",
            "--timeout",
            "60",
            "pc1",
            "--",
            "ping -c 3 -W 2 10.0.20.1",
        ],
    );
    assert!(ping.contains("3 packets received"), "{ping}");
    let st = a.ok(None, &["status", "--json"]);
    assert!(st.contains("\"eth0\": \"tap:10.0.20.1\""), "{st}");

    // stop, from the lab's namespace (the mconsole's replies stay inside
    // a network namespace): pc1 halts, and its TAP goes with it.
    let how = a.ok(Some(&ns), &["stop"]);
    assert!(how.contains("pc1: halted"), "{how}");
    let start = Instant::now();
    while common::stdout(&ns.run_ok("ip", &["link"])).contains("tap") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the TAP stayed after stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
