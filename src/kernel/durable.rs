//! The guest's durability contract, as ext3 on UML gives it: when `sync`,
//! `syncfs`, `fsync`, `fdatasync`, `msync(MS_SYNC)` or a remount returns
//! inside the guest, every write before it is committed in the journal and
//! the COW file is flushed on the host.
//!
//! `fsync` and friends reach the FUSE server as `FUSE_FSYNC`. `sync(2)`
//! and `syncfs(2)` never do (the host kernel sends `FUSE_SYNCFS` only to
//! virtiofs), so the guest's seccomp filter holds them
//! (`kernel::policy`) and [`serve`] answers each one after the commit:
//!
//! ```text
//!   guest: sync() ──held──> monitor: syncfs(root)   (page cache -> FUSE writes)
//!                                    fs.sync_fs()    (journal commit, fdatasync)
//!          sync() = 0  <──answered──   (a remount is let run instead)
//! ```
//!
//! With the ubd `s` flag, [`Synchronous`] commits after every change.
#![forbid(unsafe_code)]

use super::kmsg::{self, Kmsg, Reply};
use crate::sys::seccomp::{Held, Listener};
use crate::vfs::{
    DirEntry, FsResult, Ino, InodeFs, Metadata, Owner, RenameFlags, SetAttr, StatFs, XattrMode,
};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// Answers the held calls of one boot's filter until its last process
/// exits: for `sync`, `syncfs` and remounts flush the page cache of the
/// root and commit first; `syslog` reads the monitor's boot log.
pub fn serve(
    listener: Listener,
    fs: Arc<dyn InodeFs>,
    root: Arc<File>,
    kmsg: Kmsg,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("sync".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            while let Ok(Some(held)) = listener.next() {
                if i64::from(held.nr) == libc::SYS_syslog {
                    if syslog(&listener, &held, &kmsg).is_err() {
                        break;
                    }
                    continue;
                }
                commit(fs.as_ref(), &root);
                // sync and syncfs are done once the root is committed: the
                // guest's other filesystems are memory (tmpfs, proc, sysfs),
                // and letting the call run would make the host write back
                // every filesystem it has. A remount must still happen.
                let answered = if i64::from(held.nr) == libc::SYS_mount {
                    listener.resume(held.id)
                } else {
                    listener.succeed(held.id)
                };
                if answered.is_err() {
                    break;
                }
            }
        })?;
    Ok(())
}

/// Answers a held `syslog(type, buf, len)` from the boot log.
fn syslog(listener: &Listener, held: &Held, kmsg: &Kmsg) -> io::Result<()> {
    let [action, buf, len, ..] = held.args;
    match kmsg::answer(action, len, kmsg) {
        Reply::Value(v) => listener.reply(held.id, v),
        Reply::Errno(e) => listener.fail(held.id, e),
        Reply::Copy(bytes) if bytes.is_empty() => listener.reply(held.id, 0),
        Reply::Copy(bytes) => match listener.write_to_caller(held, buf, &bytes) {
            Ok(()) => listener.reply(held.id, i64::try_from(bytes.len()).unwrap_or(0)),
            Err(_) => listener.fail(held.id, libc::EFAULT),
        },
    }
}

/// Writes the root's dirty pages back to the server, then commits.
fn commit(fs: &dyn InodeFs, root: &File) {
    let _ = nix::unistd::syncfs(root.as_raw_fd());
    let _ = fs.sync_fs();
}

/// A filesystem whose every change is committed before it is answered
/// (the ubd `s` flag: synchronous host writes).
pub struct Synchronous(pub Arc<dyn InodeFs>);

impl Synchronous {
    fn then_sync<T>(&self, r: FsResult<T>) -> FsResult<T> {
        let v = r?;
        self.0.sync_fs()?;
        Ok(v)
    }
}

impl InodeFs for Synchronous {
    fn lookup(&self, parent: Ino, name: &[u8]) -> FsResult<Metadata> {
        self.0.lookup(parent, name)
    }
    fn getattr(&self, ino: Ino) -> FsResult<Metadata> {
        self.0.getattr(ino)
    }
    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        self.0.read(ino, offset, buf)
    }
    fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        self.0.readlink(ino)
    }
    fn readdir(&self, ino: Ino, cookie: u64, f: &mut dyn FnMut(DirEntry) -> bool) -> FsResult<()> {
        self.0.readdir(ino, cookie, f)
    }
    fn statfs(&self) -> FsResult<StatFs> {
        self.0.statfs()
    }
    fn listxattr(&self, ino: Ino) -> FsResult<Vec<Vec<u8>>> {
        self.0.listxattr(ino)
    }
    fn getxattr(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        self.0.getxattr(ino, name)
    }
    fn setattr(&self, ino: Ino, changes: &SetAttr) -> FsResult<Metadata> {
        self.then_sync(self.0.setattr(ino, changes))
    }
    fn write(&self, ino: Ino, offset: u64, data: &[u8]) -> FsResult<usize> {
        self.then_sync(self.0.write(ino, offset, data))
    }
    fn create(&self, parent: Ino, name: &[u8], mode: u32, owner: Owner) -> FsResult<Metadata> {
        self.then_sync(self.0.create(parent, name, mode, owner))
    }
    fn mknod(
        &self,
        parent: Ino,
        name: &[u8],
        mode: u32,
        rdev: u64,
        owner: Owner,
    ) -> FsResult<Metadata> {
        self.then_sync(self.0.mknod(parent, name, mode, rdev, owner))
    }
    fn mkdir(&self, parent: Ino, name: &[u8], mode: u32, owner: Owner) -> FsResult<Metadata> {
        self.then_sync(self.0.mkdir(parent, name, mode, owner))
    }
    fn symlink(&self, parent: Ino, name: &[u8], target: &[u8], owner: Owner) -> FsResult<Metadata> {
        self.then_sync(self.0.symlink(parent, name, target, owner))
    }
    fn link(&self, ino: Ino, new_parent: Ino, new_name: &[u8]) -> FsResult<Metadata> {
        self.then_sync(self.0.link(ino, new_parent, new_name))
    }
    fn unlink(&self, parent: Ino, name: &[u8]) -> FsResult<()> {
        self.then_sync(self.0.unlink(parent, name))
    }
    fn rmdir(&self, parent: Ino, name: &[u8]) -> FsResult<()> {
        self.then_sync(self.0.rmdir(parent, name))
    }
    fn rename(
        &self,
        parent: Ino,
        name: &[u8],
        new_parent: Ino,
        new_name: &[u8],
        flags: RenameFlags,
    ) -> FsResult<()> {
        self.then_sync(self.0.rename(parent, name, new_parent, new_name, flags))
    }
    fn setxattr(&self, ino: Ino, name: &[u8], value: &[u8], mode: XattrMode) -> FsResult<()> {
        self.then_sync(self.0.setxattr(ino, name, value, mode))
    }
    fn removexattr(&self, ino: Ino, name: &[u8]) -> FsResult<()> {
        self.then_sync(self.0.removexattr(ino, name))
    }
    fn forget(&self, ino: Ino) {
        self.0.forget(ino)
    }
    fn fsync(&self, ino: Ino, datasync: bool) -> FsResult<()> {
        self.0.fsync(ino, datasync)
    }
    fn sync_fs(&self) -> FsResult<()> {
        self.0.sync_fs()
    }
    fn unmount(&self) -> FsResult<()> {
        self.0.unmount()
    }
}
