//! On-disk inodes (`struct ext4_inode`): 128 bytes of classic fields, then
//! `i_extra_isize` bytes of extra fields (nanosecond times, creation time)
//! and in-inode extended attributes up to `s_inode_size`
//! (Documentation/filesystems/ext4/inodes.rst).

use super::bytes::{bytes_at, le16, le32, lo_hi};
use super::error::Corrupt;
pub use crate::fs::{FileType, Timestamp};

/// Inode number of the root directory.
pub const ROOT_INO: u32 = 2;

/// `i_flags`: huge_file, `i_blocks` counts filesystem blocks.
pub const EXT4_HUGE_FILE_FL: u32 = 0x0004_0000;
/// `i_flags`: the file uses extents.
pub const EXT4_EXTENTS_FL: u32 = 0x0008_0000;
/// `i_flags`: the directory is hash-indexed.
pub const EXT4_INDEX_FL: u32 = 0x0000_1000;
/// `i_flags`: the inode holds an extended attribute value.
pub const EXT4_EA_INODE_FL: u32 = 0x0020_0000;
/// `i_flags`: data is stored inline in the inode.
pub const EXT4_INLINE_DATA_FL: u32 = 0x1000_0000;

/// The type of a directory entry's `file_type` byte (`EXT4_FT_*`).
pub fn file_type_from_dirent(t: u8) -> Option<FileType> {
    Some(match t {
        1 => FileType::Regular,
        2 => FileType::Directory,
        3 => FileType::CharDevice,
        4 => FileType::BlockDevice,
        5 => FileType::Fifo,
        6 => FileType::Socket,
        7 => FileType::Symlink,
        _ => return None,
    })
}

/// Decodes a 32-bit seconds field and its optional `_extra` field
/// (low 2 bits: epoch extension; upper 30 bits: nanoseconds).
pub fn decode_timestamp(secs: u32, extra: Option<u32>) -> Timestamp {
    // The 32-bit field is signed (times before 1970).
    let base = i64::from(i32::from_le_bytes(secs.to_le_bytes()));
    match extra {
        None => Timestamp { sec: base, nsec: 0 },
        Some(x) => Timestamp {
            sec: base.saturating_add(i64::from(x & 3) << 32),
            nsec: (x >> 2).min(999_999_999),
        },
    }
}

/// Byte offsets of the fields of an inode record (`struct ext4_inode`), with their C names: the
/// one declaration that the parser and the writer both use.
pub mod field {
    /// Size of a revision-0 inode: the fields below 0x80.
    pub const EXT2_GOOD_OLD_INODE_SIZE: usize = 128;
    /// `i_mode`
    pub const I_MODE: usize = 0x00;
    /// `i_uid`
    pub const I_UID: usize = 0x02;
    /// `i_size_lo`
    pub const I_SIZE_LO: usize = 0x04;
    /// `i_atime`
    pub const I_ATIME: usize = 0x08;
    /// `i_ctime`
    pub const I_CTIME: usize = 0x0C;
    /// `i_mtime`
    pub const I_MTIME: usize = 0x10;
    /// `i_dtime`
    pub const I_DTIME: usize = 0x14;
    /// `i_gid`
    pub const I_GID: usize = 0x18;
    /// `i_links_count`
    pub const I_LINKS_COUNT: usize = 0x1A;
    /// `i_blocks_lo`
    pub const I_BLOCKS_LO: usize = 0x1C;
    /// `i_flags`
    pub const I_FLAGS: usize = 0x20;
    /// `i_block[15]`
    pub const I_BLOCK: usize = 0x28;
    /// `i_generation`
    pub const I_GENERATION: usize = 0x64;
    /// `i_file_acl_lo`
    pub const I_FILE_ACL_LO: usize = 0x68;
    /// `i_size_high`
    pub const I_SIZE_HIGH: usize = 0x6C;
    /// `l_i_blocks_high`
    pub const L_I_BLOCKS_HIGH: usize = 0x74;
    /// `l_i_file_acl_high`
    pub const L_I_FILE_ACL_HIGH: usize = 0x76;
    /// `l_i_uid_high`
    pub const L_I_UID_HIGH: usize = 0x78;
    /// `l_i_gid_high`
    pub const L_I_GID_HIGH: usize = 0x7A;
    /// `l_i_checksum_lo`
    pub const L_I_CHECKSUM_LO: usize = 0x7C;
    /// `i_extra_isize`
    pub const I_EXTRA_ISIZE: usize = 0x80;
    /// `i_checksum_hi`
    pub const I_CHECKSUM_HI: usize = 0x82;
    /// `i_ctime_extra`
    pub const I_CTIME_EXTRA: usize = 0x84;
    /// `i_mtime_extra`
    pub const I_MTIME_EXTRA: usize = 0x88;
    /// `i_atime_extra`
    pub const I_ATIME_EXTRA: usize = 0x8C;
    /// `i_crtime`
    pub const I_CRTIME: usize = 0x90;
    /// `i_crtime_extra`
    pub const I_CRTIME_EXTRA: usize = 0x94;
}

