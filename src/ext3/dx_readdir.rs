//! Readdir in hash order, with hash positions as cookies, for the
//! directories Linux lists that way (fs/ext4/dir.c, `ext4_dx_readdir`;
//! fs/ext4/namei.c, `ext4_htree_fill_tree`): on a dir_index filesystem,
//! directories with the index flag, and directories of exactly one block.
//!
//! A cookie is a position in hash order, as Linux gives a 64-bit
//! `getdents64` caller:
//!
//! ```text
//!   63  62 ............ 32  31 ............ 0
//!   0   major hash >> 1     minor hash
//! ```
//!
//! `.` of an indexed directory is at 0 and `..` at `1 << 32` (hashes 0 and
//! 2), the end of the directory at [`END`], above every position. An
//! entry's cookie is the position of the entry after it (or [`END`]), and
//! resuming at a cookie lists every entry whose position is at least the
//! cookie. Positions do not change when a leaf splits or the directory
//! is compacted, so an entry returned before a cookie never comes again
//! after it; only names sharing all 64 bits of hash share a cookie (and a
//! reader that stops between them sees the earlier ones twice), as on Linux.
//!
//! One call walks the index from the root to the leaf covering the cookie
//! and then reads leaves in index order, a batch at a time (a leaf, plus
//! the next ones while the index marks them as continuing the same hash),
//! each batch sorted by hash: its cost is the walk plus the leaves it
//! reads, whatever the size of the directory.

use super::dir::{parse_block, verify_tail, DirEntry};
use super::dirops::Entry;
use super::error::{At, Corrupt, Error, Result};
use super::features::{Compat, Incompat};
use super::fs::Ext3;
use super::htree::{self, field::*, DxRoot};
use super::inode::{Inode, EXT4_INDEX_FL};
use super::map::{Mapper, Run};
use super::types::BlockIndex;
use crate::block::BlockDevice;

/// The cookie after the last entry of a hash-ordered directory
/// (`EXT4_HTREE_EOF_64BIT`).
pub const END: u64 = (1 << 63) - 1;

/// The position of `.` in an indexed directory (hash 0).
const DOT: u64 = 0;

/// The position of `..` in an indexed directory (hash 2).
const DOTDOT: u64 = 1 << 32;

/// Bits of a `dx_entry` block number (the top four are reserved).
const BLOCK_MASK: u32 = 0x0fff_ffff;

/// The position of a name with hashes (`major`, `minor`) (`hash2pos`).
pub fn hash_pos(major: u32, minor: u32) -> u64 {
    (u64::from(major >> 1) << 32) | u64::from(minor)
}

/// The hashes a cookie resumes at (`pos2maj_hash`, `pos2min_hash`): the
/// inverse of [`hash_pos`] (the major hash's low bit is always clear).
pub fn pos_hash(pos: u64) -> (u32, u32) {
    let high = u32::try_from((pos >> 32) & 0x7fff_ffff).unwrap_or(0);
    let low = u32::try_from(pos & 0xffff_ffff).unwrap_or(0);
    (high << 1, low)
}

/// How a directory is listed.
pub(crate) enum Order {
    /// Block by block, byte offsets as cookies (no dir_index, casefold,
    /// several blocks without an index, or an index this code cannot
    /// use); an inline-data directory then counts entries.
    Blocks,
    /// One block without an index, or inline data: every name (`.` and
    /// `..` too) hashed with `s_def_hash_version`.
    Hashed {
        /// The hash version.
        hash_version: u8,
    },
    /// Through the index whose root (block 0) is given.
    Indexed {
        /// Block 0.
        root: Vec<u8>,
        /// Its `dx_root_info`.
        info: DxRoot,
    },
}

/// One index block on the way from the root to a leaf.
struct Level {
    /// Its logical block in the directory.
    lblk: u32,
    /// Its bytes.
    block: Vec<u8>,
    /// Where its `dx_countlimit` is.
    at: usize,
    /// Its `count`.
    count: usize,
    /// The entry followed down.
    pos: usize,
}

impl Level {
    /// Field `field` (0 hash, 4 block) of entry `i`; 0 past the block.
    fn field(&self, i: usize, field: usize) -> u32 {
        i.checked_mul(8)
            .and_then(|o| o.checked_add(self.at))
            .and_then(|o| o.checked_add(field))
            .map_or(0, |o| super::bytes::le32(&self.block, o))
    }

