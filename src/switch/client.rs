//! The client side of the switch protocol, as the UML kernel's daemon
//! transport speaks it (spec §3.3): connect to the control socket, bind a
//! datagram socket to an abstract address, send one v3 request, read the
//! switch's 110-byte data address. Used by the tests and the load
//! generator; each frame is then one datagram.

use super::proto::{encode_request_v3, UnixAddr, SOCKADDR_UN_LEN};
use crate::sys::net as sysnet;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

static NEXT: AtomicI32 = AtomicI32::new(1);

/// A connected port: the control stream (its closing is the port leaving)
/// and the datagram socket frames travel on.
pub struct SwitchClient {
    ctl: UnixStream,
    data: OwnedFd,
    /// This client's own data address, as sent in the request.
    pub addr: UnixAddr,
    /// The switch's data address, from the reply.
    pub switch: UnixAddr,
}

impl SwitchClient {
    /// Joins the switch listening on `ctl`.
    pub fn connect(ctl: &Path) -> io::Result<SwitchClient> {
        let mut stream = UnixStream::connect(ctl)?;
        let data = socket::socket(
            AddressFamily::Unix,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = i32::try_from(std::process::id()).unwrap_or(0);
        let addr = UnixAddr::abstract_from(pid, n.wrapping_mul(7919) ^ 0x5a5a_0000);
        sysnet::bind_raw_unix(data.as_fd(), &addr.0)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(&encode_request_v3(&addr))?;
        let mut reply = [0u8; SOCKADDR_UN_LEN];
        stream.read_exact(&mut reply)?;
        Ok(SwitchClient {
            ctl: stream,
            data,
            addr,
            switch: UnixAddr(reply),
        })
    }

    /// Sends one frame to the switch (fails with `WouldBlock` when the
    /// switch's queue is full).
    pub fn send(&self, frame: &[u8]) -> io::Result<usize> {
        sysnet::send_to_raw(self.data.as_fd(), frame, &self.switch.0)
    }

    /// Receives one frame, waiting at most `timeout`; `None` on timeout.
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [nix::poll::PollFd::new(
            self.data.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut fds, ms)? == 0 {
            return Ok(None);
        }
        Ok(Some(socket::recv(
            self.data.as_raw_fd(),
            buf,
            MsgFlags::MSG_DONTWAIT,
        )?))
    }

    /// The data socket, for batched I/O.
    pub fn data_fd(&self) -> BorrowedFd<'_> {
        self.data.as_fd()
    }

    /// The control stream (drop the client to leave the switch).
    pub fn control(&self) -> &UnixStream {
        &self.ctl
    }
}
