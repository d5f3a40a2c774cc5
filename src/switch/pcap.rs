//! Packet capture (`-pcap FILE`, `-pcap -`): every frame the switch takes
//! in, written as a classic pcap file (the libpcap format: a 24-byte
//! global header, then a 16-byte record header before each frame, all in
//! the writer's byte order, which readers detect from the magic),
//! link type 1 (Ethernet). Each record goes out in one `write` as it
//! happens, so `tcpdump -r FILE` and Wireshark see the file while it
//! grows and `tcpdump -r -` follows a pipe live.
//!
//! The encoders are pure; [`Capture`] is the writer the daemon holds.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The pcap magic for microsecond timestamps.
pub const MAGIC: u32 = 0xa1b2_c3d4;
/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// The snapshot length written in the header (nothing is cut).
pub const SNAPLEN: u32 = 65_535;
/// Length of the global header.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Length of a record header.
pub const RECORD_HEADER_LEN: usize = 16;

/// The file header: magic, version 2.4, zone 0, sigfigs 0, snaplen, link type.
pub fn global_header() -> [u8; GLOBAL_HEADER_LEN] {
    let mut h = [0u8; GLOBAL_HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC.to_ne_bytes());
    h[4..6].copy_from_slice(&2u16.to_ne_bytes());
    h[6..8].copy_from_slice(&4u16.to_ne_bytes());
    h[16..20].copy_from_slice(&SNAPLEN.to_ne_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
    h
}

/// Appends one record (`ts` since the epoch, the whole frame) to `out`.
pub fn record(ts: Duration, frame: &[u8], out: &mut Vec<u8>) {
    let secs = u32::try_from(ts.as_secs()).unwrap_or(u32::MAX);
    let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&secs.to_ne_bytes());
    out.extend_from_slice(&ts.subsec_micros().to_ne_bytes());
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(frame);
}

/// A capture being written.
pub struct Capture {
    out: File,
    buf: Vec<u8>,
    /// Frames written.
    pub written: u64,
    /// Frames not written (a full pipe, a write error).
    pub lost: u64,
    /// Set when the reader went away or the file failed: nothing more is
    /// written.
    pub broken: Option<io::Error>,
}

impl Capture {
    /// Creates (truncates) `path`, mode 0600, and writes the header.
    pub fn create(path: &Path) -> io::Result<Capture> {
        use std::os::unix::fs::OpenOptionsExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        Capture::start(f)
    }

    /// Writes to standard output (a copy of descriptor 1). On a pipe or
    /// socket it is made non-blocking, so a slow reader costs captured
    /// frames, never the switch's time; records are smaller than
    /// `PIPE_BUF`, so each is written whole or not at all.
    pub fn stdout() -> io::Result<Capture> {
        use std::os::fd::AsFd;
        let fd = io::stdout().as_fd().try_clone_to_owned()?;
        let f = File::from(fd);
        let ft = f.metadata()?.file_type();
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() || ft.is_socket() {
            use nix::fcntl::{fcntl, FcntlArg, OFlag};
            use std::os::fd::AsRawFd;
            let flags = fcntl(f.as_raw_fd(), FcntlArg::F_GETFL).map_err(io::Error::from)?;
            let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
            fcntl(f.as_raw_fd(), FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        }
        Capture::start(f)
    }

    fn start(mut out: File) -> io::Result<Capture> {
        // The header must get through even to a pipe that is not read yet.
        let h = global_header();
        let mut done = 0;
        while done < h.len() {
            match out.write(&h[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Capture {
            out,
            buf: Vec::with_capacity(2048),
            written: 0,
            lost: 0,
            broken: None,
        })
    }

    /// Writes one frame, stamped now. Returns the error that ended the
    /// capture, once.
    pub fn frame(&mut self, frame: &[u8]) -> Option<io::Error> {
        if self.broken.is_some() {
            self.lost += 1;
            return None;
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.buf.clear();
        record(ts, frame, &mut self.buf);
        match self.out.write(&self.buf) {
            Ok(n) if n == self.buf.len() => {
                self.written += 1;
                None
            }
            Ok(_) => {
                // A short write would leave a record cut in half.
                self.lost += 1;
                let e = io::Error::new(io::ErrorKind::WriteZero, "short write");
                self.broken = Some(io::Error::new(e.kind(), "short write"));
                Some(e)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.lost += 1;
                None
            }
            Err(e) => {
                self.lost += 1;
                self.broken = Some(io::Error::new(e.kind(), e.to_string()));
                Some(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_header_is_pcap_2_4_ethernet() {
        let h = global_header();
        assert_eq!(u32::from_ne_bytes(h[0..4].try_into().unwrap()), 0xa1b2_c3d4);
        assert_eq!(u16::from_ne_bytes([h[4], h[5]]), 2);
        assert_eq!(u16::from_ne_bytes([h[6], h[7]]), 4);
        assert_eq!(&h[8..16], &[0; 8]);
        assert_eq!(u32::from_ne_bytes(h[20..24].try_into().unwrap()), 1);
    }

    #[test]
    fn a_record_carries_time_lengths_and_the_whole_frame() {
        let mut out = Vec::new();
        let f = [7u8; 98];
        record(Duration::new(1_700_000_000, 123_456_789), &f, &mut out);
        assert_eq!(out.len(), RECORD_HEADER_LEN + 98);
        let w = |i: usize| u32::from_ne_bytes(out[i..i + 4].try_into().unwrap());
        assert_eq!((w(0), w(4), w(8), w(12)), (1_700_000_000, 123_456, 98, 98));
        assert_eq!(&out[16..], &f[..]);
    }

    #[test]
    fn a_capture_file_holds_the_header_then_one_record_per_frame() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.pcap");
        let mut c = Capture::create(&p).unwrap();
        assert!(c.frame(&[1u8; 60]).is_none());
        assert!(c.frame(&[2u8; 1514]).is_none());
        // Visible without closing: written through, not buffered.
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len(), 24 + 16 + 60 + 16 + 1514);
        assert_eq!(c.written, 2);
    }
}
