//! The receiving end of `mconsole=notify:<socket>` (spec §5): a datagram
//! socket bound before the guest boots, on which the guest announces its
//! mconsole socket, its panics, and what its users write to
//! `/proc/mconsole`.

use super::protocol::{Notification, ProtocolError, MAX_NOTIFY_SIZE};
use super::Error;
use std::io::ErrorKind;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A bound notification socket; unlinked on drop.
#[derive(Debug)]
pub struct Listener {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Listener {
    /// Binds at `path`. A socket file left there by a listener that is
    /// gone (nothing receives on it) is replaced; a live one is an error.
    pub fn bind(path: &Path) -> Result<Listener, Error> {
        let socket = match UnixDatagram::bind(path) {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::AddrInUse && is_stale_socket(path) => {
                std::fs::remove_file(path)
                    .map_err(|e| Error::io("cannot remove stale socket", path, e))?;
                UnixDatagram::bind(path).map_err(|e| Error::io("cannot bind", path, e))?
            }
            Err(e) => return Err(Error::io("cannot bind", path, e)),
        };
        Ok(Listener {
            socket,
            path: path.to_path_buf(),
        })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the next datagram until `deadline` (`None`: forever).
    /// `Ok(None)` when the deadline passed; a datagram that is not a valid
    /// notification is returned as its protocol error.
    pub fn next(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<Result<Notification, ProtocolError>>, Error> {
        let mut buf = [0u8; MAX_NOTIFY_SIZE + 1];
        loop {
            let wait = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(w) if !w.is_zero() => Some(w),
                    _ => return Ok(None),
                },
            };
            self.socket
                .set_read_timeout(wait)
                .map_err(|e| Error::io("set timeout on", &self.path, e))?;
            match self.socket.recv(&mut buf) {
                Ok(n) => return Ok(Some(Notification::decode(&buf[..n]))),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(Error::io("receive on", &self.path, e)),
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// True when `path` is a socket nobody receives on.
fn is_stale_socket(path: &Path) -> bool {
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if !is_socket {
        return false;
    }
    let Ok(probe) = UnixDatagram::unbound() else {
        return false;
    };
    probe
        .connect(path)
        .is_err_and(|e| e.raw_os_error() == Some(libc::ECONNREFUSED))
}

/// One line of text for a notification: its kind and its text, e.g.
/// `socket /root/.uml/vm/mconsole`.
pub fn text_line(n: &Notification) -> String {
    let text = String::from_utf8_lossy(n.text());
    let kind = match n.kind {
        super::protocol::NotifyKind::Other(k) => format!("type-{k}"),
        kind => kind.name().to_string(),
    };
    if text.is_empty() {
        format!("{kind}\n")
    } else {
        format!("{kind} {}\n", text.trim_end_matches('\n'))
    }
}

/// One JSON object for a notification: `{"type":..,"number":..,"data":..}`.
pub fn json_line(n: &Notification) -> String {
    let value = serde_json::json!({
        "type": n.kind.name(),
        "number": n.kind.number(),
        "data": String::from_utf8_lossy(n.text()),
    });
    format!("{value}\n")
}

/// The deadline for a listener waiting `timeout` seconds (none for 0).
pub fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.filter(|t| !t.is_zero()).map(|t| Instant::now() + t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mconsole::protocol::NotifyKind;
    use crate::mconsole::server::notify;

    #[test]
    fn listener_receives_notifications_and_reports_malformed_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let l = Listener::bind(&path).unwrap();
        notify(&path, NotifyKind::Socket, b"/root/.uml/vm/mconsole\0").unwrap();
        UnixDatagram::unbound()
            .unwrap()
            .send_to(b"junk", &path)
            .unwrap();
        let n = l.next(None).unwrap().unwrap().unwrap();
        assert_eq!(text_line(&n), "socket /root/.uml/vm/mconsole\n");
        assert_eq!(
            json_line(&n),
            "{\"data\":\"/root/.uml/vm/mconsole\",\"number\":0,\"type\":\"socket\"}\n"
        );
        assert!(l.next(None).unwrap().unwrap().is_err());
        assert!(l
            .next(deadline(Some(Duration::from_millis(50))))
            .unwrap()
            .is_none());
    }

    #[test]
    fn listener_takes_over_a_stale_socket_but_not_a_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        drop(UnixDatagram::bind(&path).unwrap());
        assert!(path.exists());
        let live = Listener::bind(&path).unwrap();
        let err = Listener::bind(&path).unwrap_err();
        assert!(err.to_string().contains("cannot bind"), "{err}");
        drop(live);
        assert!(!path.exists());
    }

    #[test]
    fn text_lines_name_each_kind() {
        let n = |kind, data: &[u8]| Notification {
            kind,
            data: data.to_vec(),
        };
        assert_eq!(text_line(&n(NotifyKind::Panic, b"oops\0")), "panic oops\n");
        assert_eq!(text_line(&n(NotifyKind::User, b"hi\n")), "user hi\n");
        assert_eq!(text_line(&n(NotifyKind::Hang, b"")), "hang\n");
        assert_eq!(text_line(&n(NotifyKind::Other(7), b"x")), "type-7 x\n");
    }
}
