//! `uml_lab capture` on a running lab: two machines on domain A ping each
//! other while `capture A -w FILE` runs, and tcpdump reads the echo
//! requests and replies with their addresses from the file; the same
//! capture goes to a pipe (`capture A -c N | tcpdump -r -`); an unknown
//! domain is one line naming it; `stop` leaves no relay or socket behind;
//! a lab started with `--no-capture` has no relay and `capture` says so.

mod common;
mod lab_support;

use lab_support::area;
use std::path::Path;
use std::time::{Duration, Instant};

/// Waits (up to a minute) until `path` holds at least `len` bytes.
fn wait_len(path: &Path, len: u64, child: &mut std::process::Child) {
    let start = Instant::now();
    while std::fs::metadata(path).map_or(0, |m| m.len()) < len {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("capture ended early ({st})");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never reached {len} bytes",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tcpdump(file: &Path) -> String {
    let out = std::process::Command::new("tcpdump")
        .args(["-n", "-r"])
        .arg(file)
        .output()
        .unwrap();
    common::stdout(&out)
}

#[test]
fn capture_of_a_running_domain_shows_the_echo_requests_and_replies_of_a_ping() {
    let test = "capture_of_a_running_domain_shows_the_echo_requests_and_replies_of_a_ping";
    if !common::have_peers(test, &["tcpdump"]) {
        return;
    }
    let Some(a) = area(test) else {
        return;
    };
    a.write("lab.conf", "pc1[0]=A\npc2[0]=A\n");
    a.write(
        "pc1.startup",
        "ifconfig eth0 10.0.0.1 netmask 255.255.255.0 up\n",
    );
    a.write(
        "pc2.startup",
        "ifconfig eth0 10.0.0.2 netmask 255.255.255.0 up\n",
    );
    a.chown();
    a.start(None, None);

    // An unknown domain: one line naming it, nothing written.
    let bad = a.run(None, &["capture", "Z", "-w", "z.pcap"]);
    let err = common::stderr(&bad);
    assert_eq!(bad.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("Z: no such collision domain"), "{err}");
    assert!(!a.lab().join("z.pcap").exists());

    // A capture to a file while pc1 pings pc2.
    let file = a.lab().join("f.pcap");
    let mut cap = a
        .command(None, &["capture", "A", "-w", "f.pcap"])
        .spawn()
        .unwrap();
    wait_len(&file, 24, &mut cap);
    let ping = a.ok(
        None,
        &[
            "exec",
            "--timeout",
            "60",
            "pc1",
            "--",
            "ping -c 3 -W 2 10.0.0.2",
        ],
    );
    assert!(ping.contains("3 packets received"), "{ping}");
    // The capture writes each record as it passes; wait (bounded) until
    // the last reply is in the file before stopping it.
    let start = Instant::now();
    let mut text = tcpdump(&file);
    while text.matches("ICMP echo reply").count() < 3 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
        text = tcpdump(&file);
    }
    let _ = cap.kill();
    let _ = cap.wait();
    assert!(
        text.contains("10.0.0.1 > 10.0.0.2: ICMP echo request"),
        "{text}"
    );
    assert!(
        text.contains("10.0.0.2 > 10.0.0.1: ICMP echo reply"),
        "{text}"
    );

    // The same to a pipe: stops after 4 frames; tcpdump reads them.
    let mut cap = a
        .command(None, &["capture", "A", "-c", "4"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = cap.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).unwrap();
        v
    });
    // Ping until the capture has its frames (it may connect after the
    // first ping).
    let start = Instant::now();
    while cap.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "capture -c 4 never ended"
        );
        a.ok(
            None,
            &[
                "exec",
                "--timeout",
                "60",
                "pc2",
                "--",
                "ping -c 1 -W 2 10.0.0.1",
            ],
        );
    }
    let bytes = reader.join().unwrap();
    let piped = a.lab().join("piped.pcap");
    std::fs::write(&piped, &bytes).unwrap();
    let text = tcpdump(&piped);
    assert_eq!(text.lines().count(), 4, "{text}");

    // stop: the switch, its relay and the capture socket are gone.
    a.ok(None, &["stop", "--force"]);
    assert!(!a.lab().join(".uml_lab/sw/A.cap").exists());
    let after = a.run(None, &["capture", "A", "-w", "g.pcap"]);
    assert!(
        common::stderr(&after).contains("collision domain A: not running"),
        "{after:?}"
    );

    // start --no-capture: switches without relays, and capture says so.
    let img = a.image().display().to_string();
    a.ok(
        None,
        &[
            "start",
            "--image",
            &img,
            "--timeout",
            "90",
            "--no-hosthome",
            "--no-capture",
        ],
    );
    let none = a.run(None, &["capture", "A", "-w", "h.pcap"]);
    let err = common::stderr(&none);
    assert_eq!(none.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "collision domain A: its switch has no capture relay (started with --no-capture"
        ),
        "{err}"
    );
    assert!(!a.lab().join(".uml_lab/sw/A.cap").exists());
    a.ok(None, &["stop", "--force"]);
}
