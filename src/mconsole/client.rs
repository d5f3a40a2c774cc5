//! The client end of the mconsole socket: send one request, gather the
//! reply parts into one [`Reply`] (spec §3).
//!
//! The client socket is bound to a kernel-chosen abstract address
//! (autobind), so the guest has somewhere to send its replies, and is
//! connected to the guest's socket before every request, so only the
//! guest's datagrams are received. A timeout bounds the wait for each
//! reply datagram; the original client waited forever.

use super::protocol::{ReplyPart, Request, MAX_REPLY_SIZE};
use super::umid::{pid_state, PidState};
use super::Error;
use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, UnixAddr};
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most reply text one command may return (a `proc` of a large file
/// streams many parts; a hostile server must not exhaust memory).
pub const MAX_REPLY_TEXT: usize = 64 << 20;
/// Stale datagrams discarded before each request, at most.
const MAX_DRAIN: usize = 4096;

/// A whole reply: the parts of one request, concatenated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The first non-zero `err` of any part: the guest's verdict (the
    /// kernel sets `err` only on the first part).
    pub err: u32,
    /// The `err` of the last part: what the original client prints
    /// (`OK`/`ERR`) and exits with.
    pub final_err: u32,
    /// The concatenated text of all parts.
    pub text: Vec<u8>,
    /// How many datagrams made the reply.
    pub parts: usize,
}

impl Reply {
    /// Adds one part; true when it was the last (no `more`).
    fn push(&mut self, part: ReplyPart) -> bool {
        if self.err == 0 {
            self.err = part.err;
        }
        self.final_err = part.err;
        self.text.extend_from_slice(&part.data);
        self.parts += 1;
        !part.more
    }

    /// The exit status the original client gives: the last part's `err`
    /// truncated to 8 bits (so -19 becomes 237).
    pub fn exit_status(&self) -> u8 {
        self.final_err.to_le_bytes()[0]
    }

    /// The guest's `err` as a signed number (a negative errno, 0 or 1).
    pub fn errno(&self) -> i32 {
        i32::from_ne_bytes(self.err.to_ne_bytes())
    }
}

/// A bound client socket with a reply timeout.
#[derive(Debug)]
pub struct Client {
    socket: UnixDatagram,
    timeout: Option<Duration>,
}

impl Client {
    /// Makes a datagram socket bound to a fresh abstract address; `timeout`
    /// limits the wait for each reply datagram (`None`: wait forever).
    pub fn new(timeout: Option<Duration>) -> Result<Client, Error> {
        let here = Path::new("(client socket)");
        let fd = socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| Error::io("socket", here, e.into()))?;
        // An address of just the family makes the kernel pick a unique
        // abstract name (autobind).
        bind(fd.as_raw_fd(), &UnixAddr::new_unnamed())
            .map_err(|e| Error::io("bind", here, e.into()))?;
        let socket = UnixDatagram::from(fd);
        let timeout = timeout.filter(|t| !t.is_zero());
        socket
            .set_read_timeout(timeout)
            .map_err(|e| Error::io("set timeout on", here, e))?;
        Ok(Client { socket, timeout })
    }

    /// Sends `command` (cut to 511 bytes) to the guest socket at `target`
    /// and returns its whole reply.
    pub fn command(&self, target: &Path, command: &[u8]) -> Result<Reply, Error> {
        self.drain();
        self.socket
            .connect(target)
            .map_err(|e| send_error(target, e))?;
        let request = Request::new(command).encode();
        self.socket
            .send(&request)
            .map_err(|e| send_error(target, e))?;
        let mut reply = Reply {
            err: 0,
            final_err: 0,
            text: Vec::new(),
            parts: 0,
        };
        // One byte more than the largest reply, to notice oversized ones.
        let mut buf = [0u8; MAX_REPLY_SIZE + 1];
        loop {
            let n = match self.socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    let secs = self.timeout.map_or(0.0, |t| t.as_secs_f64());
                    return Err(Error::Timeout {
                        path: target.to_path_buf(),
                        secs,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("receive from", target, e)),
            };
            let part = ReplyPart::decode(&buf[..n]).map_err(|source| Error::Corrupt {
                path: target.to_path_buf(),
                source,
            })?;
            if reply.text.len().saturating_add(part.data.len()) > MAX_REPLY_TEXT {
                return Err(Error::ReplyTooLarge {
                    path: target.to_path_buf(),
                    limit: MAX_REPLY_TEXT,
                });
            }
            if reply.push(part) {
                return Ok(reply);
            }
        }
    }

    /// Throws away datagrams left over from an earlier request that timed
    /// out, so they are not taken for this request's reply.
    fn drain(&self) {
        if self.socket.set_nonblocking(true).is_err() {
            return;
        }
        let mut buf = [0u8; MAX_REPLY_SIZE + 1];
        for _ in 0..MAX_DRAIN {
            if self.socket.recv(&mut buf).is_err() {
                break;
            }
        }
        let _ = self.socket.set_nonblocking(false);
    }
}

