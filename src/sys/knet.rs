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

/// A packet socket on host interface `ifname` (`vec<N>:transport=raw`):
/// every frame that arrives on the interface, one per read, and frames
/// written go out on it. Frames the host itself sends out of the interface
/// are not read (`PACKET_IGNORE_OUTGOING`). Non-blocking, close-on-exec;
/// needs CAP_NET_RAW in the interface's network namespace.
pub fn packet_socket_on(ifname: &str) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let index = nix::net::if_::if_nametoindex(ifname)?;
    // SAFETY: socket(2) takes three integers and returns a new descriptor
    // or -1. Protocol 0: nothing is received before the bind below picks
    // the interface.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is the descriptor socket(2) just returned; nothing
    // else owns it.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
    let ignore: libc::c_int = 1;
    // SAFETY: PACKET_IGNORE_OUTGOING reads one c_int from the pointer and
    // length given, which describe `ignore` for the whole call.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            (&ignore as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: an all-zero sockaddr_ll is a valid value of the plain C
    // structure; the fields that matter are set below.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    addr.sll_ifindex =
        i32::try_from(index).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
    // SAFETY: bind(2) reads `size_of::<sockaddr_ll>()` bytes from the
    // pointer, which describes `addr` for the whole call.
    let ret = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// A raw IP socket for `protocol` (IPv6 with `v6`), non-blocking and
/// close-on-exec: GRE and L2TPv3 over IP. Needs CAP_NET_RAW.
pub fn raw_ip_socket(v6: bool, protocol: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: socket(2) takes three integers and returns a new descriptor
    // or -1.
    let raw = unsafe {
        libc::socket(
            family,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            protocol,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is the descriptor socket(2) just returned; nothing
    // else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) })
}
