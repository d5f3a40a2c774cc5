//! The guest's disks: every `ubdN=` opened through `src/cow` with the
//! kernel's rules (COW created if missing, size and mtime checked, locked,
//! the backing file only read), and the root filesystem found on the unit
//! `root=` names. Failures print what Linux 6.1 prints (spec
//! kernel-cmdline.md §2.3, §2.4) and end in the root-mount panic.

use super::cmdline::{root_unit, CmdLine};
use super::ubd::{letter, UbdConfig, MAX_DEV};
use crate::cow::{open_disk, CowError, Disk, DiskOptions};
use crate::ext3::write::{WriteOptions, Writer};
use crate::ext3::Ext3;
use crate::vfs::{InodeFs, ReadOnly};
use std::io::ErrorKind;
use std::sync::Arc;

/// The panic that ends a failed root mount, with the lines before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFailure {
    /// Console lines before the panic.
    pub lines: Vec<String>,
    /// The panic message.
    pub panic: String,
}

/// The root filesystem as served, with what the boot log says about it.
pub struct Root {
    /// The filesystem the FUSE server serves.
    pub fs: Arc<dyn InodeFs>,
    /// Whether it accepts writes.
    pub writable: bool,
    /// Every change committed before it is answered (the ubd `s` flag).
    pub sync: bool,
    /// Boot-log lines (journal recovery, mount, read-only notice).
    pub lines: Vec<String>,
}

/// The opened disks and what opening them printed.
pub struct Disks {
    /// Disks by unit (those that opened).
    pub units: Vec<Option<Disk>>,
    /// Boot-log lines, in order.
    pub lines: Vec<String>,
    /// Per unit, the errno of a failed open (ENODEV when the disk could
    /// not be made at all).
    pub errors: Vec<Option<i32>>,
}

fn default_root_fs() -> UbdConfig {
    UbdConfig {
        file: "root_fs".into(),
        ..UbdConfig::default()
    }
}

/// Opens every configured disk; unit 0 defaults to `root_fs`.
pub fn open_all(cmd: &CmdLine) -> Disks {
    let mut units = Vec::with_capacity(MAX_DEV);
    let mut lines = Vec::new();
    let mut errors = vec![None; MAX_DEV];
    for (n, cfg) in cmd.disks.iter().enumerate() {
        let cfg = match (n, cfg) {
            (_, Some(c)) => c.clone(),
            (0, None) => default_root_fs(),
            _ => {
                units.push(None);
                continue;
            }
        };
        let disk = open_one(n, &cfg, &mut lines);
        if let Err(e) = &disk {
            errors[n] = Some(errno_of(e));
        }
        units.push(disk.ok());
    }
    Disks {
        units,
        lines,
        errors,
    }
}

/// The errno the kernel reports for a failed open: ENODEV (-6 at the root
/// mount) when the disk could not be made, else the open's error.
fn errno_of(e: &CowError) -> i32 {
    match e {
        CowError::InUse { .. } => libc::EAGAIN,
        CowError::SizeMismatch { .. } | CowError::MtimeMismatch { .. } => libc::EINVAL,
        _ => libc::ENXIO,
    }
}

fn open_one(n: usize, cfg: &UbdConfig, lines: &mut Vec<String>) -> Result<Disk, CowError> {
    let spec = cfg.spec();
    let creating = cfg.backing.is_some() && std::fs::symlink_metadata(&cfg.file).is_err();
    let mut opts = DiskOptions {
        writable: !cfg.read_only,
        create_cow: true,
        shared: cfg.shared,
        ..DiskOptions::default()
    };
    if cfg.shared {
        lines.push(format!("Not locking \"{}\" on the host", cfg.file));
    }
    let mut result = open_disk(&spec, &opts);
    // A file refused for writing is silently reopened read-only (§2.3).
    if let Err(CowError::Io { source, .. }) = &result {
        if matches!(
            source.raw_os_error(),
            Some(libc::EACCES) | Some(libc::EROFS)
        ) && opts.writable
        {
            opts.writable = false;
            result = open_disk(&spec, &opts);
        }
    }
    match result {
        Ok(disk) => {
            if creating {
                if let Some(b) = &cfg.backing {
                    lines.push(format!(
                        "Creating \"{}\" as COW file for \"{}\"",
                        cfg.file, b
                    ));
                }
            }
            Ok(disk)
        }
        Err(e) => {
            lines.extend(failure_lines(n, cfg, &e));
            Err(e)
        }
    }
}

