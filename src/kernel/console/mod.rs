//! The console: the boot log (kernel-style lines on con0's output, `quiet`
//! keeps only errors) and the relay between the guest's `/dev/console` pty
//! and con0's host descriptors, with a host terminal in raw mode while the
//! guest runs.

pub mod hangup;
pub mod kmsg;
pub mod lines;

use crate::kernel::cmdline::chan::{Channel, ChannelPair};
use crate::sys::guest::dup_inherited;
use nix::sys::termios::{self, SetArg, Termios};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Where console output goes: a host descriptor or nowhere.
#[derive(Clone)]
pub struct Log {
    out: Option<Arc<Mutex<File>>>,
    quiet: bool,
    /// Every boot line, for the guest's `dmesg`.
    pub kmsg: kmsg::Kmsg,
}

impl Log {
    /// The log for con0's output channel. Only `fd:N` and `null` are
    /// supported; the caller checked.
    pub fn new(con0: Option<&ChannelPair>, quiet: bool) -> io::Result<Log> {
        let out = match con0.map(|p| &p.output) {
            Some(Channel::Fd(n)) => Some(Arc::new(Mutex::new(File::from(dup_inherited(*n)?)))),
            _ => None,
        };
        Ok(Log {
            out,
            quiet,
            kmsg: kmsg::Kmsg::default(),
        })
    }

    /// Writes raw bytes (guest output).
    pub fn raw(&self, bytes: &[u8]) {
        if let Some(o) = &self.out {
            if let Ok(mut f) = o.lock() {
                let _ = f.write_all(bytes);
            }
        }
    }

    /// An informational boot line (silenced by `quiet`).
    pub fn info(&self, line: &str) {
        self.kmsg.push(6, line);
        if !self.quiet {
            self.print(line);
        }
    }

    /// An error-level line (always printed, as `quiet` keeps errors).
    pub fn error(&self, line: &str) {
        self.kmsg.push(3, line);
        self.print(line);
    }

    fn print(&self, line: &str) {
        // The console is raw while the guest runs: end lines with CR LF.
        self.raw(format!("{line}\r\n").as_bytes());
    }
}

/// A channel type con0 cannot use in this monitor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("con0: channel type '{kind}' is not supported by this linux (use fd:N or null)")]
pub struct UnsupportedChannel {
    /// The channel type (`port`, `pty`, `pts`, `tty`, `xterm`).
    pub kind: &'static str,
}

/// The channel types a console may use in this monitor.
pub fn supported(pair: &ChannelPair) -> Result<(), UnsupportedChannel> {
    for c in [&pair.input, &pair.output] {
        match c {
            Channel::Fd(_) | Channel::Null => {}
            other => return Err(UnsupportedChannel { kind: other.kind() }),
        }
    }
    Ok(())
}

/// A host terminal put in raw mode, restored when dropped.
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Puts `fd` in raw mode if it is a terminal.
    pub fn enter(fd: i32) -> Option<RawMode> {
        let fd = dup_inherited(fd).ok()?;
        let saved = termios::tcgetattr(fd.as_fd()).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }

    /// Restores the saved settings.
    pub fn restore(&self) {
        let _ = termios::tcsetattr(self.fd.as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        self.restore();
    }
}

/// The relay's handle: tells it when a boot's output may flow and learns
/// when the guest has gone quiet.
///
/// The monitor holds a slave descriptor of the console for the relay's
/// whole life, so the master never reads EIO: like the real kernel's
/// console, it stays usable while no guest process has it open (sysvinit
/// closes it between runlevel scripts) and whatever opens it next is
/// heard.
pub struct Relay {
    gate: Arc<Gate>,
    _hold: OwnedFd,
}

/// Whether output may flow, and the drain handshake.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    open: bool,
    /// Bumped by the output thread each time it finds the console quiet.
    quiet_seen: u64,
}

/// How long the console must stay silent to count as drained.
pub(super) const QUIET: Duration = Duration::from_millis(30);

impl Relay {
    /// Starts relaying `master` to `log` (output) and from con0's input
    /// descriptor to `master`. Output waits for [`Relay::resume`]. `hold`
    /// is a slave descriptor the relay keeps open.
    pub fn start(
        master: OwnedFd,
        hold: OwnedFd,
        log: Log,
        input: Option<i32>,
    ) -> io::Result<Relay> {
        let master = File::from(master);
        let writer = master.try_clone()?;
        if let Some(fd) = input {
            let mut inp = File::from(dup_inherited(fd)?);
            std::thread::Builder::new()
                .name("con-in".into())
                .spawn(move || {
                    let mut w = writer;
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = inp.read(&mut buf) {
                        if n == 0 || w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                })?;
        }
        let gate = Arc::new(Gate::default());
        let g = gate.clone();
        let session = hangup::Watch::new(hold.as_fd())?;
        std::thread::Builder::new()
            .name("con-out".into())
            .spawn(move || relay_output(master, &g, &log, session))?;
        Ok(Relay { gate, _hold: hold })
    }

    /// Lets a boot's output flow.
    pub fn resume(&self) {
        if let Ok(mut st) = self.gate.state.lock() {
            st.open = true;
            self.gate.changed.notify_all();
        }
    }

    /// Waits (up to `limit`) until everything the guest wrote has been
    /// relayed, then holds further output until the next [`Relay::resume`].
    pub fn wait_idle(&self, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        let Ok(mut st) = self.gate.state.lock() else {
            return;
        };
        let start = st.quiet_seen;
        while st.quiet_seen < start + 1 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            match self.gate.changed.wait_timeout(st, left) {
                Ok((s, _)) => st = s,
                Err(_) => return,
            }
        }
        st.open = false;
    }
}

/// The output thread: waits for the gate, then copies the master to the
/// log, noting each time the console has been quiet for [`QUIET`].
fn relay_output(mut master: File, gate: &Gate, log: &Log, mut session: hangup::Watch) {
    let mut buf = vec![0u8; 65536];
    loop {
        {
            let Ok(mut st) = gate.state.lock() else {
                return;
            };
            while !st.open {
                st = match gate.changed.wait(st) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
        }
        let ready = nix::poll::poll(
            &mut [nix::poll::PollFd::new(
                master.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )],
            nix::poll::PollTimeout::try_from(QUIET).unwrap_or(nix::poll::PollTimeout::NONE),
        );
        match ready {
            Ok(0) => {
                if let Ok(mut st) = gate.state.lock() {
                    st.quiet_seen += 1;
                    gate.changed.notify_all();
                }
                continue;
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        match master.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                log.raw(&buf[..n]);
                hangup::follow(master.as_fd(), &mut session);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // EIO cannot happen while the slave is held; wait it out.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => std::thread::sleep(QUIET),
            Err(_) => return,
        }
    }
}
