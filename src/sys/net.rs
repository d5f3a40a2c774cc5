//! Network system calls for `crate::net` (`tunctl`, `uml_net`, TAP
//! devices), `uml_switch` and the guest kernel: the TUN/TAP ioctls, the
//! classic AF_INET configuration ioctls (address, flags, host routes, proxy
//! ARP), descriptor passing with `SCM_RIGHTS`, and batched
//! datagram receive/send (`recvmmsg`/`sendmmsg`).
//!
//! Everything above this module is safe code; each `unsafe` block here says
//! why it is sound. Structure layouts are the x86_64 ones from
//! `linux/if.h`, `linux/if_tun.h`, `linux/route.h` and `linux/if_arp.h`.

use nix::sys::socket::{self, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType};
use std::io::{self, IoSlice};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// Length of an interface name buffer, including the terminating NUL.
pub const IFNAMSIZ: usize = 16;
/// `IFF_TUN`: a layer-3 device.
pub const IFF_TUN: i16 = 0x0001;
/// `IFF_TAP`: a layer-2 (Ethernet) device.
pub const IFF_TAP: i16 = 0x0002;
/// `IFF_NO_PI`: no packet-information header before each frame.
pub const IFF_NO_PI: i16 = 0x1000;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const TUNSETOWNER: libc::c_ulong = 0x4004_54cc;
const TUNSETGROUP: libc::c_ulong = 0x4004_54ce;

const ATF_COM: libc::c_int = 0x02;
const ATF_PERM: libc::c_int = 0x04;
const ATF_PUBL: libc::c_int = 0x08;

