//! The checksums the writer keeps (metadata_csum.rst, group_descr.rst):
//! pure functions that seal a block or record in place before it goes into
//! the transaction. CRC32C is the reader's ([`crate::ext3::journal::crc`]),
//! the raw register as Linux's `ext4_chksum` uses it; the group descriptor
//! checksum of `uninit_bg` without metadata_csum is the ANSI CRC16.
//!
//! | structure            | seed                          | covers                      |
//! |----------------------|-------------------------------|-----------------------------|
//! | superblock           | `~0`                          | bytes before `s_checksum`   |
//! | group descriptor     | fs seed, group number         | descriptor, checksum zeroed |
//! | block/inode bitmap   | fs seed                       | the group's bits            |
//! | inode                | fs seed, ino, generation      | record, checksums zeroed    |
//! | dir leaf, extent blk | fs seed, ino, generation      | block before the tail       |
//! | htree index block    | fs seed, ino, generation      | used entries, `dx_tail`     |
//! | xattr block          | fs seed, block number (le64)  | block, `h_checksum` zeroed  |

use crate::ext3::bytes::{le16, set_le16, set_le32};
use crate::ext3::group_desc::field::{BG_CHECKSUM, BG_FLAGS};
use crate::ext3::inode::field::{I_CHECKSUM_HI, I_EXTRA_ISIZE, L_I_CHECKSUM_LO};
use crate::ext3::journal::crc::crc32c;
use crate::ext3::superblock::field::S_CHECKSUM;

/// `bg_block_bitmap_csum_lo`
pub const BG_BLOCK_BITMAP_CSUM_LO: usize = 0x18;
/// `bg_inode_bitmap_csum_lo`
pub const BG_INODE_BITMAP_CSUM_LO: usize = 0x1A;
/// `bg_block_bitmap_csum_hi` (descriptors of 64 bytes and more)
pub const BG_BLOCK_BITMAP_CSUM_HI: usize = 0x38;
/// `bg_inode_bitmap_csum_hi`
pub const BG_INODE_BITMAP_CSUM_HI: usize = 0x3A;
/// `bg_flags`: the block bitmap is not initialized.
pub const BG_BLOCK_UNINIT: u16 = 0x2;
/// `bg_flags`: the inode table is zeroed.
pub const BG_INODE_ZEROED: u16 = 0x4;
/// The file type byte that marks a directory leaf's checksum tail.
pub const DIRENT_TAIL_TYPE: u8 = 0xDE;
/// `h_checksum` of an extended attribute block.
const H_CHECKSUM: usize = 0x10;

/// How group descriptors are checksummed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GdCsum {
    /// No checksum (neither uninit_bg nor metadata_csum).
    None,
    /// uninit_bg: CRC16 over the UUID, group number and descriptor.
    Crc16([u8; 16]),
    /// metadata_csum: low 16 bits of CRC32C.
    Crc32c,
}

