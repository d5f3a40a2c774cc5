//! Block and inode allocation from the group bitmaps, with locality (near
//! a goal block; files in their parent's group, directories spread to the
//! group with the most free inodes), and the counters that go with it:
//! group descriptors (`bg_free_blocks_count`, `bg_free_inodes_count`,
//! `bg_used_dirs_count`) and the superblock totals.

use super::csum::{
    seal_group_desc, set_bitmap_csums, BG_BLOCK_BITMAP_CSUM_HI, BG_BLOCK_BITMAP_CSUM_LO,
    BG_BLOCK_UNINIT, BG_INODE_BITMAP_CSUM_HI, BG_INODE_BITMAP_CSUM_LO,
};
use super::{idx, State, WResult, Writer};
use crate::block::{u64_from, usize_from, BlockDevice};
use crate::ext3::bytes::{hi16, le16, lo16, set_le16};
use crate::ext3::group_desc::field::*;
use crate::ext3::group_desc::BG_INODE_UNINIT;
use crate::fs::Error as FsError;
use std::num::{NonZeroU32, NonZeroU64};

fn bit(b: &[u8], i: usize) -> bool {
    b[i / 8] & (1 << (i % 8)) != 0
}
fn set_bit(b: &mut [u8], i: usize, on: bool) {
    if on {
        b[i / 8] |= 1 << (i % 8);
    } else {
        b[i / 8] &= !(1 << (i % 8));
    }
}

/// First clear bit of `b` in `from..to`, skipping full bytes.
fn find_clear(b: &[u8], from: usize, to: usize, skip: impl Fn(usize) -> bool) -> Option<usize> {
    let mut i = from;
    while i < to {
        if let Some(next) = i.checked_add(8).filter(|&n| n <= to && i % 8 == 0) {
            if b[i / 8] == 0xFF {
                i = next;
                continue;
            }
        }
        if !bit(b, i) && !skip(i) {
            return Some(i);
        }
        // Below `to`.
        i = i.saturating_add(1);
    }
    None
}

impl<D: BlockDevice> Writer<D> {
    /// Writes group `g`'s counters, flags and `bg_itable_unused` into its
    /// descriptor, with the bitmap checksums and its own checksum.
    /// Writes the descriptors of the groups the running transaction
    /// changed (counters, flags, bitmap checksums, the descriptor's own
    /// checksum) into it: once per group at commit instead of once per
    /// allocation, which under metadata_csum checksummed both bitmaps each
    /// time. The reader keeps the descriptors it read at open, so nothing
    /// reads them in between.
    pub(crate) fn put_dirty_descs(&self, st: &mut State) -> WResult<()> {
        let groups = std::mem::take(&mut st.dirty_groups);
        for g in groups {
            self.put_desc(st, g)?;
        }
        Ok(())
    }

    fn put_desc(&self, st: &State, g: usize) -> WResult<()> {
        let (blk, off) = self.geo.desc_at[g];
        let (fb, fi, ud) = st.counts[g];
        let (flags, unused) = st.gflags[g];
        let bitmaps = match self.geo.csum {
            Some(_) => {
                let bpg = usize::try_from(self.geo.bpg / 8).unwrap_or(0);
                let ipg = usize::try_from(self.geo.ipg / 8).unwrap_or(0);
                let bb = self.get(self.geo.groups[g].0)?;
                let ib = self.get(self.geo.groups[g].1)?;
                Some((bb[..bpg].to_vec(), ib[..ipg].to_vec()))
            }
            None => None,
        };
        let mut b = self.get(blk)?;
        // `off` is below the block size less one descriptor (Geo::new).
        let d = b
            .get_mut(off..)
            .and_then(|d| d.get_mut(..self.geo.desc_size))
            .ok_or(FsError::CORRUPT.at_block(blk))?;
        set_le16(d, BG_FREE_BLOCKS_COUNT_LO, lo16(fb));
        set_le16(d, BG_FREE_INODES_COUNT_LO, lo16(fi));
        set_le16(d, BG_USED_DIRS_COUNT_LO, lo16(ud));
        if self.geo.uninit() {
            set_le16(d, BG_FLAGS, flags);
            set_le16(d, BG_ITABLE_UNUSED_LO, lo16(unused));
        }
        if self.geo.is64 && self.geo.desc_size >= 64 {
            set_le16(d, BG_FREE_BLOCKS_COUNT_HI, hi16(fb));
            set_le16(d, BG_FREE_INODES_COUNT_HI, hi16(fi));
            set_le16(d, BG_USED_DIRS_COUNT_HI, hi16(ud));
            if self.geo.uninit() {
                set_le16(d, BG_ITABLE_UNUSED_HI, hi16(unused));
            }
        }
        if let (Some(seed), Some((bb, ib))) = (self.geo.csum, bitmaps) {
            // An uninitialized bitmap keeps the checksum mke2fs gave it.
            let old = (
                le16(d, BG_BLOCK_BITMAP_CSUM_LO),
                le16(d, BG_INODE_BITMAP_CSUM_LO),
            );
            let old_hi = (
                le16(d, BG_BLOCK_BITMAP_CSUM_HI),
                le16(d, BG_INODE_BITMAP_CSUM_HI),
            );
            set_bitmap_csums(d, seed, &bb, &ib);
            if flags & BG_BLOCK_UNINIT != 0 {
                set_le16(d, BG_BLOCK_BITMAP_CSUM_LO, old.0);
                if d.len() >= 64 {
                    set_le16(d, BG_BLOCK_BITMAP_CSUM_HI, old_hi.0);
                }
            }
            if flags & BG_INODE_UNINIT != 0 {
                set_le16(d, BG_INODE_BITMAP_CSUM_LO, old.1);
                if d.len() >= 64 {
                    set_le16(d, BG_INODE_BITMAP_CSUM_HI, old_hi.1);
                }
            }
        }
        let gi = u32::try_from(g).map_err(|_| FsError::IO)?;
        seal_group_desc(d, gi, self.geo.gd_csum, self.geo.csum.unwrap_or(0));
        self.put(blk, b)
    }

