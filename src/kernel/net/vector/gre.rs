//! `vec<N>:transport=gre,src=A,dst=B[,rx_key=K,tx_key=L][,sequence=1]`:
//! Ethernet over GRE (RFC 2890, protocol 0x6558, "transparent Ethernet
//! bridging"), framed as `vector_transports.c` frames it: the flags and
//! protocol word, the key with `rx_key`/`tx_key`, a sequence number with
//! `sequence=1` (always 0 with `pin_sequence=1`), then the frame. A
//! received packet is this device's when its flags and protocol word are
//! exactly the ones it sends and its key is `rx_key`. The link is
//! [`super::rawip::Link`]'s.

use super::l2tpv3::{flag, number};
use super::{Args, VectorError};

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
        super::push_counter(&mut out, self.sequence, count);
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
    fn keys_come_in_pairs() {
        assert!(Gre::from_args(1, &parse_ifspec("rx_key=1").unwrap()).is_err());
        assert!(Gre::from_args(1, &parse_ifspec("tx_key=1").unwrap()).is_ok());
    }
}
