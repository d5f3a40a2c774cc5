//! `uml_watchdog`: the host side of the UML kernel's `harddog` driver.
//!
//! When a guest opens `/dev/watchdog`, the kernel runs
//! `/usr/bin/uml_watchdog -pid PID` (its own pid) or, when it was booted
//! with `mconsole=notify:SOCKET`, `/usr/bin/uml_watchdog -mconsole SOCKET`,
//! with a pipe from the kernel on standard input and a pipe to the kernel
//! on standard output and standard error. The watchdog writes one byte to
//! say it runs (the kernel's open waits for it), then expects a byte on
//! standard input at least every timeout (60 s): the guest's writes to
//! `/dev/watchdog`. End of input means the guest closed the device or the
//! kernel exited, and the watchdog exits 0. A timeout means the kernel hung:
//! `-pid` interrupts it twice a second apart and then kills it; `-mconsole`
//! sends an `MCONSOLE_HANG` notification to the socket and leaves the
//! kernel to whoever listens there.
//!
//! Differences from Debian's program: the kernel is signalled through a
//! pidfd, so a pid reused after the kernel's exit is never hit, and the
//! signalling stops once the kernel is gone; the notification has the
//! kernel's own layout (Debian's 64-bit build sends an 8-byte magic, which
//! a listener that expects the kernel's messages misreads); the timeout can
//! be changed with `UML_WATCHDOG_TIMEOUT`; and errors are reported on
//! standard error unless that is the kernel's pipe before the first byte,
//! where any output would read as "started".

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use crate::mconsole::protocol::{Notification, NotifyKind};
use crate::sys::process::{pidfd_open, pidfd_send_signal};

/// The kernel's margin: Debian's program re-arms `alarm(60)` after each
/// byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable that overrides [`DEFAULT_TIMEOUT`], in seconds.
pub const TIMEOUT_ENV: &str = "UML_WATCHDOG_TIMEOUT";

/// Between the two interrupts and the kill of a hung kernel.
const SIGNAL_GAP: Duration = Duration::from_secs(1);

/// What to do when the guest stops writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `-pid PID`: interrupt, interrupt, kill.
    Pid(i32),
    /// `-mconsole SOCKET`: send `MCONSOLE_HANG` to the notify socket.
    Mconsole(PathBuf),
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Watch the kernel.
    Run(Target),
    /// `--help`.
    Help,
}

/// The help text (`--help`, stdout).
pub const HELP: &str = "\
Usage: uml_watchdog -pid PID | -mconsole SOCKET
The host side of a User-Mode Linux guest's /dev/watchdog (harddog); the
kernel runs it. It expects a byte on standard input at least every 60 s
(UML_WATCHDOG_TIMEOUT seconds) and exits 0 at end of input; on a timeout it
acts on the hung kernel and exits 1.

  -pid PID          interrupt the kernel process PID twice, a second
                    apart, then kill it
  -mconsole SOCKET  send an MCONSOLE_HANG notification to the kernel's
                    mconsole=notify: socket SOCKET
  --help            print this help and exit
";

const USAGE: &str = "usage: uml_watchdog -pid PID | -mconsole SOCKET";

/// Parses the arguments after argv\[0\].
pub fn parse(args: &[OsString]) -> Result<Invocation, String> {
    match args {
        [flag] if flag == "--help" => Ok(Invocation::Help),
        [flag, pid] if flag == "-pid" => {
            let text = pid.to_string_lossy();
            match text.parse::<i32>() {
                Ok(n) if n > 0 => Ok(Invocation::Run(Target::Pid(n))),
                _ => Err(format!("-pid: {text:?} is not a process id")),
            }
        }
        [flag, socket] if flag == "-mconsole" => {
            Ok(Invocation::Run(Target::Mconsole(PathBuf::from(socket))))
        }
        [flag] if flag == "-pid" || flag == "-mconsole" => Err(format!(
            "{}: needs a value ({USAGE})",
            flag.to_string_lossy()
        )),
        [] => Err(USAGE.into()),
        [first, ..] => Err(format!(
            "{}: unknown argument ({USAGE})",
            first.to_string_lossy()
        )),
    }
}

/// Reads [`TIMEOUT_ENV`]: whole seconds, at least 1.
pub fn timeout_from_env(value: Option<OsString>) -> Result<Duration, String> {
    let Some(value) = value else {
        return Ok(DEFAULT_TIMEOUT);
    };
    let text = value.to_string_lossy();
    match text.parse::<u32>() {
        Ok(secs) if secs > 0 => Ok(Duration::from_secs(u64::from(secs))),
        _ => Err(format!(
            "{TIMEOUT_ENV}={text:?}: not a number of seconds (1 or more)"
        )),
    }
}

/// The body of `uml_watchdog`.
pub fn main() -> ExitCode {
    let (_, args) = super::program_and_args("uml_watchdog");
    // The kernel reads our first byte as "running": before it is written,
    // an error line on its pipe would say the opposite of what happened.
    let quiet_until_started = stderr_is_stdout();
    let fail = |e: String, started: bool| {
        if started || !quiet_until_started {
            eprintln!("uml_watchdog: {e}");
        }
        ExitCode::FAILURE
    };
    let target = match parse(&args) {
        Ok(Invocation::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Run(target)) => target,
        Err(e) => return fail(e, false),
    };
    let timeout = match timeout_from_env(std::env::var_os(TIMEOUT_ENV)) {
        Ok(t) => t,
        Err(e) => return fail(e, false),
    };
    // The hung kernel's handle is taken now, while its pid is surely its.
    let on_hang = match target {
        Target::Pid(pid) => match pidfd_open(pid) {
            Ok(fd) => OnHang::Stop(fd),
            Err(e) => return fail(format!("-pid {pid}: {e}"), false),
        },
        Target::Mconsole(socket) => OnHang::Notify(socket),
    };
    if let Err(e) = std::io::stdout()
        .write_all(&[0])
        .and_then(|()| std::io::stdout().flush())
    {
        return fail(format!("cannot tell the kernel it runs: {e}"), false);
    }
    match watch(std::io::stdin().as_fd(), timeout) {
        Ok(Watch::Closed) => ExitCode::SUCCESS,
        Ok(Watch::Expired) => {
            let acted = match &on_hang {
                OnHang::Stop(pidfd) => stop_kernel(pidfd),
                OnHang::Notify(socket) => notify_hang(socket),
            };
            match acted {
                Ok(()) => ExitCode::FAILURE,
                Err(e) => fail(e, true),
            }
        }
        Err(e) => fail(format!("standard input: {e}"), true),
    }
}

