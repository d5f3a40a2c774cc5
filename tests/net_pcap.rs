//! `uml_switch -pcap`: a capture of the frames two of our guests exchange,
//! read by the real `tcpdump` from the file while the switch runs and live
//! from a pipe (`-pcap -` into `tcpdump -r -`). Root only (namespaces).

mod common;
mod net_vde_support;

use common::kernel::{KGuest, User};
use common::net::{ping_body, Netns};
use net_vde_support::{guest_user, init, run_ours, Bg, Sw};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ready(test: &str) -> Option<User> {
    if !common::have_peers(test, &["ip", "tcpdump"]) {
        return None;
    }
    guest_user(test)
}

/// Two of our guests on the switch's VDE directory `dir` ping each other
/// (3 echo requests each way at least); returns both consoles.
fn two_guests_ping(ns: &Netns, user: User, dir: &Path) -> (String, String) {
    let a = KGuest::new(user, &init(&ping_body("10.8.0.1", "10.8.0.2", 15, 3)));
    let b = KGuest::new(user, &init(&ping_body("10.8.0.2", "10.8.0.1", 15, 3)));
    let ctl = dir.join("ctl").display().to_string();
    let ea = format!("eth0=daemon,fe:fd:0a:08:00:01,unix,{ctl}");
    let eb = format!("eth0=daemon,fe:fd:0a:08:00:02,unix,{ctl}");
    let (oa, ob) = std::thread::scope(|s| {
        let ha = s.spawn(|| run_ours(ns, &a, &ea));
        let hb = s.spawn(|| run_ours(ns, &b, &eb));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert!(oa.contains("PING-OK 10.8.0.2"), "a:\n{oa}\nb:\n{ob}");
    assert!(ob.contains("PING-OK 10.8.0.1"), "b:\n{ob}\na:\n{oa}");
    (oa, ob)
}

/// The ICMP echo lines of `tcpdump -e` output, checked for the lengths a
/// busybox `ping` gives (56 data bytes: ICMP 64, IP 84, frame 98).
fn echo_lines(text: &str) -> (usize, usize) {
    let mut req = 0;
    let mut rep = 0;
    for l in text.lines().filter(|l| l.contains("ICMP echo")) {
        assert!(
            l.contains("length 98:") && l.ends_with("length 64"),
            "wrong lengths in: {l}"
        );
        if l.contains("echo request") {
            req += 1;
        } else if l.contains("echo reply") {
            rep += 1;
        }
    }
    (req, rep)
}

#[test]
fn a_capture_file_shows_the_echo_requests_and_replies_of_a_ping_with_their_lengths() {
    let test = "a_capture_file_shows_the_echo_requests_and_replies_of_a_ping";
    let Some(user) = ready(test) else {
        return;
    };
    let ns = Netns::new();
    let mut sw = Sw::start(
        &ns,
        &[
            "-vde".into(),
            "@/sw".into(),
            "-mode".into(),
            "666".into(),
            "-pcap".into(),
            "@/cap.pcap".into(),
        ],
        Some("sw/ctl"),
    );
    two_guests_ping(&ns, user, &sw.path("sw"));
    // Read while the switch still runs and holds the file open.
    let out = Command::new(common::which("tcpdump").unwrap())
        .args(["-n", "-e", "-r"])
        .arg(sw.path("cap.pcap"))
        .output()
        .unwrap();
    let text = common::stdout(&out);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains("link-type EN10MB"));
    let (req, rep) = echo_lines(&text);
    assert!(
        req >= 6 && rep >= 6,
        "{req} requests, {rep} replies:\n{text}"
    );
    assert!(
        text.contains("10.8.0.1 > 10.8.0.2: ICMP echo request")
            && text.contains("10.8.0.2 > 10.8.0.1: ICMP echo reply"),
        "{text}"
    );
    assert!(
        text.contains("fe:fd:0a:08:00:01 > fe:fd:0a:08:00:02"),
        "{text}"
    );
    sw.stop();
    assert!(
        sw.stderr().contains("uml_switch: captured "),
        "{}",
        sw.stderr()
    );
}

#[test]
fn tcpdump_reads_a_live_capture_from_the_switchs_standard_output() {
    let test = "tcpdump_reads_a_live_capture_from_the_switchs_standard_output";
    let Some(user) = ready(test) else {
        return;
    };
    let ns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let swdir = dir.path().join("sw");
    let mut sw = ns
        .command(common::bin("uml_switch"))
        .arg("-vde")
        .arg(&swdir)
        .args(["-mode", "666", "-pcap", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    let pipe = sw.stdout.take().unwrap();
    let _sw = Bg(sw);
    let mut dump = Bg(Command::new(common::which("tcpdump").unwrap())
        .args(["-n", "-e", "-l", "-U", "-r", "-"])
        .stdin(pipe)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap());
    net_vde_support::wait_path(&swdir.join("ctl"));
    two_guests_ping(&ns, user, &swdir);
    // The switch still runs: what tcpdump printed came live through the pipe.
    let mut so = dump.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            match so.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    text.push_str(&String::from_utf8_lossy(&buf[..n]));
                    let _ = tx.send(text.clone());
                }
            }
        }
    });
    let mut seen = String::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(t) = rx.recv_timeout(Duration::from_millis(200)) {
            seen = t;
        }
        let (req, rep) = echo_lines(&seen);
        if req >= 6 && rep >= 6 {
            break;
        }
    }
    let (req, rep) = echo_lines(&seen);
    assert!(
        req >= 6 && rep >= 6,
        "{req} requests, {rep} replies:\n{seen}"
    );
    let log = std::fs::read_to_string(dir.path().join("err")).unwrap();
    assert!(
        log.contains("New connection"),
        "the log goes to stderr:\n{log}"
    );
}
