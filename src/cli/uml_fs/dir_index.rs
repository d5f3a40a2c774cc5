//! Name lookups of a read-only mount answered from an index of each
//! directory, built by one read of the directory on its first lookup.
//!
//! A directory without a hash tree (as `mke2fs -d` writes them) is searched
//! from its first block on every lookup, each block checked again: `tar`
//! out of a directory of 18 000 entries spent 4 ms per `stat`, 88 s in all.
//! The image of a read-only mount does not change under the server, so an
//! index built once stays true. The index holds at most [`MAX_ENTRIES`]
//! names in all, and is emptied when it would hold more.

use crate::fs::{DirEntry, Error, FsResult, Ino, InodeFs, Metadata, StatFs};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Names held in the index over all directories.
const MAX_ENTRIES: usize = 1 << 20;

type Names = HashMap<Box<[u8]>, Ino>;

/// A read-only [`InodeFs`] whose lookups go through a per-directory index.
pub(super) struct Indexed<F> {
    inner: F,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    dirs: HashMap<Ino, Arc<Names>>,
    entries: usize,
}

impl<F: InodeFs> Indexed<F> {
    /// Wraps a read-only file system.
    pub(super) fn new(inner: F) -> Self {
        Indexed {
            inner,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The names of directory `dir`, read on first use.
    fn names(&self, dir: Ino) -> FsResult<Arc<Names>> {
        let lock = || self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(names) = lock().dirs.get(&dir) {
            return Ok(names.clone());
        }
        let mut names = Names::new();
        self.inner.readdir(dir, 0, &mut |e: DirEntry| {
            names.insert(e.name.into_boxed_slice(), e.ino);
            true
        })?;
        let names = Arc::new(names);
        let mut cache = lock();
        if cache.entries + names.len() > MAX_ENTRIES {
            *cache = Cache::default();
        }
        if names.len() <= MAX_ENTRIES {
            cache.entries += names.len();
            cache.dirs.insert(dir, names.clone());
        }
        Ok(names)
    }
}

impl<F: InodeFs> InodeFs for Indexed<F> {
    fn lookup(&self, parent: Ino, name: &[u8]) -> FsResult<Metadata> {
        match self.names(parent)?.get(name) {
            Some(&ino) => self.inner.getattr(ino),
            None => Err(Error::NotFound),
        }
    }

    fn getattr(&self, ino: Ino) -> FsResult<Metadata> {
        self.inner.getattr(ino)
    }

    fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> FsResult<usize> {
        self.inner.read(ino, offset, buf)
    }

    fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        self.inner.readlink(ino)
    }

    fn readdir(&self, ino: Ino, cookie: u64, f: &mut dyn FnMut(DirEntry) -> bool) -> FsResult<()> {
        self.inner.readdir(ino, cookie, f)
    }

    fn statfs(&self) -> FsResult<StatFs> {
        self.inner.statfs()
    }

    fn listxattr(&self, ino: Ino) -> FsResult<Vec<Vec<u8>>> {
        self.inner.listxattr(ino)
    }

    fn getxattr(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        self.inner.getxattr(ino, name)
    }
}
