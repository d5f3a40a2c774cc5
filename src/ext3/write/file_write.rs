//! Writing file data: blocks are mapped (allocating runs near the previous
//! block), partial blocks are read, merged and written whole, and long
//! writes commit in the middle so one transaction never outgrows the
//! journal; truncation frees blocks past the new end and zeroes the tail
//! of the new last block. fallocate makes unwritten extents or punches
//! holes (extent files only, as the kernel).

use super::inode_write::RawInode;
use super::{State, WResult, Writer};
use crate::block::{u64_from, usize_from, BlockDevice};
use crate::fs::Error as FsError;
use std::num::NonZeroU64;

impl<D: BlockDevice> Writer<D> {
    /// The largest file the writer makes: what the indirect map addresses,
    /// at most 2^32 - 1 sectors in `i_blocks` (no huge_file), and 2 GiB - 1
    /// without large_file.
    pub(crate) fn max_file_size(&self) -> u64 {
        let bs = self.geo.bs_nz();
        // p is 256 to 16384: the map's blocks stay below 2^43 and the
        // sector limit below 2^41 bytes (saturating says they cannot
        // overflow).
        let p = NonZeroU64::new(bs.get() / 4).unwrap_or(NonZeroU64::MIN);
        let map = p
            .get()
            .saturating_pow(3)
            .saturating_add(p.get().saturating_pow(2))
            .saturating_add(p.get())
            .saturating_add(12)
            .saturating_mul(bs.get());
        let sectors = (u64::from(u32::MAX).saturating_mul(512) / bs).saturating_mul(bs.get());
        let large = self
            .fs
            .superblock()
            .s_feature_ro_compat
            .contains(crate::ext3::features::RoCompat::LARGE_FILE);
        let cap = if large { u64::MAX } else { (1 << 31) - 1 };
        // Leave room for the indirect blocks in i_blocks.
        map.min(sectors.saturating_sub(sectors / p)).min(cap)
    }

