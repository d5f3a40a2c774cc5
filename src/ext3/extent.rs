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
        if entries > max || 12 + 12 * max > b.len() {
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
        let entry = |i: usize| &b[12 + 12 * i..24 + 12 * i];
        if depth == 0 {
            let mut v: Vec<Extent> = Vec::with_capacity(entries);
            for i in 0..entries {
                let e = entry(i);
                let raw_len = le16(e, 4);
                let (len, unwritten) = if raw_len > EXT_INIT_MAX_LEN {
                    (raw_len - EXT_INIT_MAX_LEN, true)
                } else {
                    (raw_len, false)
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
                if let Some(prev) = v.last() {
                    let prev_end = u64::from(prev.ee_block) + u64::from(prev.len);
                    if u64::from(x.ee_block) < prev_end {
                        return Err(Corrupt::ExtentOrder {
                            index: i,
                            block: x.ee_block,
                        });
                    }
                }
                v.push(x);
            }
            Ok(ExtentNode::Leaf(v))
        } else {
            let mut v: Vec<ExtentIdx> = Vec::with_capacity(entries);
            for i in 0..entries {
                let e = entry(i);
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
