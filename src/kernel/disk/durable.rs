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

use crate::fs::{
    DirEntry, FsResult, Ino, InodeFs, Metadata, Owner, RenameFlags, SetAttr, StatFs, XattrMode,
};
use crate::kernel::console::kmsg::{self, Kmsg, Reply};
use crate::kernel::guest::tmpfs;
use crate::kernel::hostfs::bind::HostFs;
use crate::sys::seccomp::{Held, Listener};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;
use std::sync::Arc;

/// Answers the held calls of one boot's filter until its last process
/// exits: for `sync`, `syncfs` and remounts flush the page cache of the
/// root and commit first; `syslog` reads the monitor's boot log; a
/// `hostfs` mount is `hostfs`'s, a tmpfs mount is sized by `mem` bytes
/// (`kernel::guest::tmpfs`), other mounts run.
pub fn serve(
    listener: Listener,
    fs: Arc<dyn InodeFs>,
    root: Arc<File>,
    kmsg: Kmsg,
    hostfs: Arc<HostFs>,
    mem: u64,
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
                if i64::from(held.nr) == libc::SYS_umount2 {
                    let answered = match umount_unforced(&listener, &held) {
                        Ok(()) => listener.succeed(held.id),
                        Err(e) => listener.fail(held.id, e),
                    };
                    if answered.is_err() {
                        break;
                    }
                    continue;
                }
                if i64::from(held.nr) == libc::SYS_mount {
                    // A hostfs mount is the monitor's, a tmpfs one may be
                    // sized by it; other mounts than remounts run as they
                    // are.
                    let answered = match hostfs
                        .handle(&listener, &held)
                        .or_else(|| tmpfs::handle(&listener, &held, mem))
                    {
                        Some(Ok(())) => Some(listener.succeed(held.id)),
                        Some(Err(e)) => Some(listener.fail(held.id, e)),
                        None if held.args[3] & libc::MS_REMOUNT == 0 => {
                            Some(listener.resume(held.id))
                        }
                        None => None,
                    };
                    match answered {
                        Some(Ok(())) => continue,
                        Some(Err(_)) => break,
                        None => {}
                    }
                }
                if i64::from(held.nr) == libc::SYS_mount && sysfs_remount_holds(&listener, &held) {
                    if listener.succeed(held.id).is_err() {
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

/// Does a `/proc/PID/status` show CAP_SYS_ADMIN in `CapEff`?
pub(crate) fn has_sys_admin(status: &str) -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    crate::sys::process::status_bit(status, "CapEff", CAP_SYS_ADMIN)
}

/// A held `umount2(path, flags)` with `MNT_FORCE`: the host wants the
/// initial namespace's CAP_SYS_ADMIN for the force (`umount -f`, which
/// Debian's umountfs and umountnfs.sh use at every halt), the kernel only
/// a capable caller. The force means nothing to the guest's local
/// filesystems, so for a caller holding CAP_SYS_ADMIN the monitor
/// unmounts without it, in the caller's mount namespace, from the
/// caller's root and working directory; the errno otherwise.
fn umount_unforced(listener: &Listener, held: &Held) -> Result<(), i32> {
    let errno = |e: io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let [path, flags, ..] = held.args;
    let caller = Caller::of(held.pid).map_err(errno)?;
    let path = listener
        .read_string_from_caller(held, path, 4096)
        .map_err(errno)?;
    let path = caller.path(path).ok_or(libc::ENOENT)?;
    // Still held: the descriptors and the status are the caller's.
    if !listener.still_held(held.id) {
        return Err(libc::ESRCH);
    }
    if !has_sys_admin(&caller.status) {
        return Err(libc::EPERM);
    }
    let flags = i32::try_from(flags & 0xffff_ffff).unwrap_or(0) & !libc::MNT_FORCE;
    let flags = nix::mount::MntFlags::from_bits(flags).ok_or(libc::EINVAL)?;
    let path = std::ffi::OsString::from_vec(path);
    caller.run_inside("umount", move || {
        Ok(nix::mount::umount2(std::path::Path::new(&path), flags)?)
    })
}

/// `path` as a thread that enters a caller's root, but not its pid
/// namespace, must name it: `/proc/self/` (systemd mounts through
/// `/proc/self/fd/N`) becomes the caller's own pid there, the last of
/// `NSpid` in its `status`. None for another `self` link such a thread
/// cannot follow for the caller.
fn callers_path(path: Vec<u8>, status: &str) -> Option<Vec<u8>> {
    const SELF: &[u8] = b"/proc/self/";
    let path = match path.strip_prefix(SELF) {
        Some(rest) => {
            let nspid = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))?
                .split_whitespace()
                .last()?;
            [b"/proc/", nspid.as_bytes(), b"/", rest].concat()
        }
        None => path,
    };
    let has = |w: &[u8]| path.windows(w.len()).any(|x| x == w);
    (!has(b"self/") && !has(b"thread-self")).then_some(path)
}

