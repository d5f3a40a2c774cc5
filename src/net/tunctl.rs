//! What `tunctl` does once its arguments are parsed (spec §1.3): open the
//! clone device, attach to (or create) a TAP interface, then either make it
//! persistent with an owner and group, or non-persistent (which deletes it).
//!
//! The original's silent failures are errors here: names longer than 15
//! bytes, `-d` on a device that does not exist, and names taken by a
//! device that is not a TAP.

use super::tap::{Mode, Tap, TapError, CLONE_DEVICE};
use crate::sys::net::{self as sysnet, strerror, IFNAMSIZ};
use std::io::{self, Write};
use std::path::PathBuf;
use thiserror::Error;

/// The default TUN/TAP clone device.
pub const DEFAULT_CLONE: &str = CLONE_DEVICE;

/// What `tunctl` was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunctlArgs {
    /// `-b`: print only the interface name.
    pub brief: bool,
    /// `-d`: make the device non-persistent (delete it).
    pub delete: bool,
    /// `-t`/`-d`: the interface name (may hold a `%d` template); empty lets
    /// the kernel choose.
    pub name: Vec<u8>,
    /// `-f`: the clone device.
    pub clone: PathBuf,
    /// `-u`: the owning user.
    pub owner: Option<u32>,
    /// `-g`: the owning group.
    pub group: Option<u32>,
}

/// Why `tunctl` failed.
#[derive(Debug, Error)]
pub enum TunctlError {
    /// The clone device could not be opened.
    #[error("Failed to open '{}' : {}{}", path.display(), strerror(err), open_hint(err))]
    Open {
        /// The clone device path.
        path: PathBuf,
        /// The OS error (part of the message, not a separate cause).
        err: io::Error,
    },
    /// The requested name does not fit in `IFNAMSIZ` (the original
    /// truncated it silently).
    #[error("interface name '{name}' is too long (at most {} bytes)", IFNAMSIZ - 1)]
    NameTooLong {
        /// The name as given.
        name: String,
    },
    /// The name is taken by an interface that is not a TAP device.
    #[error("'{name}' exists and is not a TAP device")]
    NotTap {
        /// The interface name.
        name: String,
    },
    /// `-d` named an interface that does not exist.
    #[error("cannot delete '{name}': no such network interface")]
    NoSuchDevice {
        /// The interface name.
        name: String,
    },
    /// One of the TUN ioctls failed; `op` is the original's perror prefix.
    #[error("{op}: {}{}", strerror(err), ioctl_hint(err))]
    Ioctl {
        /// `TUNSETIFF`, `TUNSETOWNER`, `TUNSETGROUP`, `enabling TUNSETPERSIST`...
        op: &'static str,
        /// The OS error (part of the message, not a separate cause).
        err: io::Error,
    },
    /// Writing the result failed.
    #[error("writing output: {}", strerror(.0))]
    Output(io::Error),
}

fn open_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
            " (no TUN/TAP clone device there: is the tun module available?)"
        }
        Some(libc::EACCES) | Some(libc::EPERM) => " (root or CAP_NET_ADMIN is needed)",
        _ => "",
    }
}

fn ioctl_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => " (root or CAP_NET_ADMIN is needed)",
        Some(libc::EBUSY) => " (the device is in use by another process)",
        _ => "",
    }
}

fn name_str(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// Runs `tunctl` with parsed `args`, writing the original's success line to
/// `out`.
pub fn run(args: &TunctlArgs, out: &mut dyn Write) -> Result<(), TunctlError> {
    let wanted = name_str(&args.name);
    if args.name.len() >= IFNAMSIZ {
        return Err(TunctlError::NameTooLong { name: wanted });
    }
    if args.delete && sysnet::if_index(&wanted).is_none() {
        return Err(TunctlError::NoSuchDevice { name: wanted });
    }
    let tap = match Tap::open_via(&args.clone, &args.name, Mode::Blocking) {
        Ok(t) => t,
        Err(TapError::Open { path, err }) => return Err(TunctlError::Open { path, err }),
        Err(TapError::Attach { err })
            if err.raw_os_error() == Some(libc::EINVAL) && sysnet::if_index(&wanted).is_some() =>
        {
            return Err(TunctlError::NotTap { name: wanted })
        }
        Err(TapError::Attach { err }) => {
            return Err(TunctlError::Ioctl {
                op: "TUNSETIFF",
                err,
            })
        }
    };
    let ifname = tap.name();
    let line = if args.delete {
        tap.set_persist(false).map_err(|err| TunctlError::Ioctl {
            op: "disabling TUNSETPERSIST",
            err,
        })?;
        format!("Set '{ifname}' nonpersistent\n")
    } else {
        // As the original: with neither -u nor -g the effective uid owns it.
        let owner = match (args.owner, args.group) {
            (None, None) => Some(nix::unistd::geteuid().as_raw()),
            (o, _) => o,
        };
        if let Some(uid) = owner {
            tap.set_owner(uid).map_err(|err| TunctlError::Ioctl {
                op: "TUNSETOWNER",
                err,
            })?;
        }
        if let Some(gid) = args.group {
            tap.set_group(gid).map_err(|err| TunctlError::Ioctl {
                op: "TUNSETGROUP",
                err,
            })?;
        }
        tap.set_persist(true).map_err(|err| TunctlError::Ioctl {
            op: "enabling TUNSETPERSIST",
            err,
        })?;
        if args.brief {
            format!("{ifname}\n")
        } else {
            let mut s = format!("Set '{ifname}' persistent and owned by");
            if let Some(uid) = owner {
                s.push_str(&format!(" uid {uid}"));
            }
            if let Some(gid) = args.group {
                s.push_str(&format!(" gid {gid}"));
            }
            s.push('\n');
            s
        }
    };
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .map_err(TunctlError::Output)
}
