//! Errors of the COW layer. Each names the file and what is wrong with it;
//! the size and mtime messages are the kernel's and `uml_moo`'s.

use super::header::HeaderError;
use std::io;
use std::path::{Path, PathBuf};

/// What went wrong opening, creating or merging a COW file.
#[derive(Debug, thiserror::Error)]
pub enum CowError {
    /// An I/O failure on a file.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The system's error.
        source: io::Error,
    },
    /// The header is malformed or unsupported.
    #[error("{}: {source}", path.display())]
    Header {
        /// The COW file.
        path: PathBuf,
        /// What is wrong with the header.
        source: HeaderError,
    },
    /// The file ends before the bitmap or data area the header describes.
    #[error("{}: COW file is truncated: {actual} bytes, but its header needs {needed} (bitmap or data area past the end of the file)", path.display())]
    Truncated {
        /// The COW file.
        path: PathBuf,
        /// Its length.
        actual: u64,
        /// The length its header requires.
        needed: u64,
    },
    /// The backing file is too large for an in-memory bitmap.
    #[error("{}: backing size {size} is larger than umlkit supports (4 TiB)", path.display())]
    TooLarge {
        /// The COW file.
        path: PathBuf,
        /// The recorded backing size.
        size: u64,
    },
    /// The backing file's size differs from the header's.
    #[error("Size mismatch ({header} vs {actual}) of COW header vs backing file \"{}\"", backing.display())]
    SizeMismatch {
        /// Size in the header.
        header: u64,
        /// The backing file's size.
        actual: u64,
        /// The backing file.
        backing: PathBuf,
    },
    /// The backing file's mtime differs from the header's.
    #[error("mtime mismatch ({header} vs {actual}) of COW header vs backing file \"{}\"", backing.display())]
    MtimeMismatch {
        /// mtime in the header.
        header: u32,
        /// The backing file's mtime.
        actual: i64,
        /// The backing file.
        backing: PathBuf,
    },
    /// A backing file's mtime cannot be stored in the header's 32 bits.
    #[error("{}: mtime {mtime} does not fit a COW header (before 1970 or after 2106)", backing.display())]
    MtimeRange {
        /// The backing file.
        backing: PathBuf,
        /// Its mtime.
        mtime: i64,
    },
    /// Another process (a running guest) holds a conflicting lock.
    #[error("{}: in use by another process{} (a running guest?)", path.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    InUse {
        /// The locked file.
        path: PathBuf,
        /// The lock holder, when the system says.
        pid: Option<i32>,
    },
    /// The target exists and replacing it was not asked for.
    #[error("{}: File exists", .0.display())]
    Exists(PathBuf),
    /// A device string with no file in it.
    #[error("bad device \"{0}\": expected FILE or COW,BACKING")]
    BadSpec(String),
    /// An operation was refused to protect a file.
    #[error("{}: {why}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

impl CowError {
    /// An I/O error on `path` while doing `op`.
    pub fn io(path: &Path, op: &'static str, source: io::Error) -> CowError {
        CowError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    }
}
