//! `uml_watchdog`, driven as the kernel's `harddog` drives it (a pipe in,
//! one pipe for standard output and error), side by side with Debian's
//! program where the behaviour is the same, and under Debian's `linux.uml`
//! with a guest that opens `/dev/watchdog`.

mod common;

use common::{bin, have_peers, have_root, which};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A watchdog started the way the kernel starts it.
struct Dog {
    child: Child,
    /// The kernel's end of the watchdog's standard output and error.
    from: std::fs::File,
    /// The kernel's end of the watchdog's standard input.
    to: Option<std::fs::File>,
}

fn start(program: &Path, args: &[&str], timeout: Option<u32>) -> Dog {
    let (from, out) = nix::unistd::pipe().unwrap();
    let err = out.try_clone().unwrap();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    match timeout {
        Some(secs) => cmd.env("UML_WATCHDOG_TIMEOUT", secs.to_string()),
        None => cmd.env_remove("UML_WATCHDOG_TIMEOUT"),
    };
    let mut child = cmd.spawn().unwrap();
    let to = child
        .stdin
        .take()
        .map(|s| std::fs::File::from(std::os::fd::OwnedFd::from(s)));
    Dog {
        child,
        from: std::fs::File::from(from),
        to,
    }
}

impl Dog {
    /// What the kernel's open reads: one byte when the watchdog runs,
    /// end of file when it failed.
    fn first_read(&mut self) -> Vec<u8> {
        let mut byte = [0u8; 1];
        let n = self.from.read(&mut byte).unwrap();
        byte[..n].to_vec()
    }

    fn ping(&mut self) {
        self.to.as_mut().unwrap().write_all(b"\n").unwrap();
    }

    /// Waits up to `limit` for the exit status; kills it past that.
    fn wait(mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A stand-in for a hung kernel: a shell that writes a line to `log` for
/// each SIGINT and otherwise sleeps.
fn victim(log: &Path) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap 'echo int >> {}' INT; echo ready >> {}; while :; do sleep 0.1; done",
            log.display(),
            log.display()
        ))
        .spawn()
        .unwrap()
}

