//! The guest network devices of `linux`: setting a TAP interface's
//! Ethernet address (SIOCSIFHWADDR) and moving frames through its
//! non-blocking descriptor. Opening the TAP is `crate::net::tap`'s.

use super::net::ifname_bytes;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `struct ifreq` with the `ifr_hwaddr` member of the union (40 bytes).
#[repr(C)]
struct IfReqHw {
    name: [u8; libc::IFNAMSIZ],
    family: libc::sa_family_t,
    data: [u8; 14],
    _pad: [u8; 8],
}

/// Sets the Ethernet address of interface `name` through the AF_INET
/// configuration socket `sock`.
pub fn set_hwaddr(sock: BorrowedFd<'_>, name: &str, mac: [u8; 6]) -> io::Result<()> {
    let mut req = IfReqHw {
        name: ifname_bytes(name.as_bytes())?,
        family: libc::ARPHRD_ETHER,
        data: [0; 14],
        _pad: [0; 8],
    };
    req.data[..6].copy_from_slice(&mac);
    // SAFETY: SIOCSIFHWADDR reads one 40-byte `struct ifreq`; `req` is a
    // live value of that layout for the whole call.
    let ret = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFHWADDR,
            &mut req as *mut IfReqHw,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Reads one frame from the non-blocking `fd` into `buf`; `None` when
/// nothing is waiting.
pub fn read_frame(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match nix::unistd::read(fd.as_raw_fd(), buf) {
        Ok(n) => Ok(Some(n)),
        Err(nix::errno::Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes one frame to `fd`; a frame the device cannot take now (queue
/// full, or the interface is down: EIO) is dropped, as a network does.
pub fn write_frame(fd: BorrowedFd<'_>, frame: &[u8]) -> io::Result<()> {
    match nix::unistd::write(fd, frame) {
        Ok(_)
        | Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::ENOBUFS | nix::errno::Errno::EIO) => {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// A descriptor of our own for the inherited descriptor number `raw`
/// (`vec<N>:transport=fd,fd=N`), close-on-exec; `EBADF` when `raw` is not
/// open.
pub fn dup_inherited(raw: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_DUPFD_CLOEXEC reads no memory; it only looks `raw` up in
    // this process's descriptor table and fails with EBADF if it is not open.
    let new = unsafe { libc::fcntl(raw, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a descriptor fcntl just made for us and nothing
    // else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(new) })
}
