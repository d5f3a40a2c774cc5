//! [`InodeFs`] over the writer: each mutating operation takes the metadata
//! lock, changes blocks of the running transaction, and ends with
//! `end_op` (which commits when the transaction is large or old, or always
//! with `sync_each_op`). Reads take the lock shared and go through the
//! reader, which sees the transaction's blocks.

use super::dir_write::check_name;
use super::inode_write::{split_dev, RawInode, Which};
use super::{State, WResult, Writer};
use crate::block::{u64_from, BlockDevice};
use crate::ext3::bytes::lo16;
use crate::ext3::inode::FileType;
use crate::ext3::{Metadata, StatFs, Timestamp};
use crate::fs::Error as FsError;
use crate::fs::{DirEntry, Ino, InodeFs, Owner, RenameFlags, SetAttr, SetTime, XattrMode};
use std::sync::{RwLockReadGuard, RwLockWriteGuard};

/// Largest link count (ext3's `EXT4_LINK_MAX` without dir_nlink).
pub(crate) const LINK_MAX: u16 = 32000;

fn ts(t: SetTime) -> Timestamp {
    match t {
        SetTime::Now => super::now(),
        SetTime::At(t) => t,
    }
}

impl<D: BlockDevice> Writer<D> {
    fn wlock(&self) -> WResult<RwLockWriteGuard<'_, State>> {
        let st = self.st.write().map_err(|_| FsError::IO)?;
        if st.broken {
            return Err(FsError::IO);
        }
        Ok(st)
    }

    fn rlock(&self) -> WResult<RwLockReadGuard<'_, State>> {
        self.st.read().map_err(|_| FsError::IO)
    }

    fn meta(&self, ino: u32) -> WResult<Metadata> {
        self.fs
            .getattr(ino)
            .map_err(|e| FsError::from(e).at_ino(ino))
    }

    /// A live directory's record.
    pub(crate) fn live_dir(&self, ino: u32) -> WResult<RawInode> {
        let r = self.raw_inode(ino)?;
        if !r.is_dir() {
            return Err(FsError::NotADirectory);
        }
        if r.links() == 0 {
            return Err(FsError::NotFound);
        }
        Ok(r)
    }

    /// Allocates and fills a new inode (not yet written) and links it as
    /// `name` in `parent`; `init` sets its type-specific contents.
    fn make_node(
        &self,
        st: &mut State,
        parent: u32,
        name: &[u8],
        mode: u16,
        owner: Owner,
        init: &mut dyn FnMut(&Self, &mut State, &mut RawInode) -> WResult<()>,
    ) -> WResult<Metadata> {
        check_name(name)?;
        let mut p = self.live_dir(parent)?;
        if self.find(parent, name)?.is_some() {
            return Err(FsError::Exists);
        }
        let t = FileType::from_mode(mode).ok_or(FsError::InvalidArgument)?;
        let dir = t == FileType::Directory;
        if dir && p.links() >= LINK_MAX {
            return Err(FsError::TooManyLinks);
        }
        let ino = self.alloc_inode(st, parent, dir)?;
        let mut r = RawInode::new(ino, self.geo.inode_size, self.geo.extra_isize);
        r.set_mode(mode);
        r.set_uid(owner.uid);
        r.set_gid(owner.gid);
        r.set_links(if dir { 2 } else { 1 });
        let now = super::now();
        for w in [Which::Atime, Which::Ctime, Which::Mtime, Which::Crtime] {
            r.set_time(w, now);
        }
        st.generation = st.generation.wrapping_add(0x9E37_79B9);
        r.set_generation(st.generation);
        if self.geo.extents && matches!(t, FileType::Regular | FileType::Directory) {
            r.set_flags(r.flags() | crate::ext3::inode::EXT4_EXTENTS_FL);
            super::extent_write::empty_root(r.i_block_mut());
        }
        let made = init(self, st, &mut r).and_then(|()| self.add_entry(st, &mut p, name, ino, t));
        if let Err(e) = made {
            if self.has_blocks(&r) {
                self.truncate_blocks(st, &mut r, 0)?;
            }
            self.free_inode(st, ino, dir)?;
            return Err(e);
        }
        if dir {
            // Below LINK_MAX (checked above), so this never fails.
            p.set_links(p.links().checked_add(1).ok_or(FsError::TooManyLinks)?);
        }
        self.put_inode(&p)?;
        self.put_inode(&r)?;
        if dir {
            // A new directory's names are known: no need to read them back.
            self.with_names(ino, |_| ())?;
        }
        self.end_op(st)?;
        self.meta(ino)
    }

    /// Drops one name of `r` (already removed from its directory).
    pub(crate) fn drop_link(&self, st: &mut State, r: &mut RawInode) -> WResult<()> {
        if r.is_dir() {
            r.set_links(0);
            self.truncate_blocks(st, r, 0)?;
            r.set_size(0);
            self.forget_dir(r.ino);
        } else {
            r.set_links(r.links().saturating_sub(1));
        }
        r.set_time(Which::Ctime, super::now());
        if r.links() == 0 {
            self.add_orphan(st, r);
        }
        Ok(())
    }

    pub(crate) fn type_of(r: &RawInode) -> WResult<FileType> {
        FileType::from_mode(r.mode()).ok_or(FsError::IO)
    }
}

