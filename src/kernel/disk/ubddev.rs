//! The guest's `/dev/ubdX` nodes, `/dev/root`, and the root check an
//! initramfs would have made.
//!
//! A distribution's boot scripts look for the root's device: Debian's
//! `checkroot.sh` compares `mountpoint -qx /dev/ubda` (the node's device
//! number) with `mountpoint -d /` (the root mount's), tries `mknod` of a
//! node in /run when they differ, and then runs `fsck` on it unless
//! `/run/initramfs/fsck-root` says an initramfs has checked the root.
//!
//! Device nodes cannot be made in a user namespace, and no filesystem
//! mounted in one can open them (nodev). So:
//!
//! - a small read-only FUSE filesystem serves one block-device inode per
//!   disk, bind-mounted on `/dev/ubdX` (mode 0660, root:disk): the root's
//!   carries the root mount's own device number (what `stat /` says and
//!   `mountpoint -d /` prints), every other disk the kernel's 98:16n. They
//!   satisfy `[ -b ]` and `mountpoint -x`; opening one fails with EACCES,
//!   as any device node on a nodev mount does, so `fsck` and `blkid`
//!   cannot read the disks from inside the guest;
//! - `/dev/root` is a symlink to the root's node;
//! - the monitor checks the root's superblock as `e2fsck -p` decides
//!   whether a filesystem needs a full check (errors, not cleanly
//!   unmounted, mount count, check interval: [`super::preen`]),
//!   after replaying its journal as `e2fsck` would. When the root is clean
//!   it mounts a tmpfs on `/run` (where the image has one; Debian keeps a
//!   /run handed over by an initramfs) holding `/run/initramfs/fsck-root`
//!   with e2fsck's summary line, as Debian's initramfs does after checking
//!   the root. A root that needs a full check gets no such file: the
//!   guest's fsck then cannot open the device and the boot stops in the
//!   distribution's maintenance shell, and the filesystem must be checked
//!   on the host (`e2fsck` on the image, after `uml_moo` for a COW).

use crate::sys::guest::mount;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, Generation, INodeNo, ReplyAttr,
    ReplyDirectory, ReplyEntry, Request,
};
use nix::mount::MsFlags;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// How long the host kernel may trust names and attributes (they never
/// change).
const TTL: Duration = Duration::from_secs(86_400);
/// The `disk` group, as Debian numbers it.
const DISK_GID: u32 = 6;
/// The ubd driver's block major.
const UBD_MAJOR: u32 = 98;

/// One block-device node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its name under /dev (`ubda`).
    pub name: String,
    /// Its device number, in the kernel's `dev_t` encoding
    /// ([`super::fuse::makedev`]).
    pub rdev: u32,
}

/// The nodes for the disks `units` (sorted), the root being `root_unit`
/// whose mount has the device number `root_dev` (major, minor).
pub fn nodes(units: &[usize], root_unit: usize, root_dev: (u32, u32)) -> Vec<Node> {
    units
        .iter()
        .map(|&u| {
            let (major, minor) = if u == root_unit {
                root_dev
            } else {
                (UBD_MAJOR, u32::try_from(u * 16).unwrap_or(u32::MAX))
            };
            Node {
                name: format!("ubd{}", crate::kernel::cmdline::ubd::letter(u)),
                rdev: super::fuse::makedev(major, minor),
            }
        })
        .collect()
}

/// The FUSE side: a root directory (inode 1) and the nodes (inodes 2..).
struct NodeFs {
    nodes: Vec<Node>,
}

fn attr(ino: u64, kind: FileType, perm: u16, rdev: u32) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind,
        perm,
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: 0,
        gid: if kind == FileType::Directory {
            0
        } else {
            DISK_GID
        },
        rdev,
        blksize: 4096,
        flags: 0,
    }
}

impl NodeFs {
    fn attr_of(&self, ino: u64) -> Option<FileAttr> {
        if ino == 1 {
            return Some(attr(1, FileType::Directory, 0o755, 0));
        }
        let i = usize::try_from(ino.checked_sub(2)?).ok()?;
        let n = self.nodes.get(i)?;
        Some(attr(ino, FileType::BlockDevice, 0o660, n.rdev))
    }
}

impl Filesystem for NodeFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = (parent.0 == 1)
            .then(|| {
                self.nodes
                    .iter()
                    .position(|n| n.name.as_bytes() == name.as_bytes())
            })
            .flatten()
            .and_then(|i| self.attr_of(i as u64 + 2));
        match found {
            Some(a) => reply.entry(&TTL, &a, Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr_of(ino.0) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if ino.0 != 1 {
            return reply.error(Errno::ENOTDIR);
        }
        let mut entries = vec![
            (1, FileType::Directory, ".".to_string()),
            (1, FileType::Directory, "..".to_string()),
        ];
        for (i, n) in self.nodes.iter().enumerate() {
            entries.push((i as u64 + 2, FileType::BlockDevice, n.name.clone()));
        }
        for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), i as u64 + 1, kind, OsStr::new(&name)) {
                break;
            }
        }
        reply.ok()
    }
}

