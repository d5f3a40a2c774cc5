//! The guest's disks: every `ubdN=` opened through `src/cow` with the
//! kernel's rules (COW created if missing, size and mtime checked, locked,
//! the backing file only read), and the root filesystem found on the unit
//! `root=` names. Failures print what Linux 6.1 prints (spec
//! kernel-cmdline.md §2.3, §2.4) and end in the root-mount panic.

pub mod durable;
pub mod fuse;
pub mod fuse_attr;
pub mod fuse_hot;
pub mod readahead;
pub mod remount;
pub mod ubddev;

use super::cmdline::ubd::{letter, UbdConfig, MAX_DEV};
use super::cmdline::{root_unit, CmdLine};
use crate::block::BlockDevice;
use crate::cow::{open_disk, CowError, Disk, DiskOptions};
use crate::ext3::features::Incompat;
use crate::ext3::superblock::{
    EXT2_MAGIC, STATE_ERROR, STATE_VALID, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE,
};
use crate::ext3::write::{WriteOptions, Writer};
use crate::ext3::Ext3;
use crate::ext3::ReadOnly;
use crate::fs::InodeFs;
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

/// The journaling writer of a root on a writable disk, told of the
/// guest's remounts (see [`remount`]).
pub type RootWriter = Arc<Writer<Arc<Disk>>>;

/// The root filesystem as served, with what the boot log says about it.
pub struct Root {
    /// The filesystem the FUSE server serves.
    pub fs: Arc<dyn InodeFs>,
    /// Whether the server accepts writes (the journaling writer is open);
    /// whether the guest may write is the host mount's flag.
    pub writable: bool,
    /// Mounted read-only (`ro`, the default): the FUSE mount gets
    /// MS_RDONLY and the guest's `mount -o remount,rw /` lifts it.
    pub read_only: bool,
    /// The writer, when [`Root::writable`].
    pub writer: Option<RootWriter>,
    /// Every change committed before it is answered (the ubd `s` flag).
    pub sync: bool,
    /// Boot-log lines (journal recovery, mount, read-only notice).
    pub lines: Vec<String>,
    /// The units with a disk (the root's included), for `/dev/ubdX`.
    pub units: Vec<usize>,
    /// What `e2fsck -p` would decide for the root after journal recovery:
    /// its summary line when clean, else why it needs a full check.
    pub check: Result<String, FullCheck>,
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
/// FUSE server: on a writable disk through the journaling writer, with
/// `rw` or `ro` alike (a journal that needs recovery is replayed into the
/// disk, as Linux does at mount, also of a read-only mount of a writable
/// device; for a COW view the replay lands in the COW), otherwise
/// read-only (a journal is replayed in memory). `ro` is the host mount's
/// flag, which the guest may lift with a remount.
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
    let read_only = !cmd.read_write;
    let (mut fs, writer) = root_fs(&dev, disk.clone(), disk_writable, read_only, &mut lines)?;
    let writable = writer.is_some();
    let sync = cmd.ubd_sync_all
        || cmd
            .disks
            .get(unit)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.sync);
    if sync && writable {
        fs = Arc::new(durable::Synchronous(fs));
    }
    let mode = if writable && !read_only {
        ""
    } else {
        " readonly"
    };
    lines.push(format!(
        "VFS: Mounted root ({kind} filesystem){mode} on device 98:{}.",
        unit * 16
    ));
    let mut raw = vec![0u8; SUPERBLOCK_SIZE];
    let check = match disk.read_exact_at(SUPERBLOCK_OFFSET, &mut raw) {
        Ok(()) => preen(&raw, now_secs(), writable),
        Err(e) => Err(FullCheck::Unreadable(Arc::new(e))),
    };
    Ok(Root {
        fs,
        writable,
        read_only: read_only || !writable,
        writer,
        sync,
        lines,
        units: vec![unit],
        check,
    })
}

