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
        if i % 8 == 0 && i + 8 <= to && b[i / 8] == 0xFF {
            i += 8;
            continue;
        }
        if !bit(b, i) && !skip(i) {
            return Some(i);
        }
        i += 1;
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
        let d = &mut b[off..off + self.geo.desc_size];
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
        let end = first + count;
        let mut mark = |blk: u64| {
            if blk >= first && blk < end {
                let i = usize::try_from(blk - first).unwrap_or(0);
                set_bit(&mut b, i, true);
            }
        };
        for k in 0..self.geo.sb_blocks[g] {
            mark(first + k);
        }
        for &(bb, ib, it) in &self.geo.groups {
            mark(bb);
            mark(ib);
            for k in 0..self.geo.itable_blocks {
                mark(it + k);
            }
        }
        let count = usize::try_from(count).map_err(|_| FsError::IO)?;
        for i in count..bs * 8 {
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
        for i in ipg..bs * 8 {
            set_bit(&mut b, i, true);
        }
        st.gflags[g].0 &= !BG_INODE_UNINIT;
        Ok(b)
    }

    fn group_of_block(&self, blk: u64) -> usize {
        usize_from(blk.saturating_sub(self.geo.first_data_block) / self.geo.bpg)
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
        let g0 = self.group_of_block(goal).min(ngroups - 1);
        for k in 0..=ngroups {
            let g = (g0 + k) % ngroups;
            if st.counts[g].0 == 0 {
                continue;
            }
            let (first, count) = self.geo.group_range(g);
            let bmp_blk = self.geo.groups[g].0;
            let mut bmp = self.block_bitmap(st, g)?;
            let start = if k == 0 { usize_from(goal - first) } else { 0 };
            let count = usize_from(count);
            let pending = &st.pending_free;
            let skip = |i: usize| pending.contains(&(first + u64_from(i)));
            let found = find_clear(&bmp, start, count, skip)
                .or_else(|| find_clear(&bmp, 0, start.min(count), skip));
            let Some(i) = found else { continue };
            // `len` counts in both widths: the bitmap index and the
            // group's 32-bit free count it may not exceed.
            let (mut len, mut n) = (0usize, 0u32);
            while u64::from(n) < max
                && i + len < count
                && !bit(&bmp, i + len)
                && !skip(i + len)
                && n < st.counts[g].0
            {
                set_bit(&mut bmp, i + len, true);
                len += 1;
                n += 1;
            }
            self.put(bmp_blk, bmp)?;
            st.counts[g].0 -= n;
            st.free_blocks -= u64::from(n);
            st.dirty_groups.insert(g);
            let blk = first + u64_from(i);
            st.block_hint = blk + u64::from(n);
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
        let mut b = blk;
        while b < blk + len {
            if b < self.geo.first_data_block || b >= self.geo.blocks_count {
                return Err(FsError::IO);
            }
            let g = self.group_of_block(b);
            let (first, count) = self.geo.group_range(g);
            let bmp_blk = self.geo.groups[g].0;
            let mut bmp = self.get(bmp_blk)?;
            let mut n = 0u32;
            while b < blk + len && b < first + count {
                let i = usize_from(b - first);
                if bit(&bmp, i) {
                    set_bit(&mut bmp, i, false);
                    n += 1;
                    st.pending_free.insert(b);
                }
                b += 1;
            }
            self.put(bmp_blk, bmp)?;
            st.counts[g].0 += n;
            st.free_blocks += u64::from(n);
            st.dirty_groups.insert(g);
        }
        Ok(())
    }

    /// Allocates an inode for a child of `parent`.
    pub(crate) fn alloc_inode(&self, st: &mut State, parent: u32, dir: bool) -> WResult<u32> {
        let ngroups = self.geo.groups.len();
        let pg = idx((parent.max(1) - 1) / self.geo.ipg) % ngroups;
        let g0 = if dir {
            // Spread directories: the group with the most free inodes.
            (0..ngroups)
                .max_by_key(|&g| (st.counts[g].1, std::cmp::Reverse(g)))
                .unwrap_or(pg)
        } else {
            pg
        };
        for k in 0..ngroups {
            let g = (g0 + k) % ngroups;
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
            let first_ok = idx(self.geo.first_ino.saturating_sub(base + 1));
            let limit = idx(self.geo.inodes_count.saturating_sub(base).min(self.geo.ipg));
            let Some(i) = find_clear(&bmp, first_ok.min(limit), limit, |_| false) else {
                continue;
            };
            set_bit(&mut bmp, i, true);
            self.put(bmp_blk, bmp)?;
            let n = u32::try_from(i + 1).map_err(|_| FsError::IO)?;
            if self.geo.uninit() {
                // ext4's __ext4_new_inode: the group's block bitmap is
                // initialized too, and the used part of the inode table
                // grows to cover the new inode.
                if st.gflags[g].0 & BG_BLOCK_UNINIT != 0 {
                    let bb = self.block_bitmap(st, g)?;
                    self.put(self.geo.groups[g].0, bb)?;
                }
                let used = self.geo.ipg - st.gflags[g].1;
                if was_uninit || n > used {
                    st.gflags[g].1 = self.geo.ipg - n;
                }
            }
            st.counts[g].1 -= 1;
            st.free_inodes -= 1;
            if dir {
                st.counts[g].2 += 1;
            }
            st.dirty_groups.insert(g);
            return Ok(base + n);
        }
        Err(FsError::NoSpace)
    }

    /// Marks inode `ino` free.
    pub(crate) fn free_inode(&self, st: &mut State, ino: u32, dir: bool) -> WResult<()> {
        let g = idx((ino - 1) / self.geo.ipg);
        let i = idx((ino - 1) % self.geo.ipg);
        let bmp_blk = self.geo.groups[g].1;
        let mut bmp = self.get(bmp_blk)?;
        if !bit(&bmp, i) {
            return Err(FsError::IO);
        }
        set_bit(&mut bmp, i, false);
        self.put(bmp_blk, bmp)?;
        st.counts[g].1 += 1;
        st.free_inodes += 1;
        if dir {
            st.counts[g].2 = st.counts[g].2.saturating_sub(1);
        }
        st.dirty_groups.insert(g);
        Ok(())
    }

    /// The first block of the inode's group (an allocation goal).
    pub(crate) fn inode_goal(&self, ino: u32) -> u64 {
        let g = idx((ino.max(1) - 1) / self.geo.ipg);
        self.geo.group_range(g).0
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
