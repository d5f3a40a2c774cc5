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
    /// The VDE switch directory could not be made or given its mode.
    #[error("Cannot create ctl directory '{}': {}", path.display(), strerror(err))]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        err: io::Error,
    },
    /// The `-pcap` file could not be created or written.
    #[error("capture file '{}': {}", path.display(), strerror(err))]
    Capture {
        /// The file (`-` for standard output).
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

/// A port's own data socket for a VDE client, bound to a path in the
/// switch directory as `vde_switch` names it (`DIR/NNN.FD`, see
/// [`super::vde::data_socket_name`]) and connected to the client's
/// address. When the switch runs as root and the client's socket is a
/// file, the data socket is handed to that file's owner with `mode &
/// 0o700`, as `vde_switch` does; otherwise it gets `mode`.
pub(crate) fn port_socket_in(
    client: &UnixAddr,
    dir: &Path,
    port: u32,
    mode: u32,
) -> io::Result<(OwnedFd, PathBuf, UnixAddr)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket::socket(AddressFamily::Unix, SockType::Datagram, flags, None)?;
    let path = dir.join(super::vde::data_socket_name(port, fd.as_raw_fd()));
    let addr = UnixAddr::path(path.as_os_str().as_encoded_bytes())
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENAMETOOLONG))?;
    // A socket left by a switch that died: ours to replace; anything else
    // (a planted symlink, a file) is refused.
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        std::fs::remove_file(&path)?;
    }
    sysnet::bind_raw_unix(fd.as_fd(), &addr.0)?;
    let bound = (|| {
        let owner = (!client.is_abstract() && nix::unistd::geteuid().is_root())
            .then(|| client_path(client))
            .flatten()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.uid());
        let perm = if owner.is_some() { mode & 0o700 } else { mode };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(perm))?;
        if owner.is_some() {
            std::os::unix::fs::chown(&path, owner, None)?;
        }
        sysnet::connect_raw_unix(fd.as_fd(), &client.0)
    })();
    if let Err(e) = bound {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok((fd, path, addr))
}

/// The file name in a path address.
fn client_path(addr: &UnixAddr) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let path = &addr.0[2..];
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    (end > 0).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(&path[..end])))
}

/// Makes the VDE switch directory (`mkdir` with 0777, then `dirmode`, as
/// `vde_switch` does; an existing directory is reused).
pub(crate) fn make_vde_dir(dir: &Path, dirmode: u32) -> Result<(), SwitchError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let made = std::fs::DirBuilder::new().mode(0o777).create(dir);
    match made {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            return Err(SwitchError::Dir {
                path: dir.into(),
                err: e,
            })
        }
        _ => {}
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(dirmode)).map_err(|err| {
        SwitchError::Dir {
            path: dir.into(),
            err,
        }
    })
}

/// Opens `/dev/net/tun` and attaches to TAP `dev`, non-blocking.
pub(crate) fn open_tap(dev: &str) -> io::Result<File> {
    Tap::open(dev.as_bytes(), Mode::NonBlocking)
        .map(|t| File::from(t.into_fd()))
        .map_err(TapError::into_os_error)
}
