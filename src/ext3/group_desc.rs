//! Block group descriptors (`struct ext4_group_desc`, 32 bytes, or
//! `s_desc_size` with 64bit) and where their table lives, classic or
//! meta_bg (Documentation/filesystems/ext4/group_descr.rst, blockgroup.rst).

use super::bytes::{le16, le32, lo_hi};
use super::error::Corrupt;
use super::features::{Incompat, RoCompat};
use super::superblock::Superblock;

/// Byte offsets of the fields of a block group descriptor (`struct ext4_group_desc`), with their C names: the
/// one declaration that the parser and the writer both use.
pub mod field {
    /// `bg_block_bitmap_lo`
    pub const BG_BLOCK_BITMAP_LO: usize = 0x00;
    /// `bg_inode_bitmap_lo`
    pub const BG_INODE_BITMAP_LO: usize = 0x04;
    /// `bg_inode_table_lo`
    pub const BG_INODE_TABLE_LO: usize = 0x08;
    /// `bg_free_blocks_count_lo`
    pub const BG_FREE_BLOCKS_COUNT_LO: usize = 0x0C;
    /// `bg_free_inodes_count_lo`
    pub const BG_FREE_INODES_COUNT_LO: usize = 0x0E;
    /// `bg_used_dirs_count_lo`
    pub const BG_USED_DIRS_COUNT_LO: usize = 0x10;
    /// `bg_flags`
    pub const BG_FLAGS: usize = 0x12;
    /// `bg_itable_unused_lo`
    pub const BG_ITABLE_UNUSED_LO: usize = 0x1C;
    /// `bg_checksum`
    pub const BG_CHECKSUM: usize = 0x1E;
    /// `bg_block_bitmap_hi`
    pub const BG_BLOCK_BITMAP_HI: usize = 0x20;
    /// `bg_inode_bitmap_hi`
    pub const BG_INODE_BITMAP_HI: usize = 0x24;
    /// `bg_inode_table_hi`
    pub const BG_INODE_TABLE_HI: usize = 0x28;
    /// `bg_free_blocks_count_hi`
    pub const BG_FREE_BLOCKS_COUNT_HI: usize = 0x2C;
    /// `bg_free_inodes_count_hi`
    pub const BG_FREE_INODES_COUNT_HI: usize = 0x2E;
    /// `bg_used_dirs_count_hi`
    pub const BG_USED_DIRS_COUNT_HI: usize = 0x30;
    /// `bg_itable_unused_hi`
    pub const BG_ITABLE_UNUSED_HI: usize = 0x32;
}

/// One group's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupDesc {
    /// 0x00 + 0x20
    pub bg_block_bitmap: u64,
    /// 0x04 + 0x24
    pub bg_inode_bitmap: u64,
    /// 0x08 + 0x28
    pub bg_inode_table: u64,
    /// 0x0C + 0x2C
    pub bg_free_blocks_count: u32,
    /// 0x0E + 0x2E
    pub bg_free_inodes_count: u32,
    /// 0x10 + 0x30
    pub bg_used_dirs_count: u32,
    /// 0x12
    pub bg_flags: u16,
    /// 0x1C + 0x32
    pub bg_itable_unused: u32,
    /// 0x1E
    pub bg_checksum: u16,
}

/// `bg_flags`: the inode table and bitmap are not initialized.
pub const BG_INODE_UNINIT: u16 = 0x1;

impl GroupDesc {
    /// Parses one descriptor of `desc_size` bytes; the `_hi` halves are read
    /// only when `is64` (64bit feature and a descriptor of 64 bytes or more).
    pub fn parse(b: &[u8], is64: bool) -> Result<GroupDesc, Corrupt> {
        use field::*;
        let need = if is64 { 64 } else { 32 };
        if b.len() < need {
            return Err(Corrupt::TooShort {
                structure: "group descriptor",
                len: b.len(),
                want: need,
            });
        }
        let hi32 = |off| if is64 { le32(b, off) } else { 0 };
        let hi16 = |off| if is64 { u32::from(le16(b, off)) } else { 0 };
        Ok(GroupDesc {
            bg_block_bitmap: lo_hi(le32(b, BG_BLOCK_BITMAP_LO), hi32(BG_BLOCK_BITMAP_HI)),
            bg_inode_bitmap: lo_hi(le32(b, BG_INODE_BITMAP_LO), hi32(BG_INODE_BITMAP_HI)),
            bg_inode_table: lo_hi(le32(b, BG_INODE_TABLE_LO), hi32(BG_INODE_TABLE_HI)),
            bg_free_blocks_count: u32::from(le16(b, BG_FREE_BLOCKS_COUNT_LO))
                | (hi16(BG_FREE_BLOCKS_COUNT_HI) << 16),
            bg_free_inodes_count: u32::from(le16(b, BG_FREE_INODES_COUNT_LO))
                | (hi16(BG_FREE_INODES_COUNT_HI) << 16),
            bg_used_dirs_count: u32::from(le16(b, BG_USED_DIRS_COUNT_LO))
                | (hi16(BG_USED_DIRS_COUNT_HI) << 16),
            bg_flags: le16(b, BG_FLAGS),
            bg_itable_unused: u32::from(le16(b, BG_ITABLE_UNUSED_LO))
                | (hi16(BG_ITABLE_UNUSED_HI) << 16),
            bg_checksum: le16(b, BG_CHECKSUM),
        })
    }
}

