//! Little- and big-endian field readers and writers over byte slices, for
//! the parsers and the writer (the field offsets are declared once, in the
//! `field` table of each structure's file).
//!
//! Every parser first checks the slice's length against its structure's
//! size; these helpers then return 0 for a field past the end instead of
//! panicking, so a length bug can never become a crash on untrusted input.

/// `u8` at `off`.
pub fn u8_at(b: &[u8], off: usize) -> u8 {
    b.get(off).copied().unwrap_or(0)
}

fn array<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    off.checked_add(N)
        .and_then(|end| b.get(off..end))
        .and_then(|s| s.try_into().ok())
        .unwrap_or([0; N])
}

/// Little-endian `u16` at `off`.
pub fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(array(b, off))
}

/// Little-endian `u32` at `off`.
pub fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(array(b, off))
}

/// Little-endian `u64` at `off`.
pub fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(array(b, off))
}

/// Big-endian `u32` at `off` (the journal is big-endian).
pub fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes(array(b, off))
}

/// Big-endian `u64` at `off`.
pub fn be64(b: &[u8], off: usize) -> u64 {
    u64::from_be_bytes(array(b, off))
}

/// `N` raw bytes at `off`.
pub fn bytes_at<const N: usize>(b: &[u8], off: usize) -> [u8; N] {
    array(b, off)
}

fn put<const N: usize>(b: &mut [u8], off: usize, v: [u8; N]) {
    let dst = off.checked_add(N).and_then(|end| b.get_mut(off..end));
    debug_assert!(
        dst.is_some(),
        "field at {off} past the end of {} bytes",
        b.len()
    );
    if let Some(dst) = dst {
        dst.copy_from_slice(&v);
    }
}

/// Writes `u8` `v` at `off` (nothing past the end).
pub fn set_u8(b: &mut [u8], off: usize, v: u8) {
    put(b, off, [v]);
}

/// Writes little-endian `u16` `v` at `off` (nothing past the end).
pub fn set_le16(b: &mut [u8], off: usize, v: u16) {
    put(b, off, v.to_le_bytes());
}

/// Writes little-endian `u32` `v` at `off` (nothing past the end).
pub fn set_le32(b: &mut [u8], off: usize, v: u32) {
    put(b, off, v.to_le_bytes());
}

/// Writes big-endian `u32` `v` at `off` (nothing past the end).
pub fn set_be32(b: &mut [u8], off: usize, v: u32) {
    put(b, off, v.to_be_bytes());
}

/// The low 32 bits of `v` (the `_lo` half of a split field).
pub fn lo32(v: u64) -> u32 {
    u32::try_from(v & 0xFFFF_FFFF).unwrap_or(u32::MAX)
}

/// Bits 32..64 of `v` (the `_hi` half of a split field).
pub fn hi32(v: u64) -> u32 {
    u32::try_from(v >> 32).unwrap_or(u32::MAX)
}

/// The low 16 bits of `v`.
pub fn lo16(v: u32) -> u16 {
    u16::try_from(v & 0xFFFF).unwrap_or(u16::MAX)
}

/// Bits 16..32 of `v`.
pub fn hi16(v: u32) -> u16 {
    u16::try_from(v >> 16).unwrap_or(u16::MAX)
}

/// A NUL-padded C string field as bytes, without the padding.
pub fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    &field[..end]
}

/// Joins a `_lo`/`_hi` pair into one 64-bit number.
pub fn lo_hi(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | (u64::from(hi) << 32)
}

pub use crate::block::{u64_from, usize_from};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_return_zero_past_the_end_instead_of_panicking() {
        let b = [1u8, 2, 3];
        assert_eq!(le16(&b, 0), 0x0201);
        assert_eq!(le32(&b, 0), 0);
        assert_eq!(be32(&b, usize::MAX), 0);
        assert_eq!(u8_at(&b, 3), 0);
    }

    #[test]
    fn setters_write_what_the_readers_read_and_ignore_the_past_end() {
        let mut b = [0u8; 6];
        set_le16(&mut b, 0, 0xBEEF);
        set_le32(&mut b, 2, 0x0102_0304);
        assert_eq!(le16(&b, 0), 0xBEEF);
        assert_eq!(le32(&b, 2), 0x0102_0304);
        assert_eq!((lo32(0x1_0000_0002), hi32(0x1_0000_0002)), (2, 1));
        assert_eq!((lo16(0x3_0004), hi16(0x3_0004)), (4, 3));
    }

    #[test]
    fn cstr_stops_at_the_first_nul() {
        assert_eq!(cstr(b"abc\0def"), b"abc");
        assert_eq!(cstr(b"abc"), b"abc");
    }
}
