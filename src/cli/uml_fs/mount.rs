//! `uml_fs mount` and `uml_fs umount`: a guest's disk on the host through
//! FUSE, served by the guest kernel's own server
//! ([`crate::kernel::disk::fuse::FuseFs`]) over the same filesystems:
//!
//! ```text
//!   DIR ──FUSE──> FuseFs ──InodeFs──> Writer (rw: journal replayed into the COW/image)
//!                                  └─> Indexed(ReadOnly(Ext3)) (ro: journal replayed in memory,
//!                                      names looked up in a per-directory index)
//!                                        └─> Disk (image, or COW over its backing)
//! ```
//!
//! The disk is opened and locked as the kernel opens it (`cow::open_disk`),
//! so a COW a running guest holds is refused, and the server keeps the
//! lock while it runs. Unless `-f`, the process forks first (a POSIX lock
//! is not inherited), the child opens, mounts and reports over a socket,
//! and the parent exits once the mount is up, or prints why it is not.
//! Unmounting (`uml_fs umount`, `fusermount3 -u`) ends the session; the
//! server then commits the journal and marks the superblock clean.

use super::dir_index::Indexed;
use super::edit::{one_line, open_error};
use crate::cow::{open_disk, DiskOptions, DiskSpec};
use crate::ext3::read_only::ReadOnly;
use crate::ext3::write::{WriteOptions, Writer};
use crate::ext3::Ext3;
use crate::fs::InodeFs;
use crate::kernel::disk::fuse::FuseFs;
use crate::kernel::disk::readahead::Readahead;
use anyhow::{anyhow, bail, Context};
use fuser::{Config, MountOption, SessionACL};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The FUSE subtype: the mount's type is `fuse.uml_fs`.
const SUBTYPE: &str = "uml_fs";
/// Server threads.
const THREADS: usize = 4;
/// How long `umount` waits for the server to commit and exit.
const UMOUNT_WAIT: Duration = Duration::from_secs(120);
/// The signal that stops a server's read-ahead (sent by `umount`).
const STOP_READAHEAD: i32 = signal_hook::consts::SIGUSR1;
/// How long an unmount waits for a stopped read-ahead to let go of the
/// directory it was listing.
const READAHEAD_STOP: Duration = Duration::from_secs(2);

/// The options of `-o`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOpts {
    /// Mount read-only (journal replayed in memory, nothing written).
    pub read_only: bool,
    /// Who besides the owner may use the mount.
    pub acl: Acl,
    /// Let the host kernel check permissions (forced with `allow_other`
    /// and `allow_root`).
    pub default_permissions: bool,
    /// Plain mount flags passed through (`nosuid`, `noexec`, ...).
    pub flags: Vec<String>,
}

/// Who may use the mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acl {
    /// Only the user who mounted.
    Owner,
    /// Also root (`allow_root`).
    Root,
    /// Everyone (`allow_other`).
    All,
}

/// The mount flags `-o` passes to the kernel unchanged.
const PLAIN_FLAGS: &[&str] = &[
    "nosuid", "suid", "nodev", "dev", "noexec", "exec", "noatime", "atime", "sync", "async",
    "dirsync",
];

/// Parses a `-o` list (several `-o` are joined): `ro`, `rw`,
/// `allow_other`, `allow_root`, `default_permissions` and the plain flags.
pub fn parse_options(lists: &[String]) -> anyhow::Result<MountOpts> {
    let mut o = MountOpts {
        read_only: false,
        acl: Acl::Owner,
        default_permissions: false,
        flags: Vec::new(),
    };
    for word in lists.iter().flat_map(|l| l.split(',')) {
        match word {
            "" => {}
            "ro" => o.read_only = true,
            "rw" => o.read_only = false,
            "allow_other" => o.acl = Acl::All,
            "allow_root" => o.acl = Acl::Root,
            "default_permissions" => o.default_permissions = true,
            w if PLAIN_FLAGS.contains(&w) => o.flags.push(w.to_string()),
            w => bail!("-o {w}: unknown mount option (known: ro, rw, allow_other, allow_root, default_permissions, {})", PLAIN_FLAGS.join(", ")),
        }
    }
    if o.acl != Acl::Owner {
        o.default_permissions = true;
    }
    Ok(o)
}

