//! `vec<N>:transport=gre,src=A,dst=B[,rx_key=K,tx_key=L][,sequence=1]`:
//! Ethernet over GRE (RFC 2890, protocol 0x6558, "transparent Ethernet
//! bridging"), framed as `vector_transports.c` frames it: the flags and
//! protocol word, the key with `rx_key`/`tx_key`, a sequence number with
//! `sequence=1` (always 0 with `pin_sequence=1`), then the frame. A
//! received packet is this device's when its flags and protocol word are
//! exactly the ones it sends and its key is `rx_key`. Unlike the kernel,
//! which takes GRE from any sender, the socket is connected to `dst`, so
//! only the peer's packets are read.

use super::l2tpv3::{flag, number, resolve};
use super::{Args, VectorError};
use nix::sys::socket::{self, MsgFlags, SockaddrStorage};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// `GRE_IRB`: the protocol type of an Ethernet frame.
const ETH_OVER_GRE: u16 = 0x6558;
/// `GRE_MODE_KEY`.
const KEY_PRESENT: u16 = 0x2000;
/// `GRE_MODE_SEQUENCE`.
const SEQUENCE_PRESENT: u16 = 0x1000;

/// The header of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gre {
    /// Keys (received, sent).
    pub key: Option<(u32, u32)>,
    /// A sequence number; `true`: always 0 (`pin_sequence=1`).
    pub sequence: Option<bool>,
}

impl Gre {
    /// `build_gre_transport_data`: both keys or none.
    pub fn from_args(unit: usize, args: &Args) -> Result<Gre, VectorError> {
        let key32 = |k| number(args, k).map(|n| (n & 0xffff_ffff) as u32);
        let key = match (key32("rx_key"), key32("tx_key")) {
            (None, _) => None,
            (Some(rx), Some(tx)) => Some((rx, tx)),
            (Some(_), None) => {
                return Err(VectorError::TransportData {
                    unit,
                    why: "rx_key without tx_key",
                })
            }
        };
        let sequence = flag(args, "sequence").then(|| flag(args, "pin_sequence"));
        Ok(Gre { key, sequence })
    }

    /// The flags and protocol word, as sent and as expected.
    fn first_word(&self) -> [u8; 4] {
        let mut flags = 0u16;
        if self.key.is_some() {
            flags |= KEY_PRESENT;
        }
        if self.sequence.is_some() {
            flags |= SEQUENCE_PRESENT;
        }
        let [a, b] = flags.to_be_bytes();
        let [c, d] = ETH_OVER_GRE.to_be_bytes();
        [a, b, c, d]
    }

    /// The GRE header's length.
    pub fn header_len(&self) -> usize {
        4 + if self.key.is_some() { 4 } else { 0 } + if self.sequence.is_some() { 4 } else { 0 }
    }

    /// The GRE packet for `frame`; `count` is the device's sequence.
    pub fn encode(&self, frame: &[u8], count: &mut u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_len() + frame.len());
        out.extend_from_slice(&self.first_word());
        if let Some((_, tx)) = self.key {
            out.extend_from_slice(&tx.to_be_bytes());
        }
        match self.sequence {
            Some(true) => out.extend_from_slice(&[0; 4]),
            Some(false) => {
                *count = count.wrapping_add(1);
                out.extend_from_slice(&count.to_be_bytes());
            }
            None => {}
        }
        out.extend_from_slice(frame);
        out
    }

    /// Where the frame starts in a GRE packet (without its IP header), or
    /// `None` when the packet is not this device's or has no frame.
    pub fn verify(&self, packet: &[u8]) -> Option<usize> {
        let h = self.header_len();
        if packet.len() <= h || packet[..4] != self.first_word() {
            return None;
        }
        if let Some((rx, _)) = self.key {
            let k = packet.get(4..8)?;
            (u32::from_be_bytes([k[0], k[1], k[2], k[3]]) == rx).then_some(())?;
        }
        Some(h)
    }
}

