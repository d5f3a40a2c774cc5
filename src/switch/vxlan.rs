//! VXLAN (RFC 7348): the switch's LAN carried in UDP to peers on other
//! hosts (`-vxlan VNI -peer ADDR[:PORT]`). This file is the pure part: the
//! 8-byte VXLAN header as a view over borrowed bytes, in the smoltcp
//! style, its encoder, and the peer address syntax. The daemon
//! (`daemon/vxlan.rs`) gives each peer a switch port of its own, so remote
//! addresses are learned per peer and aged like local ones
//! (flood-and-learn, RFC 7348 §4.1), and never sends a frame that came
//! from one peer to another (split horizon: every peer floods to all).
//!
//! ```text
//!  0               1               2               3
//!  |R|R|R|R|I|R|R|R|            Reserved                         |
//!  |                VXLAN Network Identifier (VNI) |   Reserved    |
//!  |  inner Ethernet frame ...
//! ```

use super::frame::{HEADER_LEN as ETH_HEADER_LEN, MAX_FRAME_LEN};
use std::net::{IpAddr, SocketAddr};
use thiserror::Error;

/// The IANA port (RFC 7348 §5).
pub const DEFAULT_PORT: u16 = 4789;
/// Length of the VXLAN header.
pub const HEADER_LEN: usize = 8;
/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = 0x00ff_ffff;
/// The I flag: the VNI is valid (RFC 7348 §5, "MUST be set to 1").
pub const FLAG_I: u8 = 0x08;

/// Byte ranges of the header (RFC 7348 §5).
pub mod field {
    use std::ops::Range;
    /// Flags (`RRRRIRRR`).
    pub const FLAGS: usize = 0;
    /// The VNI, 24 bits big-endian.
    pub const VNI: Range<usize> = 4..7;
    /// The inner frame.
    pub const PAYLOAD: std::ops::RangeFrom<usize> = 8..;
}

/// Why a datagram is not a VXLAN frame the switch takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum VxlanError {
    /// Shorter than the VXLAN header plus an Ethernet header.
    #[error("datagram too short ({0} bytes)")]
    Short(usize),
    /// The inner frame is longer than the switch forwards.
    #[error("inner frame too long ({0} bytes)")]
    Oversized(usize),
    /// The I flag is clear: no valid VNI.
    #[error("I flag clear (flags {0:#04x})")]
    NoVni(u8),
}

/// A VXLAN datagram, a view over `T`'s bytes.
#[derive(Debug, Clone, Copy)]
pub struct VxlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VxlanPacket<T> {
    /// Checks the length and the I flag. The reserved bits are ignored on
    /// receipt, as RFC 7348 §5 says.
    pub fn new_checked(buffer: T) -> Result<VxlanPacket<T>, VxlanError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN + ETH_HEADER_LEN {
            return Err(VxlanError::Short(b.len()));
        }
        if b.len() > HEADER_LEN + MAX_FRAME_LEN {
            return Err(VxlanError::Oversized(b.len() - HEADER_LEN));
        }
        if b[field::FLAGS] & FLAG_I == 0 {
            return Err(VxlanError::NoVni(b[field::FLAGS]));
        }
        Ok(VxlanPacket { buffer })
    }

    /// The VXLAN Network Identifier.
    pub fn vni(&self) -> u32 {
        let v = &self.buffer.as_ref()[field::VNI];
        u32::from_be_bytes([0, v[0], v[1], v[2]])
    }

    /// The inner Ethernet frame.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

/// The header the switch sends: I flag, `vni`, reserved fields zero.
pub fn header(vni: u32) -> [u8; HEADER_LEN] {
    let v = (vni & MAX_VNI).to_be_bytes();
    [FLAG_I, 0, 0, 0, v[1], v[2], v[3], 0]
}

/// Why a `-peer`, `-vxlan-local` or `-vxlan` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddrError {
    /// Not `ADDR`, `ADDR:PORT`, `[V6]` or `[V6]:PORT`.
    #[error("'{0}' is not an address (ADDR[:PORT], [IPV6][:PORT])")]
    Address(String),
    /// Not a number from 0 to 16777215.
    #[error("'{0}' is not a VNI (0 to 16777215)")]
    Vni(String),
}

