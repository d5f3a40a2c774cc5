//! Directory read-ahead. A guest that looks up many names in one large
//! directory without listing it (a shell loop over `[ -e f$i ]`, `make`
//! checking its targets, a package manager checking its files) costs one
//! FUSE round trip per name, and each round trip is two wake-ups on the
//! host. Listing the directory through the mount with READDIRPLUS puts
//! hundreds of names with their attributes into the host's dentry cache
//! per round trip, after which the guest's lookups never reach us.
//!
//! The server counts the lookups it answers in each directory. Once they
//! pass [`due`] (an eighth of the names the directory's size suggests, at
//! least [`MIN_MISSES`]), a worker thread lists the directory through the
//! mount point, found again from the names the server saw the guest look
//! up. The kernel asks for READDIRPLUS only for a listing's first chunk,
//! or after a lookup or a use of a READDIRPLUS entry in that directory
//! (`FUSE_READDIRPLUS_AUTO`), so the worker stats one name every
//! [`NUDGE_EVERY`] to keep every chunk coming with attributes; and a
//! directory the guest has listed is listed again from the host's
//! readdir cache, without attributes, unless the server first drops
//! that cache ([`Readahead::notify_with`]).
//!
//! ```text
//!   guest lookup ──> server: answer, count ──(due)──> queue ──> worker:
//!        openat2(mount, path, beneath, same mount), check inode number,
//!        getdents (READDIRPLUS) ... ──> dentries cached on the host
//! ```
//!
//! Costs are bounded: a directory is read again only after as many new
//! lookups as the first time, the maps forget everything past a fixed
//! size, and the worker stops after [`MAX_NAMES`] names.

use crate::fs::{FileType, Ino, InodeFs};
use crate::sys::fs::{open_beneath, Beneath};
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// The fewest lookups in one directory that start a read-ahead.
pub const MIN_MISSES: u32 = 64;
/// Directory bytes per lookup that make a read-ahead due (8 × the 32
/// bytes a typical ext4 entry with index slack takes).
const BYTES_PER_MISS: u64 = 256;
/// The worker stats one name in this many to keep READDIRPLUS on.
pub const NUDGE_EVERY: u64 = 64;
/// The most names one read-ahead lists.
pub const MAX_NAMES: u64 = 1 << 20;
/// The most directories whose place is remembered.
const MAX_PLACES: usize = 1 << 16;
/// The most directories whose lookups are counted.
const MAX_COUNTED: usize = 1 << 12;
/// The deepest path rebuilt from remembered places.
const MAX_DEPTH: usize = 256;
/// Read-aheads waiting for the worker.
const QUEUE: usize = 4;

/// The root directory's number in [`InodeFs`] terms.
const ROOT: Ino = crate::ext3::ROOT_INO;

/// Lookups in a directory of `size` bytes after which it is read ahead.
pub fn due(size: u64) -> u32 {
    let by_size = u32::try_from(size / BYTES_PER_MISS).unwrap_or(u32::MAX);
    by_size.max(MIN_MISSES)
}

/// Where a directory is: its parent and its name there.
#[derive(Debug, Clone)]
struct Place {
    parent: Ino,
    name: Box<[u8]>,
}

/// What the read-ahead has done, for tests and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Lookups of existing names the server answered.
    pub lookups: u64,
    /// Directories listed.
    pub dirs: u64,
    /// Names those listings returned.
    pub names: u64,
}

#[derive(Debug, Default)]
struct State {
    places: HashMap<Ino, Place>,
    /// Lookups answered in each directory since it was last queued.
    misses: HashMap<Ino, u32>,
    /// Read-aheads queued or running.
    pending: usize,
    stats: Stats,
}

