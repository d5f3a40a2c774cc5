//! The journal superblock (`journal_superblock_t`), big-endian, in the
//! first block of the journal.

use super::JBD2_MAGIC_NUMBER;
use crate::ext3::bytes::{be32, bytes_at, u8_at};
use crate::ext3::error::Corrupt;

/// `h_blocktype` of a version 1 superblock.
pub const JBD2_SUPERBLOCK_V1: u32 = 3;
/// `h_blocktype` of a version 2 superblock.
pub const JBD2_SUPERBLOCK_V2: u32 = 4;

/// `s_feature_compat`: per-transaction CRC32 (checksum v1).
pub const COMPAT_CHECKSUM: u32 = 0x1;
/// `s_feature_incompat`: revoke blocks.
pub const INCOMPAT_REVOKE: u32 = 0x1;
/// `s_feature_incompat`: 64-bit block numbers.
pub const INCOMPAT_64BIT: u32 = 0x2;
/// `s_feature_incompat`: asynchronous commit.
pub const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
/// `s_feature_incompat`: checksum v2.
pub const INCOMPAT_CSUM_V2: u32 = 0x8;
/// `s_feature_incompat`: checksum v3.
pub const INCOMPAT_CSUM_V3: u32 = 0x10;
/// `s_feature_incompat`: fast commits.
pub const INCOMPAT_FAST_COMMIT: u32 = 0x20;
const KNOWN_INCOMPAT: u32 =
    INCOMPAT_REVOKE | INCOMPAT_64BIT | INCOMPAT_ASYNC_COMMIT | INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3;

/// Byte offsets of the journal superblock's fields (`journal_superblock_t`,
/// big-endian; the header comes first), with their C names.
pub mod field {
    /// `s_blocksize`
    pub const S_BLOCKSIZE: usize = 0x0C;
    /// `s_maxlen`
    pub const S_MAXLEN: usize = 0x10;
    /// `s_first`
    pub const S_FIRST: usize = 0x14;
    /// `s_sequence`
    pub const S_SEQUENCE: usize = 0x18;
    /// `s_start`
    pub const S_START: usize = 0x1C;
    /// `s_errno`
    pub const S_ERRNO: usize = 0x20;
    /// `s_feature_compat`
    pub const S_FEATURE_COMPAT: usize = 0x24;
    /// `s_feature_incompat`
    pub const S_FEATURE_INCOMPAT: usize = 0x28;
    /// `s_feature_ro_compat`
    pub const S_FEATURE_RO_COMPAT: usize = 0x2C;
    /// `s_uuid[16]`
    pub const S_UUID: usize = 0x30;
    /// `s_checksum_type`
    pub const S_CHECKSUM_TYPE: usize = 0x50;
    /// `s_num_fc_blks`
    pub const S_NUM_FC_BLKS: usize = 0x54;
    /// `s_checksum`
    pub const S_CHECKSUM: usize = 0xFC;
}

/// The journal superblock fields replay needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSuperblock {
    /// 0x04: 3 (v1) or 4 (v2).
    pub h_blocktype: u32,
    /// 0x0C
    pub s_blocksize: u32,
    /// 0x10: total blocks in the journal.
    pub s_maxlen: u32,
    /// 0x14: first log block.
    pub s_first: u32,
    /// 0x18: sequence of the first transaction expected in the log.
    pub s_sequence: u32,
    /// 0x1C: block of the start of the log; 0 when the journal is clean.
    pub s_start: u32,
    /// 0x20
    pub s_errno: u32,
    /// 0x24 (v2 only)
    pub s_feature_compat: u32,
    /// 0x28 (v2 only)
    pub s_feature_incompat: u32,
    /// 0x2C (v2 only)
    pub s_feature_ro_compat: u32,
    /// 0x30
    pub s_uuid: [u8; 16],
    /// 0x50
    pub s_checksum_type: u8,
    /// 0x54: fast-commit blocks at the end of the journal.
    pub s_num_fc_blks: u32,
    /// 0xFC
    pub s_checksum: u32,
}

