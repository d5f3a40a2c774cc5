//! Changing the classic indirect block map (blockmap.rst): mapping a
//! logical block to a newly allocated one (allocating the indirect blocks
//! on the way, zeroed, counted in `i_blocks`) and truncating (freeing data
//! and indirect blocks past a logical block, indirect blocks that become
//! empty included). Extent-mapped files go to [`super::extent_write`].

use super::inode_write::RawInode;
use super::{State, WResult, Writer};
use crate::block::{u64_from, usize_from, BlockDevice};
use crate::ext3::block_map::map_path;
use crate::ext3::inode::EXT4_EXTENTS_FL;
use crate::fs::Error as FsError;

fn entry(b: &[u8], i: usize) -> u64 {
    u64::from(u32::from_le_bytes([
        b[4 * i],
        b[4 * i + 1],
        b[4 * i + 2],
        b[4 * i + 3],
    ]))
}
fn set_entry(b: &mut [u8], i: usize, v: u32) {
    b[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
}

impl<D: BlockDevice> Writer<D> {
    fn per_block(&self) -> u64 {
        self.geo.bs / 4
    }

    fn sectors_per_block(&self) -> u64 {
        self.geo.bs / 512
    }

    /// Checks that the writer can change the map of `r` (both kinds are).
    pub(crate) fn check_block_map(&self, _r: &RawInode) -> WResult<()> {
        Ok(())
    }

    fn valid(&self, blk: u64) -> WResult<u64> {
        if blk >= self.geo.blocks_count || blk < self.geo.first_data_block {
            return Err(FsError::IO);
        }
        Ok(blk)
    }

    /// The device block of logical block `lblk`, 0 for a hole.
    pub(crate) fn bmap(&self, r: &RawInode, lblk: u64) -> WResult<u64> {
        if r.flags() & EXT4_EXTENTS_FL != 0 {
            return self.ext_bmap(r, lblk);
        }
        let Some(path) = map_path(lblk, self.per_block()) else {
            return Err(FsError::FileTooLarge);
        };
        let mut ptr = u64::from(r.ptr(path.slot));
        for level in 0..path.depth {
            if ptr == 0 {
                return Ok(0);
            }
            let b = self.get(self.valid(ptr)?)?;
            ptr = entry(&b, path.indices[level]);
        }
        Ok(ptr)
    }

    /// Points logical block `lblk` at `pblk`, allocating missing indirect
    /// blocks near `pblk`.
    pub(crate) fn bmap_set(
        &self,
        st: &mut State,
        r: &mut RawInode,
        lblk: u64,
        pblk: u64,
    ) -> WResult<()> {
        if r.flags() & EXT4_EXTENTS_FL != 0 {
            return self.ext_set(st, r, lblk, pblk);
        }
        let Some(path) = map_path(lblk, self.per_block()) else {
            return Err(FsError::FileTooLarge);
        };
        // A block map holds 32-bit pointers (64bit filesystems past 2^32
        // blocks need extent files).
        let Ok(pblk32) = u32::try_from(pblk) else {
            return Err(FsError::NoSpace.at_ino(r.ino));
        };
        if path.depth == 0 {
            r.set_ptr(path.slot, pblk32);
            return Ok(());
        }
        let mut ptr = u64::from(r.ptr(path.slot));
        if ptr == 0 {
            let new = self.new_indirect(st, r, pblk)?;
            r.set_ptr(path.slot, new);
            ptr = u64::from(new);
        }
        for level in 0..path.depth {
            let blk = self.valid(ptr)?;
            let mut b = self.get(blk)?;
            let idx = path.indices[level];
            if level + 1 == path.depth {
                set_entry(&mut b, idx, pblk32);
                return self.put(blk, b);
            }
            ptr = entry(&b, idx);
            if ptr == 0 {
                let new = self.new_indirect(st, r, pblk)?;
                set_entry(&mut b, idx, new);
                self.put(blk, b)?;
                ptr = u64::from(new);
            }
        }
        Ok(())
    }

    /// A zeroed indirect block near `goal` (a block map holds 32-bit
    /// pointers, so one past 2^32 is given back: ENOSPC).
    fn new_indirect(&self, st: &mut State, r: &mut RawInode, goal: u64) -> WResult<u32> {
        let blk = self.alloc_block(st, goal)?;
        let Ok(blk32) = u32::try_from(blk) else {
            self.free_blocks(st, blk, 1)?;
            return Err(FsError::NoSpace.at_ino(r.ino));
        };
        self.put(blk, vec![0u8; self.geo.bsz()])?;
        r.set_sectors(r.sectors() + self.sectors_per_block());
        Ok(blk32)
    }

    /// Frees every block of `r` at logical block `keep` and beyond.
    pub(crate) fn truncate_blocks(
        &self,
        st: &mut State,
        r: &mut RawInode,
        keep: u64,
    ) -> WResult<()> {
        if r.flags() & EXT4_EXTENTS_FL != 0 {
            return self.ext_truncate(st, r, keep);
        }
        let mut freed = Vec::new();
        for i in 0..12usize {
            let p = u64::from(r.ptr(i));
            if p != 0 && u64_from(i) >= keep {
                freed.push(self.valid(p)?);
                r.set_ptr(i, 0);
            }
        }
        let p = self.per_block();
        let bases = [12, 12 + p, 12 + p + p * p];
        // Slots 12, 13, 14: single, double and triple indirect.
        for ((slot, depth), base) in [(12, 1), (13, 2), (14, 3)].into_iter().zip(bases) {
            let ptr = u64::from(r.ptr(slot));
            if ptr == 0 {
                continue;
            }
            if self.trim(ptr, depth, base, keep, &mut freed)? {
                r.set_ptr(slot, 0);
            }
        }
        freed.sort_unstable();
        let n = u64_from(freed.len());
        let mut i = 0;
        while i < freed.len() {
            let mut len = 1;
            while i + len < freed.len() && freed[i + len] == freed[i] + u64_from(len) {
                len += 1;
            }
            self.free_blocks(st, freed[i], u64_from(len))?;
            i += len;
        }
        r.set_sectors(r.sectors().saturating_sub(n * self.sectors_per_block()));
        Ok(())
    }

    /// Trims the subtree of indirect block `blk` (`depth` levels above the
    /// data) covering logical blocks from `base`; true when `blk` itself
    /// was freed.
    fn trim(
        &self,
        blk: u64,
        depth: u32,
        base: u64,
        keep: u64,
        freed: &mut Vec<u64>,
    ) -> WResult<bool> {
        let blk = self.valid(blk)?;
        let p = self.per_block();
        let span = p.pow(depth - 1);
        let mut b = self.get(blk)?;
        let (mut left, mut changed) = (false, false);
        for i in 0..usize_from(p) {
            let e = entry(&b, i);
            if e == 0 {
                continue;
            }
            let ebase = base + u64_from(i) * span;
            if ebase + span <= keep {
                left = true;
            } else if depth == 1 {
                freed.push(self.valid(e)?);
                set_entry(&mut b, i, 0);
                changed = true;
            } else if self.trim(e, depth - 1, ebase, keep, freed)? {
                set_entry(&mut b, i, 0);
                changed = true;
            } else {
                left = true;
            }
        }
        if !left {
            freed.push(blk);
            return Ok(true);
        }
        if changed {
            self.put(blk, b)?;
        }
        Ok(false)
    }
}
