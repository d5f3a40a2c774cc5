//! Newtypes for the numbers that cross module boundaries: a filesystem
//! block number is not a byte offset, a log block or a count, and turning
//! it into a byte offset is a checked multiplication.

use std::fmt;

/// A filesystem block number (in units of the block size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BlockIndex(pub u64);

impl BlockIndex {
    /// The byte offset of this block on the device, `None` on overflow.
    pub fn byte_offset(self, block_size: u32) -> Option<u64> {
        self.0.checked_mul(u64::from(block_size))
    }
}

impl From<u64> for BlockIndex {
    fn from(v: u64) -> Self {
        BlockIndex(v)
    }
}

impl From<BlockIndex> for u64 {
    fn from(b: BlockIndex) -> Self {
        b.0
    }
}

impl fmt::Display for BlockIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_offsets_are_checked() {
        assert_eq!(BlockIndex(3).byte_offset(4096), Some(12288));
        assert_eq!(BlockIndex(u64::MAX).byte_offset(1024), None);
    }
}