/// A parsed inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    /// 0x00
    pub i_mode: u16,
    /// 0x02 + 0x78
    pub i_uid: u32,
    /// 0x18 + 0x7A
    pub i_gid: u32,
    /// 0x04 + 0x6C
    pub i_size: u64,
    /// 0x08 + 0x8C
    pub i_atime: Timestamp,
    /// 0x0C + 0x84
    pub i_ctime: Timestamp,
    /// 0x10 + 0x88
    pub i_mtime: Timestamp,
    /// 0x90 + 0x94, when the inode is large enough.
    pub i_crtime: Option<Timestamp>,
    /// 0x14
    pub i_dtime: u32,
    /// 0x1A
    pub i_links_count: u16,
    /// 0x1C + 0x74, as stored (see [`Inode::sectors`]).
    pub i_blocks: u64,
    /// 0x20
    pub i_flags: u32,
    /// 0x28: the block map, extent root, symlink target or inline data.
    pub i_block: [u8; 60],
    /// 0x64
    pub i_generation: u32,
    /// 0x68 + 0x76: the extended-attribute block.
    pub i_file_acl: u64,
    /// 0x80
    pub i_extra_isize: u16,
    /// Bytes after the extra fields, where in-inode attributes live.
    pub inline_xattrs: Vec<u8>,
}

impl Inode {
    /// Parses an on-disk inode of `b.len()` bytes (the filesystem's inode
    /// size). `huge_file` says whether the feature is on.
    pub fn parse(b: &[u8], huge_file: bool) -> Result<Inode, Corrupt> {
        use field::*;
        if b.len() < 128 {
            return Err(Corrupt::TooShort {
                structure: "inode record",
                len: b.len(),
                want: EXT2_GOOD_OLD_INODE_SIZE,
            });
        }
        let extra_isize = if b.len() > 128 {
            le16(b, I_EXTRA_ISIZE)
        } else {
            0
        };
        let extra_end = 128usize + usize::from(extra_isize);
        if extra_end > b.len() || extra_isize % 4 != 0 {
            return Err(Corrupt::BadField {
                field: "i_extra_isize",
                value: u64::from(extra_isize),
            });
        }
        // An extra field exists when it ends within 128 + i_extra_isize.
        let extra = |off: usize| (off.saturating_add(4) <= extra_end).then(|| le32(b, off));
        let flags = le32(b, I_FLAGS);
        let blocks = lo_hi(le32(b, I_BLOCKS_LO), u32::from(le16(b, L_I_BLOCKS_HIGH)));
        let i_blocks = if huge_file {
            blocks
        } else {
            blocks & 0xFFFF_FFFF
        };
        Ok(Inode {
            i_mode: le16(b, I_MODE),
            i_uid: u32::from(le16(b, I_UID)) | (u32::from(le16(b, L_I_UID_HIGH)) << 16),
            i_gid: u32::from(le16(b, I_GID)) | (u32::from(le16(b, L_I_GID_HIGH)) << 16),
            i_size: lo_hi(le32(b, I_SIZE_LO), le32(b, I_SIZE_HIGH)),
            i_atime: decode_timestamp(le32(b, I_ATIME), extra(I_ATIME_EXTRA)),
            i_ctime: decode_timestamp(le32(b, I_CTIME), extra(I_CTIME_EXTRA)),
            i_mtime: decode_timestamp(le32(b, I_MTIME), extra(I_MTIME_EXTRA)),
            i_crtime: extra(I_CRTIME).map(|s| decode_timestamp(s, extra(I_CRTIME_EXTRA))),
            i_dtime: le32(b, I_DTIME),
            i_links_count: le16(b, I_LINKS_COUNT),
            i_blocks,
            i_flags: flags,
            i_block: bytes_at(b, I_BLOCK),
            i_generation: le32(b, I_GENERATION),
            i_file_acl: lo_hi(
                le32(b, I_FILE_ACL_LO),
                u32::from(le16(b, L_I_FILE_ACL_HIGH)),
            ),
            i_extra_isize: extra_isize,
            inline_xattrs: b[extra_end..].to_vec(),
        })
    }