fn fuser_config(o: &MountOpts, fsname: &str) -> Config {
    let mut config = Config::default();
    config.acl = match o.acl {
        Acl::Owner => SessionACL::Owner,
        Acl::Root => SessionACL::RootAndOwner,
        Acl::All => SessionACL::All,
    };
    config.n_threads = Some(THREADS);
    config.clone_fd = true;
    let mut m = vec![
        MountOption::FSName(fsname.to_string()),
        MountOption::Subtype(SUBTYPE.to_string()),
        if o.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    if o.default_permissions {
        m.push(MountOption::DefaultPermissions);
    }
    for f in &o.flags {
        m.push(match f.as_str() {
            "nosuid" => MountOption::NoSuid,
            "suid" => MountOption::Suid,
            "nodev" => MountOption::NoDev,
            "dev" => MountOption::Dev,
            "noexec" => MountOption::NoExec,
            "exec" => MountOption::Exec,
            "noatime" => MountOption::NoAtime,
            "atime" => MountOption::Atime,
            "sync" => MountOption::Sync,
            "async" => MountOption::Async,
            _ => MountOption::DirSync,
        });
    }
    config.mount_options = m;
    config
}

/// The mount's source as `mount` shows it: the absolute path of the
/// image or COW file (which `umount` uses to find the server by its
/// lock), or `uml_fs` when that path cannot be an option value.
fn fsname(file: &Path) -> String {
    let s = file.to_string_lossy();
    if s.contains([',', '\\', ' ', '\t', '\n']) || s.contains('\u{fffd}') {
        SUBTYPE.to_string()
    } else {
        s.into_owned()
    }
}

/// Makes `spec`'s files absolute (the daemon leaves the working directory).
fn absolute_spec(spec: &str) -> anyhow::Result<(String, PathBuf)> {
    let parsed = DiskSpec::parse(spec).map_err(|e| anyhow!("{}", one_line(&e)))?;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let file = abs(&parsed.file);
    let mut s = file.to_string_lossy().into_owned();
    if let Some(b) = &parsed.backing {
        s.push(',');
        s.push_str(&abs(b).to_string_lossy());
    }
    Ok((s, file))
}

/// The filesystem to serve: the journaling writer for `rw`, the reader
/// (journal replayed in memory) for `ro`.
fn open_fs(spec: &str, dir: &Path, o: &MountOpts) -> anyhow::Result<(Arc<dyn InodeFs>, bool)> {
    let disk = open_disk(
        spec,
        &DiskOptions {
            writable: !o.read_only,
            ..DiskOptions::default()
        },
    )
    .map_err(|e| open_error(e, !o.read_only))?;
    if o.read_only {
        let fs = Ext3::open(disk).map_err(|e| anyhow!("{spec}: {}", one_line(&e)))?;
        return Ok((Arc::new(Indexed::new(ReadOnly::new(fs))), false));
    }
    let opts = WriteOptions {
        mount_point: Some(dir.as_os_str().as_bytes().to_vec()),
        ..WriteOptions::default()
    };
    let w = Writer::open(disk, opts).map_err(|e| anyhow!("{spec}: {}", one_line(&e)))?;
    Ok((Arc::new(w), true))
}

/// A mounted filesystem, ready to serve, and its read-ahead.
type Served = (fuser::Session<FuseFs>, Arc<Readahead>);

/// Opens the disk and mounts it at `dir`; the session is ready to run.
fn mount_session(spec: &str, file: &Path, dir: &Path, o: &MountOpts) -> anyhow::Result<Served> {
    let (fs, writable) = open_fs(spec, dir, o)?;
    let config = fuser_config(o, &fsname(file));
    let readahead = Readahead::start(dir).context("spawn")?;
    let served = FuseFs::new(fs, writable, writable).read_ahead(readahead.clone());
    let session = fuser::Session::new(served, dir, &config).map_err(|e| {
        anyhow!(
            "{}: cannot mount: {}",
            dir.display(),
            super::edit::reason(&e)
        )
    })?;
    readahead.notify_with(session.notifier());
    Ok((session, readahead))
}

/// Serves until the mount goes away; SIGINT, SIGTERM and SIGHUP unmount.
/// [`STOP_READAHEAD`] only stops the read-ahead, whose open directory
/// would make an unmount from outside fail as busy.
fn serve((mut session, readahead): Served) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut unmounter = session.unmount_callable();
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, STOP_READAHEAD])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                readahead.stop();
                if signal != STOP_READAHEAD {
                    readahead.wait_idle(READAHEAD_STOP);
                    let _ = unmounter.unmount();
                }
            }
        })?;
    session.run().context("serving")?;
    Ok(())
}

