//! Opening disks the way the UML kernel's `ubdN=` does: a plain image, a
//! COW file naming its backing file, or `COW,BACKING`; creating a missing
//! COW; checking the backing file's size and mtime; and locking.

use super::bitmap::Bitmap;
use super::device::CowDevice;
use super::error::CowError;
use super::header::{Header, HeaderError, MAX_HEADER_LEN};
use crate::block::{BlockDevice, FileDevice};
use crate::sys::fs::{lock_file, lock_holder, LockError};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The largest bitmap held in memory: a backing file of 4 TiB.
const MAX_BITMAP_BYTES: u64 = 1 << 30;

/// How to open a disk.
#[derive(Debug, Clone, Default)]
pub struct DiskOptions {
    /// Open for writing (writes go to the COW; a plain image is written).
    pub writable: bool,
    /// Create the COW file when `COW,BACKING` names a COW that is missing.
    pub create_cow: bool,
    /// Use this backing file instead of the one the header records.
    pub backing_override: Option<PathBuf>,
    /// Take no host lock (the kernel's `c` flag).
    pub shared: bool,
    /// Accept a backing file whose mtime differs from the header's (used to
    /// resume an interrupted in-place merge, which has already changed it).
    pub ignore_mtime: bool,
    /// Record a switched backing path in the header, as the kernel does.
    pub switch_backing: bool,
}

/// The parts of a `ubdN=` style device string: `FILE[,BACKING][,SERIAL]`
/// (`:` also separates, as in the kernel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// The first file: a plain image or a COW file.
    pub file: PathBuf,
    /// The backing file, when given.
    pub backing: Option<PathBuf>,
}

impl DiskSpec {
    /// Splits a device string. Empty fields count as absent.
    pub fn parse(spec: &str) -> Result<DiskSpec, CowError> {
        let mut parts = spec.splitn(3, [',', ':']);
        let file = parts.next().unwrap_or_default();
        if file.is_empty() {
            return Err(CowError::BadSpec(spec.to_string()));
        }
        let backing = parts.next().filter(|b| !b.is_empty()).map(PathBuf::from);
        Ok(DiskSpec {
            file: PathBuf::from(file),
            backing,
        })
    }
}

/// An opened disk: a plain image or a COW view over its backing file.
#[derive(Debug)]
pub enum Disk {
    /// A plain image file.
    Plain(FileDevice),
    /// A COW file over a backing file.
    Cow(CowDevice<FileDevice>),
}

impl Disk {
    /// The backing file of a COW view.
    pub fn backing(&self) -> Option<&FileDevice> {
        match self {
            Disk::Plain(_) => None,
            Disk::Cow(c) => Some(c.backing()),
        }
    }

    /// The COW device, if this is a COW view.
    pub fn as_cow(&self) -> Option<&CowDevice<FileDevice>> {
        match self {
            Disk::Plain(_) => None,
            Disk::Cow(c) => Some(c),
        }
    }
}

impl BlockDevice for Disk {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Disk::Plain(d) => d.read_exact_at(offset, buf),
            Disk::Cow(d) => d.read_exact_at(offset, buf),
        }
    }
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        match self {
            Disk::Plain(d) => {
                crate::block::check_range(offset, buf.len(), d.len())?;
                d.write_all_at(offset, buf)
            }
            Disk::Cow(d) => d.write_all_at(offset, buf),
        }
    }
    fn len(&self) -> u64 {
        match self {
            Disk::Plain(d) => d.len(),
            Disk::Cow(d) => d.len(),
        }
    }
    fn flush(&self) -> io::Result<()> {
        match self {
            Disk::Plain(d) => d.flush(),
            Disk::Cow(d) => d.flush(),
        }
    }
    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        match self {
            Disk::Plain(d) => d.next_data(offset),
            Disk::Cow(d) => d.next_data(offset),
        }
    }
}

/// Opens a device string as the kernel's `ubdN=` does.
pub fn open_disk(spec: &str, options: &DiskOptions) -> Result<Disk, CowError> {
    let spec = DiskSpec::parse(spec)?;
    let mut options = options.clone();
    if options.backing_override.is_none() {
        options.backing_override = spec.backing.clone();
    }
    if options.backing_override.is_some() {
        if options.create_cow && !spec.file.exists() {
            let backing = options.backing_override.clone().unwrap_or_default();
            create_cow(&spec.file, &backing, false)?;
        }
        return open_cow(&spec.file, &options).map(Disk::Cow);
    }
    // Closing any descriptor drops this process's locks on the file, so the
    // probe is closed before the file is opened for good.
    let is_cow = {
        let probe = open_file(&spec.file, false)?;
        read_header(&probe, &spec.file)?.is_some()
    };
    if is_cow {
        return open_cow(&spec.file, &options).map(Disk::Cow);
    }
    let file = open_file(&spec.file, options.writable)?;
    match read_header(&file, &spec.file)? {
        Some(_) => Err(CowError::io(
            &spec.file,
            "changed while opening",
            io::Error::other("became a COW file"),
        )),
        None => {
            if !options.shared {
                lock(&file, &spec.file, options.writable)?;
            }
            FileDevice::from_file(file, &spec.file, options.writable)
                .map(Disk::Plain)
                .map_err(|e| CowError::io(&spec.file, "cannot stat", e))
        }
    }
}

