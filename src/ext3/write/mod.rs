//! The journaling writer: ext2/ext3/ext4 opened read-write, with the inode-level
//! operations of [`crate::fs::InodeFs`].
//!
//! ```text
//!   fs::InodeFs  (FUSE server, uml_fs editing commands)
//!        |
//!   Writer<D>: ops (create, write, rename, ...) under one metadata lock
//!        |  alloc (bitmaps, counters)  dir_write  block_map_write  orphan
//!        |  journal: commit (descriptor + copies + commit block), checkpoint
//!   Cached<D>: dirty metadata of the running transaction over D
//!        |  (the read side, Ext3<Arc<Cached<D>>>, reads through it)
//!   D: BlockDevice (plain image, or COW: the writer writes whole blocks)
//! ```
//!
//! Typestate: [`Ext3`] is the read-only handle (journal
//! replayed in memory); [`Writer::open`] replays the journal into the
//! device, clears `needs_recovery`, processes the orphan list and only then
//! hands out a writable handle. Each transaction is committed to the
//! journal and checkpointed straight away, so the log holds at most one
//! transaction and blocks freed in a committed transaction can be reused
//! without revoke records. Directories keep their htree index as Linux
//! does (`htree_write`: leaf and node splits, a second level, one-block
//! directories made indexed). Files mapped by extents are written through
//! `extent_write`, and new files and directories on an `extent`
//! filesystem are extent-mapped as the kernel makes them.
//!
//! A server opens it once, calls [`Writer::tick`] from a timer so changes
//! reach the disk while the guest is idle, and `InodeFs::unmount` at the
//! end:
//!
//! ```no_run
//! use umlkit::cow::{open_disk, DiskOptions};
//! use umlkit::ext3::write::{WriteOptions, Writer};
//! use umlkit::fs::InodeFs;
//! let opts = DiskOptions { writable: true, create_cow: true, ..Default::default() };
//! let disk = open_disk("a.cow,root_fs", &opts).unwrap();
//! let fs = Writer::open(disk, WriteOptions::default()).unwrap();
//! let root = fs.getattr(2).unwrap();
//! # let _ = root;
//! fs.unmount().unwrap();
//! ```

mod alloc;
mod block_map_write;
pub mod cache;
pub mod csum;
mod dir_write;
mod extent_write;
mod file_write;
mod geo;
mod htree_write;
pub mod inode_write;
mod journal;
mod mount;
mod ops;
mod orphan;
mod rename;
mod xattr_write;

use self::cache::Cached;
pub(crate) use self::geo::Geo;
use self::inode_write::RawInode;
use self::journal::Journal;
use crate::block::{usize_from, BlockDevice};
use crate::ext3::bytes::{hi32, le16, le32, lo32, set_le16, set_le32};
use crate::ext3::features::{Compat, Incompat, RoCompat};
use crate::ext3::superblock::field::*;
use crate::ext3::superblock::{STATE_VALID, SUPERBLOCK_SIZE};
use crate::ext3::{Corrupt, Error, Ext3, OpenOptions, ReplayReport, Result};
use crate::fs::Error as FsError;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Results of writer operations, with the interface's errors
/// ([`crate::fs::Error`]): a failure names the inode and block it met.
pub type WResult<T> = std::result::Result<T, FsError>;

/// A 32-bit on-disk number (inode number, group, count) as an index into
/// memory (lossless: umlkit builds for 64-bit hosts, `usize_from` saturates
/// elsewhere).
pub(crate) fn idx(v: u32) -> usize {
    usize_from(u64::from(v))
}

/// How many blocks at the start of `blocks` are consecutive numbers (1
/// for a lone block, 0 for none): one run to read, write or free at once.
pub(crate) fn run_len(blocks: &[u64]) -> usize {
    let Some((_, more)) = blocks.split_first() else {
        return 0;
    };
    let adjacent = more
        .iter()
        .zip(blocks)
        .take_while(|&(&b, &a)| a.checked_add(1) == Some(b))
        .count();
    // Below blocks.len().
    adjacent.saturating_add(1)
}

/// A device error of the writer (the block is added where it is known).
pub(crate) fn eio(_: io::Error) -> FsError {
    FsError::IO
}

