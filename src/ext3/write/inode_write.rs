//! Raw inode records for writing: the on-disk bytes of one inode with
//! setters for the fields the writer changes (offsets of
//! Documentation/filesystems/ext4/inodes.rst), read from and put back into
//! the inode table block through the transaction cache.

use crate::ext3::inode::Timestamp;

/// The bytes of inode `ino`'s record (`s_inode_size` long).
#[derive(Debug, Clone)]
pub struct RawInode {
    /// Inode number.
    pub ino: u32,
    /// The record.
    pub b: Vec<u8>,
}

fn get16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn get32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
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

impl RawInode {
    /// A zeroed record of `size` bytes; large records get `extra_isize`
    /// bytes of extra fields.
    pub fn new(ino: u32, size: usize, extra_isize: u16) -> Self {
        let mut b = vec![0u8; size];
        if size > 128 {
            put16(&mut b, 0x80, extra_isize);
        }
        RawInode { ino, b }
    }

    fn extra_end(&self) -> usize {
        if self.b.len() > 128 {
            128 + usize::from(get16(&self.b, 0x80))
        } else {
            128
        }
    }

    /// `i_mode`.
    pub fn mode(&self) -> u16 {
        get16(&self.b, 0x00)
    }
    /// Sets `i_mode`.
    pub fn set_mode(&mut self, m: u16) {
        put16(&mut self.b, 0x00, m);
    }
    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.mode() & 0xF000 == 0x4000
    }
    /// `i_links_count`.
    pub fn links(&self) -> u16 {
        get16(&self.b, 0x1A)
    }
    /// Sets `i_links_count`.
    pub fn set_links(&mut self, n: u16) {
        put16(&mut self.b, 0x1A, n);
    }
    /// `i_size` (with `i_size_high`).
    pub fn size(&self) -> u64 {
        u64::from(get32(&self.b, 0x04)) | (u64::from(get32(&self.b, 0x6C)) << 32)
    }
    /// Sets `i_size` and `i_size_high`.
    pub fn set_size(&mut self, s: u64) {
        put32(&mut self.b, 0x04, s as u32);
        put32(&mut self.b, 0x6C, (s >> 32) as u32);
    }
    /// `i_blocks` in 512-byte sectors (no huge_file).
    pub fn sectors(&self) -> u64 {
        u64::from(get32(&self.b, 0x1C)) | (u64::from(get16(&self.b, 0x74)) << 32)
    }
    /// Sets `i_blocks`.
    pub fn set_sectors(&mut self, s: u64) {
        put32(&mut self.b, 0x1C, s as u32);
        put16(&mut self.b, 0x74, (s >> 32) as u16);
    }
    /// `i_flags`.
    pub fn flags(&self) -> u32 {
        get32(&self.b, 0x20)
    }
    /// Sets `i_flags`.
    pub fn set_flags(&mut self, f: u32) {
        put32(&mut self.b, 0x20, f);
    }
    /// `i_dtime` (also the orphan list link).
    pub fn dtime(&self) -> u32 {
        get32(&self.b, 0x14)
    }
    /// Sets `i_dtime`.
    pub fn set_dtime(&mut self, t: u32) {
        put32(&mut self.b, 0x14, t);
    }
    /// Sets owner (`i_uid` + `l_i_uid_high`).
    pub fn set_uid(&mut self, uid: u32) {
        put16(&mut self.b, 0x02, uid as u16);
        put16(&mut self.b, 0x78, (uid >> 16) as u16);
    }
    /// Sets group (`i_gid` + `l_i_gid_high`).
    pub fn set_gid(&mut self, gid: u32) {
        put16(&mut self.b, 0x18, gid as u16);
        put16(&mut self.b, 0x7A, (gid >> 16) as u16);
    }
    /// `i_block[i]`.
    pub fn ptr(&self, i: usize) -> u32 {
        get32(&self.b, 0x28 + 4 * i)
    }
    /// Sets `i_block[i]`.
    pub fn set_ptr(&mut self, i: usize, v: u32) {
        put32(&mut self.b, 0x28 + 4 * i, v);
    }
    /// The 60 bytes of `i_block`.
    pub fn i_block_mut(&mut self) -> &mut [u8] {
        &mut self.b[0x28..0x64]
    }
    /// Sets `i_generation`.
    pub fn set_generation(&mut self, g: u32) {
        put32(&mut self.b, 0x64, g);
    }
    /// `i_file_acl` (low 32 bits).
    pub fn file_acl(&self) -> u32 {
        get32(&self.b, 0x68)
    }

    /// Sets a timestamp; the `_extra` field (nanoseconds and epoch bits) is
    /// written when the record has it.
    pub fn set_time(&mut self, which: Which, t: Timestamp) {
        let (base, extra) = match which {
            Which::Atime => (Some(0x08), 0x8C),
            Which::Ctime => (Some(0x0C), 0x84),
            Which::Mtime => (Some(0x10), 0x88),
            Which::Crtime => (None, 0x94),
        };
        let lo = t.sec as u32;
        // Seconds beyond 32 bits go in the epoch bits ((sec - (i32)lo) >> 32).
        let epoch = ((t.sec - i64::from(lo as i32)) >> 32) as u32 & 3;
        match base {
            Some(o) => put32(&mut self.b, o, lo),
            None => {
                if self.extra_end() >= 0x98 {
                    put32(&mut self.b, 0x90, lo);
                }
            }
        }
        if self.extra_end() >= extra + 4 {
            put32(&mut self.b, extra, (t.nsec.min(999_999_999) << 2) | epoch);
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
    (major as u32, minor as u32)
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
