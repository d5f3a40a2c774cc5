//! The COW header: parsing of versions 1, 2 and 3 (and the broken 64-bit v3
//! layout), emitting, and the derived layout (bitmap and data offsets).
//!
//! Facts from `shared/specs/cow-format.md` ("Magic and version detection",
//! "Version 3", "The broken 64-bit v3 layout", "Version 2", "Version 1").
//! Parsing is pure: bytes in, a validated [`Header`] or a [`HeaderError`] out.

use std::fmt;

/// `0x4F4F4F4D`, the bytes `OOOM` when stored big-endian.
pub const COW_MAGIC: u32 = 0x4F4F_4F4D;

/// Bytes to read to be sure of having any header (the largest is the
/// broken v3 layout, 4136 bytes).
pub const MAX_HEADER_LEN: usize = 4136;

/// Size of the v3 header as written (packed).
pub const V3_HEADER_LEN: usize = 4128;

/// Capacity of the v3 and v2 `backing_file` field.
const PATH_LEN_V3: usize = 4096;
/// Capacity of the v1 `backing_file` field.
const PATH_LEN_V1: usize = 256;

/// The sector size the kernel and `uml_mkcow` write.
pub const DEFAULT_SECTOR_SIZE: u32 = 512;
/// The alignment the kernel (PAGE_SIZE) and `uml_mkcow` write.
pub const DEFAULT_ALIGNMENT: u32 = 4096;

/// Which on-disk layout a header uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Layout {
    /// Version 1: native byte order, 256-byte path.
    V1,
    /// Version 2: big-endian, path before the numbers.
    V2,
    /// Version 3, packed (what everything writes today).
    V3,
    /// Version 3 as unpacked 64-bit builds wrote it before December 2005.
    V3Broken,
}

impl Layout {
    /// The version number stored in the file.
    pub fn version(self) -> u32 {
        match self {
            Layout::V1 => 1,
            Layout::V2 => 2,
            Layout::V3 | Layout::V3Broken => 3,
        }
    }

    /// The length of the header structure on disk.
    pub fn header_len(self) -> usize {
        match self {
            Layout::V1 => 280,
            Layout::V2 => 4120,
            Layout::V3 => V3_HEADER_LEN,
            Layout::V3Broken => MAX_HEADER_LEN,
        }
    }

    fn path_capacity(self) -> usize {
        match self {
            Layout::V1 => PATH_LEN_V1,
            _ => PATH_LEN_V3,
        }
    }
}

/// Byte order of the numbers in a v1 header (v2 and v3 are big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ByteOrder {
    /// Little-endian (x86 native).
    Little,
    /// Big-endian.
    Big,
}

/// A validated COW header with its derived layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Which layout the file uses.
    pub layout: Layout,
    /// Byte order the magic was found in.
    pub byte_order: ByteOrder,
    /// The backing file's path as stored (bytes up to the NUL).
    pub backing_file: Vec<u8>,
    /// The backing file's mtime in seconds, as recorded.
    pub mtime: u32,
    /// The backing file's size in bytes.
    pub size: u64,
    /// Bytes per sector (one bitmap bit each).
    pub sector_size: u32,
    /// Alignment of the bitmap and the data area.
    pub alignment: u32,
    /// Offset of the bitmap.
    pub bitmap_offset: u64,
    /// Length of the bitmap as the format defines it (v1/v2 keep the
    /// historic rounding bug, see [`Header::bitmap_bytes_needed`]).
    pub bitmap_len: u64,
    /// Offset of sector 0's data.
    pub data_offset: u64,
}

/// Why a header is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The file is shorter than any header.
    #[error("short header ({0} bytes)")]
    Short(usize),
    /// The magic is missing: the file is a plain image, not a COW file.
    #[error("not a COW file (no COW magic)")]
    NotCow,
    /// A version other than 1, 2 or 3.
    #[error("invalid COW version {0}")]
    BadVersion(u32),
    /// The backing file name has no terminating NUL.
    #[error("backing file name is not NUL-terminated")]
    UnterminatedPath,
    /// The backing file name is empty.
    #[error("backing file name is empty")]
    EmptyPath,
    /// Alignment 0.
    #[error("invalid COW header, align == 0")]
    ZeroAlignment,
    /// Sector size 0 or not a power of two.
    #[error("invalid sector size {0} (must be a power of two)")]
    BadSectorSize(u32),
    /// A negative sector size or alignment read from a signed field.
    #[error("invalid {field} {value}")]
    Negative {
        /// The field's C name.
        field: &'static str,
        /// The value as stored.
        value: i64,
    },
    /// The sizes overflow 64-bit offsets.
    #[error("backing file size {0} overflows the COW layout")]
    Overflow(u64),
    /// A cow_format other than 0 (bitmap).
    #[error("unsupported cow_format {0}")]
    UnsupportedFormat(u32),
    /// The path does not fit the layout's path field.
    #[error("backing file path is {len} bytes, longer than the {max} the header can hold")]
    PathTooLong {
        /// The path's length.
        len: usize,
        /// The field's capacity less the NUL.
        max: usize,
    },
}

fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u32_in(b: &[u8], off: usize, order: ByteOrder) -> u32 {
    let a = [b[off], b[off + 1], b[off + 2], b[off + 3]];
    match order {
        ByteOrder::Little => u32::from_le_bytes(a),
        ByteOrder::Big => u32::from_be_bytes(a),
    }
}

fn u64_in(b: &[u8], off: usize, order: ByteOrder) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    match order {
        ByteOrder::Little => u64::from_le_bytes(a),
        ByteOrder::Big => u64::from_be_bytes(a),
    }
}

fn put32(b: &mut [u8], off: usize, v: u32, order: ByteOrder) {
    let bytes = match order {
        ByteOrder::Little => v.to_le_bytes(),
        ByteOrder::Big => v.to_be_bytes(),
    };
    b[off..off + 4].copy_from_slice(&bytes);
}

fn put64(b: &mut [u8], off: usize, v: u64, order: ByteOrder) {
    let bytes = match order {
        ByteOrder::Little => v.to_le_bytes(),
        ByteOrder::Big => v.to_be_bytes(),
    };
    b[off..off + 8].copy_from_slice(&bytes);
}

/// Field offsets of one layout: (path, mtime, size, sectorsize, alignment,
/// cow_format). `None` where the layout has no such field.
struct Fields {
    path: usize,
    mtime: usize,
    size: usize,
    sector_size: usize,
    alignment: Option<usize>,
    cow_format: Option<usize>,
}

fn fields(layout: Layout) -> Fields {
    match layout {
        Layout::V1 => Fields {
            path: 0x08,
            mtime: 0x108,
            size: 0x10C,
            sector_size: 0x114,
            alignment: None,
            cow_format: None,
        },
        Layout::V2 => Fields {
            path: 0x08,
            mtime: 0x1008,
            size: 0x100C,
            sector_size: 0x1014,
            alignment: None,
            cow_format: None,
        },
        Layout::V3 => Fields {
            path: 0x20,
            mtime: 0x08,
            size: 0x0C,
            sector_size: 0x14,
            alignment: Some(0x18),
            cow_format: Some(0x1C),
        },
        // The s64 mtime at 0x08 is read as its first four bytes, big-endian,
        // as the kernel does (spec: "Bug-for-bug").
        Layout::V3Broken => Fields {
            path: 0x24,
            mtime: 0x08,
            size: 0x10,
            sector_size: 0x18,
            alignment: Some(0x1C),
            cow_format: Some(0x20),
        },
    }
}

fn round_up(v: u64, to: u64) -> Option<u64> {
    v.checked_add(to - 1).map(|x| x / to * to)
}

/// A sector size or alignment field, which the C structs hold as `s32`.
fn positive(v: u32, field: &'static str) -> Result<u32, HeaderError> {
    // The C field is an `s32`: the same bits, read signed.
    let signed = i32::from_ne_bytes(v.to_ne_bytes());
    if signed < 0 {
        return Err(HeaderError::Negative {
            field,
            value: i64::from(signed),
        });
    }
    Ok(v)
}