impl<D: BlockDevice> InodeFs for Writer<D> {
    fn lookup(&self, parent: Ino, name: &[u8]) -> WResult<Metadata> {
        let _g = self.rlock()?;
        if name.len() > 255 {
            return Err(FsError::NameTooLong);
        }
        let ino = self.find(parent, name)?.ok_or(FsError::NotFound)?;
        self.meta(ino)
    }

    fn getattr(&self, ino: Ino) -> WResult<Metadata> {
        let _g = self.rlock()?;
        self.meta(ino)
    }

    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> WResult<usize> {
        let _g = self.rlock()?;
        self.fs
            .read(ino, offset, buf)
            .map_err(|e| FsError::from(e).at_ino(ino))
    }

    fn readlink(&self, ino: Ino) -> WResult<Vec<u8>> {
        let _g = self.rlock()?;
        self.fs
            .readlink(ino)
            .map_err(|e| FsError::from(e).at_ino(ino))
    }

    fn readdir(&self, ino: Ino, cookie: u64, f: &mut dyn FnMut(DirEntry) -> bool) -> WResult<()> {
        let _g = self.rlock()?;
        self.fs
            .readdir_with(ino, cookie, |e, next_cookie| {
                f(DirEntry {
                    ino: e.ino,
                    file_type: e.file_type,
                    name: e.name,
                    next_cookie,
                })
            })
            .map_err(FsError::from)
    }

    fn statfs(&self) -> WResult<StatFs> {
        let st = self.rlock()?;
        Ok(StatFs {
            block_size: u32::try_from(self.geo.bs).map_err(|_| FsError::CORRUPT)?,
            blocks: self.geo.blocks_count,
            free_blocks: st.free_blocks,
            available_blocks: st.free_blocks.saturating_sub(self.geo.r_blocks),
            inodes: u64::from(self.geo.inodes_count),
            free_inodes: u64::from(st.free_inodes),
            name_max: 255,
        })
    }

    fn listxattr(&self, ino: Ino) -> WResult<Vec<Vec<u8>>> {
        let _g = self.rlock()?;
        self.fs
            .listxattr(ino)
            .map_err(|e| FsError::from(e).at_ino(ino))
    }

    fn getxattr(&self, ino: Ino, name: &[u8]) -> WResult<Vec<u8>> {
        let _g = self.rlock()?;
        self.fs
            .getxattr(ino, name)
            .map_err(FsError::from)?
            .ok_or(FsError::NoAttribute)
    }

    fn setattr(&self, ino: Ino, c: &SetAttr) -> WResult<Metadata> {
        let mut st = self.wlock()?;
        let mut r = self.raw_inode(ino)?;
        if r.mode() == 0 {
            return Err(FsError::NotFound);
        }
        if let Some(size) = c.size {
            if r.is_dir() {
                return Err(FsError::IsADirectory);
            }
            if r.mode() & 0xF000 != 0x8000 {
                return Err(FsError::InvalidArgument);
            }
            self.set_size(&mut st, &mut r, size)?;
            r.set_time(Which::Mtime, super::now());
        }
        if let Some(m) = c.mode {
            r.set_mode((r.mode() & 0xF000) | lo16(m & 0o7777));
        }
        if let Some(u) = c.uid {
            r.set_uid(u);
        }
        if let Some(g) = c.gid {
            r.set_gid(g);
        }
        if let Some(t) = c.atime {
            r.set_time(Which::Atime, ts(t));
        }
        if let Some(t) = c.mtime {
            r.set_time(Which::Mtime, ts(t));
        }
        r.set_time(Which::Ctime, super::now());
        self.put_inode(&r)?;
        self.end_op(&mut st)?;
        self.meta(ino)
    }

    fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> WResult<usize> {
        let mut st = self.wlock()?;
        let mut r = self.raw_inode(ino)?;
        match r.mode() & 0xF000 {
            0x8000 => {}
            0x4000 => return Err(FsError::IsADirectory),
            _ => return Err(FsError::InvalidArgument),
        }
        self.check_block_map(&r)?;
        let n = self.write_data(&mut st, &mut r, offset, data);
        let now = super::now();
        r.set_time(Which::Mtime, now);
        r.set_time(Which::Ctime, now);
        self.put_inode(&r)?;
        let n = n?;
        self.end_op(&mut st)?;
        Ok(n)
    }

    fn fallocate(&self, ino: Ino, offset: u64, len: u64, mode: u32) -> WResult<()> {
        let mut st = self.wlock()?;
        let mut r = self.raw_inode(ino)?;
        match r.mode() & 0xF000 {
            0x8000 => {}
            0 => return Err(FsError::NotFound),
            0x4000 => return Err(FsError::IsADirectory),
            _ => return Err(FsError::Unsupported),
        }
        let done = self.fallocate_data(&mut st, &mut r, offset, len, mode);
        if matches!(done, Err(FsError::InvalidArgument | FsError::Unsupported)) {
            return done;
        }
        r.set_time(Which::Ctime, super::now());
        self.put_inode(&r)?;
        done?;
        self.end_op(&mut st)
    }

    fn create(&self, parent: Ino, name: &[u8], mode: u32, owner: Owner) -> WResult<Metadata> {
        let mut st = self.wlock()?;
        let mode = 0o100000 | lo16(mode & 0o7777);
        self.make_node(&mut st, parent, name, mode, owner, &mut |_, _, _| Ok(()))
    }

    fn mknod(
        &self,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u64,
        owner: Owner,
    ) -> WResult<Metadata> {
        let mut st = self.wlock()?;
        let t = lo16(mode & 0o170000);
        if !matches!(t, 0o100000 | 0o020000 | 0o060000 | 0o010000 | 0o140000) {
            return Err(FsError::InvalidArgument);
        }
        let m = t | lo16(mode & 0o7777);
        self.make_node(&mut st, parent, name, m, owner, &mut |_, _, r| {
            if matches!(t, 0o020000 | 0o060000) {
                let (ma, mi) = split_dev(rdev);
                r.set_rdev(ma, mi);
            }
            Ok(())
        })
    }

    fn mkdir(&self, parent: Ino, name: &[u8], mode: u32, owner: Owner) -> WResult<Metadata> {
        let mut st = self.wlock()?;
        let m = 0o040000 | lo16(mode & 0o7777);
        self.make_node(&mut st, parent, name, m, owner, &mut |w, st, r| {
            let blk = w.alloc_block(st, w.inode_goal(r.ino))?;
            let b = super::dir_write::new_dir_block(
                w.geo.bsz(),
                w.geo.dir_end(),
                r.ino,
                parent,
                w.geo.filetype,
            );
            w.put_dir(r, blk, b)?;
            w.bmap_set(st, r, 0, blk)?;
            r.set_size(w.geo.bs);
            r.set_sectors(w.geo.bs / 512);
            Ok(())
        })
    }

    fn symlink(&self, parent: Ino, name: &[u8], target: &[u8], owner: Owner) -> WResult<Metadata> {
        let mut st = self.wlock()?;
        if target.is_empty() {
            return Err(FsError::NotFound);
        }
        if target.len() >= self.geo.bsz() || target.len() > 4095 {
            return Err(FsError::NameTooLong);
        }
        self.make_node(&mut st, parent, name, 0o120777, owner, &mut |w, st, r| {
            r.set_size(u64_from(target.len()));
            if target.len() < 60 {
                r.i_block_mut()[..target.len()].copy_from_slice(target);
                return Ok(());
            }
            let blk = w.alloc_block(st, w.inode_goal(r.ino))?;
            // A block-mapped symlink holds a 32-bit pointer.
            let Ok(blk32) = u32::try_from(blk) else {
                w.free_blocks(st, blk, 1)?;
                return Err(FsError::NoSpace.at_ino(r.ino));
            };
            let mut b = vec![0u8; w.geo.bsz()];
            b[..target.len()].copy_from_slice(target);
            w.put(blk, b)?;
            r.set_ptr(0, blk32);
            r.set_sectors(w.geo.bs / 512);
            Ok(())
        })
    }

