//! File-level system calls: sparse-file navigation, hole punching, POSIX
//! record locks, and opening beneath a directory without following links
//! (openat2, for paths inside a guest's tree).

use nix::errno::Errno;
use nix::fcntl::{fallocate, fcntl, FallocateFlags, FcntlArg};
use nix::unistd::{lseek, Whence};
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

fn to_off(v: u64) -> io::Result<i64> {
    i64::try_from(v).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))
}

/// The data range at or after `offset` (`SEEK_DATA` then `SEEK_HOLE`), or
/// `None` when only a hole follows. File systems without sparse support
/// report the whole rest of the file as data, which is still correct.
pub fn next_data(file: &File, offset: u64) -> io::Result<Option<Range<u64>>> {
    let fd = file.as_raw_fd();
    let start = match lseek(fd, to_off(offset)?, Whence::SeekData) {
        Ok(s) => s,
        Err(Errno::ENXIO) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let end = lseek(fd, start, Whence::SeekHole)?;
    Ok(Some(
        u64::try_from(start).unwrap_or(0)..u64::try_from(end).unwrap_or(0),
    ))
}

/// Deallocates `range` of `file`, keeping its size. Where the file system
/// cannot punch holes, zeros are written instead.
pub fn punch_hole(file: &File, range: Range<u64>) -> io::Result<()> {
    if range.is_empty() {
        return Ok(());
    }
    let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
    let len = range.end - range.start;
    match fallocate(file.as_raw_fd(), flags, to_off(range.start)?, to_off(len)?) {
        Ok(()) => Ok(()),
        Err(Errno::EOPNOTSUPP) => write_zeros(file, range),
        Err(e) => Err(e.into()),
    }
}

fn write_zeros(file: &File, range: Range<u64>) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let zeros = vec![0u8; 1 << 20];
    let mut at = range.start;
    while at < range.end {
        let n = (range.end - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Why a lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds a conflicting lock (`EAGAIN`/`EACCES`).
    InUse,
    /// The lock call itself failed.
    Io(io::Error),
}

/// Takes a POSIX record lock on the whole file without waiting, as the UML
/// kernel does on its COW and image files (`F_SETLK`; a write lock when the
/// file is opened for writing, a read lock otherwise). The lock is released
/// when the process closes any descriptor of the file.
pub fn lock_file(file: &File, write: bool) -> Result<(), LockError> {
    let lock = libc::flock {
        l_type: if write { libc::F_WRLCK } else { libc::F_RDLCK } as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    match fcntl(file.as_raw_fd(), FcntlArg::F_SETLK(&lock)) {
        Ok(_) => Ok(()),
        Err(Errno::EAGAIN) | Err(Errno::EACCES) => Err(LockError::InUse),
        Err(e) => Err(LockError::Io(e.into())),
    }
}

/// The pid of a process holding a lock that conflicts with a write lock on
/// `file`, if any (`F_GETLK`).
pub fn lock_holder(file: &File) -> io::Result<Option<i32>> {
    let mut lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(file.as_raw_fd(), FcntlArg::F_GETLK(&mut lock))?;
    Ok((lock.l_type != libc::F_UNLCK as libc::c_short).then_some(lock.l_pid))
}

/// Atomically swaps the names `a` and `b` (`renameat2(RENAME_EXCHANGE)`).
pub fn exchange(a: &std::path::Path, b: &std::path::Path) -> io::Result<()> {
    nix::fcntl::renameat2(None, a, None, b, nix::fcntl::RenameFlags::RENAME_EXCHANGE)
        .map_err(io::Error::from)
}

/// Is `fd` on a filesystem of this magic (`statfs.f_type`)?
pub fn is_fs_type(fd: std::os::fd::BorrowedFd<'_>, magic: i64) -> bool {
    nix::sys::statfs::fstatfs(fd).is_ok_and(|s| s.filesystem_type().0 == magic)
}

/// How [`open_beneath`] opens.
#[derive(Debug, Clone, Copy)]
pub enum Beneath {
    /// A directory to resolve further from (`O_PATH`), crossing mounts.
    Dir,
    /// A file to read: read-only, non-blocking (a FIFO cannot hold the
    /// caller), not crossing into another mount.
    File,
    /// Anything, as a path (`O_PATH`), resolved as a process whose root
    /// is `dir` would: symlinks followed, but never out of `dir`
    /// (`RESOLVE_IN_ROOT`), crossing mounts.
    InRoot,
    /// A directory, as a path (`O_PATH`), beneath `dir`: symlinks followed
    /// while they stay beneath it, `..` and absolute links that would
    /// leave it refused with `EXDEV` (`RESOLVE_BENEATH`), crossing mounts.
    Under,
    /// A directory to list: read-only, no symlink anywhere on the way,
    /// not crossing into another mount.
    List,
}

/// openat2(2) beneath `dir` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS`: nothing the owner of that tree planted (a
/// symlink, `..`, a magic link) leads the caller out of it ([`Beneath`]
/// says how each kind relaxes this without leaving `dir`).
pub fn open_beneath(
    dir: std::os::fd::BorrowedFd<'_>,
    rel: &std::ffi::CStr,
    how: Beneath,
) -> io::Result<OwnedFd> {
    let resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    let (flags, resolve) = match how {
        Beneath::Dir => (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC, resolve),
        Beneath::File => (
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
            resolve | libc::RESOLVE_NO_XDEV,
        ),
        Beneath::InRoot => (
            libc::O_PATH | libc::O_CLOEXEC,
            libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
        ),
        Beneath::Under => (
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS,
        ),
        Beneath::List => (
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            resolve | libc::RESOLVE_NO_XDEV,
        ),
    };
    /// `struct open_how` (linux/openat2.h); libc's is non-exhaustive.
    #[repr(C)]
    struct OpenHow {
        flags: u64,
        mode: u64,
        resolve: u64,
    }
    let how = OpenHow {
        flags: u64::try_from(flags).unwrap_or(0),
        mode: 0,
        resolve,
    };
    // SAFETY: openat2 reads the path (NUL-terminated) and the open_how
    // struct of the given size; both are valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            rel.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(r).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: a fresh descriptor from openat2 that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes `dst` share all of `src`'s extents (`ioctl(FICLONE)`, a reflink:
/// XFS, btrfs, bcachefs). Fails with `EOPNOTSUPP`, `EXDEV` or `EINVAL`
/// where the file system cannot (ext4, different file systems).
pub fn clone_file(dst: &File, src: &File) -> io::Result<()> {
    // SAFETY: FICLONE takes the source descriptor as its integer argument
    // and reads no memory of ours; both descriptors are live `File`s
    // borrowed for the call.
    let r = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Copies up to `len` bytes from `src` at `src_at` to `dst` at `dst_at`
/// inside the kernel (`copy_file_range(2)`): no copy through user memory,
/// and NFS or overlayfs may offload it to the server or the lower file
/// system. Returns the bytes copied, 0 at the end of `src`. Fails with
/// `EXDEV`, `ENOSYS`, `EOPNOTSUPP` or `EINVAL` where it cannot be used
/// (see [`copy_unsupported`]); the caller then reads and writes.
pub fn copy_range(
    src: &File,
    src_at: u64,
    dst: &File,
    dst_at: u64,
    len: usize,
) -> io::Result<usize> {
    let mut off_in = to_off(src_at)?;
    let mut off_out = to_off(dst_at)?;
    // SAFETY: both descriptors are live `File`s borrowed for the call; the
    // kernel reads and updates the two offsets, which are valid `i64`s on
    // our stack, and touches no other memory of ours.
    let r = unsafe {
        libc::copy_file_range(
            src.as_raw_fd(),
            &mut off_in,
            dst.as_raw_fd(),
            &mut off_out,
            len,
            0,
        )
    };
    usize::try_from(r).map_err(|_| io::Error::last_os_error())
}

/// Whether an error of [`copy_range`] means "not here, use read and
/// write" rather than a failure of the copy itself.
pub fn copy_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EXDEV | libc::ENOSYS | libc::EOPNOTSUPP | libc::EINVAL)
    )
}