fn wait_for_line(log: &Path, line: &str) {
    let end = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(log).is_ok_and(|t| t.lines().any(|l| l == line)) {
        assert!(Instant::now() < end, "{} never got {line:?}", log.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn debians() -> Option<std::path::PathBuf> {
    which("uml_watchdog").filter(|p| p.starts_with("/usr/bin"))
}

#[test]
fn the_watchdog_says_it_runs_then_exits_0_when_the_kernel_closes_the_device() {
    let mut programs = vec![("ours", bin("uml_watchdog"))];
    if have_peers(
        "the_watchdog_says_it_runs_then_exits_0_when_the_kernel_closes_the_device",
        &["uml_watchdog"],
    ) {
        programs.push(("Debian's", debians().unwrap()));
    }
    for (who, program) in programs {
        let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
        let pid = sleeper.id().to_string();
        let mut dog = start(&program, &["-pid", &pid], None);
        assert_eq!(dog.first_read().len(), 1, "{who}: no start byte");
        for _ in 0..3 {
            dog.ping();
        }
        drop(dog.to.take());
        let status = dog.wait(Duration::from_secs(30));
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{who}: {status:?}");
        assert!(
            sleeper.try_wait().unwrap().is_none(),
            "{who}: the kernel was signalled after a clean close"
        );
        let _ = sleeper.kill();
        let _ = sleeper.wait();
    }
}

#[test]
fn a_kernel_that_stops_pinging_is_interrupted_twice_then_killed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("signals");
    let mut kernel = victim(&log);
    wait_for_line(&log, "ready");
    let pid = kernel.id().to_string();
    let mut dog = start(&bin("uml_watchdog"), &["-pid", &pid], Some(3));
    assert_eq!(dog.first_read().len(), 1);
    // Pings well inside the timeout keep it quiet, for longer than one
    // timeout in all.
    let pinging = Instant::now();
    while pinging.elapsed() < Duration::from_secs(5) {
        dog.ping();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !std::fs::read_to_string(&log).unwrap().contains("int"),
        "signalled while it was pinged"
    );
    assert!(kernel.try_wait().unwrap().is_none());
    // Then silence, with the pipe still open: a hung kernel.
    let status = dog.wait(Duration::from_secs(60));
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{status:?}");
    let end = kernel.wait().unwrap();
    assert_eq!(end.signal(), Some(libc::SIGKILL), "{end:?}");
    let ints = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| *l == "int")
        .count();
    assert_eq!(ints, 2, "interrupts before the kill");
}

#[test]
fn with_a_notify_socket_a_hang_is_reported_there() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("notify");
    let mut listener = Command::new(bin("uml_mconsole"))
        .args(["--count", "1", "--timeout", "60", "--listen"])
        .arg(&socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while !socket.exists() {
        assert!(Instant::now() < end, "uml_mconsole --listen made no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut dog = start(
        &bin("uml_watchdog"),
        &["-mconsole", socket.to_str().unwrap()],
        Some(1),
    );
    assert_eq!(dog.first_read().len(), 1);
    let status = dog.wait(Duration::from_secs(60));
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{status:?}");
    let mut out = String::new();
    listener
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(listener.wait().unwrap().success());
    assert_eq!(out, "hang\n");
}

#[test]
fn a_failure_to_start_writes_nothing_to_the_kernels_pipe() {
    // The kernel reads one byte as "running": a failed start must leave it
    // end of file, as Debian's program does; on a separate standard error
    // ours says why.
    let mut programs = vec![("ours", bin("uml_watchdog"))];
    if have_peers(
        "a_failure_to_start_writes_nothing_to_the_kernels_pipe",
        &["uml_watchdog"],
    ) {
        programs.push(("Debian's", debians().unwrap()));
    }
    let gone = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid.to_string()
    };
    for (who, program) in &programs {
        for args in [vec!["-pid", gone.as_str()], vec!["-bark", "1"], vec![]] {
            let mut dog = start(program, &args, None);
            assert!(dog.first_read().is_empty(), "{who} {args:?} wrote");
            let status = dog.wait(Duration::from_secs(30));
            assert_eq!(status.and_then(|s| s.code()), Some(1), "{who} {args:?}");
        }
    }
    let out = common::umlkit("uml_watchdog", ["-pid", gone.as_str()]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(
        err.starts_with("uml_watchdog: -pid ") && err.lines().count() == 1,
        "{err:?}"
    );
    let bad = Command::new(bin("uml_watchdog"))
        .args(["-mconsole", "/x"])
        .env("UML_WATCHDOG_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(common::stderr(&bad).contains("UML_WATCHDOG_TIMEOUT=\"soon\""));
}

/// A busybox guest under `linux.uml` opens `/dev/watchdog`, pings it for a
/// while, then hangs with it open: the kernel runs `/usr/bin/uml_watchdog`,
/// here ours (bound over Debian's in a private mount namespace), which stops
/// the kernel. Debian's would wait 60 s, past this test's limit.
#[test]
fn linux_uml_runs_our_watchdog_which_stops_a_hung_guest() {
    let test = "linux_uml_runs_our_watchdog_which_stops_a_hung_guest";
    if !have_root(test) || !have_peers(test, &["linux.uml", "uml_watchdog", "unshare", "busybox"]) {
        return;
    }
    let init = common::uml::init_script(
        "mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -e /dev/watchdog ] || mknod /dev/watchdog c 10 130
exec 3>/dev/watchdog || echo OPEN-FAILED
echo WATCHDOG-OPEN
i=0
while [ $i -lt 25 ]; do echo x >&3; usleep 200000; i=$((i+1)); done
echo PINGS-DONE
sleep 600",
    );
    let guest = common::uml::Guest::new(&init, 32);
    let kernel = which("linux.uml").unwrap();
    let ours = bin("uml_watchdog");
    let script = format!(
        "mount --make-rprivate / && mount --bind {} /usr/bin/uml_watchdog && exec {} \"$@\"",
        ours.display(),
        kernel.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.current_dir(guest.dir.path())
        .args(["-m", "sh", "-c", &script, "linux.uml"])
        .args([
            "ubd0=root_fs",
            "root=/dev/ubda",
            "rw",
            "init=/init",
            "con=null",
            "con0=fd:0,fd:1",
            "mem=64M",
            common::uml::GLIBC_TUNABLES,
        ])
        .arg(format!("uml_dir={}", guest.dir.path().display()))
        .env("UML_WATCHDOG_TIMEOUT", "3")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    common::uml::apply_shim(&mut cmd);
    let boot = common::uml::run_with_limit(cmd, Duration::from_secs(50));
    let out = &boot.output;
    assert!(out.contains("WATCHDOG-OPEN"), "{out}");
    assert!(!out.contains("OPEN-FAILED"), "{out}");
    assert!(
        out.contains("PINGS-DONE"),
        "the guest was stopped while it pinged: {out}"
    );
    assert!(!out.contains("GUEST-DONE"), "{out}");
    let status = boot
        .status
        .unwrap_or_else(|| panic!("the watchdog did not stop the hung guest: {out}"));
    assert!(!status.success(), "{status:?}");
}