    /// Writes `data` at `offset` of regular file `r` (caller puts `r`).
    pub(crate) fn write_data(
        &self,
        st: &mut State,
        r: &mut RawInode,
        offset: u64,
        data: &[u8],
    ) -> WResult<usize> {
        let bs = self.geo.bs_nz();
        let end = offset
            .checked_add(u64_from(data.len()))
            .ok_or(FsError::FileTooLarge)?;
        if end > self.max_file_size() {
            return Err(FsError::FileTooLarge);
        }
        let extents = r.flags() & crate::ext3::inode::EXT4_EXTENTS_FL != 0;
        let bsz = self.geo.bsz();
        // Positions stay below `end` <= max_file_size() (< 2^63), runs are
        // at most 1024 blocks of at most 64 KiB, and device blocks come
        // from the map, checked to lie inside the filesystem: the sums and
        // products below cannot overflow, and saturating ones say so.
        let mut pos = offset;
        while pos < end {
            let lblk = pos / bs;
            let within = usize_from(pos % bs);
            let want = end
                .saturating_sub(lblk.saturating_mul(bs.get()))
                .div_ceil(bs.get())
                .min(1024);
            if extents {
                // Written blocks of an unwritten extent turn initialized;
                // the rest of a block written in part reads as zeros.
                if let Some((p, n)) = self.ext_convert(st, r, lblk, lblk.saturating_add(want))? {
                    for k in 0..n {
                        let l = lblk.saturating_add(k);
                        let from = l.saturating_mul(bs.get());
                        if from < offset || from.saturating_add(bs.get()) > end {
                            let zero = vec![0u8; bsz];
                            self.cache
                                .write_data(p.saturating_add(k), &zero)
                                .map_err(super::eio)?;
                        }
                    }
                }
            }
            let existing = self.bmap(r, lblk)?;
            let (start, n, fresh) = if existing != 0 {
                let mut n = 1;
                while n < want
                    && self.bmap(r, lblk.saturating_add(n))? == existing.saturating_add(n)
                {
                    n = n.saturating_add(1);
                }
                (existing, n, false)
            } else {
                // Allocate up to the next mapped block (past the end of
                // the file nothing is mapped: truncation frees it).
                let mut hole = 1;
                if extents {
                    // Up to the next extent (fallocate leaves some past the
                    // end); it starts at lblk or after.
                    let next = self.ext_next_mapped(r, lblk)?;
                    hole = next.saturating_sub(lblk).clamp(1, want);
                } else if lblk >= r.size().div_ceil(bs.get()) {
                    hole = want;
                }
                while !extents && hole < want && self.bmap(r, lblk.saturating_add(hole))? == 0 {
                    hole = hole.saturating_add(1);
                }
                let goal = match lblk.checked_sub(1) {
                    Some(prev) => self.bmap(r, prev)?.saturating_add(1),
                    None => self.inode_goal(r.ino),
                };
                // Leave room for the indirect blocks this run may need.
                let hole = hole.min(st.free_blocks.saturating_sub(3).max(1));
                let got = self.alloc_run(st, goal, hole);
                let (s, n) = match got {
                    Ok(v) => v,
                    Err(e) if pos > offset => {
                        let _ = e;
                        break;
                    }
                    Err(e) => return Err(e),
                };
                let mut mapped = 0;
                while mapped < n {
                    let (l, b) = (lblk.saturating_add(mapped), s.saturating_add(mapped));
                    if let Err(e) = self.bmap_set(st, r, l, b) {
                        // No room for an indirect block: give back the rest.
                        // Never referenced: reusable at once.
                        let rest = n.saturating_sub(mapped);
                        self.free_blocks(st, b, rest)?;
                        for b in b..b.saturating_add(rest) {
                            st.pending_free.remove(&b);
                        }
                        if mapped == 0 {
                            if pos > offset {
                                break;
                            }
                            return Err(e);
                        }
                        break;
                    }
                    mapped = mapped.saturating_add(1);
                }
                if mapped == 0 {
                    break;
                }
                let n = mapped;
                // i_blocks is on disk: a count that no longer fits is corrupt.
                let sectors = r.sectors().checked_add(n.saturating_mul(bs.get() / 512));
                r.set_sectors(sectors.ok_or(FsError::CORRUPT.at_ino(r.ino))?);
                (s, n, true)
            };
            // In memory: at most 1024 blocks, and the caller's buffer.
            let span = usize_from(n.saturating_mul(bs.get()));
            let take = span
                .saturating_sub(within)
                .min(usize_from(end.saturating_sub(pos)));
            let done = usize_from(pos.saturating_sub(offset));
            let src = data
                .get(done..)
                .and_then(|d| d.get(..take))
                .ok_or(FsError::IO)?;
            let buf;
            let out = if within == 0 && take == span {
                // Whole blocks: straight from the caller's buffer.
                src
            } else {
                let mut b = vec![0u8; span];
                if !fresh && (within != 0 || u64_from(take) % bs != 0) {
                    // Keep the bytes around the write in the first and last block.
                    let first = self.cache.get(start).map_err(super::eio)?;
                    b[..bsz].copy_from_slice(&first);
                    if n > 1 {
                        let last_blk = start.saturating_add(n).saturating_sub(1);
                        let last = self.cache.get(last_blk).map_err(super::eio)?;
                        b[span.saturating_sub(bsz)..].copy_from_slice(&last);
                    }
                }
                b.get_mut(within..)
                    .and_then(|d| d.get_mut(..take))
                    .ok_or(FsError::IO)?
                    .copy_from_slice(src);
                buf = b;
                &buf
            };
            self.cache.write_data(start, out).map_err(super::eio)?;
            pos = pos.saturating_add(u64_from(take));
            if pos > r.size() {
                r.set_size(pos);
            }
            if self.tx_full(st) {
                self.put_inode(r)?;
                self.commit(st)?;
            }
        }
        Ok(usize_from(pos.saturating_sub(offset)))
    }

