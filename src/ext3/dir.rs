//! Directory blocks: a chain of `struct ext4_dir_entry_2` records
//! (inode, rec_len, name_len, file_type, name) filling each block
//! (Documentation/filesystems/ext4/directory.rst). Read block by block, a
//! hash-tree (htree) directory's index blocks look like one empty entry
//! spanning the block, and the metadata_csum tail like a 12-byte empty
//! entry, so both are skipped as deleted entries (readdir and lookups of
//! indexed directories go through the index: [`super::dx_readdir`],
//! [`super::htree`]).

use super::bytes::u64_from;
use super::bytes::{le16, le32, u8_at};
use super::error::Corrupt;

/// Size of the fixed part of a directory entry.
pub const DIRENT_HEADER: usize = 8;

/// One live directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Byte offset of the entry inside its block.
    pub offset: usize,
    /// Byte offset of the next entry (`offset + rec_len`).
    pub next: usize,
    /// The inode the name refers to.
    pub inode: u32,
    /// `file_type` (0 when the filetype feature is off).
    pub file_type: u8,
    /// The name (any bytes but `/` and NUL).
    pub name: Vec<u8>,
}

/// The record length stored in `rec_len`, as Linux decodes it for 64 KiB
/// blocks (`ext4_rec_len_from_disk`).
pub fn rec_len_from_disk(raw: u16, block_size: usize) -> usize {
    if block_size >= 65536 && (raw == 0 || raw == u16::MAX) {
        return block_size;
    }
    let r = usize::from(raw);
    if block_size >= 65536 {
        (r & 65532) | ((r & 3) << 16)
    } else {
        r
    }
}

/// Parses one directory block into its live entries (inode != 0). Every
/// record is checked as Linux's `ext4_check_dir_entry` does: `rec_len` a
/// multiple of 4, at least 12 and large enough for the name, not past the
/// block.
pub fn parse_block(b: &[u8], filetype: bool) -> Result<Vec<DirEntry>, Corrupt> {
    let mut out = Vec::new();
    let mut off = 0usize;
    // `rest` is the block from this entry on; fields are read at their
    // constant offsets in it, so no offset arithmetic can wrap.
    while let Some(rest) = b.get(off..).filter(|r| !r.is_empty()) {
        if rest.len() < DIRENT_HEADER {
            return Err(Corrupt::CutOff {
                structure: "directory entry",
                offset: off,
            });
        }
        let inode = le32(rest, 0);
        let rec_len = rec_len_from_disk(le16(rest, 4), b.len());
        let name_len = if filetype {
            usize::from(u8_at(rest, 6))
        } else {
            usize::from(le16(rest, 6))
        };
        let file_type = if filetype { u8_at(rest, 7) } else { 0 };
        if rec_len < 12 || rec_len % 4 != 0 {
            return Err(Corrupt::BadEntry {
                structure: "directory entry",
                offset: off,
                field: "rec_len",
                value: u64_from(rec_len),
            });
        }
        if rec_len > rest.len() {
            return Err(Corrupt::CutOff {
                structure: "directory entry",
                offset: off,
            });
        }
        // The name must fit the record after the 8-byte header.
        let Some(name) = rest
            .get(DIRENT_HEADER..rec_len)
            .and_then(|r| r.get(..name_len))
        else {
            return Err(Corrupt::BadEntry {
                structure: "directory entry",
                offset: off,
                field: "name_len",
                value: u64_from(name_len),
            });
        };
        // rec_len <= rest.len() == b.len() - off: this cannot overflow.
        let next = off.checked_add(rec_len).ok_or(Corrupt::CutOff {
            structure: "directory entry",
            offset: off,
        })?;
        if inode != 0 {
            if name.is_empty() || name.iter().any(|&c| c == b'/' || c == 0) {
                return Err(Corrupt::BadName(off));
            }
            out.push(DirEntry {
                offset: off,
                next,
                inode,
                file_type,
                name: name.to_vec(),
            });
        }
        off = next;
    }
    Ok(out)
}

