//! Captures of a running lab's collision domains (`uml_lab capture`).
//!
//! ```text
//!  uml_switch -pcap - ──pipe──▶ relay (uml_lab capture-relay) ──▶ STATE/sw/DOMAIN.cap
//!                                  │ no client: records read and dropped       │
//!                                  └ each client: the pcap header, then whole  ▼
//!                                    records from the moment it connected   uml_lab capture
//! ```
//!
//! Every domain's switch writes its pcap stream (`-pcap -`, non-blocking,
//! one record per `write`) into a pipe whose other end is held by a small
//! relay process started with it. The relay keeps only the 24-byte file
//! header and hands each capture client that header and then every whole
//! record from its connection on, so a capture can start and stop at any
//! time on a lab that is already running. A slow client loses records
//! (beyond [`CLIENT_BACKLOG`] bytes queued), never the switch's time; the
//! relay ends when the switch does.
//!
//! [`Splitter`] (the pcap stream cut into its header and records) is pure;
//! [`relay`] and [`Reader`] are the I/O around it.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Length of the pcap file header.
pub const HEADER_LEN: usize = 24;
/// Length of a pcap record header.
pub const RECORD_HEADER_LEN: usize = 16;
/// The largest record accepted (header and a jumbo frame): a bigger
/// length means the stream is not pcap.
pub const MAX_RECORD: usize = RECORD_HEADER_LEN + 262_144;
/// Bytes queued for one client before further records are dropped for it.
pub const CLIENT_BACKLOG: usize = 4 << 20;

/// Why a pcap stream could not be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// The first four bytes are no pcap magic.
    #[error("not a pcap stream (magic {0:02x?})")]
    Magic([u8; 4]),
    /// A record claims more bytes than any frame has.
    #[error("pcap record of {0} bytes: the stream is corrupt")]
    Record(usize),
}

/// One unit of a pcap stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    /// The file header.
    Header(Vec<u8>),
    /// One record: its 16-byte header and the frame.
    Record(Vec<u8>),
}

/// Cuts a pcap byte stream, fed in pieces of any size, into its header and
/// whole records. Pure.
#[derive(Debug, Default)]
pub struct Splitter {
    buf: Vec<u8>,
    /// `Some(swapped)` once the header is read: the records' lengths are
    /// in the other byte order.
    order: Option<bool>,
}