#[derive(Debug)]
struct Shared {
    /// The mount point, as this process sees it.
    mount: PathBuf,
    state: Mutex<State>,
    idle: Condvar,
    /// Drops a directory's cached listing before it is read ahead.
    notifier: OnceLock<fuser::Notifier>,
    /// Set for good by [`Readahead::stop`].
    stopped: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Job {
    ino: Ino,
    path: CString,
}

/// The read-ahead of one mount; the worker ends when this is dropped.
#[derive(Debug)]
pub struct Readahead {
    shared: Arc<Shared>,
    jobs: SyncSender<Job>,
}

impl Readahead {
    /// Read-ahead through the FUSE mount at `mount`, with its worker.
    pub fn start(mount: &Path) -> std::io::Result<Arc<Readahead>> {
        let shared = Arc::new(Shared {
            mount: mount.to_path_buf(),
            state: Mutex::new(State::default()),
            idle: Condvar::new(),
            notifier: OnceLock::new(),
            stopped: AtomicBool::new(false),
        });
        let (jobs, queue) = mpsc::sync_channel(QUEUE);
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("readahead".into())
            .spawn(move || work(&worker, &queue))?;
        Ok(Arc::new(Readahead { shared, jobs }))
    }

    /// Lets the worker drop a directory's cached listing (and attributes)
    /// in the host kernel before it reads the directory ahead.
    pub fn notify_with(&self, notifier: fuser::Notifier) {
        let _ = self.shared.notifier.set(notifier);
    }

    /// The server answered that `name` in `parent` is directory `ino`.
    pub fn saw_dir(&self, parent: Ino, name: &[u8], ino: Ino) {
        if name == b"." || name == b".." || ino == ROOT {
            return;
        }
        let mut s = self.shared.lock();
        if s.places.len() >= MAX_PLACES && !s.places.contains_key(&ino) {
            s.places.clear();
        }
        let place = Place {
            parent,
            name: name.into(),
        };
        s.places.insert(ino, place);
    }

    /// Stops reading ahead for good: a listing under way ends at its next
    /// name and closes its directory, so the mount is no longer busy
    /// because of us and can be unmounted from outside.
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
    }

    /// The server answered a lookup of an existing name in `parent`;
    /// queues a read-ahead of `parent` when one is due (its size comes
    /// from `fs`, asked only every [`MIN_MISSES`] lookups).
    pub fn looked_up(&self, parent: Ino, fs: &dyn InodeFs) {
        if self.shared.stopped.load(Ordering::Relaxed) {
            return;
        }
        let count = {
            let mut s = self.shared.lock();
            if s.misses.len() >= MAX_COUNTED && !s.misses.contains_key(&parent) {
                s.misses.clear();
            }
            s.stats.lookups = s.stats.lookups.saturating_add(1);
            let n = s.misses.entry(parent).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        if count % MIN_MISSES != 0 {
            return;
        }
        let Ok(dir) = fs.getattr(parent) else { return };
        if dir.file_type != FileType::Directory || count < due(dir.size) {
            return;
        }
        let mut s = self.shared.lock();
        s.misses.remove(&parent);
        let Some(path) = path_of(&s.places, parent) else {
            return;
        };
        match self.jobs.try_send(Job { ino: parent, path }) {
            Ok(()) => s.pending = s.pending.saturating_add(1),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {}
        }
    }

    /// What has been read ahead so far.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats
    }

    /// Waits up to `limit` until no read-ahead is queued or running;
    /// true when none is.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let s = self.shared.lock();
        let (s, _) = self
            .shared
            .idle
            .wait_timeout_while(s, limit, |s| s.pending > 0)
            .unwrap_or_else(|e| e.into_inner());
        s.pending == 0
    }
}

/// The path of directory `ino` below the mount, from remembered places
/// ("." for the root); None when a link is missing or the chain loops.
fn path_of(places: &HashMap<Ino, Place>, mut ino: Ino) -> Option<CString> {
    let mut names: Vec<&[u8]> = Vec::new();
    while ino != ROOT {
        if names.len() >= MAX_DEPTH {
            return None;
        }
        let place = places.get(&ino)?;
        names.push(&place.name);
        ino = place.parent;
    }
    if names.is_empty() {
        return CString::new(".").ok();
    }
    names.reverse();
    CString::new(names.join(&b'/')).ok()
}