/// Checks the metadata_csum tail of a directory leaf block
/// (`struct ext4_dir_entry_tail`: a 12-byte fake entry with file type
/// 0xDE ending the block, then the CRC32C of everything before it, seeded
/// per inode). Blocks without such a tail (hash-tree index blocks) are not
/// checked here.
pub fn verify_tail(b: &[u8], inode_seed: u32) -> Result<(), Corrupt> {
    let Some((body, t)) = b.split_last_chunk::<12>() else {
        return Ok(());
    };
    let is_tail = le32(t, 0) == 0 && le16(t, 4) == 12 && u8_at(t, 6) == 0 && u8_at(t, 7) == 0xDE;
    if !is_tail {
        return Ok(());
    }
    let want = super::journal::crc::crc32c(inode_seed, body);
    let stored = le32(t, 8);
    if want != stored {
        return Err(Corrupt::Checksum {
            structure: "directory block",
            stored,
            computed: want,
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes entries (inode, type, name) into a block of `size` bytes; the
    /// last entry's rec_len reaches the block end.
    pub fn block(entries: &[(u32, u8, &[u8])], size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        let mut off = 0;
        for (i, &(ino, t, name)) in entries.iter().enumerate() {
            let len = if i + 1 == entries.len() {
                size - off
            } else {
                (8 + name.len() + 3) & !3
            };
            b[off..off + 4].copy_from_slice(&ino.to_le_bytes());
            b[off + 4..off + 6].copy_from_slice(&(len as u16).to_le_bytes());
            b[off + 6] = name.len() as u8;
            b[off + 7] = t;
            b[off + 8..off + 8 + name.len()].copy_from_slice(name);
            off += len;
        }
        b
    }

    #[test]
    fn parses_live_entries_and_skips_deleted_ones() {
        let b = block(&[(2, 2, b"."), (0, 0, b"gone"), (12, 1, b"file")], 1024);
        let v = parse_block(&b, true).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].name, b"file");
        assert_eq!(v[1].inode, 12);
        assert_eq!(v[1].next, 1024);
    }

    #[test]
    fn rejects_bad_record_lengths() {
        let mut b = block(&[(2, 2, b"."), (12, 1, b"file")], 1024);
        b[4] = 13; // not a multiple of 4
        assert!(parse_block(&b, true).is_err());
        let mut b = block(&[(2, 2, b".")], 1024);
        b[4..6].copy_from_slice(&2048u16.to_le_bytes());
        assert!(parse_block(&b, true).is_err());
        let mut b = block(&[(2, 2, b".")], 1024);
        b[4..6].copy_from_slice(&0u16.to_le_bytes());
        assert!(parse_block(&b, true).is_err());
        // A record that runs past the block end is cut off, one line.
        let mut b = block(&[(2, 2, b"."), (3, 1, b"x")], 1024);
        b[12 + 4..12 + 6].copy_from_slice(&1016u16.to_le_bytes());
        assert_eq!(
            parse_block(&b, true).unwrap_err().to_string(),
            "directory entry at byte 12 is cut off by the end of its block"
        );
        // Fewer than 8 bytes left for the next header.
        let mut b = block(&[(2, 2, b"."), (3, 1, b"x")], 1024);
        b[12 + 4..12 + 6].copy_from_slice(&1008u16.to_le_bytes());
        assert!(matches!(
            parse_block(&b, true).unwrap_err(),
            Corrupt::CutOff { offset: 1020, .. }
        ));
        let mut b = block(&[(2, 2, b"."), (3, 1, b"x")], 1024);
        b[6] = 200; // name longer than the record
        assert!(matches!(
            parse_block(&b, true).unwrap_err(),
            Corrupt::BadEntry {
                field: "name_len",
                offset: 0,
                value: 200,
                ..
            }
        ));
    }

    #[test]
    fn big_block_rec_len_encoding() {
        assert_eq!(rec_len_from_disk(0, 65536), 65536);
        assert_eq!(rec_len_from_disk(u16::MAX, 65536), 65536);
        assert_eq!(rec_len_from_disk(12, 4096), 12);
    }
}