    /// The file type, `None` for an invalid `i_mode`.
    pub fn file_type(&self) -> Option<FileType> {
        FileType::from_mode(self.i_mode)
    }

    /// Permission bits including setuid, setgid and sticky.
    pub fn permissions(&self) -> u16 {
        self.i_mode & 0o7777
    }

    /// True when the block map is an extent tree.
    pub fn uses_extents(&self) -> bool {
        self.i_flags & EXT4_EXTENTS_FL != 0
    }

    /// True when the data is stored inline.
    pub fn has_inline_data(&self) -> bool {
        self.i_flags & EXT4_INLINE_DATA_FL != 0
    }

    /// Allocated space in 512-byte sectors (what `stat` calls blocks).
    pub fn sectors(&self, block_size: u32) -> u64 {
        if self.i_flags & EXT4_HUGE_FILE_FL != 0 {
            self.i_blocks.saturating_mul(u64::from(block_size / 512))
        } else {
            self.i_blocks
        }
    }

    /// The `i_block` array as fifteen 32-bit block numbers.
    pub fn block_pointers(&self) -> [u32; 15] {
        let mut p = [0u32; 15];
        for (i, v) in p.iter_mut().enumerate() {
            *v = le32(&self.i_block, i.saturating_mul(4));
        }
        p
    }

    /// True for a symlink whose target is in `i_block` (no data block;
    /// an attribute block does not count), as Linux's
    /// `ext4_inode_is_fast_symlink` decides.
    pub fn is_fast_symlink(&self, block_size: u32) -> bool {
        if self.file_type() != Some(FileType::Symlink) || self.has_inline_data() {
            return false;
        }
        let ea = if self.i_file_acl != 0 {
            u64::from(block_size / 512)
        } else {
            0
        };
        self.sectors(block_size).saturating_sub(ea) == 0 && self.i_size < 60
    }

    /// The device number of a character or block device inode as
    /// (major, minor): old 16-bit encoding in `i_block[0]`, new encoding in
    /// `i_block[1]`.
    pub fn device_number(&self) -> (u32, u32) {
        let p = self.block_pointers();
        if p[0] != 0 {
            ((p[0] >> 8) & 0xFF, p[0] & 0xFF)
        } else {
            let d = p[1];
            ((d >> 8) & 0xFFF, (d & 0xFF) | ((d >> 12) & 0xF_FF00))
        }
    }
}