/// `uml_fs mount DEVICE DIR [-o ...] [-f]`.
pub fn mount(device: &str, dir: &Path, options: &[String], foreground: bool) -> anyhow::Result<()> {
    let o = parse_options(options)?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("{}: cannot use as mount point", dir.display()))?;
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    let (spec, file) = absolute_spec(device)?;
    if foreground {
        let served = mount_session(&spec, &file, &dir, &o)?;
        return serve(served);
    }
    let (mut parent_end, child_end) = UnixStream::pair().context("socketpair")?;
    // The parent's copy of `child_end` goes with the closure when the
    // fork returns, so the read below ends when the child closes its own.
    let child = crate::sys::guest::fork_helper(move || daemon(child_end, &spec, &file, &dir, &o))
        .context("fork")?;
    let mut answer = String::new();
    let _ = parent_end.read_to_string(&mut answer);
    match answer.strip_prefix("ok") {
        Some(_) => Ok(()),
        None if answer.is_empty() => {
            let _ = nix::sys::wait::waitpid(child, None);
            bail!("the server exited before the mount was up")
        }
        None => {
            let _ = nix::sys::wait::waitpid(child, None);
            Err(anyhow!("{}", answer.trim_end()))
        }
    }
}

/// The forked server: opens, mounts, says `ok` (or the error line) on
/// `report`, leaves the terminal and serves. Returns the exit status.
fn daemon(mut report: UnixStream, spec: &str, file: &Path, dir: &Path, o: &MountOpts) -> i32 {
    let _ = nix::unistd::setsid();
    let served = match mount_session(spec, file, dir, o) {
        Ok(s) => s,
        Err(e) => {
            let _ = write!(report, "{e:#}");
            return 1;
        }
    };
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
    let _ = std::env::set_current_dir("/");
    let _ = report.write_all(b"ok");
    drop(report);
    match serve(served) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// Runs `fusermount3 -u POINT`: None when it unmounted, else the first
/// line of its complaint.
fn fusermount_u(point: &Path) -> anyhow::Result<Option<String>> {
    let out = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(point)
        .output()
        .context("cannot run fusermount3")?;
    if out.status.success() {
        return Ok(None);
    }
    let msg = String::from_utf8_lossy(&out.stderr);
    let msg = msg.lines().next().unwrap_or("failed").trim();
    Ok(Some(
        msg.strip_prefix("fusermount3: ").unwrap_or(msg).to_owned(),
    ))
}

/// Whether an unmount failed because the mount is in use.
fn is_busy(msg: &str) -> bool {
    msg.ends_with(nix::errno::Errno::EBUSY.desc())
}

/// Asks server `pid` to stop its read-ahead, when it is a `uml_fs` that
/// handles [`STOP_READAHEAD`] (so the signal cannot kill a server that
/// predates it, or another process that took the pid: the checks are
/// made on the pidfd's process). True when the signal was sent.
fn stop_readahead(pid: i32) -> bool {
    let Ok(pidfd) = crate::sys::process::pidfd_open(pid) else {
        return false;
    };
    let catches = std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        u32::try_from(STOP_READAHEAD - 1)
            .is_ok_and(|bit| crate::sys::process::status_bit(&s, "SigCgt", bit))
    });
    is_uml_fs(pid)
        && catches
        && nix::sys::signal::Signal::try_from(STOP_READAHEAD)
            .is_ok_and(|sig| crate::sys::process::pidfd_send_signal(pidfd.as_fd(), sig).is_ok())
}

/// Whether process `pid` is a `uml_fs` (its command name).
fn is_uml_fs(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == "uml_fs")
}

