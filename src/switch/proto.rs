//! The uml_switch control protocol (spec §4.3): the one request a client
//! sends on its stream connection, as a view over borrowed bytes in the
//! smoltcp style, and the 110-byte `sockaddr_un` that names a data socket.
//!
//! All integers are native-endian (the protocol never left one host).
//! Three layouts share the first read: v0 (no magic), v1 (magic, type at
//! 4) and v2/v3 (magic, version at 4, type at 8). Linux 6.1 sends v3.

use std::fmt;
use thiserror::Error;

/// `SWITCH_MAGIC`: first word of every request from v1 on.
pub const SWITCH_MAGIC: u32 = 0xfeed_face;
/// Size of the largest request (`union request`), what the switch reads.
pub const REQUEST_LEN: usize = 124;
/// `sizeof(struct sockaddr_un)` on Linux.
pub const SOCKADDR_UN_LEN: usize = 110;
/// `AF_UNIX`.
pub const AF_UNIX: u16 = 1;
/// `REQ_NEW_CONTROL`: the only request type.
pub const REQ_NEW_CONTROL: i32 = 0;

/// Byte ranges of the request layouts.
pub mod field {
    use std::ops::Range;
    /// v1/v2/v3: `magic`.
    pub const MAGIC: Range<usize> = 0..4;
    /// v2/v3: `version`.
    pub const VERSION: Range<usize> = 4..8;
    /// v2/v3: `type`.
    pub const V3_TYPE: Range<usize> = 8..12;
    /// v2/v3: `sock`.
    pub const V3_SOCK: Range<usize> = 12..122;
    /// v1: `type`.
    pub const V1_TYPE: Range<usize> = 4..8;
    /// v1: `u.new_control.name` (after a 6-byte MAC that is not used).
    pub const V1_SOCK: Range<usize> = 14..124;
    /// v0: `type`.
    pub const V0_TYPE: Range<usize> = 0..4;
    /// v0: `u.new_control.name`.
    pub const V0_SOCK: Range<usize> = 10..120;
}

/// A `struct sockaddr_un` kept as its raw 110 bytes: the switch compares
/// and sends to client addresses exactly as they were given.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UnixAddr(pub [u8; SOCKADDR_UN_LEN]);

impl UnixAddr {
    /// Takes the first 110 bytes of `bytes`, zero-padding a shorter slice.
    pub fn from_bytes(bytes: &[u8]) -> UnixAddr {
        let mut a = [0u8; SOCKADDR_UN_LEN];
        let n = bytes.len().min(SOCKADDR_UN_LEN);
        a[..n].copy_from_slice(&bytes[..n]);
        UnixAddr(a)
    }

    /// The `sun_family` field.
    pub fn family(&self) -> u16 {
        u16::from_ne_bytes([self.0[0], self.0[1]])
    }

    /// True for Linux abstract names (`sun_path[0] == 0`).
    pub fn is_abstract(&self) -> bool {
        self.0[2] == 0
    }

    /// An abstract address like the kernel's and the original switch's:
    /// `sun_path` = {0, 3 pad bytes, i32 `a`, i32 `b`}, rest zero.
    pub fn abstract_from(a: i32, b: i32) -> UnixAddr {
        let mut addr = [0u8; SOCKADDR_UN_LEN];
        addr[..2].copy_from_slice(&AF_UNIX.to_ne_bytes());
        addr[6..10].copy_from_slice(&a.to_ne_bytes());
        addr[10..14].copy_from_slice(&b.to_ne_bytes());
        UnixAddr(addr)
    }

    /// A filesystem path address (`None` if it does not fit).
    pub fn path(path: &[u8]) -> Option<UnixAddr> {
        if path.len() >= SOCKADDR_UN_LEN - 2 || path.contains(&0) {
            return None;
        }
        let mut addr = [0u8; SOCKADDR_UN_LEN];
        addr[..2].copy_from_slice(&AF_UNIX.to_ne_bytes());
        addr[2..2 + path.len()].copy_from_slice(path);
        Some(UnixAddr(addr))
    }
}

impl fmt::Debug for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.0[2..];
        let end = path.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        write!(f, "UnixAddr({:02x?})", &path[..end])
    }
}

/// Which layout a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// No magic: the client knows the data socket from the command line
    /// and gets no reply.
    V0,
    /// Magic, then the type: the reply is the data socket address.
    V1,
    /// Magic, version 3, type: what Linux sends; same reply as v1.
    V3,
}

/// A valid request: add a port whose frames come from and go to `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewPort {
    /// The layout used.
    pub protocol: Protocol,
    /// The client's data socket.
    pub addr: UnixAddr,
}

/// Why a control request was refused (the switch drops the connection and
/// counts it).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlError {
    /// Fewer bytes than the layout needs.
    #[error("request too short ({len} bytes, need {need})")]
    Truncated {
        /// Bytes received.
        len: usize,
        /// Bytes the layout needs.
        need: usize,
    },
    /// Version 2 was never supported by uml_switch.
    #[error("Version 2 is not supported")]
    Version2,
    /// A version newer than 3.
    #[error("Request for a version {0} port, which this uml_switch doesn't support")]
    Version(u32),
    /// A type other than `REQ_NEW_CONTROL`.
    #[error("Bad request type : {0}")]
    BadType(i32),
    /// The data address is not an `AF_UNIX` one.
    #[error("bad address family {0} in request")]
    BadFamily(u16),
}

