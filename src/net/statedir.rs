//! `uml_net`'s state directory (`/run/uml_net`): one record per TAP it
//! made (`state`), a `.watch` file per record whose lock the TAP's watcher
//! holds for its whole life, and a `lock` file that every uml_net and
//! watcher holds while it reads or changes anything here.
//!
//! Only root writes here. The directory must be root's with mode 0700 (it
//! is made so when missing, and refused otherwise), its parent root's and
//! not writable by others; a file is believed only when it is a regular
//! file of root's with mode 0600 and one link, opened without following
//! symbolic links. Anything else is removed unread.

use super::state::{TapKey, TapRecord, MAX_RECORD_BYTES};
use nix::fcntl::{fcntl, FcntlArg, Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Where uml_net keeps its records.
pub const STATE_DIR: &str = "/run/uml_net";
/// Most records kept at once (each is a TAP with a watcher).
pub const MAX_RECORDS: usize = 1024;
/// Most directory entries looked at.
const MAX_ENTRIES: usize = 4 * MAX_RECORDS;
/// How long to wait for the lock before giving up.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Why the state directory could not be used.
#[derive(Debug, Error)]
pub enum StateError {
    /// The directory or a file in it is not what root would have made.
    #[error("{path}: {why}")]
    Untrusted {
        /// The path.
        path: PathBuf,
        /// What was wrong.
        why: &'static str,
    },
    /// The lock stayed taken.
    #[error("{path}: still locked after {secs} s")]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// How long was waited.
        secs: u64,
    },
    /// A system call failed.
    #[error("{path}: {}", crate::sys::net::strerror(err))]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        err: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |err| StateError::Io {
        path: path.to_path_buf(),
        err,
    }
}

fn untrusted(path: &Path, why: &'static str) -> StateError {
    StateError::Untrusted {
        path: path.to_path_buf(),
        why,
    }
}

/// Whether `meta` is a file only root may have written: regular, root's,
/// mode 0600, one link.
fn trusted_file(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_file()
        && meta.uid() == 0
        && meta.mode() & 0o7777 == 0o600
        && meta.nlink() == 1
}

/// Checks (and when missing, makes) a root-only directory at `dir`.
fn ensure_dir(dir: &Path) -> Result<(), StateError> {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    let pm = std::fs::symlink_metadata(parent).map_err(io_at(parent))?;
    if !pm.is_dir() || pm.uid() != 0 || (pm.mode() & 0o022 != 0 && pm.mode() & 0o1000 == 0) {
        return Err(untrusted(parent, "not a directory only root can change"));
    }
    match std::fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => match std::fs::create_dir(dir) {
            Ok(()) => {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io_at(dir))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_at(dir)(e)),
        },
        Err(e) => return Err(io_at(dir)(e)),
    }
    let m = std::fs::symlink_metadata(dir).map_err(io_at(dir))?;
    if !m.is_dir() || m.uid() != 0 || m.mode() & 0o7777 != 0o700 {
        return Err(untrusted(dir, "not a directory of root's with mode 0700"));
    }
    Ok(())
}

/// Opens (creating with mode 0600 when missing) a file of root's at
/// `path` for reading and writing; refuses anything else.
fn open_trusted(path: &Path, create: bool) -> Result<File, StateError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(io_at(path))?;
    let meta = file.metadata().map_err(io_at(path))?;
    // A file just made under another umask: give it its exact mode.
    if create
        && meta.file_type().is_file()
        && meta.uid() == 0
        && meta.mode() & 0o7777 != 0o600
        && meta.mode() & 0o077 == 0
    {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_at(path))?;
    }
    let meta = file.metadata().map_err(io_at(path))?;
    if !trusted_file(&meta) {
        return Err(untrusted(path, "not a file of root's with mode 0600"));
    }
    Ok(file)
}

/// The state directory, locked for as long as this value lives.
pub struct StateDir {
    dir: PathBuf,
    _lock: Flock<File>,
}

