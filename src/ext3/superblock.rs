//! The ext2/3/4 superblock (`struct ext4_super_block`): 1024 bytes at byte
//! 1024 of the device. Offsets and names follow
//! Documentation/filesystems/ext4/super.rst.

use super::bytes::{bytes_at, cstr, le16, le32, lo_hi, u8_at};
use super::error::Corrupt;
use super::features::{Compat, Incompat, RoCompat};
use super::journal::crc::crc32c;

/// Byte offset of the primary superblock on the device.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of the superblock.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// `s_magic`.
pub const EXT2_MAGIC: u16 = 0xEF53;
/// `s_state` bit: cleanly unmounted.
pub const STATE_VALID: u16 = 0x0001;
/// `s_state` bit: errors detected.
pub const STATE_ERROR: u16 = 0x0002;

/// Byte offsets of the fields of the superblock (`struct ext4_super_block`), with their C names: the
/// one declaration that the parser and the writer both use.
pub mod field {
    /// `s_inodes_count`
    pub const S_INODES_COUNT: usize = 0x00;
    /// `s_blocks_count_lo`
    pub const S_BLOCKS_COUNT_LO: usize = 0x04;
    /// `s_r_blocks_count_lo`
    pub const S_R_BLOCKS_COUNT_LO: usize = 0x08;
    /// `s_free_blocks_count_lo`
    pub const S_FREE_BLOCKS_COUNT_LO: usize = 0x0C;
    /// `s_free_inodes_count`
    pub const S_FREE_INODES_COUNT: usize = 0x10;
    /// `s_first_data_block`
    pub const S_FIRST_DATA_BLOCK: usize = 0x14;
    /// `s_log_block_size`
    pub const S_LOG_BLOCK_SIZE: usize = 0x18;
    /// `s_log_cluster_size`
    pub const S_LOG_CLUSTER_SIZE: usize = 0x1C;
    /// `s_blocks_per_group`
    pub const S_BLOCKS_PER_GROUP: usize = 0x20;
    /// `s_inodes_per_group`
    pub const S_INODES_PER_GROUP: usize = 0x28;
    /// `s_mtime`
    pub const S_MTIME: usize = 0x2C;
    /// `s_wtime`
    pub const S_WTIME: usize = 0x30;
    /// `s_mnt_count`
    pub const S_MNT_COUNT: usize = 0x34;
    /// `s_max_mnt_count`
    pub const S_MAX_MNT_COUNT: usize = 0x36;
    /// `s_magic`
    pub const S_MAGIC: usize = 0x38;
    /// `s_state`
    pub const S_STATE: usize = 0x3A;
    /// `s_errors`
    pub const S_ERRORS: usize = 0x3C;
    /// `s_lastcheck`
    pub const S_LASTCHECK: usize = 0x40;
    /// `s_creator_os`
    pub const S_CREATOR_OS: usize = 0x48;
    /// `s_rev_level`
    pub const S_REV_LEVEL: usize = 0x4C;
    /// `s_def_resuid`
    pub const S_DEF_RESUID: usize = 0x50;
    /// `s_def_resgid`
    pub const S_DEF_RESGID: usize = 0x52;
    /// `s_first_ino`
    pub const S_FIRST_INO: usize = 0x54;
    /// `s_inode_size`
    pub const S_INODE_SIZE: usize = 0x58;
    /// `s_feature_compat`
    pub const S_FEATURE_COMPAT: usize = 0x5C;
    /// `s_feature_incompat`
    pub const S_FEATURE_INCOMPAT: usize = 0x60;
    /// `s_feature_ro_compat`
    pub const S_FEATURE_RO_COMPAT: usize = 0x64;
    /// `s_uuid[16]`
    pub const S_UUID: usize = 0x68;
    /// `s_volume_name[16]`
    pub const S_VOLUME_NAME: usize = 0x78;
    /// `s_last_mounted[64]`
    pub const S_LAST_MOUNTED: usize = 0x88;
    /// `s_reserved_gdt_blocks`
    pub const S_RESERVED_GDT_BLOCKS: usize = 0xCE;
    /// `s_journal_inum`
    pub const S_JOURNAL_INUM: usize = 0xE0;
    /// `s_journal_dev`
    pub const S_JOURNAL_DEV: usize = 0xE4;
    /// `s_last_orphan`
    pub const S_LAST_ORPHAN: usize = 0xE8;
    /// `s_hash_seed[4]`
    pub const S_HASH_SEED: usize = 0xEC;
    /// `s_def_hash_version`
    pub const S_DEF_HASH_VERSION: usize = 0xFC;
    /// `s_desc_size`
    pub const S_DESC_SIZE: usize = 0xFE;
    /// `s_first_meta_bg`
    pub const S_FIRST_META_BG: usize = 0x104;
    /// `s_mkfs_time`
    pub const S_MKFS_TIME: usize = 0x108;
    /// `s_blocks_count_hi`
    pub const S_BLOCKS_COUNT_HI: usize = 0x150;
    /// `s_r_blocks_count_hi`
    pub const S_R_BLOCKS_COUNT_HI: usize = 0x154;
    /// `s_free_blocks_count_hi`
    pub const S_FREE_BLOCKS_COUNT_HI: usize = 0x158;
    /// `s_min_extra_isize`
    pub const S_MIN_EXTRA_ISIZE: usize = 0x15C;
    /// `s_want_extra_isize`
    pub const S_WANT_EXTRA_ISIZE: usize = 0x15E;
    /// `s_flags`
    pub const S_FLAGS: usize = 0x160;
    /// `s_log_groups_per_flex`
    pub const S_LOG_GROUPS_PER_FLEX: usize = 0x174;
    /// `s_checksum_type`
    pub const S_CHECKSUM_TYPE: usize = 0x175;
    /// `s_checksum_seed`
    pub const S_CHECKSUM_SEED: usize = 0x270;
    /// `s_orphan_file_inum`
    pub const S_ORPHAN_FILE_INUM: usize = 0x280;
    /// `s_checksum`
    pub const S_CHECKSUM: usize = 0x3FC;
}