/// Serves `nodes` from a FUSE mount at `stage` (a directory in the
/// monitor's staging area) and binds each on `<root>/dev/<name>`; makes
/// `<root>/dev/root` a symlink to `root_name`. Nothing when the image has
/// no /dev.
pub fn attach(root: &Path, stage: &Path, nodes: Vec<Node>, root_name: &str) -> io::Result<()> {
    let dev = root.join("dev");
    if !dev.is_dir() || nodes.is_empty() {
        return Ok(());
    }
    std::fs::create_dir(stage)?;
    let dev_fuse = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?;
    let data = format!(
        "fd={},rootmode=40000,user_id=0,group_id=0,allow_other",
        dev_fuse.as_raw_fd()
    );
    mount(
        "ubd",
        stage,
        Some("fuse.ubd"),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV,
        Some(&data),
    )?;
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let mut config = fuser::Config::default();
    config.acl = fuser::SessionACL::All;
    let session = fuser::Session::from_fd(
        NodeFs { nodes },
        OwnedFd::from(dev_fuse),
        fuser::SessionACL::All,
        config,
    )?;
    std::thread::Builder::new()
        .name("fuse-ubd".into())
        .spawn(move || {
            let _ = session.run();
        })?;
    for name in &names {
        crate::kernel::guest::dev::bind(&stage.join(name), &dev.join(name))?;
    }
    std::os::unix::fs::symlink(root_name, dev.join("root"))?;
    Ok(())
}

/// What an initramfs leaves after checking a clean root: a tmpfs on
/// `<root>/run` (when the image has /run) with `initramfs/fsck-root`
/// holding `summary` (e2fsck's line). Nothing without /run.
pub fn hand_over_run(root: &Path, summary: &str) -> io::Result<()> {
    let run = root.join("run");
    if !run.is_dir() {
        return Ok(());
    }
    mount(
        "tmpfs",
        &run,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )?;
    std::fs::create_dir(run.join("initramfs"))?;
    std::fs::write(run.join("initramfs/fsck-root"), format!("{summary}\n"))
}

/// Everything this module gives a guest whose root is mounted at `root`:
/// the nodes of `units` (the root being `root_unit`), `/dev/root`, and
/// the handed-over /run when `check` (what `e2fsck -p` decides) is clean.
/// Returns the boot-log lines.
pub fn prepare(
    root: &Path,
    stage: &Path,
    units: &[usize],
    root_unit: usize,
    check: &Result<String, super::FullCheck>,
) -> io::Result<Vec<String>> {
    use std::os::unix::fs::MetadataExt;
    let st_dev = std::fs::metadata(root)?.dev();
    let root_dev = (
        nix::sys::stat::major(st_dev) as u32,
        nix::sys::stat::minor(st_dev) as u32,
    );
    let name = format!("ubd{}", crate::kernel::cmdline::ubd::letter(root_unit));
    attach(root, stage, nodes(units, root_unit, root_dev), &name)?;
    Ok(match check {
        Ok(summary) => {
            let line = format!("/dev/{name}: {summary}");
            hand_over_run(root, &line)?;
            vec![line]
        }
        Err(why) => vec![format!(
            "/dev/{name} {why}: the guest's fsck cannot open it; check it on the host"
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roots_node_carries_the_root_mounts_device_number_and_others_98_16n() {
        let n = nodes(&[0, 2], 0, (0, 53));
        assert_eq!(n[0].name, "ubda");
        assert_eq!(n[0].rdev, super::super::fuse::makedev(0, 53));
        assert_eq!(n[1].name, "ubdc");
        assert_eq!(n[1].rdev, super::super::fuse::makedev(98, 32));
        let n = nodes(&[0, 1], 1, (0, 60));
        assert_eq!(n[0].rdev, super::super::fuse::makedev(98, 0));
        assert_eq!(n[1].rdev, super::super::fuse::makedev(0, 60));
    }

    #[test]
    fn the_directory_lists_every_node_as_a_block_device() {
        let fs = NodeFs {
            nodes: nodes(&[0], 0, (0, 53)),
        };
        let a = fs.attr_of(2).unwrap();
        assert_eq!(a.kind, FileType::BlockDevice);
        assert_eq!(a.perm, 0o660);
        assert_eq!(a.gid, DISK_GID);
        assert_eq!(fs.attr_of(1).unwrap().kind, FileType::Directory);
        assert!(fs.attr_of(3).is_none());
        assert!(fs.attr_of(0).is_none());
    }
}
