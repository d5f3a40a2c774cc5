//! `uml_switch` with protocol clients (our library client), hostile input,
//! signals and socket clean-up; runs inside private network namespaces
//! (abstract unix sockets belong to a network namespace) as root.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use umlkit::switch::client::SwitchClient;
use umlkit::switch::proto::{encode_request_v3, UnixAddr, SWITCH_MAGIC};

/// Our switch running in a temp dir, stdout/stderr to files; killed on drop.
struct Switch {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Switch {
    fn start(extra: &[&str]) -> Switch {
        let dir = tempfile::tempdir().unwrap();
        let ctl = dir.path().join("ctl");
        let mut cmd = Command::new(common::bin("uml_switch"));
        cmd.arg("-unix").arg(&ctl).args(extra);
        let child = spawn_logged(cmd, dir.path());
        wait_for_socket(&ctl);
        Switch {
            child: Some(child),
            dir,
        }
    }

    fn ctl(&self) -> PathBuf {
        self.dir.path().join("ctl")
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("out")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("err")).unwrap_or_default()
    }

    /// Sends `sig` and waits for the exit status.
    fn stop(&mut self, sig: nix::sys::signal::Signal) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        wait_limited(&mut child, Duration::from_secs(10))
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn_logged(mut cmd: Command, dir: &Path) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("out")).unwrap())
        .stderr(std::fs::File::create(dir.join("err")).unwrap())
        .spawn()
        .expect("spawn switch")
}

fn wait_for_socket(path: &Path) {
    let start = Instant::now();
    while UnixStream::connect(path).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "switch socket {} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_limited(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn frame(dst: [u8; 6], src: [u8; 6], tag: u8, len: usize) -> Vec<u8> {
    let mut f = vec![tag; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12] = 0x88;
    f[13] = 0xb5;
    f
}

const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const C: [u8; 6] = [2, 0, 0, 0, 0, 3];
const BCAST: [u8; 6] = [0xff; 6];
const WAIT: Duration = Duration::from_millis(300);

fn recv(c: &SwitchClient) -> Option<Vec<u8>> {
    let mut buf = [0u8; 2048];
    c.recv(&mut buf, WAIT).unwrap().map(|n| buf[..n].to_vec())
}

/// Ports a and b on `sw`, with B's address learned (its broadcast reached a).
fn two_ports_b_learned(sw: &Switch) -> (SwitchClient, SwitchClient) {
    let a = SwitchClient::connect(&sw.ctl()).unwrap();
    let b = SwitchClient::connect(&sw.ctl()).unwrap();
    b.send(&frame(BCAST, B, 1, 60)).unwrap();
    assert!(recv(&a).is_some(), "b's broadcast did not reach a");
    (a, b)
}