/// The fields of the superblock that the reader and `uml_fs info` use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// 0x00
    pub s_inodes_count: u32,
    /// 0x04 + 0x150 (`_hi` only with 64bit)
    pub s_blocks_count: u64,
    /// 0x08 + 0x154
    pub s_r_blocks_count: u64,
    /// 0x0C + 0x158
    pub s_free_blocks_count: u64,
    /// 0x10
    pub s_free_inodes_count: u32,
    /// 0x14
    pub s_first_data_block: u32,
    /// 0x18: block size is `1024 << s_log_block_size`.
    pub s_log_block_size: u32,
    /// 0x1C
    pub s_log_cluster_size: u32,
    /// 0x20
    pub s_blocks_per_group: u32,
    /// 0x28
    pub s_inodes_per_group: u32,
    /// 0x2C
    pub s_mtime: u32,
    /// 0x30
    pub s_wtime: u32,
    /// 0x34
    pub s_mnt_count: u16,
    /// 0x36
    pub s_max_mnt_count: i16,
    /// 0x3A
    pub s_state: u16,
    /// 0x3C
    pub s_errors: u16,
    /// 0x40
    pub s_lastcheck: u32,
    /// 0x48
    pub s_creator_os: u32,
    /// 0x4C
    pub s_rev_level: u32,
    /// 0x50
    pub s_def_resuid: u16,
    /// 0x52
    pub s_def_resgid: u16,
    /// 0x54 (11 for revision 0)
    pub s_first_ino: u32,
    /// 0x58 (128 for revision 0)
    pub s_inode_size: u16,
    /// 0x5C
    pub s_feature_compat: Compat,
    /// 0x60
    pub s_feature_incompat: Incompat,
    /// 0x64
    pub s_feature_ro_compat: RoCompat,
    /// 0x68
    pub s_uuid: [u8; 16],
    /// 0x78
    pub s_volume_name: Vec<u8>,
    /// 0x88
    pub s_last_mounted: Vec<u8>,
    /// 0xCE
    pub s_reserved_gdt_blocks: u16,
    /// 0xE0
    pub s_journal_inum: u32,
    /// 0xE4
    pub s_journal_dev: u32,
    /// 0xE8
    pub s_last_orphan: u32,
    /// 0xEC
    pub s_hash_seed: [u8; 16],
    /// 0xFC
    pub s_def_hash_version: u8,
    /// 0xFE (32 unless 64bit)
    pub s_desc_size: u16,
    /// 0x104
    pub s_first_meta_bg: u32,
    /// 0x108
    pub s_mkfs_time: u32,
    /// 0x15C
    pub s_min_extra_isize: u16,
    /// 0x15E
    pub s_want_extra_isize: u16,
    /// 0x160
    pub s_flags: u32,
    /// 0x174
    pub s_log_groups_per_flex: u8,
    /// 0x175
    pub s_checksum_type: u8,
    /// 0x270: the checksum seed (metadata_csum_seed only).
    pub s_checksum_seed: u32,
    /// 0x3FC: CRC32C of the superblock (metadata_csum).
    pub s_checksum: u32,
}

