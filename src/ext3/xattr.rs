//! Extended attributes: entries (`struct ext4_xattr_entry`) in the inode
//! after `i_extra_isize` (after a 4-byte magic) or in a separate block with
//! a 32-byte header (Documentation/filesystems/ext4/attributes.rst).

use super::bytes::u64_from;
use super::bytes::{le16, le32, u8_at};
use super::error::Corrupt;

/// `h_magic` of an attribute block and of the in-inode area.
pub const EXT4_XATTR_MAGIC: u32 = 0xEA02_0000;
/// Bound on entries in one area (a 64 KiB block of 16-byte entries).
const MAX_ENTRIES: usize = 4096;

/// One attribute with its full name (prefix included) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xattr {
    /// Full name, e.g. `user.comment`.
    pub name: Vec<u8>,
    /// The value. Empty when stored in another inode (`ea_inode`, see
    /// `value_inum`).
    pub value: Vec<u8>,
    /// The inode holding the value (ea_inode feature), or 0.
    pub value_inum: u32,
}

/// The prefix for `e_name_index`.
pub fn prefix(index: u8) -> Option<&'static str> {
    Some(match index {
        0 => "",
        1 => "user.",
        2 => "system.posix_acl_access",
        3 => "system.posix_acl_default",
        4 => "trusted.",
        6 => "security.",
        7 => "system.",
        8 => "system.richacl",
        _ => return None,
    })
}

/// Parses entries starting at `entries` in `area`; value offsets count from
/// `value_base`. The list ends at four zero bytes.
fn parse_entries(area: &[u8], entries: usize, value_base: usize) -> Result<Vec<Xattr>, Corrupt> {
    let mut out = Vec::new();
    let mut off = entries;
    loop {
        if out.len() > MAX_ENTRIES {
            return Err(Corrupt::TooMany {
                structure: "attribute area",
                count: u64_from(out.len()),
                max: u64_from(MAX_ENTRIES),
            });
        }
        // The area from this entry on; fields sit at constant offsets in
        // it (struct ext4_xattr_entry), so no offset arithmetic can wrap.
        let rest = area.get(off..).unwrap_or_default();
        if rest.len() < 4 {
            // The in-inode area may end without a terminator when full.
            return Ok(out);
        }
        if le32(rest, 0) == 0 {
            return Ok(out);
        }
        if rest.len() < 16 {
            return Err(Corrupt::CutOff {
                structure: "attribute entry",
                offset: off,
            });
        }
        let name_len = usize::from(u8_at(rest, 0));
        let index = u8_at(rest, 1);
        let value_offs = usize::from(le16(rest, 2));
        let value_inum = le32(rest, 4);
        let value_size = usize::try_from(le32(rest, 8)).unwrap_or(usize::MAX);
        let Some(name_bytes) = rest
            .get(16..)
            .and_then(|r| r.get(..name_len))
            .filter(|_| name_len != 0)
        else {
            return Err(Corrupt::BadEntry {
                structure: "attribute entry",
                offset: off,
                field: "e_name_len",
                value: u64_from(name_len),
            });
        };
        let Some(pre) = prefix(index) else {
            return Err(Corrupt::BadEntry {
                structure: "attribute entry",
                offset: off,
                field: "e_name_index",
                value: u64::from(index),
            });
        };
        let mut name = pre.as_bytes().to_vec();
        name.extend_from_slice(name_bytes);
        let value = if value_inum != 0 {
            Vec::new()
        } else {
            let start = value_base.checked_add(value_offs);
            let end = start.and_then(|s| s.checked_add(value_size));
            match (start, end) {
                (Some(s), Some(e)) if e <= area.len() => area[s..e].to_vec(),
                _ => {
                    return Err(Corrupt::BadEntry {
                        structure: "attribute entry",
                        offset: off,
                        field: "e_value_offs",
                        value: u64_from(value_offs),
                    })
                }
            }
        };
        out.push(Xattr {
            name,
            value,
            value_inum,
        });
        // EXT4_XATTR_LEN: the 16-byte header and the name, rounded up to
        // 4 bytes. name_len <= 255, and the name fit the area, so the sum
        // cannot overflow; past the end the loop stops above.
        let entry_len = name_len.checked_add(16 + 3).map(|n| n & !3);
        off = entry_len
            .and_then(|n| off.checked_add(n))
            .ok_or(Corrupt::CutOff {
                structure: "attribute entry",
                offset: off,
            })?;
    }
}

