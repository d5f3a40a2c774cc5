//! `vec<N>:transport=vde,vnl=URL`: the device joins a VDE network
//! through `vde_plug URL` (vdeplug4), run with one end of a stream socket
//! pair as its standard input and output. `vde_plug` with one URL turns
//! the network into a byte stream: each frame is preceded by its length,
//! two bytes big-endian (vdeplug4's `libvdeplug_stream`); [`Cutter`]
//! cuts that stream back into frames.

use super::VectorError;
use std::cell::RefCell;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The plug, found on `PATH`.
pub const VDE_PLUG: &str = "vde_plug";
/// How long a `vde_plug` that cannot connect takes at most to give up;
/// one still running after this is taken as connected.
const SETTLE: Duration = Duration::from_millis(400);
/// The stream's largest frame (its length field has 16 bits).
const STREAM_MAX: usize = 0xffff;

/// Cuts a `vde_plug` byte stream into frames.
#[derive(Debug, Default)]
pub struct Cutter {
    buf: Vec<u8>,
}

impl Cutter {
    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the next whole frame into `out`: its length, or `None` when
    /// no whole frame is buffered. A frame longer than `out` is cut to it;
    /// empty frames are skipped.
    pub fn next_frame(&mut self, out: &mut [u8]) -> Option<usize> {
        loop {
            let len = usize::from(u16::from_be_bytes([*self.buf.first()?, *self.buf.get(1)?]));
            let end = len.checked_add(2)?;
            if self.buf.len() < end {
                return None;
            }
            if len == 0 {
                self.buf.drain(..2);
                continue;
            }
            let n = len.min(out.len());
            out[..n].copy_from_slice(&self.buf[2..2 + n]);
            self.buf.drain(..end);
            return Some(n);
        }
    }
}

/// A frame as the stream carries it: length, then the bytes. `None` for a
/// frame the stream cannot carry.
pub fn encode(frame: &[u8]) -> Option<Vec<u8>> {
    if frame.is_empty() || frame.len() > STREAM_MAX {
        return None;
    }
    let len = u16::try_from(frame.len()).ok()?;
    let mut out = Vec::with_capacity(frame.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(frame);
    Some(out)
}

/// A running `vde_plug` and the monitor's end of its stream.
pub struct Plug {
    sock: UnixStream,
    cutter: RefCell<Cutter>,
    chunk: RefCell<Vec<u8>>,
    _child: Child,
}

impl Plug {
    /// Runs `vde_plug VNL` (no argument for an empty VNL: its default
    /// network) and waits briefly to see it connect.
    pub fn start(vnl: &str) -> Result<Plug, VectorError> {
        let fail = |e: std::io::Error| VectorError::VdeOpen {
            errno: e.raw_os_error().unwrap_or(0),
            why: e.to_string(),
        };
        let (mine, theirs) = UnixStream::pair().map_err(fail)?;
        let out = OwnedFd::from(theirs);
        let inp = out.try_clone().map_err(fail)?;
        let mut cmd = Command::new(VDE_PLUG);
        if !vnl.is_empty() {
            cmd.arg(vnl);
        }
        let mut child = cmd
            .stdin(Stdio::from(inp))
            .stdout(Stdio::from(out))
            .spawn()
            .map_err(|e| VectorError::VdeOpen {
                errno: e.raw_os_error().unwrap_or(0),
                why: format!("running {VDE_PLUG}: {e}"),
            })?;
        let start = Instant::now();
        while start.elapsed() < SETTLE {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(VectorError::VdeOpen {
                    errno: 0,
                    why: format!("{VDE_PLUG} {vnl} exited, {status}"),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Plug {
            sock: mine,
            cutter: RefCell::new(Cutter::default()),
            chunk: RefCell::new(vec![0u8; 65_536]),
            _child: child,
        })
    }

    /// The descriptor to wait on.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// The next frame, `None` when no whole one is waiting; end of stream
    /// (`vde_plug` ended) is an error.
    pub fn recv(&self, out: &mut [u8]) -> std::io::Result<Option<usize>> {
        use nix::sys::socket::{recv, MsgFlags};
        use std::os::fd::AsRawFd;
        let mut cutter = self.cutter.borrow_mut();
        if let Some(n) = cutter.next_frame(out) {
            return Ok(Some(n));
        }
        let mut chunk = self.chunk.borrow_mut();
        match recv(self.sock.as_raw_fd(), &mut chunk, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "vde_plug ended",
            )),
            Ok(n) => {
                cutter.push(&chunk[..n]);
                Ok(cutter.next_frame(out))
            }
            Err(nix::errno::Errno::EAGAIN) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends one frame (a frame the stream cannot carry is dropped).
    pub fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        match encode(frame) {
            Some(bytes) => (&self.sock).write_all(&bytes),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_are_put_back_together() {
        let mut stream = encode(b"hello").unwrap();
        stream.extend(encode(b"world!").unwrap());
        stream.extend([0, 0]); // an empty frame is skipped
        stream.extend(encode(b"x").unwrap());
        let mut c = Cutter::default();
        let mut out = [0u8; 64];
        let mut got = Vec::new();
        for byte in stream {
            c.push(&[byte]);
            while let Some(n) = c.next_frame(&mut out) {
                got.push(out[..n].to_vec());
            }
        }
        assert_eq!(got, [b"hello".to_vec(), b"world!".to_vec(), b"x".to_vec()]);
    }

    #[test]
    fn a_frame_longer_than_the_buffer_is_cut_and_the_next_one_still_found() {
        let mut c = Cutter::default();
        c.push(&encode(&[7u8; 10]).unwrap());
        c.push(&encode(b"ab").unwrap());
        let mut out = [0u8; 4];
        assert_eq!(c.next_frame(&mut out), Some(4));
        assert_eq!(c.next_frame(&mut out), Some(2));
        assert_eq!(&out[..2], b"ab");
        assert_eq!(c.next_frame(&mut out), None);
    }

    #[test]
    fn the_length_is_two_bytes_big_endian() {
        assert_eq!(encode(&[1u8; 0x102]).unwrap()[..2], [1, 2]);
        assert!(encode(&[]).is_none());
        assert!(encode(&vec![0u8; 0x10000]).is_none());
    }
}