/// `uml_fs umount DIR`: unmounts with `fusermount3 -u` and waits until the
/// server has committed the journal, marked the filesystem clean and
/// exited.
pub fn umount(dir: &Path) -> anyhow::Result<()> {
    // A mount whose server died answers ENOTCONN to stat: no canonicalize.
    let point = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let point = match point.parent().map(Path::canonicalize) {
        Some(Ok(p)) => p.join(point.file_name().unwrap_or_default()),
        _ => point,
    };
    let info = std::fs::read_to_string("/proc/self/mountinfo").context("/proc/self/mountinfo")?;
    let entry = crate::sys::mountinfo::parse(&info)
        .into_iter()
        .rev()
        .find(|m| m.point == point)
        .ok_or_else(|| anyhow!("{}: not mounted", dir.display()))?;
    // The server holds the kernel's lock on its image or COW file.
    let server = std::fs::File::open(&entry.source)
        .ok()
        .and_then(|f| crate::sys::fs::lock_holder(&f).ok().flatten());
    // Mounted by root, the server calls mount(2) itself and the kernel
    // records no subtype: then the server holding the disk says whose it is.
    let ours = entry.fstype == format!("fuse.{SUBTYPE}")
        || (entry.fstype == "fuse" && server.is_some_and(is_uml_fs));
    if !ours {
        bail!(
            "{}: not a uml_fs mount (type {})",
            dir.display(),
            entry.fstype
        );
    }
    // The server's read-ahead may be listing a directory, which makes the
    // mount busy; a server that says it catches the signal stops it.
    let stopping = server.is_some_and(stop_readahead);
    let start = Instant::now();
    loop {
        match fusermount_u(&point)? {
            None => break,
            Some(msg) if stopping && is_busy(&msg) && start.elapsed() < READAHEAD_STOP => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Some(msg) => bail!("{msg}"),
        }
    }
    if let Some(pid) = server {
        let pid = nix::unistd::Pid::from_raw(pid);
        let start = Instant::now();
        while nix::sys::signal::kill(pid, None).is_ok() {
            if start.elapsed() > UMOUNT_WAIT {
                bail!(
                    "{}: unmounted, but the server (pid {pid}) has not finished writing",
                    dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_busy_mount_is_tried_again() {
        assert!(is_busy("failed to unmount /m: Device or resource busy"));
        assert!(!is_busy("entry for /m not found in /etc/mtab"));
        assert!(!is_busy("failed to unmount /m: Invalid argument"));
    }

    #[test]
    fn a_signal_is_sent_only_to_a_uml_fs_that_catches_it() {
        let me = i32::try_from(std::process::id()).unwrap();
        let caught = |sig: i32| {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let bit = u32::try_from(sig - 1).unwrap();
            crate::sys::process::status_bit(&status, "SigCgt", bit)
        };
        assert!(!caught(libc::SIGKILL));
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        signal_hook::flag::register(libc::SIGUSR2, flag).unwrap();
        assert!(caught(libc::SIGUSR2));
        // No such process; and this test binary, which is no uml_fs (a
        // SIGUSR1 sent to it anyway would end the test run).
        assert!(!stop_readahead(i32::MAX));
        assert!(!stop_readahead(me));
    }

    #[test]
    fn options_parse_and_sharing_turns_on_permission_checks() {
        let o = parse_options(&["ro,nosuid".into(), "allow_other".into()]).unwrap();
        assert!(o.read_only);
        assert_eq!(o.acl, Acl::All);
        assert!(o.default_permissions);
        assert_eq!(o.flags, vec!["nosuid".to_string()]);
        let o = parse_options(&["ro,rw".into()]).unwrap();
        assert!(!o.read_only);
        assert!(!o.default_permissions);
        let e = parse_options(&["rw,bogus".into()]).unwrap_err().to_string();
        assert!(e.starts_with("-o bogus: unknown mount option"), "{e}");
    }

    #[test]
    fn a_source_that_cannot_be_an_option_value_is_replaced() {
        assert_eq!(fsname(Path::new("/a/b.cow")), "/a/b.cow");
        assert_eq!(fsname(Path::new("/a/b,c")), "uml_fs");
    }
}
