//! The FUSE server: a thin adapter from `fuser`'s low-level requests to
//! [`fs::InodeFs`], so the same server serves the journaling ext3 writer
//! and, for a read-only disk, the reader. It never touches ext3 itself.
//!
//! FUSE's root is inode 1, ext3's is 2; every other number is the same.
//! Caching is the host kernel's: long entry and attribute timeouts (this
//! server is the only writer of the image), kept page cache across opens,
//! readdirplus, large reads, several server threads of which one
//! answers request after request ([`super::fuse_hot`]), and read-ahead of
//! directories the guest looks many names up in ([`super::readahead`]).

use crate::fs::{self, DirEntry, InodeFs, Metadata, Owner, SetAttr};
use fuser::{
    Errno, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub use super::fuse_attr::{attr, makedev, to_fs, to_fuse};
use super::fuse_attr::{errno, kind, negative_attr, set_time};
use super::fuse_hot::{Hot, Serving};
use super::readahead::Readahead;

/// How long the host kernel may trust names and attributes.
const TTL: Duration = Duration::from_secs(86_400);
/// The largest read or write request asked for (1 MiB).
const MAX_IO: u32 = 1 << 20;

/// The adapter. `forget` reaches the filesystem only when the host
/// kernel's lookup count of an inode drops to zero.
pub struct FuseFs {
    fs: Arc<dyn InodeFs>,
    lookups: Mutex<HashMap<fs::Ino, u64, BuildHasherDefault<InoHash>>>,
    /// Ask for the writeback cache (only when the root takes writes: it
    /// makes every close invalidate `st_blocks`, one GETATTR per file).
    writeback: bool,
    /// The kernel accepts ENOSYS to OPEN/OPENDIR (zero-message open).
    no_open: bool,
    no_opendir: bool,
    /// Keeps one of the server threads hot (see [`FuseFs::hot_reader`]).
    hot: Option<Hot>,
    /// Lists directories with many lookups (see [`FuseFs::read_ahead`]).
    readahead: Option<Arc<Readahead>>,
}

impl FuseFs {
    /// Serves `fs`; `writable` when it takes writes, `writeback` to let
    /// the host's page cache hold writes until a flush (off for a disk
    /// with the ubd `s` flag, whose every write is synchronous).
    pub fn new(fs: Arc<dyn InodeFs>, writable: bool, writeback: bool) -> FuseFs {
        FuseFs {
            fs,
            writeback: writable && writeback,
            lookups: Mutex::new(HashMap::default()),
            no_open: false,
            no_opendir: false,
            hot: None,
            readahead: None,
        }
    }

    /// Reads ahead directories in which the guest looks up many names
    /// one by one, through the mount `ra` was started for.
    pub fn read_ahead(mut self, ra: Arc<Readahead>) -> FuseFs {
        self.readahead = Some(ra);
        self
    }

    /// Remembers where a directory the kernel now knows is.
    fn saw(&self, parent: fs::Ino, name: &[u8], m: &Metadata) {
        if let Some(ra) = &self.readahead {
            if m.file_type == fs::FileType::Directory {
                ra.saw_dir(parent, name, m.ino);
            }
        }
    }

    /// Served by `threads` threads (`fuser::Config::n_threads`), parks all
    /// but one of them while that one keeps up, so a guest asking one
    /// thing at a time is answered by the same, warm thread. A parked
    /// thread reads again within [`super::fuse_hot::PARK_LIMIT`], so a
    /// session whose end is waited for (`Session::run`) ends that much
    /// later: meant for the guest's root, whose monitor never waits.
    pub fn hot_reader(mut self, threads: usize) -> FuseFs {
        self.hot = Some(Hot::new(threads));
        self
    }

    /// Marks this thread as answering a request until the guard drops.
    fn serving(&self) -> Serving<'_> {
        match &self.hot {
            Some(h) => h.enter(),
            None => Serving::none(),
        }
    }

    /// The request may wait for the disk: let another thread read.
    fn spare(&self) {
        if let Some(h) = &self.hot {
            h.spare();
        }
    }

    fn counted(&self, ino: fs::Ino) {
        if let Ok(mut m) = self.lookups.lock() {
            *m.entry(ino).or_insert(0) += 1;
        }
    }

    fn entry(&self, r: fs::FsResult<Metadata>, reply: ReplyEntry) {
        match r {
            Ok(m) => {
                self.counted(m.ino);
                reply.entry(&TTL, &attr(&m), Generation(u64::from(m.generation)));
            }
            Err(e) => reply.error(errno(e)),
        }
    }
}