/// A control request, a view over `T`'s bytes.
#[derive(Debug, Clone)]
pub struct Request<T: AsRef<[u8]>> {
    buffer: T,
}

fn ne_u32(b: &[u8], r: std::ops::Range<usize>) -> Option<u32> {
    b.get(r)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
}

impl<T: AsRef<[u8]>> Request<T> {
    /// Wraps `buffer` without looking at it.
    pub fn new_unchecked(buffer: T) -> Request<T> {
        Request { buffer }
    }

    /// The bytes received.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// True when the request starts with `SWITCH_MAGIC`.
    pub fn has_magic(&self) -> bool {
        ne_u32(self.as_bytes(), field::MAGIC) == Some(SWITCH_MAGIC)
    }

    /// Validates the request as the original switch reads it.
    pub fn parse(&self) -> Result<NewPort, ControlError> {
        let b = self.as_bytes();
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
        let (protocol, ty, sock) = if self.has_magic() {
            need(field::VERSION.end)?;
            match ne_u32(b, field::VERSION).unwrap_or(0) {
                3 => (Protocol::V3, field::V3_TYPE, field::V3_SOCK),
                2 => return Err(ControlError::Version2),
                v if v > 3 => return Err(ControlError::Version(v)),
                _ => (Protocol::V1, field::V1_TYPE, field::V1_SOCK),
            }
        } else {
            (Protocol::V0, field::V0_TYPE, field::V0_SOCK)
        };
        need(ty.end)?;
        let ty = ne_u32(b, ty).unwrap_or(0) as i32;
        if ty != REQ_NEW_CONTROL {
            return Err(ControlError::BadType(ty));
        }
        need(sock.end)?;
        let addr = UnixAddr::from_bytes(&b[sock]);
        if addr.family() != AF_UNIX {
            return Err(ControlError::BadFamily(addr.family()));
        }
        Ok(NewPort { protocol, addr })
    }
}

/// Encodes the request a Linux 6.1 guest sends (v3, 124 bytes).
pub fn encode_request_v3(addr: &UnixAddr) -> [u8; REQUEST_LEN] {
    let mut b = [0u8; REQUEST_LEN];
    b[field::MAGIC].copy_from_slice(&SWITCH_MAGIC.to_ne_bytes());
    b[field::VERSION].copy_from_slice(&3u32.to_ne_bytes());
    b[field::V3_TYPE].copy_from_slice(&REQ_NEW_CONTROL.to_ne_bytes());
    b[field::V3_SOCK].copy_from_slice(&addr.0);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> UnixAddr {
        UnixAddr::abstract_from(1234, 5678)
    }

    #[test]
    fn v3_request_round_trips() {
        let req = encode_request_v3(&client());
        let p = Request::new_unchecked(&req[..]).parse().unwrap();
        assert_eq!(
            p,
            NewPort {
                protocol: Protocol::V3,
                addr: client()
            }
        );
    }

    #[test]
    fn v1_and_v0_layouts_put_the_address_where_the_c_structs_do() {
        let mut v1 = [0u8; REQUEST_LEN];
        v1[0..4].copy_from_slice(&SWITCH_MAGIC.to_ne_bytes());
        v1[14..124].copy_from_slice(&client().0);
        assert_eq!(
            Request::new_unchecked(&v1[..]).parse().unwrap().protocol,
            Protocol::V1
        );
        assert_eq!(
            Request::new_unchecked(&v1[..]).parse().unwrap().addr,
            client()
        );
        let mut v0 = [0u8; 120];
        v0[10..120].copy_from_slice(&client().0);
        let p = Request::new_unchecked(&v0[..]).parse().unwrap();
        assert_eq!((p.protocol, p.addr), (Protocol::V0, client()));
    }

    #[test]
    fn bad_versions_types_families_and_short_requests_are_refused() {
        let good = encode_request_v3(&client());
        let mut v2 = good;
        v2[4..8].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(
            Request::new_unchecked(&v2[..]).parse(),
            Err(ControlError::Version2)
        );
        let mut v9 = good;
        v9[4..8].copy_from_slice(&9u32.to_ne_bytes());
        assert_eq!(
            Request::new_unchecked(&v9[..]).parse(),
            Err(ControlError::Version(9))
        );
        let mut ty = good;
        ty[8..12].copy_from_slice(&7i32.to_ne_bytes());
        assert_eq!(
            Request::new_unchecked(&ty[..]).parse(),
            Err(ControlError::BadType(7))
        );
        let mut fam = good;
        fam[12..14].copy_from_slice(&2u16.to_ne_bytes());
        assert_eq!(
            Request::new_unchecked(&fam[..]).parse(),
            Err(ControlError::BadFamily(2))
        );
        assert_eq!(
            Request::new_unchecked(&good[..60]).parse(),
            Err(ControlError::Truncated { len: 60, need: 122 })
        );
        assert!(Request::new_unchecked(&[][..]).parse().is_err());
    }

    #[test]
    fn random_bytes_never_panic_the_parser() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for round in 0..20_000usize {
            let len = round % 130;
            let mut b = vec![0u8; len];
            for v in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *v = (x >> 32) as u8;
            }
            if round % 3 == 0 && len >= 4 {
                b[..4].copy_from_slice(&SWITCH_MAGIC.to_ne_bytes());
            }
            let _ = Request::new_unchecked(&b[..]).parse();
        }
    }
}