impl Superblock {
    /// Parses and validates the 1024 bytes of a superblock.
    pub fn parse(b: &[u8]) -> Result<Superblock, Corrupt> {
        use field::*;
        if b.len() < SUPERBLOCK_SIZE {
            return Err(Corrupt::TooShort {
                structure: "superblock",
                len: b.len(),
                want: SUPERBLOCK_SIZE,
            });
        }
        let magic = le16(b, S_MAGIC);
        if magic != EXT2_MAGIC {
            return Err(Corrupt::NotExt(magic));
        }
        let incompat = Incompat(le32(b, S_FEATURE_INCOMPAT));
        let is64 = incompat.contains(Incompat::BIT64);
        let hi = |off| if is64 { le32(b, off) } else { 0 };
        let rev = le32(b, S_REV_LEVEL);
        let sb = Superblock {
            s_inodes_count: le32(b, S_INODES_COUNT),
            s_blocks_count: lo_hi(le32(b, S_BLOCKS_COUNT_LO), hi(S_BLOCKS_COUNT_HI)),
            s_r_blocks_count: lo_hi(le32(b, S_R_BLOCKS_COUNT_LO), hi(S_R_BLOCKS_COUNT_HI)),
            s_free_blocks_count: lo_hi(le32(b, S_FREE_BLOCKS_COUNT_LO), hi(S_FREE_BLOCKS_COUNT_HI)),
            s_free_inodes_count: le32(b, S_FREE_INODES_COUNT),
            s_first_data_block: le32(b, S_FIRST_DATA_BLOCK),
            s_log_block_size: le32(b, S_LOG_BLOCK_SIZE),
            s_log_cluster_size: le32(b, S_LOG_CLUSTER_SIZE),
            s_blocks_per_group: le32(b, S_BLOCKS_PER_GROUP),
            s_inodes_per_group: le32(b, S_INODES_PER_GROUP),
            s_mtime: le32(b, S_MTIME),
            s_wtime: le32(b, S_WTIME),
            s_mnt_count: le16(b, S_MNT_COUNT),
            s_max_mnt_count: i16::from_le_bytes(bytes_at(b, S_MAX_MNT_COUNT)),
            s_state: le16(b, S_STATE),
            s_errors: le16(b, S_ERRORS),
            s_lastcheck: le32(b, S_LASTCHECK),
            s_creator_os: le32(b, S_CREATOR_OS),
            s_rev_level: rev,
            s_def_resuid: le16(b, S_DEF_RESUID),
            s_def_resgid: le16(b, S_DEF_RESGID),
            s_first_ino: if rev == 0 { 11 } else { le32(b, S_FIRST_INO) },
            s_inode_size: if rev == 0 { 128 } else { le16(b, S_INODE_SIZE) },
            s_feature_compat: Compat(le32(b, S_FEATURE_COMPAT)),
            s_feature_incompat: incompat,
            s_feature_ro_compat: RoCompat(le32(b, S_FEATURE_RO_COMPAT)),
            s_uuid: bytes_at(b, S_UUID),
            s_volume_name: cstr(&b[S_VOLUME_NAME..S_VOLUME_NAME + 16]).to_vec(),
            s_last_mounted: cstr(&b[S_LAST_MOUNTED..S_LAST_MOUNTED + 64]).to_vec(),
            s_reserved_gdt_blocks: le16(b, S_RESERVED_GDT_BLOCKS),
            s_journal_inum: le32(b, S_JOURNAL_INUM),
            s_journal_dev: le32(b, S_JOURNAL_DEV),
            s_last_orphan: le32(b, S_LAST_ORPHAN),
            s_hash_seed: bytes_at(b, S_HASH_SEED),
            s_def_hash_version: u8_at(b, S_DEF_HASH_VERSION),
            s_desc_size: if is64 { le16(b, S_DESC_SIZE) } else { 32 },
            s_first_meta_bg: le32(b, S_FIRST_META_BG),
            s_mkfs_time: le32(b, S_MKFS_TIME),
            s_min_extra_isize: le16(b, S_MIN_EXTRA_ISIZE),
            s_want_extra_isize: le16(b, S_WANT_EXTRA_ISIZE),
            s_flags: le32(b, S_FLAGS),
            s_log_groups_per_flex: u8_at(b, S_LOG_GROUPS_PER_FLEX),
            s_checksum_type: u8_at(b, S_CHECKSUM_TYPE),
            s_checksum_seed: le32(b, S_CHECKSUM_SEED),
            s_checksum: le32(b, S_CHECKSUM),
        };
        sb.validate()?;
        if sb.has_metadata_csum() {
            let want = crc32c(!0, &b[..S_CHECKSUM]);
            if want != sb.s_checksum {
                return Err(Corrupt::Checksum {
                    structure: "superblock",
                    stored: sb.s_checksum,
                    computed: want,
                });
            }
        }
        Ok(sb)
    }

