//! "Block from a map, else below": a map of whole replacement blocks
//! ([`BlockMap`]) and a read-only device that answers from it where it has
//! a block and from the device underneath elsewhere ([`Overlay`]).
//!
//! ```text
//!   reader
//!     |
//!   Overlay<D>   block number -> replacement block (in memory)
//!     |
//!   D: BlockDevice (a file, or a COW device over its backing)
//! ```
//!
//! The ext3 reader sees the journal replayed in memory this way, and the
//! ext3 writer keeps its running transaction in two such maps over the
//! device. It is the same idea as the COW device over its backing file,
//! with sectors of a file instead of blocks in memory.

use super::BlockDevice;
use std::collections::BTreeMap;
use std::io;
use std::ops::{Range, RangeBounds};

/// Whole blocks of one size, by block number.
#[derive(Debug, Clone, Default)]
pub struct BlockMap {
    block_size: u64,
    blocks: BTreeMap<u64, Box<[u8]>>,
}

impl BlockMap {
    /// An empty map of blocks of `block_size` bytes.
    pub fn new(block_size: u32) -> Self {
        BlockMap {
            block_size: u64::from(block_size),
            blocks: BTreeMap::new(),
        }
    }

    /// A map holding `blocks` (each `block_size` bytes long).
    pub fn from_blocks(block_size: u32, blocks: BTreeMap<u64, Box<[u8]>>) -> Self {
        BlockMap {
            block_size: u64::from(block_size),
            blocks,
        }
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// Number of blocks held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// True when no block is held.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Block `blk`, if held.
    pub fn get(&self, blk: u64) -> Option<&[u8]> {
        self.blocks.get(&blk).map(|b| &b[..])
    }

    /// Holds `data` as block `blk`, replacing an earlier copy.
    pub fn insert(&mut self, blk: u64, data: Box<[u8]>) {
        debug_assert_eq!(u64::try_from(data.len()).ok(), Some(self.block_size));
        self.blocks.insert(blk, data);
    }

    /// Drops the blocks numbered in `range`.
    pub fn remove_range(&mut self, range: impl RangeBounds<u64>) {
        let stale: Vec<u64> = self.blocks.range(range).map(|(k, _)| *k).collect();
        for k in stale {
            self.blocks.remove(&k);
        }
    }

    /// Drops every block.
    pub fn clear(&mut self) {
        self.blocks.clear();
    }

    /// Takes every block out, leaving the map empty.
    pub fn take(&mut self) -> BTreeMap<u64, Box<[u8]>> {
        std::mem::take(&mut self.blocks)
    }

    /// The blocks in block order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.blocks.iter().map(|(k, v)| (*k, &v[..]))
    }

    /// The blocks overlapping bytes `offset..offset + count`, as block
    /// numbers; `None` when the range is empty or the map cannot hold it.
    fn blocks_of(&self, offset: u64, count: usize) -> Option<(u64, u64, u64)> {
        if self.blocks.is_empty() || count == 0 || self.block_size == 0 {
            return None;
        }
        let end = offset.saturating_add(u64::try_from(count).ok()?);
        let last = end.checked_sub(1)? / self.block_size;
        Some((offset / self.block_size, last, end))
    }

    /// True when a held block overlaps bytes `range` of the device.
    pub fn overlaps(&self, range: Range<u64>) -> bool {
        let count = usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(usize::MAX);
        self.blocks_of(range.start, count)
            .is_some_and(|(first, last, _)| self.blocks.range(first..=last).next().is_some())
    }

    /// Fills `buf` (bytes from `offset`) from one held block when it lies
    /// inside it; false when it does not (or the block is not held).
    pub fn read_within(&self, offset: u64, buf: &mut [u8]) -> bool {
        if self.block_size == 0 {
            return false;
        }
        let within = usize::try_from(offset % self.block_size).unwrap_or(usize::MAX);
        let Some(b) = self.blocks.get(&(offset / self.block_size)) else {
            return false;
        };
        match within
            .checked_add(buf.len())
            .and_then(|end| b.get(within..end))
        {
            Some(src) => {
                buf.copy_from_slice(src);
                true
            }
            None => false,
        }
    }