impl Header {
    /// Parses and validates a header from the start of a COW file. `bytes`
    /// may be longer than the header (pass [`MAX_HEADER_LEN`] bytes or the
    /// whole file when shorter).
    pub fn parse(bytes: &[u8]) -> Result<Header, HeaderError> {
        if bytes.len() < 8 {
            return Err(HeaderError::Short(bytes.len()));
        }
        let byte_order =
            if u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == COW_MAGIC {
                ByteOrder::Little
            } else if be32(bytes, 0) == COW_MAGIC {
                ByteOrder::Big
            } else {
                return Err(HeaderError::NotCow);
            };
        let version = u32_in(bytes, 4, byte_order);
        let layout = match version {
            1 => Layout::V1,
            2 => Layout::V2,
            3 => {
                // A real v3 path is never empty, so four zero bytes where the
                // path starts mean the unpacked layout (its cow_format).
                if bytes.len() >= 0x24 && bytes[0x20..0x24] == [0, 0, 0, 0] {
                    Layout::V3Broken
                } else {
                    Layout::V3
                }
            }
            v => return Err(HeaderError::BadVersion(v)),
        };
        let f = fields(layout);
        if bytes.len() < f.path + 1 {
            return Err(HeaderError::Short(bytes.len()));
        }
        // Only v1 is native-endian; v2 and v3 numbers are big-endian.
        let order = if layout == Layout::V1 {
            byte_order
        } else {
            ByteOrder::Big
        };
        let need = layout.header_len().min(f.path + layout.path_capacity());
        let numbers_end = [
            f.mtime + 4,
            f.size + 8,
            f.sector_size + 4,
            f.alignment.map_or(0, |a| a + 4),
        ]
        .into_iter()
        .chain(f.cow_format.map(|c| c + 4))
        .max()
        .unwrap_or(0);
        if bytes.len() < numbers_end {
            return Err(HeaderError::Short(bytes.len()));
        }

        let path_field = &bytes[f.path..need.min(bytes.len())];
        let nul = path_field.iter().position(|&b| b == 0);
        let backing_file = match nul {
            Some(0) => return Err(HeaderError::EmptyPath),
            Some(n) => path_field[..n].to_vec(),
            None if bytes.len() < need => return Err(HeaderError::Short(bytes.len())),
            None => return Err(HeaderError::UnterminatedPath),
        };

        let mtime = u32_in(bytes, f.mtime, order);
        let size = u64_in(bytes, f.size, order);
        let sector_size = positive(u32_in(bytes, f.sector_size, order), "sector size")?;
        if sector_size == 0 || !sector_size.is_power_of_two() {
            return Err(HeaderError::BadSectorSize(sector_size));
        }
        let alignment = match f.alignment {
            Some(off) => positive(u32_in(bytes, off, order), "alignment")?,
            None => sector_size,
        };
        if alignment == 0 {
            return Err(HeaderError::ZeroAlignment);
        }
        if let Some(off) = f.cow_format {
            let format = u32_in(bytes, off, order);
            if format != 0 {
                return Err(HeaderError::UnsupportedFormat(format));
            }
        }
        Self::with_layout(
            layout,
            byte_order,
            backing_file,
            mtime,
            size,
            sector_size,
            alignment,
        )
    }

    /// Builds a header and computes its derived layout (spec: `cow_sizes`).
    pub fn with_layout(
        layout: Layout,
        byte_order: ByteOrder,
        backing_file: Vec<u8>,
        mtime: u32,
        size: u64,
        sector_size: u32,
        alignment: u32,
    ) -> Result<Header, HeaderError> {
        let ss = u64::from(sector_size);
        let align = u64::from(alignment);
        if ss == 0 || !sector_size.is_power_of_two() {
            return Err(HeaderError::BadSectorSize(sector_size));
        }
        if align == 0 {
            return Err(HeaderError::ZeroAlignment);
        }
        let overflow = || HeaderError::Overflow(size);
        let header_len = crate::block::u64_from(layout.header_len());
        let (bitmap_offset, bitmap_len, data_offset) = match layout {
            Layout::V1 | Layout::V2 => {
                // The historic rounding, one byte short when the sector count
                // is not a multiple of 8 (spec, "Version 2").
                let bitmap_len = size.checked_add(ss - 1).ok_or_else(overflow)? / (8 * ss);
                let data = round_up(header_len + bitmap_len, ss).ok_or_else(overflow)?;
                (header_len, bitmap_len, data)
            }
            Layout::V3 | Layout::V3Broken => {
                let bitmap_offset = round_up(header_len, align).ok_or_else(overflow)?;
                let sectors = size.div_ceil(ss);
                let bitmap_len = sectors.div_ceil(8);
                let data = bitmap_offset
                    .checked_add(bitmap_len)
                    .and_then(|end| round_up(end, align))
                    .ok_or_else(overflow)?;
                (bitmap_offset, bitmap_len, data)
            }
        };
        data_offset.checked_add(size).ok_or_else(overflow)?;
        if i64::try_from(data_offset + size).is_err() {
            return Err(overflow());
        }
        Ok(Header {
            layout,
            byte_order,
            backing_file,
            mtime,
            size,
            sector_size,
            alignment,
            bitmap_offset,
            bitmap_len,
            data_offset,
        })
    }

