//! Reading a qcow2 file as a block device: the L1 and L2 tables are read
//! once into a map of one entry per guest cluster; reads come from the
//! file (allocated), zeros (zero flag, or unallocated without a backing
//! file) or the raw backing file.

use super::header::{Qcow2Header, Qcow2HeaderError};
use super::{OFFSET_MASK, OFLAG_COMPRESSED, OFLAG_ZERO};
use crate::block::{check_range, BlockDevice, FileDevice};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The most guest clusters mapped in memory (8 bytes each).
const MAX_CLUSTERS: u64 = 1 << 27;

/// Why a qcow2 file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum Qcow2Error {
    /// The header.
    #[error("{}: {source}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: Qcow2HeaderError,
    },
    /// A table entry that cannot be right, or a feature not handled.
    #[error("{}: {what}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What.
        what: String,
    },
    /// Reading failed.
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

/// Where one guest cluster reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// Not in this file: the backing file, or zeros.
    Unallocated,
    /// Reads as zeros.
    Zero,
    /// At this offset of the file.
    Data(u64),
}

/// An opened qcow2 file.
#[derive(Debug)]
pub struct Qcow2Image {
    file: File,
    header: Qcow2Header,
    map: Vec<Mapping>,
    backing: Option<FileDevice>,
    backing_path: Option<PathBuf>,
}

fn be64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

impl Qcow2Image {
    /// Opens `path`, reads its tables and opens its raw backing file
    /// (relative names are relative to the qcow2 file's directory).
    pub fn open(path: &Path) -> Result<Qcow2Image, Qcow2Error> {
        let io_err = |op, source| Qcow2Error::Io {
            path: path.to_path_buf(),
            op,
            source,
        };
        let unsupported = |what: String| Qcow2Error::Unsupported {
            path: path.to_path_buf(),
            what,
        };
        let file = File::open(path).map_err(|e| io_err("cannot open", e))?;
        let len = file.metadata().map_err(|e| io_err("cannot stat", e))?.len();
        let mut first = vec![0u8; 1 << 21];
        let got = read_upto(&file, &mut first, 0).map_err(|e| io_err("cannot read header", e))?;
        let header = Qcow2Header::parse(&first[..got]).map_err(|source| Qcow2Error::Header {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(f) = &header.backing_format {
            if f != b"raw" {
                return Err(unsupported(format!(
                    "backing format {} (only raw backing files are supported)",
                    String::from_utf8_lossy(f)
                )));
            }
        }
        let cluster = header.cluster_size();
        let vclusters = header.size.div_ceil(cluster);
        if vclusters > MAX_CLUSTERS {
            return Err(unsupported("virtual size too large".into()));
        }
        let per_l2 = cluster / 8;
        let l1_used = vclusters.div_ceil(per_l2);
        let mut l1 = vec![0u8; usize::try_from(l1_used * 8).unwrap_or(0)];
        file.read_exact_at(&mut l1, header.l1_table_offset)
            .map_err(|e| io_err("cannot read the L1 table", e))?;
        let mut map = vec![Mapping::Unallocated; usize::try_from(vclusters).unwrap_or(0)];
        let mut table = vec![0u8; usize::try_from(cluster).unwrap_or(0)];
        let host = |off: u64, what: &str| -> Result<u64, Qcow2Error> {
            if off % cluster != 0 || off >= len {
                return Err(unsupported(format!(
                    "{what} offset {off:#x} outside the file"
                )));
            }
            Ok(off)
        };
        for t in 0..l1_used {
            let i = usize::try_from(t * 8).unwrap_or(0);
            let l2_off = be64(&l1[i..]) & OFFSET_MASK;
            if l2_off == 0 {
                continue;
            }
            host(l2_off, "L2 table")?;
            file.read_exact_at(&mut table, l2_off)
                .map_err(|e| io_err("cannot read an L2 table", e))?;
            for e in 0..per_l2 {
                let vc = t * per_l2 + e;
                if vc >= vclusters {
                    break;
                }
                let o = usize::try_from(e * 8).unwrap_or(0);
                let entry = be64(&table[o..]);
                if entry & OFLAG_COMPRESSED != 0 {
                    return Err(unsupported(
                        "compressed clusters are not supported (qemu-img convert -O qcow2 without -c first)".into(),
                    ));
                }
                let off = entry & OFFSET_MASK;
                let m = if header.version == 3 && entry & OFLAG_ZERO != 0 {
                    Mapping::Zero
                } else if off != 0 {
                    Mapping::Data(host(off, "data cluster")?)
                } else {
                    Mapping::Unallocated
                };
                map[usize::try_from(vc).unwrap_or(0)] = m;
            }
        }
        let (backing, backing_path) = if header.backing_file.is_empty() {
            (None, None)
        } else {
            use std::os::unix::ffi::OsStrExt;
            let name = Path::new(std::ffi::OsStr::from_bytes(&header.backing_file));
            let p = if name.is_absolute() {
                name.to_path_buf()
            } else {
                path.parent().unwrap_or(Path::new(".")).join(name)
            };
            let dev = FileDevice::open_read_only(&p).map_err(|e| Qcow2Error::Io {
                path: p.clone(),
                op: "cannot open backing file",
                source: e,
            })?;
            let mut magic = [0u8; 4];
            if read_upto(dev.file(), &mut magic, 0).unwrap_or(0) == 4
                && u32::from_be_bytes(magic) == super::header::MAGIC
            {
                return Err(unsupported(format!(
                    "backing file {} is qcow2 (only raw backing files are supported)",
                    p.display()
                )));
            }
            (Some(dev), Some(p))
        };
        Ok(Qcow2Image {
            file,
            header,
            map,
            backing,
            backing_path,
        })
    }

    /// The header.
    pub fn header(&self) -> &Qcow2Header {
        &self.header
    }

    /// The backing file's path, when there is one.
    pub fn backing_path(&self) -> Option<&Path> {
        self.backing_path.as_deref()
    }

    /// Where each guest cluster reads from.
    pub fn map(&self) -> &[Mapping] {
        &self.map
    }
}

fn read_upto(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl BlockDevice for Qcow2Image {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.header.size)?;
        let cluster = self.header.cluster_size();
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let vc = at / cluster;
            let inner = at % cluster;
            let n = usize::try_from(cluster - inner)
                .unwrap_or(usize::MAX)
                .min(buf.len() - done);
            let part = &mut buf[done..done + n];
            match self.map.get(usize::try_from(vc).unwrap_or(usize::MAX)) {
                Some(Mapping::Data(host)) => {
                    let got = read_upto(&self.file, part, host + inner)?;
                    part[got..].fill(0);
                }
                Some(Mapping::Unallocated) => match &self.backing {
                    Some(b) if at < b.len() => {
                        let m = usize::try_from(b.len() - at).unwrap_or(usize::MAX).min(n);
                        b.read_exact_at(at, &mut part[..m])?;
                        part[m..].fill(0);
                    }
                    _ => part.fill(0),
                },
                _ => part.fill(0),
            }
            done += n;
        }
        Ok(())
    }
    fn write_all_at(&self, _offset: u64, _buf: &[u8]) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(libc::EROFS))
    }
    fn len(&self) -> u64 {
        self.header.size
    }
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }
}
