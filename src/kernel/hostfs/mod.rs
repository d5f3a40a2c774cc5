//! hostfs: host directories inside the guest, as UML's `hostfs` gives
//! them (`fs/hostfs/hostfs_kern.c` in Linux 6.1).
//!
//! The guest runs `mount -t hostfs none DIR [-o HOSTPATH]`; the host
//! kernel has no `hostfs`, so the guest's seccomp filter holds every
//! `mount(2)` (`kernel::guest::policy`) and the monitor answers the ones
//! whose type is `hostfs` ([`bind`]): it opens `HOSTPATH` beneath the
//! `hostfs=` root of the command line, cuts a copy of that directory's
//! mounts, and attaches the copy on `DIR` in the caller's mount namespace.
//!
//! ```text
//!   guest: mount("none", DIR, "hostfs", flags, HOSTPATH) ──held──> monitor
//!     monitor: openat2(root, HOSTPATH, RESOLVE_BENEATH)   (nothing above root)
//!              open_tree(CLONE|RECURSIVE), mount_setattr(ro, nosuid, ...)
//!     thread:  setns(caller's mnt ns), chroot(caller's root), move_mount(DIR)
//!   guest: mount() = 0   (or the errno)
//! ```
//!
//! As in UML, the path is taken relative to the root (`hostfs=DIR`, or
//! the host's `/` without it: `"%s/%s"` of the two), files keep their host
//! owners and modes, and access is the invoking user's: the guest's root
//! is that user, other host users are `nobody` (unmapped) in the guest.
//! Unlike UML, `..` and symbolic links cannot lead out of a `hostfs=`
//! root. This module is the pure part: the `hostfs=` option and the
//! mount request.
#![forbid(unsafe_code)]

pub mod bind;

use std::ffi::CString;
use std::path::PathBuf;

/// The filesystem type the guest names.
pub const FSTYPE: &[u8] = b"hostfs";

/// The `hostfs=ROOT,FLAGS` kernel option.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The directory every hostfs mount is confined to; `None`: the
    /// host's `/`, unconfined.
    pub root: Option<PathBuf>,
    /// `append`: UML opens files for appending only. Accepted and
    /// without effect here (a bind mount has no such mode).
    pub append: bool,
}

impl Config {
    /// Parses the option's value as `hostfs_args` does: the first
    /// comma-separated item is the root (empty: none), the others flags;
    /// returns the boot-log lines for flags it does not know.
    pub fn parse(value: Option<&str>) -> (Config, Vec<String>) {
        let mut config = Config::default();
        let mut lines = Vec::new();
        let Some(value) = value else {
            return (config, lines);
        };
        let mut items = value.split(',');
        if let Some(root) = items.next().filter(|r| !r.is_empty()) {
            config.root = Some(PathBuf::from(root));
        }
        for item in items.filter(|i| !i.is_empty()) {
            if item == "append" {
                config.append = true;
            } else {
                lines.push(format!("hostfs_args - unsupported option - {item}"));
            }
        }
        (config, lines)
    }
}

/// The per-mount flags a hostfs mount takes from `mount(2)`'s flags
/// (`MS_RDONLY`, `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC`), as
/// `sys::mount::ATTR_*` bits; `None` for flags that make it something
/// other than a new mount (bind, move, remount, propagation changes).
pub fn tree_flags(flags: u64) -> Option<u64> {
    use crate::sys::mount::{ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY};
    const MGC_MSK: u64 = 0xffff_0000;
    const MGC_VAL: u64 = 0xc0ed_0000;
    let flags = if flags & MGC_MSK == MGC_VAL {
        flags & !MGC_MSK
    } else {
        flags
    };
    let other = libc::MS_REMOUNT
        | libc::MS_BIND
        | libc::MS_MOVE
        | libc::MS_SHARED
        | libc::MS_PRIVATE
        | libc::MS_SLAVE
        | libc::MS_UNBINDABLE;
    if flags & other != 0 {
        return None;
    }
    let mut set = 0;
    for (ms, attr) in [
        (libc::MS_RDONLY, ATTR_RDONLY),
        (libc::MS_NOSUID, ATTR_NOSUID),
        (libc::MS_NODEV, ATTR_NODEV),
        (libc::MS_NOEXEC, ATTR_NOEXEC),
    ] {
        if flags & ms != 0 {
            set |= attr;
        }
    }
    Some(set)
}

/// The host path a mount asks for, relative to the root: the mount's data
/// (`-o HOSTPATH`) without its leading slashes, `.` when empty or absent
/// (UML joins root and request with a `/`, so both spellings name the
/// same directory). `ENAMETOOLONG` past `PATH_MAX`.
pub fn request_path(data: Option<&[u8]>) -> Result<CString, i32> {
    let data = data.unwrap_or_default();
    if data.len() >= 4096 {
        return Err(libc::ENAMETOOLONG);
    }
    let start = data.iter().position(|&b| b != b'/').unwrap_or(data.len());
    let rel = &data[start..];
    let rel = if rel.is_empty() { &b"."[..] } else { rel };
    CString::new(rel).map_err(|_| libc::EINVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_a_root_then_flags() {
        assert_eq!(Config::parse(None), (Config::default(), vec![]));
        let (c, l) = Config::parse(Some("/srv/lab"));
        assert_eq!(c.root, Some(PathBuf::from("/srv/lab")));
        assert!(l.is_empty());
        let (c, l) = Config::parse(Some(",append,bogus"));
        assert_eq!(c.root, None);
        assert!(c.append);
        assert_eq!(l, vec!["hostfs_args - unsupported option - bogus"]);
    }

    #[test]
    fn requests_are_relative_to_the_root() {
        assert_eq!(request_path(None).unwrap().as_bytes(), b".");
        assert_eq!(request_path(Some(b"//")).unwrap().as_bytes(), b".");
        assert_eq!(
            request_path(Some(b"/home/u")).unwrap().as_bytes(),
            b"home/u"
        );
        assert_eq!(request_path(Some(b"../x")).unwrap().as_bytes(), b"../x");
        assert_eq!(request_path(Some(&[b'a'; 5000])), Err(libc::ENAMETOOLONG));
    }

    #[test]
    fn only_plain_mounts_with_per_mount_flags_are_hostfs_mounts() {
        use crate::sys::mount::{ATTR_NOSUID, ATTR_RDONLY};
        assert_eq!(tree_flags(0), Some(0));
        assert_eq!(
            tree_flags(0xc0ed_0000 | libc::MS_RDONLY | libc::MS_NOSUID),
            Some(ATTR_RDONLY | ATTR_NOSUID)
        );
        assert_eq!(tree_flags(libc::MS_REMOUNT | libc::MS_RDONLY), None);
        assert_eq!(tree_flags(libc::MS_BIND), None);
    }
}