    /// A v3 header as the kernel and `uml_mkcow` write it.
    pub fn new_v3(backing_file: Vec<u8>, mtime: u32, size: u64) -> Result<Header, HeaderError> {
        if backing_file.len() >= PATH_LEN_V3 {
            return Err(HeaderError::PathTooLong {
                len: backing_file.len(),
                max: PATH_LEN_V3 - 1,
            });
        }
        if backing_file.is_empty() {
            return Err(HeaderError::EmptyPath);
        }
        Self::with_layout(
            Layout::V3,
            ByteOrder::Big,
            backing_file,
            mtime,
            size,
            DEFAULT_SECTOR_SIZE,
            DEFAULT_ALIGNMENT,
        )
    }

    /// The on-disk bytes of this header in its own layout.
    pub fn to_bytes(&self) -> Result<Vec<u8>, HeaderError> {
        let layout = self.layout;
        let cap = layout.path_capacity();
        if self.backing_file.len() >= cap {
            return Err(HeaderError::PathTooLong {
                len: self.backing_file.len(),
                max: cap - 1,
            });
        }
        let f = fields(layout);
        let order = if layout == Layout::V1 {
            self.byte_order
        } else {
            ByteOrder::Big
        };
        let mut b = vec![0u8; layout.header_len()];
        put32(&mut b, 0, COW_MAGIC, self.byte_order);
        put32(&mut b, 4, layout.version(), self.byte_order);
        b[f.path..f.path + self.backing_file.len()].copy_from_slice(&self.backing_file);
        put32(&mut b, f.mtime, self.mtime, order);
        put64(&mut b, f.size, self.size, order);
        put32(&mut b, f.sector_size, self.sector_size, order);
        if let Some(off) = f.alignment {
            put32(&mut b, off, self.alignment, order);
        }
        if let Some(off) = f.cow_format {
            put32(&mut b, off, 0, order);
        }
        Ok(b)
    }

    /// Number of sectors the bitmap covers (a partial last sector counts).
    pub fn sectors(&self) -> u64 {
        self.size.div_ceil(u64::from(self.sector_size))
    }

    /// Bytes of bitmap needed to hold a bit for every sector. Equals
    /// `bitmap_len` except for v1/v2 files hit by the rounding bug, whose
    /// last bits lie just past the recorded bitmap.
    pub fn bitmap_bytes_needed(&self) -> u64 {
        self.sectors().div_ceil(8)
    }

    /// Where the COW file must end: the data area holds every sector.
    pub fn file_len_needed(&self) -> u64 {
        self.data_offset + self.size
    }