    fn validate(&self) -> Result<(), Corrupt> {
        // 1 KiB .. 64 KiB blocks (ext4 allows s_log_block_size up to 6).
        if self.s_log_block_size > 6 {
            return Err(Corrupt::BadField {
                field: "s_log_block_size",
                value: u64::from(self.s_log_block_size),
            });
        }
        if self.s_blocks_per_group == 0 || self.s_inodes_per_group == 0 {
            return Err(Corrupt::BadField {
                field: "s_blocks_per_group or s_inodes_per_group",
                value: 0,
            });
        }
        // One bitmap block covers a group's clusters (blocks without bigalloc).
        let bigalloc = self.s_feature_ro_compat.contains(RoCompat::BIGALLOC);
        let cluster_log = if bigalloc {
            self.s_log_cluster_size
                .saturating_sub(self.s_log_block_size)
        } else {
            0
        };
        if cluster_log > 16 {
            return Err(Corrupt::BadField {
                field: "s_log_cluster_size",
                value: u64::from(self.s_log_cluster_size),
            });
        }
        let max_bpg = (u64::from(self.block_size()) * 8) << cluster_log;
        if u64::from(self.s_blocks_per_group) > max_bpg {
            return Err(Corrupt::BadField {
                field: "s_blocks_per_group",
                value: u64::from(self.s_blocks_per_group),
            });
        }
        if self.s_inodes_per_group > self.block_size().saturating_mul(8) {
            return Err(Corrupt::BadField {
                field: "s_inodes_per_group",
                value: u64::from(self.s_inodes_per_group),
            });
        }
        let isz = u32::from(self.s_inode_size);
        if isz < 128 || !isz.is_power_of_two() || isz > self.block_size() {
            return Err(Corrupt::BadField {
                field: "s_inode_size",
                value: u64::from(isz),
            });
        }
        if u64::from(self.s_first_data_block) >= self.s_blocks_count {
            return Err(Corrupt::BadField {
                field: "s_first_data_block",
                value: u64::from(self.s_first_data_block),
            });
        }
        let ds = self.s_desc_size;
        if self.s_feature_incompat.contains(Incompat::BIT64)
            && (!(32..=1024).contains(&ds) || !ds.is_power_of_two())
        {
            return Err(Corrupt::BadField {
                field: "s_desc_size",
                value: u64::from(ds),
            });
        }
        let groups = self.group_count();
        let want = u64::from(self.s_inodes_per_group).checked_mul(groups);
        if want.is_none_or(|w| w < u64::from(self.s_inodes_count)) {
            return Err(Corrupt::BadField {
                field: "s_inodes_count",
                value: u64::from(self.s_inodes_count),
            });
        }
        if self.s_first_ino < 3 || self.s_first_ino > self.s_inodes_count {
            return Err(Corrupt::BadField {
                field: "s_first_ino",
                value: u64::from(self.s_first_ino),
            });
        }
        Ok(())
    }

    /// Block size in bytes (1024 to 65536).
    pub fn block_size(&self) -> u32 {
        1024u32 << self.s_log_block_size.min(6)
    }

    /// Number of block groups.
    pub fn group_count(&self) -> u64 {
        let data = self
            .s_blocks_count
            .saturating_sub(u64::from(self.s_first_data_block));
        data.div_ceil(u64::from(self.s_blocks_per_group.max(1)))
    }

