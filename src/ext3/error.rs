//! The errors of the ext3 library, split into corrupt metadata, unsupported
//! features, lookups that fail (no such file, not a directory, ...), and
//! I/O errors of the device underneath.

use std::io;

/// What a parser or the reader found wrong with on-disk bytes: one kind
/// per check, with the values it saw. Field names are the C names.
///
/// The reader adds where it was found (inode, block) in [`Error::Corrupt`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Corrupt {
    /// A structure is shorter than its fields.
    #[error("{structure} is {len} bytes, want at least {want}")]
    TooShort {
        /// The structure (`superblock`, `inode record`, ...).
        structure: &'static str,
        /// Bytes there are.
        len: usize,
        /// Bytes it needs.
        want: usize,
    },
    /// `s_magic` is not the ext2/3/4 magic.
    #[error("bad s_magic {0:#06x} (not an ext2/3/4 filesystem)")]
    NotExt(u16),
    /// A magic number (`h_magic`, `eh_magic`) is wrong.
    #[error("bad {structure} {field} {value:#x}")]
    BadMagic {
        /// The structure holding it.
        structure: &'static str,
        /// The field's C name.
        field: &'static str,
        /// The value found.
        value: u32,
    },
    /// A stored checksum does not match the contents.
    #[error("{structure} checksum {stored:#010x} does not match its contents ({computed:#010x})")]
    Checksum {
        /// The structure (`superblock`, `inode`, `directory block`, ...).
        structure: &'static str,
        /// The checksum stored on disk.
        stored: u32,
        /// The checksum of the contents.
        computed: u32,
    },
    /// A field holds a value it cannot have.
    #[error("{field} {value} is invalid")]
    BadField {
        /// The field's C name (with its structure where that helps).
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// A field of an entry at a byte offset holds a value it cannot have
    /// (directory entries, attribute entries).
    #[error("{structure} at byte {offset} has a bad {field} {value}")]
    BadEntry {
        /// `directory entry` or `attribute entry`.
        structure: &'static str,
        /// Byte offset of the entry in its block or area.
        offset: usize,
        /// The field's C name.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// An entry runs past the end of its block or area.
    #[error("{structure} at byte {offset} is cut off by the end of its block")]
    CutOff {
        /// `directory entry` or `attribute entry`.
        structure: &'static str,
        /// Byte offset of the entry.
        offset: usize,
    },
    /// A directory entry's name contains `/` or NUL.
    #[error("directory entry at byte {0} has an invalid name")]
    BadName(usize),
    /// A block number points outside the filesystem.
    #[error("{what} block {block} is outside the filesystem ({blocks_count} blocks)")]
    OutsideFilesystem {
        /// What the block is (`indirect`, `extent`, `inode table`, ...).
        what: &'static str,
        /// The block number.
        block: u64,
        /// `s_blocks_count`.
        blocks_count: u64,
    },
    /// A file's logical block maps outside the filesystem.
    #[error("logical block {lblk} maps to block {block}, outside the filesystem")]
    DataOutside {
        /// The logical block in the file.
        lblk: u64,
        /// The physical block it maps to.
        block: u64,
    },
    /// The filesystem is larger than the device.
    #[error("s_blocks_count {blocks} blocks of {block_size} bytes do not fit the {device_len}-byte device (truncated image?)")]
    Truncated {
        /// `s_blocks_count`.
        blocks: u64,
        /// Block size.
        block_size: u32,
        /// The device's length.
        device_len: u64,
    },
    /// A file is larger than its block map can address.
    #[error("i_size {size} exceeds the largest file this filesystem can hold ({max} bytes)")]
    FileTooLarge {
        /// `i_size`.
        size: u64,
        /// The largest size possible.
        max: u64,
    },
    /// An indirect block points back to itself.
    #[error("block map loops: indirect block {0} points back to itself")]
    BlockMapLoop(u64),
    /// Extents or extent indexes are out of order, overlap or are empty.
    #[error("extent {index} at block {block} is out of order, overlapping or empty")]
    ExtentOrder {
        /// The entry's index in its node.
        index: usize,
        /// Its first logical block.
        block: u32,
    },
    /// An extent's last logical block is past the last one a file can
    /// have (2^32 - 1), as `ext4_valid_extent` rejects it.
    #[error(
        "extent {index} at block {block} with {len} blocks runs past logical block 4294967295"
    )]
    ExtentRange {
        /// The entry's index in its node.
        index: usize,
        /// Its first logical block (`ee_block`).
        block: u32,
        /// Its length in blocks.
        len: u16,
    },
    /// An extent tree's depth is wrong (too deep, or a child whose depth
    /// is not one less than its parent's).
    #[error("extent tree depth {depth} is wrong (want {want})")]
    ExtentDepth {
        /// The depth found.
        depth: u16,
        /// The depth expected (or the limit).
        want: u16,
    },
    /// More entries than a structure can hold.
    #[error("{structure} holds {count} entries, more than {max}")]
    TooMany {
        /// The structure.
        structure: &'static str,
        /// Entries found (or at least).
        count: u64,
        /// The limit.
        max: u64,
    },
    /// A journal structure is inconsistent with the journal's size.
    #[error("journal {field} {value} does not fit the log")]
    Journal {
        /// The field's C name.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// A directory is reachable twice (a directory hard link or a loop).
    #[error("directory is reachable twice (a directory hard link or loop)")]
    DirectoryLoop,
    /// A directory tree is deeper than any real one.
    #[error("directory tree is too deep")]
    TooDeep,
}

