//! The errors of the ext3 library, split into corrupt metadata, unsupported
//! features, lookups that fail (no such file, not a directory, ...), and
//! I/O errors of the device underneath.

use std::io;

/// A parser found bytes that cannot be a valid on-disk structure.
///
/// The message names the structure and field (C names, e.g. `s_magic`);
/// the reader adds where it was found (inode, block) in [`Error::Corrupt`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Corrupt(pub String);

impl Corrupt {
    /// A corruption described by `what`.
    pub fn new(what: impl Into<String>) -> Self {
        Corrupt(what.into())
    }
}

/// Builds an `Err(Corrupt)` from a format string.
macro_rules! corrupt {
    ($($arg:tt)*) => {
        Err($crate::ext3::error::Corrupt::new(format!($($arg)*)))
    };
}
pub(crate) use corrupt;

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

    /// A corruption at `place` described by `what`.
    pub fn corrupt_msg(place: impl Into<String>, what: impl Into<String>) -> Self {
        Self::corrupt(place, Corrupt::new(what))
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
