//! The journal overlay: a read-only block device that answers "give me the
//! bytes at offset X" from blocks replayed out of the journal where there
//! are some, and from the device underneath elsewhere.
//!
//! ```text
//!   Ext3 reader
//!       |
//!   JournalOverlay  (block number -> replayed block, in memory)
//!       |
//!   BlockDevice     (FileDevice, or a COW device over its backing)
//! ```
//!
//! This is the same shape as the COW device over its backing file; the
//! device underneath is never written.

use crate::block::BlockDevice;
use std::collections::BTreeMap;
use std::io;
use std::ops::Range;

/// A device seen through a map of replacement blocks.
#[derive(Debug)]
pub struct JournalOverlay<D> {
    inner: D,
    block_size: u64,
    blocks: BTreeMap<u64, Box<[u8]>>,
}

impl<D: BlockDevice> JournalOverlay<D> {
    /// An overlay with no replacement blocks yet.
    pub fn new(inner: D, block_size: u32) -> Self {
        JournalOverlay {
            inner,
            block_size: u64::from(block_size),
            blocks: BTreeMap::new(),
        }
    }

    /// Installs replayed blocks (each exactly one block long) and the block
    /// size they were replayed with.
    pub fn install(&mut self, block_size: u32, blocks: BTreeMap<u64, Box<[u8]>>) {
        self.block_size = u64::from(block_size);
        self.blocks = blocks;
    }

    /// Number of replaced blocks.
    pub fn replaced(&self) -> usize {
        self.blocks.len()
    }

    /// True when a replayed block overlaps bytes `range` of the device.
    pub fn replaces_any(&self, range: Range<u64>) -> bool {
        if range.is_empty() || self.block_size == 0 {
            return false;
        }
        let first = range.start / self.block_size;
        let last = (range.end - 1) / self.block_size;
        self.blocks.range(first..=last).next().is_some()
    }

    /// The device underneath.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Copies the replaced blocks overlapping `offset..offset+buf.len()`
    /// over `buf`.
    fn patch(&self, offset: u64, buf: &mut [u8]) {
        if self.blocks.is_empty() || buf.is_empty() || self.block_size == 0 {
            return;
        }
        let end = offset.saturating_add(buf.len() as u64);
        let first = offset / self.block_size;
        let last = (end - 1) / self.block_size;
        for (&blk, data) in self.blocks.range(first..=last) {
            let bstart = blk.saturating_mul(self.block_size);
            let from = bstart.max(offset);
            let to = bstart.saturating_add(self.block_size).min(end);
            if from >= to {
                continue;
            }
            let (src, dst) = ((from - bstart) as usize, (from - offset) as usize);
            let n = (to - from) as usize;
            if let (Some(s), Some(d)) = (data.get(src..src + n), buf.get_mut(dst..dst + n)) {
                d.copy_from_slice(s);
            }
        }
    }
}

impl<D: BlockDevice> BlockDevice for JournalOverlay<D> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact_at(offset, buf)?;
        self.patch(offset, buf);
        Ok(())
    }

    fn write_all_at(&self, _offset: u64, _buf: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the journal overlay is read-only",
        ))
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn flush(&self) -> io::Result<()> {
        Ok(())
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        // Replayed blocks may lie in holes of the device: report everything.
        let len = self.len();
        Ok((offset < len).then_some(offset..len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::MemDevice;

    #[test]
    fn replayed_blocks_shadow_the_device_byte_exactly() {
        let dev = MemDevice::new((0..4096u32).map(|i| i as u8).collect());
        let mut o = JournalOverlay::new(&dev, 1024);
        let mut m = BTreeMap::new();
        m.insert(1u64, vec![0xAAu8; 1024].into_boxed_slice());
        o.install(1024, m);
        let mut buf = vec![0u8; 10];
        o.read_exact_at(1020, &mut buf).unwrap();
        assert_eq!(&buf[..4], &[252, 253, 254, 255]);
        assert!(buf[4..].iter().all(|&b| b == 0xAA));
        let mut buf = vec![0u8; 4];
        o.read_exact_at(2046, &mut buf).unwrap();
        assert_eq!(buf, [0xAA, 0xAA, 0, 1]);
        assert!(o.write_all_at(0, &[1]).is_err());
    }
}