fn owner(req: &Request) -> Owner {
    Owner {
        uid: req.uid(),
        gid: req.gid(),
    }
}

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let mut wanted = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_CACHE_SYMLINKS
            | InitFlags::FUSE_NO_OPEN_SUPPORT
            | InitFlags::FUSE_NO_OPENDIR_SUPPORT;
        if self.writeback {
            wanted |= InitFlags::FUSE_WRITEBACK_CACHE;
        }
        let have = config.capabilities();
        let _ = config.add_capabilities(wanted & have);
        self.no_open = have.contains(InitFlags::FUSE_NO_OPEN_SUPPORT);
        self.no_opendir = have.contains(InitFlags::FUSE_NO_OPENDIR_SUPPORT);
        let _ = config
            .set_max_readahead(MAX_IO)
            .or_else(|max| config.set_max_readahead(max));
        let _ = config
            .set_max_write(MAX_IO)
            .or_else(|max| config.set_max_write(max));
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn destroy(&mut self) {
        let _ = self.fs.unmount();
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _serving = self.serving();
        let parent = to_fs(parent);
        match self.fs.lookup(parent, name.as_bytes()) {
            // A negative entry (node id 0) with a timeout: the kernel
            // caches the absence, so `ls -l` does not ask for a missing
            // /etc/passwd once per file. This server is the only writer,
            // and a create through it replaces the negative dentry.
            Err(fs::Error::NotFound) => {
                reply.entry(&TTL, &negative_attr(), Generation(0));
            }
            Ok(m) => {
                self.saw(parent, name.as_bytes(), &m);
                self.entry(Ok(m), reply);
                // After the reply: the guest need not wait for this.
                if let Some(ra) = &self.readahead {
                    ra.looked_up(parent, &*self.fs);
                }
            }
            r => self.entry(r, reply),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let ino = to_fs(ino);
        let gone = match self.lookups.lock() {
            Ok(mut m) => match m.get_mut(&ino) {
                Some(n) if *n > nlookup => {
                    *n -= nlookup;
                    false
                }
                Some(_) => {
                    m.remove(&ino);
                    true
                }
                None => false,
            },
            Err(_) => false,
        };
        if gone {
            self.fs.forget(ino);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let _serving = self.serving();
        match self.fs.getattr(to_fs(ino)) {
            Ok(m) => reply.attr(&TTL, &attr(&m)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _serving = self.serving();
        let changes = SetAttr {
            mode,
            uid,
            gid,
            size,
            atime: set_time(atime),
            mtime: set_time(mtime),
        };
        match self.fs.setattr(to_fs(ino), &changes) {
            Ok(m) => reply.attr(&TTL, &attr(&m)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let _serving = self.serving();
        match self.fs.readlink(to_fs(ino)) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let _serving = self.serving();
        let r = self.fs.mknod(
            to_fs(parent),
            name.as_bytes(),
            mode & !umask,
            u64::from(rdev),
            owner(req),
        );
        self.entry(r, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let _serving = self.serving();
        let parent = to_fs(parent);
        let r = self
            .fs
            .mkdir(parent, name.as_bytes(), mode & !umask, owner(req));
        if let Ok(m) = &r {
            self.saw(parent, name.as_bytes(), m);
        }
        self.entry(r, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _serving = self.serving();
        empty(self.fs.unlink(to_fs(parent), name.as_bytes()), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _serving = self.serving();
        empty(self.fs.rmdir(to_fs(parent), name.as_bytes()), reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let _serving = self.serving();
        let r = self.fs.symlink(
            to_fs(parent),
            link_name.as_bytes(),
            target.as_os_str().as_bytes(),
            owner(req),
        );
        self.entry(r, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _serving = self.serving();
        let f = fs::RenameFlags {
            noreplace: flags.contains(fuser::RenameFlags::RENAME_NOREPLACE),
            exchange: flags.contains(fuser::RenameFlags::RENAME_EXCHANGE),
        };
        let r = self.fs.rename(
            to_fs(parent),
            name.as_bytes(),
            to_fs(newparent),
            newname.as_bytes(),
            f,
        );
        empty(r, reply);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _serving = self.serving();
        let r = self
            .fs
            .link(to_fs(ino), to_fs(newparent), newname.as_bytes());
        self.entry(r, reply);
    }

    // Zero-message open: ENOSYS to OPEN and OPENDIR (NO_OPEN_SUPPORT and
    // NO_OPENDIR_SUPPORT negotiated) makes the kernel stop sending OPEN and
    // RELEASE and keep the page cache (it then opens with KEEP_CACHE and
    // CACHE_DIR); ENOSYS to FLUSH stops FLUSH. A warm `tar c` of 10k files
    // measured about 1.5x faster than with explicit opens.
    fn open(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _serving = self.serving();
        if self.no_open {
            reply.error(Errno::ENOSYS);
        } else {
            reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE);
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let _serving = self.serving();
        self.spare();
        let mut buf = vec![0u8; size.min(MAX_IO) as usize];
        match self.fs.read(to_fs(ino), offset, &mut buf) {
            Ok(n) => reply.data(&buf[..n.min(buf.len())]),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        let _serving = self.serving();
        match self.fs.write(to_fs(ino), offset, data) {
            Ok(n) => reply.written(u32::try_from(n).unwrap_or(u32::MAX)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        let _serving = self.serving();
        reply.error(Errno::ENOSYS);
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _serving = self.serving();
        empty(self.fs.fsync(to_fs(ino), datasync), reply);
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let _serving = self.serving();
        let Ok(mode) = u32::try_from(mode) else {
            return reply.error(Errno::from_i32(libc::EINVAL));
        };
        empty(self.fs.fallocate(to_fs(ino), offset, length, mode), reply);
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _serving = self.serving();
        if self.no_opendir {
            reply.error(Errno::ENOSYS);
        } else {
            reply.opened(
                FileHandle(0),
                FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR,
            );
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _serving = self.serving();
        self.spare();
        let mut add = |e: DirEntry| {
            let k = e.file_type.map_or(FileType::RegularFile, kind);
            !reply.add(to_fuse(e.ino), e.next_cookie, k, OsStr::from_bytes(&e.name))
        };
        match self.fs.readdir(to_fs(ino), offset, &mut add) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let _serving = self.serving();
        self.spare();
        // Collect first, then ask for attributes: a filesystem may hold its
        // lock while it lists, and asking it again from inside the listing
        // deadlocks as soon as a writer waits for that lock.
        let mut entries = Vec::new();
        let listed = self.fs.readdir(to_fs(ino), offset, &mut |e: DirEntry| {
            entries.push(e);
            entries.len() < READDIRPLUS_BATCH
        });
        if let Err(e) = listed {
            return reply.error(errno(e));
        }
        for e in entries {
            let m = match self.fs.getattr(e.ino) {
                Ok(m) => m,
                Err(err) => return reply.error(errno(err)),
            };
            let full = reply.add(
                to_fuse(e.ino),
                e.next_cookie,
                OsStr::from_bytes(&e.name),
                &TTL,
                &attr(&m),
                Generation(u64::from(m.generation)),
            );
            if full {
                break;
            }
            // The kernel takes a lookup reference for every entry but "."
            // and ".." (when it fitted).
            if e.name != b"." && e.name != b".." {
                self.counted(e.ino);
                self.saw(to_fs(ino), &e.name, &m);
            }
        }
        reply.ok()
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _serving = self.serving();
        empty(self.fs.fsync(to_fs(ino), datasync), reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let _serving = self.serving();
        match self.fs.statfs() {
            Ok(s) => reply.statfs(
                s.blocks,
                s.free_blocks,
                s.available_blocks,
                s.inodes,
                s.free_inodes,
                s.block_size,
                s.name_max,
                s.block_size,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let _serving = self.serving();
        let mode = if flags & libc::XATTR_CREATE != 0 {
            fs::XattrMode::Create
        } else if flags & libc::XATTR_REPLACE != 0 {
            fs::XattrMode::Replace
        } else {
            fs::XattrMode::Any
        };
        empty(
            self.fs.setxattr(to_fs(ino), name.as_bytes(), value, mode),
            reply,
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let _serving = self.serving();
        match self.fs.getxattr(to_fs(ino), name.as_bytes()) {
            Ok(v) => xattr_reply(&v, size, reply),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let _serving = self.serving();
        match self.fs.listxattr(to_fs(ino)) {
            Ok(names) => {
                let mut v = Vec::new();
                for n in names {
                    v.extend_from_slice(&n);
                    v.push(0);
                }
                xattr_reply(&v, size, reply);
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _serving = self.serving();
        empty(self.fs.removexattr(to_fs(ino), name.as_bytes()), reply);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let _serving = self.serving();
        match self
            .fs
            .create(to_fs(parent), name.as_bytes(), mode & !umask, owner(req))
        {
            Ok(m) => {
                self.counted(m.ino);
                reply.created(
                    &TTL,
                    &attr(&m),
                    Generation(u64::from(m.generation)),
                    FileHandle(0),
                    FopenFlags::FOPEN_KEEP_CACHE,
                );
            }
            Err(e) => reply.error(errno(e)),
        }
    }
}

fn xattr_reply(v: &[u8], size: u32, reply: ReplyXattr) {
    if size == 0 {
        reply.size(u32::try_from(v.len()).unwrap_or(u32::MAX));
    } else if v.len() > size as usize {
        reply.error(Errno::from_i32(libc::ERANGE));
    } else {
        reply.data(v);
    }
}

/// Entries listed per READDIRPLUS request before their attributes are
/// fetched; the reply buffer holds fewer, and the kernel resumes from the
/// last cookie it got.
const READDIRPLUS_BATCH: usize = 512;

/// The hash of the lookup counts' inode numbers: one multiply (Fibonacci
/// hashing) instead of SipHash, which took 1.5% of a guest's lookups;
/// the keys are the filesystem's own inode numbers, not chosen by anyone
/// who could aim collisions at the table.
#[derive(Default)]
struct InoHash(u64);

impl Hasher for InoHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Answers an operation that returns nothing but success or an errno.
fn empty(result: fs::FsResult<()>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::InoHash;
    use std::hash::{BuildHasher, BuildHasherDefault};

    #[test]
    fn consecutive_inode_numbers_hash_apart_in_high_and_low_bits() {
        let b = BuildHasherDefault::<InoHash>::default();
        let hashes: Vec<u64> = (1u32..=4096).map(|i| b.hash_one(i)).collect();
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 0xfff).collect();
        let high: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert_eq!(low.len(), 4096, "the bucket bits of 4096 inodes all differ");
        assert_eq!(high.len(), 128, "every 7-bit tag is used");
    }
}
