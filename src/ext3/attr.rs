//! Inode metadata as callers want it (`getattr`), filesystem totals
//! (`statfs`) and extended attributes (`listxattr`, `getxattr`).

use super::error::{At, Corrupt, Error, Result};
use super::fs::Ext3;
use super::inode::Inode;
use super::types::BlockIndex;
use super::xattr::{parse_block, parse_inode_area, Xattr};
use crate::block::BlockDevice;
use crate::fs::FileType;
pub use crate::fs::{Metadata, StatFs};

impl<D: BlockDevice> Ext3<D> {
    /// Metadata of an already parsed inode.
    pub fn metadata_of(&self, ino: u32, inode: &Inode) -> Result<Metadata> {
        let file_type = inode.file_type().ok_or_else(|| {
            Error::corrupt(
                format!("inode {ino}"),
                Corrupt::BadField {
                    field: "i_mode",
                    value: u64::from(inode.i_mode),
                },
            )
        })?;
        let rdev = match file_type {
            FileType::CharDevice | FileType::BlockDevice => inode.device_number(),
            _ => (0, 0),
        };
        Ok(Metadata {
            ino,
            file_type,
            perm: inode.permissions(),
            nlink: inode.i_links_count,
            uid: inode.i_uid,
            gid: inode.i_gid,
            size: inode.i_size,
            blocks: inode.sectors(self.block_size()),
            atime: inode.i_atime,
            mtime: inode.i_mtime,
            ctime: inode.i_ctime,
            crtime: inode.i_crtime,
            rdev,
            flags: inode.i_flags,
            generation: inode.i_generation,
        })
    }

    /// Metadata of inode `ino`.
    pub fn getattr(&self, ino: u32) -> Result<Metadata> {
        let inode = self.inode(ino)?;
        self.metadata_of(ino, &inode)
    }

    /// Filesystem totals from the superblock.
    pub fn statfs(&self) -> StatFs {
        let sb = &self.sb;
        StatFs {
            block_size: sb.block_size(),
            blocks: sb.s_blocks_count,
            free_blocks: sb.s_free_blocks_count,
            available_blocks: sb.s_free_blocks_count.saturating_sub(sb.s_r_blocks_count),
            inodes: u64::from(sb.s_inodes_count),
            free_inodes: u64::from(sb.s_free_inodes_count),
            name_max: 255,
        }
    }

    /// All extended attributes of a parsed inode: in-inode ones first, then
    /// those of its attribute block.
    pub fn xattrs_of(&self, ino: u32, inode: &Inode) -> Result<Vec<Xattr>> {
        let mut v =
            parse_inode_area(&inode.inline_xattrs).at(|| format!("inode {ino} attributes"))?;
        if inode.i_file_acl != 0 {
            let blk = inode.i_file_acl;
            let b = self.read_block(BlockIndex(blk), &format!("inode {ino} attribute block"))?;
            v.extend(parse_block(&b).at(|| format!("inode {ino} attribute block {blk}"))?);
        }
        Ok(v)
    }

    /// Names of the extended attributes of `ino` (without the internal
    /// `system.data` of inline-data inodes).
    pub fn listxattr(&self, ino: u32) -> Result<Vec<Vec<u8>>> {
        let inode = self.inode(ino)?;
        Ok(self
            .xattrs_of(ino, &inode)?
            .into_iter()
            .filter(|x| x.name != b"system.data")
            .map(|x| x.name)
            .collect())
    }

    /// The value of extended attribute `name` of `ino`, `None` if absent.
    pub fn getxattr(&self, ino: u32, name: &[u8]) -> Result<Option<Vec<u8>>> {
        let inode = self.inode(ino)?;
        Ok(self
            .xattrs_of(ino, &inode)?
            .into_iter()
            .find(|x| x.name == name)
            .map(|x| x.value))
    }
}