/// How to open for writing.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Commit after every operation (slower; what `uml_fs` does not need).
    pub sync_each_op: bool,
    /// Test hook: every device write after this many fails, as if the
    /// process had been killed there.
    pub fail_after_writes: Option<u64>,
    /// Keep the kernel's mount accounting: each read-write mount (the
    /// first change after a clean superblock) increments `s_mnt_count`,
    /// sets `s_mtime` and records this path in `s_last_mounted`, as
    /// Linux's `ext4_setup_super` does. `None` for an editing tool.
    pub mount_point: Option<Vec<u8>>,
    /// Open as a read-only mount of a writable device: the journal is
    /// recovered and orphans are released (as Linux does on a read-only
    /// mount of a writable disk), then the superblock is left clean until
    /// the first change, which is a remount read-write. See
    /// [`Writer::remount`].
    pub read_only: bool,
}

/// The features the writer knows how to keep consistent.
const WRITABLE_INCOMPAT: u32 = Incompat::FILETYPE
    | Incompat::RECOVER
    | Incompat::EXTENTS
    | Incompat::BIT64
    | Incompat::FLEX_BG
    | Incompat::CSUM_SEED;
const WRITABLE_RO_COMPAT: u32 = RoCompat::SPARSE_SUPER
    | RoCompat::LARGE_FILE
    | RoCompat::HUGE_FILE
    | RoCompat::GDT_CSUM
    | RoCompat::DIR_NLINK
    | RoCompat::EXTRA_ISIZE
    | RoCompat::METADATA_CSUM
    | RoCompat::ORPHAN_PRESENT;
const WRITABLE_COMPAT: u32 = Compat::DIR_PREALLOC
    | Compat::HAS_JOURNAL
    | Compat::EXT_ATTR
    | Compat::RESIZE_INODE
    | Compat::DIR_INDEX
    | Compat::ORPHAN_FILE;

/// Mutable allocation state, guarded by the metadata lock.
#[derive(Debug)]
pub(crate) struct State {
    /// Per group: (free blocks, free inodes, used dirs).
    pub counts: Vec<(u32, u32, u32)>,
    /// Per group: (`bg_flags`, `bg_itable_unused`).
    pub gflags: Vec<(u16, u32)>,
    pub free_blocks: u64,
    pub free_inodes: u32,
    /// Blocks freed by the running transaction: not reused before it commits.
    pub pending_free: HashSet<u64>,
    pub journal: Option<Journal>,
    /// Orphan list, head first (`s_last_orphan`, linked by `i_dtime`).
    pub orphans: Vec<u32>,
    /// The orphan file's entries found at open, still to be processed.
    pub file_orphans: orphan::OrphanFile,
    pub last_commit: Instant,
    pub block_hint: u64,
    pub generation: u32,
    /// Set after an I/O error: further changes would not be consistent.
    pub broken: bool,
    /// The superblock on the device says "in use" (needs_recovery).
    pub marked_in_use: bool,
    /// The next marking in use is a read-write mount (mount accounting).
    pub mount_pending: bool,
    /// Groups whose counters or bitmaps the running transaction changed:
    /// their descriptors are written at commit (`put_dirty_descs`).
    pub dirty_groups: BTreeSet<usize>,
}

/// An ext2/ext3/ext4 filesystem opened for writing.
pub struct Writer<D: BlockDevice> {
    pub(crate) fs: Ext3<Arc<Cached<D>>>,
    pub(crate) cache: Arc<Cached<D>>,
    pub(crate) geo: Geo,
    pub(crate) st: RwLock<State>,
    /// Directory name caches: directory inode -> name -> inode.
    pub(crate) dcache: Mutex<HashMap<u32, dir_write::NameMap>>,
    pub(crate) opts: WriteOptions,
    replay: Option<ReplayReport>,
}

/// Commit at least this often while operations keep coming.
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);

fn io_err(offset: u64, source: io::Error) -> Error {
    Error::Io {
        offset,
        len: 0,
        source,
    }
}

