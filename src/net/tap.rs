//! TAP devices: the one place that opens the TUN/TAP clone device and
//! attaches the descriptor to a TAP interface (`TUNSETIFF` with
//! `IFF_TAP | IFF_NO_PI`), creating the interface when it does not exist
//! and the caller may. `tunctl`, `uml_net`, the switch's `-tap` uplink and
//! the guest kernel's `eth<N>=` devices all come through here; the ioctls
//! themselves are `sys::net`'s.

use crate::sys::net::{self as sysnet, strerror, IFF_NO_PI, IFF_TAP, IFNAMSIZ};
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The TUN/TAP clone device.
pub const CLONE_DEVICE: &str = "/dev/net/tun";

/// Whether reads and writes on the descriptor may block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Blocking: for a descriptor handed to another program (`uml_net`
    /// passes it to the kernel) or only used for ioctls (`tunctl`).
    Blocking,
    /// `O_NONBLOCK`: for a relay or the switch, which poll.
    NonBlocking,
}

/// Why a TAP could not be opened.
#[derive(Debug, Error)]
pub enum TapError {
    /// The clone device could not be opened.
    #[error("opening '{}': {}", path.display(), strerror(err))]
    Open {
        /// The clone device.
        path: PathBuf,
        /// The OS error.
        err: io::Error,
    },
    /// `TUNSETIFF` refused the name (taken by a device that is not a TAP:
    /// `EINVAL`; no right to create or attach: `EPERM`; a name too long or
    /// holding a NUL: `InvalidInput`).
    #[error("TUNSETIFF: {}", strerror(err))]
    Attach {
        /// The OS error.
        err: io::Error,
    },
}

impl TapError {
    /// The OS error under either step.
    pub fn os_error(&self) -> &io::Error {
        match self {
            TapError::Open { err, .. } | TapError::Attach { err } => err,
        }
    }

    /// The OS error under either step, by value.
    pub fn into_os_error(self) -> io::Error {
        match self {
            TapError::Open { err, .. } | TapError::Attach { err } => err,
        }
    }
}

/// An open descriptor attached to a TAP interface. Unless made persistent,
/// the interface lives as long as the descriptor.
#[derive(Debug)]
pub struct Tap {
    fd: OwnedFd,
    name: String,
}

impl Tap {
    /// Opens [`CLONE_DEVICE`] and attaches to TAP `name`; an empty name lets
    /// the kernel choose one (`tapN`), and a `%d` in it is a template.
    pub fn open(name: &[u8], mode: Mode) -> Result<Tap, TapError> {
        Tap::open_via(Path::new(CLONE_DEVICE), name, mode)
    }

    /// [`Tap::open`] through another clone device (`tunctl -f`).
    pub fn open_via(clone: &Path, name: &[u8], mode: Mode) -> Result<Tap, TapError> {
        let flags = match mode {
            Mode::Blocking => 0,
            Mode::NonBlocking => libc::O_NONBLOCK,
        };
        // std opens with O_CLOEXEC.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(clone)
            .map_err(|err| TapError::Open {
                path: clone.into(),
                err,
            })?;
        let got = sysnet::tun_set_iff(file.as_fd(), name, IFF_TAP | IFF_NO_PI)
            .map_err(|err| TapError::Attach { err })?;
        let len = got.iter().position(|&b| b == 0).unwrap_or(IFNAMSIZ);
        Ok(Tap {
            fd: OwnedFd::from(file),
            name: String::from_utf8_lossy(&got[..len]).into_owned(),
        })
    }

    /// The interface's name, as the kernel reports it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `TUNSETOWNER`: the user allowed to attach to the device.
    pub fn set_owner(&self, uid: u32) -> io::Result<()> {
        sysnet::tun_set_owner(self.fd.as_fd(), uid)
    }

    /// `TUNSETGROUP`: the group allowed to attach to the device.
    pub fn set_group(&self, gid: u32) -> io::Result<()> {
        sysnet::tun_set_group(self.fd.as_fd(), gid)
    }

    /// `TUNSETPERSIST`: whether the device outlives its last descriptor.
    pub fn set_persist(&self, persist: bool) -> io::Result<()> {
        sysnet::tun_set_persist(self.fd.as_fd(), persist)
    }

    /// The descriptor, for reading and writing frames.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// The descriptor and the interface's name.
    pub fn into_parts(self) -> (OwnedFd, String) {
        (self.fd, self.name)
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_clone_device_is_an_open_error_naming_it() {
        let e = Tap::open_via(Path::new("/nonexistent/tun"), b"", Mode::Blocking).unwrap_err();
        assert!(matches!(e, TapError::Open { .. }), "{e:?}");
        assert_eq!(e.os_error().raw_os_error(), Some(libc::ENOENT));
        assert!(
            e.to_string().starts_with("opening '/nonexistent/tun': "),
            "{e}"
        );
    }

    #[test]
    fn a_clone_device_that_is_not_tun_is_an_attach_error() {
        // /dev/null opens, but TUNSETIFF on it fails (ENOTTY).
        let e = Tap::open_via(Path::new("/dev/null"), b"tapx", Mode::NonBlocking).unwrap_err();
        assert!(matches!(e, TapError::Attach { .. }), "{e:?}");
        assert!(e.to_string().starts_with("TUNSETIFF: "), "{e}");
    }
}
