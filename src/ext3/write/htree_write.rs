//! Keeping the hash-tree index of a directory valid while entries come
//! and go, as Linux's fs/ext4/namei.c does (directory.rst, "Hash Tree
//! Directories"):
//!
//! ```text
//!   block 0  dx_root: '.'  '..'  dx_root_info  countlimit (hash,block)...  [dx_tail]
//!              |  with indirect_levels 1:
//!            dx_node: fake empty entry  countlimit (hash,block)...  [dx_tail]
//!              |
//!            leaves: ordinary entry blocks ([dirent tail])
//! ```
//!
//! - An insert hashes the name ([`crate::ext3::htree::name_hash`], the
//!   reader's hashes) and follows the index to the leaf covering the hash,
//!   the walk the reader's lookup makes.
//! - A full leaf is split by hash (`do_split`): its entries sorted by hash,
//!   the upper ones (at most half a block) move to a new block whose first
//!   hash goes into the index after the old leaf's entry. Unlike Linux the
//!   old leaf is not compacted (see `punch_out`). When equal hashes
//!   straddle the split, that index hash gets the low "continued" bit, so
//!   that lookups of the hash read on into the next leaf.
//! - A full index node is split in two, the second half's first hash going
//!   into the root; a full root of depth 0 moves its entries into a new node
//!   and gets depth 1. Without large_dir Linux stops there; a directory
//!   whose root and nodes are all full (about 500 x 500 leaves with 4 KiB
//!   blocks, 123 x 126 with 1 KiB) has its index cleared and grows
//!   linearly, as does one whose index this code does not recognize.
//! - Removing an entry only takes it out of its leaf: the index stays valid.
//! - A one-block linear directory that fills up on a dir_index filesystem
//!   becomes indexed (`make_indexed_dir`): its entries move to block 1 and
//!   block 0 becomes the root. Readdir lists one-block and indexed
//!   directories in hash order with hash cookies, as Linux does
//!   (`crate::ext3::dx_readdir`), so a readdir under way goes on across
//!   both changes.
//!
//! Under metadata_csum each index block ends in a `struct dx_tail` (the
//! limits leave room for it) and leaves in the dirent tail. Everything goes
//! into the running transaction like any other metadata change.

use super::inode_write::RawInode;
use super::{State, WResult, Writer};
use crate::block::BlockDevice;
use crate::ext3::bytes::{le16, le32, set_le16, set_le32};
use crate::ext3::dir::{parse_block, DirEntry};
use crate::ext3::features::Compat;
use crate::ext3::htree::{self, field::*};
use crate::ext3::inode::EXT4_INDEX_FL;
use crate::fs::Error as FsError;

/// Low bit of an index hash: the entries with this hash begin in the
/// previous leaf and continue in this one.
const CONTINUED: u32 = 1;

/// Bits of an index entry's block number (the top four are reserved).
const BLOCK_MASK: u32 = 0x0fff_ffff;