/// `struct ifreq` with the `ifr_flags` member of the union (40 bytes).
#[repr(C)]
struct IfReqFlags {
    name: [u8; IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// `struct ifreq` with the `ifr_addr` member of the union (40 bytes).
#[repr(C)]
struct IfReqAddr {
    name: [u8; IFNAMSIZ],
    addr: libc::sockaddr_in,
    _pad: [u8; 8],
}

/// An interface name as the kernel stores it: at most 15 bytes and a NUL.
pub fn ifname_bytes(name: &[u8]) -> io::Result<[u8; IFNAMSIZ]> {
    if name.len() >= IFNAMSIZ || name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad interface name",
        ));
    }
    let mut out = [0u8; IFNAMSIZ];
    out[..name.len()].copy_from_slice(name);
    Ok(out)
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `TUNSETIFF`: attaches the open clone device `fd` to the interface `name`
/// (created if absent; empty or with `%d` lets the kernel choose) with
/// `flags`. Returns the name the kernel wrote back.
pub fn tun_set_iff(fd: BorrowedFd<'_>, name: &[u8], flags: i16) -> io::Result<[u8; IFNAMSIZ]> {
    let mut req = IfReqFlags {
        name: ifname_bytes(name)?,
        flags,
        _pad: [0; 22],
    };
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq` (40 bytes); `req`
    // is a live, properly laid out 40-byte value for the whole call.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReqFlags) })?;
    Ok(req.name)
}

fn tun_int_ioctl(
    fd: BorrowedFd<'_>,
    request: libc::c_ulong,
    value: libc::c_ulong,
) -> io::Result<()> {
    // SAFETY: these TUN ioctls take their argument by value (not as a
    // pointer), so no memory is read or written through it.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), request, value) })
}

/// `TUNSETPERSIST`: whether the device outlives its last descriptor.
pub fn tun_set_persist(fd: BorrowedFd<'_>, persist: bool) -> io::Result<()> {
    tun_int_ioctl(fd, TUNSETPERSIST, libc::c_ulong::from(persist))
}

/// `TUNSETOWNER`: the user allowed to attach to the device.
pub fn tun_set_owner(fd: BorrowedFd<'_>, uid: u32) -> io::Result<()> {
    tun_int_ioctl(fd, TUNSETOWNER, libc::c_ulong::from(uid))
}

/// `TUNSETGROUP`: the group allowed to attach to the device.
pub fn tun_set_group(fd: BorrowedFd<'_>, gid: u32) -> io::Result<()> {
    tun_int_ioctl(fd, TUNSETGROUP, libc::c_ulong::from(gid))
}

/// The index of interface `name` in the caller's network namespace, if it
/// exists.
pub fn if_index(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok().filter(|&i| i != 0)
}

/// An AF_INET datagram socket, the handle for the configuration ioctls.
pub fn inet_socket() -> io::Result<OwnedFd> {
    Ok(socket::socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

fn sockaddr_in(addr: Ipv4Addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.octets()),
        },
        sin_zero: [0; 8],
    }
}

fn generic_sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = sockaddr_in(addr);
    let mut out = libc::sockaddr {
        sa_family: sin.sin_family,
        sa_data: [0; 14],
    };
    // sin_port (2 bytes, zero) then the 4 address bytes, as sockaddr_in
    // overlays sockaddr.
    for (i, b) in addr.octets().iter().enumerate() {
        out.sa_data[2 + i] = *b as libc::c_char;
    }
    out
}

fn if_addr_ioctl(
    sock: BorrowedFd<'_>,
    name: &str,
    request: libc::c_ulong,
    addr: Ipv4Addr,
) -> io::Result<()> {
    let mut req = IfReqAddr {
        name: ifname_bytes(name.as_bytes())?,
        addr: sockaddr_in(addr),
        _pad: [0; 8],
    };
    // SAFETY: SIOCSIFADDR/SIOCSIFNETMASK read one 40-byte `struct ifreq`;
    // `req` has that layout and lives for the call.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), request, &mut req as *mut IfReqAddr) })
}

/// `SIOCSIFADDR` then `SIOCSIFNETMASK`: gives `name` the address `addr/mask`.
pub fn if_set_addr(
    sock: BorrowedFd<'_>,
    name: &str,
    addr: Ipv4Addr,
    mask: Ipv4Addr,
) -> io::Result<()> {
    if_addr_ioctl(sock, name, libc::SIOCSIFADDR, addr)?;
    if_addr_ioctl(sock, name, libc::SIOCSIFNETMASK, mask)
}

/// `SIOCGIFFLAGS` then `SIOCSIFFLAGS` with `IFF_UP` set.
pub fn if_up(sock: BorrowedFd<'_>, name: &str) -> io::Result<()> {
    let mut req = IfReqFlags {
        name: ifname_bytes(name.as_bytes())?,
        flags: 0,
        _pad: [0; 22],
    };
    // SAFETY: SIOCGIFFLAGS writes `ifr_flags` of the 40-byte `struct ifreq`
    // that `req` is; it lives for the call.
    check(unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS,
            &mut req as *mut IfReqFlags,
        )
    })?;
    req.flags |= libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads the structure.
    check(unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFFLAGS,
            &mut req as *mut IfReqFlags,
        )
    })
}

/// `SIOCADDRT`/`SIOCDELRT`: adds or removes the host route `addr/32 dev name`.
pub fn route_host(sock: BorrowedFd<'_>, add: bool, addr: Ipv4Addr, name: &str) -> io::Result<()> {
    let mut dev = ifname_bytes(name.as_bytes())?;
    // SAFETY: `rtentry` is plain old data (integers, sockaddrs and a
    // pointer) for which all-zero bytes are a valid value.
    let mut rt: libc::rtentry = unsafe { std::mem::zeroed() };
    rt.rt_dst = generic_sockaddr(addr);
    rt.rt_genmask = generic_sockaddr(Ipv4Addr::BROADCAST);
    rt.rt_flags = libc::RTF_UP | libc::RTF_HOST;
    rt.rt_dev = dev.as_mut_ptr().cast();
    let request = if add {
        libc::SIOCADDRT
    } else {
        libc::SIOCDELRT
    };
    // SAFETY: the ioctl reads `rt` and the NUL-terminated device name that
    // `rt_dev` points to (`dev`); both live until the call returns.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), request, &mut rt as *mut libc::rtentry) })
}

/// `SIOCSARP`/`SIOCDARP` with `ATF_PUBL`: publishes (or withdraws) a proxy
/// ARP entry for `addr` on interface `name` (what `arp -Ds ADDR IF pub`
/// does).
pub fn proxy_arp(sock: BorrowedFd<'_>, add: bool, addr: Ipv4Addr, name: &str) -> io::Result<()> {
    let dev = ifname_bytes(name.as_bytes())?;
    // SAFETY: `arpreq` is plain old data; all-zero bytes are a valid value.
    let mut req: libc::arpreq = unsafe { std::mem::zeroed() };
    req.arp_pa = generic_sockaddr(addr);
    req.arp_ha.sa_family = libc::ARPHRD_ETHER;
    req.arp_flags = ATF_PUBL | ATF_PERM | ATF_COM;
    for (d, s) in req.arp_dev.iter_mut().zip(dev) {
        *d = s as libc::c_char;
    }
    let request = if add { libc::SIOCSARP } else { libc::SIOCDARP };
    // SAFETY: the ioctl reads one `struct arpreq`, which `req` is, alive for
    // the call.
    check(unsafe { libc::ioctl(sock.as_raw_fd(), request, &mut req as *mut libc::arpreq) })
}

/// Sends one datagram made of `parts` on `sock`, carrying `fd` as
/// `SCM_RIGHTS` when given.
pub fn send_with_fd(
    sock: BorrowedFd<'_>,
    parts: &[&[u8]],
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<usize> {
    let iov: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    let fds: Vec<RawFd> = fd.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
    Ok(socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        cmsgs,
        MsgFlags::empty(),
        None,
    )?)
}

/// Receives one datagram into `buf` with room for one `SCM_RIGHTS`
/// descriptor: (bytes, the descriptor if one came).
pub fn recv_with_fd(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    use std::os::fd::FromRawFd;
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fd = None;
    for c in msg.cmsgs()? {
        if let socket::ControlMessageOwned::ScmRights(fds) = c {
            for raw in fds {
                // SAFETY: the kernel just installed `raw` in this process
                // for this message; nothing else refers to it, so it is
                // ours to own (and close, for any beyond the first).
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                fd.get_or_insert(owned);
            }
        }
    }
    Ok((msg.bytes, fd))
}

/// `struct sockaddr_un` on Linux: 2 bytes of family and 108 of path.
pub const SOCKADDR_UN_LEN: usize = 110;

/// Binds `sock` to the raw 110-byte `sockaddr_un` `addr` (full length, as
/// the UML kernel and uml_switch do, so abstract names keep all bytes).
pub fn bind_raw_unix(sock: BorrowedFd<'_>, addr: &[u8; SOCKADDR_UN_LEN]) -> io::Result<()> {
    // SAFETY: `addr` is 110 readable bytes laid out as `sockaddr_un`; the
    // kernel copies `SOCKADDR_UN_LEN` bytes from it.
    check(unsafe {
        libc::bind(
            sock.as_raw_fd(),
            addr.as_ptr().cast::<libc::sockaddr>(),
            SOCKADDR_UN_LEN as libc::socklen_t,
        )
    })
}

/// Connects `sock` to the raw 110-byte `sockaddr_un` `addr`.
pub fn connect_raw_unix(sock: BorrowedFd<'_>, addr: &[u8; SOCKADDR_UN_LEN]) -> io::Result<()> {
    // SAFETY: as in `bind_raw_unix`, the kernel only reads 110 bytes.
    check(unsafe {
        libc::connect(
            sock.as_raw_fd(),
            addr.as_ptr().cast::<libc::sockaddr>(),
            SOCKADDR_UN_LEN as libc::socklen_t,
        )
    })
}

/// Sends `buf` as one datagram to the raw `sockaddr_un` `to`
/// (`MSG_DONTWAIT`). Returns the bytes sent.
pub fn send_to_raw(
    sock: BorrowedFd<'_>,
    buf: &[u8],
    to: &[u8; SOCKADDR_UN_LEN],
) -> io::Result<usize> {
    // SAFETY: `buf` and `to` are readable for their lengths during the call.
    let n = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            to.as_ptr().cast::<libc::sockaddr>(),
            SOCKADDR_UN_LEN as libc::socklen_t,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// One datagram slot for [`recv_batch`]: the frame buffer, and after the
/// call its length and the sender's raw address.
pub struct RecvSlot {
    /// The frame bytes (capacity fixed by the caller).
    pub buf: Vec<u8>,
    /// Bytes received into `buf` (the datagram is truncated to `buf.len()`).
    pub len: usize,
    /// The sender's `sockaddr_un`, zero-padded.
    pub from: [u8; SOCKADDR_UN_LEN],
    /// How many bytes of `from` the kernel filled.
    pub from_len: usize,
}

impl RecvSlot {
    /// A slot with room for `cap` bytes.
    pub fn new(cap: usize) -> RecvSlot {
        RecvSlot {
            buf: vec![0; cap],
            len: 0,
            from: [0; SOCKADDR_UN_LEN],
            from_len: 0,
        }
    }
}

/// Receives up to `slots.len()` datagrams without blocking (`recvmmsg`
/// with `MSG_DONTWAIT`). Returns how many slots were filled; 0 when none
/// was waiting.
pub fn recv_batch(sock: BorrowedFd<'_>, slots: &mut [RecvSlot]) -> io::Result<usize> {
    recvmmsg_into(sock, slots, true)
}

/// [`recv_batch`] without the senders' addresses (a connected socket's
/// datagrams all come from its peer); `from` is left as it was.
pub fn recv_batch_from_peer(sock: BorrowedFd<'_>, slots: &mut [RecvSlot]) -> io::Result<usize> {
    recvmmsg_into(sock, slots, false)
}

/// Messages per `recvmmsg`/`sendmmsg` call. The headers live on the
/// stack, so a batch costs no allocation; longer batches take more calls.
const MMSG_MAX: usize = 32;

/// An all-zero `mmsghdr`: no name, no iovec, no control data.
// SAFETY: `mmsghdr` is plain old data (integers and raw pointers); all-zero
// is a valid value of it.
const MMSGHDR_ZERO: libc::mmsghdr = unsafe { std::mem::zeroed() };

const IOVEC_ZERO: libc::iovec = libc::iovec {
    iov_base: std::ptr::null_mut(),
    iov_len: 0,
};

fn recvmmsg_into(sock: BorrowedFd<'_>, slots: &mut [RecvSlot], names: bool) -> io::Result<usize> {
    let mut total = 0;
    for chunk in slots.chunks_mut(MMSG_MAX) {
        let n = match recvmmsg_chunk(sock, chunk, names) {
            Ok(n) => n,
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        };
        total += n;
        if n < chunk.len() {
            break;
        }
    }
    Ok(total)
}

/// One `recvmmsg` into at most [`MMSG_MAX`] slots.
fn recvmmsg_chunk(sock: BorrowedFd<'_>, slots: &mut [RecvSlot], names: bool) -> io::Result<usize> {
    let k = slots.len().min(MMSG_MAX);
    let mut iovs = [IOVEC_ZERO; MMSG_MAX];
    let mut hdrs = [MMSGHDR_ZERO; MMSG_MAX];
    for ((h, iov), slot) in hdrs.iter_mut().zip(iovs.iter_mut()).zip(slots.iter_mut()) {
        iov.iov_base = slot.buf.as_mut_ptr().cast();
        iov.iov_len = slot.buf.len();
        if names {
            h.msg_hdr.msg_name = slot.from.as_mut_ptr().cast();
            h.msg_hdr.msg_namelen = SOCKADDR_UN_LEN as libc::socklen_t;
        }
        h.msg_hdr.msg_iov = iov as *mut libc::iovec;
        h.msg_hdr.msg_iovlen = 1;
    }
    let count = libc::c_uint::try_from(k).unwrap_or(0);
    // SAFETY: the first `count` headers each point at one iovec in `iovs`
    // describing a slot's buffer, and (with `names`) at the slot's name
    // buffer of `msg_namelen` bytes; all outlive the call, which writes
    // only into them and the headers. A null timeout means none.
    let n = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            hdrs.as_mut_ptr(),
            count,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::WouldBlock {
            Ok(0)
        } else {
            Err(err)
        };
    }
    let n = usize::try_from(n).unwrap_or(0).min(k);
    for (h, slot) in hdrs.iter().zip(slots.iter_mut()).take(n) {
        slot.len = usize::try_from(h.msg_len).unwrap_or(0).min(slot.buf.len());
        if names {
            slot.from_len = usize::try_from(h.msg_hdr.msg_namelen)
                .unwrap_or(0)
                .min(SOCKADDR_UN_LEN);
            // Zero-pad past what the kernel wrote, so addresses compare whole.
            slot.from[slot.from_len..].fill(0);
        }
    }
    Ok(n)
}

/// One datagram for [`send_batch`].
pub struct SendItem<'a> {
    /// The bytes to send.
    pub buf: &'a [u8],
    /// The destination `sockaddr_un`.
    pub to: [u8; SOCKADDR_UN_LEN],
}

/// One `sendmmsg` (`MSG_DONTWAIT | MSG_NOSIGNAL`) of `items`: how many
/// datagrams the kernel took, from the first.
fn sendmmsg_once(sock: BorrowedFd<'_>, items: &[SendItem<'_>]) -> io::Result<usize> {
    sendmmsg_raw(sock, items.iter().map(|i| (i.buf, Some(&i.to))))
}

/// `sendmmsg` of (bytes, destination) pairs; `None` sends to the socket's
/// connected peer. Returns how many datagrams the kernel took, from the
/// first; an error only when it took none.
fn sendmmsg_raw<'a>(
    sock: BorrowedFd<'_>,
    items: impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8; SOCKADDR_UN_LEN]>)>,
) -> io::Result<usize> {
    let mut items = items.peekable();
    let mut total = 0;
    while items.peek().is_some() {
        let mut iovs = [IOVEC_ZERO; MMSG_MAX];
        let mut hdrs = [MMSGHDR_ZERO; MMSG_MAX];
        let mut k = 0;
        for ((h, iov), (buf, to)) in hdrs.iter_mut().zip(iovs.iter_mut()).zip(items.by_ref()) {
            iov.iov_base = buf.as_ptr() as *mut libc::c_void;
            iov.iov_len = buf.len();
            if let Some(to) = to {
                h.msg_hdr.msg_name = to.as_ptr() as *mut libc::c_void;
                h.msg_hdr.msg_namelen = SOCKADDR_UN_LEN as libc::socklen_t;
            }
            h.msg_hdr.msg_iov = iov as *mut libc::iovec;
            h.msg_hdr.msg_iovlen = 1;
            k += 1;
        }
        let count = libc::c_uint::try_from(k).unwrap_or(0);
        // SAFETY: the first `count` headers point at iovecs in `iovs` and at
        // buffers and names borrowed from `items`, all alive during the
        // call; the kernel only reads them (and writes `msg_len` in the
        // headers, which we own).
        let n = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                hdrs.as_mut_ptr(),
                count,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return if total == 0 { Err(err) } else { Ok(total) };
        }
        let n = usize::try_from(n).unwrap_or(0);
        total += n;
        if n < k {
            break;
        }
    }
    Ok(total)
}

/// What [`send_batch_connected`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendOutcome {
    /// Datagrams the peer took.
    pub sent: usize,
    /// Datagrams dropped (a full queue, or a peer that is gone).
    pub dropped: usize,
    /// The connected peer no longer exists (its socket was closed).
    pub peer_gone: bool,
}

/// Sends each of `frames` as one datagram to the connected peer of `sock`
/// (`sendmmsg`, `MSG_DONTWAIT`); a datagram the peer cannot take is dropped
/// and counted, and the rest still go, unless the peer is gone.
pub fn send_batch_connected(sock: BorrowedFd<'_>, frames: &[&[u8]]) -> SendOutcome {
    let mut out = SendOutcome::default();
    let mut start = 0;
    while start < frames.len() {
        match sendmmsg_raw(sock, frames[start..].iter().map(|f| (*f, None))) {
            Ok(n) if n > 0 => {
                out.sent += n;
                start += n;
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNREFUSED | libc::ENOTCONN | libc::ECONNRESET | libc::EPIPE)
                ) =>
            {
                out.peer_gone = true;
                out.dropped += frames.len() - start;
                break;
            }
            _ => {
                out.dropped += 1;
                start += 1;
            }
        }
    }
    out
}

/// Sends `items` with `sendmmsg` (`MSG_DONTWAIT`). A destination whose queue
/// is full does not hold up the others: the failed item is skipped and
/// counted. Returns (sent, dropped).
pub fn send_batch(sock: BorrowedFd<'_>, items: &[SendItem<'_>]) -> (usize, usize) {
    if let [one] = items {
        // One datagram: plain sendto is cheaper than building an mmsghdr.
        return match send_to_raw(sock, one.buf, &one.to) {
            Ok(_) => (1, 0),
            Err(_) => (0, 1),
        };
    }
    let mut sent = 0;
    let mut dropped = 0;
    let mut start = 0;
    while start < items.len() {
        match sendmmsg_once(sock, &items[start..]) {
            Ok(n) if n > 0 => {
                sent += n;
                start += n;
            }
            // The first message failed (full queue, vanished peer): drop it
            // and carry on with the next.
            _ => {
                dropped += 1;
                start += 1;
            }
        }
    }
    (sent, dropped)
}

/// Sends as many of `items` as go without blocking, in one `sendmmsg`;
/// stops at the first that would block (a load generator's back-pressure).
/// Returns how many were sent.
pub fn send_batch_until_block(sock: BorrowedFd<'_>, items: &[SendItem<'_>]) -> io::Result<usize> {
    if items.is_empty() {
        return Ok(0);
    }
    match sendmmsg_once(sock, items) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        other => other,
    }
}

/// The C library's text for an OS error (`strerror`), without Rust's
/// "(os error N)" suffix, so messages match the original tools.
pub fn strerror(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    }
}

/// A route-netlink socket in the current network namespace subscribed to
/// the multicast `groups` (a bit mask, `RTMGRP_*`): the one way both the
/// `uml_net` watcher and the guest's address watcher hear of changes.
pub fn rtnetlink_subscribe(groups: u32) -> io::Result<OwnedFd> {
    let sock = socket::socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        socket::SockProtocol::NetlinkRoute,
    )?;
    socket::bind(sock.as_raw_fd(), &socket::NetlinkAddr::new(0, groups))?;
    Ok(sock)
}
