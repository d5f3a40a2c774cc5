//! `rename`: moving names across directories, replacing a target (which
//! must be compatible: directory for directory, empty), RENAME_NOREPLACE
//! and RENAME_EXCHANGE, with `..` and the parents' link counts fixed when
//! a directory changes parent, and the check that refuses moving a
//! directory into its own subtree.

use super::dir_write::check_name;
use super::inode_write::Which;
use super::ops::LINK_MAX;
use super::{State, WResult, Writer};
use crate::block::BlockDevice;
use crate::ext3::inode::FileType;
use crate::fs::Error as FsError;
use crate::fs::RenameFlags;

impl<D: BlockDevice> Writer<D> {
    /// True when directory `anc` is `ino` or one of its ancestors.
    fn is_ancestor(&self, anc: u32, mut ino: u32) -> WResult<bool> {
        for _ in 0..=self.geo.inodes_count {
            if ino == anc {
                return Ok(true);
            }
            if ino == crate::ext3::ROOT_INO {
                return Ok(false);
            }
            ino = self.find(ino, b"..")?.ok_or(FsError::IO)?;
        }
        Err(FsError::SymlinkLoop)
    }

    /// Moves directory `child` from `old` to `new` parent: `..` and links.
    fn reparent(&self, child: u32, old: u32, new: u32) -> WResult<()> {
        if old == new {
            return Ok(());
        }
        let mut c = self.raw_inode(child)?;
        self.retarget_entry(&mut c, b"..", new, FileType::Directory)?;
        self.put_inode(&c)?;
        let mut o = self.raw_inode(old)?;
        o.set_links(o.links().saturating_sub(1));
        self.put_inode(&o)?;
        let mut n = self.raw_inode(new)?;
        if n.links() >= LINK_MAX {
            return Err(FsError::TooManyLinks);
        }
        // Below LINK_MAX (checked above), so this never fails.
        n.set_links(n.links().checked_add(1).ok_or(FsError::TooManyLinks)?);
        self.put_inode(&n)
    }

    pub(crate) fn rename_locked(
        &self,
        st: &mut State,
        parent: u32,
        name: &[u8],
        new_parent: u32,
        new_name: &[u8],
        flags: RenameFlags,
    ) -> WResult<()> {
        if flags.exchange && flags.noreplace {
            return Err(FsError::InvalidArgument);
        }
        if name == b"." || name == b".." {
            return Err(FsError::InvalidArgument);
        }
        check_name(new_name)?;
        self.live_dir(parent)?;
        self.live_dir(new_parent)?;
        let src = self.find(parent, name)?.ok_or(FsError::NotFound)?;
        let dst = self.find(new_parent, new_name)?;
        if parent == new_parent && name == new_name {
            return Ok(());
        }
        let s = self.raw_inode(src)?;
        let st_type = Self::type_of(&s)?;
        if s.is_dir() && self.is_ancestor(src, new_parent)? {
            return Err(FsError::InvalidArgument);
        }
        if flags.exchange {
            let dst = dst.ok_or(FsError::NotFound)?;
            let d = self.raw_inode(dst)?;
            let dt = Self::type_of(&d)?;
            if d.is_dir() && self.is_ancestor(dst, parent)? {
                return Err(FsError::InvalidArgument);
            }
            let mut p = self.raw_inode(parent)?;
            self.retarget_entry(&mut p, name, dst, dt)?;
            self.put_inode(&p)?;
            let mut np = self.raw_inode(new_parent)?;
            self.retarget_entry(&mut np, new_name, src, st_type)?;
            self.put_inode(&np)?;
            if s.is_dir() {
                self.reparent(src, parent, new_parent)?;
            }
            if d.is_dir() {
                self.reparent(dst, new_parent, parent)?;
            }
            for ino in [src, dst] {
                let mut r = self.raw_inode(ino)?;
                r.set_time(Which::Ctime, super::now());
                self.put_inode(&r)?;
            }
            return Ok(());
        }
        match dst {
            Some(_) if flags.noreplace => return Err(FsError::Exists),
            Some(d) if d == src => return Ok(()),
            Some(d) => {
                let mut dr = self.raw_inode(d)?;
                match (s.is_dir(), dr.is_dir()) {
                    (true, false) => return Err(FsError::NotADirectory),
                    (false, true) => return Err(FsError::IsADirectory),
                    (true, true) if !self.dir_is_empty(d)? => return Err(FsError::NotEmpty),
                    _ => {}
                }
                let mut np = self.raw_inode(new_parent)?;
                self.retarget_entry(&mut np, new_name, src, st_type)?;
                if dr.is_dir() {
                    np.set_links(np.links().saturating_sub(1));
                }
                self.put_inode(&np)?;
                self.drop_link(st, &mut dr)?;
                self.put_inode(&dr)?;
            }
            None => {
                let mut np = self.raw_inode(new_parent)?;
                self.add_entry(st, &mut np, new_name, src, st_type)?;
                self.put_inode(&np)?;
            }
        }
        let mut p = self.raw_inode(parent)?;
        self.remove_entry(&mut p, name)?;
        self.put_inode(&p)?;
        if s.is_dir() {
            self.reparent(src, parent, new_parent)?;
        }
        let mut r = self.raw_inode(src)?;
        r.set_time(Which::Ctime, super::now());
        self.put_inode(&r)
    }
}
