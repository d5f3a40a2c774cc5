//! The TAP watcher: a small process `uml_net tuntap up` leaves behind for
//! each TAP it makes, which waits for the TAP to disappear and then undoes
//! what uml_net did for it (see [`super::tapstate::reconcile`]).
//!
//! The TAP lives as long as a descriptor of it is open, and nothing tells
//! uml_net when the guest lets go of it: the real kernel closes it when
//! the guest's interface goes down or the kernel exits (halt, crash,
//! SIGKILL), without running `uml_net del`. So the watcher listens on
//! rtnetlink for `RTM_DELLINK` of the TAP's interface index (the socket
//! is subscribed before uml_net lets go of the TAP, so no event is
//! missed) and checks the index directly every [`BACKSTOP`] and after a
//! lost event (`ENOBUFS`).
//!
//! It is made by a double fork (so it is nobody's child and in a session
//! of its own, without a terminal), keeps only its netlink socket and the
//! lock of its watch file (which tells others it lives) with stdio on
//! `/dev/null`, runs with all user ids root (so the user who ran uml_net
//! cannot signal it) but with `CAP_NET_ADMIN` as its only capability and
//! `no_new_privs`, and ends as soon as its TAP is gone.

use super::state::TapKey;
use crate::sys::daemon;
use crate::sys::guest::fork_helper;
use nix::sys::socket::{self, MsgFlags};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// How often the watcher checks its TAP without being told.
pub const BACKSTOP: Duration = Duration::from_secs(5);
/// How many times the watcher tries to take the state lock.
const LOCK_TRIES: u32 = 6;

const RTM_DELLINK: u16 = 17;
/// `RTMGRP_LINK`.
const GROUP_LINK: u32 = 1;
const NLMSG_HDRLEN: usize = 16;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

/// Whether the rtnetlink messages in `buf` (one read) include the
/// deletion of interface `index`: an `RTM_DELLINK` whose `ifinfomsg`
/// (family, pad, type, then the index at offset 4) names it. The walk
/// never leaves `buf` and stops at the first malformed header.
pub fn link_deleted(buf: &[u8], index: u32) -> bool {
    let mut at = 0usize;
    while let (Some(len), Some(kind)) = (u32_at(buf, at), u16_at(buf, at + 4)) {
        let Ok(len) = usize::try_from(len) else {
            return false;
        };
        let Some(end) = at
            .checked_add(len)
            .filter(|&e| len >= NLMSG_HDRLEN && e <= buf.len())
        else {
            return false;
        };
        if kind == RTM_DELLINK && u32_at(&buf[at + NLMSG_HDRLEN..end], 4) == Some(index) {
            return true;
        }
        at = at.saturating_add((len + 3) & !3);
    }
    false
}

/// Whether an interface with index `index` exists in this network
/// namespace.
pub fn link_exists(index: u32) -> bool {
    match nix::net::if_::if_nameindex() {
        Ok(list) => list.iter().any(|i| i.index() == index),
        // Unknown: count it as existing; the next check decides.
        Err(_) => true,
    }
}

/// A netlink socket in this network namespace that hears of every link
/// change, with a receive timeout of [`BACKSTOP`].
pub fn link_watch() -> io::Result<OwnedFd> {
    let sock = crate::sys::net::rtnetlink_subscribe(GROUP_LINK)?;
    let tv = nix::sys::time::TimeVal::new(i64::try_from(BACKSTOP.as_secs()).unwrap_or(5), 0);
    socket::setsockopt(&sock, socket::sockopt::ReceiveTimeout, &tv)?;
    Ok(sock)
}

/// Blocks until interface `index` is gone.
fn wait_until_gone(sock: BorrowedFd<'_>, index: u32) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if !link_exists(index) {
            return;
        }
        match socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) if link_deleted(&buf[..n], index) => return,
            Ok(0) => std::thread::sleep(BACKSTOP),
            Ok(_) => {}
            // Timeout, a lost event or an interrupted call: check directly.
            Err(
                nix::errno::Errno::EAGAIN | nix::errno::Errno::ENOBUFS | nix::errno::Errno::EINTR,
            ) => {}
            Err(_) => std::thread::sleep(BACKSTOP),
        }
    }
}

