//! Detached mount trees (the new mount API): clone a directory's mounts
//! into a tree of their own (`open_tree(OPEN_TREE_CLONE)`), change the
//! tree's per-mount flags (`mount_setattr`), attach it somewhere
//! (`move_mount`). The guest kernel's hostfs (`kernel::hostfs`) binds host
//! directories into a guest's mount namespace with them: the tree is cut
//! in the monitor's namespace, where the host's directories are, and
//! attached from a thread that entered the guest's.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `OPEN_TREE_CLONE` (linux/mount.h).
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `AT_RECURSIVE` (linux/fcntl.h).
const AT_RECURSIVE: libc::c_uint = 0x8000;
/// `AT_EMPTY_PATH`.
const AT_EMPTY_PATH: libc::c_uint = 0x1000;
/// `MOVE_MOUNT_F_EMPTY_PATH`.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x04;

/// `MOUNT_ATTR_RDONLY`.
pub const ATTR_RDONLY: u64 = 0x01;
/// `MOUNT_ATTR_NOSUID`.
pub const ATTR_NOSUID: u64 = 0x02;
/// `MOUNT_ATTR_NODEV`.
pub const ATTR_NODEV: u64 = 0x04;
/// `MOUNT_ATTR_NOEXEC`.
pub const ATTR_NOEXEC: u64 = 0x08;

fn owned(r: libc::c_long) -> io::Result<OwnedFd> {
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(r).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: a fresh descriptor returned by the kernel that nothing else
    // owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn done(r: libc::c_long) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A detached copy of the mount at `dir` (a directory descriptor, `O_PATH`
/// is enough) and every mount below it: `open_tree(dir, "",
/// OPEN_TREE_CLONE | AT_RECURSIVE | AT_EMPTY_PATH)`. The copy is unmounted
/// when the returned descriptor closes without being attached. The caller
/// needs CAP_SYS_ADMIN over its mount namespace and `dir` must be in it.
pub fn clone_tree(dir: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags = OPEN_TREE_CLONE
        | AT_RECURSIVE
        | AT_EMPTY_PATH
        | libc::c_uint::try_from(libc::O_CLOEXEC).unwrap_or(0);
    let empty: &CStr = c"";
    // SAFETY: open_tree reads the NUL-terminated empty path; the
    // descriptor is valid for the call.
    let r = unsafe { libc::syscall(libc::SYS_open_tree, dir.as_raw_fd(), empty.as_ptr(), flags) };
    owned(r)
}

/// `struct mount_attr` (linux/mount.h, `MOUNT_ATTR_SIZE_VER0`).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets the `ATTR_*` flags in `set` on every mount of the detached `tree`
/// (`mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE)`).
pub fn set_tree_flags(tree: BorrowedFd<'_>, set: u64) -> io::Result<()> {
    if set == 0 {
        return Ok(());
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let empty: &CStr = c"";
    // SAFETY: mount_setattr reads the empty path and `size` bytes of the
    // attribute struct, both valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            AT_EMPTY_PATH | AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    done(r)
}

/// Attaches the detached `tree` on `target`, resolved by the calling
/// thread (its root, working directory and mount namespace):
/// `move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`.
pub fn attach_tree(tree: BorrowedFd<'_>, target: &CStr) -> io::Result<()> {
    let empty: &CStr = c"";
    // SAFETY: move_mount reads the two NUL-terminated paths; the
    // descriptor is valid for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    done(r)
}
