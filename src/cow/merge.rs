//! Merging a COW file with its backing file (`uml_moo`).
//!
//! - [`merge_to_new`] writes the COW's view of the disk to a new image: a
//!   walk over the data ranges of the view (holes of the backing file and
//!   clean sectors are never read), big reads, and all-zero blocks left as
//!   holes. The image is built in a temporary file beside the target and
//!   renamed into place when complete.
//! - [`merge_in_place`] copies only the COW's sectors into the backing file.
//!   Before touching the backing file it leaves a marker beside the COW
//!   file, so that an interrupted merge is recognised and finished by the
//!   same command even though the backing file's mtime has changed. It
//!   writes only into a regular file or block device that carries a disk
//!   signature ([`super::signature`]): a header's size and mtime are easy
//!   to match with any file of the user's.
//!
//! The output matches Debian's `uml_moo`: whole sectors only (a tail shorter
//! than a sector is dropped), and zero sectors are holes.

use super::device::CowDevice;
use super::error::CowError;
use super::header::Header;
use super::open::{self, absolutize, backing_identity, check_backing, read_bitmap};
use super::signature;
use crate::block::{is_zero, BlockDevice, FileDevice};
use crate::block::{u64_from, usize_from};
use crate::sys::fs::{lock_file, LockError};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes read or written per system call.
const CHUNK: usize = 256 << 10;
/// Part of the image one merge thread takes at a time.
const STRIPE: u64 = 64 << 20;
/// Merge threads at most.
const MAX_THREADS: usize = 4;
/// Granule of the zero test: a file-system block.
const GRANULE: usize = 4096;

/// Settings shared by the merges.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// Use this backing file instead of the one the header records.
    pub backing_override: Option<PathBuf>,
    /// `fsync` the result before it is renamed into place or declared done.
    pub sync: bool,
    /// Progress display (hidden when not wanted).
    pub progress: indicatif::ProgressBar,
    /// Set (by a signal handler) to stop between chunks: a new image is
    /// then discarded, an in-place merge left resumable.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions {
            backing_override: None,
            sync: true,
            progress: indicatif::ProgressBar::hidden(),
            cancel: None,
        }
    }
}

/// What a merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MergeStats {
    /// Sectors taken from the COW file.
    pub cow_sectors: u64,
    /// Bytes written to the output.
    pub bytes_written: u64,
    /// Length of the result.
    pub length: u64,
    /// Whether an interrupted in-place merge was resumed.
    pub resumed: bool,
}

fn same_inode(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Writes the non-zero granules of `buf` (which belongs at `offset`) to
/// `out`, coalesced into as few writes as possible. Returns bytes written.
pub(crate) fn write_nonzero(out: &File, offset: u64, buf: &[u8]) -> io::Result<u64> {
    let mut written = 0u64;
    let mut run: Option<usize> = None;
    let mut at = 0usize;
    // Granules are aligned to the file, not to the buffer.
    let first = GRANULE - usize_from(offset % u64_from(GRANULE));
    while at < buf.len() {
        let end = if at == 0 {
            first.min(buf.len())
        } else {
            (at + GRANULE).min(buf.len())
        };
        let zero = is_zero(&buf[at..end]);
        match (zero, run) {
            (false, None) => run = Some(at),
            (true, Some(start)) => {
                out.write_all_at(&buf[start..at], offset + u64_from(start))?;
                written += u64_from(at - start);
                run = None;
            }
            _ => {}
        }
        at = end;
    }
    if let Some(start) = run {
        out.write_all_at(&buf[start..], offset + u64_from(start))?;
        written += u64_from(buf.len() - start);
    }
    Ok(written)
}

fn check_cancel(options: &MergeOptions) -> io::Result<()> {
    match &options.cancel {
        Some(flag) if flag.load(Ordering::Relaxed) => {
            Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"))
        }
        _ => Ok(()),
    }
}

/// Bytes handed to one `copy_file_range` call (between cancel checks).
const OFFLOAD_CHUNK: usize = 8 << 20;

/// Copies `len` bytes of `dev`'s view into `out`, reading only data ranges
/// and leaving holes as holes. Stripes of the image are handed out to a few
/// threads (positional I/O needs no coordination beyond the counter).
///
/// The COW's sectors are read and written with their all-zero blocks left
/// as holes. The backing file's data ranges under clean sectors are copied
/// inside the kernel with `copy_file_range` (no copy through our memory;
/// NFS or overlayfs may offload it further), so zeros the backing file
/// stores as data stay data there; where the kernel cannot (another file
/// system, a block device, an old kernel) they are read and written too.
fn copy_view(
    dev: &CowDevice<FileDevice>,
    out: &File,
    len: u64,
    options: &MergeOptions,
) -> io::Result<u64> {
    let stripes = len.div_ceil(STRIPE);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(usize::try_from(stripes).unwrap_or(1))
        .max(1);
    let next = AtomicU64::new(0);
    let written = AtomicU64::new(0);
    let offload = AtomicBool::new(true);
    let worker = || -> io::Result<()> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let stripe = next.fetch_add(1, Ordering::Relaxed);
            if stripe >= stripes {
                return Ok(());
            }
            let start = stripe * STRIPE;
            let end = (start + STRIPE).min(len);
            let n = copy_stripe(dev, out, start..end, &mut buf, options, &offload)?;
            written.fetch_add(n, Ordering::Relaxed);
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads).map(|_| scope.spawn(worker)).collect();
        let mine = worker();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("merge thread panicked")))
            })
            .fold(mine, |acc, r| acc.and(r))
    })?;
    options.progress.set_position(len);
    Ok(written.into_inner())
}

