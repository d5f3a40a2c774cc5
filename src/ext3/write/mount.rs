//! Mount accounting in the superblock, as Linux keeps it
//! (`fs/ext4/super.c`, `ext4_setup_super`; `fs/ext4/file.c`,
//! `ext4_sample_last_mounted`), and remounts between read-only and
//! read-write.
//!
//! A read-write mount increments `s_mnt_count` (0x34), sets `s_mtime`
//! (0x2C, last mount time) and gives a zero `s_max_mnt_count` (0x36) the
//! kernel's default of 20; the mount point is recorded in
//! `s_last_mounted` (0x88, 64 bytes). Every superblock write sets
//! `s_wtime` (0x30). A read-only mount changes none of them.

use super::{FsError, WResult, Writer};
use crate::block::BlockDevice;
use crate::ext3::bytes::{le16, set_le16, set_le32};
use crate::ext3::superblock::field::{S_LAST_MOUNTED, S_MAX_MNT_COUNT, S_MNT_COUNT, S_MTIME};

/// `EXT4_DFL_MAX_MNT_COUNT` (the field is a signed 16-bit count).
const DFL_MAX_MNT_COUNT: i16 = 20;
/// `s_last_mounted` is a 64-byte field, NUL padded.
const LAST_MOUNTED_LEN: usize = 64;

/// Records a read-write mount at time `now` on `path` in the 1024-byte
/// superblock `s`.
pub(crate) fn stamp_mount(s: &mut [u8], path: &[u8], now: u32) {
    if le16(s, S_MAX_MNT_COUNT) == 0 {
        set_le16(s, S_MAX_MNT_COUNT, DFL_MAX_MNT_COUNT.unsigned_abs());
    }
    let count = le16(s, S_MNT_COUNT).wrapping_add(1);
    set_le16(s, S_MNT_COUNT, count);
    set_le32(s, S_MTIME, now);
    let field = &mut s[S_LAST_MOUNTED..S_LAST_MOUNTED + LAST_MOUNTED_LEN];
    field.fill(0);
    let n = path.len().min(LAST_MOUNTED_LEN);
    field[..n].copy_from_slice(&path[..n]);
}

impl<D: BlockDevice> Writer<D> {
    /// Follows a remount of the mounted filesystem. To read-only: commit,
    /// release orphans and mark the superblock clean (so that the next
    /// read-write mount is counted again). To read-write: mark it in use
    /// now, counting the mount, as the kernel does at remount rather than
    /// at the first change. Either is a no-op when already so.
    pub fn remount(&self, read_only: bool) -> WResult<()> {
        if read_only {
            return self.close();
        }
        let mut st = self.st.write().map_err(|_| FsError::IO)?;
        if st.broken {
            return Err(FsError::IO);
        }
        if !st.marked_in_use {
            self.mark_in_use(&mut st)?;
        }
        Ok(())
    }

    /// True while the superblock on the device says "in use".
    pub fn in_use(&self) -> bool {
        self.st.read().is_ok_and(|st| st.marked_in_use)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_counts_stamps_the_time_and_records_the_path() {
        let mut s = vec![0u8; 1024];
        s[0x34..0x36].copy_from_slice(&7u16.to_le_bytes());
        s[0x36..0x38].copy_from_slice(&(-1i16).to_le_bytes());
        s[0x88..0x88 + 64].fill(b'x');
        stamp_mount(&mut s, b"/", 1_700_000_000);
        assert_eq!(u16::from_le_bytes([s[0x34], s[0x35]]), 8);
        assert_eq!(i16::from_le_bytes([s[0x36], s[0x37]]), -1);
        assert_eq!(
            u32::from_le_bytes([s[0x2C], s[0x2D], s[0x2E], s[0x2F]]),
            1_700_000_000
        );
        assert_eq!(&s[0x88..0x8A], b"/\0");
        assert!(s[0x89..0x88 + 64].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_zero_maximal_mount_count_becomes_the_kernels_default_and_long_paths_are_cut() {
        let mut s = vec![0u8; 1024];
        s[0x34..0x36].copy_from_slice(&u16::MAX.to_le_bytes());
        stamp_mount(&mut s, &[b'a'; 100], 1);
        assert_eq!(i16::from_le_bytes([s[0x36], s[0x37]]), 20);
        assert_eq!(u16::from_le_bytes([s[0x34], s[0x35]]), 0);
        assert!(s[0x88..0x88 + 64].iter().all(|&b| b == b'a'));
        assert_eq!(s[0x88 + 64], 0);
    }
}
