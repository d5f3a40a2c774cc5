//! The guest's small `/dev` (issue 8, "Root filesystem"): a tmpfs with the
//! host's null, zero, full, random, urandom and tty bind-mounted (every
//! superblock made in a user namespace is `nodev`, so the image's own
//! nodes cannot be opened), a `newinstance` devpts, `shm`, the usual
//! symlinks, and `/dev/console` (and `tty0`) bound to a pty slave whose
//! master the monitor keeps. Also a tmpfs on `/tmp`. The tmpfs mounts
//! are sized from `mem=` as the kernel's tmpfs defaults would be
//! ([`super::limits::tmpfs_options`]).

use super::limits::tmpfs_options;
use crate::sys::guest::{mount, open_pty};
use nix::mount::MsFlags;
use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

const HOST_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

pub(crate) fn bind(source: &Path, target: &Path) -> io::Result<()> {
    File::create(target)?;
    mount(
        &source.to_string_lossy(),
        target,
        None,
        MsFlags::MS_BIND,
        None,
    )
}

/// Builds `/dev` and `/tmp` under `root` (where the image has those
/// directories), their tmpfs sized for `mem` bytes of guest memory, and
/// returns the console's pty master and the slave's path.
/// The monitor opens the slave only for each clone of init, so that the
/// master reads end (EIO) once every guest process has gone.
pub fn setup(root: &Path, mem: u64) -> io::Result<(OwnedFd, PathBuf)> {
    let sized = |mode: &str| format!("mode={mode},{}", tmpfs_options(mem));
    let dev = root.join("dev");
    let nosuid = MsFlags::MS_NOSUID;
    let ptmx = if dev.is_dir() {
        mount(
            "tmpfs",
            &dev,
            Some("tmpfs"),
            nosuid | MsFlags::MS_NOEXEC,
            Some(&sized("0755")),
        )?;
        for name in HOST_NODES {
            bind(&Path::new("/dev").join(name), &dev.join(name))?;
        }
        fs::create_dir(dev.join("pts"))?;
        mount(
            "devpts",
            &dev.join("pts"),
            Some("devpts"),
            nosuid | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        )?;
        fs::create_dir(dev.join("shm"))?;
        mount(
            "shm",
            &dev.join("shm"),
            Some("tmpfs"),
            nosuid | MsFlags::MS_NODEV,
            Some(&sized("1777")),
        )?;
        std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx"))?;
        std::os::unix::fs::symlink("/proc/self/fd", dev.join("fd"))?;
        for (i, name) in ["stdin", "stdout", "stderr"].iter().enumerate() {
            std::os::unix::fs::symlink(format!("/proc/self/fd/{i}"), dev.join(name))?;
        }
        dev.join("pts/ptmx")
    } else {
        Path::new("/dev/ptmx").to_path_buf()
    };
    let (master, n) = open_pty(&ptmx)?;
    let slave_path = ptmx
        .parent()
        .map_or_else(|| PathBuf::from("/dev/pts"), |d| d.join("pts"))
        .join(n.to_string());
    // `ptmx` is `<dev>/pts/ptmx` or the host's `/dev/ptmx`.
    let slave_path = if dev.is_dir() {
        dev.join("pts").join(n.to_string())
    } else {
        slave_path
    };
    if dev.is_dir() {
        bind(&slave_path, &dev.join("console"))?;
        bind(&slave_path, &dev.join("tty0"))?;
    }
    let tmp = root.join("tmp");
    if tmp.is_dir() {
        mount(
            "tmpfs",
            &tmp,
            Some("tmpfs"),
            nosuid | MsFlags::MS_NODEV,
            Some(&sized("1777")),
        )?;
    }
    Ok((master, slave_path))
}

/// Opens the console's slave for one boot of init.
pub fn open_console(slave: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(slave)?;
    Ok(OwnedFd::from(f))
}