fn work(shared: &Shared, queue: &Receiver<Job>) {
    while let Ok(job) = queue.recv() {
        if let Some(n) = shared.notifier.get() {
            let _ = n.inval_inode(super::fuse_attr::to_fuse(job.ino), 0, 0);
        }
        let names = list(shared, &job).unwrap_or(0);
        let mut s = shared.lock();
        if names > 0 {
            s.stats.dirs = s.stats.dirs.saturating_add(1);
            s.stats.names = s.stats.names.saturating_add(names);
        }
        s.pending = s.pending.saturating_sub(1);
        drop(s);
        shared.idle.notify_all();
    }
}

/// Lists the job's directory through the mount; the number of names, or
/// 0 when the path now leads elsewhere or read-ahead was stopped first.
fn list(shared: &Shared, job: &Job) -> std::io::Result<u64> {
    let stopped = || shared.stopped.load(Ordering::Relaxed);
    if stopped() {
        return Ok(0);
    }
    let root = std::fs::File::open(&shared.mount)?;
    let dir = open_beneath(root.as_fd(), &job.path, Beneath::List)?;
    let st = nix::sys::stat::fstat(dir.as_raw_fd())?;
    let fuse_ino = super::fuse_attr::to_fuse(job.ino).0;
    if st.st_ino != fuse_ino {
        return Ok(0);
    }
    let raw = dir.as_raw_fd();
    let mut dir = nix::dir::Dir::from(dir)?;
    let mut names = 0u64;
    for entry in dir.iter() {
        let entry = entry?;
        names = names.saturating_add(1);
        if names % NUDGE_EVERY == 0 {
            // The result does not matter, only that the kernel sees the
            // entry used (or looked up) before it asks for the next chunk.
            let _ = nix::sys::stat::fstatat(
                Some(raw),
                entry.file_name(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            );
        }
        if names >= MAX_NAMES || stopped() {
            break;
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(parent: Ino, name: &str) -> Place {
        Place {
            parent,
            name: name.as_bytes().into(),
        }
    }

    #[test]
    fn a_directory_is_due_after_an_eighth_of_its_names_and_never_before_64() {
        assert_eq!(due(4096), MIN_MISSES);
        assert_eq!(due(0), MIN_MISSES);
        // 50,000 names take about 1.6 MB of ext4 directory blocks.
        assert_eq!(due(1_600_000), 6250);
        assert_eq!(due(u64::MAX), u32::MAX);
    }

    #[test]
    fn paths_are_rebuilt_from_remembered_places_up_to_the_root() {
        let mut places = HashMap::new();
        places.insert(12, place(ROOT, "usr"));
        places.insert(13, place(12, "share"));
        places.insert(14, place(13, "doc"));
        assert_eq!(path_of(&places, 14).unwrap().as_bytes(), b"usr/share/doc");
        assert_eq!(path_of(&places, ROOT).unwrap().as_bytes(), b".");
        // A missing link or a loop gives no path.
        places.insert(20, place(21, "x"));
        assert_eq!(path_of(&places, 20), None);
        places.insert(30, place(31, "a"));
        places.insert(31, place(30, "b"));
        assert_eq!(path_of(&places, 30), None);
    }

    #[test]
    fn remembered_places_stay_bounded() {
        let ra = Readahead::start(Path::new("/nonexistent")).unwrap();
        for ino in 0..u32::try_from(MAX_PLACES).unwrap() + 10 {
            ra.saw_dir(ROOT, b"d", ino.saturating_add(100));
        }
        assert!(ra.shared.lock().places.len() <= MAX_PLACES);
        ra.saw_dir(ROOT, b"..", 5);
        ra.saw_dir(5, b"x", ROOT);
        assert!(!ra.shared.lock().places.contains_key(&5));
        assert!(ra.wait_idle(Duration::from_millis(10)));
    }
}
