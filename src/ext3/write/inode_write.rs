//! Raw inode records for writing: the on-disk bytes of one inode with
//! setters for the fields the writer changes, read from and put back into
//! the inode table block through the transaction cache. The offsets are
//! the reader's ([`crate::ext3::inode::field`]), declared once.

use crate::ext3::bytes::{hi16, hi32, le16, le32, lo16, lo32, set_le16, set_le32};
use crate::ext3::inode::field::*;
use crate::fs::Timestamp;

/// The bytes of inode `ino`'s record (`s_inode_size` long).
#[derive(Debug, Clone)]
pub struct RawInode {
    /// Inode number.
    pub ino: u32,
    /// The record.
    pub b: Vec<u8>,
}

/// Which timestamp to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `i_atime`
    Atime,
    /// `i_ctime`
    Ctime,
    /// `i_mtime`
    Mtime,
    /// `i_crtime` (large inodes only)
    Crtime,
}

/// The byte offset of `i_block[i]` in the record (`None` on overflow).
fn ptr_offset(i: usize) -> Option<usize> {
    i.checked_mul(4)?.checked_add(I_BLOCK)
}

impl RawInode {
    /// A zeroed record of `size` bytes; large records get `extra_isize`
    /// bytes of extra fields.
    pub fn new(ino: u32, size: usize, extra_isize: u16) -> Self {
        let mut b = vec![0u8; size];
        if size > 128 {
            set_le16(&mut b, I_EXTRA_ISIZE, extra_isize);
        }
        RawInode { ino, b }
    }

    fn extra_end(&self) -> usize {
        if self.b.len() > 128 {
            128 + usize::from(le16(&self.b, I_EXTRA_ISIZE))
        } else {
            128
        }
    }

