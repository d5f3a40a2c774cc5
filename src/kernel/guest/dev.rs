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

/// The guest's devpts as each boot finds it.
const DEVPTS_OPTIONS: &str = "newinstance,ptmxmode=0666,mode=0620";

/// Puts back what a boot changed in `/dev` that outlives it: the devpts
/// (which holds the console, so it stays mounted) gets the options it
/// was made with again. Debian's mountdevsubfs.sh remounts it with
/// `gid=5`, which the mount table then shows as the host's group id;
/// the next boot's remount, reading that back, would be refused.
pub fn reset(root: &Path) -> io::Result<()> {
    let pts = root.join("dev/pts");
    if !pts.is_dir() {
        return Ok(());
    }
    mount(
        "devpts",
        &pts,
        None,
        MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(DEVPTS_OPTIONS),
    )
}

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
/// returns the console's pty master. `/dev/console` and `/dev/tty0` are
/// bound here, before the guest runs; later the monitor reaches the slave
/// only through the master (TIOCGPTPEER), never by a path in the guest's
/// `/dev`.
pub fn setup(root: &Path, mem: u64) -> io::Result<OwnedFd> {
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
            Some(DEVPTS_OPTIONS),
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
    if dev.is_dir() {
        let slave_path = dev.join("pts").join(n.to_string());
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
    Ok(master)
}

/// The `fs.protected_*` sysctls Debian's procps sets at boot (from
/// `/usr/lib/sysctl.d/protect-links.conf`): host-wide files a user
/// namespace may not write, so the guest gets its own copies of the
/// host's values (what it writes there is kept, the host's settings
/// apply).
const SYSCTLS: [&str; 4] = [
    "fs/protected_fifos",
    "fs/protected_hardlinks",
    "fs/protected_regular",
    "fs/protected_symlinks",
];

/// The mount points under /sys of filesystems a user namespace may not
/// mount (securityfs, pstore): bound onto themselves so that the boot
/// scripts find them mounted.
pub const SYS_SELF_BINDS: [&str; 2] = ["sys/kernel/security", "sys/fs/pstore"];

/// Writes, for one boot, the files bound over the guest's proc (the
/// command line, `meminfo` as [`super::meminfo::text`] made it, the
/// sysctls of `SYSCTLS`)
/// and returns (source, target, path under /proc, contents) for each. The sources live on
/// the guest's `/dev` tmpfs when there is one (the child unlinks them
/// once bound; `df` then counts the binds with `/dev` instead of listing
/// each), else in `stage`.
pub fn proc_files(
    root: &Path,
    stage: &Path,
    line: &str,
    meminfo: &str,
) -> io::Result<Vec<ProcFile>> {
    use std::os::unix::fs::PermissionsExt;
    let dev = root.join("dev");
    let dir = if dev.is_dir() {
        dev
    } else {
        stage.to_path_buf()
    };
    let mut files = vec![
        ("cmdline".to_string(), format!("{line}\n"), 0o444),
        ("meminfo".to_string(), meminfo.to_string(), 0o444),
    ];
    for key in SYSCTLS {
        if let Ok(v) = fs::read_to_string(Path::new("/proc/sys").join(key)) {
            files.push((format!("sys/{key}"), v, 0o644));
        }
    }
    let mut pairs = Vec::new();
    for (target, text, mode) in files {
        let source = dir.join(format!(".proc-{}", target.replace('/', "-")));
        let _ = fs::remove_file(&source);
        fs::write(&source, &text)?;
        fs::set_permissions(&source, fs::Permissions::from_mode(mode))?;
        pairs.push(ProcFile {
            source,
            target: root.join("proc").join(&target),
            name: target,
            text,
        });
    }
    Ok(pairs)
}

/// One file bound over the guest's proc.
pub struct ProcFile {
    /// Where it is written (absolute; unlinked once bound).
    pub source: PathBuf,
    /// What it is bound over (absolute, before the pivot).
    pub target: PathBuf,
    /// Its path under /proc.
    pub name: String,
    /// Its contents.
    pub text: String,
}
