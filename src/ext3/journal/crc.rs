//! The two checksums jbd2 uses: CRC32C for checksum v2/v3 (computed like
//! Linux's `jbd2_chksum`: the raw register, no pre- or post-inversion) and
//! the big-endian CRC32 of checksum v1 (`crc32_be`).

// `From` is not const: the index is below 256, so `as u32` is exact.
#[allow(clippy::as_conversions)]
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

// `From` is not const: the index is below 256, so `as u32` is exact.
#[allow(clippy::as_conversions)]
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

static CRC32C: [u32; 256] = crc32c_table();
static CRC32_BE: [u32; 256] = crc32_be_table();

/// Continues a CRC32C register `crc` over `data` (no inversions).
pub fn crc32c(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC32C[usize::from((crc ^ u32::from(b)).to_le_bytes()[0])] ^ (crc >> 8);
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
    fn crc32_be_matches_the_bzip2_check_value() {
        assert_eq!(!crc32_be(!0, b"123456789"), 0xFC89_1918);
    }
}
