//! What a VDE switch directory adds to the classic protocol (vde2's
//! `vde_switch`, vdeplug4's `vde://` plug): the request with its
//! description and port request, the port numbers, and the modes of the
//! directory and its sockets. Pure: the daemon carries it out.
//!
//! A VDE client (`vde_plug`, QEMU's `-netdev vde`, a current UML kernel's
//! `transport=vde`) connects to `DIR/ctl` and sends the v3 request of
//! the classic protocol, packed, followed by a description string (so the
//! request is 122 bytes plus the description, at most
//! [`REQBUFLEN`]); vde2 also still reads v1 requests with a description.
//! The `type` word carries a port request in its upper bits:
//! `REQ_NEW_CONTROL | port << 8` asks for port `port`, `REQ_NEW_PORT0`
//! (1) for port 0. The reply is the same as the classic one: a 110-byte
//! `sockaddr_un` naming the switch's data socket for the new port, which
//! `vde_switch` binds at `DIR/NNN.FD` (port number, descriptor).

use super::proto::{self, field, ControlError, NewPort, Protocol, Request, UnixAddr, AF_UNIX};
use std::collections::BTreeSet;

/// vde2's `REQBUFLEN`: the most a switch reads of a request.
pub const REQBUFLEN: usize = 256;
/// vdeplug4's `MAXDESCR`: the longest description a client sends.
pub const MAXDESCR: usize = 128;
/// `REQ_NEW_PORT0`: the client wants port 0 (vde2's management port).
pub const REQ_NEW_PORT0: u32 = 1;
/// `vde_switch`'s default number of ports (`-n`): ports 0 to 31.
pub const DEFAULT_NUMPORTS: u32 = 32;
/// `vde_switch`'s default mode of `DIR/ctl` and the data sockets.
pub const DEFAULT_MODE: u32 = 0o600;

/// Which port a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRequest {
    /// Any free port (`REQ_NEW_CONTROL`, port bits 0).
    Any,
    /// This port (`REQ_NEW_CONTROL | port << 8`, or `REQ_NEW_PORT0` for 0).
    Port(u32),
}

/// A valid request on a VDE control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdeRequest {
    /// The layout used (v0 is a classic uml_switch client).
    pub protocol: Protocol,
    /// The client's data socket.
    pub addr: UnixAddr,
    /// The port it asked for.
    pub port: PortRequest,
    /// The description (`vdeplug: user=root pid=42`), empty for classic
    /// clients; bytes up to the first NUL, lossily decoded.
    pub description: String,
}

fn ne_u32(b: &[u8], r: std::ops::Range<usize>) -> Option<u32> {
    b.get(r)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
}

fn description(bytes: &[u8]) -> String {
    let bytes = &bytes[..bytes.len().min(MAXDESCR)];
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end])
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

/// Parses a request read from a VDE control socket: what `vde_switch`
/// accepts (v1 and v3 with a description and a port request) and what a
/// classic `uml_switch` accepts (v0, and v3 without a description: the
/// Linux 6.1 kernel's 124-byte request carries two bytes of padding where
/// the description would start, which reads as an empty one).
pub fn parse(b: &[u8]) -> Result<VdeRequest, ControlError> {
    let b = &b[..b.len().min(REQBUFLEN)];
    let req = Request::new_unchecked(b);
    if !req.has_magic() {
        let NewPort { protocol, addr } = req.parse()?;
        return Ok(VdeRequest {
            protocol,
            addr,
            port: PortRequest::Any,
            description: String::new(),
        });
    }
    let need = |n: usize| {
        if b.len() < n {
            Err(ControlError::Truncated {
                len: b.len(),
                need: n,
            })
        } else {
            Ok(())
        }
    };
    need(field::VERSION.end)?;
    let (protocol, ty, sock) = match ne_u32(b, field::VERSION).unwrap_or(0) {
        3 => (Protocol::V3, field::V3_TYPE, field::V3_SOCK),
        2 => return Err(ControlError::Version2),
        v if v > 3 => return Err(ControlError::Version(v)),
        _ => (Protocol::V1, field::V1_TYPE, field::V1_SOCK),
    };
    need(sock.end)?;
    let ty = ne_u32(b, ty).unwrap_or(0);
    let port = match (ty & 0xff, ty >> 8) {
        (0, 0) => PortRequest::Any,
        (0, p) => PortRequest::Port(p),
        (REQ_NEW_PORT0, _) => PortRequest::Port(0),
        _ => {
            return Err(ControlError::BadType(i32::from_ne_bytes(ty.to_ne_bytes())));
        }
    };
    let addr = UnixAddr::from_bytes(&b[sock.clone()]);
    if addr.family() != AF_UNIX {
        return Err(ControlError::BadFamily(addr.family()));
    }
    Ok(VdeRequest {
        protocol,
        addr,
        port,
        description: description(&b[sock.end..]),
    })
}