/// The one place that decides how the root is served: the journaling
/// writer when the disk is writable and the writer can keep the filesystem
/// consistent, else the reader. A filesystem the writer refuses (ext4
/// features) is served read-only, and the boot log says why. The writer
/// keeps the kernel's mount accounting for `/`; opened for a read-only
/// mount it writes nothing unless recovery needs it.
fn root_fs(
    dev: &str,
    disk: Arc<Disk>,
    disk_writable: bool,
    read_only: bool,
    lines: &mut Vec<String>,
) -> Result<(Arc<dyn InodeFs>, Option<RootWriter>), RootFailure> {
    if disk_writable {
        let opts = WriteOptions {
            mount_point: Some(b"/".to_vec()),
            read_only,
            ..WriteOptions::default()
        };
        match Writer::open(disk.clone(), opts) {
            Ok(writer) => {
                if let Some(r) = writer.replay_report() {
                    lines.push(format!(
                        "EXT4-fs ({dev}): recovery complete ({} transactions, {} blocks)",
                        r.transactions, r.blocks
                    ));
                }
                let writer = Arc::new(writer);
                return Ok((writer.clone(), Some(writer)));
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
    Ok((Arc::new(ReadOnly::new(fs)), None))
}

/// Why `e2fsck -p` would check the root fully (its texts).
#[derive(Debug, Clone, thiserror::Error)]
pub enum FullCheck {
    /// No ext2 magic.
    #[error("no ext2/3/4 superblock")]
    NoSuperblock,
    /// A journal to recover on a disk that cannot be written.
    #[error("needs journal recovery, and the disk is read-only")]
    NeedsRecovery,
    /// The error state is set.
    #[error("contains a file system with errors")]
    Errors,
    /// The valid state is not set.
    #[error("was not cleanly unmounted")]
    NotClean,
    /// The maximal mount count was reached.
    #[error("has been mounted {0} times without being checked")]
    MountCount(u16),
    /// The last check lies after now.
    #[error("has filesystem last checked time in the future")]
    CheckedInFuture,
    /// The check interval passed, in whole days since the last check.
    #[error("has gone {0} days without being checked")]
    Interval(u32),
    /// The superblock could not be read.
    #[error("cannot read the superblock: {0}")]
    Unreadable(#[source] Arc<std::io::Error>),
}

/// What `e2fsck -p` decides for a filesystem whose superblock is `sb`
/// (1024 bytes) at time `now`, after its journal was recovered when
/// `recovered` (e2fsck/unix.c, `check_if_skip`): `Ok` with its summary
/// line ("clean, 11/65536 files, 1234/262144 blocks") when no full check
/// is due, else why one is.
pub fn preen(sb: &[u8], now: u32, recovered: bool) -> Result<String, FullCheck> {
    let le16 = |o: usize| u16::from_le_bytes([sb[o], sb[o + 1]]);
    let le32 = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
    if sb.len() < SUPERBLOCK_SIZE || le16(0x38) != EXT2_MAGIC {
        return Err(FullCheck::NoSuperblock);
    }
    let state = le16(0x3A);
    let (mnt_count, max_mnt_count) = (le16(0x34), le16(0x36) as i16);
    let (lastcheck, interval) = (le32(0x40), le32(0x44));
    let needs_recovery = le32(0x60) & Incompat::RECOVER != 0;
    if needs_recovery && !recovered {
        return Err(FullCheck::NeedsRecovery);
    }
    if state & STATE_ERROR != 0 {
        return Err(FullCheck::Errors);
    }
    if state & STATE_VALID == 0 {
        return Err(FullCheck::NotClean);
    }
    if max_mnt_count > 0 && mnt_count >= max_mnt_count.unsigned_abs() {
        return Err(FullCheck::MountCount(mnt_count));
    }
    if interval != 0 && now < lastcheck {
        return Err(FullCheck::CheckedInFuture);
    }
    if interval != 0 && now - lastcheck >= interval {
        return Err(FullCheck::Interval((now - lastcheck) / 86_400));
    }
    let (inodes, free_inodes) = (le32(0x00), le32(0x10));
    let (blocks, free_blocks) = (le32(0x04), le32(0x0C));
    Ok(format!(
        "clean, {}/{inodes} files, {}/{blocks} blocks",
        inodes.saturating_sub(free_inodes),
        blocks.saturating_sub(free_blocks)
    ))
}

fn now_secs() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// The units that have a disk: the root's and every other that opened.
pub fn present_units(disks: &Disks, root: usize) -> Vec<usize> {
    (0..MAX_DEV)
        .filter(|&n| n == root || disks.units.get(n).is_some_and(Option::is_some))
        .collect()
}

/// What `config ubdN` shows for every unit: for a COW file, the kernel
/// replaces the backing file given with the one the COW header names
/// (stored absolute), so the answer is `COW,/absolute/backing`.
pub fn config_strings(cmd: &CmdLine, disks: &Disks) -> Vec<String> {
    (0..MAX_DEV)
        .map(|n| {
            let header = disks
                .units
                .get(n)
                .and_then(Option::as_ref)
                .and_then(|d| d.as_cow())
                .map(|c| c.header());
            let file = cmd.disks.get(n).and_then(Option::as_ref).map(|c| &c.file);
            match (header, file) {
                (Some(h), Some(file)) => {
                    format!("{file},{}", String::from_utf8_lossy(&h.backing_file))
                }
                _ => config_string(cmd, n),
            }
        })
        .collect()
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

    fn superblock(state: u16, mnt: u16, max: i16) -> Vec<u8> {
        let mut sb = vec![0u8; SUPERBLOCK_SIZE];
        sb[0x00..0x04].copy_from_slice(&65536u32.to_le_bytes());
        sb[0x04..0x08].copy_from_slice(&262_144u32.to_le_bytes());
        sb[0x0C..0x10].copy_from_slice(&200_000u32.to_le_bytes());
        sb[0x10..0x14].copy_from_slice(&60_000u32.to_le_bytes());
        sb[0x34..0x36].copy_from_slice(&mnt.to_le_bytes());
        sb[0x36..0x38].copy_from_slice(&max.to_le_bytes());
        sb[0x38..0x3A].copy_from_slice(&EXT2_MAGIC.to_le_bytes());
        sb[0x3A..0x3C].copy_from_slice(&state.to_le_bytes());
        sb
    }

    #[test]
    fn a_clean_root_is_clean_with_e2fscks_summary_and_a_dirty_one_says_why() {
        assert_eq!(
            preen(&superblock(STATE_VALID, 3, -1), 1000, true)
                .ok()
                .as_deref(),
            Some("clean, 5536/65536 files, 62144/262144 blocks")
        );
        assert_eq!(
            preen(&superblock(0, 3, -1), 1000, true).map_err(|e| e.to_string()),
            Err("was not cleanly unmounted".into())
        );
        assert_eq!(
            preen(&superblock(STATE_VALID | STATE_ERROR, 3, -1), 1000, true)
                .map_err(|e| e.to_string()),
            Err("contains a file system with errors".into())
        );
        assert_eq!(
            preen(&superblock(STATE_VALID, 20, 20), 1000, true).map_err(|e| e.to_string()),
            Err("has been mounted 20 times without being checked".into())
        );
        let mut sb = superblock(STATE_VALID, 1, -1);
        sb[0x44..0x48].copy_from_slice(&(86_400u32 * 10).to_le_bytes());
        assert!(preen(&sb, 86_400 * 11, true)
            .unwrap_err()
            .to_string()
            .contains("11 days"));
        assert!(preen(&sb, 86_400 * 9, true).is_ok());
        let mut sb = superblock(STATE_VALID, 1, -1);
        sb[0x60..0x64].copy_from_slice(&Incompat::RECOVER.to_le_bytes());
        assert!(preen(&sb, 1, false).is_err());
        assert!(preen(&sb, 1, true).is_ok());
        assert!(preen(&[0u8; SUPERBLOCK_SIZE], 1, true).is_err());
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
