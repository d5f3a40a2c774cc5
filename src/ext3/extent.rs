//! Extent tree nodes (`struct ext4_extent_header`, `ext4_extent_idx`,
//! `ext4_extent`): the root in `i_block`, further nodes in whole blocks
//! (Documentation/filesystems/ext4/ifork.rst).

use super::bytes::u64_from;
use super::bytes::{le16, le32, lo_hi};
use super::error::Corrupt;

/// `eh_magic`.
pub const EXT4_EXT_MAGIC: u16 = 0xF30A;
/// The deepest tree Linux builds (`EXT4_MAX_EXTENT_DEPTH`).
pub const MAX_DEPTH: u16 = 5;
/// `ee_len` above this marks an unwritten (preallocated) extent.
pub const EXT_INIT_MAX_LEN: u16 = 32768;

/// A leaf entry: `len` blocks from logical `block` map to physical `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// `ee_block`: first logical block.
    pub ee_block: u32,
    /// Number of blocks (1..=32768).
    pub len: u16,
    /// `ee_start_hi:ee_start_lo`: first physical block.
    pub start: u64,
    /// True for an unwritten extent, which reads as zeros.
    pub unwritten: bool,
}

impl Extent {
    /// The last logical block it maps (`ee_block + len - 1`), `None` for
    /// an empty extent or one that runs past logical block 2^32 - 1.
    pub fn last_block(&self) -> Option<u32> {
        self.ee_block
            .checked_add(u32::from(self.len.checked_sub(1)?))
    }

    /// The logical block after it (`ee_block + len`, at most 2^32).
    pub fn end_block(&self) -> u64 {
        u64::from(self.ee_block).saturating_add(u64::from(self.len))
    }
}

/// An index entry: the subtree for logical blocks from `ei_block` is at
/// physical block `leaf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtentIdx {
    /// `ei_block`.
    pub ei_block: u32,
    /// `ei_leaf_hi:ei_leaf_lo`.
    pub leaf: u64,
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtentNode {
    /// An interior node at depth `depth` (> 0).
    Index {
        /// `eh_depth`.
        depth: u16,
        /// The entries, sorted by `ei_block`.
        entries: Vec<ExtentIdx>,
    },
    /// A leaf (depth 0).
    Leaf(Vec<Extent>),
}

impl ExtentNode {
    /// Parses a node held in `b` (60 bytes for the root in the inode, a
    /// block otherwise) and checks its header and entry order.
    pub fn parse(b: &[u8]) -> Result<ExtentNode, Corrupt> {
        if b.len() < 12 {
            return Err(Corrupt::TooShort {
                structure: "extent node",
                len: b.len(),
                want: 12,
            });
        }
        let magic = le16(b, 0);
        if magic != EXT4_EXT_MAGIC {
            return Err(Corrupt::BadMagic {
                structure: "extent header",
                field: "eh_magic",
                value: u32::from(magic),
            });
        }
        let entries = usize::from(le16(b, 2));
        let max = usize::from(le16(b, 4));
        let depth = le16(b, 6);
        // eh_max entries of 12 bytes after the 12-byte header must fit.
        let fits = max
            .checked_mul(12)
            .and_then(|n| n.checked_add(12))
            .is_some_and(|end| end <= b.len());
        if entries > max || !fits {
            return Err(Corrupt::BadField {
                field: "extent header eh_entries",
                value: u64_from(entries),
            });
        }
        if depth > MAX_DEPTH {
            return Err(Corrupt::ExtentDepth {
                depth,
                want: MAX_DEPTH,
            });
        }
        // The entries: `fits` above means there are at least `entries`
        // whole 12-byte chunks after the header.
        let table = b
            .get(12..)
            .unwrap_or_default()
            .chunks_exact(12)
            .take(entries);
        if depth == 0 {
            let mut v: Vec<Extent> = Vec::with_capacity(entries);
            // The last logical block of the previous extent.
            let mut prev_last: Option<u32> = None;
            for (i, e) in table.enumerate() {
                let raw_len = le16(e, 4);
                // Above EXT_INIT_MAX_LEN the length is stored plus 32768
                // and marks the extent unwritten.
                let (len, unwritten) = match raw_len.checked_sub(EXT_INIT_MAX_LEN) {
                    Some(l) if l > 0 => (l, true),
                    _ => (raw_len, false),
                };
                let x = Extent {
                    ee_block: le32(e, 0),
                    len,
                    start: lo_hi(le32(e, 8), u32::from(le16(e, 6))),
                    unwritten,
                };
                if len == 0 {
                    return Err(Corrupt::ExtentOrder {
                        index: i,
                        block: x.ee_block,
                    });
                }
                let Some(last) = x.last_block() else {
                    return Err(Corrupt::ExtentRange {
                        index: i,
                        block: x.ee_block,
                        len,
                    });
                };
                if prev_last.is_some_and(|p| x.ee_block <= p) {
                    return Err(Corrupt::ExtentOrder {
                        index: i,
                        block: x.ee_block,
                    });
                }
                prev_last = Some(last);
                v.push(x);
            }
            Ok(ExtentNode::Leaf(v))
        } else {
            let mut v: Vec<ExtentIdx> = Vec::with_capacity(entries);
            for (i, e) in table.enumerate() {
                let x = ExtentIdx {
                    ei_block: le32(e, 0),
                    leaf: lo_hi(le32(e, 4), u32::from(le16(e, 8))),
                };
                if v.last().is_some_and(|p| x.ei_block <= p.ei_block) {
                    return Err(Corrupt::ExtentOrder {
                        index: i,
                        block: x.ei_block,
                    });
                }
                v.push(x);
            }
            Ok(ExtentNode::Index { depth, entries: v })
        }
    }