/// What the kernel prints when unit `n` fails to open with `e`.
pub fn failure_lines(n: usize, cfg: &UbdConfig, e: &CowError) -> Vec<String> {
    let file = &cfg.file;
    let l = letter(n);
    match e {
        CowError::InUse { path, pid } => vec![
            format!(
                "F_SETLK failed, file already locked by pid {}",
                pid.map_or("?".to_string(), |p| p.to_string())
            ),
            format!("Failed to lock '{}', err = 11", path.display()),
            format!("Failed to open '{file}', errno = 11"),
            format!("ubd{l}: Can't open \"{file}\": errno = 11"),
        ],
        CowError::SizeMismatch { .. } | CowError::MtimeMismatch { .. } => vec![
            e.to_string(),
            format!("Failed to open '{file}', errno = 22"),
            format!("ubd{l}: Can't open \"{file}\": errno = 22"),
        ],
        CowError::Io { path, source, .. } if source.kind() == ErrorKind::NotFound => vec![
            format!("Couldn't stat \"{}\" : err = 2", path.display()),
            format!(
                "Failed to initialize ubd device {n} :Couldn't determine size of device's file"
            ),
        ],
        other => vec![format!("ubd{l}: Can't open \"{file}\": {other}")],
    }
}

fn root_name(root: &str) -> String {
    root.strip_prefix("/dev/").unwrap_or(root).to_string()
}

fn unknown_block(root: &str) -> String {
    match root_unit(root) {
        Some(u) => format!("unknown-block(98,{})", u * 16),
        None => "unknown-block(0,0)".to_string(),
    }
}

fn cannot_open(root: &str, error: i32, exists: bool) -> RootFailure {
    let block = if exists {
        unknown_block(root)
    } else {
        "unknown-block(0,0)".to_string()
    };
    RootFailure {
        lines: vec![
            format!(
                "VFS: Cannot open root device \"{}\" or {block}: error -{error}",
                root_name(root)
            ),
            "Please append a correct \"root=\" boot option; here are the available partitions:"
                .to_string(),
        ],
        panic: format!("VFS: Unable to mount root fs on {block}"),
    }
}

/// Checks, before any disk is opened (so no COW is created for nothing),
/// that `root=` names a unit that is configured (unit 0 always is).
pub fn precheck_root(cmd: &CmdLine) -> Result<(), RootFailure> {
    match root_unit(&cmd.root) {
        Some(0) => Ok(()),
        Some(u) if cmd.disks[u].is_some() => Ok(()),
        _ => Err(cannot_open(&cmd.root, libc::ENXIO, false)),
    }
}

/// Takes the root disk out of `disks`, or the failure the kernel reports
/// (spec §2.4): a disk that could not be made is error -6 on
/// unknown-block(0,0); a locked one -11; a header mismatch (EINVAL) is
/// "Can't open blockdev" and no filesystem.
pub fn take_root(cmd: &CmdLine, disks: &mut Disks) -> Result<(usize, Disk), RootFailure> {
    let Some(unit) = root_unit(&cmd.root) else {
        return Err(cannot_open(&cmd.root, libc::ENXIO, false));
    };
    if let Some(d) = disks.units.get_mut(unit).and_then(Option::take) {
        return Ok((unit, d));
    }
    match disks.errors.get(unit).copied().flatten() {
        Some(libc::EAGAIN) => Err(cannot_open(&cmd.root, libc::EAGAIN, true)),
        Some(libc::EINVAL) => Err(RootFailure {
            lines: vec![
                "/dev/root: Can't open blockdev".to_string(),
                "No filesystem could mount root, tried: ".to_string(),
            ],
            panic: format!(
                "VFS: Unable to mount root fs on {}",
                unknown_block(&cmd.root)
            ),
        }),
        _ => Err(cannot_open(&cmd.root, libc::ENXIO, false)),
    }
}

