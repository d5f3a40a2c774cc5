//! Directory changes (directory.rst): adding an entry in the first gap
//! that fits (last block first, then the others, then a new block),
//! removing one by merging it into the previous entry's `rec_len` (so the
//! positions of other entries, and with them readdir cookies, never move),
//! changing the inode an entry points to, and the name cache that makes
//! `lookup` a hash probe instead of a directory scan.
//!
//! Indexed (htree) directories keep their index: new entries go to the
//! leaf the index names, and a one-block directory that fills up becomes
//! indexed ([`super::htree_write`]). When an index cannot be kept (full at
//! the depth Linux allows without large_dir, a layout the writer does not
//! know, or dir_index off) `EXT4_INDEX_FL` is cleared: the index blocks
//! read as empty entries, so the directory stays a valid linear one (with
//! metadata_csum they are rewritten as empty leaves with a checksum tail).
//! With metadata_csum every leaf ends in the 12-byte checksum tail
//! (`struct ext4_dir_entry_tail`), which entries never cover.

use super::htree_write::{lblk32, rec_len_to_disk, DxAdd};
use super::inode_write::RawInode;
use super::{State, WResult, Writer};
use crate::block::BlockDevice;
use crate::ext3::bytes::{le16, le32, set_le16, set_le32, set_u8, u8_at};
use crate::ext3::dir::rec_len_from_disk;
use crate::ext3::inode::{FileType, EXT4_INDEX_FL};
use crate::fs::Error as FsError;
use std::collections::HashMap;

/// Space an entry with a name of `n` bytes needs.
pub fn rec_len(n: usize) -> usize {
    // 8 header bytes and the name, rounded up to 4 (names are at most 255
    // bytes: `check_name`).
    n.saturating_add(11) & !3
}

/// The `file_type` byte of a directory entry.
pub fn dirent_type(t: FileType) -> u8 {
    match t {
        FileType::Regular => 1,
        FileType::Directory => 2,
        FileType::CharDevice => 3,
        FileType::BlockDevice => 4,
        FileType::Fifo => 5,
        FileType::Socket => 6,
        FileType::Symlink => 7,
    }
}

/// The entry at byte `off` of a block (empty past the end).
fn entry_at(b: &[u8], off: usize) -> &[u8] {
    b.get(off..).unwrap_or_default()
}
/// The `rec_len` of the entry at `off`, decoded for the block size.
fn rec_len_at(b: &[u8], off: usize, bs: usize) -> usize {
    rec_len_from_disk(le16(entry_at(b, off), 4), bs)
}
/// Sets the `rec_len` of the entry at `off`.
fn set_rec_len_at(b: &mut [u8], off: usize, rl: usize) {
    if let Some(e) = b.get_mut(off..) {
        set_le16(e, 4, rec_len_to_disk(rl));
    }
}

pub(crate) fn write_entry(
    b: &mut [u8],
    off: usize,
    ino: u32,
    rl: usize,
    name: &[u8],
    ft: u8,
    filetype: bool,
) {
    // The callers found room for `rl >= rec_len(name.len())` bytes at
    // `off`; nothing is written past the block.
    let Some(e) = b.get_mut(off..) else { return };
    set_le32(e, 0, ino);
    set_le16(e, 4, rec_len_to_disk(rl));
    // `check_name` keeps names to 255 bytes.
    set_u8(e, 6, u8::try_from(name.len()).unwrap_or(u8::MAX));
    set_u8(e, 7, if filetype { ft } else { 0 });
    if let Some(n) = e.get_mut(8..).and_then(|n| n.get_mut(..name.len())) {
        n.copy_from_slice(name);
    }
}

/// A directory's first block: `.` and `..`, entries ending at `end`
/// (the block size, or where the checksum tail starts).
pub fn new_dir_block(bs: usize, end: usize, ino: u32, parent: u32, filetype: bool) -> Vec<u8> {
    let mut b = vec![0u8; bs];
    write_entry(&mut b, 0, ino, 12, b".", 2, filetype);
    // `end` is the block size or 12 bytes less: 1012 or more.
    write_entry(
        &mut b,
        12,
        parent,
        end.saturating_sub(12),
        b"..",
        2,
        filetype,
    );
    b
}

/// Checks a name for a new entry.
pub fn check_name(name: &[u8]) -> WResult<()> {
    if name.len() > 255 {
        return Err(FsError::NameTooLong);
    }
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(FsError::InvalidArgument);
    }
    if name == b"." || name == b".." {
        return Err(FsError::Exists);
    }
    Ok(())
}