    /// Group `g`'s block bitmap; a `BLOCK_UNINIT` group's is computed
    /// (`ext4_init_block_bitmap`: the superblock backup and descriptor
    /// table at its start, and every group's bitmaps and inode table that
    /// flex_bg placed in it) and the flag cleared.
    fn block_bitmap(&self, st: &mut State, g: usize) -> WResult<Vec<u8>> {
        if !self.geo.uninit() || st.gflags[g].0 & BG_BLOCK_UNINIT == 0 {
            return self.get(self.geo.groups[g].0);
        }
        let bs = usize::try_from(self.geo.bs).map_err(|_| FsError::IO)?;
        let mut b = vec![0u8; bs];
        let (first, count) = self.geo.group_range(g);
        // The group lies inside the filesystem, whose byte size fits u64:
        // sums of block numbers below s_blocks_count and a group's or an
        // inode table's length do not overflow (saturating says so).
        let group = first..first.saturating_add(count);
        let mut mark = |blocks: std::ops::Range<u64>| {
            let from = blocks.start.max(group.start);
            let to = blocks.end.min(group.end);
            for blk in from..to {
                set_bit(&mut b, usize_from(blk.saturating_sub(first)), true);
            }
        };
        mark(first..first.saturating_add(self.geo.sb_blocks[g]));
        for &(bb, ib, it) in &self.geo.groups {
            mark(bb..bb.saturating_add(1));
            mark(ib..ib.saturating_add(1));
            mark(it..it.saturating_add(self.geo.itable_blocks));
        }
        let count = usize::try_from(count).map_err(|_| FsError::IO)?;
        // Padding past the group's last block (a bitmap is one block).
        for i in count..bs.saturating_mul(8) {
            set_bit(&mut b, i, true);
        }
        st.gflags[g].0 &= !BG_BLOCK_UNINIT;
        Ok(b)
    }

    /// Group `g`'s inode bitmap; an `INODE_UNINIT` group's is empty (its
    /// padding past `s_inodes_per_group` set) and the flag cleared.
    fn inode_bitmap(&self, st: &mut State, g: usize) -> WResult<Vec<u8>> {
        if !self.geo.uninit() || st.gflags[g].0 & BG_INODE_UNINIT == 0 {
            return self.get(self.geo.groups[g].1);
        }
        let bs = usize::try_from(self.geo.bs).map_err(|_| FsError::IO)?;
        let mut b = vec![0u8; bs];
        let ipg = usize::try_from(self.geo.ipg).map_err(|_| FsError::IO)?;
        // Padding past the group's last inode (a bitmap is one block).
        for i in ipg..bs.saturating_mul(8) {
            set_bit(&mut b, i, true);
        }
        st.gflags[g].0 &= !BG_INODE_UNINIT;
        Ok(b)
    }

    fn group_of_block(&self, blk: u64) -> usize {
        let bpg = NonZeroU64::new(self.geo.bpg).unwrap_or(NonZeroU64::MIN);
        usize_from(blk.saturating_sub(self.geo.first_data_block) / bpg)
    }

