//! `vec<N>:transport=l2tpv3,...`: Ethernet over L2TPv3 over UDP (`udp=1`,
//! RFC 3931 §4.1.2.1) or directly over IP (protocol 115, §4.1.1.1), as
//! `vector_transports.c` frames it. Each frame is one datagram: the
//! data-packet word `0x00030000` (UDP only), the session id, an optional
//! 32- or 64-bit cookie, an optional counter, all big-endian, then the
//! frame. Received datagrams whose cookie or session do not match are
//! dropped. Over IP the link is [`super::rawip::Link`]'s.

use super::{Args, VectorError};
use crate::kernel::cmdline::num::parse_ulong;

/// `L2TPV3_DATA_PACKET`.
const DATA_PACKET: u32 = 0x0003_0000;

/// The header layout and ids of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2tpv3 {
    /// Over UDP (`udp=1`): the header starts with the data-packet word.
    pub udp: bool,
    /// Session id expected on received datagrams.
    pub rx_session: u32,
    /// Session id sent.
    pub tx_session: u32,
    /// Cookies (received, sent) and whether they are 64-bit.
    pub cookie: Option<(u64, u64, bool)>,
    /// A counter word; `true`: always 0 (`pin_counter=1`).
    pub counter: Option<bool>,
}

/// `kstrtoint(arg, 0, ..)`/`kstrtoul`: the whole value a number.
pub(super) fn number(args: &Args, key: &str) -> Option<u64> {
    let v = args.fetch(key)?;
    match parse_ulong(v) {
        Some((n, used)) if used == v.len() => Some(n),
        _ => None,
    }
}

pub(super) fn flag(args: &Args, key: &str) -> bool {
    number(args, key).is_some_and(|n| n > 0)
}

impl L2tpv3 {
    /// `build_l2tpv3_transport_data`: both sessions are needed, both
    /// cookies or none.
    pub fn from_args(unit: usize, args: &Args) -> Result<L2tpv3, VectorError> {
        let invalid = |why| VectorError::TransportData { unit, why };
        let id = |key| {
            number(args, key)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| invalid("rx_session and tx_session are needed"))
        };
        let (rx_session, tx_session) = (id("rx_session")?, id("tx_session")?);
        let is64 = flag(args, "cookie64");
        let cookie = match (number(args, "rx_cookie"), number(args, "tx_cookie")) {
            (None, _) => None,
            (Some(rx), Some(tx)) if is64 => Some((rx, tx, true)),
            (Some(rx), Some(tx)) => Some((rx & 0xffff_ffff, tx & 0xffff_ffff, false)),
            (Some(_), None) => return Err(invalid("rx_cookie without tx_cookie")),
        };
        let counter = flag(args, "counter").then(|| flag(args, "pin_counter"));
        Ok(L2tpv3 {
            udp: flag(args, "udp"),
            rx_session,
            tx_session,
            cookie,
            counter,
        })
    }

    /// Where the session id starts: after the data-packet word over UDP.
    fn base(&self) -> usize {
        if self.udp {
            4
        } else {
            0
        }
    }

    /// The header's length.
    pub fn header_len(&self) -> usize {
        let cookie = match self.cookie {
            Some((_, _, true)) => 8,
            Some(_) => 4,
            None => 0,
        };
        self.base() + 4 + cookie + if self.counter.is_some() { 4 } else { 0 }
    }

    /// The datagram for `frame`; `count` is the device's counter.
    pub fn encode(&self, frame: &[u8], count: &mut u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_len() + frame.len());
        if self.udp {
            out.extend_from_slice(&DATA_PACKET.to_be_bytes());
        }
        out.extend_from_slice(&self.tx_session.to_be_bytes());
        match self.cookie {
            Some((_, tx, true)) => out.extend_from_slice(&tx.to_be_bytes()),
            Some((_, tx, false)) => {
                out.extend_from_slice(&u32::try_from(tx).unwrap_or(0).to_be_bytes())
            }
            None => {}
        }
        super::push_counter(&mut out, self.counter, count);
        out.extend_from_slice(frame);
        out
    }

    /// Where the frame starts in a received datagram, or `None` when its
    /// cookie or session is not this device's (or it is too short).
    pub fn verify(&self, datagram: &[u8]) -> Option<usize> {
        let h = self.header_len();
        if datagram.len() <= h {
            return None;
        }
        let word = |at: usize| datagram.get(at..at + 4).map(|b| [b[0], b[1], b[2], b[3]]);
        let session = self.base();
        let cookie = session + 4;
        match self.cookie {
            Some((rx, _, true)) => {
                let b = datagram.get(cookie..cookie + 8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (u64::from_be_bytes(a) == rx).then_some(())?;
            }
            Some((rx, _, false)) => {
                (u64::from(u32::from_be_bytes(word(cookie)?)) == rx).then_some(())?;
            }
            None => {}
        }
        (u32::from_be_bytes(word(session)?) == self.rx_session).then_some(h)
    }
}

/// An open L2TPv3-over-UDP link: the bound socket, the peer, the header.
pub struct Link {
    sock: std::net::UdpSocket,
    to: std::net::SocketAddr,
    enc: L2tpv3,
    count: std::cell::Cell<u32>,
}

