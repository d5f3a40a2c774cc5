//! Controlling-terminal and signal calls of `port-helper`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// Gives up `tty` as this process's controlling terminal (`TIOCNOTTY`), so
/// that the process that receives it (UML) can make it its own console.
pub fn give_up_controlling_tty(tty: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCNOTTY takes no argument and touches no memory of ours; the
    // descriptor is borrowed, so it stays open for the call.
    let rc = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCNOTTY, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ignores `sig` from now on (and in programs this one executes).
pub fn ignore_signal(sig: Signal) -> nix::Result<()> {
    let action = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_IGN runs no code of ours in signal context, so none of
    // sigaction's handler-safety requirements apply.
    unsafe { sigaction(sig, &action) }.map(|_| ())
}
