//! The jbd2 journal (big-endian, Documentation/filesystems/ext4/journal.rst):
//! its superblock, descriptor/commit/revoke blocks and the in-memory replay
//! that the reader's overlay is built from.

pub mod block;
pub mod crc;
pub mod replay;
pub mod revoke;
pub mod superblock;

/// `h_magic` of every journal metadata block.
pub const JBD2_MAGIC_NUMBER: u32 = 0xC03B_3998;