impl JournalSuperblock {
    /// Parses the first 1024 bytes of the journal.
    pub fn parse(b: &[u8]) -> Result<JournalSuperblock, Corrupt> {
        use super::block::field::{H_BLOCKTYPE, H_MAGIC};
        use field::*;
        if b.len() < 1024 {
            return Err(Corrupt::TooShort {
                structure: "journal superblock",
                len: b.len(),
                want: 1024,
            });
        }
        let magic = be32(b, H_MAGIC);
        if magic != JBD2_MAGIC_NUMBER {
            return Err(Corrupt::BadMagic {
                structure: "journal superblock",
                field: "h_magic",
                value: magic,
            });
        }
        let t = be32(b, H_BLOCKTYPE);
        if t != JBD2_SUPERBLOCK_V1 && t != JBD2_SUPERBLOCK_V2 {
            return Err(Corrupt::BadField {
                field: "journal superblock h_blocktype",
                value: u64::from(t),
            });
        }
        let v2 = t == JBD2_SUPERBLOCK_V2;
        let f = |off| if v2 { be32(b, off) } else { 0 };
        let sb = JournalSuperblock {
            h_blocktype: t,
            s_blocksize: be32(b, S_BLOCKSIZE),
            s_maxlen: be32(b, S_MAXLEN),
            s_first: be32(b, S_FIRST),
            s_sequence: be32(b, S_SEQUENCE),
            s_start: be32(b, S_START),
            s_errno: be32(b, S_ERRNO),
            s_feature_compat: f(S_FEATURE_COMPAT),
            s_feature_incompat: f(S_FEATURE_INCOMPAT),
            s_feature_ro_compat: f(S_FEATURE_RO_COMPAT),
            s_uuid: bytes_at(b, S_UUID),
            s_checksum_type: u8_at(b, S_CHECKSUM_TYPE),
            s_num_fc_blks: f(S_NUM_FC_BLKS),
            s_checksum: be32(b, S_CHECKSUM),
        };
        if !(1024..=65536).contains(&sb.s_blocksize) || !sb.s_blocksize.is_power_of_two() {
            return Err(Corrupt::BadField {
                field: "journal s_blocksize",
                value: u64::from(sb.s_blocksize),
            });
        }
        if sb.s_first == 0 || sb.s_first >= sb.s_maxlen {
            return Err(Corrupt::Journal {
                field: "s_first",
                value: u64::from(sb.s_first),
            });
        }
        if sb.s_start != 0 && (sb.s_start < sb.s_first || sb.s_start >= sb.s_maxlen) {
            return Err(Corrupt::Journal {
                field: "s_start",
                value: u64::from(sb.s_start),
            });
        }
        Ok(sb)
    }

    /// Incompatible journal features replay does not understand, if any.
    pub fn unknown_incompat(&self) -> u32 {
        self.s_feature_incompat & !KNOWN_INCOMPAT
    }

    /// True when the incompatible feature `bit` is set.
    pub fn has_incompat(&self, bit: u32) -> bool {
        self.s_feature_incompat & bit != 0
    }

    /// Checksum v2 or v3.
    pub fn csum_v2v3(&self) -> bool {
        self.has_incompat(INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3)
    }

    /// Size of one descriptor tag (`journal_tag_bytes`).
    pub fn tag_bytes(&self) -> usize {
        if self.has_incompat(INCOMPAT_CSUM_V3) {
            return 16;
        }
        // 12 bytes with 64bit, 8 without; the v2 checksum adds 2.
        let csum = if self.has_incompat(INCOMPAT_CSUM_V2) {
            2
        } else {
            0
        };
        let base = if self.has_incompat(INCOMPAT_64BIT) {
            12
        } else {
            8
        };
        base | csum
    }

    /// The end of the circular log (fast-commit blocks excluded).
    pub fn log_end(&self) -> u32 {
        if self.has_incompat(INCOMPAT_FAST_COMMIT) {
            self.s_maxlen
                .saturating_sub(self.s_num_fc_blks.max(256))
                .max(self.s_first.saturating_add(1))
        } else {
            self.s_maxlen
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A v2 journal superblock of `maxlen` 1 KiB blocks starting at `start`.
    pub fn fixture(maxlen: u32, start: u32, seq: u32, incompat: u32) -> Vec<u8> {
        let mut b = vec![0u8; 1024];
        let mut put = |off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_be_bytes());
        put(0, JBD2_MAGIC_NUMBER);
        put(4, JBD2_SUPERBLOCK_V2);
        put(0x0C, 1024);
        put(0x10, maxlen);
        put(0x14, 1);
        put(0x18, seq);
        put(0x1C, start);
        put(0x28, incompat);
        b
    }

    #[test]
    fn parses_and_sizes_tags_per_feature() {
        let sb = JournalSuperblock::parse(&fixture(1024, 1, 5, 0)).unwrap();
        assert_eq!(sb.tag_bytes(), 8);
        let sb = JournalSuperblock::parse(&fixture(1024, 1, 5, INCOMPAT_64BIT)).unwrap();
        assert_eq!(sb.tag_bytes(), 12);
        let sb = JournalSuperblock::parse(&fixture(1024, 1, 5, INCOMPAT_CSUM_V2)).unwrap();
        assert_eq!(sb.tag_bytes(), 10);
        let sb = JournalSuperblock::parse(&fixture(1024, 1, 5, INCOMPAT_CSUM_V3)).unwrap();
        assert_eq!(sb.tag_bytes(), 16);
    }

    #[test]
    fn rejects_bad_geometry() {
        assert!(JournalSuperblock::parse(&fixture(1024, 2000, 5, 0)).is_err());
        assert!(JournalSuperblock::parse(&fixture(0, 0, 5, 0)).is_err());
        let mut b = fixture(1024, 1, 5, 0);
        b[0] = 0;
        assert!(JournalSuperblock::parse(&b).is_err());
    }
}
