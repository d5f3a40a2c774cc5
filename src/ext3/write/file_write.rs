//! Writing file data: blocks are mapped (allocating runs near the previous
//! block), partial blocks are read, merged and written whole, and long
//! writes commit in the middle so one transaction never outgrows the
//! journal; truncation frees blocks past the new end and zeroes the tail
//! of the new last block.

use super::inode_write::RawInode;
use super::{State, WResult, Writer};
use crate::block::BlockDevice;
use crate::fs::Error as FsError;

impl<D: BlockDevice> Writer<D> {
    /// The largest file the writer makes: what the indirect map addresses,
    /// at most 2^32 - 1 sectors in `i_blocks` (no huge_file), and 2 GiB - 1
    /// without large_file.
    pub(crate) fn max_file_size(&self) -> u64 {
        let bs = self.geo.bs;
        let p = bs / 4;
        let map = (12 + p + p * p + p * p * p).saturating_mul(bs);
        let sectors = (u64::from(u32::MAX) * 512) / bs * bs;
        let large = self
            .fs
            .superblock()
            .s_feature_ro_compat
            .contains(crate::ext3::features::RoCompat::LARGE_FILE);
        let cap = if large { u64::MAX } else { (1 << 31) - 1 };
        // Leave room for the indirect blocks in i_blocks.
        map.min(sectors - sectors / p).min(cap)
    }

    /// Writes `data` at `offset` of regular file `r` (caller puts `r`).
    pub(crate) fn write_data(
        &self,
        st: &mut State,
        r: &mut RawInode,
        offset: u64,
        data: &[u8],
    ) -> WResult<usize> {
        let bs = self.geo.bs;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(FsError::FileTooLarge)?;
        if end > self.max_file_size() {
            return Err(FsError::FileTooLarge);
        }
        let mut pos = offset;
        while pos < end {
            let lblk = pos / bs;
            let within = (pos % bs) as usize;
            let want = (end - lblk * bs).div_ceil(bs).min(1024);
            let existing = self.bmap(r, lblk)?;
            let (start, n, fresh) = if existing != 0 {
                let mut n = 1;
                while n < want && self.bmap(r, lblk + n)? == existing + n {
                    n += 1;
                }
                (existing, n, false)
            } else {
                // Allocate up to the next mapped block (past the end of
                // the file nothing is mapped: truncation frees it).
                let mut hole = 1;
                if lblk >= r.size().div_ceil(bs) {
                    hole = want;
                }
                while hole < want && self.bmap(r, lblk + hole)? == 0 {
                    hole += 1;
                }
                let goal = if lblk > 0 {
                    self.bmap(r, lblk - 1)? + 1
                } else {
                    self.inode_goal(r.ino)
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
                    if let Err(e) = self.bmap_set(st, r, lblk + mapped, s + mapped) {
                        // No room for an indirect block: give back the rest.
                        // Never referenced: reusable at once.
                        self.free_blocks(st, s + mapped, n - mapped)?;
                        for b in s + mapped..s + n {
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
                    mapped += 1;
                }
                if mapped == 0 {
                    break;
                }
                let n = mapped;
                r.set_sectors(r.sectors() + n * (bs / 512));
                (s, n, true)
            };
            let span = (n * bs) as usize;
            let take = (span - within).min((end - pos) as usize);
            let mut buf = vec![0u8; span];
            let src = &data[(pos - offset) as usize..(pos - offset) as usize + take];
            if !fresh && (within != 0 || take % bs as usize != 0) {
                // Keep the bytes around the write in the first and last block.
                let first = self.cache.get(start).map_err(super::eio)?;
                buf[..bs as usize].copy_from_slice(&first);
                if n > 1 {
                    let last = self.cache.get(start + n - 1).map_err(super::eio)?;
                    buf[span - bs as usize..].copy_from_slice(&last);
                }
            }
            buf[within..within + take].copy_from_slice(src);
            self.cache.write_data(start, &buf).map_err(super::eio)?;
            pos += take as u64;
            if pos > r.size() {
                r.set_size(pos);
            }
            if self.tx_full(st) {
                self.put_inode(r)?;
                self.commit(st)?;
            }
        }
        Ok((pos - offset) as usize)
    }

    /// Sets the size of regular file `r`, freeing blocks past the end and
    /// zeroing the tail of the new last block.
    pub(crate) fn set_size(&self, st: &mut State, r: &mut RawInode, size: u64) -> WResult<()> {
        let bs = self.geo.bs;
        if size > self.max_file_size() {
            return Err(FsError::FileTooLarge);
        }
        self.check_block_map(r)?;
        if size < r.size() {
            self.truncate_blocks(st, r, size.div_ceil(bs))?;
            if size % bs != 0 {
                let blk = self.bmap(r, size / bs)?;
                if blk != 0 {
                    let mut b = self.cache.get(blk).map_err(super::eio)?;
                    b[(size % bs) as usize..].fill(0);
                    self.cache.write_data(blk, &b).map_err(super::eio)?;
                }
            }
        }
        r.set_size(size);
        Ok(())
    }
}