    /// Allocates up to `max` contiguous blocks, the first as close after
    /// `goal` as possible; returns (first block, count).
    pub(crate) fn alloc_run(&self, st: &mut State, goal: u64, max: u64) -> WResult<(u64, u64)> {
        let ngroups = self.geo.groups.len();
        let goal = if goal >= self.geo.first_data_block && goal < self.geo.blocks_count {
            goal
        } else {
            st.block_hint.max(self.geo.first_data_block)
        };
        let g0 = self.group_of_block(goal).min(ngroups.saturating_sub(1));
        // Every group from the goal's, wrapping round, then the goal's
        // group again from its start.
        for (k, g) in (g0..ngroups).chain(0..=g0).enumerate() {
            if st.counts[g].0 == 0 {
                continue;
            }
            let (first, count) = self.geo.group_range(g);
            let bmp_blk = self.geo.groups[g].0;
            let mut bmp = self.block_bitmap(st, g)?;
            // The goal lies in group g0 (group_of_block), at or after its start.
            let start = if k == 0 {
                usize_from(goal.saturating_sub(first))
            } else {
                0
            };
            let count = usize_from(count);
            let pending = &st.pending_free;
            let skip = |i: usize| {
                first
                    .checked_add(u64_from(i))
                    .is_some_and(|b| pending.contains(&b))
            };
            let found = find_clear(&bmp, start, count, skip)
                .or_else(|| find_clear(&bmp, 0, start.min(count), skip));
            let Some(i) = found else { continue };
            // The run: free bits from i, no more than `max` nor the
            // group's 32-bit free count.
            let mut n = 0u32;
            for j in i..count {
                if u64::from(n) >= max || n >= st.counts[g].0 || bit(&bmp, j) || skip(j) {
                    break;
                }
                set_bit(&mut bmp, j, true);
                // Below st.counts[g].0, a u32.
                n = n.saturating_add(1);
            }
            self.put(bmp_blk, bmp)?;
            // n is at most the group's free count, and the total is the
            // sum of the groups' counts (Writer::open).
            st.counts[g].0 = st.counts[g].0.saturating_sub(n);
            st.free_blocks = st
                .free_blocks
                .checked_sub(u64::from(n))
                .ok_or(FsError::CORRUPT)?;
            st.dirty_groups.insert(g);
            // Inside the group, so inside the filesystem.
            let blk = first.checked_add(u64_from(i)).ok_or(FsError::CORRUPT)?;
            st.block_hint = blk.saturating_add(u64::from(n));
            return Ok((blk, u64::from(n)));
        }
        Err(FsError::NoSpace)
    }

    /// Allocates one block near `goal`.
    pub(crate) fn alloc_block(&self, st: &mut State, goal: u64) -> WResult<u64> {
        self.alloc_run(st, goal, 1).map(|(b, _)| b)
    }

    /// Frees `len` blocks from `blk` (not reused before the commit).
    pub(crate) fn free_blocks(&self, st: &mut State, blk: u64, len: u64) -> WResult<()> {
        // A run from an extent or a block map: past the end of the
        // filesystem is corrupt metadata.
        let end = blk
            .checked_add(len)
            .filter(|&e| e <= self.geo.blocks_count)
            .ok_or(FsError::CORRUPT.at_block(blk))?;
        let mut b = blk;
        while b < end {
            if b < self.geo.first_data_block {
                return Err(FsError::IO);
            }
            let g = self.group_of_block(b);
            let (first, count) = self.geo.group_range(g);
            let bmp_blk = self.geo.groups[g].0;
            let mut bmp = self.get(bmp_blk)?;
            let mut n = 0u32;
            // The group's blocks of the run (the group lies inside the
            // filesystem: no overflow).
            let stop = end.min(first.saturating_add(count));
            for blk in b..stop {
                let i = usize_from(blk.saturating_sub(first));
                if bit(&bmp, i) {
                    set_bit(&mut bmp, i, false);
                    // At most a group's blocks, below 2^32.
                    n = n.saturating_add(1);
                    st.pending_free.insert(blk);
                }
            }
            // stop > b: b is inside group g.
            b = stop.max(b.saturating_add(1));
            self.put(bmp_blk, bmp)?;
            // bg_free_blocks_count is on disk: a count that no longer fits
            // is corrupt.
            st.counts[g].0 = st.counts[g].0.checked_add(n).ok_or(FsError::CORRUPT)?;
            st.free_blocks = st
                .free_blocks
                .checked_add(u64::from(n))
                .ok_or(FsError::CORRUPT)?;
            st.dirty_groups.insert(g);
        }
        Ok(())
    }

    /// Frees `blocks` (sorted), one run of adjacent blocks at a time.
    pub(crate) fn free_sorted(&self, st: &mut State, blocks: &[u64]) -> WResult<()> {
        let mut rest = blocks;
        while let Some(&first) = rest.first() {
            let len = super::run_len(rest);
            self.free_blocks(st, first, u64_from(len))?;
            rest = rest.get(len..).unwrap_or_default();
        }
        Ok(())
    }