    fn link(&self, ino: Ino, new_parent: Ino, new_name: &[u8]) -> WResult<Metadata> {
        let mut st = self.wlock()?;
        check_name(new_name)?;
        let mut r = self.raw_inode(ino)?;
        if r.is_dir() {
            return Err(FsError::NotPermitted);
        }
        if r.links() == 0 || r.mode() == 0 {
            return Err(FsError::NotFound);
        }
        if r.links() >= LINK_MAX {
            return Err(FsError::TooManyLinks);
        }
        let mut p = self.live_dir(new_parent)?;
        if self.find(new_parent, new_name)?.is_some() {
            return Err(FsError::Exists);
        }
        self.add_entry(&mut st, &mut p, new_name, ino, Self::type_of(&r)?)?;
        self.put_inode(&p)?;
        // Below LINK_MAX (checked above), so this never fails.
        r.set_links(r.links().checked_add(1).ok_or(FsError::TooManyLinks)?);
        r.set_time(Which::Ctime, super::now());
        self.put_inode(&r)?;
        self.end_op(&mut st)?;
        self.meta(ino)
    }

    fn unlink(&self, parent: Ino, name: &[u8]) -> WResult<()> {
        let mut st = self.wlock()?;
        let mut p = self.live_dir(parent)?;
        let ino = self.find(parent, name)?.ok_or(FsError::NotFound)?;
        let mut r = self.raw_inode(ino)?;
        if r.is_dir() {
            return Err(FsError::IsADirectory);
        }
        self.remove_entry(&mut p, name)?;
        self.put_inode(&p)?;
        self.drop_link(&mut st, &mut r)?;
        self.put_inode(&r)?;
        self.end_op(&mut st)
    }

    fn rmdir(&self, parent: Ino, name: &[u8]) -> WResult<()> {
        let mut st = self.wlock()?;
        if name == b"." {
            return Err(FsError::InvalidArgument);
        }
        if name == b".." {
            return Err(FsError::NotEmpty);
        }
        let mut p = self.live_dir(parent)?;
        let ino = self.find(parent, name)?.ok_or(FsError::NotFound)?;
        let mut r = self.raw_inode(ino)?;
        if !r.is_dir() {
            return Err(FsError::NotADirectory);
        }
        if !self.dir_is_empty(ino)? {
            return Err(FsError::NotEmpty);
        }
        self.remove_entry(&mut p, name)?;
        p.set_links(p.links().saturating_sub(1));
        self.put_inode(&p)?;
        self.drop_link(&mut st, &mut r)?;
        self.put_inode(&r)?;
        self.end_op(&mut st)
    }

    fn rename(
        &self,
        parent: Ino,
        name: &[u8],
        new_parent: Ino,
        new_name: &[u8],
        flags: RenameFlags,
    ) -> WResult<()> {
        let mut st = self.wlock()?;
        self.rename_locked(&mut st, parent, name, new_parent, new_name, flags)?;
        self.end_op(&mut st)
    }

    fn setxattr(&self, ino: Ino, name: &[u8], value: &[u8], mode: XattrMode) -> WResult<()> {
        self.change_xattr(ino, name, Some(value), mode)
    }

    fn removexattr(&self, ino: Ino, name: &[u8]) -> WResult<()> {
        self.change_xattr(ino, name, None, XattrMode::Any)
    }

    fn forget(&self, ino: Ino) {
        let Ok(mut st) = self.wlock() else { return };
        if st.orphans.contains(&ino) && self.release_inode(&mut st, ino).is_ok() {
            let _ = self.end_op(&mut st);
        }
    }

    fn fsync(&self, _ino: Ino, _datasync: bool) -> WResult<()> {
        let mut st = self.wlock()?;
        self.commit(&mut st)
    }

    fn sync_fs(&self) -> WResult<()> {
        let mut st = self.wlock()?;
        self.commit(&mut st)
    }

    fn unmount(&self) -> WResult<()> {
        self.close()
    }
}