/// Copies `range` of the view, run by run of the bitmap: the COW's runs
/// through the view, the clean ones from the backing file. Returns bytes
/// written (copied ones included).
fn copy_stripe(
    dev: &CowDevice<FileDevice>,
    out: &File,
    range: std::ops::Range<u64>,
    buf: &mut [u8],
    options: &MergeOptions,
    offload: &AtomicBool,
) -> io::Result<u64> {
    let ss = u64::from(dev.header().sector_size);
    let runs: Vec<_> = dev.with_runs(range.start / ss..range.end.div_ceil(ss), |runs| {
        runs.collect()
    });
    let mut written = 0;
    for (run, in_cow) in runs {
        let part = (run.start * ss).max(range.start)..(run.end * ss).min(range.end);
        written += if in_cow {
            copy_range(dev, out, part, buf, options)?
        } else {
            copy_backing(dev.backing(), out, part, buf, options, offload)?
        };
    }
    Ok(written)
}

/// Calls `copy` on every data range of `dev` inside `range` (holes are
/// skipped), summing the bytes it reports written.
fn for_each_data(
    dev: &dyn BlockDevice,
    range: std::ops::Range<u64>,
    mut copy: impl FnMut(std::ops::Range<u64>) -> io::Result<u64>,
) -> io::Result<u64> {
    let mut written = 0;
    let mut pos = range.start;
    while pos < range.end {
        let Some(data) = dev.next_data(pos)? else {
            break;
        };
        let end = data.end.min(range.end);
        written += copy(data.start.max(pos)..end)?;
        pos = end.max(pos + 1);
    }
    Ok(written)
}