    /// Copies the held blocks overlapping `offset..offset + buf.len()`
    /// over `buf` (which holds those bytes as read from below).
    pub fn patch(&self, offset: u64, buf: &mut [u8]) {
        let Some((first, last, end)) = self.blocks_of(offset, buf.len()) else {
            return;
        };
        for (&blk, data) in self.blocks.range(first..=last) {
            let bstart = blk.saturating_mul(self.block_size);
            let from = bstart.max(offset);
            let to = bstart.saturating_add(self.block_size).min(end);
            // Each difference is below `to - from` <= one block or the
            // buffer's length, both of which are `usize`.
            let (Some(src), Some(dst), Some(n)) = (
                from.checked_sub(bstart)
                    .and_then(|v| usize::try_from(v).ok()),
                from.checked_sub(offset)
                    .and_then(|v| usize::try_from(v).ok()),
                to.checked_sub(from).and_then(|v| usize::try_from(v).ok()),
            ) else {
                continue;
            };
            let s = src.checked_add(n).and_then(|e| data.get(src..e));
            let d = dst.checked_add(n);
            if let (Some(s), Some(d)) = (s, d.and_then(|e| buf.get_mut(dst..e))) {
                d.copy_from_slice(s);
            }
        }
    }
}

/// A read-only device seen through a [`BlockMap`]: held blocks shadow the
/// device underneath, which is never written.
#[derive(Debug)]
pub struct Overlay<D> {
    inner: D,
    map: BlockMap,
}

impl<D: BlockDevice> Overlay<D> {
    /// An overlay with no replacement blocks yet.
    pub fn new(inner: D, block_size: u32) -> Self {
        Overlay {
            inner,
            map: BlockMap::new(block_size),
        }
    }

    /// Replaces the map of replacement blocks.
    pub fn install(&mut self, map: BlockMap) {
        self.map = map;
    }

    /// Number of replaced blocks.
    pub fn replaced(&self) -> usize {
        self.map.len()
    }

    /// True when a replacement block overlaps bytes `range` of the device.
    pub fn replaces_any(&self, range: Range<u64>) -> bool {
        self.map.overlaps(range)
    }

    /// The device underneath.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D: BlockDevice> BlockDevice for Overlay<D> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact_at(offset, buf)?;
        self.map.patch(offset, buf);
        Ok(())
    }

    fn write_all_at(&self, _offset: u64, _buf: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the overlay is read-only",
        ))
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        // Replacement blocks may lie in holes of the device: report
        // everything.
        let len = self.len();
        Ok((offset < len).then_some(offset..len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::MemDevice;

    #[test]
    fn replacement_blocks_shadow_the_device_byte_exactly() {
        let dev = MemDevice::new((0..4096u32).map(|i| i.to_le_bytes()[0]).collect());
        let mut o = Overlay::new(&dev, 1024);
        let mut m = BlockMap::new(1024);
        m.insert(1, vec![0xAAu8; 1024].into_boxed_slice());
        o.install(m);
        let mut buf = vec![0u8; 10];
        o.read_exact_at(1020, &mut buf).unwrap();
        assert_eq!(&buf[..4], &[252, 253, 254, 255]);
        assert!(buf[4..].iter().all(|&b| b == 0xAA));
        let mut buf = vec![0u8; 4];
        o.read_exact_at(2046, &mut buf).unwrap();
        assert_eq!(buf, [0xAA, 0xAA, 0, 1]);
        assert!(o.write_all_at(0, &[1]).is_err());
        assert!(o.replaces_any(2047..2048));
        assert!(!o.replaces_any(2048..4096));
    }

    #[test]
    fn read_within_answers_only_reads_inside_one_held_block() {
        let mut m = BlockMap::new(1024);
        m.insert(2, vec![7u8; 1024].into_boxed_slice());
        let mut b = [0u8; 4];
        assert!(m.read_within(2048 + 1020, &mut b));
        assert_eq!(b, [7; 4]);
        assert!(!m.read_within(2048 + 1021, &mut b));
        assert!(!m.read_within(0, &mut b));
    }
}