impl<D: BlockDevice> Writer<D> {
    /// Opens `dev` for writing: refuses features the writer cannot keep
    /// consistent, replays a journal that needs recovery into the device,
    /// processes the orphan list and marks the filesystem in use.
    pub fn open(dev: D, opts: WriteOptions) -> Result<Self> {
        let reader = Ext3::open_with(
            &dev,
            OpenOptions {
                replay_journal: false,
            },
        )?;
        let sb = reader.superblock().clone();
        let bad_in = sb.s_feature_incompat.0 & !WRITABLE_INCOMPAT;
        let bad_ro = sb.s_feature_ro_compat.0 & !WRITABLE_RO_COMPAT;
        let bad_c = sb.s_feature_compat.0 & !WRITABLE_COMPAT;
        if bad_in != 0 || bad_ro != 0 || bad_c != 0 {
            let names =
                crate::ext3::features::all_names(Compat(bad_c), Incompat(bad_in), RoCompat(bad_ro));
            return Err(Error::Unsupported(format!(
                "writing a filesystem with {} (not kept by the writer)",
                names.join(", ")
            )));
        }
        if sb.has_journal() && sb.s_journal_inum == 0 {
            return Err(Error::Unsupported("external journal".into()));
        }
        let mut replay = None;
        if sb.needs_recovery() && sb.has_journal() {
            let (blocks, report) = reader.replay_journal()?;
            for (blk, data) in &blocks {
                let off = blk.byte_offset(sb.block_size()).unwrap_or(u64::MAX);
                dev.write_all_at(off, data).map_err(|e| io_err(off, e))?;
            }
            dev.flush().map_err(|e| io_err(0, e))?;
            replay = Some(report);
        }
        drop(reader);
        let bs = sb.block_size();
        let cache = Arc::new(Cached::new(dev, bs));
        if let Some(n) = opts.fail_after_writes {
            cache.fail_after_writes(n);
        }
        let fs = Ext3::open_with(
            Arc::clone(&cache),
            OpenOptions {
                replay_journal: false,
            },
        )?;
        let sb = fs.superblock().clone();
        let geo = Geo::new(&sb, fs.groups())?;
        let journal = if sb.has_journal() {
            Some(Journal::load(&fs, &sb).map_err(|e| match e {
                FsError::Unsupported => Error::Unsupported(
                    "writing through a journal with checksums or 64-bit tags".into(),
                ),
                _ => Error::corrupt(
                    "journal",
                    Corrupt::Journal {
                        field: "journal superblock (for writing)",
                        value: 0,
                    },
                ),
            })?)
        } else {
            None
        };
        let counts = fs
            .groups()
            .iter()
            .map(|g| {
                (
                    g.bg_free_blocks_count,
                    g.bg_free_inodes_count,
                    g.bg_used_dirs_count,
                )
            })
            .collect();
        let gflags = fs
            .groups()
            .iter()
            .map(|g| (g.bg_flags, g.bg_itable_unused))
            .collect();
        // The totals are the sums of the groups' counts, as Linux's
        // percpu counters start at mount (ext4_count_free_clusters): the
        // superblock's copies are only updated at commit, and a stale or
        // forged one would let allocation run them below zero.
        // Below 2^24 groups times 2^32: the sums fit u64.
        let free_blocks = fs.groups().iter().fold(0u64, |n, g| {
            n.saturating_add(u64::from(g.bg_free_blocks_count))
        });
        let inodes_sum = fs.groups().iter().fold(0u64, |n, g| {
            n.saturating_add(u64::from(g.bg_free_inodes_count))
        });
        let free_inodes = u32::try_from(inodes_sum).map_err(|_| {
            Error::corrupt(
                "group descriptors",
                Corrupt::BadField {
                    field: "bg_free_inodes_count (sum over the groups)",
                    value: inodes_sum,
                },
            )
        })?;
        let w = Writer {
            fs,
            cache,
            geo,
            st: RwLock::new(State {
                counts,
                gflags,
                free_blocks,
                free_inodes,
                pending_free: HashSet::new(),
                journal,
                orphans: Vec::new(),
                file_orphans: orphan::OrphanFile::default(),
                last_commit: Instant::now(),
                block_hint: 0,
                generation: std::process::id().wrapping_mul(2654435761),
                broken: false,
                marked_in_use: false,
                mount_pending: false,
                dirty_groups: BTreeSet::new(),
            }),
            dcache: Mutex::new(HashMap::new()),
            opts,
            replay,
        };
        let errno = Error::Write;
        let work = {
            let mut st = w.st.write().map_err(|_| errno(FsError::IO))?;
            w.load_orphans(&mut st).map_err(errno)?;
            // A read-write open is a mount; a read-only one only cleans up.
            st.mount_pending = w.opts.mount_point.is_some() && !w.opts.read_only;
            let work = w.replay.is_some() || !st.orphans.is_empty() || st.file_orphans.flag_set;
            if !w.opts.read_only || work {
                // Mark the filesystem in use on the device itself before
                // any transaction: a log without needs_recovery would be
                // wiped.
                w.mark_in_use(&mut st).map_err(errno)?;
                if let Some(j) = st.journal.as_mut() {
                    j.reset_if_dirty(&w.cache).map_err(errno)?;
                }
                w.process_orphans(&mut st).map_err(errno)?;
                w.commit(&mut st).map_err(errno)?;
            }
            work
        };
        if w.opts.read_only && work {
            // ext4_mark_recovery_complete on a read-only mount; the next
            // change is a remount read-write.
            w.close().map_err(errno)?;
        } else if w.opts.read_only {
            let mut st = w.st.write().map_err(|_| errno(FsError::IO))?;
            st.mount_pending = w.opts.mount_point.is_some();
        }
        Ok(w)
    }