/// True when the 64-bit descriptor halves are present.
pub fn descs_are_64bit(sb: &Superblock) -> bool {
    sb.s_feature_incompat.contains(Incompat::BIT64) && sb.desc_size() >= 64
}

/// True when group `g` holds a superblock backup (sparse_super: groups 0, 1
/// and powers of 3, 5 and 7).
pub fn group_has_super(sb: &Superblock, g: u64) -> bool {
    if g <= 1 || !sb.s_feature_ro_compat.contains(RoCompat::SPARSE_SUPER) {
        return true;
    }
    [3u64, 5, 7].iter().any(|&base| {
        let mut p = base;
        while p < g {
            match p.checked_mul(base) {
                Some(n) => p = n,
                None => return false,
            }
        }
        p == g
    })
}

/// The first block of group `g`.
pub fn group_first_block(sb: &Superblock, g: u64) -> Option<u64> {
    g.checked_mul(u64::from(sb.s_blocks_per_group))?
        .checked_add(u64::from(sb.s_first_data_block))
}

/// The device block holding the `i`-th block of the descriptor table
/// (classic layout right after the superblock; meta_bg puts each later
/// table block in the first group of its meta group).
pub fn desc_table_block(sb: &Superblock, i: u64) -> Option<u64> {
    let mut first = u64::from(sb.s_first_data_block);
    // bigalloc with 1 KiB blocks has s_first_data_block 0 although the
    // superblock is in block 1 (as e2fsprogs' ext2fs_descriptor_block_loc2).
    if first == 0 && sb.block_size() == 1024 {
        first = 1;
    }
    let meta_bg = sb.s_feature_incompat.contains(Incompat::META_BG);
    if !meta_bg || i < u64::from(sb.s_first_meta_bg) {
        return first.checked_add(1)?.checked_add(i);
    }
    let per_block = u64::from(sb.block_size())
        .checked_div(super::bytes::u64_from(sb.desc_size()))
        .unwrap_or(0);
    let g = i.checked_mul(per_block)?;
    let has_super = u64::from(group_has_super(sb, g));
    group_first_block(sb, g)?.checked_add(has_super)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_32_and_64_byte_descriptors() {
        let mut b = vec![0u8; 64];
        b[0x08..0x0C].copy_from_slice(&100u32.to_le_bytes());
        b[0x28..0x2C].copy_from_slice(&1u32.to_le_bytes());
        b[0x0E..0x10].copy_from_slice(&7u16.to_le_bytes());
        assert_eq!(
            GroupDesc::parse(&b[..32], false).unwrap().bg_inode_table,
            100
        );
        assert_eq!(
            GroupDesc::parse(&b, true).unwrap().bg_inode_table,
            (1 << 32) + 100
        );
        assert_eq!(GroupDesc::parse(&b, true).unwrap().bg_free_inodes_count, 7);
        assert!(GroupDesc::parse(&b[..40], true).is_err());
    }

    #[test]
    fn sparse_super_backups_are_in_powers_of_3_5_7() {
        let mut raw = super::super::superblock::tests::fixture();
        raw[0x64] = 1; // sparse_super
        let sb = Superblock::parse(&raw).unwrap();
        let with: Vec<u64> = (0..50).filter(|&g| group_has_super(&sb, g)).collect();
        assert_eq!(with, vec![0, 1, 3, 5, 7, 9, 25, 27, 49]);
    }
}
