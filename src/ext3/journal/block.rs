//! Journal log blocks: the common header (`journal_header_t`), descriptor
//! blocks with their tags (`journal_block_tag_t`, `journal_block_tag3_t`)
//! and commit blocks (`struct commit_header`).

use super::superblock::{JournalSuperblock, INCOMPAT_64BIT, INCOMPAT_CSUM_V3};
use super::JBD2_MAGIC_NUMBER;
use crate::ext3::bytes::{be32, be64, u8_at};
use crate::ext3::error::Corrupt;

/// `h_blocktype` of a descriptor block.
pub const JBD2_DESCRIPTOR_BLOCK: u32 = 1;
/// `h_blocktype` of a commit block.
pub const JBD2_COMMIT_BLOCK: u32 = 2;
/// `h_blocktype` of a revoke block.
pub const JBD2_REVOKE_BLOCK: u32 = 5;

/// Tag flag: the data block's first four bytes were the magic and were
/// zeroed in the log.
pub const JBD2_FLAG_ESCAPE: u32 = 1;
/// Tag flag: no UUID follows the tag.
pub const JBD2_FLAG_SAME_UUID: u32 = 2;
/// Tag flag: the last tag of the block.
pub const JBD2_FLAG_LAST_TAG: u32 = 8;

/// `h_chksum_type` of a v1 CRC32 commit checksum.
pub const JBD2_CRC32_CHKSUM: u8 = 1;

/// The header every journal metadata block starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `h_blocktype`.
    pub h_blocktype: u32,
    /// `h_sequence`: the transaction.
    pub h_sequence: u32,
}

impl Header {
    /// The header of `b`, `None` when the magic is absent (not a metadata
    /// block: the end of the log).
    pub fn parse(b: &[u8]) -> Option<Header> {
        (b.len() >= HEADER_SIZE && be32(b, H_MAGIC) == JBD2_MAGIC_NUMBER).then(|| Header {
            h_blocktype: be32(b, H_BLOCKTYPE),
            h_sequence: be32(b, H_SEQUENCE),
        })
    }
}

/// Byte offsets of the fields of the journal's blocks (big-endian,
/// `struct journal_header_s`, `journal_block_tag_s`, `commit_header`), with
/// their C names: the one declaration that replay and the writer use.
pub mod field {
    /// `h_magic`
    pub const H_MAGIC: usize = 0x00;
    /// `h_blocktype`
    pub const H_BLOCKTYPE: usize = 0x04;
    /// `h_sequence`
    pub const H_SEQUENCE: usize = 0x08;
    /// Size of the header: the first tag of a descriptor follows it.
    pub const HEADER_SIZE: usize = 0x0C;
    /// `t_blocknr`, from the start of a tag.
    pub const T_BLOCKNR: usize = 0x00;
    /// `t_checksum` (16 bits, without csum_v3).
    pub const T_CHECKSUM: usize = 0x04;
    /// `t_flags` (16 bits, without csum_v3).
    pub const T_FLAGS: usize = 0x06;
    /// `t_blocknr_high` (64bit only).
    pub const T_BLOCKNR_HIGH: usize = 0x08;
    /// `t_flags` of a csum_v3 tag (32 bits).
    pub const T3_FLAGS: usize = 0x04;
    /// `t_checksum` of a csum_v3 tag (32 bits).
    pub const T3_CHECKSUM: usize = 0x0C;
    /// `h_chksum_type` of a commit block.
    pub const H_CHKSUM_TYPE: usize = 0x0C;
    /// `h_chksum_size`
    pub const H_CHKSUM_SIZE: usize = 0x0D;
    /// `h_chksum[0]`
    pub const H_CHKSUM: usize = 0x10;
    /// `h_commit_sec`
    pub const H_COMMIT_SEC: usize = 0x30;
    /// `h_commit_nsec`
    pub const H_COMMIT_NSEC: usize = 0x38;
    /// Size of a commit block's fields.
    pub const COMMIT_SIZE: usize = 0x3C;
}
use field::*;

/// One descriptor tag: the filesystem block that the next log block is a
/// copy of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    /// `t_blocknr` (+ `t_blocknr_high` with 64bit).
    pub blocknr: u64,
    /// `t_flags`.
    pub flags: u32,
    /// `t_checksum` (16 bits with v2, 32 with v3).
    pub checksum: u32,
}

