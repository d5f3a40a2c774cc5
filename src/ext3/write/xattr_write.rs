//! Setting and removing extended attributes (attributes.rst): the whole
//! list is re-encoded on each change, into the in-inode area when it fits
//! there (inodes larger than 128 bytes), else into an attribute block of
//! its own (a shared block is copied first). Entries carry the e2fsprogs
//! entry hash; POSIX ACLs (stored in a binary form of their own) and
//! values in other inodes are not written (EOPNOTSUPP).

use super::inode_write::{RawInode, Which};
use super::{State, WResult, Writer};
use crate::block::BlockDevice;
use crate::ext3::bytes::{set_le16, set_le32, set_u8};
use crate::ext3::features::Compat;
use crate::ext3::xattr::EXT4_XATTR_MAGIC;
use crate::fs::Error as FsError;
use crate::fs::XattrMode;

/// (e_name_index, name without prefix, value)
type Entry = (u8, Vec<u8>, Vec<u8>);

/// Splits a full attribute name into its index and suffix.
fn split_name(full: &[u8]) -> WResult<(u8, Vec<u8>)> {
    const TABLE: [(&[u8], u8); 5] = [
        (b"user.", 1),
        (b"trusted.", 4),
        (b"security.", 6),
        (b"system.posix_acl_", 2),
        (b"system.", 7),
    ];
    for (pre, idx) in TABLE {
        if let Some(rest) = full.strip_prefix(pre) {
            if idx == 2 || rest == b"data" || rest.starts_with(b"richacl") {
                return Err(FsError::Unsupported);
            }
            if rest.is_empty() {
                return Err(FsError::InvalidArgument);
            }
            if rest.len() > 255 {
                return Err(FsError::OutOfRange);
            }
            return Ok((idx, rest.to_vec()));
        }
    }
    Err(FsError::Unsupported)
}

/// `ext2fs_ext_attr_hash_entry`: the name (as signed chars), then the
/// value in little-endian 32-bit words.
pub fn entry_hash(name: &[u8], value: &[u8]) -> u32 {
    let mut h = 0u32;
    for &c in name {
        // `char` is signed: sign-extend the byte, keep the bits.
        let c = u32::from_ne_bytes(i32::from(i8::from_ne_bytes([c])).to_ne_bytes());
        h = (h << 5) ^ (h >> 27) ^ c;
    }
    for w in value.chunks(4) {
        let mut b = [0u8; 4];
        b[..w.len()].copy_from_slice(w);
        h = (h << 16) ^ (h >> 16) ^ u32::from_le_bytes(b);
    }
    h
}

/// Encodes entries into `area` from byte `start` (values from the end,
/// offsets relative to `base`); returns the entry hashes, `None` when
/// they do not fit.
fn encode(entries: &[Entry], area: &mut [u8], start: usize, base: usize) -> Option<Vec<u32>> {
    let mut off = start;
    let mut vend = area.len();
    let mut hashes = Vec::new();
    for (idx, name, value) in entries {
        // The entry (16 bytes and the name) and the value, rounded up to
        // 4; each must fit, with the 4-byte end marker, between the
        // entries so far and the values so far.
        let esize = name.len().checked_add(19)? & !3;
        let vsize = value.len().checked_add(3)? & !3;
        vend = vend.checked_sub(vsize)?;
        let next = off.checked_add(esize)?;
        if next.checked_add(4)? > vend {
            return None;
        }
        // Names are at most 255 bytes (`split_name`, or a u8 on disk) and
        // values within a block; what does not fit its field does not fit.
        let (Ok(name_len), Ok(value_offs), Ok(value_size)) = (
            u8::try_from(name.len()),
            u16::try_from(vend.checked_sub(base)?),
            u32::try_from(value.len()),
        ) else {
            return None;
        };
        let h = entry_hash(name, value);
        let e = area.get_mut(off..next)?;
        set_u8(e, 0, name_len);
        set_u8(e, 1, *idx);
        set_le16(e, 2, value_offs);
        set_le32(e, 4, 0);
        set_le32(e, 8, value_size);
        set_le32(e, 12, h);
        e.get_mut(16..)?
            .get_mut(..name.len())?
            .copy_from_slice(name);
        area.get_mut(vend..)?
            .get_mut(..value.len())?
            .copy_from_slice(value);
        hashes.push(h);
        off = next;
    }
    set_le32(area, off, 0);
    Some(hashes)
}

impl<D: BlockDevice> Writer<D> {
    fn current_xattrs(&self, ino: u32) -> WResult<Vec<Entry>> {
        let inode = self
            .fs
            .inode(ino)
            .map_err(|e| FsError::from(e).at_ino(ino))?;
        let list = self
            .fs
            .xattrs_of(ino, &inode)
            .map_err(|e| FsError::from(e).at_ino(ino))?;
        let mut out = Vec::new();
        for x in list {
            if x.value_inum != 0 {
                return Err(FsError::Unsupported);
            }
            out.push((split_name(&x.name)?.0, split_name(&x.name)?.1, x.value));
        }
        Ok(out)
    }