    /// The block of the entry followed down.
    fn child(&self) -> u32 {
        self.field(self.pos, 4) & BLOCK_MASK
    }
}

/// Sorts a batch by position, keeping Linux's order for equal positions:
/// Linux chains names of equal hash behind the first one read, each new
/// one right after it, so they come out as the first one read and then
/// the others newest first.
fn sort_batch(batch: &mut [(u64, Entry)]) {
    batch.sort_by_key(|(pos, _)| *pos);
    let mut start = 0;
    while start < batch.len() {
        let pos = batch[start].0;
        let len = batch[start..].iter().take_while(|(p, _)| *p == pos).count();
        // start + len <= batch.len(): nothing overflows.
        let end = start.saturating_add(len);
        if let Some(rest) = batch.get_mut(start.saturating_add(1)..end) {
            rest.reverse();
        }
        start = end;
    }
}

/// Hands entries to the caller one behind, so that each goes with the
/// position of the next as its cookie.
struct Emitter<F> {
    f: F,
    pending: Option<(u64, Entry)>,
}

impl<F: FnMut(Entry, u64) -> bool> Emitter<F> {
    /// Queues `e` at `pos`; false when the caller wants no more.
    fn push(&mut self, pos: u64, e: Entry) -> bool {
        if let Some((_, p)) = self.pending.take() {
            if !(self.f)(p, pos) {
                return false;
            }
        }
        self.pending = Some((pos, e));
        true
    }

    /// The position of the last entry queued, if any.
    fn last(&self) -> Option<u64> {
        self.pending.as_ref().map(|(pos, _)| *pos)
    }

    /// Hands over the last entry, with [`END`].
    fn finish(mut self) {
        if let Some((_, p)) = self.pending.take() {
            (self.f)(p, END);
        }
    }
}

/// Reads the blocks of one directory.
struct DirBlocks<'a, D: BlockDevice> {
    fs: &'a Ext3<D>,
    ino: u32,
    mapper: Mapper<'a>,
    nblocks: u64,
    csum_seed: Option<u32>,
}

impl<D: BlockDevice> DirBlocks<'_, D> {
    fn place(&self, lblk: u32) -> String {
        format!("directory inode {} block {lblk}", self.ino)
    }

    /// Block `lblk`; `None` past the end or in a hole.
    fn get(&mut self, lblk: u32) -> Result<Option<Vec<u8>>> {
        if u64::from(lblk) >= self.nblocks {
            return Ok(None);
        }
        match self.mapper.run(u64::from(lblk), 1)? {
            Run::Data { pblk, .. } => {
                let place = self.place(lblk);
                self.fs.read_block(BlockIndex(pblk), &place).map(Some)
            }
            Run::Hole(_) => Ok(None),
        }
    }

    /// Block `lblk`, which the index names: an error when it is missing.
    fn named(&mut self, lblk: u32) -> Result<Vec<u8>> {
        self.get(lblk)?.ok_or_else(|| {
            Error::corrupt(
                self.place(lblk),
                Corrupt::BadField {
                    field: "dx_entry block (past the end or a hole)",
                    value: u64::from(lblk),
                },
            )
        })
    }

    /// The live entries of entry block `lblk`, checked.
    fn entries(&mut self, lblk: u32) -> Result<Vec<DirEntry>> {
        let b = self.named(lblk)?;
        if let Some(seed) = self.csum_seed {
            verify_tail(&b, seed).at(|| self.place(lblk))?;
        }
        parse_block(&b, self.fs.sb.has_filetype()).at(|| self.place(lblk))
    }

    /// Checks an index block's `dx_countlimit` (limit as Linux wants it,
    /// count within it) and `dx_tail`; returns the count.
    fn check_index(&self, b: &[u8], at: usize, lblk: u32, limit: usize) -> Result<usize> {
        let bad = |field: &'static str, value: u16| {
            Error::corrupt(
                self.place(lblk),
                Corrupt::BadField {
                    field,
                    value: u64::from(value),
                },
            )
        };
        let l = super::bytes::le16(b, at);
        let count = super::bytes::le16(b, at.saturating_add(2));
        if usize::from(l) != limit {
            return Err(bad("dx_countlimit limit", l));
        }
        if count == 0 || usize::from(count) > limit {
            return Err(bad("dx_countlimit count", count));
        }
        if let Some(seed) = self.csum_seed {
            let Some((field, computed)) = htree::dx_csum(b, at, seed) else {
                return Err(bad("dx_countlimit limit", l));
            };
            let stored = super::bytes::le32(b, field);
            if stored != computed {
                return Err(Error::corrupt(
                    self.place(lblk),
                    Corrupt::Checksum {
                        structure: "htree index block",
                        stored,
                        computed,
                    },
                ));
            }
        }
        Ok(usize::from(count))
    }
}

