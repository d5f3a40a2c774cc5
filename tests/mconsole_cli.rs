//! `uml_mconsole` without a kernel: usage, errors for missing, stale and
//! silent guests, the timeout, JSON, interactive JSON, and the notify
//! listener, against sockets made by the test (and our server module).

mod common;

use common::mcon::client;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use umlkit::mconsole::protocol::NotifyKind;
use umlkit::mconsole::server::{notify, Server};

fn ours(home: &Path, args: &[&str], input: Option<&[u8]>) -> (i32, String, String) {
    let (code, out, err) = client(&common::bin("uml_mconsole"), home, home, args, input);
    (code, String::from_utf8_lossy(&out).into_owned(), err)
}

/// A guest stand-in that echoes each command back as its reply, `n` times.
fn echo_server(path: &Path, n: usize) -> std::thread::JoinHandle<()> {
    let server = Server::bind(path).unwrap();
    std::thread::spawn(move || {
        for _ in 0..n {
            let (req, from) = server.check(server.receive().unwrap()).unwrap().unwrap();
            let err = u32::from(req.command.starts_with(b"bad"));
            server.reply(&from, err, &req.command, false).unwrap();
        }
    })
}

#[test]
fn help_lists_every_option_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = ours(dir.path(), &["--help"], None);
    assert_eq!(code, 0);
    for opt in ["--json", "--timeout", "--listen", "--count", "--help"] {
        assert!(out.contains(opt), "{opt} missing from --help:\n{out}");
    }
}

#[test]
fn no_arguments_print_the_original_usage_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = ours(dir.path(), &[], None);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (1, "", "Usage : uml_mconsole socket-name [command]\n")
    );
}

#[test]
fn an_unknown_umid_is_one_clear_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = ours(dir.path(), &["no-such-guest", "version"], None);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("uml_mconsole: no guest named 'no-such-guest': no mconsole socket at "),
        "{err}"
    );
    // Local commands need no guest.
    let (code, out, _) = ours(dir.path(), &["no-such-guest", "mconsole-version"], None);
    assert_eq!((code, out.as_str()), (0, "uml_mconsole client version 2\n"));
}

#[test]
fn a_stale_socket_says_the_guest_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let inst = dir.path().join(".uml/dead");
    std::fs::create_dir_all(&inst).unwrap();
    drop(UnixDatagram::bind(inst.join("mconsole")).unwrap());
    std::fs::write(inst.join("pid"), "2000000000\n").unwrap();
    let (code, _, err) = ours(dir.path(), &["dead", "version"], None);
    assert_eq!(code, 1);
    assert!(err.contains("is not running (stale socket"), "{err}");
}

#[test]
fn a_pid_file_without_a_socket_says_the_guest_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let inst = dir.path().join(".uml/gone");
    std::fs::create_dir_all(&inst).unwrap();
    std::fs::write(inst.join("pid"), "2000000000\n").unwrap();
    let (code, _, err) = ours(dir.path(), &["gone", "version"], None);
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("names pid 2000000000, which does not exist: the guest is gone"),
        "{err}"
    );
}

#[test]
fn a_silent_guest_times_out_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mconsole");
    let _silent = UnixDatagram::bind(&path).unwrap();
    let start = Instant::now();
    let (code, _, err) = ours(
        dir.path(),
        &["--timeout", "0.3", path.to_str().unwrap(), "version"],
        None,
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(code, 1);
    assert!(
        err.contains("no reply from") && err.contains("within 0.3 s"),
        "{err}"
    );
    let (code, _, err) = ours(dir.path(), &["--timeout", "soon", "x"], None);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn json_output_is_one_object_per_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mconsole");
    let server = echo_server(&path, 3);
    let sock = path.to_str().unwrap();
    let (code, out, _) = ours(dir.path(), &["--json", sock, "bad", "thing"], None);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 1);
    assert_eq!(
        (v["ok"].as_bool(), v["err"].as_i64()),
        (Some(false), Some(1))
    );
    assert_eq!(v["reply"], "bad thing");
    assert_eq!(v["command"], "bad thing");
    // Interactive JSON: no prompt, one object per line.
    let (code, out, _) = ours(
        dir.path(),
        &["--json", sock],
        Some(b"hello\nmconsole-version\nhelp\n"),
    );
    assert_eq!(code, 0);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0]["reply"], "hello");
    assert_eq!(lines[1]["reply"], "uml_mconsole client version 2\n");
    assert!(
        lines[2]["reply"]
            .as_str()
            .unwrap()
            .starts_with("helpAdditional local"),
        "{out}"
    );
    server.join().unwrap();
}

