//! Setting up the switch's sockets (spec §4.2): the control listener and
//! the data socket (abstract, or a named path in `-compat-v0` mode), each
//! with the original's stale-socket check, and the `-tap` uplink.

use super::proto::UnixAddr;
use crate::net::tap::{Mode, Tap, TapError};
use crate::sys::net::{self as sysnet, strerror};
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why the switch could not start or had to stop.
#[derive(Debug, Error)]
pub enum SwitchError {
    /// Another switch answers on the control (or data) socket.
    #[error("The {kind} socket '{}' has another server attached to it; remove it or rerun with a different, unused filename for a socket", path.display())]
    InUse {
        /// "control" or "data".
        kind: &'static str,
        /// The socket path.
        path: PathBuf,
    },
    /// Binding a socket failed.
    #[error("binding the {kind} socket '{}': {}", path.display(), strerror(err))]
    Bind {
        /// "control" or "data".
        kind: &'static str,
        /// The socket path (empty for the abstract data socket).
        path: PathBuf,
        /// The OS error.
        err: io::Error,
    },
    /// A stale socket file could not be removed.
    #[error("The {kind} socket '{}' exists, isn't used, but couldn't be removed: {}", path.display(), strerror(err))]
    Stale {
        /// "control" or "data".
        kind: &'static str,
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        err: io::Error,
    },
    /// Any other system call failed.
    #[error("{op}: {}", strerror(err))]
    Sys {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        err: io::Error,
    },
}

pub(crate) fn sys(op: &'static str) -> impl FnOnce(nix::Error) -> SwitchError {
    move |e| SwitchError::Sys { op, err: e.into() }
}

/// Binds a stream listener at `path`, removing a stale socket file (one
/// nobody answers on) first, as the original does.
pub(crate) fn bind_listener(path: &Path) -> Result<UnixListener, SwitchError> {
    match UnixListener::bind(path) {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            match UnixStream::connect(path) {
                Err(c) if c.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(|err| SwitchError::Stale {
                        kind: "control",
                        path: path.into(),
                        err,
                    })?;
                }
                _ => {
                    return Err(SwitchError::InUse {
                        kind: "control",
                        path: path.into(),
                    })
                }
            }
            UnixListener::bind(path).map_err(|err| SwitchError::Bind {
                kind: "control",
                path: path.into(),
                err,
            })
        }
        Err(err) => Err(SwitchError::Bind {
            kind: "control",
            path: path.into(),
            err,
        }),
    }
}

/// Binds the `-compat-v0` named data socket, with the same stale check.
pub(crate) fn bind_data_path(path: &Path) -> Result<OwnedFd, SwitchError> {
    let bind = || UnixDatagram::bind(path);
    let sock = match bind() {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let probe =
                UnixDatagram::unbound().map_err(|err| SwitchError::Sys { op: "socket", err })?;
            match probe.connect(path) {
                Err(c) if c.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(|err| SwitchError::Stale {
                        kind: "data",
                        path: path.into(),
                        err,
                    })?;
                }
                _ => {
                    return Err(SwitchError::InUse {
                        kind: "data",
                        path: path.into(),
                    })
                }
            }
            bind().map_err(|err| SwitchError::Bind {
                kind: "data",
                path: path.into(),
                err,
            })?
        }
        Err(err) => {
            return Err(SwitchError::Bind {
                kind: "data",
                path: path.into(),
                err,
            })
        }
    };
    sock.set_nonblocking(true)
        .map_err(|err| SwitchError::Sys { op: "fcntl", err })?;
    Ok(OwnedFd::from(sock))
}

/// Binds the data socket to an abstract name like the original's
/// ({0, pad, pid, usecs}), with the rest of `sun_path` zeroed.
pub(crate) fn bind_data_abstract() -> Result<(OwnedFd, UnixAddr), SwitchError> {
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket::socket(AddressFamily::Unix, SockType::Datagram, flags, None)
        .map_err(sys("socket"))?;
    let pid = i32::try_from(std::process::id()).unwrap_or(0);
    let mut last = io::Error::from_raw_os_error(libc::EADDRINUSE);
    for attempt in 0..16i32 {
        let usecs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i32::try_from(d.subsec_micros()).unwrap_or(0))
            .unwrap_or(0)
            .wrapping_add(attempt);
        let addr = UnixAddr::abstract_from(pid, usecs);
        match sysnet::bind_raw_unix(fd.as_fd(), &addr.0) {
            Ok(()) => return Ok((fd, addr)),
            Err(e) => last = e,
        }
    }
    Err(SwitchError::Bind {
        kind: "data",
        path: PathBuf::new(),
        err: last,
    })
}

/// A port's own data socket: bound to a fresh abstract name (the shared
/// socket's shape, `{0, pad, pid, tag}`, with a negative tag where the
/// shared socket has microseconds) and connected to the client's address.
///
/// Connected, it takes datagrams only from that client (the kernel refuses
/// anyone else), sends need no address lookup, and the client's frames to
/// it are not held to `net.unix.max_dgram_qlen`: the kernel exempts a
/// socket's queue from that limit for datagrams from its own peer, so a
/// burst from one guest waits in the switch instead of failing.
/// `next_tag` is advanced past every name tried.
pub(crate) fn port_socket(
    client: &UnixAddr,
    next_tag: &mut u32,
) -> io::Result<(OwnedFd, UnixAddr)> {
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket::socket(AddressFamily::Unix, SockType::Datagram, flags, None)?;
    let pid = i32::try_from(std::process::id()).unwrap_or(0);
    let mut bound = None;
    let mut last = io::Error::from_raw_os_error(libc::EADDRINUSE);
    for _ in 0..16 {
        let tag = *next_tag | 0x8000_0000;
        *next_tag = next_tag.wrapping_add(1) & 0x7fff_ffff;
        let addr = UnixAddr::abstract_from(pid, i32::from_ne_bytes(tag.to_ne_bytes()));
        match sysnet::bind_raw_unix(fd.as_fd(), &addr.0) {
            Ok(()) => {
                bound = Some(addr);
                break;
            }
            Err(e) => last = e,
        }
    }
    let addr = bound.ok_or(last)?;
    sysnet::connect_raw_unix(fd.as_fd(), &client.0)?;
    Ok((fd, addr))
}

/// Opens `/dev/net/tun` and attaches to TAP `dev`, non-blocking.
pub(crate) fn open_tap(dev: &str) -> io::Result<File> {
    Tap::open(dev.as_bytes(), Mode::NonBlocking)
        .map(|t| File::from(t.into_fd()))
        .map_err(TapError::into_os_error)
}
