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

fn entry_at(i: usize) -> usize {
    12 + 12 * i
}

impl<D: BlockDevice> Writer<D> {
    fn per_node(&self) -> usize {
        usize::try_from((self.geo.bs - 12) / 12).unwrap_or(0)
    }

    /// Reads the extents of `r` and the blocks of its tree.
    pub(crate) fn ext_read(&self, r: &RawInode) -> WResult<(Vec<Ext>, Vec<u64>)> {
        let root = r.b[crate::ext3::inode::field::I_BLOCK..][..60].to_vec();
        let (mut exts, mut blocks) = (Vec::new(), Vec::new());
        self.ext_walk(&root, MAX_DEPTH + 1, &mut exts, &mut blocks)?;
        Ok((exts, blocks))
    }

    fn ext_walk(
        &self,
        node: &[u8],
        above: u16,
        exts: &mut Vec<Ext>,
        blocks: &mut Vec<u64>,
    ) -> WResult<()> {
        let entries = usize::from(le16(node, 2));
        let depth = le16(node, 6);
        if le16(node, 0) != EXT4_EXT_MAGIC || depth >= above || entry_at(entries) > node.len() {
            return Err(FsError::CORRUPT);
        }
        for i in 0..entries {
            let e = &node[entry_at(i)..];
            if depth == 0 {
                let raw = u32::from(le16(e, 4));
                let (len, unwritten) = if raw > EXT_INIT_MAX_LEN {
                    (raw - EXT_INIT_MAX_LEN, true)
                } else {
                    (raw, false)
                };
                exts.push(Ext {
                    lblk: u64::from(le32(e, 0)),
                    len: u64::from(len),
                    pblk: (u64::from(le16(e, 6)) << 32) | u64::from(le32(e, 8)),
                    unwritten,
                });
            } else {
                let child = (u64::from(le16(e, 8)) << 32) | u64::from(le32(e, 4));
                if child >= self.geo.blocks_count || child < self.geo.first_data_block {
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
            .find(|e| e.lblk <= lblk && lblk < e.lblk + e.len && !e.unwritten)
            .map_or(0, |e| e.pblk + (lblk - e.lblk)))
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
        let i = exts.partition_point(|e| e.lblk + e.len <= lblk);
        if i < exts.len() && exts[i].lblk <= lblk {
            // Already mapped (an unwritten extent is not written here).
            return Err(FsError::IO);
        }
        let grows = i > 0 && {
            let p = &exts[i - 1];
            !p.unwritten
                && p.lblk + p.len == lblk
                && p.pblk + p.len == pblk
                && p.len < u64::from(EXT_INIT_MAX_LEN)
        };
        if grows {
            exts[i - 1].len += 1;
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
        let mut freed = 0u64;
        let mut out = Vec::with_capacity(exts.len());
        for mut e in exts.drain(..) {
            if e.lblk >= keep {
                self.free_blocks(st, e.pblk, e.len)?;
                freed += e.len;
            } else if e.lblk + e.len > keep {
                let cut = e.lblk + e.len - keep;
                self.free_blocks(st, e.pblk + (keep - e.lblk), cut)?;
                freed += cut;
                e.len -= cut;
                out.push(e);
            } else {
                out.push(e);
            }
        }
        let spb = self.geo.bs / 512;
        r.set_sectors(r.sectors().saturating_sub(freed * spb));
        let goal = out.first().map_or(0, |e| e.pblk);
        self.ext_store(st, r, &out, blocks, goal)
    }

    /// The first logical block at or after `lblk` inside an extent
    /// (written or not); `u64::MAX` when there is none.
    pub(crate) fn ext_next_mapped(&self, r: &RawInode, lblk: u64) -> WResult<u64> {
        let (exts, _) = self.ext_read(r)?;
        let i = exts.partition_point(|e| e.lblk + e.len <= lblk);
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
            let i = exts.partition_point(|e| e.lblk + e.len <= pos);
            if let Some(e) = exts.get(i).filter(|e| e.lblk <= pos) {
                pos = e.lblk + e.len;
                continue;
            }
            let hole_end = exts.get(i).map_or(b, |e| e.lblk.min(b));
            let goal = match i.checked_sub(1).map(|j| exts[j]) {
                Some(p) => p.pblk + p.len,
                None => self.inode_goal(r.ino),
            };
            // Leave room for the tree blocks the new extents may need.
            let want = (hole_end - pos)
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
            r.set_sectors(r.sectors() + n * spb);
            pos += n;
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
        let i = exts.partition_point(|e| e.lblk + e.len <= lblk);
        let e = match exts.get(i) {
            Some(e) if e.lblk <= lblk && e.unwritten => *e,
            _ => return Ok(None),
        };
        let t = end.min(e.lblk + e.len);
        let mut parts = Vec::with_capacity(3);
        if e.lblk < lblk {
            parts.push(Ext {
                len: lblk - e.lblk,
                ..e
            });
        }
        let pblk = e.pblk + (lblk - e.lblk);
        parts.push(Ext {
            lblk,
            len: t - lblk,
            pblk,
            unwritten: false,
        });
        if t < e.lblk + e.len {
            parts.push(Ext {
                lblk: t,
                len: e.lblk + e.len - t,
                pblk: e.pblk + (t - e.lblk),
                unwritten: true,
            });
        }
        exts.splice(i..=i, parts);
        merge(&mut exts);
        self.ext_store(st, r, &exts, blocks, pblk)?;
        Ok(Some((pblk, t - lblk)))
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
        let mut freed = 0u64;
        let mut out = Vec::with_capacity(exts.len() + 1);
        for e in exts {
            let (s, t) = (e.lblk.max(a), (e.lblk + e.len).min(b));
            if s >= t {
                out.push(e);
                continue;
            }
            self.free_blocks(st, e.pblk + (s - e.lblk), t - s)?;
            freed += t - s;
            if e.lblk < s {
                out.push(Ext {
                    len: s - e.lblk,
                    ..e
                });
            }
            if t < e.lblk + e.len {
                out.push(Ext {
                    lblk: t,
                    len: e.lblk + e.len - t,
                    pblk: e.pblk + (t - e.lblk),
                    unwritten: e.unwritten,
                });
            }
        }
        if freed == 0 {
            return Ok(());
        }
        let spb = self.geo.bs / 512;
        r.set_sectors(r.sectors().saturating_sub(freed * spb));
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
                let len = u32::try_from(e.len).unwrap_or(0)
                    + if e.unwritten { EXT_INIT_MAX_LEN } else { 0 };
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
                        r.set_sectors(r.sectors() + spb);
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
            depth += 1;
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
        for (i, (_, x)) in entries.iter().enumerate() {
            let at = entry_at(i);
            b[at..at + 12].copy_from_slice(x);
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
            if p.unwritten == e.unwritten
                && p.lblk + p.len == e.lblk
                && p.pblk + p.len == e.pblk
                && p.len + e.len <= max
            {
                p.len += e.len;
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