    /// What journal replay did when opening, if it ran.
    pub fn replay_report(&self) -> Option<&ReplayReport> {
        self.replay.as_ref()
    }

    /// The read side, seeing this writer's changes.
    pub fn reader(&self) -> &Ext3<Arc<Cached<D>>> {
        &self.fs
    }

    /// Reads a whole metadata block (transaction copy first).
    pub(crate) fn get(&self, blk: u64) -> WResult<Vec<u8>> {
        if blk >= self.geo.blocks_count {
            return Err(FsError::CORRUPT.at_block(blk));
        }
        self.cache.get(blk).map_err(|_| FsError::IO.at_block(blk))
    }

    /// Puts a metadata block into the running transaction.
    pub(crate) fn put(&self, blk: u64, data: Vec<u8>) -> WResult<()> {
        if blk >= self.geo.blocks_count || blk == 0 && self.geo.bs == 1024 {
            return Err(FsError::CORRUPT.at_block(blk));
        }
        self.cache
            .put(blk, data)
            .map_err(|_| FsError::IO.at_block(blk))
    }

    /// Puts an extended attribute block, sealed under metadata_csum.
    pub(crate) fn put_xattr(&self, blk: u64, mut b: Vec<u8>) -> WResult<()> {
        if let Some(seed) = self.geo.csum {
            csum::seal_xattr_block(&mut b, blk, seed);
        }
        self.put(blk, b)
    }

    /// The raw record of inode `ino`.
    pub(crate) fn raw_inode(&self, ino: u32) -> WResult<RawInode> {
        if ino == 0 || ino > self.geo.inodes_count {
            return Err(FsError::StaleInode);
        }
        let (blk, off) = self.geo.inode_at(ino)?;
        let b = self.get(blk).map_err(|e| e.at_ino(ino))?;
        let rec = b
            .get(off..)
            .and_then(|r| r.get(..self.geo.inode_size))
            .ok_or(FsError::CORRUPT.at_ino(ino))?;
        Ok(RawInode {
            ino,
            b: rec.to_vec(),
        })
    }

    /// Writes an inode record back.
    pub(crate) fn put_inode(&self, r: &RawInode) -> WResult<()> {
        let (blk, off) = self.geo.inode_at(r.ino)?;
        let mut b = self.get(blk).map_err(|e| e.at_ino(r.ino))?;
        let rec = b
            .get_mut(off..)
            .and_then(|r| r.get_mut(..self.geo.inode_size))
            .ok_or(FsError::CORRUPT.at_ino(r.ino))?;
        rec.copy_from_slice(&r.b);
        if let Some(seed) = self.geo.csum {
            csum::seal_inode(rec, r.ino, seed);
        }
        self.put(blk, b).map_err(|e| e.at_ino(r.ino))
    }