/// Encodes the request `vde_plug` sends (packed v3 plus the description).
pub fn encode_request(addr: &UnixAddr, port: PortRequest, descr: &str) -> Vec<u8> {
    let mut b = proto::encode_request_v3(addr)[..field::V3_SOCK.end].to_vec();
    let ty = match port {
        PortRequest::Any => 0,
        PortRequest::Port(0) => REQ_NEW_PORT0,
        PortRequest::Port(p) => p << 8,
    };
    b[field::V3_TYPE].copy_from_slice(&ty.to_ne_bytes());
    let d = descr.as_bytes();
    b.extend_from_slice(&d[..d.len().min(MAXDESCR)]);
    b
}

/// The port numbers in use, allocated as `vde_switch` does: the lowest
/// free one from 1 (port 0 only on request), below the number of ports.
#[derive(Debug, Clone)]
pub struct PortNumbers {
    numports: u32,
    used: BTreeSet<u32>,
}

/// Why no port number was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Every port is taken.
    #[error("all {0} ports are in use")]
    Full(u32),
    /// The requested port is beyond the switch's ports.
    #[error("port {0} does not exist (the switch has {1})")]
    NoSuchPort(u32, u32),
    /// The requested port is taken (`vde_switch` would add the client to
    /// it as a second endpoint; we refuse).
    #[error("port {0} is in use")]
    Busy(u32),
}

impl PortNumbers {
    /// Ports `0..numports`, all free.
    pub fn new(numports: u32) -> PortNumbers {
        PortNumbers {
            numports,
            used: BTreeSet::new(),
        }
    }

    /// Takes a port number for `req`.
    pub fn alloc(&mut self, req: PortRequest) -> Result<u32, PortError> {
        let n = match req {
            PortRequest::Any => (1..self.numports)
                .find(|p| !self.used.contains(p))
                .ok_or(PortError::Full(self.numports))?,
            PortRequest::Port(p) if p >= self.numports => {
                return Err(PortError::NoSuchPort(p, self.numports))
            }
            PortRequest::Port(p) if self.used.contains(&p) => return Err(PortError::Busy(p)),
            PortRequest::Port(p) => p,
        };
        self.used.insert(n);
        Ok(n)
    }

    /// Gives port `n` back.
    pub fn free(&mut self, n: u32) {
        self.used.remove(&n);
    }
}

/// The modes `vde_switch` gives the directory and `DIR/ctl` for its `-m`
/// (socket mode) and `--dirmode` options: by default 02700 and 0600; with
/// only a socket mode, the directory gets setgid plus search bits where
/// the socket mode has any (so 0666 gives 02777).
pub fn modes(mode: Option<u32>, dirmode: Option<u32>) -> (u32, u32) {
    let addbit = |m: u32, mask: u32, add: u32| if m & mask != 0 { (m & mask) | add } else { 0 };
    match (mode, dirmode) {
        (None, None) => (DEFAULT_MODE, 0o2700),
        (Some(m), None) => (
            m,
            0o2000 | addbit(m, 0o600, 0o100) | addbit(m, 0o060, 0o010) | addbit(m, 0o006, 0o001),
        ),
        (None, Some(d)) => (d & 0o666, d),
        (Some(m), Some(d)) => (m, d),
    }
}