/// Opens the ext2/3/4 filesystem of the root disk and wraps it for the
/// FUSE server: with `rw` on a writable disk through the journaling writer
/// (a journal that needs recovery is replayed into the disk, as Linux does
/// at mount; for a COW view the replay lands in the COW), otherwise
/// read-only (a journal is replayed in memory).
pub fn mount_root(cmd: &CmdLine, unit: usize, disk: Disk) -> Result<Root, RootFailure> {
    let dev = format!("ubd{}", letter(unit));
    let disk_writable = match &disk {
        Disk::Plain(d) => d.is_writable(),
        Disk::Cow(c) => c.cow_file().is_writable(),
    };
    let disk = Arc::new(disk);
    let kind = match Ext3::open(disk.clone()) {
        Ok(fs) if fs.superblock().has_journal() => "ext3",
        Ok(_) => "ext2",
        Err(e) => {
            let block = unknown_block(&cmd.root);
            return Err(RootFailure {
                lines: vec![
                    format!("umlkit ext3 ({dev}): {e}"),
                    "No filesystem could mount root, tried: ".to_string(),
                    " ext3".to_string(),
                    " ext4".to_string(),
                    " ext2".to_string(),
                    String::new(),
                ],
                panic: format!("VFS: Unable to mount root fs on {block}"),
            });
        }
    };
    let mut lines = Vec::new();
    let (mut fs, writable) = root_fs(&dev, disk, cmd.read_write && disk_writable, &mut lines)?;
    let sync = cmd.ubd_sync_all
        || cmd
            .disks
            .get(unit)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.sync);
    if sync && writable {
        fs = Arc::new(super::durable::Synchronous(fs));
    }
    let mode = if writable { "" } else { " readonly" };
    lines.push(format!(
        "VFS: Mounted root ({kind} filesystem){mode} on device 98:{}.",
        unit * 16
    ));
    Ok(Root {
        fs,
        writable,
        sync,
        lines,
    })
}

/// The one place that decides how the root is served: the journaling
/// writer when writes are wanted and it can keep the filesystem consistent,
/// else the reader. A filesystem the writer refuses (ext4 features) is
/// served read-only, and the boot log says why.
fn root_fs(
    dev: &str,
    disk: Arc<Disk>,
    want_rw: bool,
    lines: &mut Vec<String>,
) -> Result<(Arc<dyn InodeFs>, bool), RootFailure> {
    if want_rw {
        match Writer::open(disk.clone(), WriteOptions::default()) {
            Ok(writer) => {
                if let Some(r) = writer.replay_report() {
                    lines.push(format!(
                        "EXT4-fs ({dev}): recovery complete ({} transactions, {} blocks)",
                        r.transactions, r.blocks
                    ));
                }
                return Ok((Arc::new(writer), true));
            }
            Err(e) => lines.push(format!("EXT4-fs ({dev}): root served read-only: {e}")),
        }
    }
    let fs = Ext3::open(disk).map_err(|e| RootFailure {
        lines: vec![format!("umlkit ext3 ({dev}): {e}")],
        panic: "VFS: Unable to mount root fs".to_string(),
    })?;
    if let Some(r) = fs.replay_report() {
        lines.push(format!(
            "EXT4-fs ({dev}): recovery complete in memory ({} transactions, {} blocks); the disk is not written",
            r.transactions, r.blocks
        ));
    }
    Ok((Arc::new(ReadOnly::new(fs)), false))
}

/// The device string of a configured unit, as `config ubdN` shows it.
pub fn config_string(cmd: &CmdLine, unit: usize) -> String {
    match cmd.disks.get(unit).and_then(Option::as_ref) {
        Some(c) => c.spec(),
        None if unit == 0 => "root_fs".to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::cmdline::{parse, Invocation};

    fn cmd(args: &[&str]) -> CmdLine {
        match parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap() {
            Invocation::Boot(c) => *c,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_root_naming_no_device_is_the_kernels_error_6_panic() {
        let c = cmd(&["root=/dev/sda1"]);
        let mut d = Disks {
            units: (0..MAX_DEV).map(|_| None).collect(),
            lines: vec![],
            errors: vec![None; MAX_DEV],
        };
        let f = take_root(&c, &mut d).unwrap_err();
        assert_eq!(
            f.lines[0],
            "VFS: Cannot open root device \"sda1\" or unknown-block(0,0): error -6"
        );
        assert_eq!(
            f.panic,
            "VFS: Unable to mount root fs on unknown-block(0,0)"
        );
    }

    #[test]
    fn a_locked_root_is_error_11_on_98_0() {
        let c = cmd(&["root=98:0"]);
        let cfg = UbdConfig {
            file: "lock.cow".into(),
            ..UbdConfig::default()
        };
        let lines = failure_lines(
            0,
            &cfg,
            &CowError::InUse {
                path: "lock.cow".into(),
                pid: Some(20304),
            },
        );
        assert_eq!(lines[0], "F_SETLK failed, file already locked by pid 20304");
        assert_eq!(lines[0], "F_SETLK failed, file already locked by pid 20304");
        let mut errors = vec![None; MAX_DEV];
        errors[0] = Some(libc::EAGAIN);
        let mut d = Disks {
            units: (0..MAX_DEV).map(|_| None).collect(),
            lines,
            errors,
        };
        let f = take_root(&c, &mut d).unwrap_err();
        assert!(
            f.lines[0].ends_with("unknown-block(98,0): error -11"),
            "{:?}",
            f.lines
        );
    }
}
