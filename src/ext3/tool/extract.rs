//! `extract`: copy a file or tree out of the image onto the host, keeping
//! permission bits (setuid, setgid, sticky included), times, symlinks, hard
//! links and holes. What a normal user cannot create (device nodes, other
//! owners) is reported on standard error, not fatal.

use crate::block::BlockDevice;
use crate::ext3::walk::Node;
use crate::ext3::{Ext3, FileType, Metadata, Timestamp};
use anyhow::Context;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn ts(t: Timestamp) -> TimeSpec {
    TimeSpec::new(t.sec, i64::from(t.nsec))
}

struct Extractor<'a, D: BlockDevice> {
    fs: &'a Ext3<D>,
    root: bool,
    uid: u32,
    gid: u32,
    links: HashMap<u32, PathBuf>,
    dirs: Vec<(PathBuf, Metadata)>,
    buf: Vec<u8>,
    not_owned: u64,
    skipped: u64,
}

impl<D: BlockDevice> Extractor<'_, D> {
    fn times(&self, p: &Path, m: &Metadata) -> anyhow::Result<()> {
        nix::sys::stat::utimensat(
            None,
            p,
            &ts(m.atime),
            &ts(m.mtime),
            UtimensatFlags::NoFollowSymlink,
        )
        .with_context(|| format!("cannot set times of {}", p.display()))
    }

    fn owner(&mut self, p: &Path, m: &Metadata) -> anyhow::Result<()> {
        if self.root {
            let (u, g) = (
                nix::unistd::Uid::from_raw(m.uid),
                nix::unistd::Gid::from_raw(m.gid),
            );
            nix::unistd::fchownat(
                None,
                p,
                Some(u),
                Some(g),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .with_context(|| format!("cannot chown {}", p.display()))?;
        } else if m.uid != self.uid || m.gid != self.gid {
            self.not_owned += 1;
        }
        Ok(())
    }

    fn perms(&self, p: &Path, m: &Metadata) -> anyhow::Result<()> {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(u32::from(m.perm)))
            .with_context(|| format!("cannot chmod {}", p.display()))
    }

    fn file(&mut self, ino: u32, p: &Path) -> anyhow::Result<()> {
        let inode = self.fs.inode(ino)?;
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
            .with_context(|| format!("cannot create {}", p.display()))?;
        let mut end = 0u64;
        let write = |off: u64, data: &[u8]| {
            end = off + data.len() as u64;
            f.write_all_at(data, off)
                .map_err(|source| crate::ext3::Error::Io {
                    offset: off,
                    len: data.len(),
                    source,
                })
        };
        self.fs
            .for_each_data(ino, &inode, &mut self.buf, write)
            .with_context(|| format!("reading inode {ino} for {}", p.display()))?;
        // A trailing hole stays a hole: the length is set without writing
        // zeros. Only then: a needless truncate is costly on the host
        // filesystem (ext4 flushes files truncated to zero on close).
        if end < inode.i_size {
            f.set_len(inode.i_size)
                .with_context(|| format!("cannot size {}", p.display()))?;
        }
        Ok(())
    }

    fn node(&mut self, node: &Node, dest: &Path) -> anyhow::Result<()> {
        let m = &node.meta;
        if m.file_type != FileType::Directory && m.nlink > 1 {
            if let Some(first) = self.links.get(&m.ino) {
                std::fs::hard_link(first, dest)
                    .with_context(|| format!("cannot link {}", dest.display()))?;
                return Ok(());
            }
            self.links.insert(m.ino, dest.to_path_buf());
        }
        match m.file_type {
            FileType::Directory => {
                match std::fs::create_dir(dest) {
                    Ok(()) => {}
                    Err(e)
                        if e.kind() == std::io::ErrorKind::AlreadyExists
                            && node.depth == 0
                            && dest.is_dir() => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot create {}", dest.display()))
                    }
                }
                // Writable while filling; the real mode and times come last.
                std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o700))?;
                self.dirs.push((dest.to_path_buf(), m.clone()));
                return Ok(());
            }
            FileType::Regular => self.file(m.ino, dest)?,
            FileType::Symlink => {
                let target = self.fs.readlink(m.ino)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), dest)
                    .with_context(|| format!("cannot create symlink {}", dest.display()))?;
                self.owner(dest, m)?;
                return self.times(dest, m);
            }
            FileType::Fifo => nix::unistd::mkfifo(dest, Mode::from_bits_truncate(0o600))
                .with_context(|| format!("cannot create fifo {}", dest.display()))?,
            FileType::CharDevice | FileType::BlockDevice | FileType::Socket => {
                let kind = if m.file_type == FileType::CharDevice {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                let made = m.file_type != FileType::Socket
                    && nix::sys::stat::mknod(
                        dest,
                        kind,
                        Mode::from_bits_truncate(0o600),
                        nix::sys::stat::makedev(m.rdev.0.into(), m.rdev.1.into()),
                    )
                    .is_ok();
                if !made {
                    self.skipped += 1;
                    eprintln!(
                        "uml_fs: extract: skipped {} ({} {},{}): cannot create it{}",
                        String::from_utf8_lossy(&node.path),
                        super::format::type_name(m.file_type),
                        m.rdev.0,
                        m.rdev.1,
                        if self.root { "" } else { " as a normal user" }
                    );
                    return Ok(());
                }
            }
        }
        self.owner(dest, m)?;
        self.perms(dest, m)?;
        self.times(dest, m)
    }
}