/// `host:port` for resolving (IPv6 literals bracketed).
fn endpoint(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

pub(super) fn resolve(
    args: &Args,
    which: &'static str,
    port_key: &str,
) -> Result<std::net::SocketAddr, VectorError> {
    use std::net::ToSocketAddrs;
    let fail = |why: String| VectorError::Resolve { which, why };
    let host = args
        .fetch(which)
        .ok_or_else(|| fail("Name or service not known".into()))?;
    let port = args.fetch(port_key).unwrap_or("0");
    let want_v6 = flag(args, "v6");
    endpoint(host, port)
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
        .find(|a| a.is_ipv6() == want_v6)
        .ok_or_else(|| fail("Name or service not known".into()))
}

impl Link {
    /// `user_init_socket_fds(.., ID_L2TPV3)` with `udp=1`: a UDP socket
    /// bound to `src:srcport`, sending to `dst:dstport`.
    pub fn open(unit: usize, args: &Args) -> Result<Link, VectorError> {
        let enc = L2tpv3::from_args(unit, args)?;
        let src = resolve(args, "src", "srcport")?;
        let sock = std::net::UdpSocket::bind(src)
            .map_err(|e| VectorError::L2tpBind(e.raw_os_error().unwrap_or(0)))?;
        let to = resolve(args, "dst", "dstport")?;
        sock.set_nonblocking(true)
            .map_err(|e| VectorError::Socket(-e.raw_os_error().unwrap_or(0)))?;
        Ok(Link {
            sock,
            to,
            enc,
            count: std::cell::Cell::new(0),
        })
    }

    /// The descriptor to wait on.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.sock)
    }

    /// The next frame into `buf` (its header taken off), `None` when
    /// nothing is waiting or the datagram was not this device's.
    pub fn recv(&self, buf: &mut [u8]) -> std::io::Result<Option<usize>> {
        match self.sock.recv(buf) {
            Ok(n) => match self.enc.verify(&buf[..n]) {
                Some(h) => {
                    buf.copy_within(h..n, 0);
                    Ok(Some(n - h))
                }
                None => Ok(None),
            },
            Err(e) if crate::kernel::net::udp::transient(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one frame.
    pub fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        let mut count = self.count.get();
        let d = self.enc.encode(frame, &mut count);
        self.count.set(count);
        match self.sock.send_to(&d, self.to) {
            Ok(_) => Ok(()),
            Err(e) if crate::kernel::net::udp::transient(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_ifspec;
    use super::*;

    fn dev(text: &str) -> L2tpv3 {
        L2tpv3::from_args(0, &parse_ifspec(&format!("udp=1,{text}")).unwrap()).unwrap()
    }

    #[test]
    fn over_ip_the_header_starts_with_the_session() {
        let ip = |t: &str| L2tpv3::from_args(0, &parse_ifspec(t).unwrap()).unwrap();
        let a = ip("rx_session=1,tx_session=2,rx_cookie=3,tx_cookie=4");
        let b = ip("rx_session=2,tx_session=1,rx_cookie=4,tx_cookie=3");
        let mut count = 0;
        let d = a.encode(b"frame", &mut count);
        assert_eq!(a.header_len(), 8);
        assert_eq!(d[..8], [0, 0, 0, 2, 0, 0, 0, 4], "session, cookie");
        assert_eq!(b.verify(&d), Some(8));
        assert_eq!(a.verify(&d), None);
    }

    #[test]
    fn the_header_is_the_kernels_and_a_peer_with_swapped_ids_accepts_it() {
        let a = dev("rx_session=0xffffffff,tx_session=7,rx_cookie=1,tx_cookie=2,counter=1");
        let b = dev("rx_session=7,tx_session=0xffffffff,rx_cookie=2,tx_cookie=1,counter=1");
        let mut count = 0;
        let d = a.encode(b"frame", &mut count);
        assert_eq!(
            d[..16],
            [0, 3, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 1],
            "data word, session, cookie, counter"
        );
        assert_eq!(b.verify(&d), Some(16));
        assert_eq!(a.verify(&d), None, "its own session is not the peer's");
    }

    #[test]
    fn sixty_four_bit_cookies_and_pinned_counters() {
        let a = dev(
            "rx_session=1,tx_session=1,cookie64=1,rx_cookie=5,tx_cookie=5,counter=1,pin_counter=1",
        );
        let mut count = 0;
        let d = a.encode(b"x", &mut count);
        assert_eq!(a.header_len(), 20);
        assert_eq!(d[8..16], 5u64.to_be_bytes());
        assert_eq!(d[16..20], [0; 4]);
        assert_eq!(a.verify(&d), Some(20));
        assert_eq!(a.verify(&d[..20]), None);
    }

    #[test]
    fn sessions_are_needed_and_cookies_come_in_pairs() {
        let e = |t: &str| L2tpv3::from_args(1, &parse_ifspec(t).unwrap()).is_err();
        assert!(e("rx_session=1"));
        assert!(e("rx_session=1,tx_session=x"));
        assert!(e("rx_session=1,tx_session=2,rx_cookie=3"));
        assert!(!e("rx_session=1,tx_session=2,tx_cookie=3"));
    }
}
