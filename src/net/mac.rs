//! Ethernet (MAC) addresses: the one type the guest kernel's `eth<N>=`
//! parser, its boot log and the switch's frame view and MAC table share.
//!
//! Text is six hexadecimal bytes separated by colons, each one or two
//! digits (`fe:fd:0:1:2:ab`, as the kernel's `eth<N>=` field is written);
//! it is printed as the kernel prints it, lower case and zero-padded
//! (`fe:fd:00:01:02:ab`).

use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// A 48-bit MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac([u8; 6]);

/// Why a text is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("'{text}' is not a MAC address (six hex bytes separated by colons)")]
pub struct MacError {
    /// The text as given.
    pub text: String,
}

impl Mac {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Mac = Mac([0xff; 6]);

    /// The address with these six bytes (in wire order).
    pub const fn new(octets: [u8; 6]) -> Mac {
        Mac(octets)
    }

    /// The first six bytes of `bytes` (a frame's address field), or `None`
    /// when there are fewer.
    pub fn from_slice(bytes: &[u8]) -> Option<Mac> {
        bytes.get(..6)?.try_into().ok().map(Mac)
    }

    /// The six bytes, in wire order.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Whether this is a group address: broadcast and multicast addresses
    /// have bit 0 of the first byte set.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// Whether this is `ff:ff:ff:ff:ff:ff`.
    pub fn is_broadcast(&self) -> bool {
        *self == Mac::BROADCAST
    }
}

impl From<[u8; 6]> for Mac {
    fn from(octets: [u8; 6]) -> Mac {
        Mac(octets)
    }
}

impl FromStr for Mac {
    type Err = MacError;

    fn from_str(s: &str) -> Result<Mac, MacError> {
        let bad = || MacError { text: s.into() };
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || p.len() > 2 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        match parts.next() {
            None => Ok(Mac(out)),
            Some(_) => Err(bad()),
        }
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<[u8; 6]> {
        s.parse::<Mac>().ok().map(|m| m.octets())
    }

    #[test]
    fn short_and_padded_bytes_parse() {
        assert_eq!(p("fe:fd:0:1:2:ab"), Some([0xfe, 0xfd, 0, 1, 2, 0xab]));
        assert_eq!(p("FE:FD:00:01:02:AB"), Some([0xfe, 0xfd, 0, 1, 2, 0xab]));
    }

    #[test]
    fn wrong_counts_digits_and_signs_are_refused() {
        for s in [
            "",
            "fe:fd:0:1:2",
            "fe:fd:0:1:2:3:4",
            "zz:fd:0:1:2:3",
            "fe:fd:0:1:2:",
            "fe:fd:0:1:2:123",
            "+f:fd:0:1:2:3",
            "fe-fd-0-1-2-3",
        ] {
            assert_eq!(p(s), None, "{s:?} accepted");
        }
        assert_eq!(
            "x".parse::<Mac>().unwrap_err().to_string(),
            "'x' is not a MAC address (six hex bytes separated by colons)"
        );
    }

    #[test]
    fn printed_as_the_kernel_prints_it() {
        let m = Mac::new([0xfe, 0xfd, 0, 1, 2, 0xab]);
        assert_eq!(m.to_string(), "fe:fd:00:01:02:ab");
        assert_eq!(format!("{m:?}"), "fe:fd:00:01:02:ab");
    }

    #[test]
    fn group_bit_and_broadcast() {
        assert!(Mac::BROADCAST.is_broadcast() && Mac::BROADCAST.is_multicast());
        assert!(Mac::new([1, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!Mac::new([1, 0, 0x5e, 0, 0, 1]).is_broadcast());
        assert!(!Mac::new([2, 0, 0, 0, 0, 1]).is_multicast());
    }

    #[test]
    fn taken_from_the_front_of_a_slice() {
        assert_eq!(
            Mac::from_slice(&[1, 2, 3, 4, 5, 6, 7]),
            Some(Mac::new([1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(Mac::from_slice(&[1, 2, 3, 4, 5]), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn printed_addresses_parse_back(b in any::<[u8; 6]>()) {
            let m = Mac::new(b);
            prop_assert_eq!(m.to_string().parse::<Mac>(), Ok(m));
        }

        #[test]
        fn random_text_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<Mac>();
        }
    }
}