/// Everything that can go wrong while reading a filesystem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Metadata is corrupt; `place` says where (e.g. `inode 12`, `block 4711`).
    #[error("corrupt filesystem: {place}: {source}")]
    Corrupt {
        /// Where the bad metadata was found.
        place: String,
        /// What is wrong with it.
        source: Corrupt,
    },
    /// The filesystem uses a feature this library cannot read.
    #[error("unsupported feature: {0}")]
    Unsupported(String),
    /// Reading the device failed.
    #[error("I/O error reading {len} bytes at byte {offset} of the device: {source}")]
    Io {
        /// Byte offset of the failed read.
        offset: u64,
        /// Length of the failed read.
        len: usize,
        /// The device's error.
        source: io::Error,
    },
    /// A path or name does not exist.
    #[error("{0}: no such file or directory")]
    NotFound(String),
    /// A directory operation on something that is not a directory.
    #[error("{0}: not a directory")]
    NotADirectory(String),
    /// A file operation on a directory.
    #[error("{0}: is a directory")]
    IsADirectory(String),
    /// `readlink` on something that is not a symbolic link.
    #[error("{0}: not a symbolic link")]
    NotASymlink(String),
    /// Path resolution met too many symbolic links (a loop).
    #[error("{0}: too many levels of symbolic links")]
    SymlinkLoop(String),
    /// Opening for writing failed in a way the writer reports as an
    /// interface error (e.g. an I/O error while processing orphans).
    #[error("open for writing: {0}")]
    Write(crate::fs::Error),
    /// An inode number outside the filesystem.
    #[error("inode {0} is out of range")]
    BadInode(u64),
}

impl Error {
    /// The error a caller's callback (of a walk or a read) returns to stop
    /// it early, keeping the real reason itself. An I/O error, so that code
    /// matching on the variants needs no new arm.
    pub fn stopped() -> Self {
        Error::Io {
            offset: 0,
            len: 0,
            source: io::Error::other("stopped by the caller"),
        }
    }

    /// Wraps a parser's complaint with the place it was found.
    pub fn corrupt(place: impl Into<String>, source: Corrupt) -> Self {
        Error::Corrupt {
            place: place.into(),
            source,
        }
    }

    /// True for errors that mean the metadata is bad.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Extension to attach a place to a parser's result.
pub(crate) trait At<T> {
    /// Converts a `Corrupt` into an [`Error::Corrupt`] at `place`.
    fn at(self, place: impl FnOnce() -> String) -> Result<T>;
}

impl<T> At<T> for std::result::Result<T, Corrupt> {
    fn at(self, place: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|c| Error::corrupt(place(), c))
    }
}