/// Parses the tags of a descriptor block. `tail` is the size of the block
/// tail holding the block's checksum (4 with checksum v2/v3, else 0).
pub fn parse_descriptor(
    b: &[u8],
    jsb: &JournalSuperblock,
    tail: usize,
) -> Result<Vec<Tag>, Corrupt> {
    let tag_bytes = jsb.tag_bytes();
    let v3 = jsb.has_incompat(INCOMPAT_CSUM_V3);
    let is64 = jsb.has_incompat(INCOMPAT_64BIT);
    let limit = b.len().saturating_sub(tail);
    let mut off = HEADER_SIZE;
    let mut tags = Vec::new();
    while let Some(t) = off
        .checked_add(tag_bytes)
        .filter(|&end| end <= limit)
        .and_then(|end| b.get(off..end))
    {
        let (lo, flags, hi, checksum) = if v3 {
            (
                be32(t, T_BLOCKNR),
                be32(t, T3_FLAGS),
                be32(t, T_BLOCKNR_HIGH),
                be32(t, T3_CHECKSUM),
            )
        } else {
            let flags = u32::from(u16::from_be_bytes([
                u8_at(t, T_FLAGS),
                u8_at(t, T_FLAGS + 1),
            ]));
            let csum = u32::from(u16::from_be_bytes([
                u8_at(t, T_CHECKSUM),
                u8_at(t, T_CHECKSUM + 1),
            ]));
            (
                be32(t, T_BLOCKNR),
                flags,
                if tag_bytes >= 12 {
                    be32(t, T_BLOCKNR_HIGH)
                } else {
                    0
                },
                csum,
            )
        };
        let blocknr = if is64 {
            u64::from(lo) | (u64::from(hi) << 32)
        } else {
            u64::from(lo)
        };
        tags.push(Tag {
            blocknr,
            flags,
            checksum,
        });
        off = off.saturating_add(tag_bytes);
        if flags & JBD2_FLAG_SAME_UUID == 0 {
            off = off.saturating_add(16);
        }
        if flags & JBD2_FLAG_LAST_TAG != 0 {
            return Ok(tags);
        }
    }
    if tags.is_empty() {
        return Err(Corrupt::TooMany {
            structure: "descriptor block (no tag)",
            count: 0,
            max: 0,
        });
    }
    Ok(tags)
}

/// The checksum fields of a commit block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// `h_chksum_type`.
    pub h_chksum_type: u8,
    /// `h_chksum_size`.
    pub h_chksum_size: u8,
    /// `h_chksum[0]`.
    pub h_chksum0: u32,
    /// `h_commit_sec`.
    pub h_commit_sec: u64,
}

impl Commit {
    /// Parses a commit block's fields after the header.
    pub fn parse(b: &[u8]) -> Result<Commit, Corrupt> {
        if b.len() < COMMIT_SIZE {
            return Err(Corrupt::TooShort {
                structure: "commit block",
                len: b.len(),
                want: COMMIT_SIZE,
            });
        }
        Ok(Commit {
            h_chksum_type: u8_at(b, H_CHKSUM_TYPE),
            h_chksum_size: u8_at(b, H_CHKSUM_SIZE),
            h_chksum0: be32(b, H_CHKSUM),
            h_commit_sec: be64(b, H_COMMIT_SEC),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::superblock::tests::fixture;
    use super::*;

    /// A descriptor block (1 KiB) of `seq` with 32-bit tags for `blocks`.
    pub fn descriptor(seq: u32, blocks: &[(u32, u32)]) -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        b[0..4].copy_from_slice(&JBD2_MAGIC_NUMBER.to_be_bytes());
        b[4..8].copy_from_slice(&JBD2_DESCRIPTOR_BLOCK.to_be_bytes());
        b[8..12].copy_from_slice(&seq.to_be_bytes());
        let mut off = 12;
        for (i, &(blk, flags)) in blocks.iter().enumerate() {
            let mut flags = flags;
            if i > 0 {
                flags |= JBD2_FLAG_SAME_UUID;
            }
            if i + 1 == blocks.len() {
                flags |= JBD2_FLAG_LAST_TAG;
            }
            b[off..off + 4].copy_from_slice(&blk.to_be_bytes());
            b[off + 6..off + 8].copy_from_slice(&(flags as u16).to_be_bytes());
            off += 8;
            if flags & JBD2_FLAG_SAME_UUID == 0 {
                off += 16;
            }
        }
        b
    }

    #[test]
    fn parses_tags_with_and_without_uuids() {
        let jsb = JournalSuperblock::parse(&fixture(1024, 1, 1, 0)).unwrap();
        let b = descriptor(7, &[(100, 0), (200, JBD2_FLAG_ESCAPE), (300, 0)]);
        let tags = parse_descriptor(&b, &jsb, 0).unwrap();
        assert_eq!(
            tags.iter().map(|t| t.blocknr).collect::<Vec<_>>(),
            vec![100, 200, 300]
        );
        assert_eq!(tags[1].flags & JBD2_FLAG_ESCAPE, JBD2_FLAG_ESCAPE);
        assert_eq!(
            Header::parse(&b),
            Some(Header {
                h_blocktype: 1,
                h_sequence: 7
            })
        );
    }

    #[test]
    fn tags_stop_at_the_block_end_without_a_last_tag() {
        let jsb = JournalSuperblock::parse(&fixture(1024, 1, 1, 0)).unwrap();
        let mut b = vec![0u8; 1024];
        b[0..4].copy_from_slice(&JBD2_MAGIC_NUMBER.to_be_bytes());
        let tags = parse_descriptor(&b, &jsb, 0).unwrap();
        assert!(tags.len() <= 1024 / 24);
    }
}