fn open_file(path: &Path, writable: bool) -> Result<File, CowError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(writable)
        .open(path)
        .map_err(|e| CowError::io(path, "cannot open", e))
}

fn lock(file: &File, path: &Path, write: bool) -> Result<(), CowError> {
    match lock_file(file, write) {
        Ok(()) => Ok(()),
        Err(LockError::InUse) => Err(CowError::InUse {
            path: path.to_path_buf(),
            pid: lock_holder(file).ok().flatten(),
        }),
        Err(LockError::Io(e)) => Err(CowError::io(path, "cannot lock", e)),
    }
}

/// Reads and parses the header of `file`; `None` for a plain image.
pub fn read_header(file: &File, path: &Path) -> Result<Option<Header>, CowError> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; MAX_HEADER_LEN];
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], crate::block::u64_from(got)) {
            Ok(0) => break,
            Ok(n) => got = got.saturating_add(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CowError::io(path, "cannot read header", e)),
        }
    }
    match Header::parse(&buf[..got]) {
        Ok(h) => Ok(Some(h)),
        Err(HeaderError::NotCow) => Ok(None),
        Err(HeaderError::Short(_)) if got < 4 => Ok(None),
        Err(e) => Err(CowError::Header {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// Reads a COW file's header, failing when the file is not a COW file.
pub fn read_cow_header(path: &Path) -> Result<(File, Header), CowError> {
    let file = open_file(path, false)?;
    match read_header(&file, path)? {
        Some(h) => Ok((file, h)),
        None => Err(CowError::Header {
            path: path.to_path_buf(),
            source: HeaderError::NotCow,
        }),
    }
}

/// Checks that `cow`'s length holds its bitmap and data area, and reads
/// the bitmap.
pub fn read_bitmap(file: &File, path: &Path, header: &Header) -> Result<Bitmap, CowError> {
    use std::os::unix::fs::FileExt;
    let len = file
        .metadata()
        .map_err(|e| CowError::io(path, "cannot stat", e))?
        .len();
    let needed = header.file_len_needed();
    if len < needed {
        return Err(CowError::Truncated {
            path: path.to_path_buf(),
            actual: len,
            needed,
        });
    }
    let bytes = header.bitmap_bytes_needed();
    if bytes > MAX_BITMAP_BYTES {
        return Err(CowError::TooLarge {
            path: path.to_path_buf(),
            size: header.size,
        });
    }
    // The v1/v2 rounding bug can leave the last bits past the recorded
    // bitmap; they are read from where they would be, when inside the file.
    let readable = bytes.min(len.saturating_sub(header.bitmap_offset));
    let mut buf = vec![0u8; crate::block::usize_from(readable)];
    file.read_exact_at(&mut buf, header.bitmap_offset)
        .map_err(|e| CowError::io(path, "cannot read bitmap", e))?;
    Ok(Bitmap::from_bytes(buf, header.sectors()))
}

/// The size and mtime of a backing file as the header records them.
pub fn backing_identity(path: &Path) -> Result<(u64, i64), CowError> {
    let meta =
        std::fs::metadata(path).map_err(|e| CowError::io(path, "cannot stat backing file", e))?;
    Ok((meta.len(), meta.mtime()))
}

/// Compares a backing file with the header: size first, then mtime, as
/// the kernel does.
pub fn check_backing(header: &Header, backing: &Path, ignore_mtime: bool) -> Result<(), CowError> {
    let (size, mtime) = backing_identity(backing)?;
    if size != header.size {
        return Err(CowError::SizeMismatch {
            header: header.size,
            actual: size,
            backing: backing.to_path_buf(),
        });
    }
    if !ignore_mtime && i64::from(header.mtime) != mtime {
        return Err(CowError::MtimeMismatch {
            header: header.mtime,
            actual: mtime,
            backing: backing.to_path_buf(),
        });
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Opens a COW file over its backing file (the one recorded in the header,
/// or `options.backing_override`), with the kernel's checks and locks.
pub fn open_cow(path: &Path, options: &DiskOptions) -> Result<CowDevice<FileDevice>, CowError> {
    let file = open_file(path, options.writable)?;
    let mut header = read_header(&file, path)?.ok_or_else(|| CowError::Header {
        path: path.to_path_buf(),
        source: HeaderError::NotCow,
    })?;
    if !options.shared {
        lock(&file, path, options.writable)?;
    }
    let recorded = PathBuf::from(OsStr::from_bytes(&header.backing_file));
    let backing_path = options
        .backing_override
        .clone()
        .unwrap_or_else(|| recorded.clone());
    check_backing(&header, &backing_path, options.ignore_mtime)?;
    if options.switch_backing && options.writable && !same_file(&backing_path, &recorded) {
        header = rewrite_backing(&file, path, &header, &backing_path)?;
    }
    let bitmap = read_bitmap(&file, path, &header)?;
    let backing_file = open_file(&backing_path, false)?;
    if !options.shared {
        lock(&backing_file, &backing_path, false)?;
    }
    let backing = FileDevice::from_file(backing_file, &backing_path, false)
        .map_err(|e| CowError::io(&backing_path, "cannot stat", e))?;
    let cow = FileDevice::from_file(file, path, options.writable)
        .map_err(|e| CowError::io(path, "cannot stat", e))?;
    Ok(CowDevice::new(cow, header, bitmap, backing))
}

/// Stores a new backing path (made absolute) and that file's mtime in the
/// header of the open COW `file`. The sizes must already agree.
pub fn rewrite_backing(
    file: &File,
    path: &Path,
    header: &Header,
    backing: &Path,
) -> Result<Header, CowError> {
    use std::os::unix::fs::FileExt;
    let absolute = absolutize(backing).map_err(|e| CowError::io(backing, "cannot resolve", e))?;
    let (_, mtime) = backing_identity(backing)?;
    let mut new = header.clone();
    new.backing_file = absolute.as_os_str().as_bytes().to_vec();
    new.mtime = mtime_u32(mtime, backing)?;
    let bytes = new.to_bytes().map_err(|e| CowError::Header {
        path: path.to_path_buf(),
        source: e,
    })?;
    file.write_all_at(&bytes, 0)
        .and_then(|()| file.sync_data())
        .map_err(|e| CowError::io(path, "cannot write header", e))?;
    Ok(new)
}

fn mtime_u32(mtime: i64, backing: &Path) -> Result<u32, CowError> {
    u32::try_from(mtime).map_err(|_| CowError::MtimeRange {
        backing: backing.to_path_buf(),
        mtime,
    })
}

/// Makes a path absolute the way the kernel does when it records a backing
/// file: the directory part is resolved (`chdir`+`getcwd`), the last
/// component kept as given.
pub fn absolutize(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path names no file"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => std::fs::canonicalize(d)?,
        _ => std::env::current_dir()?,
    };
    Ok(dir.join(name))
}

/// Creates a COW file for `backing` as `uml_mkcow` and the kernel do: a v3
/// header with the backing file's absolute path, size and mtime, sector
/// size 512, alignment 4096, and a sparse bitmap and data area. The file
/// is built beside `cow` and renamed into place; an existing `cow` is
/// replaced only with `force`.
pub fn create_cow(cow: &Path, backing: &Path, force: bool) -> Result<Header, CowError> {
    let (size, mtime) = backing_identity(backing)?;
    let absolute = absolutize(backing).map_err(|e| CowError::io(backing, "cannot resolve", e))?;
    let header = Header::new_v3(
        absolute.as_os_str().as_bytes().to_vec(),
        mtime_u32(mtime, backing)?,
        size,
    )
    .map_err(|e| CowError::Header {
        path: backing.to_path_buf(),
        source: e,
    })?;
    if !force && cow.symlink_metadata().is_ok() {
        return Err(CowError::Exists(cow.to_path_buf()));
    }
    let bytes = header.to_bytes().map_err(|e| CowError::Header {
        path: cow.to_path_buf(),
        source: e,
    })?;
    let dir = match cow.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let io_err = |op, e| CowError::io(cow, op, e);
    let tmp = tempfile::Builder::new()
        .prefix(".uml_mkcow.")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| io_err("cannot create a file in the directory", e))?;
    {
        use std::os::unix::fs::FileExt;
        let f = tmp.as_file();
        f.write_all_at(&bytes, 0)
            .map_err(|e| io_err("cannot write", e))?;
        f.set_len(header.file_len_needed())
            .map_err(|e| io_err("cannot size", e))?;
        f.sync_all().map_err(|e| io_err("cannot sync", e))?;
    }
    let persisted = if force {
        tmp.persist(cow).map(|_| ())
    } else {
        tmp.persist_noclobber(cow).map(|_| ())
    };
    match persisted {
        Ok(()) => Ok(header),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
            Err(CowError::Exists(cow.to_path_buf()))
        }
        Err(e) => Err(io_err("cannot rename into place", e.error)),
    }
}