/// The watcher's life, in the grandchild.
fn watcher_main(key: TapKey, dir: &Path, sock: BorrowedFd<'_>, watch: BorrowedFd<'_>) -> i32 {
    // stdio on /dev/null, then nothing but the socket and the lock.
    match File::options().read(true).write(true).open("/dev/null") {
        Ok(null) => {
            for fd in 0..3 {
                let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
            }
        }
        Err(_) => return 1,
    }
    if daemon::close_fds_except(&[sock, watch]).is_err() {
        return 1;
    }
    let _ = nix::unistd::chdir("/");
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    // Without it the watcher still does its job; it just keeps more.
    let _ = daemon::keep_only_net_admin();
    wait_until_gone(sock, key.ifindex);
    for _ in 0..LOCK_TRIES {
        match super::statedir::StateDir::lock(dir) {
            Ok(sd) => {
                super::tapstate::reconcile(&sd, key.netns);
                return 0;
            }
            Err(super::statedir::StateError::Busy { .. }) => continue,
            Err(_) => return 1,
        }
    }
    1
}

/// Starts the watcher of `key`: it inherits `sock` (from [`link_watch`],
/// made while the caller still holds the TAP) and the watch lock `watch`
/// (which stays held while the watcher lives, since a `flock` belongs to
/// the open file that the watcher shares). Returns once the watcher runs
/// on its own. Only from a single-threaded process.
pub fn spawn(key: TapKey, dir: &Path, sock: OwnedFd, watch: BorrowedFd<'_>) -> io::Result<()> {
    // A parent that ignores SIGCHLD would make the kernel reap the
    // middle child before it can be waited for.
    let _ = crate::sys::process::default_action(nix::sys::signal::Signal::SIGCHLD);
    let middle = fork_helper(|| {
        if nix::unistd::setsid().is_err() {
            return 1;
        }
        match fork_helper(|| watcher_main(key, dir, sock.as_fd(), watch)) {
            Ok(_) => 0,
            Err(_) => 1,
        }
    })?;
    drop(sock);
    match nix::sys::wait::waitpid(middle, None)? {
        nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
        other => Err(io::Error::other(format!(
            "the watcher could not be started ({other:?})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_msg(kind: u16, index: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&32u32.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0u8; 10]);
        m.extend_from_slice(&[0, 0, 1, 0]); // family, pad, type
        m.extend_from_slice(&index.to_ne_bytes());
        m.extend_from_slice(&[0u8; 8]); // flags, change
        m
    }

    #[test]
    fn only_the_deletion_of_our_index_counts() {
        let mut buf = link_msg(16, 7); // RTM_NEWLINK
        buf.extend(link_msg(RTM_DELLINK, 8));
        assert!(!link_deleted(&buf, 7));
        buf.extend(link_msg(RTM_DELLINK, 7));
        assert!(link_deleted(&buf, 7));
        assert!(link_deleted(&buf, 8));
    }

    #[test]
    fn damaged_link_messages_never_panic() {
        let good = link_msg(RTM_DELLINK, 7);
        for cut in 0..good.len() {
            assert!(!link_deleted(&good[..cut], 7));
        }
        let mut bad = good.clone();
        bad[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(!link_deleted(&bad, 7));
        bad[..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(!link_deleted(&bad, 7));
        let mut seed = 0x2545_f491u32;
        for _ in 0..20_000 {
            let mut b = good.clone();
            b.extend(link_msg(16, 3));
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let i = seed as usize % b.len();
                b[i] = (seed >> 8) as u8;
            }
            let _ = link_deleted(&b, 7);
        }
    }
}
