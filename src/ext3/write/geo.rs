//! The writer's fixed geometry: block size, group layout, where each
//! group's bitmaps, inode table and descriptor are, worked out once at open
//! from the superblock and descriptors the reader validated. Sums and
//! products of on-disk fields that do not fit are a corrupt superblock
//! here, so the writer's block arithmetic can lean on the bounds (every
//! group lies inside the filesystem, whose byte size fits the device).

use super::{csum, idx, WResult};
use crate::block::{u64_from, usize_from};
use crate::ext3::bytes::lo32;
use crate::ext3::features::{Incompat, RoCompat};
use crate::ext3::group_desc::{desc_table_block, group_has_super, GroupDesc};
use crate::ext3::superblock::{Superblock, SUPERBLOCK_OFFSET};
use crate::ext3::types::BlockIndex;
use crate::ext3::{Corrupt, Error, Result};
use crate::fs::Error as FsError;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};

/// Fixed geometry of the filesystem.
#[derive(Debug, Clone)]
pub(crate) struct Geo {
    pub bs: u64,
    pub blocks_count: u64,
    pub first_data_block: u64,
    pub bpg: u64,
    pub ipg: u32,
    pub inodes_count: u32,
    pub inode_size: usize,
    pub first_ino: u32,
    pub filetype: bool,
    pub extra_isize: u16,
    pub r_blocks: u64,
    /// Per group: (block bitmap, inode bitmap, inode table).
    pub groups: Vec<(u64, u64, u64)>,
    /// Per group: (first block, number of blocks).
    pub ranges: Vec<(u64, u64)>,
    /// Per group: (descriptor table block, byte offset in it).
    pub desc_at: Vec<(u64, usize)>,
    /// Bytes of one group descriptor (32, or `s_desc_size` with 64bit).
    pub desc_size: usize,
    /// 64bit: the `_hi` halves of counts and block numbers exist.
    pub is64: bool,
    /// metadata_csum: the checksum seed.
    pub csum: Option<u32>,
    /// How group descriptors are checksummed (uninit_bg or metadata_csum
    /// also mean the `_UNINIT` flags and `bg_itable_unused` are kept).
    pub gd_csum: csum::GdCsum,
    /// Per group: blocks at its start holding a superblock backup and the
    /// descriptor table (with its reserved blocks), 0 when none.
    pub sb_blocks: Vec<u64>,
    /// Blocks of one group's inode table.
    pub itable_blocks: u64,
    /// extent: new files and directories are extent-mapped.
    pub extents: bool,
}