/// Copies the data ranges of `range` of the backing file to the same
/// offsets of `out`, with `copy_file_range` while `offload` holds; the
/// first refusal clears it and this and later ranges are read and written.
fn copy_backing(
    backing: &FileDevice,
    out: &File,
    range: std::ops::Range<u64>,
    buf: &mut [u8],
    options: &MergeOptions,
    offload: &AtomicBool,
) -> io::Result<u64> {
    for_each_data(backing, range, |data| {
        let mut written = 0;
        let mut at = data.start;
        while at < data.end && offload.load(Ordering::Relaxed) {
            check_cancel(options)?;
            let n = usize_from((data.end - at).min(u64_from(OFFLOAD_CHUNK)));
            match crate::sys::fs::copy_range(backing.file(), at, out, at, n) {
                // The backing file ended early: the read below says so.
                Ok(0) => break,
                Ok(n) => {
                    at += u64_from(n);
                    written += u64_from(n);
                    options.progress.inc(u64_from(n));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if crate::sys::fs::copy_unsupported(&e) => {
                    offload.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        if at < data.end {
            written += copy_through(backing, out, at..data.end, buf, options)?;
        }
        Ok(written)
    })
}

/// Copies the data ranges of `range` of `dev` through `buf`, leaving
/// all-zero blocks as holes; returns bytes written.
fn copy_range(
    dev: &dyn BlockDevice,
    out: &File,
    range: std::ops::Range<u64>,
    buf: &mut [u8],
    options: &MergeOptions,
) -> io::Result<u64> {
    for_each_data(dev, range, |data| {
        copy_through(dev, out, data, buf, options)
    })
}

/// Copies `range` of `dev` (data, possibly with zero blocks) through
/// `buf`, leaving all-zero blocks as holes; returns bytes written.
fn copy_through(
    dev: &dyn BlockDevice,
    out: &File,
    range: std::ops::Range<u64>,
    buf: &mut [u8],
    options: &MergeOptions,
) -> io::Result<u64> {
    let mut written = 0;
    let mut at = range.start;
    while at < range.end {
        let n = usize_from((range.end - at).min(u64_from(buf.len())));
        check_cancel(options)?;
        dev.read_exact_at(at, &mut buf[..n])?;
        written += write_nonzero(out, at, &buf[..n])?;
        at += u64_from(n);
        options.progress.inc(u64_from(n));
    }
    Ok(written)
}

/// Writes the merged image of `cow` (over its backing file) to `out`. An
/// existing `out` is replaced, unless it is the COW or the backing file.
pub fn merge_to_new(
    cow_path: &Path,
    out: &Path,
    options: &MergeOptions,
) -> Result<MergeStats, CowError> {
    let dev = open::open_cow(
        cow_path,
        &open::DiskOptions {
            backing_override: options.backing_override.clone(),
            ..Default::default()
        },
    )?;
    for input in [cow_path, dev.backing().path()] {
        if same_inode(input, out) {
            return Err(CowError::Refused {
                path: out.to_path_buf(),
                why: format!(
                    "is the same file as the input {}; refusing to overwrite it",
                    input.display()
                ),
            });
        }
    }
    let header = dev.header();
    let ss = u64::from(header.sector_size);
    let length = header.size / ss * ss;

    let dir = dir_of(out);
    let name = out
        .file_name()
        .unwrap_or(OsStr::new("image"))
        .to_string_lossy();
    let io_err = |op, e| CowError::io(out, op, e);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".uml_moo-tmp")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| io_err("cannot create a file in the directory", e))?;

    options.progress.set_length(length);
    let written = match crate::sys::fs::clone_file(tmp.as_file(), dev.backing().file()) {
        Ok(()) => write_cow_sectors(&dev, tmp.as_file(), length, options),
        Err(_) => copy_view(&dev, tmp.as_file(), length, options),
    }
    .map_err(|e| io_err("merge failed", e))?;
    set_len_if_needed(tmp.as_file(), length).map_err(|e| io_err("cannot set length", e))?;
    if options.sync {
        tmp.as_file()
            .sync_all()
            .map_err(|e| io_err("cannot sync", e))?;
    }
    replace(tmp.into_temp_path(), out).map_err(|e| io_err("cannot rename into place", e))?;
    if options.sync {
        sync_dir(dir).map_err(|e| CowError::io(dir, "cannot sync directory", e))?;
    }
    options.progress.finish_and_clear();
    Ok(MergeStats {
        cow_sectors: dev.dirty_sectors(),
        bytes_written: written,
        length,
        resumed: false,
    })
}

/// Gives `out` the length `length` unless it has it already: XFS takes a
/// truncation to the current size for a shrink and then writes the whole
/// file back when it is closed (as after a real truncation, against
/// zero-length files after a crash), which cost a reflinked merge most of
/// its time.
fn set_len_if_needed(out: &File, length: u64) -> io::Result<()> {
    if out.metadata()?.len() == length {
        return Ok(());
    }
    out.set_len(length)
}

/// After the backing file's extents were cloned into `out` (a reflink:
/// no data copied), writes only the COW's sectors over them, so the merge
/// costs what the dirty data costs. Zero sectors the guest wrote are
/// written as zeros (the clone shares the backing file's blocks there).
fn write_cow_sectors(
    dev: &CowDevice<FileDevice>,
    out: &File,
    length: u64,
    options: &MergeOptions,
) -> io::Result<u64> {
    let ss = u64::from(dev.header().sector_size);
    let bitmap = dev.bitmap();
    let mut buf = vec![0u8; CHUNK];
    let mut written = 0u64;
    for (run, in_cow) in bitmap.runs(0..length / ss) {
        if !in_cow {
            continue;
        }
        let (mut at, end) = (run.start * ss, run.end * ss);
        while at < end {
            check_cancel(options)?;
            let n = usize_from((end - at).min(u64_from(CHUNK)));
            dev.read_exact_at(at, &mut buf[..n])?;
            out.write_all_at(&buf[..n], at)?;
            at += u64_from(n);
            written += u64_from(n);
            options.progress.set_position(at);
        }
    }
    Ok(written)
}

/// Puts the finished temporary file at `out`. An existing `out` is swapped
/// out atomically and then removed: renaming over it would make ext4 flush
/// the new file's data first (its `auto_da_alloc` heuristic), which costs as
/// much as the merge when `--no-sync` asked not to wait for the disk.
fn replace(tmp: tempfile::TempPath, out: &Path) -> io::Result<()> {
    let is_file = std::fs::symlink_metadata(out).is_ok_and(|m| m.file_type().is_file());
    if is_file && crate::sys::fs::exchange(&tmp, out).is_ok() {
        // `tmp` now names the old image; closing it removes it.
        return tmp.close();
    }
    tmp.persist(out).map_err(|e| e.error)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The file that marks an unfinished in-place merge of `cow`.
pub fn marker_path(cow: &Path) -> PathBuf {
    let name = cow
        .file_name()
        .unwrap_or(OsStr::new("cow"))
        .to_string_lossy();
    cow.with_file_name(format!(".{name}.uml_moo-merging"))
}

/// The marker's contents: which backing file, and the header it was
/// started from.
fn marker_text(backing: &Path, header: &Header) -> String {
    format!(
        "uml_moo in-place merge in progress\nbacking {}\nsize {}\nmtime {}\n",
        backing.display(),
        header.size,
        header.mtime
    )
}

/// Whether `cow` has a marker left by an interrupted merge of the same COW
/// header into the same backing file.
fn unfinished_merge(cow: &Path, backing: &Path, header: &Header) -> bool {
    std::fs::read_to_string(marker_path(cow)).is_ok_and(|text| text == marker_text(backing, header))
}

/// The directory a file `path` is in; `.` for a bare name.
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Leaves the marker durably before the backing file is first written. It
/// is written to a temporary file and renamed into place, so a kill at any
/// point leaves either no marker or a whole one: a truncated marker beside
/// a half-merged backing file would make the merge unrecoverable. The
/// marker of an interrupted merge being finished (`resumed`) is already
/// whole and is left as it is.
fn write_marker(cow: &Path, text: &str, resumed: bool) -> io::Result<()> {
    if resumed {
        return Ok(());
    }
    let path = marker_path(cow);
    let dir = dir_of(&path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".uml_moo-marker")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(&path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Refuses to write into `backing` (already open) unless it looks like a
/// disk image: a regular file or block device whose start carries a
/// filesystem or partition table signature ([`signature::disk_signature`]).
/// `force` waives the signature, never the file type. Both are checked on
/// the open file, so the name cannot be swapped in between.
fn check_plausible_image(
    backing: &File,
    backing_path: &Path,
    cow_path: &Path,
    force: bool,
) -> Result<(), CowError> {
    let kind = backing
        .metadata()
        .map_err(|e| CowError::io(backing_path, "cannot stat backing file", e))?
        .file_type();
    check_file_type(kind, backing_path, cow_path)?;
    if force {
        return Ok(());
    }
    let mut head = vec![0u8; signature::HEAD_LEN];
    let mut got = 0usize;
    while got < head.len() {
        match backing.read_at(&mut head[got..], u64_from(got)) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CowError::io(backing_path, "cannot read backing file", e)),
        }
    }
    if signature::disk_signature(&head[..got]).is_none() {
        return Err(CowError::Refused {
            path: backing_path.to_path_buf(),
            why: format!(
            "no filesystem or partition table signature, so it does not look like a disk image; \
             refusing to merge {} into it in place (--force merges anyway)",
                cow_path.display()
            ),
        });
    }
    Ok(())
}

/// Only a regular file or a block device can be a disk image.
fn check_file_type(
    kind: std::fs::FileType,
    backing_path: &Path,
    cow_path: &Path,
) -> Result<(), CowError> {
    if kind.is_file() || kind.is_block_device() {
        return Ok(());
    }
    Err(CowError::Refused {
        path: backing_path.to_path_buf(),
        why: format!(
            "not a regular file or block device; refusing to merge {} into it in place",
            cow_path.display()
        ),
    })
}

/// Settings of [`merge_in_place`] beyond [`MergeOptions`].
#[derive(Debug, Clone, Default)]
pub struct InPlaceOptions {
    /// Afterwards, empty the COW (bitmap cleared, data area freed) and
    /// record the merged backing file's new mtime, so that it stays usable.
    pub reset_cow: bool,
    /// Merge even into a backing file with no filesystem or partition
    /// table signature (see [`signature`]).
    pub force: bool,
    /// Called with the COW file, the backing file's absolute path and
    /// whether an interrupted merge is being finished, once every check
    /// has passed and just before the backing file is first written.
    pub announce: Option<fn(&Path, &Path, bool)>,
}

/// Merges the COW's sectors into its backing file. Running it again after
/// an interruption finishes the job.
pub fn merge_in_place(
    cow_path: &Path,
    options: &MergeOptions,
    extra: &InPlaceOptions,
) -> Result<MergeStats, CowError> {
    // The COW is written only to reset it afterwards.
    let cow_file = std::fs::OpenOptions::new()
        .read(true)
        .write(extra.reset_cow)
        .open(cow_path)
        .map_err(|e| CowError::io(cow_path, "cannot open", e))?;
    let header = open::read_header(&cow_file, cow_path)?.ok_or_else(|| CowError::Header {
        path: cow_path.to_path_buf(),
        source: super::header::HeaderError::NotCow,
    })?;
    lock(&cow_file, cow_path, extra.reset_cow)?;
    let recorded = PathBuf::from(OsStr::from_bytes(&header.backing_file));
    let backing_path = options.backing_override.clone().unwrap_or(recorded);
    let backing_abs =
        absolutize(&backing_path).map_err(|e| CowError::io(&backing_path, "cannot resolve", e))?;
    let resumed = unfinished_merge(cow_path, &backing_abs, &header);
    check_backing(&header, &backing_path, resumed)?;
    let bitmap = read_bitmap(&cow_file, cow_path, &header)?;

    // Opening a device or FIFO can have effects of its own: look first.
    let kind = std::fs::metadata(&backing_path)
        .map_err(|e| CowError::io(&backing_path, "cannot stat backing file", e))?
        .file_type();
    check_file_type(kind, &backing_path, cow_path)?;
    let backing = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&backing_path)
        .map_err(|e| CowError::io(&backing_path, "cannot open backing file for writing", e))?;
    lock(&backing, &backing_path, true)?;
    check_plausible_image(&backing, &backing_path, cow_path, extra.force)?;

    write_marker(cow_path, &marker_text(&backing_abs, &header), resumed)
        .map_err(|e| CowError::io(&marker_path(cow_path), "cannot write merge marker", e))?;
    if let Some(announce) = extra.announce {
        announce(cow_path, &backing_abs, resumed);
    }

    let ss = u64::from(header.sector_size);
    let sectors = header.size / ss;
    let dirty = bitmap.count_set();
    options.progress.set_length(dirty * ss);
    let io_err = |op, e| CowError::io(&backing_path, op, e);
    let mut buf = vec![0u8; CHUNK];
    let mut old = vec![0u8; CHUNK];
    let mut written = 0u64;
    let mut done = 0u64;
    for (run, in_cow) in bitmap.runs(0..sectors) {
        if !in_cow {
            continue;
        }
        let mut at = run.start * ss;
        let end = run.end * ss;
        while at < end {
            let n = usize_from((end - at).min(u64_from(CHUNK)));
            check_cancel(options)
                .map_err(|e| io_err("merge stopped; run the same command again to finish it", e))?;
            cow_file
                .read_exact_at(&mut buf[..n], header.data_offset + at)
                .map_err(|e| CowError::io(cow_path, "cannot read data", e))?;
            written += write_sectors(&backing, at, &buf[..n], &mut old[..n], usize_from(ss))
                .map_err(|e| io_err("cannot write", e))?;
            at += u64_from(n);
            done += u64_from(n);
            options.progress.set_position(done);
        }
    }
    if options.sync {
        backing.sync_data().map_err(|e| io_err("cannot sync", e))?;
    }
    if extra.reset_cow {
        reset_cow(cow_path, cow_file, &header, &backing_path)?;
    }
    std::fs::remove_file(marker_path(cow_path))
        .map_err(|e| CowError::io(&marker_path(cow_path), "cannot remove merge marker", e))?;
    options.progress.finish_and_clear();
    Ok(MergeStats {
        cow_sectors: dirty,
        bytes_written: written,
        length: backing_identity(&backing_path)?.0,
        resumed,
    })
}

fn lock(file: &File, path: &Path, write: bool) -> Result<(), CowError> {
    match lock_file(file, write) {
        Ok(()) => Ok(()),
        Err(LockError::InUse) => Err(CowError::InUse {
            path: path.to_path_buf(),
            pid: crate::sys::fs::lock_holder(file).ok().flatten(),
        }),
        Err(LockError::Io(e)) => Err(CowError::io(path, "cannot lock", e)),
    }
}

/// Writes `data` at `offset` of `backing`, sector by sector as `uml_moo -d`
/// does: a zero sector is written only where the backing sector is not
/// already zero (so holes stay holes). Returns bytes written.
fn write_sectors(
    backing: &File,
    offset: u64,
    data: &[u8],
    old: &mut [u8],
    ss: usize,
) -> io::Result<u64> {
    if !is_zero(data) && data.chunks(ss).all(|s| !is_zero(s)) {
        backing.write_all_at(data, offset)?;
        return Ok(u64_from(data.len()));
    }
    backing.read_exact_at(old, offset)?;
    let mut written = 0u64;
    let mut run: Option<usize> = None;
    let mut flush = |from: usize, to: usize| -> io::Result<()> {
        backing.write_all_at(&data[from..to], offset + u64_from(from))?;
        written += u64_from(to - from);
        Ok(())
    };
    for (i, sector) in data.chunks(ss).enumerate() {
        let at = i * ss;
        let needed = !(is_zero(sector) && is_zero(&old[at..at + sector.len()]));
        match (needed, run) {
            (true, None) => run = Some(at),
            (false, Some(start)) => {
                flush(start, at)?;
                run = None;
            }
            _ => {}
        }
    }
    if let Some(start) = run {
        flush(start, data.len())?;
    }
    Ok(written)
}

/// Empties a merged COW and points it at the merged backing file's new
/// mtime. Safe to repeat.
fn reset_cow(
    cow_path: &Path,
    cow_file: File,
    header: &Header,
    backing: &Path,
) -> Result<(), CowError> {
    let dev = FileDevice::from_file(cow_file, cow_path, true)
        .map_err(|e| CowError::io(cow_path, "cannot stat", e))?;
    let io_err = |op, e| CowError::io(cow_path, op, e);
    dev.punch_hole(header.data_offset..header.file_len_needed())
        .map_err(|e| io_err("cannot free data area", e))?;
    dev.punch_hole(header.bitmap_offset..header.bitmap_offset + header.bitmap_bytes_needed())
        .map_err(|e| io_err("cannot clear bitmap", e))?;
    dev.flush().map_err(|e| io_err("cannot sync", e))?;
    let (_, mtime) = backing_identity(backing)?;
    let mut new = header.clone();
    new.mtime = u32::try_from(mtime).map_err(|_| CowError::MtimeRange {
        backing: backing.to_path_buf(),
        mtime,
    })?;
    let bytes = new.to_bytes().map_err(|e| CowError::Header {
        path: cow_path.to_path_buf(),
        source: e,
    })?;
    dev.write_all_at(0, &bytes)
        .map_err(|e| io_err("cannot write header", e))?;
    dev.flush().map_err(|e| io_err("cannot sync", e))
}
