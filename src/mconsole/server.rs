//! The guest side of the mconsole socket, for a kernel to reuse: receive a
//! request datagram with its sender, answer the kernel's way (replies split
//! into 511-byte parts, spec §2.2), reject invalid requests with the 6.1
//! texts (spec §2.1), and send notifications (spec §5).

use super::commands::{ONLY_VERSION_2, REQUEST_TOO_LARGE};
use super::protocol::{
    split_reply, Notification, NotifyKind, ProtocolError, Request, MCONSOLE_VERSION, REQUEST_SIZE,
    VERSION0_REPLY,
};
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};

/// A bound mconsole socket (`<uml_dir><umid>/mconsole`).
#[derive(Debug)]
pub struct Server {
    socket: UnixDatagram,
    path: PathBuf,
}

/// One received datagram: the decoded request (or why it is invalid) and
/// who sent it (replies go there).
#[derive(Debug)]
pub struct Incoming {
    /// The request, or the protocol error it has.
    pub request: Result<Request, ProtocolError>,
    /// The sender's address.
    pub from: SocketAddr,
}

impl Server {
    /// Binds a datagram socket at `path`.
    pub fn bind(path: &Path) -> io::Result<Server> {
        let socket = UnixDatagram::bind(path)?;
        Ok(Server {
            socket,
            path: path.to_path_buf(),
        })
    }

    /// The socket, e.g. to make it non-blocking or poll it.
    pub fn socket(&self) -> &UnixDatagram {
        &self.socket
    }

    /// Where the socket is bound.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for one datagram and decodes it.
    pub fn receive(&self) -> io::Result<Incoming> {
        // One byte more than a request, so an oversized one is noticed.
        let mut buf = [0u8; REQUEST_SIZE + 1];
        let (n, from) = self.socket.recv_from(&mut buf)?;
        Ok(Incoming {
            request: Request::decode(&buf[..n]),
            from,
        })
    }

    /// Answers the checks of spec §2.1 the way 6.1 does and returns the
    /// request to run, if any: a bad magic gets the raw "version 0" text,
    /// a too-long length "Request too large" (dropped), a version other
    /// than 2 an error reply (and the command still runs). Truncated or
    /// oversized datagrams are dropped without an answer.
    pub fn check(&self, incoming: Incoming) -> io::Result<Option<(Request, SocketAddr)>> {
        match incoming.request {
            Err(ProtocolError::BadMagic(_)) => {
                self.send_raw(&incoming.from, VERSION0_REPLY)?;
                Ok(None)
            }
            Err(ProtocolError::BadLength { .. }) => {
                self.reply(&incoming.from, 1, REQUEST_TOO_LARGE.as_bytes(), false)?;
                Ok(None)
            }
            Err(_) => Ok(None),
            Ok(request) => {
                if request.version != MCONSOLE_VERSION {
                    self.reply(&incoming.from, 1, ONLY_VERSION_2.as_bytes(), false)?;
                }
                Ok(Some((request, incoming.from)))
            }
        }
    }

    /// Sends `text` to `to` as one reply, in parts of at most 511 bytes;
    /// `more` marks the last part too (streaming commands end with an
    /// empty reply).
    pub fn reply(&self, to: &SocketAddr, err: u32, text: &[u8], more: bool) -> io::Result<()> {
        for part in split_reply(err, text, more) {
            self.send_raw(to, &part.encode())?;
        }
        Ok(())
    }

    /// A sender of replies to one client.
    pub fn replier<'a>(&'a self, to: &'a SocketAddr) -> ReplySender<'a> {
        ReplySender { server: self, to }
    }

    /// Sends raw bytes to `to`.
    pub fn send_raw(&self, to: &SocketAddr, bytes: &[u8]) -> io::Result<()> {
        self.socket.send_to_addr(bytes, to).map(|_| ())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The kernel unlinks its socket on halt and reboot.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Replies to one client, e.g. for streaming commands (`proc`, `sysrq`):
/// several `more` replies, then [`ReplySender::finish`].
#[derive(Debug)]
pub struct ReplySender<'a> {
    server: &'a Server,
    to: &'a SocketAddr,
}

impl ReplySender<'_> {
    /// Sends `text` (split as needed) with `err`, announcing more to come.
    pub fn more(&self, err: u32, text: &[u8]) -> io::Result<()> {
        self.server.reply(self.to, err, text, true)
    }

    /// Sends the last reply.
    pub fn finish(&self, err: u32, text: &[u8]) -> io::Result<()> {
        self.server.reply(self.to, err, text, false)
    }
}

/// Sends one notification to the socket at `path` from an unbound socket,
/// as the kernel does for `mconsole=notify:<path>`.
pub fn notify(path: &Path, kind: NotifyKind, data: &[u8]) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let datagram = Notification {
        kind,
        data: data.to_vec(),
    }
    .encode();
    socket.send_to(&datagram, path).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mconsole::client::Client;
    use std::time::Duration;

    fn pair() -> (tempfile::TempDir, PathBuf, Server) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mconsole");
        let server = Server::bind(&path).unwrap();
        (dir, path, server)
    }

    #[test]
    fn a_streamed_reply_reaches_the_client_as_one_text() {
        let (_dir, path, server) = pair();
        let t = std::thread::spawn(move || {
            let (req, from) = server.check(server.receive().unwrap()).unwrap().unwrap();
            assert_eq!(req.command, b"proc meminfo");
            let r = server.replier(&from);
            r.more(0, b"\n").unwrap();
            r.more(0, &[b'm'; 900]).unwrap();
            r.finish(0, b"").unwrap();
        });
        let client = Client::new(Some(Duration::from_secs(5))).unwrap();
        let reply = client.command(&path, b"proc meminfo").unwrap();
        t.join().unwrap();
        assert_eq!(reply.parts, 4);
        assert_eq!(reply.text.len(), 901);
        assert!(reply.text.starts_with(b"\nmm"));
    }

    #[test]
    fn check_answers_a_bad_magic_with_the_raw_version0_text() {
        let (_dir, path, server) = pair();
        let dir2 = tempfile::tempdir().unwrap();
        let probe = UnixDatagram::bind(dir2.path().join("c")).unwrap();
        let mut bad = Request::new(b"version").encode();
        bad[0] ^= 0xff;
        probe.send_to(&bad, &path).unwrap();
        assert!(server.check(server.receive().unwrap()).unwrap().is_none());
        let mut buf = [0u8; 600];
        let n = probe.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], VERSION0_REPLY);

        let mut old = Request::new(b"version").encode();
        old[4] = 1;
        probe.send_to(&old, &path).unwrap();
        let (req, _) = server.check(server.receive().unwrap()).unwrap().unwrap();
        assert_eq!(req.command, b"version");
        let n = probe.recv(&mut buf).unwrap();
        assert_eq!(&buf[12..n - 1], ONLY_VERSION_2.as_bytes());
    }

    #[test]
    fn notify_sends_a_decodable_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        notify(&path, NotifyKind::User, b"hello").unwrap();
        let mut buf = [0u8; 600];
        let n = listener.recv(&mut buf).unwrap();
        let n = Notification::decode(&buf[..n]).unwrap();
        assert_eq!((n.kind, n.text()), (NotifyKind::User, &b"hello"[..]));
    }

    #[test]
    fn dropping_the_server_unlinks_its_socket() {
        let (_dir, path, server) = pair();
        drop(server);
        assert!(!path.exists());
    }
}