impl Geo {
    /// The writer's geometry from a superblock the reader validated and
    /// its group descriptors; sums and products of on-disk fields that do
    /// not fit are a corrupt superblock.
    pub fn new(sb: &Superblock, descs: &[GroupDesc]) -> Result<Self> {
        let bad = |field: &'static str, value: u64| {
            Error::corrupt("superblock", Corrupt::BadField { field, value })
        };
        let bs = sb.block_size();
        let ngroups = u64_from(descs.len());
        let desc_size = sb.desc_size();
        // desc_size() is 32 to 1024 and the block 1 KiB or more.
        let per = NonZeroUsize::new(idx(bs).checked_div(desc_size).unwrap_or(1))
            .unwrap_or(NonZeroUsize::MIN);
        let mut desc_at = Vec::with_capacity(descs.len());
        for g in 0..descs.len() {
            let table = u64_from(g / per);
            let blk = desc_table_block(sb, table)
                .ok_or_else(|| bad("group descriptor table number", table))?;
            // Below per * desc_size <= bs.
            let off = (g % per).saturating_mul(desc_size);
            desc_at.push((blk, off));
        }
        let desc_blocks = ngroups
            .checked_mul(u64_from(desc_size))
            .ok_or_else(|| bad("s_blocks_count", sb.s_blocks_count))?
            .div_ceil(u64::from(bs));
        let mut sb_blocks = Vec::with_capacity(descs.len());
        for g in 0..ngroups {
            sb_blocks.push(if group_has_super(sb, g) {
                desc_blocks
                    .checked_add(1)
                    .and_then(|n| n.checked_add(u64::from(sb.s_reserved_gdt_blocks)))
                    .ok_or_else(|| {
                        bad("s_reserved_gdt_blocks", u64::from(sb.s_reserved_gdt_blocks))
                    })?
            } else {
                0
            });
        }
        let first_data_block = u64::from(sb.s_first_data_block);
        let bpg = u64::from(sb.s_blocks_per_group);
        let mut ranges = Vec::with_capacity(descs.len());
        for g in 0..ngroups {
            // The group count is (s_blocks_count - s_first_data_block) /
            // s_blocks_per_group rounded up, so every group starts inside.
            let first = g
                .checked_mul(bpg)
                .and_then(|n| n.checked_add(first_data_block))
                .filter(|&f| f < sb.s_blocks_count)
                .ok_or_else(|| bad("s_blocks_per_group", bpg))?;
            let left = sb.s_blocks_count.saturating_sub(first);
            ranges.push((first, left.min(bpg)));
        }
        Ok(Geo {
            bs: u64::from(bs),
            blocks_count: sb.s_blocks_count,
            first_data_block,
            bpg,
            ipg: sb.s_inodes_per_group,
            inodes_count: sb.s_inodes_count,
            inode_size: usize::from(sb.s_inode_size),
            first_ino: sb.s_first_ino,
            filetype: sb.has_filetype(),
            // Inside the large record, as ext4_fill_super picks it.
            extra_isize: match sb.s_inode_size.checked_sub(128) {
                Some(room) if room > 0 => sb.s_want_extra_isize.clamp(4, 32).max(32.min(room)),
                _ => 0,
            },
            r_blocks: sb.s_r_blocks_count,
            groups: descs
                .iter()
                .map(|g| (g.bg_block_bitmap, g.bg_inode_bitmap, g.bg_inode_table))
                .collect(),
            ranges,
            desc_at,
            desc_size,
            is64: sb.s_feature_incompat.contains(Incompat::BIT64),
            csum: sb.has_metadata_csum().then(|| sb.csum_seed()),
            gd_csum: if sb.has_metadata_csum() {
                csum::GdCsum::Crc32c
            } else if sb.s_feature_ro_compat.contains(RoCompat::GDT_CSUM) {
                csum::GdCsum::Crc16(sb.s_uuid)
            } else {
                csum::GdCsum::None
            },
            sb_blocks,
            extents: sb.s_feature_incompat.contains(Incompat::EXTENTS),
            // Below 2^32 * 2^16: no overflow in u64.
            itable_blocks: u64::from(sb.s_inodes_per_group)
                .saturating_mul(u64::from(sb.s_inode_size))
                .div_ceil(u64::from(bs)),
        })
    }

    /// The block size as a buffer length (1 KiB to 64 KiB: the superblock
    /// check bounds `s_log_block_size`).
    pub fn bsz(&self) -> usize {
        usize_from(self.bs)
    }
    /// The block size as a divisor.
    pub fn bs_nz(&self) -> NonZeroU64 {
        NonZeroU64::new(self.bs).unwrap_or(NonZeroU64::MIN)
    }
    /// The byte offset of block `blk` on the device (a block past the end
    /// of the filesystem is corrupt metadata; below it, the offset fits:
    /// the reader checked that the filesystem fits the device).
    pub fn byte_of(&self, blk: u64) -> WResult<u64> {
        if blk >= self.blocks_count {
            return Err(FsError::CORRUPT.at_block(blk));
        }
        BlockIndex(blk)
            .byte_offset(lo32(self.bs))
            .ok_or(FsError::CORRUPT.at_block(blk))
    }
    pub fn sb_block(&self) -> (u64, usize) {
        let bs = self.bs_nz();
        (SUPERBLOCK_OFFSET / bs, usize_from(SUPERBLOCK_OFFSET % bs))
    }
    /// (first block, number of blocks) of group `g` (`g` below the group
    /// count, so the range lies inside the filesystem).
    pub fn group_range(&self, g: usize) -> (u64, u64) {
        self.ranges
            .get(g)
            .copied()
            .unwrap_or((self.blocks_count, 0))
    }
    /// Block and byte offset of inode `ino`'s record (`ino` from 1 to
    /// `s_inodes_count`, which the superblock check bounds by the groups).
    pub fn inode_at(&self, ino: u32) -> WResult<(u64, usize)> {
        let bad = || FsError::CORRUPT.at_ino(ino);
        let n = ino.checked_sub(1).ok_or_else(bad)?;
        let ipg = NonZeroU32::new(self.ipg).ok_or_else(bad)?;
        let &(_, _, table) = self.groups.get(idx(n / ipg)).ok_or_else(bad)?;
        // Below ipg * inode_size <= 8 * bs * bs: no overflow in u64.
        let byte = u64::from(n % ipg)
            .checked_mul(u64_from(self.inode_size))
            .ok_or_else(bad)?;
        let bs = self.bs_nz();
        let blk = table.checked_add(byte / bs).ok_or_else(bad)?;
        // The record is a power of two no larger than the block, and
        // `byte` is a multiple of it: it ends inside the block.
        Ok((blk, usize_from(byte % bs)))
    }
    /// The group of inode `ino` (group 0 for inode 0).
    pub fn group_of_ino(&self, ino: u32) -> usize {
        let ipg = NonZeroU32::new(self.ipg).unwrap_or(NonZeroU32::MIN);
        idx(ino.saturating_sub(1) / ipg)
    }
    /// Bytes of a directory block before its checksum tail.
    pub fn dir_end(&self) -> usize {
        // Blocks are at least 1 KiB, far above the 12-byte tail.
        let bs = self.bsz();
        if self.csum.is_some() {
            bs.saturating_sub(12)
        } else {
            bs
        }
    }
    /// True when groups carry `_UNINIT` flags and `bg_itable_unused`.
    pub fn uninit(&self) -> bool {
        self.gd_csum != csum::GdCsum::None
    }
}
