//! The ext3 reader served through the inode-level interface
//! ([`crate::fs::InodeFs`]): every mutation answers
//! [`fs::Error::ReadOnly`], and the reader's errors become the interface's
//! kinds.

use super::{Error, Ext3, Result};
use crate::block::BlockDevice;
use crate::fs::{self, DirEntry, FsResult, Ino, InodeFs, Metadata, StatFs};

impl From<Error> for fs::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::NotFound(_) => fs::Error::NotFound,
            Error::NotADirectory(_) => fs::Error::NotADirectory,
            Error::IsADirectory(_) => fs::Error::IsADirectory,
            Error::NotASymlink(_) => fs::Error::InvalidArgument,
            Error::SymlinkLoop(_) => fs::Error::SymlinkLoop,
            Error::BadInode(_) => fs::Error::StaleInode,
            Error::Unsupported(_) => fs::Error::Unsupported,
            Error::Corrupt { .. } => fs::Error::CORRUPT,
            Error::Write(e) => e,
            Error::Io { .. } => fs::Error::IO,
        }
    }
}

/// The ext3 reader as an [`InodeFs`]: every mutation answers
/// [`fs::Error::ReadOnly`].
pub struct ReadOnly<D: BlockDevice> {
    fs: Ext3<D>,
}

impl<D: BlockDevice> ReadOnly<D> {
    /// Serves `fs` read-only.
    pub fn new(fs: Ext3<D>) -> Self {
        ReadOnly { fs }
    }

    /// The reader underneath.
    pub fn inner(&self) -> &Ext3<D> {
        &self.fs
    }
}

fn map<T>(r: Result<T>) -> FsResult<T> {
    r.map_err(fs::Error::from)
}

impl<D: BlockDevice> InodeFs for ReadOnly<D> {
    fn lookup(&self, parent: Ino, name: &[u8]) -> FsResult<Metadata> {
        let ino = map(self.fs.lookup(parent, name))?;
        map(self.fs.getattr(ino))
    }

    fn getattr(&self, ino: Ino) -> FsResult<Metadata> {
        map(self.fs.getattr(ino))
    }

    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        map(self.fs.read(ino, offset, buf))
    }

    fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        map(self.fs.readlink(ino))
    }

    fn readdir(&self, ino: Ino, cookie: u64, f: &mut dyn FnMut(DirEntry) -> bool) -> FsResult<()> {
        map(self.fs.readdir_with(ino, cookie, |entry, next_cookie| {
            f(DirEntry {
                ino: entry.ino,
                file_type: entry.file_type,
                name: entry.name,
                next_cookie,
            })
        }))
    }

    fn statfs(&self) -> FsResult<StatFs> {
        Ok(self.fs.statfs())
    }

    fn listxattr(&self, ino: Ino) -> FsResult<Vec<Vec<u8>>> {
        map(self.fs.listxattr(ino))
    }

    fn getxattr(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        map(self.fs.getxattr(ino, name))?.ok_or(fs::Error::NoAttribute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ext3::Corrupt;

    #[test]
    fn reader_errors_become_the_kinds_a_guest_expects() {
        assert_eq!(
            fs::Error::from(Error::NotFound("x".into())),
            fs::Error::NotFound
        );
        assert_eq!(
            fs::Error::from(Error::NotADirectory("x".into())),
            fs::Error::NotADirectory
        );
        assert!(fs::Error::from(Error::corrupt(
            "inode 12",
            Corrupt::BadField {
                field: "i_mode",
                value: 0
            }
        ))
        .is_failure());
    }
}
