//! Changing extent trees (extents.rst): the writer reads a file's extents
//! into a sorted list, changes the list (map a block, merging with its
//! neighbour; cut at a logical block) and writes the tree back, reusing its
//! blocks: up to 4 extents in the inode (depth 0), else leaf blocks under
//! the inode's index (depth 1), or index blocks between (depth 2). Extent
//! blocks carry the metadata_csum tail. Unwritten extents (their flag in
//! the length) are made by fallocate, read as zeros, and turn initialized
//! where they are written (the extent split in up to 3).

use super::inode_write::RawInode;
use super::{State, WResult, Writer};
use crate::block::BlockDevice;
use crate::ext3::bytes::{le16, le32, set_le16, set_le32};
use crate::fs::Error as FsError;

/// `eh_magic`.
const EXT4_EXT_MAGIC: u16 = 0xF30A;
/// Longest initialized extent; longer lengths mark unwritten extents.
const EXT_INIT_MAX_LEN: u32 = 32768;
/// Longest unwritten extent.
const EXT_UNWRITTEN_MAX_LEN: u64 = 32767;
/// Deepest tree walked (the kernel's limit is 5).
const MAX_DEPTH: u16 = 5;

/// One extent: logical start, length, physical start, unwritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ext {
    pub lblk: u64,
    pub len: u64,
    pub pblk: u64,
    pub unwritten: bool,
}

/// An empty extent header for `i_block` (what new files get on an
/// `extent` filesystem).
pub(crate) fn empty_root(i_block: &mut [u8]) {
    i_block.fill(0);
    set_le16(i_block, 0, EXT4_EXT_MAGIC);
    set_le16(i_block, 4, 4);
}

impl Ext {
    // Extents read from disk are checked by `ext_walk` (a logical range
    // below 2^32, a device range inside the filesystem) and the writer
    // makes them the same way, so these sums stay far below u64::MAX.

    /// One past the extent's last logical block.
    fn end(&self) -> u64 {
        self.lblk.saturating_add(self.len)
    }
    /// One past the extent's last device block.
    fn pend(&self) -> u64 {
        self.pblk.saturating_add(self.len)
    }
    /// The device block of logical block `l` (from `lblk` on).
    fn pblk_of(&self, l: u64) -> u64 {
        self.pblk.saturating_add(l.saturating_sub(self.lblk))
    }
}

/// The 12-byte entries of an extent node (after its 12-byte header).
fn entries(node: &[u8]) -> std::slice::ChunksExact<'_, u8> {
    node.get(12..).unwrap_or_default().chunks_exact(12)
}

impl<D: BlockDevice> Writer<D> {
    fn per_node(&self) -> usize {
        // A block of 1 KiB or more.
        self.geo.bsz().saturating_sub(12) / 12
    }

    /// Reads the extents of `r` and the blocks of its tree.
    pub(crate) fn ext_read(&self, r: &RawInode) -> WResult<(Vec<Ext>, Vec<u64>)> {
        let root = r.b[crate::ext3::inode::field::I_BLOCK..][..60].to_vec();
        let (mut exts, mut blocks) = (Vec::new(), Vec::new());
        self.ext_walk(&root, MAX_DEPTH + 1, &mut exts, &mut blocks)
            .map_err(|e| e.at_ino(r.ino))?;
        Ok((exts, blocks))
    }

    /// Appends the extents under `node` (a tree level below `above`) and
    /// its tree blocks; extents must ascend without overlapping, lie below
    /// logical block 2^32 (`ext4_valid_extent`) and inside the filesystem,
    /// and no tree block may be reached twice.
    fn ext_walk(
        &self,
        node: &[u8],
        above: u16,
        exts: &mut Vec<Ext>,
        blocks: &mut Vec<u64>,
    ) -> WResult<()> {
        let count = usize::from(le16(node, 2));
        let depth = le16(node, 6);
        if le16(node, 0) != EXT4_EXT_MAGIC || depth >= above || count > entries(node).len() {
            return Err(FsError::CORRUPT);
        }
        for e in entries(node).take(count) {
            if depth == 0 {
                let raw = u32::from(le16(e, 4));
                let (len, unwritten) = match raw.checked_sub(EXT_INIT_MAX_LEN) {
                    Some(n) if n > 0 => (n, true),
                    _ => (raw, false),
                };
                let x = Ext {
                    lblk: u64::from(le32(e, 0)),
                    len: u64::from(len),
                    pblk: (u64::from(le16(e, 6)) << 32) | u64::from(le32(e, 8)),
                    unwritten,
                };
                let after = exts.last().map_or(0, Ext::end);
                let lend = x.lblk.checked_add(x.len);
                let pend = x.pblk.checked_add(x.len);
                if len == 0
                    || x.lblk < after
                    || lend.is_none_or(|l| l > 1 << 32)
                    || x.pblk < self.geo.first_data_block
                    || pend.is_none_or(|p| p > self.geo.blocks_count)
                {
                    return Err(FsError::CORRUPT.at_block(x.pblk));
                }
                exts.push(x);
            } else {
                let child = (u64::from(le16(e, 8)) << 32) | u64::from(le32(e, 4));
                if child >= self.geo.blocks_count
                    || child < self.geo.first_data_block
                    || blocks.contains(&child)
                {
                    return Err(FsError::CORRUPT.at_block(child));
                }
                blocks.push(child);
                let b = self.get(child)?;
                self.ext_walk(&b, depth, exts, blocks)?;
            }
        }
        Ok(())
    }