#[test]
fn listener_prints_notifications_until_its_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let child = Command::new(common::bin("uml_mconsole"))
        .args(["--count", "3", "--timeout", "20", "--listen"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "listener did not bind"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    notify(&path, NotifyKind::Socket, b"/root/.uml/vm/mconsole\0").unwrap();
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"garbage", &path)
        .unwrap();
    notify(&path, NotifyKind::Panic, b"Attempted to kill init!\0").unwrap();
    notify(&path, NotifyKind::User, b"backup done\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "socket /root/.uml/vm/mconsole\npanic Attempted to kill init!\nuser backup done\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("malformed notification"));
    assert!(!path.exists());
}

#[test]
fn listener_without_notifications_gives_up_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let (code, out, err) = ours(
        dir.path(),
        &["--timeout", "0.3", "--listen", path.to_str().unwrap()],
        None,
    );
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("no notification on"), "{err}");
}

/// Reads from the pty `master` into `seen` until `want` occurs `times`
/// times in all of it (or 5 s passed).
fn read_pty_until(master: &std::fs::File, seen: &mut Vec<u8>, want: &str, times: usize) {
    use std::io::Read;
    use std::os::fd::AsFd;
    let start = Instant::now();
    while String::from_utf8_lossy(seen).matches(want).count() < times
        && start.elapsed() < Duration::from_secs(5)
    {
        let mut fds = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, 100u16).unwrap_or(0) > 0 {
            let mut buf = [0u8; 1024];
            match (&*master).read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    }
}

/// Our client on socket `path` with a pty as its terminal: the child and
/// the pty's master side.
fn on_a_pty(path: &Path, home: &Path) -> (std::process::Child, std::fs::File) {
    use std::os::fd::OwnedFd;
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    let child = Command::new(common::bin("uml_mconsole"))
        .arg(path)
        .env("HOME", home)
        .env("TERM", "xterm")
        .stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(slave(&pty.slave))
        .spawn()
        .unwrap();
    (child, std::fs::File::from(pty.master))
}

/// Waits at most 5 s for `child` to end.
fn wait_5s(child: &mut std::process::Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("uml_mconsole did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn on_a_terminal_the_up_arrow_brings_back_the_last_command() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mconsole");
    let server = echo_server(&path, 2);
    let (mut child, mut master) = on_a_pty(&path, dir.path());
    // Keys go in only once the prompt is up (the editor reads them raw).
    let mut seen = Vec::new();
    read_pty_until(&master, &mut seen, ") ", 1);
    master.write_all(b"hello\r").unwrap();
    read_pty_until(&master, &mut seen, ") ", 2);
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert_eq!(text.matches("OK hello").count(), 1, "{text:?}");
    // Up arrow, Enter: the same command again.
    master.write_all(b"\x1b[A\r").unwrap();
    read_pty_until(&master, &mut seen, "OK hello", 2);
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert_eq!(
        text.matches("OK hello").count(),
        2,
        "no recalled command: {text:?}"
    );
    // And the prompt after it, so that Ctrl-D reaches the editor.
    let prompts = text.matches(") ").count();
    read_pty_until(&master, &mut seen, ") ", prompts + 1);
    // Ctrl-D on an empty line ends the session.
    master.write_all(b"\x04").unwrap();
    assert_eq!(wait_5s(&mut child).code(), Some(0), "Ctrl-D");
    server.join().unwrap();
}

#[test]
fn on_a_terminal_ctrl_c_ends_the_client_by_sigint() {
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mconsole");
    let _server = Server::bind(&path).unwrap();
    let (mut child, mut master) = on_a_pty(&path, dir.path());
    let mut seen = Vec::new();
    read_pty_until(&master, &mut seen, ") ", 1);
    master.write_all(b"half a comm\x03").unwrap();
    let status = wait_5s(&mut child);
    assert_eq!(status.signal(), Some(2), "{status:?}");
}