/// Parses the in-inode attribute area (the bytes after `i_extra_isize`).
/// An area without the magic holds no attributes.
pub fn parse_inode_area(area: &[u8]) -> Result<Vec<Xattr>, Corrupt> {
    if area.len() < 4 || le32(area, 0) != EXT4_XATTR_MAGIC {
        return Ok(Vec::new());
    }
    let body = &area[4..];
    parse_entries(body, 0, 0)
}

/// Parses an attribute block.
pub fn parse_block(b: &[u8]) -> Result<Vec<Xattr>, Corrupt> {
    if b.len() < 32 {
        return Err(Corrupt::TooShort {
            structure: "attribute block",
            len: b.len(),
            want: 32,
        });
    }
    let magic = le32(b, 0);
    if magic != EXT4_XATTR_MAGIC {
        return Err(Corrupt::BadMagic {
            structure: "attribute block",
            field: "h_magic",
            value: magic,
        });
    }
    let blocks = le32(b, 8);
    if blocks != 1 {
        return Err(Corrupt::BadField {
            field: "attribute block h_blocks",
            value: u64::from(blocks),
        });
    }
    parse_entries(b, 32, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(area: &mut [u8], off: usize, index: u8, name: &[u8], value_offs: u16, value: &[u8]) {
        area[off] = name.len() as u8;
        area[off + 1] = index;
        area[off + 2..off + 4].copy_from_slice(&value_offs.to_le_bytes());
        area[off + 8..off + 12].copy_from_slice(&(value.len() as u32).to_le_bytes());
        area[off + 16..off + 16 + name.len()].copy_from_slice(name);
        let v = usize::from(value_offs);
        area[v..v + value.len()].copy_from_slice(value);
    }

    #[test]
    fn parses_in_inode_attributes() {
        let mut area = vec![0u8; 96];
        area[0..4].copy_from_slice(&EXT4_XATTR_MAGIC.to_le_bytes());
        entry(&mut area[4..], 0, 1, b"color", 80, b"blue");
        let v = parse_inode_area(&area).unwrap();
        assert_eq!(
            v,
            vec![Xattr {
                name: b"user.color".to_vec(),
                value: b"blue".to_vec(),
                value_inum: 0
            }]
        );
        assert!(parse_inode_area(&[0u8; 16]).unwrap().is_empty());
    }

    #[test]
    fn parses_block_attributes_and_rejects_out_of_area_values() {
        let mut b = vec![0u8; 1024];
        b[0..4].copy_from_slice(&EXT4_XATTR_MAGIC.to_le_bytes());
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        entry(&mut b, 32, 6, b"selinux", 1000, b"ctx\0");
        let v = parse_block(&b).unwrap();
        assert_eq!(v[0].name, b"security.selinux");
        assert_eq!(v[0].value, b"ctx\0");
        b[32 + 8..32 + 12].copy_from_slice(&100u32.to_le_bytes());
        assert!(parse_block(&b).is_err());
        // A value size of 2^32 - 1 does not wrap the end offset.
        b[32 + 8..32 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse_block(&b),
            Err(Corrupt::BadEntry {
                field: "e_value_offs",
                ..
            })
        ));
    }

    #[test]
    fn entries_cut_off_by_the_area_end_are_clear_errors() {
        // A 255-byte name at the end of a 96-byte area.
        let mut area = vec![0u8; 96];
        area[0..4].copy_from_slice(&EXT4_XATTR_MAGIC.to_le_bytes());
        entry(&mut area[4..], 0, 1, b"c", 80, b"v");
        area[4] = 255;
        assert_eq!(
            parse_inode_area(&area).unwrap_err().to_string(),
            "attribute entry at byte 0 has a bad e_name_len 255"
        );
        // A header that does not fit: 8 bytes left after a first entry.
        let mut area = vec![0u8; 4 + 20 + 8];
        area[0..4].copy_from_slice(&EXT4_XATTR_MAGIC.to_le_bytes());
        entry(&mut area[4..], 0, 1, b"c", 0, b"");
        area[4 + 20] = 1;
        assert_eq!(
            parse_inode_area(&area).unwrap_err().to_string(),
            "attribute entry at byte 20 is cut off by the end of its block"
        );
    }
}