    /// The device block of logical block `lblk` of extent file `r`, 0 for
    /// a hole (an unwritten extent reads as a hole).
    pub(crate) fn ext_bmap(&self, r: &RawInode, lblk: u64) -> WResult<u64> {
        let (exts, _) = self.ext_read(r)?;
        Ok(exts
            .iter()
            .find(|e| e.lblk <= lblk && lblk < e.end() && !e.unwritten)
            .map_or(0, |e| e.pblk_of(lblk)))
    }

    /// Maps logical block `lblk` of `r` to `pblk`.
    pub(crate) fn ext_set(
        &self,
        st: &mut State,
        r: &mut RawInode,
        lblk: u64,
        pblk: u64,
    ) -> WResult<()> {
        if lblk >= 1 << 32 {
            return Err(FsError::FileTooLarge);
        }
        let (mut exts, blocks) = self.ext_read(r)?;
        let i = exts.partition_point(|e| e.end() <= lblk);
        if exts.get(i).is_some_and(|e| e.lblk <= lblk) {
            // Already mapped (an unwritten extent is not written here).
            return Err(FsError::IO);
        }
        let before = i.checked_sub(1).and_then(|j| exts.get_mut(j));
        if let Some(p) = before.filter(|p| {
            !p.unwritten
                && p.end() == lblk
                && p.pend() == pblk
                && p.len < u64::from(EXT_INIT_MAX_LEN)
        }) {
            // Below EXT_INIT_MAX_LEN.
            p.len = p.len.saturating_add(1);
        } else {
            exts.insert(
                i,
                Ext {
                    lblk,
                    len: 1,
                    pblk,
                    unwritten: false,
                },
            );
        }
        self.ext_store(st, r, &exts, blocks, pblk)
    }

    /// Frees every block of extent file `r` at logical block `keep` and
    /// beyond.
    pub(crate) fn ext_truncate(&self, st: &mut State, r: &mut RawInode, keep: u64) -> WResult<()> {
        let (mut exts, blocks) = self.ext_read(r)?;
        // Freed blocks, at most the filesystem's (in sectors, at most its
        // byte size / 512): the sums fit u64.
        let mut freed = 0u64;
        let mut out = Vec::with_capacity(exts.len());
        for mut e in exts.drain(..) {
            if e.lblk >= keep {
                self.free_blocks(st, e.pblk, e.len)?;
                freed = freed.saturating_add(e.len);
            } else if e.end() > keep {
                // e.lblk < keep < e.end(): a cut inside the extent.
                let cut = e.end().saturating_sub(keep);
                self.free_blocks(st, e.pblk_of(keep), cut)?;
                freed = freed.saturating_add(cut);
                e.len = e.len.saturating_sub(cut);
                out.push(e);
            } else {
                out.push(e);
            }
        }
        let spb = self.geo.bs / 512;
        r.set_sectors(r.sectors().saturating_sub(freed.saturating_mul(spb)));
        let goal = out.first().map_or(0, |e| e.pblk);
        self.ext_store(st, r, &out, blocks, goal)
    }

    /// The first logical block at or after `lblk` inside an extent
    /// (written or not); `u64::MAX` when there is none.
    pub(crate) fn ext_next_mapped(&self, r: &RawInode, lblk: u64) -> WResult<u64> {
        let (exts, _) = self.ext_read(r)?;
        let i = exts.partition_point(|e| e.end() <= lblk);
        Ok(exts.get(i).map_or(u64::MAX, |e| e.lblk.max(lblk)))
    }