    /// Size of one group descriptor in bytes.
    pub fn desc_size(&self) -> usize {
        usize::from(self.s_desc_size.max(32))
    }

    /// True when metadata blocks and inodes carry CRC32C checksums.
    pub fn has_metadata_csum(&self) -> bool {
        self.s_feature_ro_compat.contains(RoCompat::METADATA_CSUM)
    }

    /// The seed of metadata checksums: `s_checksum_seed` with
    /// metadata_csum_seed, else the CRC32C of the UUID.
    pub fn csum_seed(&self) -> u32 {
        if self.s_feature_incompat.contains(Incompat::CSUM_SEED) {
            self.s_checksum_seed
        } else {
            crc32c(!0, &self.s_uuid)
        }
    }

    /// True when the superblock says the journal needs recovery.
    pub fn needs_recovery(&self) -> bool {
        self.s_feature_incompat.contains(Incompat::RECOVER)
    }

    /// True when the filesystem has a journal.
    pub fn has_journal(&self) -> bool {
        self.s_feature_compat.contains(Compat::HAS_JOURNAL)
    }

    /// True when directory entries carry a file type byte.
    pub fn has_filetype(&self) -> bool {
        self.s_feature_incompat.contains(Incompat::FILETYPE)
    }

    /// The volume label, lossily decoded.
    pub fn volume_name(&self) -> String {
        String::from_utf8_lossy(&self.s_volume_name).into_owned()
    }

    /// The UUID in its usual text form.
    pub fn uuid(&self) -> String {
        format_uuid(&self.s_uuid)
    }
}

/// Formats 16 bytes as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn format_uuid(u: &[u8; 16]) -> String {
    let hex: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        hex[0..4].concat(),
        hex[4..6].concat(),
        hex[6..8].concat(),
        hex[8..10].concat(),
        hex[10..16].concat()
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal valid superblock: 1 KiB blocks, 8192 blocks, 2048 inodes.
    pub fn fixture() -> Vec<u8> {
        let mut b = vec![0u8; SUPERBLOCK_SIZE];
        b[0x00..0x04].copy_from_slice(&2048u32.to_le_bytes());
        b[0x04..0x08].copy_from_slice(&8192u32.to_le_bytes());
        b[0x14..0x18].copy_from_slice(&1u32.to_le_bytes());
        b[0x20..0x24].copy_from_slice(&8192u32.to_le_bytes());
        b[0x28..0x2C].copy_from_slice(&2048u32.to_le_bytes());
        b[0x38..0x3A].copy_from_slice(&EXT2_MAGIC.to_le_bytes());
        b[0x4C..0x50].copy_from_slice(&1u32.to_le_bytes());
        b[0x54..0x58].copy_from_slice(&11u32.to_le_bytes());
        b[0x58..0x5A].copy_from_slice(&256u16.to_le_bytes());
        b
    }

    #[test]
    fn parses_a_minimal_superblock() {
        let sb = Superblock::parse(&fixture()).unwrap();
        assert_eq!(sb.block_size(), 1024);
        assert_eq!(sb.group_count(), 1);
        assert_eq!(sb.s_inode_size, 256);
        assert!(!sb.needs_recovery());
    }

    #[test]
    fn rejects_a_bad_magic_and_absurd_geometry() {
        let mut b = fixture();
        b[0x38] = 0;
        assert_eq!(Superblock::parse(&b).unwrap_err(), Corrupt::NotExt(0xEF00));
        assert!(Superblock::parse(&b)
            .unwrap_err()
            .to_string()
            .contains("s_magic"));
        let mut b = fixture();
        b[0x18] = 40;
        assert!(Superblock::parse(&b).is_err());
        let mut b = fixture();
        b[0x28..0x2C].copy_from_slice(&0u32.to_le_bytes());
        assert!(Superblock::parse(&b).is_err());
        let mut b = fixture();
        b[0x00..0x04].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Superblock::parse(&b).is_err());
        assert!(Superblock::parse(&b[..100]).is_err());
    }

    #[test]
    fn uuid_is_formatted_like_dumpe2fs() {
        let u = [
            0x70, 0x87, 0xce, 0xe9, 0x62, 0xe4, 0x47, 0xc6, 0xba, 0xad, 0x38, 0x45, 0x39, 0xf2,
            0xf7, 0x40,
        ];
        assert_eq!(format_uuid(&u), "7087cee9-62e4-47c6-baad-384539f2f740");
    }
}
