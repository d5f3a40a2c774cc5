//! The orphan list (`s_last_orphan`, linked through `i_dtime`): inodes
//! whose last name is gone but which may still be open stay on it until
//! `forget` or unmount frees them; after a crash, opening for writing
//! frees (or truncates) whatever the list still holds, as ext3's
//! `ext4_orphan_cleanup` does.

use super::inode_write::RawInode;
use super::{State, WResult, Writer};
use crate::block::BlockDevice;
use crate::ext3::bytes::le32;
use crate::ext3::inode::field::I_FILE_ACL_LO;
use crate::ext3::superblock::field::S_LAST_ORPHAN;
use crate::fs::Error as FsError;

impl<D: BlockDevice> Writer<D> {
    /// Puts `r` (about to be written back by the caller) on the orphan list.
    pub(crate) fn add_orphan(&self, st: &mut State, r: &mut RawInode) {
        if st.orphans.contains(&r.ino) {
            return;
        }
        r.set_dtime(st.orphans.first().copied().unwrap_or(0));
        st.orphans.insert(0, r.ino);
    }

    /// Takes `ino` off the orphan list.
    pub(crate) fn remove_orphan(&self, st: &mut State, ino: u32) -> WResult<()> {
        let Some(i) = st.orphans.iter().position(|&o| o == ino) else {
            return Ok(());
        };
        // The one before it on the list now points at the one after it.
        if let Some(&prev) = i.checked_sub(1).and_then(|j| st.orphans.get(j)) {
            let next = i
                .checked_add(1)
                .and_then(|j| st.orphans.get(j))
                .copied()
                .unwrap_or(0);
            let mut p = self.raw_inode(prev)?;
            p.set_dtime(next);
            self.put_inode(&p)?;
        }
        st.orphans.remove(i);
        Ok(())
    }

    /// True when `r`'s `i_block` holds block pointers (not a fast symlink
    /// target or a device number).
    pub(crate) fn has_blocks(&self, r: &RawInode) -> bool {
        match r.mode() & 0xF000 {
            0x8000 | 0x4000 => true,
            0xA000 => {
                r.sectors()
                    > if r.file_acl() != 0 {
                        self.geo.bs / 512
                    } else {
                        0
                    }
            }
            _ => false,
        }
    }

    /// Drops the inode's extended-attribute block reference.
    fn release_xattr_block(&self, st: &mut State, r: &mut RawInode) -> WResult<()> {
        let blk = u64::from(r.file_acl());
        if blk == 0 {
            return Ok(());
        }
        if blk >= self.geo.blocks_count {
            return Err(FsError::IO);
        }
        let mut b = self.get(blk)?;
        let refs = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        // h_refcount: the last reference frees the block.
        match refs.checked_sub(1) {
            Some(left) if left > 0 => {
                b[4..8].copy_from_slice(&left.to_le_bytes());
                self.put_xattr(blk, b)?;
            }
            _ => self.free_blocks(st, blk, 1)?,
        }
        r.b[I_FILE_ACL_LO..I_FILE_ACL_LO + 4].fill(0);
        r.set_sectors(r.sectors().saturating_sub(self.geo.bs / 512));
        Ok(())
    }

    /// Frees an inode with no names left: its blocks, attribute block and
    /// the inode itself.
    pub(crate) fn release_inode(&self, st: &mut State, ino: u32) -> WResult<()> {
        self.remove_orphan(st, ino)?;
        let mut r = self.raw_inode(ino)?;
        if r.links() != 0 || r.mode() == 0 {
            return Ok(());
        }
        if self.has_blocks(&r) {
            self.truncate_blocks(st, &mut r, 0)?;
        }
        self.release_xattr_block(st, &mut r)?;
        if r.flags() & crate::ext3::inode::EXT4_EXTENTS_FL != 0 {
            // As the kernel leaves it: an empty tree (e2fsck takes a
            // zeroed i_block under EXTENTS_FL for garbage).
            super::extent_write::empty_root(r.i_block_mut());
        } else {
            r.i_block_mut().fill(0);
        }
        r.set_size(0);
        r.set_sectors(0);
        r.set_dtime(super::now_secs().max(1));
        let dir = r.is_dir();
        self.put_inode(&r)?;
        self.forget_dir(ino);
        self.free_inode(st, ino, dir)
    }

    /// Reads the on-disk orphan list into the session's (at open, before
    /// the superblock is rewritten).
    pub(crate) fn load_orphans(&self, st: &mut State) -> WResult<()> {
        let (blk, off) = self.geo.sb_block();
        let sb = self.get(blk)?;
        let mut next = le32(&sb[off..], S_LAST_ORPHAN);
        let mut seen = 0u32;
        while next != 0 && !st.orphans.contains(&next) {
            if next > self.geo.inodes_count || seen > self.geo.inodes_count {
                return Err(FsError::IO);
            }
            // seen <= s_inodes_count (checked above): cannot saturate.
            seen = seen.saturating_add(1);
            st.orphans.push(next);
            next = self.raw_inode(next)?.dtime();
        }
        Ok(())
    }

    /// Frees (or truncates) every inode on the orphan list.
    pub(crate) fn process_orphans(&self, st: &mut State) -> WResult<()> {
        while let Some(&ino) = st.orphans.first() {
            let r = self.raw_inode(ino)?;
            if r.links() == 0 {
                self.release_inode(st, ino)?;
            } else {
                // An orphan with links is an interrupted truncate.
                self.remove_orphan(st, ino)?;
                let mut r = self.raw_inode(ino)?;
                if self.has_blocks(&r) {
                    let keep = r.size().div_ceil(self.geo.bs);
                    self.truncate_blocks(st, &mut r, keep)?;
                }
                r.set_dtime(0);
                self.put_inode(&r)?;
            }
        }
        Ok(())
    }
}