fn wait_for_log(sw: &Switch, text: &str) {
    let start = Instant::now();
    while !sw.stdout().contains(text) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no '{text}' in switch log:\n{}",
            sw.stdout()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `body` with this process inside a fresh network namespace (the
/// abstract data socket is per namespace), on a thread of its own.
fn in_netns(test: &str, body: impl FnOnce() + Send + 'static) {
    if !common::have_root(test) {
        return;
    }
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        body();
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

#[test]
fn switch_learns_floods_unknown_and_broadcast_and_unicasts_known_addresses() {
    in_netns(
        "switch_learns_floods_unknown_and_broadcast_and_unicasts_known_addresses",
        || {
            let sw = Switch::start(&[]);
            let a = SwitchClient::connect(&sw.ctl()).unwrap();
            let b = SwitchClient::connect(&sw.ctl()).unwrap();
            let c = SwitchClient::connect(&sw.ctl()).unwrap();
            assert_eq!(a.switch.0.len(), 110);
            assert!(a.switch.is_abstract());

            let f = frame(BCAST, A, 1, 60);
            a.send(&f).unwrap();
            assert_eq!(recv(&b).as_deref(), Some(&f[..]));
            assert_eq!(recv(&c).as_deref(), Some(&f[..]));
            assert_eq!(recv(&a), None, "a broadcast came back to its sender");

            // B is unknown: flooded. Then B speaks and is learned.
            let f = frame(B, A, 2, 1514);
            a.send(&f).unwrap();
            assert_eq!(recv(&b).as_deref(), Some(&f[..]));
            assert_eq!(recv(&c).as_deref(), Some(&f[..]));
            b.send(&frame(A, B, 3, 60)).unwrap();
            assert_eq!(recv(&a).map(|v| v[14]), Some(3));
            assert_eq!(recv(&c), None, "A is known: C must not see B->A");

            let f = frame(B, A, 4, 100);
            a.send(&f).unwrap();
            assert_eq!(recv(&b).as_deref(), Some(&f[..]));
            assert_eq!(recv(&c), None, "B is known: C must not see A->B");

            drop(c);
            wait_for_log(&sw, "Disconnect");
            let out = sw.stdout();
            assert!(
                out.starts_with(&format!(
                    "{} attached to unix socket '{}'\n",
                    common::bin("uml_switch").display(),
                    sw.ctl().display()
                )),
                "{out}"
            );
            assert_eq!(out.matches("New connection").count(), 3, "{out}");
            assert!(out.contains(" Addr: 02:00:00:00:00:01 New port "), "{out}");
            assert!(out.contains(" Addr: 02:00:00:00:00:02 New port "), "{out}");
            assert!(
                out.contains("unknown Addr: 02:00:00:00:00:01 from port "),
                "{out}"
            );
        },
    );
}

#[test]
fn hub_mode_floods_known_unicast_too() {
    in_netns("hub_mode_floods_known_unicast_too", || {
        let sw = Switch::start(&["-hub"]);
        let a = SwitchClient::connect(&sw.ctl()).unwrap();
        let b = SwitchClient::connect(&sw.ctl()).unwrap();
        let c = SwitchClient::connect(&sw.ctl()).unwrap();
        b.send(&frame(BCAST, B, 1, 60)).unwrap();
        assert!(recv(&a).is_some() && recv(&c).is_some());
        a.send(&frame(B, A, 2, 60)).unwrap();
        assert_eq!(recv(&b).map(|v| v[14]), Some(2));
        assert_eq!(
            recv(&c).map(|v| v[14]),
            Some(2),
            "a hub floods known unicast"
        );
        assert!(sw.stdout().contains("will be a hub instead of a switch"));
    });
}

#[test]
fn hostile_control_and_data_input_is_dropped_and_the_switch_keeps_forwarding() {
    in_netns(
        "hostile_control_and_data_input_is_dropped_and_the_switch_keeps_forwarding",
        || {
            let mut sw = Switch::start(&[]);
            let a = SwitchClient::connect(&sw.ctl()).unwrap();
            let b = SwitchClient::connect(&sw.ctl()).unwrap();

            // Short, bad-magic/bad-type, bad-version, oversized, bad-family
            // requests, and clients that vanish before or mid-request.
            let good = encode_request_v3(&UnixAddr::abstract_from(99, 99));
            let mut bad_version = good;
            bad_version[4..8].copy_from_slice(&7u32.to_ne_bytes());
            let mut v2 = good;
            v2[4..8].copy_from_slice(&2u32.to_ne_bytes());
            let mut bad_type = good;
            bad_type[8..12].copy_from_slice(&5i32.to_ne_bytes());
            let mut bad_family = good;
            bad_family[12..14].copy_from_slice(&10u16.to_ne_bytes());
            let mut garbage = [0xa5u8; 124];
            garbage[..4].copy_from_slice(&0xdead_beefu32.to_ne_bytes());
            let hostile: Vec<Vec<u8>> = vec![
                vec![],
                good[..3].to_vec(),
                good[..60].to_vec(),
                bad_version.to_vec(),
                v2.to_vec(),
                bad_type.to_vec(),
                bad_family.to_vec(),
                garbage.to_vec(),
                vec![0x55; 4096],
                SWITCH_MAGIC.to_ne_bytes().to_vec(),
            ];
            for msg in &hostile {
                let mut s = UnixStream::connect(sw.ctl()).unwrap();
                let _ = s.write_all(msg);
                drop(s);
            }
            // A registered port that then sends more on its control stream is
            // removed; a client that claims another port's address is refused.
            let mut spoof = UnixStream::connect(sw.ctl()).unwrap();
            spoof.write_all(&encode_request_v3(&a.addr)).unwrap();
            let mut own = UnixStream::connect(sw.ctl()).unwrap();
            own.write_all(&encode_request_v3(&a.switch)).unwrap();
            // Garbage datagrams: from an unregistered sender, and short frames.
            // A port's data socket takes datagrams from its own client only.
            let stranger = std::os::unix::net::UnixDatagram::unbound().unwrap();
            let addr_bytes = a.switch.0;
            let spoofed = stranger.send_to_addr(&[1, 2, 3], &abstract_sockaddr(&addr_bytes));
            assert!(spoofed.is_err(), "a stranger reached a port's data socket");
            a.send(&[0u8; 5]).unwrap();
            a.send(&[]).unwrap();

            // The good ports still work.
            std::thread::sleep(Duration::from_millis(200));
            let f = frame(BCAST, A, 9, 60);
            a.send(&f).unwrap();
            assert_eq!(recv(&b).as_deref(), Some(&f[..]));
            b.send(&frame(A, B, 8, 60)).unwrap();
            assert_eq!(recv(&a).map(|v| v[14]), Some(8));
            drop(spoof);

            let status = sw.stop(nix::sys::signal::Signal::SIGTERM);
            assert!(!status.success());
            let err = sw.stderr();
            assert!(err.contains("Version 2 is not supported"), "{err}");
            assert!(err.contains("Request for a version 7 port"), "{err}");
            assert!(err.contains("another port already uses"), "{err}");
            assert!(err.contains("the switch's own data address"), "{err}");
            assert!(
                sw.stdout().contains("Bad request type : 5"),
                "{}",
                sw.stdout()
            );
            // At least the 2 short frames were counted as malformed, the spoof
            // and the 8 malformed requests as bad control requests.
            let stats = err
                .lines()
                .find(|l| l.contains("frames in"))
                .unwrap_or_else(|| panic!("{err}"));
            let n = |label: &str| -> u64 {
                let before = stats.split(label).next().unwrap();
                before.split_whitespace().last().unwrap().parse().unwrap()
            };
            assert!(n(" malformed") >= 2, "{stats}");
            assert!(n(" bad control requests") >= 10, "{stats}");
            assert!(!sw.ctl().exists(), "SIGTERM left the control socket behind");
        },
    );
}

fn abstract_sockaddr(raw: &[u8; 110]) -> std::os::unix::net::SocketAddr {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(&raw[3..]).unwrap()
}

#[test]
fn sigint_removes_the_control_socket_and_exits_by_the_signal() {
    in_netns(
        "sigint_removes_the_control_socket_and_exits_by_the_signal",
        || {
            let mut sw = Switch::start(&[]);
            let status = sw.stop(nix::sys::signal::Signal::SIGINT);
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(2), "{status:?}");
            assert!(!sw.ctl().exists());
            assert!(
                sw.stdout()
                    .contains("Caught signal 2, cleaning up and exiting"),
                "{}",
                sw.stdout()
            );
        },
    );
}

#[test]
fn a_second_switch_on_a_live_socket_is_refused_and_a_stale_socket_is_reused() {
    in_netns(
        "a_second_switch_on_a_live_socket_is_refused_and_a_stale_socket_is_reused",
        || {
            let sw = Switch::start(&[]);
            let out = common::umlkit(
                "uml_switch",
                [std::ffi::OsStr::new("-unix"), sw.ctl().as_os_str()],
            );
            assert_eq!(out.status.code(), Some(1));
            assert!(
                common::stderr(&out).contains("has another server attached to it"),
                "{}",
                common::stderr(&out)
            );
            // A socket file nobody listens on is stale and gets replaced.
            let stale_dir = tempfile::tempdir().unwrap();
            let stale = stale_dir.path().join("ctl");
            drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
            assert!(stale.exists());
            let mut cmd = Command::new(common::bin("uml_switch"));
            cmd.arg("-unix").arg(&stale);
            let mut child = spawn_logged(cmd, stale_dir.path());
            wait_for_socket(&stale);
            let _c = SwitchClient::connect(&stale).unwrap();
            let _ = child.kill();
            let _ = child.wait();
        },
    );
}

#[test]
fn usage_and_help_follow_the_original() {
    let out = common::umlkit("uml_switch", ["-h"]);
    assert_eq!(out.status.code(), Some(1));
    let prog = common::bin("uml_switch").display().to_string();
    assert_eq!(
        common::stderr(&out),
        format!(
            "Usage : {prog} [ -unix control-socket ] [ -hub ] [ -tap tap-device ]\n\
             or : {prog} -compat-v0 [ -unix control-socket data-socket ] [ -hub ] [ -tap tap-device ]\n"
        )
    );
    let help = common::umlkit("uml_switch", ["--help"]);
    assert_eq!(help.status.code(), Some(0));
    for opt in ["-unix", "-hub", "-tap", "-compat-v0", "-daemon", "--help"] {
        assert!(common::stdout(&help).contains(opt), "{opt}");
    }
}

#[test]
fn many_ports_join_and_leave_without_disturbing_the_others() {
    in_netns(
        "many_ports_join_and_leave_without_disturbing_the_others",
        || {
            let sw = Switch::start(&[]);
            let (a, b) = two_ports_b_learned(&sw);
            for round in 0..5u8 {
                let extra: Vec<SwitchClient> = (0..20)
                    .map(|_| SwitchClient::connect(&sw.ctl()).unwrap())
                    .collect();
                extra[0].send(&frame(BCAST, C, round, 60)).unwrap();
                assert_eq!(recv(&a).map(|v| v[14]), Some(round));
                assert_eq!(recv(&b).map(|v| v[14]), Some(round));
                drop(extra);
                a.send(&frame(B, A, round, 60)).unwrap();
                assert_eq!(recv(&b).map(|v| v[14]), Some(round));
            }
            // A slow port (never reads) does not hold up the others.
            let slow = SwitchClient::connect(&sw.ctl()).unwrap();
            for i in 0..200u32 {
                a.send(&frame(BCAST, A, (i % 250) as u8, 1514)).ok();
                if i % 8 == 0 {
                    while recv_now(&b) {}
                }
            }
            drop(slow);
            std::thread::sleep(Duration::from_millis(100));
            while recv_now(&b) {}
            a.send(&frame(B, A, 77, 60)).unwrap();
            assert_eq!(recv(&b).map(|v| v[14]), Some(77));
        },
    );
}

fn recv_now(c: &SwitchClient) -> bool {
    let mut buf = [0u8; 2048];
    matches!(c.recv(&mut buf, Duration::from_millis(5)), Ok(Some(_)))
}

#[test]
fn compat_v0_clients_reach_each_other_through_the_named_data_socket() {
    in_netns(
        "compat_v0_clients_reach_each_other_through_the_named_data_socket",
        || {
            use std::os::unix::net::UnixDatagram;
            let dir = tempfile::tempdir().unwrap();
            let (ctl, data) = (dir.path().join("ctl"), dir.path().join("data"));
            let mut cmd = Command::new(common::bin("uml_switch"));
            cmd.arg("-compat-v0").arg("-unix").arg(&ctl).arg(&data);
            let mut child = spawn_logged(cmd, dir.path());
            wait_for_socket(&ctl);
            let join = |name: &str, mac: [u8; 6]| {
                let path = dir.path().join(name);
                let sock = UnixDatagram::bind(&path).unwrap();
                sock.set_read_timeout(Some(WAIT)).unwrap();
                let addr = UnixAddr::path(path.as_os_str().as_encoded_bytes()).unwrap();
                let mut req = vec![0u8; 120];
                req[4..10].copy_from_slice(&mac);
                req[10..120].copy_from_slice(&addr.0);
                let mut ctl_conn = UnixStream::connect(&ctl).unwrap();
                ctl_conn.write_all(&req).unwrap();
                (sock, ctl_conn)
            };
            let (a, _a_ctl) = join("a", A);
            let (b, _b_ctl) = join("b", B);
            std::thread::sleep(Duration::from_millis(100));
            let f = frame(BCAST, A, 5, 60);
            a.send_to(&f, &data).unwrap();
            let mut buf = [0u8; 2048];
            let n = b.recv(&mut buf).expect("b got nothing");
            assert_eq!(&buf[..n], &f[..]);
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            )
            .unwrap();
            wait_limited(&mut child, Duration::from_secs(10));
            let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
            assert!(
                out.starts_with("Control protocol 0 compatibility\n"),
                "{out}"
            );
            assert!(
                out.contains(&format!(
                    "attached to unix sockets '{}' and '{}'",
                    ctl.display(),
                    data.display()
                )),
                "{out}"
            );
            assert!(!ctl.exists() && !data.exists(), "sockets left behind");
        },
    );
}

#[test]
fn daemon_mode_detaches_and_keeps_serving() {
    in_netns("daemon_mode_detaches_and_keeps_serving", || {
        let dir = tempfile::tempdir().unwrap();
        let ctl = dir.path().join("ctl");
        // Output to files: the detached switch keeps them open, so a pipe
        // would never see end-of-file.
        let mut cmd = Command::new(common::bin("uml_switch"));
        cmd.arg("-unix").arg(&ctl).arg("-daemon");
        let mut parent = spawn_logged(cmd, dir.path());
        let status = wait_limited(&mut parent, Duration::from_secs(10));
        assert_eq!(status.code(), Some(0));
        let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
        assert!(out.contains("attached to unix socket"), "{out}");
        wait_for_socket(&ctl);
        // Find the detached switch by its command line and stop it.
        let needle = ctl.display().to_string();
        let pid = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .find(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                    .unwrap_or(false)
            })
            .expect("the detached switch");
        let _reaper = KillOnDrop(pid);
        let a = SwitchClient::connect(&ctl).unwrap();
        let b = SwitchClient::connect(&ctl).unwrap();
        let f = frame(BCAST, A, 6, 60);
        a.send(&f).unwrap();
        assert_eq!(recv(&b).as_deref(), Some(&f[..]));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let start = Instant::now();
        while ctl.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "SIGTERM did not remove the control socket"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}

/// SIGKILLs a detached process when the test ends, passed or not.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The same client session against our switch and Debian's (with
/// `stdbuf -oL`, since its stdio buffer is lost on SIGINT): the log lines
/// are identical once the program path and port numbers (descriptor
/// numbers, which differ) are masked.
#[test]
fn log_lines_match_debians_for_the_same_session() {
    let test = "log_lines_match_debians_for_the_same_session";
    if !common::have_peers(test, &["uml_switch", "stdbuf"]) {
        return;
    }
    in_netns(test, || {
        let session = |program: &[&str]| -> String {
            let dir = tempfile::tempdir().unwrap();
            let ctl = dir.path().join("ctl");
            let mut cmd = Command::new(program[0]);
            cmd.args(&program[1..]).arg("-unix").arg(&ctl);
            let mut child = spawn_logged(cmd, dir.path());
            wait_for_socket(&ctl);
            let a = SwitchClient::connect(&ctl).unwrap();
            let b = SwitchClient::connect(&ctl).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            a.send(&frame(BCAST, A, 1, 60)).unwrap();
            assert!(recv(&b).is_some());
            b.send(&frame(A, B, 2, 60)).unwrap();
            assert!(recv(&a).is_some());
            a.send(&frame(C, A, 3, 60)).unwrap();
            assert!(recv(&b).is_some());
            drop(a);
            std::thread::sleep(Duration::from_millis(50));
            drop(b);
            std::thread::sleep(Duration::from_millis(50));
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            )
            .unwrap();
            wait_limited(&mut child, Duration::from_secs(10));
            let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
            let prog = program.last().unwrap();
            out.replace(prog, "PROG")
                .replace(&ctl.display().to_string(), "CTL")
                .lines()
                .map(|l| {
                    // Mask port numbers (descriptor numbers).
                    let words: Vec<String> = l
                        .split(' ')
                        .map(|w| {
                            if !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) {
                                "N".into()
                            } else {
                                w.to_string()
                            }
                        })
                        .collect();
                    words.join(" ")
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let ours_bin = common::bin("uml_switch").display().to_string();
        let ours = session(&[ours_bin.as_str()]);
        let theirs = session(&["stdbuf", "-oL", "/usr/bin/uml_switch"]);
        assert!(
            ours.contains("New connection") && ours.contains("unknown Addr"),
            "{ours}"
        );
        assert_eq!(ours, theirs);
    });
}

#[test]
fn a_burst_from_one_port_waits_in_the_switch_instead_of_failing() {
    in_netns(
        "a_burst_from_one_port_waits_in_the_switch_instead_of_failing",
        || {
            let sw = Switch::start(&[]);
            let (a, b) = two_ports_b_learned(&sw);
            // With the switch stopped nothing is read from its queues. A
            // shared data socket would refuse the sender after
            // net.unix.max_dgram_qlen datagrams; a port's own socket,
            // connected to its client, takes the whole burst.
            let qlen: usize = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let pid = nix::unistd::Pid::from_raw(sw.child.as_ref().unwrap().id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
            let burst = 4 * qlen;
            let sent = (0..burst)
                .take_while(|&i| a.send(&frame(B, A, i as u8, 60)).is_ok())
                .count();
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
            assert_eq!(sent, burst, "the switch's queue for port a filled up");
            // B's own queue holds qlen of them; the first ones arrive in order.
            let got: Vec<u8> = std::iter::from_fn(|| recv(&b).map(|f| f[14])).collect();
            assert!(got.len() >= qlen.min(burst), "{got:?}");
            assert_eq!(got[..3], [0, 1, 2]);
        },
    );
}

/// CPU seconds `pid` has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[test]
fn a_port_whose_data_socket_closes_is_cut_off_and_nobody_can_take_its_place() {
    in_netns(
        "a_port_whose_data_socket_closes_is_cut_off_and_nobody_can_take_its_place",
        || {
            use std::io::Read;
            use std::os::linux::net::SocketAddrExt;
            use std::os::unix::net::{SocketAddr, UnixDatagram};
            let sw = Switch::start(&[]);
            let b = SwitchClient::connect(&sw.ctl()).unwrap();
            let c = SwitchClient::connect(&sw.ctl()).unwrap();
            // Client a by hand, so that its data socket can close while
            // its control stream stays open.
            let a_addr = UnixAddr::abstract_from(4242, 4242);
            let a_data =
                UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&a_addr.0[3..]).unwrap())
                    .unwrap();
            let mut a_ctl = UnixStream::connect(sw.ctl()).unwrap();
            a_ctl.write_all(&encode_request_v3(&a_addr)).unwrap();
            let mut reply = [0u8; 110];
            a_ctl.read_exact(&mut reply).unwrap();
            let a_port = abstract_sockaddr(&reply);
            a_data
                .send_to_addr(&frame(BCAST, A, 1, 60), &a_port)
                .unwrap();
            assert_eq!(recv(&b).map(|f| f[14]), Some(1));
            assert_eq!(recv(&c).map(|f| f[14]), Some(1));

            drop(a_data);
            b.send(&frame(A, B, 2, 60)).unwrap();
            wait_for_log(&sw, "its data socket is gone");

            // The port's socket is no longer connected to anyone; whatever
            // reaches it is not forwarded in a's name.
            let stranger = UnixDatagram::unbound().unwrap();
            let _ = stranger.send_to_addr(&frame(BCAST, C, 3, 60), &a_port);
            assert!(recv(&b).is_none(), "a stranger spoke for the closed port");
            assert!(recv(&c).is_none(), "a stranger spoke for the closed port");

            // The others still talk, and the switch does not spin on the
            // dead socket.
            let pid = sw.child.as_ref().unwrap().id();
            let before = cpu_secs(pid);
            std::thread::sleep(Duration::from_millis(1000));
            let spent = cpu_secs(pid) - before;
            assert!(spent < 0.2, "the switch used {spent} s of CPU while idle");
            c.send(&frame(B, C, 4, 60)).unwrap();
            assert_eq!(recv(&b).map(|f| f[14]), Some(4));
            drop(a_ctl);
            wait_for_log(&sw, "Disconnect");
        },
    );
}

#[test]
fn a_port_without_a_socket_of_its_own_is_served_through_the_shared_one() {
    in_netns(
        "a_port_without_a_socket_of_its_own_is_served_through_the_shared_one",
        || {
            let sw = Switch::start(&[]);
            let pid = sw.child.as_ref().unwrap().id();
            // Port a joins normally (its reply comes after everything the
            // switch opens for it). Then there is room for one descriptor
            // more, the lowest free number: port b's control stream, so
            // port b cannot have a data socket of its own.
            let a = SwitchClient::connect(&sw.ctl()).unwrap();
            let open: std::collections::HashSet<u32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            let first_free = (0..).find(|n| !open.contains(n)).unwrap();
            let limit = first_free + 1;
            let out = Command::new("prlimit")
                .arg(format!("--pid={pid}"))
                .arg(format!("--nofile={limit}:{limit}"))
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", common::stderr(&out));
            let b = SwitchClient::connect(&sw.ctl()).unwrap();
            wait_for_log(&sw, "New connection");
            assert_ne!(a.switch, b.switch, "both ports got the same data socket");
            let start = Instant::now();
            while !sw.stderr().contains("using the shared one") {
                assert!(start.elapsed() < Duration::from_secs(5), "{}", sw.stderr());
                std::thread::sleep(Duration::from_millis(10));
            }
            // Each way: a's own socket to b through the shared one, and back.
            a.send(&frame(BCAST, A, 1, 60)).unwrap();
            assert_eq!(recv(&b).map(|f| f[14]), Some(1));
            b.send(&frame(A, B, 2, 60)).unwrap();
            assert_eq!(recv(&a).map(|f| f[14]), Some(2));
            a.send(&frame(B, A, 3, 60)).unwrap();
            assert_eq!(recv(&b).map(|f| f[14]), Some(3));
        },
    );
}
