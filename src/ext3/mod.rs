//! ext2/ext3/ext4 filesystem library: the reader `uml_fs` uses to look
//! inside a guest's disk without root, the journaling writer
//! ([`write`]), and both served through the inode-level interface
//! ([`crate::fs::InodeFs`]) that the guest kernel's FUSE server calls.
//!
//! ```text
//!   uml_fs (info/ls/cat/stat/find/extract/diff)   FUSE server, uml_fs edits
//!          |                                          |  fs::InodeFs
//!          |                          ReadOnly<D> (read_only.rs)   write::Writer<D>
//!          |                             |                           |
//!              Ext3<D>: getattr/lookup/read/readdir/readlink/xattr/statfs
//!                 |   superblock, group_desc, inode (layouts declared once)
//!                 |   block_map, extent, dir, htree, xattr
//!            block::Overlay<D> (journal/ replayed in memory; never written)
//!                 |
//!            D: BlockDevice (plain image, or COW over its backing)
//! ```
//!
//! Each on-disk structure has its own file with a `field` table (C names,
//! offsets of Documentation/filesystems/ext4) and a pure `parse(&[u8])`
//! function that validates and returns a typed [`Corrupt`] error (an enum
//! of kinds); the writer sets fields through the same table. Journal
//! replay (`journal::replay`) reads a device and the journal's block map,
//! not the filesystem handle. All walks over on-disk links are bounded.
#![forbid(unsafe_code)]
// As ext4-view: no silent `as` casts and no unchecked arithmetic in code
// that reads untrusted images, the writer included (issue 14). Where a
// value comes from disk (block counts, sizes, offsets, extent lengths,
// journal positions, record lengths) checked_* ops return a typed
// `Corrupt` error (or ENOSPC / EFBIG in the writer), block offsets go
// through `BlockIndex::byte_offset` and divisions through a `NonZeroU64`
// block size; saturating ops only for counts below a bound the comment
// states (checked at open: the filesystem fits the device, the groups
// lie inside it), and wrapping ops only where they are the semantics
// (CRC and directory-hash math, the writer's generation numbers). The
// few allows left are narrow and say why (the compile-time CRC tables).
// Unit tests build fixtures with casts and plain arithmetic on small
// constants; the lints are for the code that reads images.
#![cfg_attr(
    not(test),
    warn(clippy::as_conversions, clippy::arithmetic_side_effects)
)]

pub mod attr;
pub mod block_map;
pub mod bytes;
pub mod compare;
pub mod dir;
pub mod dirops;
pub mod dx_readdir;
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
pub mod types;
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
pub use types::BlockIndex;

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
