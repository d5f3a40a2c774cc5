//! The orphan list (`s_last_orphan`, linked through `i_dtime`): inodes
//! whose last name is gone but which may still be open stay on it until
//! `forget` or unmount frees them; after a crash, opening for writing
//! frees (or truncates) whatever the list still holds, as ext3's
//! `ext4_orphan_cleanup` does.
//!
//! On an `orphan_file` filesystem Linux keeps its orphans in a file of
//! inode numbers instead, and marks the superblock `orphan_present` while
//! mounted. The writer processes what a crashed kernel left there, then
//! keeps its own orphans on the list, which Linux reads on such a
//! filesystem too (it falls back to the list when the file is full).
//!
//! ```text
//!   orphan file block: [ino, ino, 0, ..., ino][magic 0x0b10ca04][crc32c]
//!   crc32c(inode seed of the file, le64 block number, the inode numbers)
//! ```

use super::inode_write::RawInode;
use super::{State, WResult, Writer};
use crate::block::BlockDevice;
use crate::ext3::bytes::le32;
use crate::ext3::features::{Compat, RoCompat};
use crate::ext3::inode::field::I_FILE_ACL_LO;
use crate::ext3::journal::crc::crc32c;
use crate::ext3::superblock::field::{
    S_FEATURE_COMPAT, S_FEATURE_RO_COMPAT, S_LAST_ORPHAN, S_ORPHAN_FILE_INUM,
};
use crate::fs::Error as FsError;

/// The magic number in an orphan file block's tail.
const ORPHAN_BLOCK_MAGIC: u32 = 0x0b10_ca04;
/// An orphan file block's tail: magic and checksum.
const ORPHAN_TAIL: usize = 8;
/// The most blocks Linux reads of an orphan file.
const MAX_ORPHAN_FILE_BLOCKS: u64 = 512;

/// What a crashed kernel left in the orphan file.
#[derive(Debug, Default)]
pub(crate) struct OrphanFile {
    /// The superblock says `orphan_present`: cleared once processed.
    pub flag_set: bool,
    /// Inode numbers found in the file, each once and none on the list.
    pub entries: Vec<u32>,
    /// The file's blocks (on the device) that hold entries.
    pub blocks: Vec<u64>,
    /// The file's inode checksum seed, which starts each block's crc32c.
    pub seed: u32,
}

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

    /// Reads the on-disk orphan list, and the orphan file's entries, into
    /// the session's (at open, before the superblock is rewritten).
    pub(crate) fn load_orphans(&self, st: &mut State) -> WResult<()> {
        let (blk, off) = self.geo.sb_block();
        let sb = self.get(blk)?;
        let sb = sb.get(off..).ok_or(FsError::CORRUPT)?;
        let mut next = le32(sb, S_LAST_ORPHAN);
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
        self.load_orphan_file(st, sb, blk)
    }

    /// Reads what the orphan file holds when superblock `sb` (in block
    /// `sb_blk`) says `orphan_present`, after the list. Entries Linux
    /// would skip (reserved or past the last inode) are dropped.
    fn load_orphan_file(&self, st: &mut State, sb: &[u8], sb_blk: u64) -> WResult<()> {
        if le32(sb, S_FEATURE_RO_COMPAT) & RoCompat::ORPHAN_PRESENT == 0 {
            return Ok(());
        }
        st.file_orphans.flag_set = true;
        if le32(sb, S_FEATURE_COMPAT) & Compat::ORPHAN_FILE == 0 {
            return Ok(());
        }
        let ino = le32(sb, S_ORPHAN_FILE_INUM);
        if ino == 0 || ino > self.geo.inodes_count {
            return Err(FsError::CORRUPT.at_block(sb_blk));
        }
        let r = self.raw_inode(ino)?;
        let blocks = r.size().checked_div(self.geo.bs).ok_or(FsError::CORRUPT)?;
        if blocks > MAX_ORPHAN_FILE_BLOCKS {
            return Err(FsError::CORRUPT.at_ino(ino));
        }
        let seed = super::csum::inode_seed(self.geo.csum.unwrap_or(0), ino, &r.b);
        let mut found = std::collections::HashSet::new();
        for lblk in 0..blocks {
            let pblk = self.bmap(&r, lblk)?;
            if pblk == 0 {
                return Err(FsError::CORRUPT.at_ino(ino));
            }
            let b = self.get(pblk)?;
            let (entries, tail) = b
                .split_at_checked(b.len().saturating_sub(ORPHAN_TAIL))
                .ok_or(FsError::CORRUPT)?;
            if le32(tail, 0) != ORPHAN_BLOCK_MAGIC
                || (self.geo.csum.is_some()
                    && le32(tail, 4) != orphan_block_csum(seed, pblk, entries))
            {
                return Err(FsError::CORRUPT.at_block(pblk));
            }
            let mut any = false;
            for e in entries.chunks_exact(4).map(|e| le32(e, 0)) {
                any |= e != 0;
                let usable = e >= self.geo.first_ino && e <= self.geo.inodes_count && e != ino;
                if usable && !st.orphans.contains(&e) && found.insert(e) {
                    st.file_orphans.entries.push(e);
                }
            }
            if any {
                st.file_orphans.blocks.push(pblk);
            }
        }
        st.file_orphans.seed = seed;
        Ok(())
    }

    /// Frees (or truncates) every inode on the orphan list, and those a
    /// crashed kernel left in the orphan file, whose entries are cleared.
    pub(crate) fn process_orphans(&self, st: &mut State) -> WResult<()> {
        while let Some(&ino) = st.orphans.first() {
            self.process_orphan(st, ino)?;
        }
        if !st.file_orphans.flag_set {
            return Ok(());
        }
        for ino in std::mem::take(&mut st.file_orphans.entries) {
            self.process_orphan(st, ino)?;
        }
        let seed = st.file_orphans.seed;
        for pblk in std::mem::take(&mut st.file_orphans.blocks) {
            let mut b = self.get(pblk)?;
            let end = b.len().saturating_sub(ORPHAN_TAIL);
            b.get_mut(..end).ok_or(FsError::CORRUPT)?.fill(0);
            if self.geo.csum.is_some() {
                let (entries, tail) = b.split_at_mut(end);
                let c = orphan_block_csum(seed, pblk, entries);
                tail.get_mut(4..8)
                    .ok_or(FsError::CORRUPT)?
                    .copy_from_slice(&c.to_le_bytes());
            }
            self.put(pblk, b)?;
        }
        st.file_orphans.flag_set = false;
        Ok(())
    }

    /// Frees orphan `ino` when it has no names left, else finishes its
    /// interrupted truncate.
    fn process_orphan(&self, st: &mut State, ino: u32) -> WResult<()> {
        let r = self.raw_inode(ino)?;
        if r.links() == 0 {
            return self.release_inode(st, ino);
        }
        self.remove_orphan(st, ino)?;
        let mut r = self.raw_inode(ino)?;
        if r.mode() == 0 {
            return Ok(());
        }
        if self.has_blocks(&r) {
            let keep = r.size().div_ceil(self.geo.bs);
            self.truncate_blocks(st, &mut r, keep)?;
        }
        r.set_dtime(0);
        self.put_inode(&r)
    }
}

/// The checksum of an orphan file block at `pblk` holding `entries`.
fn orphan_block_csum(seed: u32, pblk: u64, entries: &[u8]) -> u32 {
    crc32c(crc32c(seed, &pblk.to_le_bytes()), entries)
}