/// Checks the metadata_csum checksum of the raw inode record `b` of inode
/// `ino` (`ext4_inode_csum_verify`): CRC32C seeded with the filesystem seed,
/// the inode number and the generation, over the record with its checksum
/// fields zeroed; 32 bits when `i_checksum_hi` fits, else the low 16.
pub fn verify_checksum(b: &[u8], ino: u32, fs_seed: u32) -> Result<(), Corrupt> {
    use super::journal::crc::crc32c;
    use field::*;
    if b.len() < 128 {
        return Err(Corrupt::TooShort {
            structure: "inode record",
            len: b.len(),
            want: EXT2_GOOD_OLD_INODE_SIZE,
        });
    }
    let extra = if b.len() > 128 {
        usize::from(le16(b, I_EXTRA_ISIZE))
    } else {
        0
    };
    let seed = crc32c(
        crc32c(fs_seed, &ino.to_le_bytes()),
        &b[I_GENERATION..I_GENERATION + 4],
    );
    let mut c = crc32c(seed, &b[..L_I_CHECKSUM_LO]);
    c = crc32c(c, &[0, 0]);
    c = crc32c(c, &b[L_I_CHECKSUM_LO + 2..EXT2_GOOD_OLD_INODE_SIZE]);
    let has_hi = b.len() > 128 && extra >= I_CHECKSUM_HI + 2 - EXT2_GOOD_OLD_INODE_SIZE;
    let mut stored = u32::from(le16(b, L_I_CHECKSUM_LO));
    if b.len() > 128 {
        c = crc32c(c, &b[EXT2_GOOD_OLD_INODE_SIZE..I_CHECKSUM_HI]);
        let mut rest = I_CHECKSUM_HI;
        if has_hi {
            c = crc32c(c, &[0, 0]);
            rest = I_CHECKSUM_HI + 2;
            stored |= u32::from(le16(b, I_CHECKSUM_HI)) << 16;
        }
        c = crc32c(c, &b[rest..]);
    }
    if !has_hi {
        c &= 0xFFFF;
    }
    if c != stored {
        return Err(Corrupt::Checksum {
            structure: "inode",
            stored,
            computed: c,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<u8> {
        let mut b = vec![0u8; 256];
        b[0x00..0x02].copy_from_slice(&0o104755u16.to_le_bytes());
        b[0x02..0x04].copy_from_slice(&1000u16.to_le_bytes());
        b[0x04..0x08].copy_from_slice(&5u32.to_le_bytes());
        b[0x6C..0x70].copy_from_slice(&1u32.to_le_bytes());
        b[0x10..0x14].copy_from_slice(&1_700_000_000u32.to_le_bytes());
        b[0x80..0x82].copy_from_slice(&32u16.to_le_bytes());
        b[0x88..0x8C].copy_from_slice(&((123u32 << 2) | 1).to_le_bytes());
        b
    }

    #[test]
    fn parses_size_mode_and_extended_times() {
        let i = Inode::parse(&fixture(), true).unwrap();
        assert_eq!(i.i_size, (1 << 32) + 5);
        assert_eq!(i.file_type(), Some(FileType::Regular));
        assert_eq!(i.permissions(), 0o4755);
        assert_eq!(i.i_uid, 1000);
        assert_eq!(
            i.i_mtime,
            Timestamp {
                sec: 1_700_000_000 + (1 << 32),
                nsec: 123
            }
        );
        assert_eq!(i.inline_xattrs.len(), 256 - 160);
    }

    #[test]
    fn small_inodes_have_no_extra_fields() {
        let i = Inode::parse(&fixture()[..128], false).unwrap();
        assert_eq!(i.i_mtime.nsec, 0);
        assert_eq!(i.i_crtime, None);
    }

    #[test]
    fn rejects_an_extra_isize_past_the_record() {
        let mut b = fixture();
        b[0x80..0x82].copy_from_slice(&200u16.to_le_bytes());
        assert!(Inode::parse(&b, false).is_err());
    }

    #[test]
    fn decodes_old_and_new_device_numbers() {
        let mut b = fixture();
        b[0x00..0x02].copy_from_slice(&0o020644u16.to_le_bytes());
        b[0x28..0x2C].copy_from_slice(&0x0103u32.to_le_bytes());
        assert_eq!(Inode::parse(&b, false).unwrap().device_number(), (1, 3));
        b[0x28..0x2C].copy_from_slice(&0u32.to_le_bytes());
        let new = (0x12u32 << 20) | (259 << 8) | 0x34; // minor 0x12034? see encoding
        b[0x2C..0x30].copy_from_slice(&new.to_le_bytes());
        let (maj, min) = Inode::parse(&b, false).unwrap().device_number();
        assert_eq!(maj, 259);
        assert_eq!(min, 0x34 | (0x12 << 8));
    }
}