/// Parses `ADDR[:PORT]` (IPv4, or IPv6 bare or in brackets), with
/// [`DEFAULT_PORT`] when no port is given.
pub fn parse_addr(s: &str) -> Result<SocketAddr, AddrError> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
        .map_err(|_| AddrError::Address(s.to_string()))
}

/// Parses a VNI.
pub fn parse_vni(s: &str) -> Result<u32, AddrError> {
    match s.parse::<u32>() {
        Ok(v) if v <= MAX_VNI => Ok(v),
        _ => Err(AddrError::Vni(s.to_string())),
    }
}

/// The peer a datagram from `from` belongs to: peers are known by their
/// address only, since a Linux `vxlan` device sends from a port of its
/// own choosing (a hash of the inner flow), not from 4789.
pub fn peer_of(peers: &[SocketAddr], from: &SocketAddr) -> Option<usize> {
    let ip = canonical(from.ip());
    peers.iter().position(|p| canonical(p.ip()) == ip)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram(flags: u8, vni: u32, inner: usize) -> Vec<u8> {
        let mut d = header(vni).to_vec();
        d[0] = flags;
        d.extend(std::iter::repeat_n(0xab, inner));
        d
    }

    #[test]
    fn the_vni_is_read_big_endian_from_bytes_4_to_6() {
        let d = datagram(0x08, 0x12_3456, 60);
        assert_eq!(&d[..8], &[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        let p = VxlanPacket::new_checked(&d[..]).unwrap();
        assert_eq!(p.vni(), 0x12_3456);
        assert_eq!(p.payload().len(), 60);
    }

    #[test]
    fn reserved_bits_are_ignored_but_the_i_flag_is_required() {
        assert!(VxlanPacket::new_checked(&datagram(0xff, 1, 60)[..]).is_ok());
        assert_eq!(
            VxlanPacket::new_checked(&datagram(0x00, 1, 60)[..]).unwrap_err(),
            VxlanError::NoVni(0)
        );
    }

    #[test]
    fn short_and_oversized_datagrams_are_refused() {
        assert_eq!(
            VxlanPacket::new_checked(&datagram(8, 1, 13)[..]).unwrap_err(),
            VxlanError::Short(21)
        );
        assert_eq!(
            VxlanPacket::new_checked(&[8u8; 5][..]).unwrap_err(),
            VxlanError::Short(5)
        );
        assert!(VxlanPacket::new_checked(&datagram(8, 1, 1518)[..]).is_ok());
        assert_eq!(
            VxlanPacket::new_checked(&datagram(8, 1, 1519)[..]).unwrap_err(),
            VxlanError::Oversized(1519)
        );
    }

    #[test]
    fn peers_take_a_default_port_and_are_matched_by_address() {
        let p = parse_addr("192.0.2.1").unwrap();
        assert_eq!(p, "192.0.2.1:4789".parse().unwrap());
        assert_eq!(parse_addr("192.0.2.1:5000").unwrap().port(), 5000);
        assert_eq!(parse_addr("[2001:db8::1]").unwrap().port(), 4789);
        assert_eq!(parse_addr("2001:db8::1").unwrap().port(), 4789);
        assert_eq!(parse_addr("[2001:db8::1]:7").unwrap().port(), 7);
        assert!(parse_addr("host.example").is_err());
        assert!(parse_addr("1.2.3.4:99999").is_err());
        let peers = [p, "192.0.2.2:4789".parse().unwrap()];
        assert_eq!(
            peer_of(&peers, &"192.0.2.2:40000".parse().unwrap()),
            Some(1)
        );
        assert_eq!(
            peer_of(&peers, &"[::ffff:192.0.2.1]:1".parse().unwrap()),
            Some(0)
        );
        assert_eq!(peer_of(&peers, &"192.0.2.3:4789".parse().unwrap()), None);
    }

    #[test]
    fn vnis_are_24_bits() {
        assert_eq!(parse_vni("16777215"), Ok(MAX_VNI));
        assert!(parse_vni("16777216").is_err());
        assert!(parse_vni("-1").is_err());
    }

    #[test]
    fn random_bytes_never_panic_the_parser() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for round in 0..20_000usize {
            let mut b = vec![0u8; round % 1600];
            for v in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = (x >> 32) as u8;
            }
            if let Ok(p) = VxlanPacket::new_checked(&b[..]) {
                assert!(p.vni() <= MAX_VNI);
                assert!(p.payload().len() >= 14);
            }
        }
    }
}
