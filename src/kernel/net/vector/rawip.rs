//! The links of the vector transports that ride directly on IP: `gre`
//! (protocol 47) and `l2tpv3` without `udp=1` (protocol 115). A raw IP
//! socket, which needs CAP_NET_RAW as in the kernel, is bound to `src` and,
//! unlike the kernel's, which takes packets of its protocol from any
//! sender, connected to `dst`, so only the peer's packets are read.

use super::gre::Gre;
use super::l2tpv3::{resolve, L2tpv3};
use super::{Args, VectorError};
use nix::sys::socket::{self, MsgFlags, SockaddrStorage};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// `IPPROTO_L2TP`.
const IPPROTO_L2TP: i32 = 115;

/// The header a link puts on its frames.
pub enum Encap {
    /// Ethernet over GRE.
    Gre(Gre),
    /// Ethernet over L2TPv3 over IP.
    L2tp(L2tpv3),
}

/// The IP protocol a link rides on.
#[derive(Debug, Clone, Copy)]
pub enum Protocol {
    /// 47.
    Gre,
    /// 115.
    L2tp,
}

impl Protocol {
    fn number(self) -> i32 {
        match self {
            Protocol::Gre => libc::IPPROTO_GRE,
            Protocol::L2tp => IPPROTO_L2TP,
        }
    }
}

impl Encap {
    fn encode(&self, frame: &[u8], count: &mut u32) -> Vec<u8> {
        match self {
            Encap::Gre(g) => g.encode(frame, count),
            Encap::L2tp(l) => l.encode(frame, count),
        }
    }

    fn verify(&self, packet: &[u8]) -> Option<usize> {
        match self {
            Encap::Gre(g) => g.verify(packet),
            Encap::L2tp(l) => l.verify(packet),
        }
    }
}

/// The length of the IPv4 header at the start of `packet` (raw IPv4
/// sockets deliver it; IPv6 ones do not).
fn ipv4_header_len(packet: &[u8]) -> Option<usize> {
    let first = *packet.first()?;
    let len = usize::from(first & 0x0f) * 4;
    (first >> 4 == 4 && len >= 20 && len <= packet.len()).then_some(len)
}

/// An open link: a raw IP socket bound to `src` and connected to `dst`,
/// and the header.
pub struct Link {
    sock: OwnedFd,
    v6: bool,
    enc: Encap,
    count: std::cell::Cell<u32>,
}

impl Link {
    /// `user_init_socket_fds(.., ID_GRE)` or `(.., ID_L2TPV3)` without
    /// `udp=1`, with the kernel's texts.
    /// The header is built after the socket is open, as the kernel builds
    /// its transport data after opening, so errors come in its order.
    pub fn open(
        protocol: Protocol,
        args: &Args,
        header: impl FnOnce() -> Result<Encap, VectorError>,
    ) -> Result<Link, VectorError> {
        let src = resolve(args, "src", "srcport")?;
        let v6 = src.is_ipv6();
        let sock = crate::sys::knet::raw_ip_socket(v6, protocol.number())
            .map_err(|e| VectorError::Socket(-e.raw_os_error().unwrap_or(libc::EPERM)))?;
        let local = SockaddrStorage::from(without_port(src));
        socket::bind(sock.as_raw_fd(), &local).map_err(|e| VectorError::L2tpBind(e as i32))?;
        let dst = resolve(args, "dst", "dstport")?;
        let remote = SockaddrStorage::from(without_port(dst));
        socket::connect(sock.as_raw_fd(), &remote).map_err(|e| VectorError::Socket(-(e as i32)))?;
        let enc = header()?;
        Ok(Link {
            sock,
            v6,
            enc,
            count: std::cell::Cell::new(0),
        })
    }

    /// The descriptor to wait on.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// The next frame into `buf` (headers taken off), `None` when nothing
    /// is waiting or the packet was not this device's.
    pub fn recv(&self, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
        let n = match socket::recv(self.sock.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let ip = if self.v6 {
            0
        } else {
            match ipv4_header_len(&buf[..n]) {
                Some(l) => l,
                None => return Ok(None),
            }
        };
        match self.enc.verify(&buf[ip..n]) {
            Some(h) => {
                buf.copy_within(ip + h..n, 0);
                Ok(Some(n - ip - h))
            }
            None => Ok(None),
        }
    }

    /// Sends one frame; a full queue or an unreachable peer drops it.
    pub fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        let mut count = self.count.get();
        let packet = self.enc.encode(frame, &mut count);
        self.count.set(count);
        match socket::send(self.sock.as_raw_fd(), &packet, MsgFlags::MSG_DONTWAIT) {
            Ok(_) => Ok(()),
            Err(
                nix::errno::Errno::EAGAIN
                | nix::errno::Errno::ENOBUFS
                | nix::errno::Errno::ECONNREFUSED
                | nix::errno::Errno::EHOSTUNREACH
                | nix::errno::Errno::ENETUNREACH
                | nix::errno::Errno::EMSGSIZE,
            ) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Raw IP sockets have no ports.
fn without_port(mut a: std::net::SocketAddr) -> std::net::SocketAddr {
    a.set_port(0);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_headers_are_measured() {
        assert_eq!(ipv4_header_len(&[0x45; 20]), Some(20));
        assert_eq!(ipv4_header_len(&[0x46; 20]), None, "options past the end");
        assert_eq!(ipv4_header_len(&[0x65; 40]), None, "not IPv4");
        assert_eq!(ipv4_header_len(&[]), None);
    }
}
