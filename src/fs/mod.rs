//! The inode-level filesystem interface that the guest kernel's FUSE server
//! and `uml_fs`'s editing commands call, with its own value and error
//! types. It knows no on-disk format: filesystems implement it.
//!
//! ```text
//!   FUSE low-level server (kernel::fuse)      uml_fs editing commands
//!                    \                         /
//!                     InodeFs  (this trait: lookup, getattr, read, write, ...)
//!                    /                         \
//!  ext3::ReadOnly<D> (the reader; mutations  ext3::write::Writer<D> (the
//!  answer Error::ReadOnly)                    journaling writer)
//! ```
//!
//! The operations are those a FUSE low-level server receives, keyed by inode
//! number. Permission checks are the host kernel's (`default_permissions`),
//! so implementations do not check them. Every method takes `&self`: a FUSE
//! server calls them from several threads.
#![forbid(unsafe_code)]

mod error;
mod types;

pub use error::{At, Error};
pub use types::{FileType, Metadata, StatFs, Timestamp};

/// Inode numbers as the filesystem stores them (the root is 2).
pub type Ino = u32;

/// Results of filesystem operations.
pub type FsResult<T> = Result<T, Error>;

/// One directory entry, with the cookie that resumes the listing after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's inode.
    pub ino: Ino,
    /// Its type, as far as the directory records it.
    pub file_type: Option<FileType>,
    /// Its name.
    pub name: Vec<u8>,
    /// Pass this to `readdir` to continue after this entry.
    pub next_cookie: u64,
}

/// A time to set: a given instant or "now".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetTime {
    /// The caller's clock now.
    Now,
    /// This instant.
    At(Timestamp),
}

/// The changes of a `setattr`; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits (the type bits are ignored).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate or extend with a hole).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
}

/// Who creates a node: its owner and group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// `rename` flags (renameat2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenameFlags {
    /// Fail with [`Error::Exists`] when the target exists.
    pub noreplace: bool,
    /// Swap the two names atomically.
    pub exchange: bool,
}

/// `setxattr` flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum XattrMode {
    /// Create or replace.
    #[default]
    Any,
    /// Fail with [`Error::Exists`] if it exists.
    Create,
    /// Fail with [`Error::NoAttribute`] if it does not exist.
    Replace,
}

/// fallocate(2): allocate without changing the size.
pub const FALLOC_FL_KEEP_SIZE: u32 = 0x01;
/// fallocate(2): free the range (with [`FALLOC_FL_KEEP_SIZE`]).
pub const FALLOC_FL_PUNCH_HOLE: u32 = 0x02;

/// The inode-level operations. Mutating operations default to [`Error::ReadOnly`], so
/// a read-only filesystem implements only the reading ones.
#[allow(unused_variables)]
pub trait InodeFs: Send + Sync {
    /// Finds `name` in directory `parent`.
    fn lookup(&self, parent: Ino, name: &[u8]) -> FsResult<Metadata>;
    /// The attributes of `ino`.
    fn getattr(&self, ino: Ino) -> FsResult<Metadata>;
    /// Reads from a regular file; returns the bytes read (short at the end).
    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> FsResult<usize>;
    /// The target of a symbolic link.
    fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>>;
    /// Lists directory `ino` from `cookie` (0 = start), calling `f` per
    /// entry until it returns false. Cookies stay valid while entries are
    /// added or removed elsewhere in the directory. `f` must not call back
    /// into the filesystem: an implementation may hold its lock while it
    /// lists (collect first, then ask for attributes).
    fn readdir(&self, ino: Ino, cookie: u64, f: &mut dyn FnMut(DirEntry) -> bool) -> FsResult<()>;
    /// Filesystem totals.
    fn statfs(&self) -> FsResult<StatFs>;
    /// Names of the extended attributes of `ino`.
    fn listxattr(&self, ino: Ino) -> FsResult<Vec<Vec<u8>>>;
    /// One extended attribute ([`Error::NoAttribute`] when absent).
    fn getxattr(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>>;

    /// Changes attributes; returns the new ones.
    fn setattr(&self, ino: Ino, changes: &SetAttr) -> FsResult<Metadata> {
        Err(Error::ReadOnly)
    }
    /// Writes to a regular file, growing it as needed.
    fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> FsResult<usize> {
        Err(Error::ReadOnly)
    }
    /// Creates a regular file (`mode` holds the permission bits).
    fn create(&self, parent: Ino, name: &[u8], mode: u32, owner: Owner) -> FsResult<Metadata> {
        Err(Error::ReadOnly)
    }
    /// Creates a device node, FIFO or socket (`mode` includes the type).
    fn mknod(
        &self,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u64,
        owner: Owner,
    ) -> FsResult<Metadata> {
        Err(Error::ReadOnly)
    }
    /// Creates a directory.
    fn mkdir(&self, parent: Ino, name: &[u8], mode: u32, owner: Owner) -> FsResult<Metadata> {
        Err(Error::ReadOnly)
    }
    /// Creates a symbolic link.
    fn symlink(&self, parent: Ino, name: &[u8], target: &[u8], owner: Owner) -> FsResult<Metadata> {
        Err(Error::ReadOnly)
    }
    /// Adds a hard link to `ino`.
    fn link(&self, ino: Ino, new_parent: Ino, new_name: &[u8]) -> FsResult<Metadata> {
        Err(Error::ReadOnly)
    }
    /// Removes a non-directory entry.
    fn unlink(&self, parent: Ino, name: &[u8]) -> FsResult<()> {
        Err(Error::ReadOnly)
    }
    /// Removes an empty directory.
    fn rmdir(&self, parent: Ino, name: &[u8]) -> FsResult<()> {
        Err(Error::ReadOnly)
    }
    /// Renames, replacing a target unless the flags say otherwise.
    fn rename(
        &self,
        parent: Ino,
        name: &[u8],
        new_parent: Ino,
        new_name: &[u8],
        flags: RenameFlags,
    ) -> FsResult<()> {
        Err(Error::ReadOnly)
    }
    /// Sets an extended attribute.
    fn setxattr(&self, ino: Ino, name: &[u8], value: &[u8], mode: XattrMode) -> FsResult<()> {
        Err(Error::ReadOnly)
    }
    /// Removes an extended attribute.
    fn removexattr(&self, ino: Ino, name: &[u8]) -> FsResult<()> {
        Err(Error::ReadOnly)
    }
    /// Preallocates or deallocates space as fallocate(2): `mode` holds
    /// its `FALLOC_FL_*` bits ([`FALLOC_FL_KEEP_SIZE`],
    /// [`FALLOC_FL_PUNCH_HOLE`]); modes an implementation cannot do are
    /// [`Error::Unsupported`].
    fn fallocate(&self, ino: Ino, offset: u64, len: u64, mode: u32) -> FsResult<()> {
        Err(Error::ReadOnly)
    }
    /// The host kernel dropped its last reference to `ino`: an inode whose
    /// link count is 0 can now be freed.
    fn forget(&self, ino: Ino) {}
    /// Makes the file's data (and with `!datasync` its metadata) durable.
    fn fsync(&self, ino: Ino, datasync: bool) -> FsResult<()> {
        Ok(())
    }
    /// Commits everything (a `sync`).
    fn sync_fs(&self) -> FsResult<()> {
        Ok(())
    }
    /// Final flush at shutdown: commit, checkpoint, mark the filesystem
    /// clean.
    fn unmount(&self) -> FsResult<()> {
        Ok(())
    }
}