/// The ANSI CRC16 (polynomial 0x8005, reflected) as e2fsprogs' `ext2fs_crc16`.
pub fn crc16(mut crc: u16, data: &[u8]) -> u16 {
    for &byte in data {
        crc ^= u16::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Seals the superblock `s` (1024 bytes) with its CRC32C.
pub fn seal_superblock(s: &mut [u8]) {
    let c = crc32c(!0, &s[..S_CHECKSUM]);
    set_le32(s, S_CHECKSUM, c);
}

/// Seals group `g`'s descriptor `d` (`desc_size` bytes).
pub fn seal_group_desc(d: &mut [u8], g: u32, kind: GdCsum, fs_seed: u32) {
    let n = d.len();
    let c = match kind {
        GdCsum::None => return,
        GdCsum::Crc32c => {
            let mut c = crc32c(fs_seed, &g.to_le_bytes());
            c = crc32c(c, &d[..BG_CHECKSUM]);
            c = crc32c(c, &[0, 0]);
            c = crc32c(c, &d[BG_CHECKSUM + 2..n]);
            u16::try_from(c & 0xFFFF).unwrap_or(0)
        }
        GdCsum::Crc16(uuid) => {
            let mut c = crc16(!0, &uuid);
            c = crc16(c, &g.to_le_bytes());
            c = crc16(c, &d[..BG_CHECKSUM]);
            crc16(c, &d[BG_CHECKSUM + 2..n])
        }
    };
    set_le16(d, BG_CHECKSUM, c);
}

/// Stores the bitmap checksums (`bits` bytes of each bitmap) in descriptor `d`.
pub fn set_bitmap_csums(d: &mut [u8], fs_seed: u32, block_bitmap: &[u8], inode_bitmap: &[u8]) {
    let b = crc32c(fs_seed, block_bitmap);
    let i = crc32c(fs_seed, inode_bitmap);
    set_le16(d, BG_BLOCK_BITMAP_CSUM_LO, lo16(b));
    set_le16(d, BG_INODE_BITMAP_CSUM_LO, lo16(i));
    if d.len() >= 64 {
        set_le16(d, BG_BLOCK_BITMAP_CSUM_HI, hi16(b));
        set_le16(d, BG_INODE_BITMAP_CSUM_HI, hi16(i));
    }
}

fn lo16(v: u32) -> u16 {
    u16::try_from(v & 0xFFFF).unwrap_or(0)
}
fn hi16(v: u32) -> u16 {
    u16::try_from(v >> 16).unwrap_or(0)
}

/// `bg_flags` of descriptor `d`.
pub fn flags(d: &[u8]) -> u16 {
    le16(d, BG_FLAGS)
}

/// Seals inode record `b` of inode `ino` (`ext4_inode_csum_set`): 32 bits
/// when the extra fields hold `i_checksum_hi`, else the low 16.
pub fn seal_inode(b: &mut [u8], ino: u32, fs_seed: u32) {
    set_le16(b, L_I_CHECKSUM_LO, 0);
    let has_hi = b.len() > 128 && usize::from(le16(b, I_EXTRA_ISIZE)) + 128 >= I_CHECKSUM_HI + 2;
    if has_hi {
        set_le16(b, I_CHECKSUM_HI, 0);
    }
    let c = crc32c(inode_seed(fs_seed, ino, b), b);
    set_le16(b, L_I_CHECKSUM_LO, lo16(c));
    if has_hi {
        set_le16(b, I_CHECKSUM_HI, hi16(c));
    }
}

/// The per-inode seed of inode record `b`.
pub fn inode_seed(fs_seed: u32, ino: u32, b: &[u8]) -> u32 {
    let generation = crate::ext3::bytes::le32(b, crate::ext3::inode::field::I_GENERATION);
    crate::ext3::map::inode_csum_seed(fs_seed, ino, generation)
}

/// Writes the 12-byte checksum tail of a directory leaf and its CRC32C.
pub fn seal_dir_leaf(b: &mut [u8], inode_seed: u32) {
    let Some((body, t)) = b.split_last_chunk_mut::<12>() else {
        return;
    };
    t[0..4].fill(0);
    set_le16(t, 4, 12);
    t[6] = 0;
    t[7] = DIRENT_TAIL_TYPE;
    let c = crc32c(inode_seed, body);
    set_le32(t, 8, c);
}

/// Writes the `struct dx_tail` checksum of an htree index block (dx_root
/// or dx_node) whose `dx_countlimit` is at `at`
/// ([`crate::ext3::htree::dx_csum`], the reader's). A block whose limit
/// leaves no room is left alone.
pub fn seal_dx_block(b: &mut [u8], at: usize, inode_seed: u32) {
    if let Some((field, c)) = crate::ext3::htree::dx_csum(b, at, inode_seed) {
        set_le32(b, field, c);
    }
}

/// Writes the tail of an extent block (after `eh_max` entries).
pub fn seal_extent_block(b: &mut [u8], inode_seed: u32) {
    // eh_max entries of 12 bytes after the 12-byte header, then the tail.
    let at = usize::from(le16(b, 4))
        .checked_mul(12)
        .and_then(|n| n.checked_add(12))
        .filter(|&at| at.checked_add(4).is_some_and(|end| end <= b.len()));
    if let Some(at) = at {
        let c = crc32c(inode_seed, &b[..at]);
        set_le32(b, at, c);
    }
}

/// Seals an extended attribute block stored at block `blk`.
pub fn seal_xattr_block(b: &mut [u8], blk: u64, fs_seed: u32) {
    set_le32(b, H_CHECKSUM, 0);
    let c = crc32c(crc32c(fs_seed, &blk.to_le_bytes()), b);
    set_le32(b, H_CHECKSUM, c);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_arc_check_value() {
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
    }

    #[test]
    fn sealed_inodes_pass_the_readers_verification() {
        let mut b = vec![0u8; 256];
        set_le16(&mut b, I_EXTRA_ISIZE, 32);
        b[0] = 0xA4;
        b[0x64] = 7;
        seal_inode(&mut b, 12, 0x1234_5678);
        assert!(crate::ext3::inode::verify_checksum(&b, 12, 0x1234_5678).is_ok());
        b[1] ^= 1;
        assert!(crate::ext3::inode::verify_checksum(&b, 12, 0x1234_5678).is_err());
    }

    #[test]
    fn sealed_dir_leaves_pass_the_readers_verification() {
        let mut b = vec![0u8; 1024];
        b[0] = 2;
        seal_dir_leaf(&mut b, 99);
        assert!(crate::ext3::dir::verify_tail(&b, 99).is_ok());
        assert!(crate::ext3::dir::verify_tail(&b, 98).is_err());
    }
}