impl StateDir {
    /// Checks or makes `dir` and takes its lock, waiting at most
    /// [`LOCK_WAIT`].
    pub fn lock(dir: &Path) -> Result<StateDir, StateError> {
        ensure_dir(dir)?;
        let path = dir.join("lock");
        let mut file = open_trusted(&path, true)?;
        let start = Instant::now();
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => {
                    return Ok(StateDir {
                        dir: dir.to_path_buf(),
                        _lock: lock,
                    })
                }
                Err((f, nix::errno::Errno::EWOULDBLOCK | nix::errno::Errno::EINTR)) => {
                    if start.elapsed() > LOCK_WAIT {
                        return Err(StateError::Busy {
                            path,
                            secs: LOCK_WAIT.as_secs(),
                        });
                    }
                    file = f;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((_, e)) => return Err(io_at(&path)(e.into())),
            }
        }
    }

    fn record_path(&self, key: TapKey) -> PathBuf {
        self.dir.join(key.file_name())
    }

    fn watch_path(&self, key: TapKey) -> PathBuf {
        self.dir.join(format!("{}.watch", key.file_name()))
    }

    /// Every record here, in name order: the key and the record, or `None`
    /// for one that was untrusted or did not parse (it has been removed).
    pub fn records(&self) -> Vec<(TapKey, Option<TapRecord>)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let names: Vec<String> = entries
            .take(MAX_ENTRIES)
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let mut keys: Vec<TapKey> = names
            .iter()
            .filter_map(|n| TapKey::from_file_name(n))
            .collect();
        keys.sort_unstable();
        // A watch file without its record is what an interrupted `up`
        // leaves (it holds the lock from making one to saving the other).
        for n in &names {
            let stem = n.strip_suffix(".watch").and_then(TapKey::from_file_name);
            if let Some(k) = stem.filter(|k| keys.binary_search(k).is_err()) {
                let _ = std::fs::remove_file(self.watch_path(k));
            }
        }
        keys.into_iter()
            .map(|k| {
                let r = self.load(k);
                if r.is_none() {
                    self.remove(k);
                }
                (k, r)
            })
            .collect()
    }

    /// The record for `key`, if there is a trusted one that parses and
    /// names `key` itself.
    pub fn load(&self, key: TapKey) -> Option<TapRecord> {
        let path = self.record_path(key);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&path)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !trusted_file(&meta) || meta.len() > MAX_RECORD_BYTES {
            return None;
        }
        let mut text = String::new();
        file.take(MAX_RECORD_BYTES).read_to_string(&mut text).ok()?;
        TapRecord::parse(&text).filter(|r| r.key == key)
    }

    /// Writes `rec` (to a temporary file of mode 0600, then renamed over
    /// the old record).
    pub fn save(&self, rec: &TapRecord) -> Result<(), StateError> {
        let tmp = self.dir.join(format!("tmp.{}", rec.key.file_name()));
        let _ = std::fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(io_at(&tmp))?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_at(&tmp))?;
        file.write_all(rec.render().as_bytes())
            .map_err(io_at(&tmp))?;
        drop(file);
        let path = self.record_path(rec.key);
        std::fs::rename(&tmp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_at(&path)(e)
        })
    }

    /// Removes the record for `key` and its watch file.
    pub fn remove(&self, key: TapKey) {
        let _ = std::fs::remove_file(self.record_path(key));
        let _ = std::fs::remove_file(self.watch_path(key));
    }

    /// Makes the watch file for `key` and takes its lock. The lock is an
    /// open-file-description lock: it is held for as long as any process
    /// has the returned file open (the watcher inherits it across
    /// `fork`), and nothing releases it earlier.
    pub fn watch(&self, key: TapKey) -> Result<File, StateError> {
        let path = self.watch_path(key);
        let file = open_trusted(&path, true)?;
        fcntl(
            file.as_raw_fd(),
            FcntlArg::F_OFD_SETLK(&whole_file(libc::F_WRLCK)),
        )
        .map_err(|e| io_at(&path)(e.into()))?;
        Ok(file)
    }

    /// Whether a process still holds the watch lock of `key`.
    pub fn watched(&self, key: TapKey) -> bool {
        let Ok(file) = open_trusted(&self.watch_path(key), false) else {
            return false;
        };
        let mut probe = whole_file(libc::F_WRLCK);
        match fcntl(file.as_raw_fd(), FcntlArg::F_OFD_GETLK(&mut probe)) {
            Ok(_) => i32::from(probe.l_type) != libc::F_UNLCK,
            // Unknown: count it as watched, so nothing is dropped.
            Err(_) => true,
        }
    }
}

/// A lock over a whole file, of kind `l_type`, for `F_OFD_*`.
fn whole_file(l_type: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: libc::c_short::try_from(l_type).unwrap_or(0),
        l_whence: libc::c_short::try_from(libc::SEEK_SET).unwrap_or(0),
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::state::TapRecord;

    fn root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    #[test]
    fn records_are_saved_loaded_and_untrusted_files_dropped() {
        if !root() {
            eprintln!("SKIP records_are_saved_loaded_and_untrusted_files_dropped: needs root");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = base.path().join("uml_net");
        let sd = StateDir::lock(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().mode() & 0o7777,
            0o700,
            "the directory is root's alone"
        );
        let key = TapKey {
            netns: 5,
            ifindex: 9,
        };
        let rec = TapRecord::new(key, "tap3", 1000, false);
        sd.save(&rec).unwrap();
        assert_eq!(sd.load(key), Some(rec.clone()));
        let path = dir.join(key.file_name());
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);

        // A record someone made group-readable is not believed, and goes.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(sd.load(key), None);
        assert_eq!(sd.records(), vec![(key, None)]);
        assert!(!path.exists());

        // A symbolic link in place of a record is not followed.
        sd.save(&rec).unwrap();
        let target = dir.join("elsewhere");
        std::fs::rename(&path, &target).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert_eq!(sd.load(key), None);

        // The watch lock counts as held while its descriptor lives.
        let w = sd.watch(key).unwrap();
        assert!(sd.watched(key));
        drop(w);
        assert!(!sd.watched(key));
    }

    #[test]
    fn a_state_directory_others_can_enter_is_refused() {
        if !root() {
            eprintln!("SKIP a_state_directory_others_can_enter_is_refused: needs root");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = base.path().join("uml_net");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            StateDir::lock(&dir),
            Err(StateError::Untrusted { .. })
        ));
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(
            StateDir::lock(&dir),
            Err(StateError::Untrusted { .. })
        ));
    }
}