    /// Writes `entries` as the inode's attributes.
    fn store_xattrs(
        &self,
        st: &mut State,
        r: &mut RawInode,
        mut entries: Vec<Entry>,
    ) -> WResult<()> {
        entries.sort_by(|a, b| (a.0, a.1.len(), &a.1).cmp(&(b.0, b.1.len(), &b.1)));
        let bs = self.geo.bsz();
        let extra_end = if r.b.len() > 128 {
            128 + usize::from(u16::from_le_bytes([r.b[0x80], r.b[0x81]]))
        } else {
            r.b.len()
        };
        let mut in_inode = false;
        if extra_end.checked_add(8).is_some_and(|n| n <= r.b.len()) {
            let area = &mut r.b[extra_end..];
            area.fill(0);
            if !entries.is_empty() && encode(&entries, &mut area[4..], 0, 0).is_some() {
                area[0..4].copy_from_slice(&EXT4_XATTR_MAGIC.to_le_bytes());
                in_inode = true;
            } else {
                area.fill(0);
            }
        }
        let old = u64::from(r.file_acl());
        let sectors = self.geo.bs / 512;
        if in_inode || entries.is_empty() {
            if old != 0 {
                self.drop_xattr_block(st, old)?;
                r.b[0x68..0x6C].fill(0);
                r.set_sectors(r.sectors().saturating_sub(sectors));
            }
            return Ok(());
        }
        let mut b = vec![0u8; bs];
        let hashes = encode(&entries, &mut b, 32, 0).ok_or(FsError::NoSpace)?;
        let mut bh = 0u32;
        for h in hashes {
            bh = (bh << 16) ^ (bh >> 16) ^ h;
        }
        b[0..4].copy_from_slice(&EXT4_XATTR_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..16].copy_from_slice(&bh.to_le_bytes());
        let reuse = old != 0 && old < self.geo.blocks_count && {
            let ob = self.get(old)?;
            u32::from_le_bytes([ob[4], ob[5], ob[6], ob[7]]) <= 1
        };
        if reuse {
            return self.put_xattr(old, b);
        }
        let blk = self.alloc_block(st, self.inode_goal(r.ino))?;
        // The writer keeps `i_file_acl` to its low 32 bits.
        let Ok(blk32) = u32::try_from(blk) else {
            self.free_blocks(st, blk, 1)?;
            return Err(FsError::NoSpace.at_ino(r.ino));
        };
        self.put_xattr(blk, b)?;
        if old != 0 {
            self.drop_xattr_block(st, old)?;
        } else {
            // i_blocks is on disk: a count that no longer fits is corrupt.
            let n = r.sectors().checked_add(sectors);
            r.set_sectors(n.ok_or(FsError::CORRUPT.at_ino(r.ino))?);
        }
        r.b[0x68..0x6C].copy_from_slice(&blk32.to_le_bytes());
        Ok(())
    }

    /// Drops one reference to attribute block `blk`.
    fn drop_xattr_block(&self, st: &mut State, blk: u64) -> WResult<()> {
        if blk >= self.geo.blocks_count {
            return Err(FsError::IO);
        }
        let mut b = self.get(blk)?;
        let refs = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        if refs <= 1 {
            self.free_blocks(st, blk, 1)
        } else {
            // More than 1.
            b[4..8].copy_from_slice(&refs.saturating_sub(1).to_le_bytes());
            self.put_xattr(blk, b)
        }
    }

    /// `setxattr` / `removexattr` (value `None`).
    pub(crate) fn change_xattr(
        &self,
        ino: u32,
        name: &[u8],
        value: Option<&[u8]>,
        mode: XattrMode,
    ) -> WResult<()> {
        let mut st = self.st.write().map_err(|_| FsError::IO)?;
        if st.broken {
            return Err(FsError::IO);
        }
        if !self
            .fs
            .superblock()
            .s_feature_compat
            .contains(Compat::EXT_ATTR)
        {
            return Err(FsError::Unsupported);
        }
        let (idx, suffix) = split_name(name)?;
        let mut r = self.raw_inode(ino)?;
        if r.mode() == 0 {
            return Err(FsError::NotFound);
        }
        let mut list = self.current_xattrs(ino)?;
        let pos = list.iter().position(|e| e.0 == idx && e.1 == suffix);
        match (value, pos) {
            (None, None) => return Err(FsError::NoAttribute),
            (None, Some(i)) => {
                list.remove(i);
            }
            (Some(_), Some(_)) if mode == XattrMode::Create => return Err(FsError::Exists),
            (Some(_), None) if mode == XattrMode::Replace => return Err(FsError::NoAttribute),
            (Some(v), Some(i)) => list[i].2 = v.to_vec(),
            (Some(v), None) => list.push((idx, suffix, v.to_vec())),
        }
        if value.is_some_and(|v| v.len().saturating_add(48) > self.geo.bsz()) {
            return Err(FsError::ValueTooLarge);
        }
        self.store_xattrs(&mut st, &mut r, list)?;
        r.set_time(Which::Ctime, super::now());
        self.put_inode(&r)?;
        self.end_op(&mut st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_index_and_suffix() {
        assert_eq!(
            split_name(b"user.comment").unwrap(),
            (1, b"comment".to_vec())
        );
        assert_eq!(
            split_name(b"security.selinux").unwrap(),
            (6, b"selinux".to_vec())
        );
        assert_eq!(
            split_name(b"system.posix_acl_access"),
            Err(FsError::Unsupported)
        );
        assert_eq!(split_name(b"other.x"), Err(FsError::Unsupported));
    }

    #[test]
    fn encoded_entries_parse_back() {
        let e = vec![
            (1u8, b"a".to_vec(), b"hello".to_vec()),
            (4, b"bb".to_vec(), vec![]),
        ];
        let mut area = vec![0u8; 100];
        encode(&e, &mut area, 0, 0).unwrap();
        let mut with_magic = EXT4_XATTR_MAGIC.to_le_bytes().to_vec();
        with_magic.extend_from_slice(&area);
        let back = crate::ext3::xattr::parse_inode_area(&with_magic).unwrap();
        assert_eq!(back[0].name, b"user.a");
        assert_eq!(back[0].value, b"hello");
        assert_eq!(back[1].name, b"trusted.bb");
        assert!(encode(&e, &mut [0u8; 20], 0, 0).is_none());
    }
}