/// `rec_len` as stored for a length of up to a block
/// (`ext4_rec_len_to_disk`; 64 KiB is stored as 0xFFFF).
pub(crate) fn rec_len_to_disk(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

/// A `dx_countlimit` count or limit: at most (64 KiB - 8) / 8 entries.
fn count16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// A directory's logical block as the 32-bit block of an index entry
/// (or of the name cache): `EFBIG` past 2^32.
pub(crate) fn lblk32(ino: u32, lblk: u64) -> WResult<u32> {
    u32::try_from(lblk).map_err(|_| FsError::FileTooLarge.at_ino(ino))
}

/// One index block on the way from the root to a leaf.
#[derive(Debug)]
struct Frame {
    /// Device block.
    pblk: u64,
    b: Vec<u8>,
    /// Offset of the `dx_countlimit`.
    at: usize,
    /// The entry followed.
    pos: usize,
}

/// The byte offset of index entry `i` after a `dx_countlimit` at `at`
/// (saturating: entries are at most 8191, and `Frame::valid` checks that
/// the limit's entries fit the block).
fn entry_off(at: usize, i: usize) -> usize {
    at.saturating_add(i.saturating_mul(8))
}

impl Frame {
    fn limit(&self) -> usize {
        usize::from(le16(&self.b, self.at))
    }
    fn count(&self) -> usize {
        usize::from(le16(&self.b, entry_off(self.at, 0).saturating_add(2)))
    }
    fn set_count(&mut self, n: usize) {
        set_le16(&mut self.b, self.at.saturating_add(2), count16(n));
    }
    fn hash(&self, i: usize) -> u32 {
        if i == 0 {
            0
        } else {
            le32(&self.b, entry_off(self.at, i))
        }
    }
    fn block(&self, i: usize) -> u32 {
        le32(&self.b, entry_off(self.at, i).saturating_add(4)) & BLOCK_MASK
    }
    fn set_block(&mut self, i: usize, lblk: u32) {
        set_le32(&mut self.b, entry_off(self.at, i).saturating_add(4), lblk);
    }
    /// The bytes of entries `from..to`.
    fn entries(&self, from: usize, to: usize) -> WResult<&[u8]> {
        self.b
            .get(entry_off(self.at, from)..entry_off(self.at, to))
            .ok_or(FsError::IO)
    }
    /// Inserts (`hash`, `lblk`) as entry `i` (>= 1), moving later ones up
    /// (the caller checked that the count is below the limit).
    fn insert(&mut self, i: usize, hash: u32, lblk: u32) -> WResult<()> {
        let n = self.count();
        let from = entry_off(self.at, i);
        let end = entry_off(self.at, n);
        let grown = entry_off(self.at, n.saturating_add(1));
        if i == 0 || i > n || grown > self.b.len() {
            return Err(FsError::IO);
        }
        self.b.copy_within(from..end, from.saturating_add(8));
        set_le32(&mut self.b, from, hash);
        set_le32(&mut self.b, from.saturating_add(4), lblk);
        self.set_count(n.saturating_add(1));
        Ok(())
    }
    /// The entries as the writer keeps them: our limit, a count within it,
    /// hashes in order, blocks inside the directory (not block 0).
    fn valid(&self, limit: usize, nblocks: u64) -> bool {
        let count = self.count();
        let fits = limit
            .checked_mul(8)
            .and_then(|n| n.checked_add(self.at))
            .is_some_and(|end| end <= self.b.len());
        self.limit() == limit
            && (1..=limit).contains(&count)
            && fits
            && (0..count).all(|i| {
                let blk = u64::from(self.block(i));
                let ordered = match i.checked_sub(1) {
                    Some(j) if j > 0 => self.hash(i) >= self.hash(j),
                    _ => true,
                };
                blk > 0 && blk < nblocks && ordered
            })
    }
}

/// Where a full leaf splits (`do_split`), given its entries' (hash, record
/// size) sorted by hash (at least two): entries move to the new leaf from
/// the top while the new leaf stays at most half a block (an entry counts
/// when more than half of it would cross), or by count when all would fit.
/// Returns the index of the first entry that moves and the hash for the
/// new leaf's index entry, with [`CONTINUED`] set when the entry before
/// the split has the same hash.
fn split_point(sorted: &[(u32, usize)], block_size: usize) -> (usize, u32) {
    let count = sorted.len();
    let half = block_size / 2;
    // Record sizes of one block's entries: the sums stay below the block.
    let mut size = 0usize;
    let mut split = count / 2;
    for (i, &(_, s)) in sorted.iter().enumerate().rev() {
        if size.saturating_add(s / 2) > half {
            split = i.saturating_add(1);
            break;
        }
        size = size.saturating_add(s);
    }
    // At least one entry stays and one moves (the caller has two or more).
    let split = split.clamp(1, count.saturating_sub(1).max(1));
    let hash2 = sorted.get(split).map_or(0, |e| e.0);
    let before = sorted.get(split.saturating_sub(1)).map(|e| e.0);
    let continued = if before == Some(hash2) { CONTINUED } else { 0 };
    (split, hash2 | continued)
}

/// What an insert into an indexed directory did.
pub(crate) enum DxAdd {
    /// Added to this logical block.
    Placed(u64),
    /// The index cannot take it (full at depth 1, or a layout this code
    /// does not keep): the caller clears the index and adds linearly.
    Unindexable,
}

impl<D: BlockDevice> Writer<D> {
    /// True when the filesystem asks for indexed directories.
    pub(crate) fn dir_index(&self) -> bool {
        self.fs
            .superblock()
            .s_feature_compat
            .contains(Compat::DIR_INDEX)
    }

    /// True when `d` has an index this filesystem uses.
    pub(crate) fn is_indexed(&self, d: &RawInode) -> bool {
        d.flags() & EXT4_INDEX_FL != 0 && self.dir_index()
    }

    fn dx_hash(&self, hash_version: u8, name: &[u8]) -> Option<u32> {
        htree::name_hash(self.fs.superblock(), hash_version, name)
    }

    fn csum_entries(&self) -> usize {
        usize::from(self.geo.csum.is_some())
    }

    /// `dx_root_limit`: entries after the 32-byte root header.
    fn root_limit(&self) -> usize {
        // Blocks are 1 KiB or more: no saturation.
        (self.geo.bsz().saturating_sub(DX_ROOT_COUNTLIMIT) / 8).saturating_sub(self.csum_entries())
    }

    /// `dx_node_limit`: entries after the 8-byte fake entry.
    fn node_limit(&self) -> usize {
        (self.geo.bsz().saturating_sub(DX_NODE_COUNTLIMIT) / 8).saturating_sub(self.csum_entries())
    }

    /// Puts an index block of `d` whose `dx_countlimit` is at `at`, sealed
    /// with its `dx_tail` under metadata_csum.
    pub(crate) fn put_dx(&self, d: &RawInode, pblk: u64, mut b: Vec<u8>, at: usize) -> WResult<()> {
        if let Some(seed) = self.geo.csum {
            let is = super::csum::inode_seed(seed, d.ino, &d.b);
            super::csum::seal_dx_block(&mut b, at, is);
        }
        self.put(pblk, b)
    }

    fn put_frame(&self, d: &RawInode, f: Frame) -> WResult<()> {
        self.put_dx(d, f.pblk, f.b, f.at)
    }

    /// Appends a block to directory `d`: (logical, device) block. The
    /// caller fills it.
    pub(crate) fn append_dir_block(&self, st: &mut State, d: &mut RawInode) -> WResult<(u64, u64)> {
        let bs = self.geo.bs_nz();
        // i_size is on disk: a directory that cannot grow by a block is
        // too large.
        let n = d.size() / bs;
        let size = n
            .checked_add(1)
            .and_then(|m| m.checked_mul(bs.get()))
            .ok_or(FsError::FileTooLarge.at_ino(d.ino))?;
        let goal = match n.checked_sub(1) {
            Some(last) => self.bmap(d, last)?.saturating_add(1),
            None => self.inode_goal(d.ino),
        };
        let pblk = self.alloc_block(st, goal)?;
        self.bmap_set(st, d, n, pblk)?;
        let sectors = d.sectors().checked_add(bs.get() / 512);
        d.set_sectors(sectors.ok_or(FsError::CORRUPT.at_ino(d.ino))?);
        d.set_size(size);
        Ok((n, pblk))
    }

    /// A leaf holding `entries` packed from the start, the last one
    /// reaching the end of the entry space.
    fn leaf_block(&self, entries: &[&DirEntry]) -> Vec<u8> {
        let end = self.geo.dir_end();
        let mut b = vec![0u8; self.geo.bsz()];
        if entries.is_empty() {
            set_le16(&mut b, 4, rec_len_to_disk(end));
            return b;
        }
        // The entries came from one block (or part of one): their records
        // fit the entry space, so `off` stays below `end`.
        let mut off = 0;
        let last = entries.len().saturating_sub(1);
        for (i, e) in entries.iter().enumerate() {
            let rl = if i == last {
                end.saturating_sub(off)
            } else {
                super::dir_write::rec_len(e.name.len())
            };
            super::dir_write::write_entry(
                &mut b,
                off,
                e.inode,
                rl,
                &e.name,
                e.file_type,
                self.geo.filetype,
            );
            off = off.saturating_add(rl);
        }
        b
    }

    /// Removes the entries at `offsets` (sorted) from leaf `b` in place,
    /// as an unlink does: each becomes part of the record before it, or an
    /// empty record when it is the first of the block. The entries that
    /// stay keep their positions (Linux compacts instead); a readdir of an
    /// indexed directory goes by hash, so neither matters to it.
    fn punch_out(&self, b: &mut [u8], offsets: &[usize]) {
        let bs = b.len();
        let end = self.geo.dir_end();
        let mut prev: Option<usize> = None;
        let mut off = 0usize;
        let mut next_gone = offsets.iter().peekable();
        let rec_len_at = |b: &[u8], off: usize| {
            crate::ext3::dir::rec_len_from_disk(le16(b.get(off..).unwrap_or_default(), 4), bs)
        };
        // Each entry's rec_len (from disk) must keep it inside `end`.
        while let Some(room) = end.checked_sub(off).filter(|&r| r >= 8) {
            let rl = rec_len_at(b, off);
            if rl < 12 || rl > room {
                break;
            }
            if next_gone.peek() == Some(&&off) {
                next_gone.next();
                match prev {
                    Some(p) => {
                        // Two records inside the block.
                        let merged = rec_len_at(b, p).saturating_add(rl);
                        set_le16(b, p.saturating_add(4), rec_len_to_disk(merged));
                    }
                    None => {
                        set_le32(b, off, 0);
                        prev = Some(off);
                    }
                }
            } else {
                prev = Some(off);
            }
            // At most `end` (checked above).
            off = off.saturating_add(rl);
        }
    }

    /// Points the name cache of `dir` at `lblk` for `names` (they moved).
    fn names_moved<'a>(
        &self,
        dir: u32,
        names: impl Iterator<Item = &'a [u8]>,
        lblk: u64,
    ) -> WResult<()> {
        let lblk = lblk32(dir, lblk)?;
        self.with_names(dir, |m| {
            for n in names {
                if let Some(e) = m.get_mut(n) {
                    e.1 = lblk;
                }
            }
        })
    }

    /// The path from the root of `d`'s index to the leaf for `name`, and
    /// the name's hash; `None` when the index is not one the writer keeps.
    fn dx_path(&self, d: &RawInode, name: &[u8]) -> WResult<Option<(u32, Vec<Frame>)>> {
        let nblocks = d.size() / self.geo.bs_nz();
        let pblk = self.dir_block(d, 0)?;
        let b = self.get(pblk)?;
        let Some(root) = htree::parse_root(&b) else {
            return Ok(None);
        };
        // Two levels at most: deeper needs large_dir, which the writer
        // does not open.
        if root.indirect_levels > 1 || b[DX_UNUSED_FLAGS] != 0 {
            return Ok(None);
        }
        let Some(hash) = self.dx_hash(root.hash_version, name) else {
            return Ok(None);
        };
        let mut path = Vec::with_capacity(2);
        let mut frame = Frame {
            pblk,
            b,
            at: DX_ROOT_COUNTLIMIT,
            pos: 0,
        };
        let mut limit = self.root_limit();
        for level in 0..=root.indirect_levels {
            if !frame.valid(limit, nblocks) {
                return Ok(None);
            }
            frame.pos = htree::covering_entry(&frame.b, frame.at, frame.count(), hash);
            let next = u64::from(frame.block(frame.pos));
            path.push(frame);
            if level == root.indirect_levels {
                break;
            }
            let pblk = self.dir_block(d, next)?;
            let b = self.get(pblk)?;
            // A node starts with an empty entry spanning the block.
            if le32(&b, 0) != 0
                || crate::ext3::dir::rec_len_from_disk(le16(&b, 4), b.len()) != b.len()
            {
                return Ok(None);
            }
            frame = Frame {
                pblk,
                b,
                at: DX_NODE_COUNTLIMIT,
                pos: 0,
            };
            limit = self.node_limit();
        }
        Ok(Some((hash, path)))
    }

    /// Adds `name` -> `ino` (dirent type `ft`) to indexed directory `d`.
    pub(crate) fn dx_add(
        &self,
        st: &mut State,
        d: &mut RawInode,
        name: &[u8],
        ino: u32,
        ft: u8,
    ) -> WResult<DxAdd> {
        // At most one index change (a new level or a node split) before
        // the leaf has room in its node, then one leaf split.
        for _ in 0..3 {
            let Some((hash, mut path)) = self.dx_path(d, name)? else {
                return Ok(DxAdd::Unindexable);
            };
            let Some(frame) = path.last_mut() else {
                return Ok(DxAdd::Unindexable);
            };
            let leaf = u64::from(frame.block(frame.pos));
            if self.try_insert(d, leaf, name, ino, ft)? {
                return Ok(DxAdd::Placed(leaf));
            }
            if frame.count() == frame.limit() {
                if !self.dx_grow(st, d, path)? {
                    return Ok(DxAdd::Unindexable);
                }
                continue;
            }
            let root_version = htree::parse_root(&path[0].b).map_or(0, |r| r.hash_version);
            let Some(frame) = path.pop() else {
                return Ok(DxAdd::Unindexable);
            };
            let Some(target) = self.split_leaf(st, d, frame, leaf, hash, root_version)? else {
                return Ok(DxAdd::Unindexable);
            };
            if self.try_insert(d, target, name, ino, ft)? {
                return Ok(DxAdd::Placed(target));
            }
            // A half block that cannot take one more entry: not possible
            // with names of at most 255 bytes, but never left unplaced.
            return Ok(DxAdd::Unindexable);
        }
        Ok(DxAdd::Unindexable)
    }

    /// Makes room in the full index node at the end of `path`: splits it
    /// when the root has room, or gives a depth-0 root a level. False when
    /// the index is full at depth 1.
    fn dx_grow(&self, st: &mut State, d: &mut RawInode, mut path: Vec<Frame>) -> WResult<bool> {
        let bs = self.geo.bsz();
        let mut node = vec![0u8; bs];
        set_le16(&mut node, 4, rec_len_to_disk(bs));
        let na = DX_NODE_COUNTLIMIT;
        match path.len() {
            1 => {
                let mut root = path.pop().ok_or(FsError::IO)?;
                let (lblk, pblk) = self.append_dir_block(st, d)?;
                // The root's entries (at most its limit, below a node's).
                let n = root.count();
                let moved = root.entries(0, n)?;
                node.get_mut(na..)
                    .and_then(|to| to.get_mut(..moved.len()))
                    .ok_or(FsError::IO)?
                    .copy_from_slice(moved);
                set_le16(&mut node, na, count16(self.node_limit()));
                set_le16(&mut node, na + 2, count16(n));
                root.set_count(1);
                root.set_block(0, lblk32(d.ino, lblk)?);
                root.b[DX_INDIRECT_LEVELS] = 1;
                self.put_dx(d, pblk, node, na)?;
                self.put_frame(d, root)?;
                Ok(true)
            }
            2 => {
                let mut full = path.pop().ok_or(FsError::IO)?;
                let mut root = path.pop().ok_or(FsError::IO)?;
                if root.count() >= root.limit() {
                    return Ok(false);
                }
                let (lblk, pblk) = self.append_dir_block(st, d)?;
                let n = full.count();
                let keep = n / 2;
                let hash2 = full.hash(keep);
                let moved = full.entries(keep, n)?;
                node.get_mut(na..)
                    .and_then(|to| to.get_mut(..moved.len()))
                    .ok_or(FsError::IO)?
                    .copy_from_slice(moved);
                set_le16(&mut node, na, count16(self.node_limit()));
                set_le16(&mut node, na + 2, count16(n.saturating_sub(keep)));
                full.set_count(keep);
                // pos < count < limit (checked above).
                root.insert(root.pos.saturating_add(1), hash2, lblk32(d.ino, lblk)?)?;
                self.put_dx(d, pblk, node, na)?;
                self.put_frame(d, full)?;
                self.put_frame(d, root)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Splits full leaf `leaf`, reached through entry `frame.pos` of index
    /// block `frame` (which has room for one more entry), by hash; returns
    /// the leaf that now covers `hash`. `None` when the leaf holds fewer
    /// than two entries (then it is not full of them).
    fn split_leaf(
        &self,
        st: &mut State,
        d: &mut RawInode,
        mut frame: Frame,
        leaf: u64,
        hash: u32,
        hash_version: u8,
    ) -> WResult<Option<u64>> {
        let pblk = self.dir_block(d, leaf)?;
        let b = self.get(pblk)?;
        let entries =
            parse_block(&b, self.geo.filetype).map_err(|_| FsError::CORRUPT.at_block(pblk))?;
        if entries.len() < 2 {
            return Ok(None);
        }
        let mut map = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let h = self.dx_hash(hash_version, &e.name).ok_or(FsError::IO)?;
            map.push((h, super::dir_write::rec_len(e.name.len()), i));
        }
        map.sort_by_key(|m| m.0);
        let sizes: Vec<(u32, usize)> = map.iter().map(|m| (m.0, m.1)).collect();
        let (split, index_hash) = split_point(&sizes, self.geo.bsz());
        let hash2 = index_hash & !CONTINUED;
        let go: Vec<&DirEntry> = map[split..].iter().map(|m| &entries[m.2]).collect();
        let mut old = b;
        let mut gone: Vec<usize> = go.iter().map(|e| e.offset).collect();
        gone.sort_unstable();
        self.punch_out(&mut old, &gone);
        let (new_lblk, new_pblk) = self.append_dir_block(st, d)?;
        self.put_dir(d, pblk, old)?;
        self.put_dir(d, new_pblk, self.leaf_block(&go))?;
        // pos < count < limit (dx_add checked that the frame has room).
        frame.insert(
            frame.pos.saturating_add(1),
            index_hash,
            lblk32(d.ino, new_lblk)?,
        )?;
        self.put_frame(d, frame)?;
        self.names_moved(d.ino, go.iter().map(|e| e.name.as_slice()), new_lblk)?;
        Ok(Some(if hash >= hash2 { new_lblk } else { leaf }))
    }

    /// Turns one-block linear directory `d` into an indexed one
    /// (`make_indexed_dir`): its entries but `.` and `..` move to a new
    /// block 1, block 0 becomes a root with one entry pointing there.
    /// False (nothing changed) when the filesystem has no dir_index, its
    /// default hash is unknown, or block 0 does not start with `.` and `..`.
    pub(crate) fn make_indexed(&self, st: &mut State, d: &mut RawInode) -> WResult<bool> {
        let bs = self.geo.bs;
        let version = self.fs.superblock().s_def_hash_version;
        if !self.dir_index()
            || d.flags() & EXT4_INDEX_FL != 0
            || d.size() != bs
            || self.dx_hash(version, b".").is_none()
        {
            return Ok(false);
        }
        let pblk0 = self.dir_block(d, 0)?;
        let b0 = self.get(pblk0)?;
        let entries =
            parse_block(&b0, self.geo.filetype).map_err(|_| FsError::CORRUPT.at_block(pblk0))?;
        let dots = entries.len() >= 2
            && entries[0].name == b"."
            && entries[0].offset == 0
            && entries[0].next == 12
            && entries[1].name == b".."
            && entries[1].offset == 12;
        if !dots {
            return Ok(false);
        }
        let rest: Vec<&DirEntry> = entries[2..].iter().collect();
        let (lblk, pblk) = self.append_dir_block(st, d)?;
        self.put_dir(d, pblk, self.leaf_block(&rest))?;
        let bs = self.geo.bsz();
        let mut root = vec![0u8; bs];
        root[..24].copy_from_slice(&b0[..24]);
        // `..` from byte 12 to the end of the block (1 KiB or more).
        set_le16(&mut root, 16, rec_len_to_disk(bs.saturating_sub(12)));
        root[DX_HASH_VERSION] = version;
        root[DX_INFO_LENGTH] = 8;
        let at = DX_ROOT_COUNTLIMIT;
        set_le16(&mut root, at, count16(self.root_limit()));
        set_le16(&mut root, at + 2, 1);
        set_le32(&mut root, at + 4, lblk32(d.ino, lblk)?);
        d.set_flags(d.flags() | EXT4_INDEX_FL);
        self.put_dx(d, pblk0, root, at)?;
        self.names_moved(d.ino, rest.iter().map(|e| e.name.as_slice()), lblk)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leaf_splits_where_the_next_entry_would_be_mostly_past_half_a_block() {
        // 40 entries of 44 bytes in a 1 KiB block: 12 move (the 12th ends
        // at 528, less than half of it past 512); the 13th would have 22
        // of its 44 bytes at 528 + 22 > 512.
        let v: Vec<(u32, usize)> = (0..40).map(|i| (i * 10, 44)).collect();
        assert_eq!(split_point(&v, 1024), (28, 280));
        // Small entries that all fit in half a block split by count.
        let v: Vec<(u32, usize)> = (0..6).map(|i| (i * 10, 12)).collect();
        assert_eq!(split_point(&v, 1024), (3, 30));
    }

    #[test]
    fn equal_hashes_across_the_split_set_the_continuation_bit() {
        let mut v: Vec<(u32, usize)> = (0..40).map(|i| (i * 10, 44)).collect();
        for e in &mut v[25..35] {
            e.0 = 0x1234_5678;
        }
        let (split, hash) = split_point(&v, 1024);
        assert_eq!(split, 28);
        assert_eq!(hash, 0x1234_5678 | CONTINUED);
        // A lookup of that hash lands in the old leaf and the probe goes
        // on to the new one.
        let mut node = vec![0u8; 64];
        set_le16(&mut node, 0, 7);
        set_le16(&mut node, 2, 3);
        set_le32(&mut node, 4, 1);
        set_le32(&mut node, 8, 0x1000_0000);
        set_le32(&mut node, 12, 2);
        set_le32(&mut node, 16, hash);
        set_le32(&mut node, 20, 3);
        assert_eq!(htree::covering_entry(&node, 0, 3, 0x1234_5678), 1);
        assert_eq!(
            htree::probe(&node, 0, 0x1234_5678),
            Some((vec![2, 3], true))
        );
    }

    #[test]
    fn two_entries_always_split_one_and_one() {
        let v = [(5u32, 264usize), (9, 264)];
        assert_eq!(split_point(&v, 1024), (1, 9));
        let v = [(5u32, 264usize), (5, 264)];
        assert_eq!(split_point(&v, 1024), (1, 5 | CONTINUED));
    }
}