    /// The node's depth (0 for a leaf).
    pub fn depth(&self) -> u16 {
        match self {
            ExtentNode::Index { depth, .. } => *depth,
            ExtentNode::Leaf(_) => 0,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes a leaf node with `extents` as (block, len, start).
    pub fn leaf(extents: &[(u32, u16, u64)], size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        let max = (size - 12) / 12;
        b[0..2].copy_from_slice(&EXT4_EXT_MAGIC.to_le_bytes());
        b[2..4].copy_from_slice(&(extents.len() as u16).to_le_bytes());
        b[4..6].copy_from_slice(&(max as u16).to_le_bytes());
        for (i, &(blk, len, start)) in extents.iter().enumerate() {
            let e = &mut b[12 + 12 * i..24 + 12 * i];
            e[0..4].copy_from_slice(&blk.to_le_bytes());
            e[4..6].copy_from_slice(&len.to_le_bytes());
            e[6..8].copy_from_slice(&((start >> 32) as u16).to_le_bytes());
            e[8..12].copy_from_slice(&(start as u32).to_le_bytes());
        }
        b
    }

    #[test]
    fn parses_a_leaf_with_an_unwritten_extent() {
        let b = leaf(&[(0, 4, 100), (10, 32768 + 2, 1 << 33)], 60);
        let ExtentNode::Leaf(v) = ExtentNode::parse(&b).unwrap() else {
            panic!()
        };
        assert_eq!(
            v[0],
            Extent {
                ee_block: 0,
                len: 4,
                start: 100,
                unwritten: false
            }
        );
        assert_eq!(
            v[1],
            Extent {
                ee_block: 10,
                len: 2,
                start: 1 << 33,
                unwritten: true
            }
        );
    }

    #[test]
    fn an_extent_running_past_the_last_logical_block_is_rejected() {
        // 0xFFFF_FFF0 + 16 - 1 is the last block a file can have: fine.
        assert!(ExtentNode::parse(&leaf(&[(0xFFFF_FFF0, 16, 100)], 60)).is_ok());
        let err = ExtentNode::parse(&leaf(&[(0xFFFF_FFF0, 17, 100)], 60)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "extent 0 at block 4294967280 with 17 blocks runs past logical block 4294967295"
        );
        // Unwritten: the stored length carries 32768 on top.
        let err = ExtentNode::parse(&leaf(&[(0xFFFF_FFFF, 32768 + 2, 100)], 60)).unwrap_err();
        assert!(matches!(err, Corrupt::ExtentRange { len: 2, .. }), "{err}");
    }

    #[test]
    fn eh_max_larger_than_the_node_is_rejected() {
        let mut b = leaf(&[(0, 1, 1)], 60);
        b[4..6].copy_from_slice(&5u16.to_le_bytes()); // 12 + 5 * 12 > 60
        let err = ExtentNode::parse(&b).unwrap_err();
        assert!(matches!(
            err,
            Corrupt::BadField {
                field: "extent header eh_entries",
                ..
            }
        ));
        b[4..6].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(ExtentNode::parse(&b).is_err());
    }

    #[test]
    fn rejects_overlapping_extents_and_bad_headers() {
        assert!(ExtentNode::parse(&leaf(&[(0, 4, 100), (3, 1, 5)], 60)).is_err());
        let mut b = leaf(&[(0, 1, 1)], 60);
        b[2] = 9; // more entries than eh_max
        assert!(ExtentNode::parse(&b).is_err());
        let mut b = leaf(&[], 60);
        b[6] = 9; // too deep
        assert!(ExtentNode::parse(&b).is_err());
        assert!(ExtentNode::parse(&[0u8; 5]).is_err());
    }
}