/// The length of the IPv4 header at the start of `packet` (raw IPv4
/// sockets deliver it; IPv6 ones do not).
fn ipv4_header_len(packet: &[u8]) -> Option<usize> {
    let first = *packet.first()?;
    let len = usize::from(first & 0x0f) * 4;
    (first >> 4 == 4 && len >= 20 && len <= packet.len()).then_some(len)
}

/// An open GRE link: a raw IP socket bound to `src` and connected to
/// `dst`, and the header.
pub struct Link {
    sock: OwnedFd,
    v6: bool,
    enc: Gre,
    count: std::cell::Cell<u32>,
}

impl Link {
    /// `user_init_socket_fds(.., ID_GRE)`, with the kernel's texts.
    pub fn open(unit: usize, args: &Args) -> Result<Link, VectorError> {
        let enc = Gre::from_args(unit, args)?;
        let src = resolve(args, "src", "srcport")?;
        let v6 = src.is_ipv6();
        let sock = crate::sys::knet::raw_ip_socket(v6, libc::IPPROTO_GRE)
            .map_err(|e| VectorError::Socket(-e.raw_os_error().unwrap_or(libc::EPERM)))?;
        let local = SockaddrStorage::from(without_port(src));
        socket::bind(sock.as_raw_fd(), &local).map_err(|e| VectorError::L2tpBind(e as i32))?;
        let dst = resolve(args, "dst", "dstport")?;
        let remote = SockaddrStorage::from(without_port(dst));
        socket::connect(sock.as_raw_fd(), &remote).map_err(|e| VectorError::Socket(-(e as i32)))?;
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
    use super::super::parse_ifspec;
    use super::*;

    fn dev(text: &str) -> Gre {
        Gre::from_args(0, &parse_ifspec(text).unwrap()).unwrap()
    }

    #[test]
    fn the_header_is_the_kernels_and_a_peer_with_swapped_keys_accepts_it() {
        let a = dev("rx_key=1,tx_key=0x10203,sequence=1");
        let b = dev("rx_key=0x10203,tx_key=1,sequence=1");
        let mut count = 0;
        let p = a.encode(b"frame", &mut count);
        assert_eq!(
            p[..12],
            [0x30, 0, 0x65, 0x58, 0, 1, 2, 3, 0, 0, 0, 1],
            "flags K and S, protocol 0x6558, key, sequence"
        );
        assert_eq!(b.verify(&p), Some(12));
        assert_eq!(a.verify(&p), None, "its own key is not the peer's");
        assert_eq!(&p[12..], b"frame");
    }

    #[test]
    fn a_plain_header_is_four_bytes_and_other_flags_are_refused() {
        let plain = dev("src=1.2.3.4");
        let mut count = 0;
        let p = plain.encode(b"x", &mut count);
        assert_eq!(p, [0, 0, 0x65, 0x58, b'x']);
        assert_eq!(plain.verify(&p), Some(4));
        assert_eq!(plain.verify(&p[..4]), None, "no frame");
        let keyed = dev("rx_key=0,tx_key=0");
        assert_eq!(keyed.verify(&p), None, "flags differ");
        let pinned = dev("sequence=1,pin_sequence=1");
        assert_eq!(pinned.encode(b"", &mut count)[4..8], [0; 4]);
    }

    #[test]
    fn keys_come_in_pairs_and_ipv4_headers_are_measured() {
        assert!(Gre::from_args(1, &parse_ifspec("rx_key=1").unwrap()).is_err());
        assert!(Gre::from_args(1, &parse_ifspec("tx_key=1").unwrap()).is_ok());
        assert_eq!(ipv4_header_len(&[0x45; 20]), Some(20));
        assert_eq!(ipv4_header_len(&[0x46; 20]), None, "options past the end");
        assert_eq!(ipv4_header_len(&[0x65; 40]), None, "not IPv4");
        assert_eq!(ipv4_header_len(&[]), None);
    }
}