/// A held caller's filesystem context, taken while its call is held: its
/// mount namespace, root and working directory, its user namespace, and
/// its status text.
pub(crate) struct Caller {
    ns: File,
    root: File,
    cwd: File,
    userns: std::fs::Metadata,
    /// `/proc/PID/status`.
    pub status: String,
}

impl Caller {
    /// The context of process `pid` (check [`Listener::still_held`]
    /// afterwards: only then is it the caller's).
    pub(crate) fn of(pid: u32) -> io::Result<Caller> {
        use std::os::unix::fs::OpenOptionsExt;
        let open_path = |what: &str| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(format!("/proc/{pid}/{what}"))
        };
        Ok(Caller {
            ns: File::open(format!("/proc/{pid}/ns/mnt"))?,
            root: open_path("root")?,
            cwd: open_path("cwd")?,
            userns: std::fs::metadata(format!("/proc/{pid}/ns/user"))?,
            status: std::fs::read_to_string(format!("/proc/{pid}/status"))?,
        })
    }

    /// Is the caller the guest's root: CAP_SYS_ADMIN in the guest's own
    /// user namespace (the monitor's), not in a nested one?
    pub(crate) fn is_guest_root(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let ours = std::fs::metadata("/proc/self/ns/user");
        has_sys_admin(&self.status)
            && ours.is_ok_and(|m| m.dev() == self.userns.dev() && m.ino() == self.userns.ino())
    }

    /// `path` as [`Caller::run_inside`]'s thread must name it (see
    /// [`callers_path`]).
    pub(crate) fn path(&self, path: Vec<u8>) -> Option<Vec<u8>> {
        callers_path(path, &self.status)
    }

    /// Runs `f` in a thread of its own (with its own filesystem context)
    /// that enters the caller's mount namespace, root and working
    /// directory, and ends there; the errno when anything failed.
    pub(crate) fn run_inside(
        self,
        name: &str,
        f: impl FnOnce() -> io::Result<()> + Send + 'static,
    ) -> Result<(), i32> {
        use nix::sched::CloneFlags;
        let Caller { ns, root, cwd, .. } = self;
        let enter_and_run = move || -> io::Result<()> {
            nix::sched::unshare(CloneFlags::CLONE_FS)?;
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNS)?;
            nix::unistd::fchdir(root.as_raw_fd())?;
            nix::unistd::chroot(".")?;
            nix::unistd::fchdir(cwd.as_raw_fd())?;
            f()
        };
        std::thread::Builder::new()
            .name(name.into())
            .spawn(enter_and_run)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?
            .join()
            .map_err(|_| libc::EIO)?
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
    }
}