    /// Allocates unwritten extents over the holes of logical blocks
    /// `a..b` of `r` (fallocate); `i_blocks` follows. On `ENOSPC` what was
    /// allocated stays, as in the kernel.
    pub(crate) fn ext_prealloc(
        &self,
        st: &mut State,
        r: &mut RawInode,
        a: u64,
        b: u64,
    ) -> WResult<()> {
        if b > 1 << 32 {
            return Err(FsError::FileTooLarge);
        }
        let (mut exts, blocks) = self.ext_read(r)?;
        let spb = self.geo.bs / 512;
        let (mut pos, mut failed, mut changed) = (a, None, false);
        while pos < b {
            let i = exts.partition_point(|e| e.end() <= pos);
            if let Some(e) = exts.get(i).filter(|e| e.lblk <= pos) {
                pos = e.end();
                continue;
            }
            // The next extent starts after pos (and pos < b).
            let hole_end = exts.get(i).map_or(b, |e| e.lblk.min(b));
            let goal = match i.checked_sub(1).and_then(|j| exts.get(j)) {
                Some(p) => p.pend(),
                None => self.inode_goal(r.ino),
            };
            // Leave room for the tree blocks the new extents may need.
            let want = hole_end
                .saturating_sub(pos)
                .min(EXT_UNWRITTEN_MAX_LEN)
                .min(st.free_blocks.saturating_sub(3));
            let got = if want == 0 {
                Err(FsError::NoSpace.at_ino(r.ino))
            } else {
                self.alloc_run(st, goal, want)
            };
            let (start, n) = match got {
                Ok(v) => v,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            exts.insert(
                i,
                Ext {
                    lblk: pos,
                    len: n,
                    pblk: start,
                    unwritten: true,
                },
            );
            // i_blocks is on disk: a count that no longer fits is corrupt.
            let sectors = r.sectors().checked_add(n.saturating_mul(spb));
            r.set_sectors(sectors.ok_or(FsError::CORRUPT.at_ino(r.ino))?);
            // n is at most the hole's length.
            pos = pos.saturating_add(n);
            changed = true;
        }
        if changed {
            merge(&mut exts);
            let goal = exts.first().map_or(0, |e| e.pblk);
            self.ext_store(st, r, &exts, blocks, goal)?;
        }
        failed.map_or(Ok(()), Err)
    }

    /// When logical block `lblk` of `r` is in an unwritten extent, marks
    /// it and the blocks after it in that extent, up to `end`, initialized
    /// and returns their first device block and count (the caller writes
    /// them).
    pub(crate) fn ext_convert(
        &self,
        st: &mut State,
        r: &mut RawInode,
        lblk: u64,
        end: u64,
    ) -> WResult<Option<(u64, u64)>> {
        let (mut exts, blocks) = self.ext_read(r)?;
        let i = exts.partition_point(|e| e.end() <= lblk);
        let e = match exts.get(i) {
            Some(e) if e.lblk <= lblk && e.unwritten => *e,
            _ => return Ok(None),
        };
        // e.lblk <= lblk < t <= e.end(): the three parts below.
        let t = end.min(e.end());
        let Some(len) = t.checked_sub(lblk).filter(|&n| n > 0) else {
            return Ok(None);
        };
        let mut parts = Vec::with_capacity(3);
        if e.lblk < lblk {
            parts.push(Ext {
                len: lblk.saturating_sub(e.lblk),
                ..e
            });
        }
        let pblk = e.pblk_of(lblk);
        parts.push(Ext {
            lblk,
            len,
            pblk,
            unwritten: false,
        });
        if t < e.end() {
            parts.push(Ext {
                lblk: t,
                len: e.end().saturating_sub(t),
                pblk: e.pblk_of(t),
                unwritten: true,
            });
        }
        exts.splice(i..=i, parts);
        merge(&mut exts);
        self.ext_store(st, r, &exts, blocks, pblk)?;
        Ok(Some((pblk, len)))
    }

    /// Frees the blocks of logical blocks `a..b` of `r` (a punched hole),
    /// splitting the extents across its edges; `i_blocks` follows.
    pub(crate) fn ext_punch(
        &self,
        st: &mut State,
        r: &mut RawInode,
        a: u64,
        b: u64,
    ) -> WResult<()> {
        let (exts, blocks) = self.ext_read(r)?;
        // Freed blocks, at most the filesystem's: the sums fit u64.
        let mut freed = 0u64;
        let mut out = Vec::with_capacity(exts.len().saturating_add(1));
        for e in exts {
            // e.lblk <= s < t <= e.end() when the hole meets the extent.
            let (s, t) = (e.lblk.max(a), e.end().min(b));
            let Some(n) = t.checked_sub(s).filter(|&n| n > 0) else {
                out.push(e);
                continue;
            };
            self.free_blocks(st, e.pblk_of(s), n)?;
            freed = freed.saturating_add(n);
            if e.lblk < s {
                out.push(Ext {
                    len: s.saturating_sub(e.lblk),
                    ..e
                });
            }
            if t < e.end() {
                out.push(Ext {
                    lblk: t,
                    len: e.end().saturating_sub(t),
                    pblk: e.pblk_of(t),
                    unwritten: e.unwritten,
                });
            }
        }
        if freed == 0 {
            return Ok(());
        }
        let spb = self.geo.bs / 512;
        r.set_sectors(r.sectors().saturating_sub(freed.saturating_mul(spb)));
        let goal = out.first().map_or(0, |e| e.pblk);
        self.ext_store(st, r, &out, blocks, goal)
    }

    /// Writes `exts` as the tree of `r`, reusing `old` tree blocks,
    /// allocating more near `goal` or freeing the rest; `i_blocks` follows.
    fn ext_store(
        &self,
        st: &mut State,
        r: &mut RawInode,
        exts: &[Ext],
        mut old: Vec<u64>,
        goal: u64,
    ) -> WResult<()> {
        let per = self.per_node();
        let spb = self.geo.bs / 512;
        // Entries (first logical block, 12 bytes) of the level being built.
        let mut level: Vec<(u64, [u8; 12])> = exts
            .iter()
            .map(|e| {
                let mut x = [0u8; 12];
                set_le32(&mut x, 0, lo32(e.lblk));
                // At most EXT_UNWRITTEN_MAX_LEN when unwritten: the sum
                // is at most 65535.
                let len = u32::try_from(e.len)
                    .unwrap_or(0)
                    .saturating_add(if e.unwritten { EXT_INIT_MAX_LEN } else { 0 });
                set_le16(&mut x, 4, u16::try_from(len).unwrap_or(0));
                set_le16(&mut x, 6, u16::try_from(e.pblk >> 32).unwrap_or(0));
                set_le32(&mut x, 8, lo32(e.pblk));
                (e.lblk, x)
            })
            .collect();
        let mut depth = 0u16;
        let mut used = Vec::new();
        while level.len() > 4 {
            if depth >= 2 {
                return Err(FsError::FileTooLarge);
            }
            let mut up = Vec::new();
            for chunk in level.chunks(per) {
                let blk = match old.pop() {
                    Some(b) => b,
                    None => {
                        let b = self.alloc_block(st, goal)?;
                        // i_blocks is on disk: one that no longer fits is
                        // corrupt.
                        let sectors = r.sectors().checked_add(spb);
                        r.set_sectors(sectors.ok_or(FsError::CORRUPT.at_ino(r.ino))?);
                        b
                    }
                };
                used.push(blk);
                let mut b = vec![0u8; usize::try_from(self.geo.bs).map_err(|_| FsError::IO)?];
                self.ext_node(&mut b, chunk, per, depth);
                if let Some(seed) = self.geo.csum {
                    let is = super::csum::inode_seed(seed, r.ino, &r.b);
                    super::csum::seal_extent_block(&mut b, is);
                }
                self.put(blk, b)?;
                let mut x = [0u8; 12];
                set_le32(&mut x, 0, lo32(chunk[0].0));
                set_le32(&mut x, 4, lo32(blk));
                set_le16(&mut x, 8, u16::try_from(blk >> 32).unwrap_or(0));
                up.push((chunk[0].0, x));
            }
            level = up;
            // Below 2 (checked above).
            depth = depth.saturating_add(1);
        }
        for blk in old {
            self.free_blocks(st, blk, 1)?;
            r.set_sectors(r.sectors().saturating_sub(spb));
        }
        let ib = r.i_block_mut();
        ib.fill(0);
        self.ext_node(ib, &level, 4, depth);
        Ok(())
    }

    /// Fills node `b` (header and `entries`) for tree depth `depth`.
    fn ext_node(&self, b: &mut [u8], entries: &[(u64, [u8; 12])], max: usize, depth: u16) {
        set_le16(b, 0, EXT4_EXT_MAGIC);
        set_le16(b, 2, u16::try_from(entries.len()).unwrap_or(0));
        set_le16(b, 4, u16::try_from(max).unwrap_or(0));
        set_le16(b, 6, depth);
        let slots = b.get_mut(12..).unwrap_or_default().chunks_exact_mut(12);
        for (slot, (_, x)) in slots.zip(entries) {
            slot.copy_from_slice(x);
        }
    }
}

/// Joins neighbouring extents of the same kind that continue each other
/// on disk, within the longest length of their kind.
fn merge(exts: &mut Vec<Ext>) {
    let mut out: Vec<Ext> = Vec::with_capacity(exts.len());
    for e in exts.drain(..) {
        if let Some(p) = out.last_mut() {
            let max = if e.unwritten {
                EXT_UNWRITTEN_MAX_LEN
            } else {
                u64::from(EXT_INIT_MAX_LEN)
            };
            // Two lengths of at most 2^15 each.
            let len = p.len.saturating_add(e.len);
            if p.unwritten == e.unwritten && p.end() == e.lblk && p.pend() == e.pblk && len <= max {
                p.len = len;
                continue;
            }
        }
        out.push(e);
    }
    *exts = out;
}

fn lo32(v: u64) -> u32 {
    u32::try_from(v & 0xFFFF_FFFF).unwrap_or(0)
}
