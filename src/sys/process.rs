//! Process-wide signal dispositions, process handles (pidfds), and the
//! bit masks of `/proc/PID/status`.

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// Restores the default action of `sig`, so that raising it kills the
/// process even when the parent started us with it ignored (as a shell
/// does for background jobs).
pub fn default_action(sig: Signal) -> nix::Result<()> {
    let action = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL runs no code of ours in signal context, so
    // none of sigaction's handler-safety requirements apply.
    unsafe { sigaction(sig, &action) }.map(|_| ())
}

/// A process handle that cannot be confused with a later process that
/// reuses the pid (`pidfd_open(2)`, Linux 5.3). It polls readable once
/// the process has exited.
pub fn pidfd_open(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes two integers and returns a new descriptor
    // or -1; no memory of ours is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned `fd` as a new descriptor that
    // nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Sends `sig` to the process behind `pidfd` (`pidfd_send_signal(2)`).
pub fn pidfd_send_signal(pidfd: std::os::fd::BorrowedFd<'_>, sig: Signal) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is borrowed for the call, the siginfo pointer
    // is null (the kernel then fills it as kill(2) would) and the flags 0.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether bit `bit` is set in the hexadecimal mask `field` (`CapEff`,
/// `SigCgt`, ...) of a `/proc/PID/status` text; false when the field is
/// missing or malformed.
pub fn status_bit(status: &str, field: &str, bit: u32) -> bool {
    let mask = status
        .lines()
        .filter_map(|l| l.strip_prefix(field))
        .find_map(|rest| rest.strip_prefix(':'))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    matches!((mask, 1u64.checked_shl(bit)), (Some(m), Some(b)) if m & b != 0)
}

#[cfg(test)]
mod tests {
    use super::status_bit;

    #[test]
    fn status_masks_are_read_bit_by_bit() {
        let status = "Name:\tx\nSigCgt:\t0000000000000200\nCapEff:\t000001ffffffffff\n";
        assert!(status_bit(status, "SigCgt", 9));
        assert!(!status_bit(status, "SigCgt", 10));
        assert!(status_bit(status, "CapEff", 21));
        assert!(!status_bit(status, "CapEff", 64));
        assert!(!status_bit(status, "SigBlk", 9));
        assert!(!status_bit("SigCgt:\tzz\n", "SigCgt", 0));
        // A field whose name only starts like another is not it.
        assert!(!status_bit("SigCgtX:\t1\n", "SigCgt", 0));
    }
}