impl Splitter {
    /// A splitter at the start of a stream.
    pub fn new() -> Splitter {
        Splitter::default()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole unit, if the bytes so far hold one.
    pub fn next_unit(&mut self) -> Result<Option<Unit>, StreamError> {
        let Some(swapped) = self.order else {
            if self.buf.len() < HEADER_LEN {
                return Ok(None);
            }
            let magic = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
            let swapped = match u32::from_ne_bytes(magic) {
                0xa1b2_c3d4 | 0xa1b2_3c4d => false,
                0xd4c3_b2a1 | 0x4d3c_b2a1 => true,
                _ => return Err(StreamError::Magic(magic)),
            };
            self.order = Some(swapped);
            let h: Vec<u8> = self.buf.drain(..HEADER_LEN).collect();
            return Ok(Some(Unit::Header(h)));
        };
        if self.buf.len() < RECORD_HEADER_LEN {
            return Ok(None);
        }
        let raw = [self.buf[8], self.buf[9], self.buf[10], self.buf[11]];
        let incl = if swapped {
            u32::from_ne_bytes(raw).swap_bytes()
        } else {
            u32::from_ne_bytes(raw)
        };
        let total = usize::try_from(incl)
            .ok()
            .and_then(|n| n.checked_add(RECORD_HEADER_LEN))
            .filter(|&n| n <= MAX_RECORD)
            .ok_or(StreamError::Record(
                usize::try_from(incl).unwrap_or(usize::MAX),
            ))?;
        if self.buf.len() < total {
            return Ok(None);
        }
        Ok(Some(Unit::Record(self.buf.drain(..total).collect())))
    }
}

/// One capture client of the relay.
struct Client {
    sock: UnixStream,
    pending: Vec<u8>,
}

impl Client {
    /// Writes what it can; false when the client is gone.
    fn flush(&mut self) -> bool {
        while !self.pending.is_empty() {
            match self.sock.write(&self.pending) {
                Ok(0) => return false,
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}

/// The relay: reads the switch's pcap stream from `input` until it ends,
/// serving captures on a Unix socket at `socket` (created, mode 0600,
/// removed at the end).
pub fn relay(mut input: std::fs::File, socket: &Path) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let _ = std::fs::remove_file(socket);
    let listener = {
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
        let l = UnixListener::bind(socket);
        nix::sys::stat::umask(old);
        l?
    };
    listener.set_nonblocking(true)?;
    let mut split = Splitter::new();
    let mut header: Option<Vec<u8>> = None;
    let mut clients: Vec<Client> = Vec::new();
    let mut chunk = vec![0u8; 65_536];
    let result = loop {
        let mut fds = vec![
            PollFd::new(input.as_fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
        ];
        for c in &clients {
            let mut ev = PollFlags::POLLIN;
            if !c.pending.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.sock.as_fd(), ev));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => break Err(e.into()),
        }
        let revents: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        // Clients first: the ones that hung up or can take more.
        let mut keep = Vec::with_capacity(clients.len());
        for (mut c, ev) in clients.drain(..).zip(revents[2..].iter()) {
            let mut alive = true;
            if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                // A client sends nothing: readable means it closed.
                let mut b = [0u8; 64];
                match c.sock.read(&mut b) {
                    Ok(0) => alive = false,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => alive = false,
                }
            }
            if alive && ev.contains(PollFlags::POLLOUT) {
                alive = c.flush();
            }
            if alive {
                keep.push(c);
            }
        }
        clients = keep;
        if revents[1].contains(PollFlags::POLLIN) {
            while let Ok((sock, _)) = listener.accept() {
                if sock.set_nonblocking(true).is_err() {
                    continue;
                }
                let mut c = Client {
                    sock,
                    pending: header.clone().unwrap_or_default(),
                };
                if c.flush() {
                    clients.push(c);
                }
            }
        }
        if revents[0].intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            let n = match input.read(&mut chunk) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            };
            split.push(&chunk[..n]);
            loop {
                match split.next_unit() {
                    Ok(Some(Unit::Header(h))) => {
                        for c in &mut clients {
                            c.pending.extend_from_slice(&h);
                        }
                        header = Some(h);
                    }
                    Ok(Some(Unit::Record(r))) => {
                        for c in &mut clients {
                            if c.pending.len() < CLIENT_BACKLOG {
                                c.pending.extend_from_slice(&r);
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = std::fs::remove_file(socket);
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
            }
            clients.retain_mut(Client::flush);
        }
    };
    let _ = std::fs::remove_file(socket);
    result
}

/// A capture client: the units of a domain's pcap stream as they come.
pub struct Reader {
    sock: UnixStream,
    split: Splitter,
    chunk: Vec<u8>,
}

impl Reader {
    /// Connects to the relay's socket.
    pub fn connect(socket: &Path) -> io::Result<Reader> {
        Ok(Reader {
            sock: UnixStream::connect(socket)?,
            split: Splitter::new(),
            chunk: vec![0u8; 65_536],
        })
    }

    /// The next unit (the header first), or `None` when the relay ended
    /// (the switch stopped).
    pub fn next_unit(&mut self) -> io::Result<Option<Unit>> {
        loop {
            if let Some(u) = self
                .split
                .next_unit()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                return Ok(Some(u));
            }
            match self.sock.read(&mut self.chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.split.push(&self.chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::switch::pcap;
    use std::time::Duration;

    fn stream(frames: &[&[u8]]) -> Vec<u8> {
        let mut s = pcap::global_header().to_vec();
        for (i, f) in frames.iter().enumerate() {
            pcap::record(Duration::from_secs(u64::try_from(i).unwrap()), f, &mut s);
        }
        s
    }

    #[test]
    fn a_stream_fed_a_byte_at_a_time_comes_out_as_header_and_whole_records() {
        let s = stream(&[&[1; 60], &[2; 1514], &[3; 42]]);
        let mut sp = Splitter::new();
        let mut units = Vec::new();
        for b in &s {
            sp.push(std::slice::from_ref(b));
            while let Some(u) = sp.next_unit().unwrap() {
                units.push(u);
            }
        }
        assert_eq!(units.len(), 4);
        assert_eq!(units[0], Unit::Header(s[..HEADER_LEN].to_vec()));
        let Unit::Record(r) = &units[2] else {
            panic!("{units:?}")
        };
        assert_eq!(r.len(), RECORD_HEADER_LEN + 1514);
        assert!(r[RECORD_HEADER_LEN..].iter().all(|&b| b == 2));
        let joined: Vec<u8> = units
            .into_iter()
            .flat_map(|u| match u {
                Unit::Header(h) | Unit::Record(h) => h,
            })
            .collect();
        assert_eq!(joined, s);
    }

    #[test]
    fn swapped_byte_order_is_read_and_garbage_is_refused() {
        let mut s = stream(&[&[7; 100]]);
        // Swap every 32-bit header field to the other byte order.
        for range in [0..4, 16..20, 20..24, 24..28, 28..32, 32..36, 36..40] {
            s[range].reverse();
        }
        s[4..6].reverse();
        s[6..8].reverse();
        let mut sp = Splitter::new();
        sp.push(&s);
        assert!(matches!(sp.next_unit(), Ok(Some(Unit::Header(_)))));
        match sp.next_unit() {
            Ok(Some(Unit::Record(r))) => assert_eq!(r.len(), RECORD_HEADER_LEN + 100),
            other => panic!("{other:?}"),
        }
        let mut bad = Splitter::new();
        bad.push(&[0u8; 40]);
        assert!(matches!(bad.next_unit(), Err(StreamError::Magic(_))));
        let mut huge = Splitter::new();
        let mut h = pcap::global_header().to_vec();
        h.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]);
        huge.push(&h);
        assert!(huge.next_unit().is_ok());
        assert!(matches!(huge.next_unit(), Err(StreamError::Record(_))));
    }

    #[test]
    fn the_relay_gives_a_late_client_the_header_and_then_only_new_records() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("A.cap");
        let (r, w) = nix::unistd::pipe().unwrap();
        let input = std::fs::File::from(r);
        let mut w = std::fs::File::from(w);
        let s2 = sock.clone();
        let relay = std::thread::spawn(move || relay(input, &s2));
        let s = stream(&[&[1; 60], &[2; 70]]);
        w.write_all(&s[..HEADER_LEN]).unwrap();
        while !sock.exists() {
            std::thread::sleep(Duration::from_millis(5));
        }
        // An early client sees the first record (once it has the header,
        // the relay has accepted it).
        let mut early = Reader::connect(&sock).unwrap();
        assert!(matches!(early.next_unit().unwrap(), Some(Unit::Header(_))));
        w.write_all(&s[HEADER_LEN..HEADER_LEN + RECORD_HEADER_LEN + 60])
            .unwrap();
        match early.next_unit().unwrap() {
            Some(Unit::Record(r)) => assert!(r[RECORD_HEADER_LEN..].iter().all(|&b| b == 1)),
            other => panic!("{other:?}"),
        }
        let mut c = Reader::connect(&sock).unwrap();
        assert!(matches!(c.next_unit().unwrap(), Some(Unit::Header(_))));
        w.write_all(&s[HEADER_LEN + RECORD_HEADER_LEN + 60..])
            .unwrap();
        match c.next_unit().unwrap() {
            Some(Unit::Record(r)) => assert!(r[RECORD_HEADER_LEN..].iter().all(|&b| b == 2)),
            other => panic!("{other:?}"),
        }
        drop(early);
        drop(w);
        assert_eq!(c.next_unit().unwrap(), None);
        relay.join().unwrap().unwrap();
        assert!(!sock.exists());
    }
}
