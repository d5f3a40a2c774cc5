//! The writer's block device: the device underneath plus the current
//! transaction's dirty metadata blocks in memory.
//!
//! ```text
//!   Ext3 reader (lookups, reads)      writer (allocation, directories)
//!               \                      /
//!        Cached<D>: dirty metadata blocks (block::BlockMap) over D
//!               |            data blocks are written straight to D
//!        D: BlockDevice (plain image, or COW: whole blocks only)
//! ```
//!
//! Metadata changes stay here until the transaction commits (journal, then
//! home locations). File data is written behind: small writes wait in a
//! second map and go to the device in coalesced runs, always before the
//! transaction's commit block (ext3's ordered mode); big writes go straight
//! to the device.
//! Every write this layer issues is whole, aligned filesystem blocks.
//!
//! Reads are "block from a map, else below", the same
//! [`crate::block::BlockMap`] the reader's journal overlay uses.

use crate::block::{u64_from, usize_from, BlockDevice, BlockMap};
use std::io;
use std::num::NonZeroU64;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

/// A device with a write-back map of dirty metadata blocks.
#[derive(Debug)]
pub struct Cached<D> {
    inner: D,
    bs: NonZeroU64,
    dirty: RwLock<BlockMap>,
    /// File data not yet written (whole blocks).
    data: RwLock<BlockMap>,
    /// Test hook: device writes left before every write fails (`u64::MAX`:
    /// never).
    writes_left: AtomicU64,
}

/// Data writes this large bypass the buffer.
const DATA_DIRECT: usize = 256 * 1024;
/// Buffered data is written out when it reaches this size.
const DATA_BUFFER: u64 = 8 << 20;

fn poisoned() -> io::Error {
    io::Error::other("writer cache lock poisoned")
}

fn past_end(blk: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("block {blk} is past the largest device offset"),
    )
}

impl<D: BlockDevice> Cached<D> {
    /// A cache over `inner` with blocks of `block_size` bytes.
    pub fn new(inner: D, block_size: u32) -> Self {
        Cached {
            inner,
            bs: NonZeroU64::new(u64::from(block_size)).unwrap_or(NonZeroU64::MIN),
            dirty: RwLock::new(BlockMap::new(block_size)),
            data: RwLock::new(BlockMap::new(block_size)),
            writes_left: AtomicU64::new(u64::MAX),
        }
    }

    /// The device underneath.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Makes every device write after the next `n` fail (fault injection
    /// for crash tests).
    pub fn fail_after_writes(&self, n: u64) {
        self.writes_left.store(n, Ordering::SeqCst);
    }

    /// Reads block `blk` (dirty copy first).
    pub fn get(&self, blk: u64) -> io::Result<Vec<u8>> {
        if let Some(b) = self.dirty.read().map_err(|_| poisoned())?.get(blk) {
            return Ok(b.to_vec());
        }
        if let Some(b) = self.data.read().map_err(|_| poisoned())?.get(blk) {
            return Ok(b.to_vec());
        }
        let mut b = vec![0u8; self.bsz()];
        self.inner.read_exact_at(self.offset(blk)?, &mut b)?;
        Ok(b)
    }

    /// Replaces block `blk` in the current transaction.
    pub fn put(&self, blk: u64, data: Vec<u8>) -> io::Result<()> {
        debug_assert_eq!(u64_from(data.len()), self.bs.get());
        self.dirty
            .write()
            .map_err(|_| poisoned())?
            .insert(blk, data.into_boxed_slice());
        Ok(())
    }

    /// Number of dirty blocks.
    pub fn dirty_count(&self) -> usize {
        self.dirty.read().map(|d| d.len()).unwrap_or(0)
    }

    /// A copy of the dirty blocks, in block order.
    pub fn dirty_blocks(&self) -> io::Result<Vec<(u64, Box<[u8]>)>> {
        let d = self.dirty.read().map_err(|_| poisoned())?;
        Ok(d.iter().map(|(k, v)| (k, Box::from(v))).collect())
    }

    /// Forgets the dirty blocks (after they reached their home locations).
    pub fn clear_dirty(&self) -> io::Result<()> {
        self.dirty.write().map_err(|_| poisoned())?.clear();
        Ok(())
    }

    /// Writes whole blocks starting at block `blk` straight to the device.
    pub fn write_blocks(&self, blk: u64, data: &[u8]) -> io::Result<()> {
        debug_assert_eq!(u64_from(data.len()) % self.bs, 0);
        let offset = self.offset(blk)?;
        self.count_write()?;
        self.inner.write_all_at(offset, data)
    }