/// Name cache of one directory: name -> (inode, logical block).
pub type NameMap = HashMap<Vec<u8>, (u32, u32)>;

/// Bound on cached directories (each holds its names).
const MAX_CACHED_DIRS: usize = 4096;

impl<D: BlockDevice> Writer<D> {
    /// After an entry of directory `d` changed: its times move, and an
    /// index flag on a filesystem without dir_index (where Linux reads the
    /// directory linearly) is dropped.
    fn entries_changed(&self, d: &mut RawInode) -> WResult<()> {
        if d.flags() & EXT4_INDEX_FL != 0 && !self.dir_index() {
            self.clear_index(d)?;
        }
        let t = super::now();
        d.set_time(super::inode_write::Which::Mtime, t);
        d.set_time(super::inode_write::Which::Ctime, t);
        Ok(())
    }

    /// Makes htree directory `d` a linear one (see the module doc).
    fn clear_index(&self, d: &mut RawInode) -> WResult<()> {
        if self.geo.csum.is_some() {
            self.unindex(d)?;
        }
        d.set_flags(d.flags() & !EXT4_INDEX_FL);
        Ok(())
    }

    /// Rewrites the index blocks of htree directory `d` as leaves with a
    /// checksum tail (dx_root: `..` ends at the tail; dx_node: one empty
    /// entry), so that the directory reads as linear under metadata_csum.
    fn unindex(&self, d: &RawInode) -> WResult<()> {
        let end = self.geo.dir_end();
        let root_blk = self.dir_block(d, 0)?;
        let mut root = self.get(root_blk)?;
        let levels = root[30];
        let mut nodes = Vec::new();
        if levels > 0 {
            // dx_root entries: count at 34, the first block at 36, then
            // (hash, block) pairs; dx_node entries the same from offset 8.
            let mut frontier = vec![(root.clone(), 32usize)];
            for _ in 0..levels.min(2) {
                let mut next = Vec::new();
                for (b, at) in &frontier {
                    let entries = entry_at(b, *at);
                    let count = usize::from(le16(entries, 2));
                    // A full root's last entries reach into the space
                    // of a leaf's checksum tail: bound by the block.
                    for e in entries.chunks_exact(8).take(count) {
                        let lblk = u64::from(le32(e, 4));
                        let pblk = self.dir_block(d, lblk)?;
                        nodes.push(pblk);
                        next.push((self.get(pblk)?, 8usize));
                    }
                }
                frontier = next;
            }
        }
        let rl = end
            .checked_sub(12)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or(FsError::IO)?;
        set_le16(&mut root, 16, rl);
        root[24..].fill(0);
        self.put_dir(d, root_blk, root)?;
        for pblk in nodes {
            let mut b = vec![0u8; usize::try_from(self.geo.bs).map_err(|_| FsError::IO)?];
            let rl = u16::try_from(end).map_err(|_| FsError::IO)?;
            set_le16(&mut b, 4, rl);
            self.put_dir(d, pblk, b)?;
        }
        Ok(())
    }

    /// Puts a directory leaf of `d`, sealed with its checksum tail under
    /// metadata_csum.
    pub(crate) fn put_dir(&self, d: &RawInode, pblk: u64, mut b: Vec<u8>) -> WResult<()> {
        if let Some(seed) = self.geo.csum {
            let is = super::csum::inode_seed(seed, d.ino, &d.b);
            super::csum::seal_dir_leaf(&mut b, is);
        }
        self.put(pblk, b)
    }

    /// Runs `f` on the name cache of directory `dir`, loading it first.
    pub(crate) fn with_names<T>(&self, dir: u32, f: impl FnOnce(&mut NameMap) -> T) -> WResult<T> {
        let mut c = self.dcache.lock().map_err(|_| FsError::IO)?;
        if !c.contains_key(&dir) {
            let bs = self.geo.bs_nz();
            let mut m = NameMap::new();
            let mut too_far = false;
            self.fs
                .readdir_blocks_with(dir, 0, |e, next| {
                    let Ok(lblk) = u32::try_from(next.saturating_sub(1) / bs) else {
                        too_far = true;
                        return false;
                    };
                    m.insert(e.name, (e.ino, lblk));
                    true
                })
                .map_err(FsError::from)?;
            if too_far {
                // No directory reaches 2^32 blocks (its size is 32 bits
                // without large_dir, and `i_size_high` is bounded).
                return Err(FsError::CORRUPT.at_ino(dir));
            }
            if c.len() >= MAX_CACHED_DIRS {
                c.clear();
            }
            c.insert(dir, m);
        }
        let m = c.get_mut(&dir).ok_or(FsError::IO)?;
        Ok(f(m))
    }

