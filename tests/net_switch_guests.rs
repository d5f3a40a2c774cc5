//! Real UML guests (`linux.uml`, busybox) on our `uml_switch`, inside a
//! private network namespace: two guests ping each other in switch and hub
//! mode while a third joins and leaves, and a guest reaches the host
//! through the switch's `-tap` uplink. Root only.

mod common;

use common::net::{boot_in, ping_body, NetBoot, Netns};
use common::uml::{init_script, Boot, Guest};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

fn ready(test: &str) -> bool {
    common::have_root(test) && common::have_peers(test, &["ip", "linux.uml", "mke2fs", "busybox"])
}

/// Our switch inside `ns`, logging to `dir/switch.out`; killed on drop.
struct SwitchProc(Child);

impl Drop for SwitchProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_switch(ns: &Netns, dir: &Path, extra: &[&str]) -> (SwitchProc, PathBuf) {
    let ctl = dir.join("ctl");
    let child = ns
        .command(common::bin("uml_switch"))
        .arg("-unix")
        .arg(&ctl)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("switch.out")).unwrap())
        .stderr(std::fs::File::create(dir.join("switch.err")).unwrap())
        .spawn()
        .expect("start uml_switch");
    let start = Instant::now();
    while !ctl.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "switch socket never appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (SwitchProc(child), ctl)
}

fn daemon_arg(mac: u8, ctl: &Path) -> String {
    format!(
        "eth0=daemon,02:00:00:00:00:{mac:02x},unix,{}",
        ctl.display()
    )
}

