//! The `--dry-run` device: reads come from the disk, writes stay in memory,
//! so the editing code runs unchanged and the disk is never touched.

use crate::block::BlockDevice;
use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;

/// A device that keeps writes in memory (for `--dry-run`).
pub struct DryRun<D> {
    /// The real disk (only read).
    pub inner: D,
    /// Blocks written so far.
    pub blocks: Mutex<BTreeMap<u64, Vec<u8>>>,
}

const DRY_BLOCK: u64 = 512;

impl<D: BlockDevice> BlockDevice for DryRun<D> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_exact_at(offset, buf)?;
        let m = self.blocks.lock().map_err(|_| io::Error::other("lock"))?;
        let end = offset + buf.len() as u64;
        let first = offset / DRY_BLOCK;
        for (&b, data) in m.range(first..end.div_ceil(DRY_BLOCK)) {
            let s = b * DRY_BLOCK;
            let (from, to) = (s.max(offset), (s + DRY_BLOCK).min(end));
            if from < to {
                buf[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&data[(from - s) as usize..(to - s) as usize]);
            }
        }
        Ok(())
    }
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if offset % DRY_BLOCK != 0 || buf.len() as u64 % DRY_BLOCK != 0 {
            return Err(io::Error::other("unaligned dry-run write"));
        }
        let mut m = self.blocks.lock().map_err(|_| io::Error::other("lock"))?;
        for (i, c) in buf.chunks(DRY_BLOCK as usize).enumerate() {
            m.insert(offset / DRY_BLOCK + i as u64, c.to_vec());
        }
        Ok(())
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}
