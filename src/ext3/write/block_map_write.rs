//! Changing the classic indirect block map (blockmap.rst): mapping a
//! logical block to a newly allocated one (allocating the indirect blocks
//! on the way, zeroed, counted in `i_blocks`) and truncating (freeing data
//! and indirect blocks past a logical block, indirect blocks that become
//! empty included). Extent-mapped files go to [`super::extent_write`].

use super::inode_write::RawInode;
use super::{State, WResult, Writer};
use crate::block::{u64_from, usize_from, BlockDevice};
use crate::ext3::block_map::map_path;
use crate::ext3::bytes::{le32, set_le32};
use crate::ext3::inode::EXT4_EXTENTS_FL;
use crate::fs::Error as FsError;

/// Pointer `i` of an indirect block (`i` below the block's pointers).
fn entry(b: &[u8], i: usize) -> u64 {
    i.checked_mul(4).map_or(0, |at| u64::from(le32(b, at)))
}
fn set_entry(b: &mut [u8], i: usize, v: u32) {
    if let Some(at) = i.checked_mul(4) {
        set_le32(b, at, v);
    }
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

    /// A block number from the map, checked to lie inside the filesystem.
    fn valid(&self, blk: u64) -> WResult<u64> {
        if blk >= self.geo.blocks_count || blk < self.geo.first_data_block {
            return Err(FsError::CORRUPT.at_block(blk));
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
        // Data goes where the map points: inside the filesystem only.
        if ptr == 0 {
            return Ok(0);
        }
        self.valid(ptr).map_err(|e| e.at_ino(r.ino))
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
            if level.saturating_add(1) == path.depth {
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
        // i_blocks is on disk: a count that no longer fits is corrupt.
        let sectors = r.sectors().checked_add(self.sectors_per_block());
        r.set_sectors(sectors.ok_or(FsError::CORRUPT.at_ino(r.ino))?);
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
        // p is at most 16384 (64 KiB blocks): these stay below 2^29.
        let bases = [
            12,
            p.saturating_add(12),
            p.saturating_mul(p).saturating_add(p).saturating_add(12),
        ];
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
        self.free_sorted(st, &freed)?;
        // Blocks of the filesystem times sectors per block fit u64 (the
        // filesystem's byte size does).
        r.set_sectors(
            r.sectors()
                .saturating_sub(n.saturating_mul(self.sectors_per_block())),
        );
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
        // depth is 1, 2 or 3 (the callers' slots), p at most 16384.
        let span = p.saturating_pow(depth.saturating_sub(1));
        let mut b = self.get(blk)?;
        let (mut left, mut changed) = (false, false);
        for i in 0..usize_from(p) {
            let e = entry(&b, i);
            if e == 0 {
                continue;
            }
            // Below 12 + p + p^2 + p^3 < 2^43: the sums do not saturate.
            let ebase = base.saturating_add(u64_from(i).saturating_mul(span));
            if ebase.saturating_add(span) <= keep {
                left = true;
            } else if depth == 1 {
                freed.push(self.valid(e)?);
                set_entry(&mut b, i, 0);
                changed = true;
            } else if self.trim(e, depth.saturating_sub(1), ebase, keep, freed)? {
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
