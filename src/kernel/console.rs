//! The console: the boot log (kernel-style lines on con0's output, `quiet`
//! keeps only errors) and the relay between the guest's `/dev/console` pty
//! and con0's host descriptors, with a host terminal in raw mode while the
//! guest runs.

use super::chan::{Channel, ChannelPair};
use crate::sys::guest::dup_inherited;
use nix::sys::termios::{self, SetArg, Termios};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where console output goes: a host descriptor or nowhere.
#[derive(Clone)]
pub struct Log {
    out: Option<Arc<Mutex<File>>>,
    quiet: bool,
}

impl Log {
    /// The log for con0's output channel. Only `fd:N` and `null` are
    /// supported; the caller checked.
    pub fn new(con0: Option<&ChannelPair>, quiet: bool) -> io::Result<Log> {
        let out = match con0.map(|p| &p.output) {
            Some(Channel::Fd(n)) => Some(Arc::new(Mutex::new(File::from(dup_inherited(*n)?)))),
            _ => None,
        };
        Ok(Log { out, quiet })
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
        if !self.quiet {
            self.error(line);
        }
    }

    /// An error-level line (always printed, as `quiet` keeps errors).
    pub fn error(&self, line: &str) {
        // The console is raw while the guest runs: end lines with CR LF.
        self.raw(format!("{line}\r\n").as_bytes());
    }
}

/// The channel types a console may use in this monitor.
pub fn supported(pair: &ChannelPair) -> Result<(), String> {
    for c in [&pair.input, &pair.output] {
        match c {
            Channel::Fd(_) | Channel::Null => {}
            other => {
                return Err(format!(
                    "con0: channel type '{}' is not supported by this linux (use fd:N or null)",
                    other.kind()
                ))
            }
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
/// when the guest side has gone quiet (all its descriptors closed).
pub struct Relay {
    resume: Sender<()>,
    idle: Receiver<()>,
}

impl Relay {
    /// Starts relaying `master` to `log` (output) and from con0's input
    /// descriptor to `master`. Output waits for [`Relay::resume`].
    pub fn start(master: OwnedFd, log: Log, input: Option<i32>) -> io::Result<Relay> {
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
        let (resume_tx, resume_rx) = channel::<()>();
        let (idle_tx, idle_rx) = channel::<()>();
        std::thread::Builder::new()
            .name("con-out".into())
            .spawn(move || {
                let mut m = master;
                let mut buf = vec![0u8; 65536];
                while resume_rx.recv().is_ok() {
                    loop {
                        match m.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => log.raw(&buf[..n]),
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            // EIO: no guest process holds the console.
                            Err(_) => break,
                        }
                    }
                    if idle_tx.send(()).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Relay {
            resume: resume_tx,
            idle: idle_rx,
        })
    }

    /// Lets a boot's output flow.
    pub fn resume(&self) {
        let _ = self.resume.send(());
    }

    /// Waits until the guest side is closed and all output is written.
    pub fn wait_idle(&self, limit: Duration) {
        let _ = self.idle.recv_timeout(limit);
    }
}
