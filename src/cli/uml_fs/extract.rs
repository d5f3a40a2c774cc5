//! `extract`: copy a file or tree out of the image onto the host, keeping
//! permission bits (setuid, setgid, sticky included), times, symlinks, hard
//! links and holes. What a normal user cannot create (device nodes, other
//! owners) is reported on standard error, not fatal.
//!
//! A corrupt image can map one block into many files, or many times into
//! one (an 8 MiB image whose indirect blocks all point at the same data
//! block reads as gigabytes). Every data and map block of each file copied
//! is claimed in [`Claims`] before its bytes are written; a block claimed
//! twice stops the extraction with an error naming both inodes and the
//! block. So what is written (holes aside, which stay holes) never exceeds
//! the filesystem's size, and that bound is also checked directly.

use crate::block::BlockDevice;
use crate::ext3::file::BlockClaim;
use crate::ext3::walk::Node;
use crate::ext3::{Ext3, FileType, Metadata, Timestamp};
use anyhow::Context;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Which inode holds each device block handed out so far, as disjoint
/// runs `start -> (end, inode)`: memory grows with the number of runs of
/// the files copied, not with the size of the filesystem.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    runs: BTreeMap<u64, (u64, u32)>,
}

/// A block that two files (or one file twice) use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "block {block} is used by {}: cross-linked blocks, the image is corrupt \
     (e2fsck -f repairs it); extraction stopped",
    if first == second { format!("inode {first} twice") } else { format!("both inode {first} and inode {second}") }
)]
pub(crate) struct CrossLinked {
    /// The block.
    pub block: u64,
    /// The inode that claimed it first.
    pub first: u32,
    /// The inode that claimed it again.
    pub second: u32,
}

impl Claims {
    /// Claims blocks `start..start + len` for inode `ino`.
    pub(crate) fn claim(&mut self, ino: u32, start: u64, len: u64) -> Result<(), CrossLinked> {
        let end = start.saturating_add(len);
        if len == 0 {
            return Ok(());
        }
        // Runs are disjoint: only the last one starting before `end` can
        // reach into the new run, or else none does.
        if let Some((&s, &(e, owner))) = self.runs.range(..end).next_back() {
            if e > start {
                return Err(CrossLinked {
                    block: s.max(start),
                    first: owner,
                    second: ino,
                });
            }
        }
        // Extend the inode's previous run when this one continues it.
        let joined = match self.runs.range(..start).next_back() {
            Some((&s, &(e, owner))) if e == start && owner == ino => Some(s),
            _ => None,
        };
        match joined {
            Some(s) => {
                self.runs.insert(s, (end, ino));
            }
            None => {
                self.runs.insert(start, (end, ino));
            }
        }
        Ok(())
    }
}

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
    claims: Claims,
    /// Bytes of file data written so far, and the most the image holds.
    written: u64,
    limit: u64,
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

    /// Copies regular file `ino` (at `image_path` in the image) to `p`.
    fn file(&mut self, ino: u32, p: &Path, image_path: &[u8]) -> anyhow::Result<()> {
        let inode = self.fs.inode(ino)?;
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
            .with_context(|| format!("cannot create {}", p.display()))?;
        let mut end = 0u64;
        let mut stop: Option<anyhow::Error> = None;
        let (claims, written, limit) = (&mut self.claims, &mut self.written, self.limit);
        // Map blocks come again for every leaf of an extent tree: each
        // counts once per file.
        let mut map_seen = HashSet::new();
        let claim = |c: BlockClaim| {
            let r = match c {
                BlockClaim::Map { pblk } if map_seen.insert(pblk) => claims.claim(ino, pblk, 1),
                BlockClaim::Map { .. } => Ok(()),
                BlockClaim::Data { pblk, len, .. } => claims.claim(ino, pblk, len),
            };
            r.map_err(|e| {
                stop = Some(e.into());
                crate::ext3::Error::stopped()
            })
        };
        let mut too_much = false;
        let write = |off: u64, data: &[u8]| {
            *written = written.saturating_add(data.len() as u64);
            if *written > limit {
                too_much = true;
                return Err(crate::ext3::Error::stopped());
            }
            end = off + data.len() as u64;
            f.write_all_at(data, off)
                .map_err(|source| crate::ext3::Error::Io {
                    offset: off,
                    len: data.len(),
                    source,
                })
        };
        let read = self
            .fs
            .for_each_data_claiming(ino, &inode, &mut self.buf, claim, write);
        if let Err(e) = read {
            let _ = std::fs::remove_file(p);
            let context = || format!("extract: {}", String::from_utf8_lossy(image_path));
            if let Some(cross) = stop {
                return Err(cross.context(context()));
            }
            if too_much {
                anyhow::bail!(
                    "{}: more file data than the image holds ({limit} bytes): the image is corrupt; extraction stopped",
                    context()
                );
            }
            return Err(e).with_context(|| format!("reading inode {ino} for {}", p.display()));
        }
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
            FileType::Regular => self.file(m.ino, dest, &node.path)?,
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
        claims: Claims::default(),
        written: 0,
        limit: fs
            .superblock()
            .s_blocks_count
            .saturating_mul(u64::from(fs.block_size())),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_accept_disjoint_runs_and_name_both_owners_of_an_overlap() {
        let mut c = Claims::default();
        c.claim(12, 100, 10).unwrap();
        c.claim(12, 110, 5).unwrap();
        c.claim(13, 90, 10).unwrap();
        c.claim(14, 115, 1).unwrap();
        // The two runs of inode 12 are one.
        assert_eq!(c.runs.len(), 3);
        let e = c.claim(15, 50, 55).unwrap_err();
        assert_eq!(
            e,
            CrossLinked {
                block: 100,
                first: 12,
                second: 15
            }
        );
        let e = c.claim(12, 114, 1).unwrap_err();
        assert_eq!((e.block, e.first, e.second), (114, 12, 12));
        assert!(e.to_string().contains("inode 12 twice"), "{e}");
        assert!(c.claim(16, 116, 0).is_ok());
        assert!(c.claim(16, 0, 90).is_ok());
    }
}
