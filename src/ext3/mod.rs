//! ext2/ext3/ext4 filesystem library, read side: everything `uml_fs` needs
//! to look inside a guest's disk without root, and the inode-level API a
//! FUSE server or the journaling writer builds on.
//!
//! ```text
//!   uml_fs (info/ls/cat/stat/find/extract/diff)   FUSE server (later)
//!                          \                     /
//!              Ext3<D>: getattr/lookup/read/readdir/readlink/xattr/statfs
//!                 |   superblock, group_desc, inode, block_map, extent, dir, xattr
//!            JournalOverlay<D> (journal replayed in memory; never written)
//!                 |
//!            D: BlockDevice (plain image, or COW over its backing)
//! ```
//!
//! Each on-disk structure has its own file with a pure `parse(&[u8])`
//! function that validates and returns a typed [`Corrupt`] error; field
//! names are the C names, offsets those of
//! Documentation/filesystems/ext4. All walks over on-disk links are bounded.
#![forbid(unsafe_code)]

pub mod attr;
pub mod block_map;
pub mod bytes;
pub mod compare;
pub mod dir;
pub mod dirops;
pub mod error;
pub mod extent;
pub mod features;
pub mod file;
pub mod fs;
pub mod group_desc;
pub mod htree;
pub mod inode;
pub mod journal;
pub mod map;

pub mod path;
#[cfg(test)]
mod proptests;
pub mod read_only;
pub mod superblock;
pub mod tool;
pub mod walk;
pub mod write;
pub mod xattr;

pub use crate::fs::{FileType, Metadata, StatFs, Timestamp};
pub use dirops::Entry;
pub use error::{Corrupt, Error, Result};
pub use fs::{Ext3, OpenOptions};
pub use inode::{Inode, ROOT_INO};
pub use journal::replay::ReplayReport;
pub use read_only::ReadOnly;
pub use superblock::Superblock;

#[cfg(test)]
mod send_sync {
    use super::Ext3;
    use crate::block::FileDevice;

    fn is_send_sync<T: Send + Sync>() {}

    #[test]
    fn ext3_handles_are_send_and_sync() {
        is_send_sync::<Ext3<FileDevice>>();
        is_send_sync::<Ext3<Box<dyn crate::block::BlockDevice>>>();
    }
}