    /// The inode named `name` in `dir`.
    pub(crate) fn find(&self, dir: u32, name: &[u8]) -> WResult<Option<u32>> {
        self.with_names(dir, |m| m.get(name).map(|e| e.0))
    }

    pub(crate) fn forget_dir(&self, dir: u32) {
        if let Ok(mut c) = self.dcache.lock() {
            c.remove(&dir);
        }
    }

    pub(crate) fn dir_block(&self, d: &RawInode, lblk: u64) -> WResult<u64> {
        let p = self.bmap(d, lblk)?;
        if p == 0 {
            return Err(FsError::IO);
        }
        Ok(p)
    }

    /// Tries to fit an entry into logical block `lblk` of `d`.
    pub(crate) fn try_insert(
        &self,
        d: &RawInode,
        lblk: u64,
        name: &[u8],
        ino: u32,
        ft: u8,
    ) -> WResult<bool> {
        let bs = self.geo.bsz();
        let end = self.geo.dir_end();
        let pblk = self.dir_block(d, lblk)?;
        let mut b = self.get(pblk)?;
        let need = rec_len(name.len());
        let mut off = 0usize;
        // Each entry's rec_len (from disk) must keep it inside `end`.
        while let Some(room) = end.checked_sub(off).filter(|&r| r >= 8) {
            let e = entry_at(&b, off);
            let e_ino = le32(e, 0);
            let rl = rec_len_at(&b, off, bs);
            if rl < 8 || rl > room {
                return Err(FsError::IO);
            }
            let used = if e_ino == 0 {
                0
            } else {
                rec_len(usize::from(u8_at(e, 6)))
            };
            // The gap after the entry's name, when the new one fits it.
            if let Some(gap) = rl.checked_sub(used).filter(|&g| g >= need) {
                if e_ino == 0 {
                    write_entry(&mut b, off, ino, rl, name, ft, self.geo.filetype);
                } else {
                    set_rec_len_at(&mut b, off, used);
                    // off + used < off + rl <= end.
                    let at = off.checked_add(used).ok_or(FsError::IO)?;
                    write_entry(&mut b, at, ino, gap, name, ft, self.geo.filetype);
                }
                self.put_dir(d, pblk, b)?;
                return Ok(true);
            }
            off = off.checked_add(rl).ok_or(FsError::IO)?;
        }
        Ok(false)
    }

    /// Adds `name` -> `ino` to directory `d` (caller writes `d` back).
    pub(crate) fn add_entry(
        &self,
        st: &mut State,
        d: &mut RawInode,
        name: &[u8],
        ino: u32,
        t: FileType,
    ) -> WResult<()> {
        check_name(name)?;
        self.check_block_map(d)?;
        self.entries_changed(d)?;
        let ft = dirent_type(t);
        let lblk = match self.add_indexed(st, d, name, ino, ft)? {
            Some(l) => l,
            None => self.add_linear(st, d, name, ino, ft)?,
        };
        let lblk = lblk32(d.ino, lblk)?;
        self.with_names(d.ino, |m| m.insert(name.to_vec(), (ino, lblk)))?;
        Ok(())
    }

    /// Adds the entry through the index of `d`, making a full one-block
    /// directory indexed first; `None` when `d` is (now) linear.
    fn add_indexed(
        &self,
        st: &mut State,
        d: &mut RawInode,
        name: &[u8],
        ino: u32,
        ft: u8,
    ) -> WResult<Option<u64>> {
        if !self.is_indexed(d) {
            // As Linux: only a directory of one full block gets an index.
            if d.size() != self.geo.bs || !self.dir_index() {
                return Ok(None);
            }
            if self.try_insert(d, 0, name, ino, ft)? {
                return Ok(Some(0));
            }
            if !self.make_indexed(st, d)? {
                return Ok(None);
            }
        }
        match self.dx_add(st, d, name, ino, ft)? {
            DxAdd::Placed(l) => Ok(Some(l)),
            DxAdd::Unindexable => {
                self.clear_index(d)?;
                Ok(None)
            }
        }
    }