    /// The backing path as text for messages.
    pub fn backing_display(&self) -> String {
        String::from_utf8_lossy(&self.backing_file).into_owned()
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layout::V1 => f.write_str("1"),
            Layout::V2 => f.write_str("2"),
            Layout::V3 => f.write_str("3"),
            Layout::V3Broken => f.write_str("3 (broken 64-bit layout)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the spec: `uml_mkcow a.cow /tmp/cowv/backing.img`
    /// over 1 MiB of zeros with mtime 1700000000.
    fn spec_vector() -> Vec<u8> {
        let mut b = vec![0u8; V3_HEADER_LEN];
        let head: [u8; 0x20] = [
            0x4f, 0x4f, 0x4f, 0x4d, 0x00, 0x00, 0x00, 0x03, 0x65, 0x53, 0xf1, 0x00, 0x00, 0x00,
            0x00, 0x00, //
            0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,
            0x00, 0x00,
        ];
        b[..0x20].copy_from_slice(&head);
        b[0x20..0x20 + 22].copy_from_slice(b"/tmp/cowv/backing.img\0");
        b
    }

    #[test]
    fn spec_test_vector_parses_to_the_documented_layout() {
        let h = Header::parse(&spec_vector()).unwrap();
        assert_eq!(h.layout, Layout::V3);
        assert_eq!(h.mtime, 1_700_000_000);
        assert_eq!(h.size, 1 << 20);
        assert_eq!(h.sector_size, 512);
        assert_eq!(h.alignment, 4096);
        assert_eq!(h.backing_file, b"/tmp/cowv/backing.img");
        assert_eq!(h.bitmap_offset, 0x2000);
        assert_eq!(h.bitmap_len, 256);
        assert_eq!(h.data_offset, 0x3000);
        assert_eq!(h.file_len_needed(), 1_060_864);
    }

    #[test]
    fn new_v3_emits_the_spec_test_vector_byte_for_byte() {
        let h = Header::new_v3(b"/tmp/cowv/backing.img".to_vec(), 1_700_000_000, 1 << 20).unwrap();
        assert_eq!(h.to_bytes().unwrap(), spec_vector());
    }

    #[test]
    fn every_layout_round_trips_through_bytes() {
        for layout in [Layout::V1, Layout::V2, Layout::V3, Layout::V3Broken] {
            for order in [ByteOrder::Little, ByteOrder::Big] {
                let align = if matches!(layout, Layout::V3 | Layout::V3Broken) {
                    4096
                } else {
                    512
                };
                let h = Header::with_layout(
                    layout,
                    order,
                    b"/srv/root_fs".to_vec(),
                    1234,
                    5_000_000,
                    512,
                    align,
                )
                .unwrap();
                let parsed = Header::parse(&h.to_bytes().unwrap()).unwrap();
                assert_eq!(parsed.byte_order, order);
                assert_eq!(parsed, h, "{layout:?} {order:?}");
            }
        }
    }

    #[test]
    fn broken_v3_layout_is_detected_and_its_mtime_read_as_the_kernel_does() {
        let h = Header::with_layout(
            Layout::V3Broken,
            ByteOrder::Big,
            b"/b".to_vec(),
            77,
            4096,
            512,
            4096,
        )
        .unwrap();
        let bytes = h.to_bytes().unwrap();
        assert_eq!(&bytes[0x20..0x24], &[0, 0, 0, 0]);
        let parsed = Header::parse(&bytes).unwrap();
        assert_eq!(parsed.layout, Layout::V3Broken);
        assert_eq!(parsed.mtime, 77);
        assert_eq!(parsed.bitmap_offset, 8192); // round_up(4136, 4096)
    }

    #[test]
    fn v2_keeps_the_historic_short_bitmap() {
        // 9 sectors: one byte of bitmap by the old formula, two needed.
        let h = Header::with_layout(
            Layout::V2,
            ByteOrder::Big,
            b"/b".to_vec(),
            0,
            9 * 512,
            512,
            512,
        )
        .unwrap();
        assert_eq!(h.bitmap_offset, 4120);
        assert_eq!(h.bitmap_len, 1);
        assert_eq!(h.bitmap_bytes_needed(), 2);
        assert_eq!(h.data_offset, 4608);
    }

    #[test]
    fn bad_headers_are_rejected_with_the_reason() {
        let good = spec_vector();
        assert_eq!(Header::parse(&good[..6]), Err(HeaderError::Short(6)));
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(Header::parse(&b), Err(HeaderError::NotCow));
        let mut b = good.clone();
        b[7] = 9;
        assert_eq!(Header::parse(&b), Err(HeaderError::BadVersion(9)));
        let mut b = good.clone();
        b[0x18..0x1C].copy_from_slice(&[0; 4]);
        assert_eq!(Header::parse(&b), Err(HeaderError::ZeroAlignment));
        let mut b = good.clone();
        b[0x14..0x18].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(Header::parse(&b), Err(HeaderError::BadSectorSize(0)));
        let mut b = good.clone();
        b[0x14..0x18].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(Header::parse(&b), Err(HeaderError::BadSectorSize(1000)));
        let mut b = good.clone();
        b[0x0C..0x14].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(Header::parse(&b), Err(HeaderError::Overflow(_))));
        let mut b = good.clone();
        b[0x20..].fill(b'a');
        assert_eq!(Header::parse(&b), Err(HeaderError::UnterminatedPath));
        assert_eq!(Header::parse(&good[..0x30]), Err(HeaderError::Short(0x30)));
    }

    #[test]
    fn random_bytes_never_panic_the_parser() {
        let mut x: u64 = 0x1234_5678;
        for len in (0..5000).step_by(37) {
            for _ in 0..20 {
                let mut b: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                if len >= 8 {
                    b[..4].copy_from_slice(&COW_MAGIC.to_be_bytes());
                    b[4..8].copy_from_slice(&u32::from(x as u8 % 4).to_be_bytes());
                }
                let _ = Header::parse(&b);
            }
        }
    }
}