/// `statfs.f_type` of sysfs.
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// The flags a remount may ask of sysfs and still be a no-op: the
/// per-mount ones every guest sysfs mount already has (`nosuid`, `nodev`,
/// `noexec`, set when it is mounted), the atime ones (meaningless on
/// sysfs), `MS_SILENT` and the old magic.
fn sysfs_noop_flags(flags: u64) -> bool {
    const MGC_MSK: u64 = 0xffff_0000;
    const MGC_VAL: u64 = 0xc0ed_0000;
    let flags = if flags & MGC_MSK == MGC_VAL {
        flags & !MGC_MSK
    } else {
        flags
    };
    let noop = libc::MS_REMOUNT
        | libc::MS_NOSUID
        | libc::MS_NODEV
        | libc::MS_NOEXEC
        | libc::MS_SILENT
        | libc::MS_RELATIME
        | libc::MS_NOATIME
        | libc::MS_NODIRATIME
        | libc::MS_STRICTATIME
        | libc::MS_LAZYTIME;
    flags & libc::MS_REMOUNT != 0 && flags & !noop == 0
}

/// Is a held `mount(2)` a remount of a sysfs mount asking for nothing it
/// does not already have? The host refuses those (every sysfs superblock
/// belongs to the initial user namespace: `mount -o
/// remount,nodev,noexec,nosuid /sys` in Debian's checkroot.sh fails with
/// EPERM) where the kernel does them; they are answered done.
fn sysfs_remount_holds(listener: &Listener, held: &Held) -> bool {
    use crate::sys::fs::{is_fs_type, open_beneath, Beneath};
    use std::os::fd::AsFd;
    use std::os::unix::fs::OpenOptionsExt;
    let [_, target, _, flags, ..] = held.args;
    if !sysfs_noop_flags(flags) {
        return false;
    }
    let Ok(path) = listener.read_string_from_caller(held, target, 4096) else {
        return false;
    };
    let Some(rel) = path.strip_prefix(b"/") else {
        return false;
    };
    let rel = if rel.is_empty() { &b"."[..] } else { rel };
    let Ok(rel) = std::ffi::CString::new(rel) else {
        return false;
    };
    let Ok(root) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(format!("/proc/{}/root", held.pid))
    else {
        return false;
    };
    open_beneath(root.as_fd(), &rel, Beneath::InRoot)
        .is_ok_and(|fd| is_fs_type(fd.as_fd(), SYSFS_MAGIC))
        && listener.still_held(held.id)
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
    fn fallocate(&self, ino: Ino, offset: u64, len: u64, mode: u32) -> FsResult<()> {
        self.then_sync(self.0.fallocate(ino, offset, len, mode))
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

#[cfg(test)]
mod tests {
    use super::{callers_path, has_sys_admin, sysfs_noop_flags};

    #[test]
    fn proc_self_names_the_caller_by_its_own_pid() {
        let status = "Name:\tsystemd\nNSpid:\t4242\t1\n";
        assert_eq!(
            callers_path(b"/proc/self/fd/7".to_vec(), status),
            Some(b"/proc/1/fd/7".to_vec())
        );
        assert_eq!(
            callers_path(b"/run/lock".to_vec(), status),
            Some(b"/run/lock".to_vec())
        );
        assert_eq!(
            callers_path(b"/proc/thread-self/fd/7".to_vec(), status),
            None
        );
        assert_eq!(callers_path(b"proc/self/fd/7".to_vec(), status), None);
        assert_eq!(
            callers_path(b"/proc/self/fd/7".to_vec(), "Name:\tx\n"),
            None
        );
    }

    #[test]
    fn only_callers_with_cap_sys_admin_may_unmount() {
        assert!(has_sys_admin("Name:\tumount\nCapEff:\t000001ffffffffff\n"));
        assert!(!has_sys_admin("CapEff:\t0000000000000000\n"));
        assert!(!has_sys_admin("Name:\tumount\n"));
    }

    #[test]
    fn only_flag_only_remounts_of_sysfs_are_answered_without_running() {
        let r = libc::MS_REMOUNT;
        assert!(sysfs_noop_flags(
            r | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC
        ));
        assert!(sysfs_noop_flags(0xc0ed_0000 | r | libc::MS_RELATIME));
        assert!(!sysfs_noop_flags(r | libc::MS_RDONLY));
        assert!(!sysfs_noop_flags(r | libc::MS_BIND));
        assert!(!sysfs_noop_flags(libc::MS_NOSUID));
    }
}
