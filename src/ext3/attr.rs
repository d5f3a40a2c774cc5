//! Inode metadata as callers want it (`getattr`), filesystem totals
//! (`statfs`) and extended attributes (`listxattr`, `getxattr`).

use super::error::{At, Error, Result};
use super::fs::Ext3;
use super::inode::{FileType, Inode, Timestamp};
use super::xattr::{parse_block, parse_inode_area, Xattr};
use crate::block::BlockDevice;

/// What `stat` tells about an inode.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Metadata {
    /// Inode number.
    pub ino: u32,
    /// File type.
    pub file_type: FileType,
    /// Permission bits including setuid, setgid and sticky.
    pub perm: u16,
    /// Hard link count.
    pub nlink: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Allocated 512-byte sectors.
    pub blocks: u64,
    /// Access time.
    pub atime: Timestamp,
    /// Modification time.
    pub mtime: Timestamp,
    /// Inode change time.
    pub ctime: Timestamp,
    /// Creation time, if recorded.
    pub crtime: Option<Timestamp>,
    /// Device number (major, minor) of device nodes, else (0, 0).
    pub rdev: (u32, u32),
    /// `i_flags`.
    pub flags: u32,
    /// `i_generation`.
    pub generation: u32,
}

impl Metadata {
    /// The full `st_mode`.
    pub fn mode(&self) -> u32 {
        let t = match self.file_type {
            FileType::Regular => 0o100000,
            FileType::Directory => 0o040000,
            FileType::Symlink => 0o120000,
            FileType::CharDevice => 0o020000,
            FileType::BlockDevice => 0o060000,
            FileType::Fifo => 0o010000,
            FileType::Socket => 0o140000,
        };
        t | u32::from(self.perm)
    }
}

/// Filesystem totals, as `statfs(2)` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFs {
    /// Block size.
    pub block_size: u32,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub free_blocks: u64,
    /// Free blocks for unprivileged users.
    pub available_blocks: u64,
    /// Total inodes.
    pub inodes: u64,
    /// Free inodes.
    pub free_inodes: u64,
    /// Longest name.
    pub name_max: u32,
}

impl<D: BlockDevice> Ext3<D> {
    /// Metadata of an already parsed inode.
    pub fn metadata_of(&self, ino: u32, inode: &Inode) -> Result<Metadata> {
        let file_type = inode.file_type().ok_or_else(|| {
            Error::corrupt_msg(
                format!("inode {ino}"),
                format!("bad i_mode {:#o}", inode.i_mode),
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
            let b = self.read_block(blk, &format!("inode {ino} attribute block"))?;
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
