//! `uml_cow convert`: between UML COW files, qcow2 overlays over a raw
//! backing file, and raw images. The source format is told by its magic;
//! the output is built beside the destination and renamed into place.
//!
//! ```text
//!   COW   -> qcow2   the COW's dirty clusters over the same backing file
//!   qcow2 -> COW     the overlay's allocated clusters into a new COW file
//!   any   -> raw     the merged view, zero blocks left as holes
//!   raw   -> qcow2   a standalone qcow2 file
//! ```

use super::error::CowError;
use super::open::{create_cow, open_cow, read_header, DiskOptions};
use super::qcow2::image::{Mapping, Qcow2Error};
use super::qcow2::{write_qcow2, Qcow2Image};
use crate::block::{BlockDevice, FileDevice};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// A disk file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A plain image.
    Raw,
    /// A UML COW file.
    Cow,
    /// A qcow2 file.
    Qcow2,
}

impl Format {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Cow => "cow",
            Format::Qcow2 => "qcow2",
        }
    }
}

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The COW side.
    #[error(transparent)]
    Cow(#[from] CowError),
    /// The qcow2 side.
    #[error(transparent)]
    Qcow2(#[from] Qcow2Error),
    /// A conversion that is not offered.
    #[error("{}: {why}", path.display())]
    Unsupported {
        /// The source.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// Writing the output failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> ConvertError {
    let path = path.to_path_buf();
    move |source| ConvertError::Io { path, op, source }
}

/// The format of `path`, by its first bytes.
pub fn detect(path: &Path) -> Result<Format, ConvertError> {
    let file = File::open(path).map_err(io_err(path, "cannot open"))?;
    let mut magic = [0u8; 4];
    use std::os::unix::fs::FileExt;
    let n = file
        .read_at(&mut magic, 0)
        .map_err(io_err(path, "cannot read"))?;
    if n == 4 && u32::from_be_bytes(magic) == super::qcow2::header::MAGIC {
        return Ok(Format::Qcow2);
    }
    Ok(match read_header(&file, path)? {
        Some(_) => Format::Cow,
        None => Format::Raw,
    })
}

/// Converts `src` to `to` at `dst`; `progress(done, total)` follows the
/// bytes of the virtual disk.
pub fn convert(
    src: &Path,
    dst: &Path,
    to: Format,
    progress: &dyn Fn(u64, u64),
) -> Result<Format, ConvertError> {
    let from = detect(src)?;
    let unsupported = |why: String| ConvertError::Unsupported {
        path: src.to_path_buf(),
        why,
    };
    let dir = match dst.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".uml_cow-convert.")
        .tempfile_in(dir)
        .map_err(io_err(dst, "cannot create a file in the directory"))?;
    match (from, to) {
        (Format::Cow, Format::Qcow2) => {
            let dev = open_cow(src, &DiskOptions::default())?;
            let bitmap = dev.bitmap();
            let sector = u64::from(dev.header().sector_size);
            let dirty = |r: std::ops::Range<u64>| {
                (r.start / sector..r.end.div_ceil(sector)).any(|s| bitmap.get(s))
            };
            let size = dev.len();
            let backing = dev.header().backing_file.clone();
            write_qcow2(tmp.as_file(), &dev, size, Some(&backing), &dirty, &|d| {
                progress(d, size)
            })
            .map_err(io_err(dst, "cannot write"))?;
        }
        (Format::Raw, Format::Qcow2) => {
            let dev = FileDevice::open_read_only(src).map_err(io_err(src, "cannot open"))?;
            let size = dev.len();
            write_qcow2(tmp.as_file(), &dev, size, None, &|_| true, &|d| {
                progress(d, size)
            })
            .map_err(io_err(dst, "cannot write"))?;
        }
        (Format::Qcow2, Format::Cow) => {
            let img = Qcow2Image::open(src)?;
            let backing = img
                .backing_path()
                .ok_or_else(|| {
                    unsupported("a qcow2 file without a backing file converts to raw only".into())
                })?
                .to_path_buf();
            let blen = std::fs::metadata(&backing)
                .map_err(io_err(&backing, "cannot stat"))?
                .len();
            if blen != img.len() {
                return Err(unsupported(format!(
                    "virtual size {} differs from the backing file's {blen} bytes (a COW file has its backing file's size)",
                    img.len()
                )));
            }
            drop(tmp);
            let tmp_path = dir.join(format!(
                ".uml_cow-convert.{}.{}",
                std::process::id(),
                dst.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            let r = qcow2_to_cow(&img, &backing, &tmp_path, progress);
            if let Err(e) = r {
                let _ = std::fs::remove_file(&tmp_path);
                return Err(e);
            }
            std::fs::rename(&tmp_path, dst).map_err(io_err(dst, "cannot rename into place"))?;
            return Ok(from);
        }
        (Format::Cow | Format::Qcow2, Format::Raw) => {
            let dev: Box<dyn BlockDevice> = if from == Format::Cow {
                Box::new(open_cow(src, &DiskOptions::default())?)
            } else {
                Box::new(Qcow2Image::open(src)?)
            };
            copy_sparse(dev.as_ref(), tmp.as_file(), progress)
                .map_err(io_err(dst, "cannot write"))?;
        }
        (f, t) => {
            return Err(unsupported(format!(
                "converting {} to {} is not supported",
                f.name(),
                t.name()
            )))
        }
    }
    tmp.as_file()
        .sync_all()
        .map_err(io_err(dst, "cannot sync"))?;
    tmp.persist(dst)
        .map_err(|e| io_err(dst, "cannot rename into place")(e.error))?;
    Ok(from)
}

fn qcow2_to_cow(
    img: &Qcow2Image,
    backing: &Path,
    cow: &Path,
    progress: &dyn Fn(u64, u64),
) -> Result<(), ConvertError> {
    create_cow(cow, backing, true)?;
    let dev = open_cow(
        cow,
        &DiskOptions {
            writable: true,
            backing_override: Some(backing.to_path_buf()),
            ..DiskOptions::default()
        },
    )?;
    let cluster = img.header().cluster_size();
    let size = img.len();
    let mut buf = vec![0u8; usize::try_from(cluster).unwrap_or(0)];
    for (i, m) in img.map().iter().enumerate() {
        let start = i as u64 * cluster;
        progress(start, size);
        if *m == Mapping::Unallocated {
            continue;
        }
        let n = usize::try_from(cluster.min(size - start)).unwrap_or(0);
        img.read_exact_at(start, &mut buf[..n])
            .map_err(io_err(img_path(img), "cannot read"))?;
        dev.write_all_at(start, &buf[..n])
            .map_err(io_err(cow, "cannot write"))?;
    }
    dev.flush().map_err(io_err(cow, "cannot sync"))?;
    progress(size, size);
    Ok(())
}

fn img_path(_img: &Qcow2Image) -> &Path {
    Path::new("qcow2 source")
}

/// Copies `dev`'s view into `out` (empty), leaving zero blocks as holes.
fn copy_sparse(dev: &dyn BlockDevice, out: &File, progress: &dyn Fn(u64, u64)) -> io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let size = dev.len();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < size {
        let n = usize::try_from(CHUNK.min(size - at)).unwrap_or(0);
        dev.read_exact_at(at, &mut buf[..n])?;
        super::merge::write_nonzero(out, at, &buf[..n])?;
        at += n as u64;
        progress(at, size);
    }
    out.set_len(size)
}