    /// Writes the superblock counters (and `s_last_orphan`) into the
    /// transaction; `in_use` marks it mounted (needs_recovery with a
    /// journal, not clean without one).
    pub(crate) fn mount_sb(&self, st: &mut State, in_use: bool) -> WResult<()> {
        let (blk, off) = self.geo.sb_block();
        let mut b = self.get(blk)?;
        let s = sb_mut(&mut b, off)?;
        set_le32(s, S_FREE_BLOCKS_COUNT_LO, lo32(st.free_blocks));
        if self.geo.is64 {
            set_le32(s, S_FREE_BLOCKS_COUNT_HI, hi32(st.free_blocks));
        }
        set_le32(s, S_FREE_INODES_COUNT, st.free_inodes);
        let now = now_secs();
        set_le32(s, S_WTIME, now);
        let head = st.orphans.first().copied().unwrap_or(0);
        set_le32(s, S_LAST_ORPHAN, head);
        let mut incompat = le32(s, S_FEATURE_INCOMPAT);
        let mut state = le16(s, S_STATE);
        if st.journal.is_some() {
            incompat = if in_use {
                incompat | Incompat::RECOVER
            } else {
                incompat & !Incompat::RECOVER
            };
        } else if in_use {
            state &= !STATE_VALID;
        } else {
            state |= STATE_VALID;
        }
        set_le32(s, S_FEATURE_INCOMPAT, incompat);
        set_le16(s, S_STATE, state);
        if !st.file_orphans.flag_set {
            // Orphans go on the list, never in the orphan file: once the
            // file's entries are processed, none is left there.
            let ro = le32(s, S_FEATURE_RO_COMPAT) & !RoCompat::ORPHAN_PRESENT;
            set_le32(s, S_FEATURE_RO_COMPAT, ro);
        }
        if self.geo.csum.is_some() {
            csum::seal_superblock(s);
        }
        self.put(blk, b)
    }

    /// Writes the superblock marked in use straight to the device (before
    /// the first transaction after open or unmount), with no other block
    /// dirty.
    fn mark_in_use(&self, st: &mut State) -> WResult<()> {
        // The superblock as on the device (its counters match the
        // committed state), with only the in-use flag changed.
        let (blk, off) = self.geo.sb_block();
        let mut b = vec![0u8; self.geo.bsz()];
        self.cache
            .inner()
            .read_exact_at(self.geo.byte_of(blk)?, &mut b)
            .map_err(eio)?;
        let s = sb_mut(&mut b, off)?;
        if st.journal.is_some() {
            let incompat = le32(s, S_FEATURE_INCOMPAT);
            set_le32(s, S_FEATURE_INCOMPAT, incompat | Incompat::RECOVER);
        } else {
            let state = le16(s, S_STATE) & !STATE_VALID;
            set_le16(s, S_STATE, state);
        }
        let now = now_secs();
        set_le32(s, S_WTIME, now);
        if let (true, Some(path)) = (st.mount_pending, &self.opts.mount_point) {
            mount::stamp_mount(s, path, now);
            st.mount_pending = false;
        }
        if self.geo.csum.is_some() {
            csum::seal_superblock(s);
        }
        self.cache.write_blocks(blk, &b).map_err(eio)?;
        self.cache.flush().map_err(eio)?;
        st.marked_in_use = true;
        Ok(())
    }

    /// Commits when the running transaction is older than the commit
    /// interval (5 s); a server calls this from a timer so that changes
    /// reach the disk while the guest is idle.
    pub fn tick(&self) -> WResult<()> {
        let mut st = self.st.write().map_err(|_| FsError::IO)?;
        if st.last_commit.elapsed() >= COMMIT_INTERVAL && self.cache.dirty_count() > 0 {
            self.commit(&mut st)?;
        }
        Ok(())
    }

    /// Commits the running transaction: data is already on the device;
    /// flush it, log the metadata, then write it home (checkpoint).
    pub(crate) fn commit(&self, st: &mut State) -> WResult<()> {
        if st.broken {
            return Err(FsError::IO);
        }
        let r = self.commit_inner(st);
        if r.is_err() {
            st.broken = true;
        }
        r
    }