/// The walk over an index's leaves in order.
struct Walk<'a, D: BlockDevice> {
    blocks: DirBlocks<'a, D>,
    /// The root first, then one node per indirect level.
    levels: Vec<Level>,
    /// `dx_root_info.indirect_levels`.
    depth: usize,
    /// Index nodes' limit.
    node_limit: usize,
    /// Leaves that may still be read: a sound index names each leaf once,
    /// and there are fewer leaves than blocks.
    budget: u64,
}

impl<D: BlockDevice> Walk<'_, D> {
    /// Goes down from the deepest level held to a leaf, following in each
    /// index node the entry covering `hash` (`None`: the first entry).
    fn descend(&mut self, hash: Option<u32>) -> Result<()> {
        while self.levels.len() <= self.depth {
            let Some(parent) = self.levels.last() else {
                return Ok(());
            };
            let lblk = parent.child();
            self.check_no_cycle(lblk)?;
            let block = self.blocks.named(lblk)?;
            let at = DX_NODE_COUNTLIMIT;
            let count = self.blocks.check_index(&block, at, lblk, self.node_limit)?;
            let pos = hash.map_or(0, |h| htree::covering_entry(&block, at, count, h));
            self.levels.push(Level {
                lblk,
                block,
                at,
                count,
                pos,
            });
        }
        Ok(())
    }

    /// A block named by the index must not be one already on the way down
    /// (as `dx_probe` checks).
    fn check_no_cycle(&self, lblk: u32) -> Result<()> {
        if self.levels.iter().any(|l| l.lblk == lblk) {
            return Err(Error::corrupt(
                self.blocks.place(lblk),
                Corrupt::BadField {
                    field: "dx_entry block (points back up the index)",
                    value: u64::from(lblk),
                },
            ));
        }
        Ok(())
    }

    /// The leaf the walk is at, counted against the budget.
    fn leaf(&mut self) -> Result<u32> {
        let Some(l) = self.levels.last() else {
            return Ok(0);
        };
        let lblk = l.child();
        self.check_no_cycle(lblk)?;
        if self.budget == 0 {
            return Err(Error::corrupt(
                format!("directory inode {}", self.blocks.ino),
                Corrupt::TooMany {
                    structure: "htree index (leaf blocks named, repeats counted)",
                    count: self.blocks.nblocks,
                    max: self.blocks.nblocks.saturating_sub(1),
                },
            ));
        }
        self.budget = self.budget.saturating_sub(1);
        Ok(lblk)
    }

    /// Moves to the next leaf (`ext4_htree_next_block`): the hash of the
    /// index entry that names it, `None` after the last leaf.
    fn next(&mut self) -> Result<Option<u32>> {
        loop {
            let Some(l) = self.levels.last_mut() else {
                return Ok(None);
            };
            // pos < count <= 0xffff: cannot saturate.
            l.pos = l.pos.saturating_add(1);
            if l.pos < l.count {
                break;
            }
            if self.levels.len() == 1 {
                return Ok(None);
            }
            self.levels.pop();
        }
        let hash = self.levels.last().map_or(0, |l| l.field(l.pos, 0));
        self.descend(None)?;
        Ok(Some(hash))
    }
}

