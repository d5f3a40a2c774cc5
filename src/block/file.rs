//! A block device over a host file, with `pread`/`pwrite` and
//! `SEEK_DATA`/`SEEK_HOLE` so that holes are never read.

use super::BlockDevice;
use crate::sys::fs as sysfs;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A file used as a block device. It grows when written past its end.
#[derive(Debug)]
pub struct FileDevice {
    file: File,
    path: PathBuf,
    len: AtomicU64,
    writable: bool,
}

impl FileDevice {
    /// Opens `path` read-only.
    pub fn open_read_only(path: &Path) -> io::Result<Self> {
        Self::from_file(File::open(path)?, path, false)
    }

    /// Opens `path` for reading and writing.
    pub fn open_read_write(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Self::from_file(file, path, true)
    }

    /// Wraps an open file; `path` is kept for messages.
    pub fn from_file(file: File, path: &Path, writable: bool) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileDevice {
            file,
            path: path.to_path_buf(),
            len: AtomicU64::new(len),
            writable,
        })
    }

    /// The file underneath.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The path the device was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the device was opened for writing.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// Sets the file's length (growing leaves a hole).
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.len.store(len, Ordering::Release);
        Ok(())
    }

    /// Frees the blocks of `range`, which then reads as zeros.
    pub fn punch_hole(&self, range: Range<u64>) -> io::Result<()> {
        sysfs::punch_hole(&self.file, range)
    }
}

impl BlockDevice for FileDevice {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.file.write_all_at(buf, offset)?;
        let end = offset.saturating_add(buf.len() as u64);
        self.len.fetch_max(end, Ordering::AcqRel);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    fn flush(&self) -> io::Result<()> {
        if self.writable {
            self.file.sync_data()
        } else {
            Ok(())
        }
    }

    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        let len = self.len();
        if offset >= len {
            return Ok(None);
        }
        match sysfs::next_data(&self.file, offset)? {
            Some(range) => Ok(Some(range.start..range.end.min(len))),
            None => Ok(None),
        }
    }
}