    fn commit_inner(&self, st: &mut State) -> WResult<()> {
        st.last_commit = Instant::now();
        self.put_dirty_descs(st)?;
        if self.cache.dirty_count() == 0 {
            return self.cache.flush().map_err(eio);
        }
        if !st.marked_in_use {
            self.mark_in_use(st)?;
        }
        self.mount_sb(st, true)?;
        // Ordered mode: the data the metadata points at goes first.
        self.cache.flush_data().map_err(eio)?;
        let blocks = self.cache.dirty_blocks().map_err(eio)?;
        if let Some(j) = st.journal.as_mut() {
            j.commit(&self.cache, &blocks)?;
        }
        for (blk, data) in &blocks {
            self.cache.write_blocks(*blk, data).map_err(eio)?;
        }
        self.cache.flush().map_err(eio)?;
        if let Some(j) = st.journal.as_mut() {
            j.checkpointed(&self.cache)?;
        }
        self.cache.clear_dirty().map_err(eio)?;
        st.pending_free.clear();
        Ok(())
    }

    /// Ends an operation: commits when asked to, when the transaction is
    /// getting large or when the last commit is old.
    pub(crate) fn end_op(&self, st: &mut State) -> WResult<()> {
        let limit = st.journal.as_ref().map_or(4096, |j| j.capacity() / 2);
        if self.opts.sync_each_op
            || self.cache.dirty_count() >= limit
            || st.last_commit.elapsed() >= COMMIT_INTERVAL
        {
            self.commit(st)?;
        }
        Ok(())
    }

    /// True when the running transaction must be committed before more
    /// blocks can be dirtied (long writes commit in the middle).
    pub(crate) fn tx_full(&self, st: &State) -> bool {
        let limit = st.journal.as_ref().map_or(8192, |j| j.capacity() / 2);
        // A count of blocks held in memory: far below usize::MAX.
        self.cache.dirty_count().saturating_add(64) >= limit
    }

    /// Commits, frees orphans, checkpoints and marks the filesystem clean.
    pub fn close(&self) -> WResult<()> {
        let mut st = self.st.write().map_err(|_| FsError::IO)?;
        if !st.marked_in_use && self.cache.dirty_count() == 0 && st.orphans.is_empty() {
            // Clean already (a read-only mount, or closed twice): the
            // superblock is not rewritten.
            return self.cache.flush().map_err(eio);
        }
        self.commit(&mut st)?;
        self.process_orphans(&mut st)?;
        self.commit(&mut st)?;
        self.mount_sb(&mut st, false)?;
        let (blk, _) = self.geo.sb_block();
        let b = self.get(blk)?;
        self.cache.write_blocks(blk, &b).map_err(eio)?;
        self.cache.flush().map_err(eio)?;
        self.cache.clear_dirty().map_err(eio)?;
        st.marked_in_use = false;
        st.mount_pending = self.opts.mount_point.is_some();
        Ok(())
    }
}

/// The superblock's bytes at `off` in its block (0, or 1024 in a block of
/// 2 KiB or more).
fn sb_mut(b: &mut [u8], off: usize) -> WResult<&mut [u8]> {
    b.get_mut(off..)
        .and_then(|s| s.get_mut(..SUPERBLOCK_SIZE))
        .ok_or(FsError::CORRUPT)
}

pub(crate) fn now_secs() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| lo32(d.as_secs())) // the 32-bit field wraps in 2106, as Linux's
        .unwrap_or(0)
}

pub(crate) fn now() -> crate::ext3::Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    crate::ext3::Timestamp {
        sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nsec: d.subsec_nanos(),
    }
}

#[cfg(test)]
mod send_sync {
    use super::Writer;

    fn is_send_sync<T: Send + Sync>() {}

    #[test]
    fn writers_over_disks_can_be_shared_by_fuse_threads() {
        is_send_sync::<Writer<crate::cow::Disk>>();
        is_send_sync::<Writer<crate::block::FileDevice>>();
    }
}

#[cfg(test)]
mod runs {
    use super::run_len;

    #[test]
    fn a_run_is_the_consecutive_blocks_at_the_start() {
        assert_eq!(run_len(&[]), 0);
        assert_eq!(run_len(&[7]), 1);
        assert_eq!(run_len(&[7, 8, 9, 11, 12]), 3);
        assert_eq!(run_len(&[7, 7, 8]), 1);
        assert_eq!(run_len(&[u64::MAX, 0]), 1);
    }
}