/// What a timeout does, ready before the watch starts.
enum OnHang {
    /// Interrupt, interrupt, kill the process behind this pidfd.
    Stop(OwnedFd),
    /// Send `MCONSOLE_HANG` to this socket.
    Notify(PathBuf),
}

/// How watching ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Watch {
    /// End of input: the device was closed or the kernel exited.
    Closed,
    /// No byte within the timeout.
    Expired,
}

/// Waits for bytes on `input`, each re-arming `timeout`.
pub fn watch(input: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> std::io::Result<Watch> {
    let mut file = std::fs::File::from(input.try_clone_to_owned()?);
    let mut buf = [0u8; 256];
    let mut deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Watch::Expired);
        }
        let mut fds = [PollFd::new(input, PollFlags::POLLIN)];
        match poll(&mut fds, poll_timeout(left)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        match file.read(&mut buf) {
            Ok(0) => return Ok(Watch::Closed),
            Ok(_) => deadline = Instant::now() + timeout,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn poll_timeout(left: Duration) -> PollTimeout {
    // Rounded up, so that a wake-up a little early does not spin.
    let ms = left.as_millis().saturating_add(1);
    PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
}

/// Interrupts the kernel, again a second later, then kills it; stops as
/// soon as it has exited.
fn stop_kernel(pidfd: &OwnedFd) -> Result<(), String> {
    for sig in [Signal::SIGINT, Signal::SIGINT, Signal::SIGKILL] {
        match pidfd_send_signal(pidfd.as_fd(), sig) {
            Ok(()) => {}
            // Gone already (ESRCH): nothing left to stop.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
            Err(e) => return Err(format!("cannot send {sig} to the kernel: {e}")),
        }
        if sig == Signal::SIGKILL || exited_within(pidfd, SIGNAL_GAP) {
            return Ok(());
        }
    }
    Ok(())
}

/// Whether the process behind `pidfd` exits within `wait`.
fn exited_within(pidfd: &OwnedFd, wait: Duration) -> bool {
    let end = Instant::now() + wait;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, poll_timeout(left)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {}
            Ok(_) => return true,
            Err(_) => return false,
        }
    }
}

/// Sends `MCONSOLE_HANG` to the notify socket, as the kernel sends its own
/// notifications: one datagram from an unbound socket.
fn notify_hang(socket: &Path) -> Result<(), String> {
    let message = Notification {
        kind: NotifyKind::Hang,
        data: Vec::new(),
    };
    let sender = std::os::unix::net::UnixDatagram::unbound()
        .map_err(|e| format!("cannot make a socket: {e}"))?;
    sender
        .send_to(&message.encode(), socket)
        .map_err(|e| format!("cannot notify {}: {e}", socket.display()))?;
    Ok(())
}

/// Whether standard error and standard output are the same file, as the
/// kernel's `harddog` leaves them.
fn stderr_is_stdout() -> bool {
    let identity = |fd: std::os::fd::BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .ok()
            .and_then(|fd| std::fs::File::from(fd).metadata().ok())
            .map(|m| (m.dev(), m.ino()))
    };
    let out = identity(std::io::stdout().as_fd());
    out.is_some() && out == identity(std::io::stderr().as_fd())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Invocation, String> {
        parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn the_kernels_two_forms_parse() {
        assert_eq!(p(&["-pid", "4242"]), Ok(Invocation::Run(Target::Pid(4242))));
        assert_eq!(
            p(&["-mconsole", "/tmp/notify"]),
            Ok(Invocation::Run(Target::Mconsole("/tmp/notify".into())))
        );
        assert_eq!(p(&["--help"]), Ok(Invocation::Help));
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        assert!(p(&[]).unwrap_err().contains("usage"));
        assert!(p(&["-pid"]).unwrap_err().contains("needs a value"));
        assert!(p(&["-pid", "12x"])
            .unwrap_err()
            .contains("not a process id"));
        assert!(p(&["-pid", "0"]).unwrap_err().contains("not a process id"));
        assert!(p(&["-pid", "-5"]).unwrap_err().contains("not a process id"));
        assert!(p(&["-x", "1"])
            .unwrap_err()
            .contains("-x: unknown argument"));
        assert!(p(&["-pid", "1", "2"]).is_err());
    }

    #[test]
    fn the_timeout_is_whole_seconds_from_the_environment() {
        assert_eq!(timeout_from_env(None), Ok(DEFAULT_TIMEOUT));
        assert_eq!(
            timeout_from_env(Some("5".into())),
            Ok(Duration::from_secs(5))
        );
        for bad in ["0", "", "1.5", "-1", "ten"] {
            assert!(
                timeout_from_env(Some(bad.into()))
                    .unwrap_err()
                    .contains(TIMEOUT_ENV),
                "{bad:?} accepted"
            );
        }
    }
}