    /// Allocates an inode for a child of `parent`.
    pub(crate) fn alloc_inode(&self, st: &mut State, parent: u32, dir: bool) -> WResult<u32> {
        let ngroups = self.geo.groups.len();
        let pg = self.geo.group_of_ino(parent).min(ngroups.saturating_sub(1));
        let g0 = if dir {
            // Spread directories: the group with the most free inodes.
            (0..ngroups)
                .max_by_key(|&g| (st.counts[g].1, std::cmp::Reverse(g)))
                .unwrap_or(pg)
        } else {
            pg
        };
        for g in (g0..ngroups).chain(0..g0) {
            if st.counts[g].1 == 0 {
                continue;
            }
            let bmp_blk = self.geo.groups[g].1;
            let was_uninit = st.gflags[g].0 & BG_INODE_UNINIT != 0;
            let mut bmp = self.inode_bitmap(st, g)?;
            // Groups times inodes per group is `s_inodes_count`, a u32.
            let base = u32::try_from(g)
                .ok()
                .and_then(|g| g.checked_mul(self.geo.ipg))
                .ok_or(FsError::CORRUPT)?;
            let first_ok = idx(self.geo.first_ino.saturating_sub(base.saturating_add(1)));
            let limit = idx(self.geo.inodes_count.saturating_sub(base).min(self.geo.ipg));
            let Some(i) = find_clear(&bmp, first_ok.min(limit), limit, |_| false) else {
                continue;
            };
            set_bit(&mut bmp, i, true);
            self.put(bmp_blk, bmp)?;
            // i < limit <= s_inodes_per_group, a u32.
            let n = u32::try_from(i)
                .ok()
                .and_then(|i| i.checked_add(1))
                .ok_or(FsError::IO)?;
            if self.geo.uninit() {
                // ext4's __ext4_new_inode: the group's block bitmap is
                // initialized too, and the used part of the inode table
                // grows to cover the new inode.
                if st.gflags[g].0 & BG_BLOCK_UNINIT != 0 {
                    let bb = self.block_bitmap(st, g)?;
                    self.put(self.geo.groups[g].0, bb)?;
                }
                // bg_itable_unused is on disk: more than the group's
                // inodes is corrupt.
                let used = self
                    .geo
                    .ipg
                    .checked_sub(st.gflags[g].1)
                    .ok_or(FsError::CORRUPT.at_block(self.geo.desc_at[g].0))?;
                if was_uninit || n > used {
                    // n <= limit <= s_inodes_per_group.
                    st.gflags[g].1 = self.geo.ipg.saturating_sub(n);
                }
            }
            // Not 0 (checked above).
            st.counts[g].1 = st.counts[g].1.saturating_sub(1);
            // The total is the sum of the groups' counts (Writer::open).
            st.free_inodes = st.free_inodes.checked_sub(1).ok_or(FsError::CORRUPT)?;
            if dir {
                st.counts[g].2 = st.counts[g].2.checked_add(1).ok_or(FsError::CORRUPT)?;
            }
            st.dirty_groups.insert(g);
            // Below limit, so at most s_inodes_count.
            return base.checked_add(n).ok_or(FsError::CORRUPT);
        }
        Err(FsError::NoSpace)
    }

    /// Marks inode `ino` free.
    pub(crate) fn free_inode(&self, st: &mut State, ino: u32, dir: bool) -> WResult<()> {
        let n = ino.checked_sub(1).ok_or(FsError::StaleInode)?;
        let ipg = NonZeroU32::new(self.geo.ipg).ok_or(FsError::CORRUPT)?;
        let (g, i) = (idx(n / ipg), idx(n % ipg));
        let bmp_blk = self.geo.groups[g].1;
        let mut bmp = self.get(bmp_blk)?;
        if !bit(&bmp, i) {
            return Err(FsError::IO);
        }
        set_bit(&mut bmp, i, false);
        self.put(bmp_blk, bmp)?;
        // Counts from disk: one that no longer fits is corrupt.
        st.counts[g].1 = st.counts[g].1.checked_add(1).ok_or(FsError::CORRUPT)?;
        st.free_inodes = st.free_inodes.checked_add(1).ok_or(FsError::CORRUPT)?;
        if dir {
            st.counts[g].2 = st.counts[g].2.saturating_sub(1);
        }
        st.dirty_groups.insert(g);
        Ok(())
    }

    /// The first block of the inode's group (an allocation goal).
    pub(crate) fn inode_goal(&self, ino: u32) -> u64 {
        self.geo.group_range(self.geo.group_of_ino(ino)).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_clear_skips_full_bytes_and_excluded_bits() {
        let mut b = vec![0xFFu8; 4];
        b[2] = 0b1111_0111;
        assert_eq!(find_clear(&b, 0, 32, |_| false), Some(19));
        assert_eq!(find_clear(&b, 0, 32, |i| i == 19), None);
        assert_eq!(find_clear(&b, 20, 32, |_| false), None);
    }
}