    /// `i_mode`.
    pub fn mode(&self) -> u16 {
        le16(&self.b, I_MODE)
    }
    /// Sets `i_mode`.
    pub fn set_mode(&mut self, m: u16) {
        set_le16(&mut self.b, I_MODE, m);
    }
    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        crate::fs::FileType::from_mode(self.mode()) == Some(crate::fs::FileType::Directory)
    }
    /// `i_links_count`.
    pub fn links(&self) -> u16 {
        le16(&self.b, I_LINKS_COUNT)
    }
    /// Sets `i_links_count`.
    pub fn set_links(&mut self, n: u16) {
        set_le16(&mut self.b, I_LINKS_COUNT, n);
    }
    /// `i_size` (with `i_size_high`).
    pub fn size(&self) -> u64 {
        u64::from(le32(&self.b, I_SIZE_LO)) | (u64::from(le32(&self.b, I_SIZE_HIGH)) << 32)
    }
    /// Sets `i_size` and `i_size_high`.
    pub fn set_size(&mut self, s: u64) {
        set_le32(&mut self.b, I_SIZE_LO, lo32(s));
        set_le32(&mut self.b, I_SIZE_HIGH, hi32(s));
    }
    /// `i_blocks` in 512-byte sectors (no huge_file).
    pub fn sectors(&self) -> u64 {
        u64::from(le32(&self.b, I_BLOCKS_LO)) | (u64::from(le16(&self.b, L_I_BLOCKS_HIGH)) << 32)
    }
    /// Sets `i_blocks`.
    pub fn set_sectors(&mut self, s: u64) {
        set_le32(&mut self.b, I_BLOCKS_LO, lo32(s));
        set_le16(&mut self.b, L_I_BLOCKS_HIGH, lo16(hi32(s)));
    }
    /// `i_flags`.
    pub fn flags(&self) -> u32 {
        le32(&self.b, I_FLAGS)
    }
    /// Sets `i_flags`.
    pub fn set_flags(&mut self, f: u32) {
        set_le32(&mut self.b, I_FLAGS, f);
    }
    /// `i_dtime` (also the orphan list link).
    pub fn dtime(&self) -> u32 {
        le32(&self.b, I_DTIME)
    }
    /// Sets `i_dtime`.
    pub fn set_dtime(&mut self, t: u32) {
        set_le32(&mut self.b, I_DTIME, t);
    }
    /// Sets owner (`i_uid` + `l_i_uid_high`).
    pub fn set_uid(&mut self, uid: u32) {
        set_le16(&mut self.b, I_UID, lo16(uid));
        set_le16(&mut self.b, L_I_UID_HIGH, hi16(uid));
    }
    /// Sets group (`i_gid` + `l_i_gid_high`).
    pub fn set_gid(&mut self, gid: u32) {
        set_le16(&mut self.b, I_GID, lo16(gid));
        set_le16(&mut self.b, L_I_GID_HIGH, hi16(gid));
    }
    /// `i_block[i]`.
    pub fn ptr(&self, i: usize) -> u32 {
        ptr_offset(i).map_or(0, |o| le32(&self.b, o))
    }
    /// Sets `i_block[i]`.
    pub fn set_ptr(&mut self, i: usize, v: u32) {
        if let Some(o) = ptr_offset(i) {
            set_le32(&mut self.b, o, v);
        }
    }
    /// The 60 bytes of `i_block`.
    pub fn i_block_mut(&mut self) -> &mut [u8] {
        &mut self.b[I_BLOCK..I_GENERATION]
    }
    /// Sets `i_generation`.
    pub fn set_generation(&mut self, g: u32) {
        set_le32(&mut self.b, I_GENERATION, g);
    }
    /// `i_file_acl` (low 32 bits).
    pub fn file_acl(&self) -> u32 {
        le32(&self.b, I_FILE_ACL_LO)
    }

    /// Sets a timestamp; the `_extra` field (nanoseconds and epoch bits) is
    /// written when the record has it.
    pub fn set_time(&mut self, which: Which, t: Timestamp) {
        let (base, extra) = match which {
            Which::Atime => (Some(I_ATIME), I_ATIME_EXTRA),
            Which::Ctime => (Some(I_CTIME), I_CTIME_EXTRA),
            Which::Mtime => (Some(I_MTIME), I_MTIME_EXTRA),
            Which::Crtime => (None, I_CRTIME_EXTRA),
        };
        let lo = u32::try_from(t.sec & 0xFFFF_FFFF).unwrap_or(0);
        // Seconds beyond 32 bits go in the epoch bits ((sec - (i32)lo) >> 32).
        let signed_lo = i64::from(i32::from_le_bytes(lo.to_le_bytes()));
        let epoch = u32::try_from((t.sec.wrapping_sub(signed_lo) >> 32) & 3).unwrap_or(0);
        match base {
            Some(o) => set_le32(&mut self.b, o, lo),
            None => {
                if self.extra_end() >= I_CRTIME_EXTRA + 4 {
                    set_le32(&mut self.b, I_CRTIME, lo);
                }
            }
        }
        if extra
            .checked_add(4)
            .is_some_and(|end| self.extra_end() >= end)
        {
            set_le32(&mut self.b, extra, (t.nsec.min(999_999_999) << 2) | epoch);
        }
    }

    /// Encodes a device number in `i_block` as Linux does (old 16-bit form
    /// in `i_block[0]` when it fits, else the new form in `i_block[1]`).
    pub fn set_rdev(&mut self, major: u32, minor: u32) {
        if major < 256 && minor < 256 {
            self.set_ptr(0, (major << 8) | minor);
            self.set_ptr(1, 0);
        } else {
            self.set_ptr(0, 0);
            self.set_ptr(
                1,
                (minor & 0xFF) | ((major & 0xFFF) << 8) | ((minor & !0xFF) << 12),
            );
        }
    }
}

/// Splits a Linux `dev_t` into (major, minor).
pub fn split_dev(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xFFF) | ((rdev >> 32) & !0xFFF);
    let minor = (rdev & 0xFF) | ((rdev >> 12) & !0xFF);
    // Linux dev_t majors and minors are 32-bit.
    (lo32(major), lo32(minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext3::inode::Inode;

    #[test]
    fn setters_round_trip_through_the_reader_parser() {
        let mut r = RawInode::new(12, 256, 32);
        r.set_mode(0o100644);
        r.set_uid(70000);
        r.set_gid(5);
        r.set_size((1 << 32) + 7);
        r.set_links(2);
        r.set_time(
            Which::Mtime,
            Timestamp {
                sec: 1_700_000_000,
                nsec: 42,
            },
        );
        r.set_rdev(259, 0x1234);
        let i = Inode::parse(&r.b, false).unwrap();
        assert_eq!(i.i_uid, 70000);
        assert_eq!(i.i_size, (1 << 32) + 7);
        assert_eq!(i.i_links_count, 2);
        assert_eq!(
            i.i_mtime,
            Timestamp {
                sec: 1_700_000_000,
                nsec: 42
            }
        );
        assert_eq!(i.device_number(), (259, 0x1234));
        assert_eq!(split_dev(nix::sys::stat::makedev(8, 300)), (8, 300));
    }
}