/// Boots guests in parallel threads (all must be alive at once).
fn boot_all(ns: &Netns, guests: Vec<(Guest, String)>) -> Vec<Boot> {
    std::thread::scope(|s| {
        let handles: Vec<_> = guests
            .iter()
            .map(|(g, eth)| {
                s.spawn(move || {
                    boot_in(
                        ns,
                        g,
                        "a.cow,root_fs",
                        &[eth.as_str()],
                        &NetBoot::default(),
                        LIMIT,
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// A shell function `up ADDR`: true once ADDR answers a ping (60 tries).
const UP_FN: &str = "up() { i=0; while [ $i -lt 60 ]; do ping -c 1 -W 1 $1 >/dev/null 2>&1 && return 0; i=$((i+1)); done; return 1; }";

fn two_guests_ping_each_other(hub: bool) {
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let extra: &[&str] = if hub { &["-hub"] } else { &[] };
    let (_switch, ctl) = start_switch(&ns, dir.path(), extra);

    // A waits for B, pings it, sees C come, tells C it may go (by taking
    // a second address C waits for), sees C gone, then pings B again.
    let a = format!(
        "ifconfig lo 127.0.0.1 up\nifconfig eth0 10.0.0.1 netmask 255.255.255.0 up\n\
         {UP_FN}\n\
         up 10.0.0.2; ping -c 3 -W 2 10.0.0.2 && echo PING-OK 10.0.0.2\n\
         up 10.0.0.3 && ping -c 1 -W 2 10.0.0.3 && echo SAW-C\n\
         ifconfig eth0:1 10.0.0.11 netmask 255.255.255.0 up\n\
         i=0; while [ $i -lt 60 ] && ping -c 1 -W 1 10.0.0.3 >/dev/null 2>&1; do i=$((i+1)); sleep 1; done; echo C-GONE\n\
         ping -c 3 -W 2 10.0.0.2 && echo PING-AFTER-LEAVE\n"
    );
    // B answers until A goes away.
    let b = format!(
        "ifconfig lo 127.0.0.1 up\nifconfig eth0 10.0.0.2 netmask 255.255.255.0 up\n\
         {UP_FN}\n\
         up 10.0.0.1; ping -c 3 -W 2 10.0.0.1 && echo PING-OK 10.0.0.1\n\
         i=0; while [ $i -lt 90 ] && ping -c 1 -W 1 10.0.0.1 >/dev/null 2>&1; do i=$((i+1)); sleep 1; done\n"
    );
    // C joins, pings A, and leaves once A has seen it.
    let c = format!(
        "ifconfig lo 127.0.0.1 up\nifconfig eth0 10.0.0.3 netmask 255.255.255.0 up\n\
         {UP_FN}\n\
         up 10.0.0.1; ping -c 3 -W 2 10.0.0.1 && echo PING-OK 10.0.0.1\n\
         up 10.0.0.11 && echo LEAVING\n"
    );
    let guests = vec![
        (Guest::new(&init_script(&a), 16), daemon_arg(1, &ctl)),
        (Guest::new(&init_script(&b), 16), daemon_arg(2, &ctl)),
        (Guest::new(&init_script(&c), 16), daemon_arg(3, &ctl)),
    ];
    let boots = boot_all(&ns, guests);
    let log = std::fs::read_to_string(dir.path().join("switch.out")).unwrap_or_default();
    let ctx = |i: usize| format!("guest {i}:\n{}\n--- switch log:\n{log}", boots[i].output);
    assert!(
        boots[0]
            .output
            .contains("daemon backend (uml_switch version 3)"),
        "{}",
        ctx(0)
    );
    assert!(boots[0].output.contains("PING-OK 10.0.0.2"), "{}", ctx(0));
    assert!(boots[1].output.contains("PING-OK 10.0.0.1"), "{}", ctx(1));
    assert!(boots[2].output.contains("PING-OK 10.0.0.1"), "{}", ctx(2));
    assert!(boots[0].output.contains("SAW-C"), "{}", ctx(0));
    assert!(boots[2].output.contains("LEAVING"), "{}", ctx(2));
    assert!(boots[0].output.contains("C-GONE"), "{}", ctx(0));
    assert!(
        boots[0].output.contains("PING-AFTER-LEAVE"),
        "switch stopped forwarding after C left: {}",
        ctx(0)
    );
    for (i, b) in boots.iter().enumerate() {
        assert!(b.halted(), "guest {i} did not halt: {}", ctx(i));
    }
    assert_eq!(log.matches("New connection").count(), 3, "{log}");
    assert!(log.contains("Disconnect"), "{log}");
}

#[test]
fn two_guests_ping_each_other_through_our_switch_while_a_third_joins_and_leaves() {
    if ready("two_guests_ping_each_other_through_our_switch_while_a_third_joins_and_leaves") {
        two_guests_ping_each_other(false);
    }
}

#[test]
fn two_guests_ping_each_other_through_our_switch_in_hub_mode() {
    if ready("two_guests_ping_each_other_through_our_switch_in_hub_mode") {
        two_guests_ping_each_other(true);
    }
}

#[test]
fn guest_on_our_switch_reaches_the_host_through_the_tap_uplink() {
    if !ready("guest_on_our_switch_reaches_the_host_through_the_tap_uplink") {
        return;
    }
    let ns = Netns::new();
    ns.run_ok(common::bin("tunctl"), &["-t", "swtap0"]);
    ns.run_ok("ip", &["addr", "add", "10.0.2.1/24", "dev", "swtap0"]);
    ns.run_ok("ip", &["link", "set", "swtap0", "up"]);
    let dir = tempfile::tempdir().unwrap();
    let (_switch, ctl) = start_switch(&ns, dir.path(), &["-tap", "swtap0"]);
    let guest = Guest::new(&init_script(&ping_body("10.0.2.2", "10.0.2.1", 30, 0)), 16);
    let boot = boot_in(
        &ns,
        &guest,
        "a.cow,root_fs",
        &[&daemon_arg(9, &ctl)],
        &NetBoot::default(),
        LIMIT,
    );
    let log = std::fs::read_to_string(dir.path().join("switch.out")).unwrap_or_default();
    assert!(log.contains("tap device 'swtap0'"), "{log}");
    assert!(
        boot.output.contains("PING-OK 10.0.2.1"),
        "{}\n--- switch log:\n{log}",
        boot.output
    );
    assert!(boot.halted());
}
