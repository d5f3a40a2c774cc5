//! The two checksums jbd2 uses: CRC32C for checksum v2/v3 (computed like
//! Linux's `jbd2_chksum`: the raw register, no pre- or post-inversion) and
//! the big-endian CRC32 of checksum v1 (`crc32_be`).
//!
//! CRC arithmetic is XOR and shifts in GF(2), which cannot overflow: the
//! register math needs no checked or wrapping ops. The runtime functions
//! do no `+`/`-`/`*` at all; only the compile-time table builders have
//! loop counters (see the allow on them).

// Table builders run at compile time over constants only. `From` is not
// const: the index is below 256, so `as u32` is exact; the loop counters
// stay below 256 and 8 (a const fn has no iterators), so `+= 1` cannot
// overflow and a wrong bound would fail the build, not a read.
#[allow(clippy::as_conversions, clippy::arithmetic_side_effects)]
const fn crc32c_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

// Table builders run at compile time over constants only. `From` is not
// const: the index is below 256, so `as u32` is exact; the loop counters
// stay below 256 and 8 (a const fn has no iterators), so `+= 1` cannot
// overflow and a wrong bound would fail the build, not a read.
#[allow(clippy::as_conversions, clippy::arithmetic_side_effects)]
const fn crc32_be_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04C1_1DB7
            } else {
                c << 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// Slicing-by-8 (Intel's, as zlib and Linux's `crc32c_generic` do it):
/// `T[k][i]` is the register after byte `i` followed by `k` zero bytes,
/// so eight bytes fold with eight lookups instead of eight rounds.
// Compile-time only: `From` is not const: the index is below 256, so
// `as usize` is exact; `k - 1` with `k >= 1` and the counters below 256
// and 8 cannot overflow.
#[allow(clippy::as_conversions, clippy::arithmetic_side_effects)]
const fn crc32c_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    t[0] = crc32c_table();
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            k += 1;
        }
        i += 1;
    }
    t
}

static CRC32C: [[u32; 256]; 8] = crc32c_tables();
static CRC32_BE: [u32; 256] = crc32_be_table();

/// Continues a CRC32C register `crc` over `data` (no inversions). Every
/// metadata block of a metadata_csum filesystem goes through here, so it
/// takes eight bytes a step.
pub fn crc32c(mut crc: u32, data: &[u8]) -> u32 {
    let t = &CRC32C;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let [a, b, c, d] = (crc ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]])).to_le_bytes();
        crc = t[7][usize::from(a)]
            ^ t[6][usize::from(b)]
            ^ t[5][usize::from(c)]
            ^ t[4][usize::from(d)]
            ^ t[3][usize::from(w[4])]
            ^ t[2][usize::from(w[5])]
            ^ t[1][usize::from(w[6])]
            ^ t[0][usize::from(w[7])];
    }
    for &b in words.remainder() {
        crc = t[0][usize::from((crc ^ u32::from(b)).to_le_bytes()[0])] ^ (crc >> 8);
    }
    crc
}

/// Continues a big-endian CRC32 register `crc` over `data` (Linux's
/// `crc32_be`, no inversions).
pub fn crc32_be(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC32_BE[usize::from(((crc >> 24) ^ u32::from(b)).to_le_bytes()[0])] ^ (crc << 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The usual CRC-32C check: inverted in and out.
        assert_eq!(!crc32c(!0, b"123456789"), 0xE306_9283);
    }

    #[test]
    fn crc32c_by_eight_bytes_matches_a_byte_at_a_time() {
        let data: Vec<u8> = (0..4099u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for len in [0, 1, 7, 8, 9, 63, 64, 1024, 4096, 4099] {
            for start in [0, 1, 3] {
                let part = &data[start..len.max(start)];
                let mut slow = 0x1234_5678u32;
                for &b in part {
                    slow = CRC32C[0][usize::from((slow ^ u32::from(b)) as u8)] ^ (slow >> 8);
                }
                assert_eq!(crc32c(0x1234_5678, part), slow, "len {len} start {start}");
            }
        }
    }

    #[test]
    fn crc32_be_matches_the_bzip2_check_value() {
        assert_eq!(!crc32_be(!0, b"123456789"), 0xFC89_1918);
    }
}