    /// Adds the entry in the first gap that fits (last block first), or
    /// in a new block.
    fn add_linear(
        &self,
        st: &mut State,
        d: &mut RawInode,
        name: &[u8],
        ino: u32,
        ft: u8,
    ) -> WResult<u64> {
        let n = d.size() / self.geo.bs_nz();
        if let Some(last) = n.checked_sub(1) {
            if self.try_insert(d, last, name, ino, ft)? {
                return Ok(last);
            }
        }
        for l in 0..n.saturating_sub(1) {
            if self.try_insert(d, l, name, ino, ft)? {
                return Ok(l);
            }
        }
        let (lblk, pblk) = self.append_dir_block(st, d)?;
        let mut b = vec![0u8; self.geo.bsz()];
        let end = self.geo.dir_end();
        write_entry(&mut b, 0, ino, end, name, ft, self.geo.filetype);
        self.put_dir(d, pblk, b)?;
        Ok(lblk)
    }

    /// Finds `name` in `d`: (logical block, device block, offset,
    /// previous entry offset).
    fn locate(&self, d: &RawInode, name: &[u8]) -> WResult<(u64, u64, usize, Option<usize>)> {
        let bs = self.geo.bsz();
        let hint = self.with_names(d.ino, |m| m.get(name).map(|e| u64::from(e.1)))?;
        let Some(lblk) = hint else {
            return Err(FsError::NotFound);
        };
        let pblk = self.dir_block(d, lblk)?;
        let b = self.get(pblk)?;
        // In an index root `..` spans the block, dx_tail included.
        let end = if lblk == 0 && self.is_indexed(d) {
            bs
        } else {
            self.geo.dir_end()
        };
        let (mut off, mut prev) = (0usize, None);
        // Each entry's rec_len (from disk) must keep it inside `end`.
        while let Some(room) = end.checked_sub(off).filter(|&r| r >= 8) {
            let rl = rec_len_at(&b, off, bs);
            if rl < 8 || rl > room {
                return Err(FsError::IO);
            }
            let e = entry_at(&b, off);
            let nl = usize::from(u8_at(e, 6));
            let e_name = e.get(8..).and_then(|n| n.get(..nl));
            if le32(e, 0) != 0 && e_name == Some(name) {
                return Ok((lblk, pblk, off, prev));
            }
            prev = Some(off);
            off = off.checked_add(rl).ok_or(FsError::IO)?;
        }
        Err(FsError::IO)
    }

    /// Removes `name` from `d`; returns the inode it named.
    pub(crate) fn remove_entry(&self, d: &mut RawInode, name: &[u8]) -> WResult<u32> {
        self.entries_changed(d)?;
        let end = self.geo.dir_end();
        let (_, pblk, off, prev) = self.locate(d, name)?;
        let mut b = self.get(pblk)?;
        let ino = le32(entry_at(&b, off), 0);
        match prev {
            Some(p) => {
                let bs = self.geo.bsz();
                // Two rec_lens `locate` checked against the block.
                let rl = rec_len_at(&b, p, bs).saturating_add(rec_len_at(&b, off, bs));
                set_rec_len_at(&mut b, p, rl.min(end));
            }
            None => {
                if let Some(e) = b.get_mut(off..) {
                    set_le32(e, 0, 0);
                }
            }
        }
        self.put_dir(d, pblk, b)?;
        self.with_names(d.ino, |m| m.remove(name))?;
        Ok(ino)
    }

    /// Points the existing entry `name` of `d` at `ino` (type `t`).
    pub(crate) fn retarget_entry(
        &self,
        d: &mut RawInode,
        name: &[u8],
        ino: u32,
        t: FileType,
    ) -> WResult<()> {
        self.entries_changed(d)?;
        let (lblk, pblk, off, _) = self.locate(d, name)?;
        let mut b = self.get(pblk)?;
        if let Some(e) = b.get_mut(off..) {
            set_le32(e, 0, ino);
            if self.geo.filetype {
                set_u8(e, 7, dirent_type(t));
            }
        }
        if lblk == 0 && self.is_indexed(d) {
            self.put_dx(d, pblk, b, crate::ext3::htree::field::DX_ROOT_COUNTLIMIT)?;
        } else {
            self.put_dir(d, pblk, b)?;
        }
        self.with_names(d.ino, |m| {
            if let Some(e) = m.get_mut(name) {
                e.0 = ino;
            }
        })
    }

    /// True when directory `dir` holds only `.` and `..`.
    pub(crate) fn dir_is_empty(&self, dir: u32) -> WResult<bool> {
        self.with_names(dir, |m| m.keys().all(|k| k == b"." || k == b".."))
    }
}