/// Turns a failed connect/send into a clear error: a refused or missing
/// socket means the guest is gone, and its pid file says more.
fn send_error(target: &Path, e: std::io::Error) -> Error {
    let refused = e.raw_os_error() == Some(libc::ECONNREFUSED);
    let missing = e.kind() == ErrorKind::NotFound;
    if !refused && !missing {
        return Error::io("cannot send to", target, e);
    }
    let dir = target.parent().map(PathBuf::from).unwrap_or_default();
    let what = if missing {
        "the socket file is gone"
    } else {
        "nothing receives on the socket"
    };
    let why = match pid_state(&dir) {
        PidState::Dead(pid) => {
            format!("{what}; its pid file names pid {pid}, which does not exist")
        }
        PidState::Alive(pid) => format!("{what}; pid {pid} from its pid file still exists"),
        PidState::Missing | PidState::Unparsable => what.to_string(),
    };
    Error::NotRunning {
        path: target.to_path_buf(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mconsole::protocol::split_reply;
    use crate::mconsole::server::Server;

    fn serve_once(server: Server, replies: Vec<Vec<u8>>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let incoming = server.receive().unwrap();
            for r in replies {
                server.send_raw(&incoming.from, &r).unwrap();
            }
            incoming.request.unwrap().command
        })
    }

    #[test]
    fn client_assembles_multi_part_replies_and_keeps_the_first_err() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mconsole");
        let server = Server::bind(&path).unwrap();
        let text = vec![b'z'; 1500];
        let parts: Vec<Vec<u8>> = split_reply(1, &text, false)
            .iter()
            .map(|p| p.encode())
            .collect();
        let t = serve_once(server, parts);
        let client = Client::new(Some(Duration::from_secs(5))).unwrap();
        let reply = client.command(&path, b"proc big").unwrap();
        assert_eq!(t.join().unwrap(), b"proc big");
        assert_eq!((reply.err, reply.final_err, reply.parts), (1, 0, 3));
        assert_eq!(reply.text, text);
        assert_eq!(reply.exit_status(), 0);
    }

    #[test]
    fn client_times_out_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mconsole");
        let _server = Server::bind(&path).unwrap();
        let client = Client::new(Some(Duration::from_millis(200))).unwrap();
        let err = client.command(&path, b"version").unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        assert!(err.to_string().contains("no reply"), "{err}");
    }

    #[test]
    fn client_reports_a_stale_socket_as_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mconsole");
        drop(UnixDatagram::bind(&path).unwrap());
        std::fs::write(dir.path().join("pid"), "2000000000\n").unwrap();
        let client = Client::new(None).unwrap();
        let err = client.command(&path, b"version").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::NotRunning { .. }), "{msg}");
        assert!(msg.contains("nothing receives on the socket"), "{msg}");
        assert!(
            msg.contains("pid 2000000000, which does not exist"),
            "{msg}"
        );
    }

    #[test]
    fn client_rejects_malformed_replies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mconsole");
        let server = Server::bind(&path).unwrap();
        let t = serve_once(server, vec![b"ERR Version 0 mconsole clients".to_vec()]);
        let client = Client::new(Some(Duration::from_secs(5))).unwrap();
        let err = client.command(&path, b"version").unwrap_err();
        t.join().unwrap();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    }

    #[test]
    fn exit_status_is_the_low_byte_of_a_negative_errno() {
        let r = Reply {
            err: (-19i32) as u32,
            final_err: (-19i32) as u32,
            text: vec![],
            parts: 1,
        };
        assert_eq!(r.exit_status(), 237);
        assert_eq!(r.errno(), -19);
    }
}