    /// Sets the size of regular file `r`, freeing blocks past the end and
    /// zeroing the tail of the new last block.
    pub(crate) fn set_size(&self, st: &mut State, r: &mut RawInode, size: u64) -> WResult<()> {
        let bs = self.geo.bs_nz();
        if size > self.max_file_size() {
            return Err(FsError::FileTooLarge);
        }
        self.check_block_map(r)?;
        if size < r.size() {
            self.truncate_blocks(st, r, size.div_ceil(bs.get()))?;
            if size % bs != 0 {
                let blk = self.bmap(r, size / bs)?;
                if blk != 0 {
                    let mut b = self.cache.get(blk).map_err(super::eio)?;
                    b.get_mut(usize_from(size % bs)..)
                        .unwrap_or_default()
                        .fill(0);
                    self.cache.write_data(blk, &b).map_err(super::eio)?;
                }
            }
        }
        r.set_size(size);
        Ok(())
    }

    /// fallocate(2) on regular file `r` (caller checks the type and puts
    /// `r`): allocation (`mode` 0 or `FALLOC_FL_KEEP_SIZE`) or a punched
    /// hole (`FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`).
    pub(crate) fn fallocate_data(
        &self,
        st: &mut State,
        r: &mut RawInode,
        offset: u64,
        len: u64,
        mode: u32,
    ) -> WResult<()> {
        use crate::fs::{FALLOC_FL_KEEP_SIZE as KEEP, FALLOC_FL_PUNCH_HOLE as PUNCH};
        if len == 0 {
            return Err(FsError::InvalidArgument);
        }
        if mode & !(KEEP | PUNCH) != 0 || (mode & PUNCH != 0 && mode & KEEP == 0) {
            return Err(FsError::Unsupported);
        }
        if r.flags() & crate::ext3::inode::EXT4_EXTENTS_FL == 0 {
            return Err(FsError::Unsupported);
        }
        let end = offset.checked_add(len).ok_or(FsError::FileTooLarge)?;
        if end > self.max_file_size() {
            return Err(FsError::FileTooLarge);
        }
        let bs = self.geo.bs_nz();
        if mode & PUNCH != 0 {
            return self.punch(st, r, offset, end);
        }
        self.ext_prealloc(st, r, offset / bs, end.div_ceil(bs.get()))?;
        if mode & KEEP == 0 && end > r.size() {
            r.set_size(end);
            r.set_time(super::inode_write::Which::Mtime, super::now());
        }
        Ok(())
    }

    /// Punches bytes `offset..end` of extent file `r`: whole blocks are
    /// freed, the parts of blocks at the edges zeroed. Nothing past the
    /// block holding the end of the file is touched (as the kernel).
    fn punch(&self, st: &mut State, r: &mut RawInode, offset: u64, end: u64) -> WResult<()> {
        let bs = self.geo.bs_nz();
        let size = r.size();
        if offset >= size {
            return Ok(());
        }
        // i_size is on disk (any u64); `end` is at most max_file_size().
        let end = end.min(size.div_ceil(bs.get()).saturating_mul(bs.get()));
        // Zeroes bytes from..to of one block (both in the same block).
        let zero = |r: &RawInode, from: u64, to: u64| -> WResult<()> {
            let blk = self.bmap(r, from / bs)?;
            if blk != 0 {
                let mut b = self.cache.get(blk).map_err(super::eio)?;
                let at = usize_from(from % bs);
                let len = usize_from(to.saturating_sub(from));
                b.get_mut(at..)
                    .and_then(|z| z.get_mut(..len))
                    .ok_or(FsError::IO)?
                    .fill(0);
                self.cache.write_data(blk, &b).map_err(super::eio)?;
            }
            Ok(())
        };
        let (first, last) = (offset.div_ceil(bs.get()), end / bs);
        if first > last {
            return zero(r, offset, end);
        }
        // first and last are block numbers of byte offsets at most end.
        if offset % bs != 0 {
            zero(r, offset, first.saturating_mul(bs.get()))?;
        }
        if end % bs != 0 {
            zero(r, last.saturating_mul(bs.get()), end)?;
        }
        if first < last {
            self.ext_punch(st, r, first, last)?;
        }
        Ok(())
    }
}
