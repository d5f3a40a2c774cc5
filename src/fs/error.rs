//! The errors of the inode-level interface: one variant per way an
//! operation can fail, named for what failed. Failures of the filesystem
//! itself (corrupt metadata, a device error) carry the inode and block
//! where they happened. The FUSE adapter turns them into errno values
//! (`crate::kernel::fuse_attr::errno`); nothing below it knows errno.

use super::Ino;
use std::fmt;

/// Where a filesystem failure happened, as far as it is known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct At {
    /// The inode being worked on.
    pub ino: Option<Ino>,
    /// The filesystem block being read or written.
    pub block: Option<u64>,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ino, self.block) {
            (None, None) => Ok(()),
            (Some(i), None) => write!(f, " (inode {i})"),
            (None, Some(b)) => write!(f, " (block {b})"),
            (Some(i), Some(b)) => write!(f, " (inode {i}, block {b})"),
        }
    }
}

/// Why an inode-level operation failed. The messages of the simple kinds
/// are the C library's, so front ends print what `rm` or `mkdir` would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No entry of that name, or no such inode (`ENOENT`).
    #[error("No such file or directory")]
    NotFound,
    /// The name exists already (`EEXIST`).
    #[error("File exists")]
    Exists,
    /// A directory to remove or replace is not empty (`ENOTEMPTY`).
    #[error("Directory not empty")]
    NotEmpty,
    /// A directory was needed (`ENOTDIR`).
    #[error("Not a directory")]
    NotADirectory,
    /// A non-directory was needed (`EISDIR`).
    #[error("Is a directory")]
    IsADirectory,
    /// A name longer than the filesystem allows (`ENAMETOOLONG`).
    #[error("File name too long")]
    NameTooLong,
    /// The link count would overflow (`EMLINK`).
    #[error("Too many links")]
    TooManyLinks,
    /// No free block or inode (`ENOSPC`).
    #[error("No space left on device")]
    NoSpace,
    /// Beyond the largest file the filesystem can hold (`EFBIG`).
    #[error("File too large")]
    FileTooLarge,
    /// An argument the operation cannot take (`EINVAL`).
    #[error("Invalid argument")]
    InvalidArgument,
    /// No extended attribute of that name (`ENODATA`).
    #[error("No data available")]
    NoAttribute,
    /// Extended attributes do not fit their space (`ERANGE`).
    #[error("Numerical result out of range")]
    OutOfRange,
    /// An extended attribute value larger than a block (`E2BIG`).
    #[error("Argument list too long")]
    ValueTooLarge,
    /// The filesystem is served read-only (`EROFS`).
    #[error("Read-only file system")]
    ReadOnly,
    /// A feature of the file this implementation cannot change, or an
    /// operation it does not offer (`EOPNOTSUPP`).
    #[error("Operation not supported")]
    Unsupported,
    /// An inode number that names no live inode (`ESTALE`).
    #[error("Stale file handle")]
    StaleInode,
    /// Too many symbolic links while resolving a path (`ELOOP`).
    #[error("Too many levels of symbolic links")]
    SymlinkLoop,
    /// The operation is not allowed on this inode (`EPERM`).
    #[error("Operation not permitted")]
    NotPermitted,
    /// On-disk metadata is corrupt (`EIO`).
    #[error("Input/output error: corrupt metadata{0}")]
    Corrupt(At),
    /// The device failed, or an earlier failure left the filesystem
    /// unwritable (`EIO`).
    #[error("Input/output error{0}")]
    Io(At),
}

impl Error {
    /// A device failure whose place is not known (yet).
    pub const IO: Error = Error::Io(At {
        ino: None,
        block: None,
    });
    /// Corrupt metadata whose place is not known (yet).
    pub const CORRUPT: Error = Error::Corrupt(At {
        ino: None,
        block: None,
    });

    /// Records the inode a filesystem failure happened at, unless it
    /// already names one; other kinds are returned unchanged.
    pub fn at_ino(mut self, ino: Ino) -> Self {
        if let Error::Corrupt(at) | Error::Io(at) = &mut self {
            at.ino.get_or_insert(ino);
        }
        self
    }

    /// Records the block a filesystem failure happened at, unless it
    /// already names one.
    pub fn at_block(mut self, block: u64) -> Self {
        if let Error::Corrupt(at) | Error::Io(at) = &mut self {
            at.block.get_or_insert(block);
        }
        self
    }

    /// True for failures of the filesystem itself (corrupt metadata or
    /// I/O), as opposed to a request it refuses.
    pub fn is_failure(&self) -> bool {
        matches!(self, Error::Corrupt(_) | Error::Io(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_the_first_inode_and_block_they_are_given() {
        let e = Error::IO.at_block(7).at_ino(12).at_block(9);
        assert_eq!(
            e,
            Error::Io(At {
                ino: Some(12),
                block: Some(7)
            })
        );
        assert_eq!(e.to_string(), "Input/output error (inode 12, block 7)");
        assert_eq!(Error::NotFound.at_ino(3), Error::NotFound);
    }
}
