//! System calls for a small long-lived root helper (`uml_net`'s TAP
//! watcher, see `net::watcher`): closing every descriptor but a few,
//! keeping one capability and nothing else, and naming the network
//! namespace a socket lives in.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `SO_NETNS_COOKIE` (asm-generic/socket.h, Linux 5.14).
const SO_NETNS_COOKIE: libc::c_int = 71;
/// `CAP_NET_ADMIN`.
const CAP_NET_ADMIN: u32 = 12;
/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The cookie of the network namespace `sock` belongs to: a 64-bit number
/// the kernel never gives to another namespace while it runs (unlike the
/// namespace's inode number, which is reused).
pub fn netns_cookie(sock: BorrowedFd<'_>) -> io::Result<u64> {
    let mut cookie: u64 = 0;
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<u64>())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: SO_NETNS_COOKIE writes at most `len` (8) bytes into `cookie`,
    // a live u64, and stores the written length in `len`.
    check(unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    })?;
    Ok(cookie)
}

/// Closes every descriptor except `keep` (and 0, 1, 2, which the caller
/// points at /dev/null itself). For a freshly forked single-threaded
/// child that leaves through `_exit`.
pub fn close_fds_except(keep: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut kept: Vec<libc::c_uint> = keep
        .iter()
        .map(|f| libc::c_uint::try_from(f.as_raw_fd()))
        .collect::<Result<_, _>>()
        .map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    kept.sort_unstable();
    let mut first: libc::c_uint = 3;
    for k in kept.into_iter().chain([libc::c_uint::MAX]) {
        if k > first {
            // SAFETY: the caller is a forked single-threaded child; the
            // objects owning these descriptors belong to stack frames it
            // never unwinds (it leaves through `_exit`), so nothing uses or
            // closes them after this.
            check(unsafe { libc::close_range(first, k - 1, 0) })?;
        }
        first = first.max(k.saturating_add(1));
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Keeps `CAP_NET_ADMIN` and no other capability: drops the rest from the
/// bounding set, clears the ambient set, sets `no_new_privs`, and makes
/// `CAP_NET_ADMIN` the only permitted and effective capability. The uids
/// are left as they are (root owns the files the helper still writes).
pub fn keep_only_net_admin() -> io::Result<()> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(63)
        .min(63);
    for cap in (0..=last).filter(|&c| c != CAP_NET_ADMIN) {
        // SAFETY: prctl with integer arguments only; no memory is passed.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: prctl with integer arguments only.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    })?;
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let one = CapData {
        effective: 1 << CAP_NET_ADMIN,
        permitted: 1 << CAP_NET_ADMIN,
        inheritable: 0,
    };
    let none = CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    };
    let mut data = [one, none];
    // SAFETY: capset reads one header and, for version 3, two data
    // records; both live on this stack frame for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