/// Copies `path` of the image to `dest` on the host.
pub fn extract<D: BlockDevice>(fs: &Ext3<D>, path: &[u8], dest: &Path) -> anyhow::Result<()> {
    let shown = String::from_utf8_lossy(path).into_owned();
    let ino = fs
        .resolve(path, false)
        .with_context(|| format!("cannot access {shown}"))?;
    let base = path.rsplit(|&c| c == b'/').find(|s| !s.is_empty());
    let top = match base {
        Some(b) if dest.is_dir() => dest.join(OsStr::from_bytes(b)),
        _ => dest.to_path_buf(),
    };
    let mut x = Extractor {
        fs,
        root: nix::unistd::geteuid().is_root(),
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        links: HashMap::new(),
        dirs: Vec::new(),
        buf: vec![0u8; 1 << 20],
        not_owned: 0,
        skipped: 0,
    };
    let prefix_len = path.len();
    let mut failure = None;
    let mut unreadable = 0u64;
    fs.walk(ino, path, |node| {
        let rel = node.path.get(prefix_len..).unwrap_or_default();
        let rel = rel.strip_prefix(b"/").unwrap_or(rel);
        let target = if rel.is_empty() {
            top.clone()
        } else {
            top.join(OsStr::from_bytes(rel))
        };
        match x.node(node, &target) {
            Ok(()) => Ok(true),
            // A file the image cannot give (corrupt metadata, read error)
            // is reported and skipped; the rest is still copied.
            Err(e)
                if node.meta.file_type != FileType::Directory
                    && e.downcast_ref::<crate::ext3::Error>().is_some() =>
            {
                eprintln!(
                    "uml_fs: extract: {}: {e:#}",
                    String::from_utf8_lossy(&node.path)
                );
                let _ = std::fs::remove_file(&target);
                unreadable += 1;
                Ok(true)
            }
            Err(e) => {
                failure = Some(e);
                Err(crate::ext3::Error::stopped())
            }
        }
    })
    .map_err(|e| failure.take().unwrap_or_else(|| e.into()))?;
    // Directories last and deepest first, so that filling them does not
    // change their times and their modes do not block filling.
    for (p, m) in std::mem::take(&mut x.dirs).iter().rev() {
        x.owner(p, m)?;
        x.perms(p, m)?;
        x.times(p, m)?;
    }
    if x.not_owned > 0 {
        eprintln!(
            "uml_fs: extract: {} file(s) belong to other users or groups in the image; they are owned by you here (run as root to keep ownership)",
            x.not_owned
        );
    }
    if x.skipped > 0 {
        eprintln!(
            "uml_fs: extract: {} device node(s) or socket(s) not created",
            x.skipped
        );
    }
    if unreadable > 0 {
        anyhow::bail!("{unreadable} file(s) could not be read from the image (see above); the rest was extracted");
    }
    Ok(())
}
