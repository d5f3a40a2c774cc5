//! The positional block-device trait that every format in umlkit reads and
//! writes through, with a file-backed and an in-memory implementation.
//!
//! A device is a flat array of bytes addressed by offset. It has no cursor,
//! so one device can be shared by several threads (`&self` everywhere; the
//! implementations use `pread`/`pwrite` or a lock). Overlays such as the COW
//! device ([`crate::cow::CowDevice`]) and the in-memory [`Overlay`] ("block
//! from a map, else below": the ext3 journal replay and the ext3 writer's
//! running transaction) are devices too and stack on another device.
#![forbid(unsafe_code)]

mod file;
mod mem;
mod overlay;

pub use file::FileDevice;
pub use mem::MemDevice;
pub use overlay::{BlockMap, Overlay};

use std::io;
use std::ops::Range;

/// A byte-addressed storage device with positional I/O.
pub trait BlockDevice: Send + Sync {
    /// Fills `buf` from `offset`. Reading past the end is an
    /// [`io::ErrorKind::UnexpectedEof`] error.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Writes all of `buf` at `offset`. Writing past the end is an error for
    /// fixed-size devices; a file device grows.
    fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()>;

    /// The device's length in bytes.
    fn len(&self) -> u64;

    /// True when the device has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes every completed write durable.
    fn flush(&self) -> io::Result<()>;

    /// The next range at or after `offset` that may hold data; bytes outside
    /// such ranges read as zeros. `None` when nothing but zeros follows.
    ///
    /// The default says the whole rest of the device may hold data; sparse
    /// files answer from `SEEK_DATA`/`SEEK_HOLE`.
    fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
        let len = self.len();
        Ok((offset < len).then_some(offset..len))
    }
}

/// Forwards every method of the trait through a pointer type.
macro_rules! forward_block_device {
    ($($ptr:ty),*) => {$(
        impl<T: BlockDevice + ?Sized> BlockDevice for $ptr {
            fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
                (**self).read_exact_at(offset, buf)
            }
            fn write_all_at(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
                (**self).write_all_at(offset, buf)
            }
            fn len(&self) -> u64 {
                (**self).len()
            }
            fn flush(&self) -> io::Result<()> {
                (**self).flush()
            }
            fn next_data(&self, offset: u64) -> io::Result<Option<Range<u64>>> {
                (**self).next_data(offset)
            }
        }
    )*};
}

forward_block_device!(&T, Box<T>, std::sync::Arc<T>);

/// The error for an access that does not fit inside a device of `len` bytes.
pub fn out_of_range(offset: u64, count: usize, len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("access of {count} bytes at offset {offset} is past the end of the device ({len} bytes)"),
    )
}

/// Checks that `count` bytes at `offset` fit in a device of `len` bytes.
pub fn check_range(offset: u64, count: usize, len: u64) -> io::Result<()> {
    let end = u64::try_from(count)
        .ok()
        .and_then(|c| offset.checked_add(c));
    match end {
        Some(end) if end <= len => Ok(()),
        _ => Err(out_of_range(offset, count, len)),
    }
}

/// Converts a `u64` to `usize`: lossless on the 64-bit hosts umlkit runs
/// on, saturating elsewhere so that bounds checks still fail safely.
pub fn usize_from(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// Converts a `usize` to `u64` (lossless wherever `usize` is 64 bits or
/// fewer; saturating otherwise).
pub fn u64_from(v: usize) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// True when every byte of `buf` is zero (word at a time; this is on the
/// merge's hot path).
pub fn is_zero(buf: &[u8]) -> bool {
    let words = buf.chunks_exact(16);
    let tail = words.remainder();
    words
        .map(|w| u128::from_ne_bytes(w.try_into().expect("chunks_exact gives 16 bytes")))
        .all(|w| w == 0)
        && tail.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_zero_finds_a_single_set_byte_anywhere() {
        let mut buf = vec![0u8; 4099];
        assert!(is_zero(&buf));
        for i in [0, 15, 16, 4096, 4098] {
            buf[i] = 1;
            assert!(!is_zero(&buf), "byte {i}");
            buf[i] = 0;
        }
    }

    #[test]
    fn check_range_rejects_overflow_and_past_end() {
        assert!(check_range(0, 10, 10).is_ok());
        assert!(check_range(1, 10, 10).is_err());
        assert!(check_range(u64::MAX, 2, u64::MAX).is_err());
    }
}