    /// Writes file data (whole blocks from `blk`): small writes are
    /// buffered, large ones written at once.
    pub fn write_data(&self, blk: u64, buf: &[u8]) -> io::Result<()> {
        let n = u64_from(buf.len()) / self.bs;
        // The end of the run must be a device offset too.
        let end = blk
            .checked_add(n)
            .filter(|&e| self.offset(e).is_ok())
            .ok_or_else(|| past_end(blk))?;
        let mut d = self.data.write().map_err(|_| poisoned())?;
        if buf.len() >= DATA_DIRECT {
            d.remove_range(blk..end);
            drop(d);
            return self.write_blocks(blk, buf);
        }
        for (b, c) in (blk..end).zip(buf.chunks_exact(self.bsz())) {
            d.insert(b, c.into());
        }
        // Blocks held in memory: the product stays far below u64::MAX.
        let full = u64_from(d.len()).saturating_mul(self.bs.get()) >= DATA_BUFFER;
        drop(d);
        if full {
            self.flush_data()?;
        }
        Ok(())
    }

    /// Writes the buffered file data to the device in runs of adjacent
    /// blocks.
    pub fn flush_data(&self) -> io::Result<()> {
        let blocks = self.data.write().map_err(|_| poisoned())?.take();
        let mut run: Vec<u8> = Vec::new();
        let mut start = 0u64;
        let mut next = u64::MAX;
        for (blk, b) in blocks {
            if blk != next && !run.is_empty() {
                self.write_blocks(start, &run)?;
                run.clear();
            }
            if run.is_empty() {
                start = blk;
            }
            run.extend_from_slice(&b);
            // The map's keys ascend: a block u64::MAX is the last one.
            next = blk.saturating_add(1);
        }
        if !run.is_empty() {
            self.write_blocks(start, &run)?;
        }
        Ok(())
    }

    /// The block size as a buffer length.
    fn bsz(&self) -> usize {
        usize_from(self.bs.get())
    }

    /// The byte offset of block `blk` (an error past `u64::MAX` bytes).
    fn offset(&self, blk: u64) -> io::Result<u64> {
        blk.checked_mul(self.bs.get()).ok_or_else(|| past_end(blk))
    }

    fn count_write(&self) -> io::Result<()> {
        let left = self.writes_left.load(Ordering::SeqCst);
        if left == 0 {
            return Err(io::Error::other("injected write failure"));
        }
        if left != u64::MAX {
            // Not 0 (returned above).
            self.writes_left
                .store(left.saturating_sub(1), Ordering::SeqCst);
        }
        Ok(())
    }

    /// Copies the buffered data, then the dirty metadata, over `buf`.
    fn patch(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.data.read().map_err(|_| poisoned())?.patch(offset, buf);
        self.dirty
            .read()
            .map_err(|_| poisoned())?
            .patch(offset, buf);
        Ok(())
    }
}

impl<D: BlockDevice> BlockDevice for Cached<D> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        // Small reads inside one dirty block (inodes, directory blocks)
        // need no device read.
        if self
            .dirty
            .read()
            .map_err(|_| poisoned())?
            .read_within(offset, buf)
            || self
                .data
                .read()
                .map_err(|_| poisoned())?
                .read_within(offset, buf)
        {
            return Ok(());
        }
        self.inner.read_exact_at(offset, buf)?;
        self.patch(offset, buf)
    }

    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if offset % self.bs != 0 || u64_from(buf.len()) % self.bs != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the writer writes whole filesystem blocks only",
            ));
        }
        self.write_blocks(offset / self.bs, buf)
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn flush(&self) -> io::Result<()> {
        self.flush_data()?;
        self.count_write()?;
        self.inner.flush()
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        let len = self.len();
        Ok((offset < len).then_some(offset..len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::MemDevice;

    #[test]
    fn dirty_blocks_shadow_reads_until_cleared() {
        let c = Cached::new(MemDevice::zeroed(4096), 1024);
        c.put(1, vec![7u8; 1024]).unwrap();
        let mut b = [0u8; 4];
        c.read_exact_at(1022, &mut b).unwrap();
        assert_eq!(b, [0, 0, 7, 7]);
        c.clear_dirty().unwrap();
        c.read_exact_at(1022, &mut b).unwrap();
        assert_eq!(b, [0; 4]);
        assert!(c.write_all_at(10, &[1]).is_err());
    }

    #[test]
    fn buffered_data_is_read_back_and_written_in_runs() {
        let c = Cached::new(MemDevice::zeroed(8192), 1024);
        c.write_data(2, &[5u8; 2048]).unwrap();
        c.write_data(5, &[6u8; 1024]).unwrap();
        let mut b = [0u8; 2];
        c.read_exact_at(4095, &mut b).unwrap();
        assert_eq!(b, [5, 0]);
        assert_eq!(c.get(5).unwrap(), vec![6u8; 1024]);
        c.flush().unwrap();
        c.inner().read_exact_at(2048, &mut b).unwrap();
        assert_eq!(b, [5, 5]);
        assert_eq!(c.data.read().unwrap().len(), 0);
    }

    #[test]
    fn injected_failure_stops_every_later_write() {
        let c = Cached::new(MemDevice::zeroed(4096), 1024);
        c.fail_after_writes(1);
        c.write_blocks(0, &[1u8; 1024]).unwrap();
        assert!(c.write_blocks(1, &[1u8; 1024]).is_err());
        assert!(c.flush().is_err());
    }
}