impl<D: BlockDevice> Ext3<D> {
    /// How directory `ino` is listed (see [`Order`]): as Linux's
    /// `is_dx_dir`, but casefolded names (whose hashes this code cannot
    /// compute) and indexes `dx_probe` would refuse make the directory
    /// list block by block, always the same way for the same directory.
    pub(crate) fn listing_order(&self, ino: u32, inode: &Inode) -> Result<Order> {
        let sb = &self.sb;
        if !sb.s_feature_compat.contains(Compat::DIR_INDEX)
            || sb.s_feature_incompat.contains(Incompat::CASEFOLD)
        {
            return Ok(Order::Blocks);
        }
        let hash_version = sb.s_def_hash_version;
        let known = htree::name_hash_pair(sb, hash_version, b".").is_some();
        let nblocks = inode.i_size / self.block_size_nz();
        if inode.has_inline_data() || inode.i_flags & EXT4_INDEX_FL == 0 {
            let one = inode.has_inline_data() || nblocks == 1;
            return Ok(if one && known {
                Order::Hashed { hash_version }
            } else {
                Order::Blocks
            });
        }
        let mut blocks = self.dir_blocks(ino, inode, nblocks);
        let Some(root) = blocks.get(0)? else {
            return Ok(Order::Blocks);
        };
        let Some(info) = htree::parse_root(&root) else {
            return Ok(Order::Blocks);
        };
        let limit = usize::from(super::bytes::le16(&root, DX_ROOT_COUNTLIMIT));
        let count = usize::from(super::bytes::le16(
            &root,
            DX_ROOT_COUNTLIMIT.saturating_add(2),
        ));
        let want = htree::root_limit(root.len(), sb.has_metadata_csum());
        let dots = parse_block(&root, sb.has_filetype()).is_ok_and(|e| {
            e.len() == 2 && e[0].name == b"." && e[1].name == b".." && e[1].offset == 12
        });
        let usable = htree::name_hash_pair(sb, info.hash_version, b".").is_some()
            && super::bytes::u8_at(&root, DX_UNUSED_FLAGS) & 1 == 0
            && limit == want
            && (1..=limit).contains(&count)
            && dots;
        Ok(if usable {
            Order::Indexed { root, info }
        } else {
            Order::Blocks
        })
    }

    fn dir_blocks<'a>(&'a self, ino: u32, inode: &'a Inode, nblocks: u64) -> DirBlocks<'a, D> {
        DirBlocks {
            fs: self,
            ino,
            mapper: self.mapper(ino, inode),
            nblocks,
            csum_seed: self.inode_csum_seed(ino, inode),
        }
    }

    /// `e` with its hash position.
    fn hashed(&self, hash_version: u8, e: Entry) -> (u64, Entry) {
        // The version was checked when the order was chosen.
        let (major, minor) =
            htree::name_hash_pair(&self.sb, hash_version, &e.name).unwrap_or((0, 0));
        (hash_pos(major, minor), e)
    }

    /// A one-block or inline-data directory in hash order from `cookie`,
    /// every name (`.` and `..` too) hashed with `hash_version`, as Linux
    /// lists them (`htree_dirblock_to_tree`, `ext4_inlinedir_to_tree`).
    pub(crate) fn readdir_hashed(
        &self,
        ino: u32,
        inode: &Inode,
        hash_version: u8,
        cookie: u64,
        f: impl FnMut(Entry, u64) -> bool,
    ) -> Result<()> {
        if cookie == END {
            return Ok(());
        }
        let entries: Vec<Entry> = if inode.has_inline_data() {
            self.inline_entries(ino, inode)?
        } else {
            let mut blocks = self.dir_blocks(ino, inode, 1);
            blocks.entries(0)?.into_iter().map(Entry::from).collect()
        };
        let (major, minor) = pos_hash(cookie);
        let start = hash_pos(major, minor);
        let mut batch: Vec<(u64, Entry)> = entries
            .into_iter()
            .map(|e| self.hashed(hash_version, e))
            .filter(|(pos, _)| *pos >= start)
            .collect();
        sort_batch(&mut batch);
        let mut out = Emitter { f, pending: None };
        for (pos, e) in batch {
            if !out.push(pos, e) {
                return Ok(());
            }
        }
        out.finish();
        Ok(())
    }

