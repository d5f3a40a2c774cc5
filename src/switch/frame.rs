//! An Ethernet frame as the switch sees it: a view over borrowed bytes
//! naming the destination and source MAC addresses (spec §4.4), read as
//! [`crate::net::Mac`]. The payload is never looked at.

use crate::net::Mac;

/// Length of the Ethernet header (two MACs and the EtherType).
pub const HEADER_LEN: usize = 14;
/// The largest frame the switch forwards: 1500 bytes of payload, the
/// header, and room for one 802.1Q tag.
pub const MAX_FRAME_LEN: usize = 1518;

/// Byte ranges of the header.
pub mod field {
    use std::ops::Range;
    /// Destination MAC.
    pub const DESTINATION: Range<usize> = 0..6;
    /// Source MAC.
    pub const SOURCE: Range<usize> = 6..12;
}

/// Why a datagram is not a frame the switch forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than an Ethernet header.
    Short(usize),
    /// Longer than [`MAX_FRAME_LEN`].
    Oversized(usize),
}

/// An Ethernet frame over `T`'s bytes, at least [`HEADER_LEN`] long.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Checks that `buffer` holds a header and is not oversized.
    pub fn new_checked(buffer: T) -> Result<EthernetFrame<T>, FrameError> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(FrameError::Short(len));
        }
        if len > MAX_FRAME_LEN {
            return Err(FrameError::Oversized(len));
        }
        Ok(EthernetFrame { buffer })
    }

    fn mac(&self, r: std::ops::Range<usize>) -> Mac {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.buffer.as_ref()[r]);
        Mac::new(m)
    }

    /// The destination address.
    pub fn dst(&self) -> Mac {
        self.mac(field::DESTINATION)
    }

    /// The source address.
    pub fn src(&self) -> Mac {
        self.mac(field::SOURCE)
    }

    /// The whole frame.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_are_read_from_the_right_offsets() {
        let mut b = [0u8; 60];
        b[..6].copy_from_slice(&[0xff; 6]);
        b[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        let f = EthernetFrame::new_checked(&b[..]).unwrap();
        assert!(f.dst().is_multicast());
        assert_eq!(f.src().to_string(), "02:00:00:00:00:01");
        assert!(!f.src().is_multicast());
    }

    #[test]
    fn short_and_oversized_datagrams_are_refused() {
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 13][..]).unwrap_err(),
            FrameError::Short(13)
        );
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 1519][..]).unwrap_err(),
            FrameError::Oversized(1519)
        );
        assert!(EthernetFrame::new_checked(&[0u8; 14][..]).is_ok());
    }
}