/// The name `vde_switch` gives a port's data socket inside the directory:
/// `NNN.FD` (three-digit port number, the socket's descriptor).
pub fn data_socket_name(port: u32, fd: i32) -> String {
    format!("{port:03}.{fd}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> UnixAddr {
        UnixAddr::path(b"/tmp/sw/.12659-00000").unwrap()
    }

    #[test]
    fn a_vde_plug_request_gives_its_address_description_and_any_port() {
        let b = encode_request(&client(), PortRequest::Any, "vdeplug: user=root pid=12659");
        assert_eq!(b.len(), 122 + 28);
        let r = parse(&b).unwrap();
        assert_eq!(r.protocol, Protocol::V3);
        assert_eq!(r.addr, client());
        assert_eq!(r.port, PortRequest::Any);
        assert_eq!(r.description, "vdeplug: user=root pid=12659");
    }

    #[test]
    fn port_requests_are_read_from_the_type_word() {
        let b = encode_request(&client(), PortRequest::Port(5), "x");
        assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 5 << 8);
        assert_eq!(parse(&b).unwrap().port, PortRequest::Port(5));
        let b0 = encode_request(&client(), PortRequest::Port(0), "");
        assert_eq!(u32::from_ne_bytes(b0[8..12].try_into().unwrap()), 1);
        assert_eq!(parse(&b0).unwrap().port, PortRequest::Port(0));
        let mut bad = b;
        bad[8..12].copy_from_slice(&7u32.to_ne_bytes());
        assert_eq!(parse(&bad), Err(ControlError::BadType(7)));
    }

    #[test]
    fn the_kernels_classic_requests_are_accepted_too() {
        let v3 = proto::encode_request_v3(&UnixAddr::abstract_from(1, 2));
        let r = parse(&v3).unwrap();
        assert_eq!(
            (r.protocol, r.port, r.description.as_str()),
            (Protocol::V3, PortRequest::Any, "")
        );
        let mut v0 = [0u8; 120];
        v0[10..120].copy_from_slice(&client().0);
        assert_eq!(parse(&v0).unwrap().protocol, Protocol::V0);
    }

    #[test]
    fn short_requests_and_other_families_are_refused() {
        let b = encode_request(&client(), PortRequest::Any, "");
        assert!(matches!(
            parse(&b[..100]),
            Err(ControlError::Truncated { len: 100, .. })
        ));
        let mut fam = b;
        fam[12..14].copy_from_slice(&2u16.to_ne_bytes());
        assert_eq!(parse(&fam), Err(ControlError::BadFamily(2)));
    }

    #[test]
    fn descriptions_stop_at_nul_and_lose_control_characters() {
        let mut b = encode_request(&client(), PortRequest::Any, "a\nb");
        b.extend_from_slice(b"\0junk");
        assert_eq!(parse(&b).unwrap().description, "ab");
    }

    #[test]
    fn ports_are_numbered_from_one_like_vde_switch() {
        let mut p = PortNumbers::new(4);
        assert_eq!(p.alloc(PortRequest::Any), Ok(1));
        assert_eq!(p.alloc(PortRequest::Any), Ok(2));
        assert_eq!(p.alloc(PortRequest::Port(2)), Err(PortError::Busy(2)));
        assert_eq!(p.alloc(PortRequest::Port(0)), Ok(0));
        assert_eq!(
            p.alloc(PortRequest::Port(9)),
            Err(PortError::NoSuchPort(9, 4))
        );
        p.free(1);
        assert_eq!(p.alloc(PortRequest::Any), Ok(1));
        assert_eq!(p.alloc(PortRequest::Any), Ok(3));
        assert_eq!(p.alloc(PortRequest::Any), Err(PortError::Full(4)));
    }

    #[test]
    fn modes_follow_vde_switchs_defaults_and_guesses() {
        assert_eq!(modes(None, None), (0o600, 0o2700));
        assert_eq!(modes(Some(0o666), None), (0o666, 0o2777));
        assert_eq!(modes(Some(0o660), None), (0o660, 0o2770));
        assert_eq!(modes(None, Some(0o2755)), (0o644, 0o2755));
        assert_eq!(data_socket_name(1, 5), "001.5");
    }

    #[test]
    fn random_bytes_never_panic_the_parser() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..20_000usize {
            let len = round % 270;
            let mut b = vec![0u8; len];
            for v in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = (x >> 32) as u8;
            }
            if round % 2 == 0 && len >= 8 {
                b[..4].copy_from_slice(&proto::SWITCH_MAGIC.to_ne_bytes());
                b[4..8].copy_from_slice(&3u32.to_ne_bytes());
            }
            let _ = parse(&b);
        }
    }
}