    /// Lists an indexed directory in hash order from `cookie`
    /// (`ext4_dx_readdir`).
    pub(crate) fn readdir_indexed(
        &self,
        ino: u32,
        inode: &Inode,
        root: Vec<u8>,
        info: DxRoot,
        cookie: u64,
        f: impl FnMut(Entry, u64) -> bool,
    ) -> Result<()> {
        if cookie == END {
            return Ok(());
        }
        let (major, minor) = pos_hash(cookie);
        let mut floor = hash_pos(major, minor);
        let filetype = self.sb.has_filetype();
        let nblocks = inode.i_size / self.block_size_nz();
        let csum = self.sb.has_metadata_csum();
        let blocks = self.dir_blocks(ino, inode, nblocks);
        let at = DX_ROOT_COUNTLIMIT;
        let count = blocks.check_index(&root, at, 0, htree::root_limit(root.len(), csum))?;
        let mut batch: Vec<(u64, Entry)> = Vec::new();
        // `.` and `..` from the root, at their fixed positions.
        let dots = parse_block(&root, filetype).at(|| blocks.place(0))?;
        for (d, pos) in dots.into_iter().zip([DOT, DOTDOT]) {
            if pos >= floor {
                batch.push((pos, d.into()));
            }
        }
        let pos = htree::covering_entry(&root, at, count, major);
        let mut walk = Walk {
            blocks,
            levels: vec![Level {
                lblk: 0,
                block: root,
                at,
                count,
                pos,
            }],
            depth: usize::from(info.indirect_levels),
            node_limit: htree::node_limit(self.block_size_usize(), csum),
            budget: nblocks,
        };
        walk.descend(Some(major))?;
        let mut out = Emitter { f, pending: None };
        let mut more = true;
        while more {
            // One batch: leaves until the next does not continue a hash
            // (`ext4_htree_fill_tree`).
            let mut next_hash = None;
            loop {
                let leaf = walk.leaf()?;
                for d in walk.blocks.entries(leaf)? {
                    let (pos, e) = self.hashed(info.hash_version, d.into());
                    if pos >= floor {
                        batch.push((pos, e));
                    }
                }
                match walk.next()? {
                    None => {
                        more = false;
                        break;
                    }
                    Some(h) => {
                        next_hash = Some(h);
                        if !batch.is_empty() && h & 1 == 0 {
                            break;
                        }
                    }
                }
            }
            sort_batch(&mut batch);
            for (pos, e) in batch.drain(..) {
                if !out.push(pos, e) {
                    return Ok(());
                }
            }
            // The next batch starts at the hash of its index entry, above
            // every position of this one in a sound index; a corrupt one
            // cannot make cookies go back or an entry come twice.
            if let Some(h) = next_hash {
                let after_last = out.last().map_or(0, |p| p.saturating_add(1));
                floor = hash_pos(h, 0).max(after_last);
            }
        }
        out.finish();
        Ok(())
    }

    fn block_size_usize(&self) -> usize {
        super::bytes::usize_from(u64::from(self.block_size()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str) -> Entry {
        Entry {
            ino: 1,
            name: name.as_bytes().to_vec(),
            file_type: None,
        }
    }

    #[test]
    fn positions_are_linux_64_bit_hash_positions() {
        assert_eq!(hash_pos(0, 0), DOT);
        assert_eq!(hash_pos(2, 0), DOTDOT);
        assert_eq!(hash_pos(0x1746_da32, 0x4200_13b5), 0x0ba3_6d19_4200_13b5);
        assert_eq!(pos_hash(0x0ba3_6d19_4200_13b5), (0x1746_da32, 0x4200_13b5));
        // The largest name hash (0xfffffffc) stays below the end.
        assert!(hash_pos(0xffff_fffc, u32::MAX) < END);
        // Cookies no one gave out still decode to some hash.
        assert_eq!(pos_hash(u64::MAX), (0xffff_fffe, u32::MAX));
    }

    #[test]
    fn equal_positions_come_out_first_read_then_newest_first() {
        let mut b = vec![
            (5, e("a")),
            (3, e("x")),
            (5, e("b")),
            (5, e("c")),
            (9, e("z")),
            (5, e("d")),
        ];
        sort_batch(&mut b);
        let names: Vec<_> = b.iter().map(|(_, e)| e.name.clone()).collect();
        assert_eq!(names, [&b"x"[..], b"a", b"d", b"c", b"b", b"z"]);
    }

    #[test]
    fn each_entry_carries_the_next_position_and_the_last_the_end() {
        let mut got = Vec::new();
        let mut out = Emitter {
            f: |e: Entry, c: u64| {
                got.push((e.name, c));
                true
            },
            pending: None,
        };
        assert!(out.push(1, e("a")));
        assert!(out.push(7, e("b")));
        assert_eq!(out.last(), Some(7));
        out.finish();
        assert_eq!(got, [(b"a".to_vec(), 7), (b"b".to_vec(), END)]);
    }
}
