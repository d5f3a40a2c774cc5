//! Writing the JBD2 log as ext3 does (fs/jbd2/commit.c, journal.rst):
//! a descriptor block with one tag per metadata block, the copies (escaped
//! when they start with the journal magic), a commit block; the journal
//! superblock's `s_start`/`s_sequence` say where the log starts. The writer
//! checkpoints every transaction right after its commit, so each commit
//! starts at `s_first` and the log never holds more than one transaction.
//! With checksum v3 (`JBD2_FEATURE_INCOMPAT_CSUM_V3`, as mke2fs makes it
//! under metadata_csum) tags are 16 bytes carrying the CRC32C of the logged
//! copy, the descriptor ends in a checksum tail, the commit block and the
//! journal superblock carry their checksums; the seed is the CRC32C of the
//! journal UUID.

use super::cache::Cached;
use super::{eio, idx, WResult};
use crate::block::{usize_from, BlockDevice};
use crate::ext3::bytes::{hi32, lo16, lo32, set_be32};
use crate::ext3::journal::block::field::*;
use crate::ext3::journal::block::{
    JBD2_COMMIT_BLOCK, JBD2_DESCRIPTOR_BLOCK, JBD2_FLAG_ESCAPE, JBD2_FLAG_LAST_TAG,
    JBD2_FLAG_SAME_UUID,
};
use crate::ext3::journal::crc::crc32c;
use crate::ext3::journal::superblock::field::{S_CHECKSUM, S_SEQUENCE, S_START, S_UUID};
use crate::ext3::journal::superblock::{
    JournalSuperblock, COMPAT_CHECKSUM, INCOMPAT_64BIT, INCOMPAT_CSUM_V3, INCOMPAT_REVOKE,
};
use crate::ext3::journal::JBD2_MAGIC_NUMBER;
use crate::ext3::map::collect_blocks;
use crate::ext3::BlockIndex;
use crate::ext3::{Ext3, Superblock};
use crate::fs::Error as FsError;
use std::num::NonZeroUsize;

/// The journal as the writer uses it.
#[derive(Debug)]
pub struct Journal {
    /// Journal logical block -> device block.
    map: Vec<u64>,
    /// The superblock block as read (rewritten with new s_start/s_sequence).
    raw_sb: Vec<u8>,
    first: u32,
    end: u32,
    /// Sequence of the next transaction.
    tid: u32,
    tag_bytes: usize,
    is64: bool,
    /// Checksum v3: the seed (CRC32C of the journal UUID).
    csum: Option<u32>,
    bs: usize,
    dirty_at_load: bool,
}

/// Writes big-endian `u16` `v` at `off` (nothing past the end).
fn set_be16(b: &mut [u8], off: usize, v: u16) {
    if let Some(d) = b.get_mut(off..).and_then(|d| d.get_mut(..2)) {
        d.copy_from_slice(&v.to_be_bytes());
    }
}

/// Writes big-endian `u64` `v` at `off` (nothing past the end).
fn set_be64(b: &mut [u8], off: usize, v: u64) {
    if let Some(d) = b.get_mut(off..).and_then(|d| d.get_mut(..8)) {
        d.copy_from_slice(&v.to_be_bytes());
    }
}

fn header(b: &mut [u8], kind: u32, tid: u32) {
    set_be32(b, H_MAGIC, JBD2_MAGIC_NUMBER);
    set_be32(b, H_BLOCKTYPE, kind);
    set_be32(b, H_SEQUENCE, tid);
}

impl Journal {
    /// Loads the internal journal of `fs`; `EOPNOTSUPP` for journal
    /// features the writer does not produce (checksums, async commit).
    pub fn load<D: BlockDevice>(fs: &Ext3<D>, sb: &Superblock) -> WResult<Journal> {
        let jino = sb.s_journal_inum;
        let inode = fs.inode(jino).map_err(|_| FsError::IO)?;
        let bs = fs.block_size_nz();
        let n = inode.i_size / bs;
        if n < 4 || n > sb.s_blocks_count {
            return Err(FsError::IO);
        }
        let mut m = fs.mapper(jino, &inode);
        let map = collect_blocks(&mut m, n).map_err(|_| FsError::IO)?;
        if map.contains(&0) {
            return Err(FsError::IO);
        }
        let raw_sb = fs
            .read_block(BlockIndex(map[0]), "journal")
            .map_err(|_| FsError::IO.at_block(map[0]))?;
        let jsb = JournalSuperblock::parse(&raw_sb).map_err(|_| FsError::IO)?;
        if jsb.s_feature_compat & COMPAT_CHECKSUM != 0
            || jsb.s_feature_incompat & !(INCOMPAT_REVOKE | INCOMPAT_64BIT | INCOMPAT_CSUM_V3) != 0
        {
            return Err(FsError::Unsupported);
        }
        if u64::from(jsb.s_maxlen) > n || u64::from(jsb.s_blocksize) != bs.get() {
            return Err(FsError::IO);
        }
        let is64 = jsb.s_feature_incompat & INCOMPAT_64BIT != 0;
        let v3 = jsb.s_feature_incompat & INCOMPAT_CSUM_V3 != 0;
        // The log, s_first up to its end, must lie inside the journal
        // (the parser checked 0 < s_first < s_maxlen).
        if jsb.s_first >= jsb.log_end() || u64::from(jsb.log_end()) > n {
            return Err(FsError::IO);
        }
        let mut j = Journal {
            map,
            raw_sb,
            first: jsb.s_first,
            end: jsb.log_end(),
            tid: jsb.s_sequence,
            tag_bytes: match (v3, is64) {
                (true, _) => 16,
                (false, true) => 12,
                (false, false) => 8,
            },
            is64,
            csum: v3.then(|| crc32c(!0, &jsb.s_uuid)),
            bs: usize_from(bs.get()),
            dirty_at_load: false,
        };
        // Start from a clean log with a sequence past anything in it (the
        // caller has replayed whatever it held).
        if jsb.s_start != 0 {
            j.tid = j.tid.wrapping_add(1 << 16);
            j.dirty_at_load = true;
        }
        Ok(j)
    }

    /// Empties a log found non-empty at load (already replayed).
    pub fn reset_if_dirty<D: BlockDevice>(&mut self, dev: &Cached<D>) -> WResult<()> {
        if self.dirty_at_load {
            self.write_sb(dev, 0)?;
            dev.flush().map_err(eio)?;
            self.dirty_at_load = false;
        }
        Ok(())
    }

    /// How many filesystem blocks one transaction may carry.
    pub fn capacity(&self) -> usize {
        // `load` checked 0 < s_first < the log's end.
        let room = idx(self.end.saturating_sub(self.first));
        let per = self.tags_per_descriptor().get();
        // n blocks need n/per descriptors and one commit block (room is
        // below 2^32 and per below 2^13: the product fits).
        room.saturating_sub(2).saturating_mul(per) / NonZeroUsize::MIN.saturating_add(per)
    }

    /// Tags that fit one descriptor block (header, one UUID, the tail).
    fn tags_per_descriptor(&self) -> NonZeroUsize {
        // The header, one UUID and the checksum tail.
        let fixed = if self.csum.is_some() {
            HEADER_SIZE + 20
        } else {
            HEADER_SIZE + 16
        };
        // Blocks are 1 KiB or more, tags 8 to 16 bytes: at least 62 fit.
        let room = self.bs.saturating_sub(fixed);
        NonZeroUsize::new(room.checked_div(self.tag_bytes).unwrap_or(0))
            .unwrap_or(NonZeroUsize::MIN)
    }

    fn write_sb<D: BlockDevice>(&mut self, dev: &Cached<D>, start: u32) -> WResult<()> {
        set_be32(&mut self.raw_sb, S_SEQUENCE, self.tid);
        set_be32(&mut self.raw_sb, S_START, start);
        if self.csum.is_some() {
            set_be32(&mut self.raw_sb, S_CHECKSUM, 0);
            let c = crc32c(!0, &self.raw_sb[..1024]);
            set_be32(&mut self.raw_sb, S_CHECKSUM, c);
        }
        dev.write_blocks(self.map[0], &self.raw_sb).map_err(eio)
    }

    /// Writes `blocks` (device block, contents) as transaction `tid` and
    /// its commit block; on return the transaction is durable.
    pub fn commit<D: BlockDevice>(
        &mut self,
        dev: &Cached<D>,
        blocks: &[(u64, Box<[u8]>)],
    ) -> WResult<()> {
        if blocks.len() > self.capacity() {
            return Err(FsError::NoSpace);
        }
        let per = self.tags_per_descriptor();
        // At most capacity() blocks, each with its share of a descriptor.
        let log_blocks = blocks
            .len()
            .saturating_add(blocks.len() / per)
            .saturating_add(2);
        let mut log: Vec<u8> = Vec::with_capacity(log_blocks.saturating_mul(self.bs));
        let magic = JBD2_MAGIC_NUMBER.to_be_bytes();
        let uuid = self
            .raw_sb
            .get(S_UUID..)
            .and_then(|u| u.get(..16))
            .ok_or(FsError::IO)?;
        for chunk in blocks.chunks(per.get()) {
            // The tags (the first followed by the journal UUID), at most
            // per of them: they fit the descriptor block.
            let mut tags = Vec::with_capacity(self.bs);
            for (i, (blk, data)) in chunk.iter().enumerate() {
                let mut flags = 0u32;
                if data.starts_with(&magic) {
                    flags |= JBD2_FLAG_ESCAPE;
                }
                if i > 0 {
                    flags |= JBD2_FLAG_SAME_UUID;
                }
                if i == chunk.len().saturating_sub(1) {
                    flags |= JBD2_FLAG_LAST_TAG;
                }
                let mut tag = [0u8; 16];
                set_be32(&mut tag, T_BLOCKNR, lo32(*blk));
                if let Some(seed) = self.csum {
                    // journal_block_tag3_t: 32-bit flags, the checksum of
                    // the copy as logged (escaped).
                    set_be32(&mut tag, T3_FLAGS, flags);
                    let mut c = crc32c(seed, &self.tid.to_be_bytes());
                    if let Some(rest) = data.strip_prefix(&magic[..]) {
                        c = crc32c(c, &[0; 4]);
                        c = crc32c(c, rest);
                    } else {
                        c = crc32c(c, data);
                    }
                    set_be32(&mut tag, T3_CHECKSUM, c);
                } else {
                    // journal_block_tag_t: 16-bit flags (all of them fit).
                    set_be16(&mut tag, T_FLAGS, lo16(flags));
                }
                if self.is64 {
                    set_be32(&mut tag, T_BLOCKNR_HIGH, hi32(*blk));
                }
                tags.extend_from_slice(tag.get(..self.tag_bytes).unwrap_or(&tag));
                if i == 0 {
                    tags.extend_from_slice(uuid);
                }
            }
            let mut desc = vec![0u8; self.bs];
            header(&mut desc, JBD2_DESCRIPTOR_BLOCK, self.tid);
            desc.get_mut(HEADER_SIZE..)
                .and_then(|d| d.get_mut(..tags.len()))
                .ok_or(FsError::IO)?
                .copy_from_slice(&tags);
            if let Some(seed) = self.csum {
                let c = crc32c(seed, &desc);
                let tail = desc.len().checked_sub(4).ok_or(FsError::IO)?;
                set_be32(&mut desc, tail, c);
            }
            log.extend_from_slice(&desc);
            for (_, data) in chunk {
                if let Some(rest) = data.strip_prefix(&magic[..]) {
                    // Escaped: the copy starts with zeros instead.
                    log.extend_from_slice(&[0; 4]);
                    log.extend_from_slice(rest);
                } else {
                    log.extend_from_slice(data);
                }
            }
        }
        self.write_sb(dev, self.first)?;
        self.write_log(dev, self.first, &log)?;
        dev.flush().map_err(eio)?;
        let mut commit = vec![0u8; self.bs];
        header(&mut commit, JBD2_COMMIT_BLOCK, self.tid);
        let t = super::now();
        let sec = u64::try_from(t.sec).unwrap_or(0);
        set_be64(&mut commit, H_COMMIT_SEC, sec);
        set_be32(&mut commit, H_COMMIT_NSEC, t.nsec);
        if let Some(seed) = self.csum {
            let c = crc32c(seed, &commit);
            set_be32(&mut commit, H_CHKSUM, c);
        }
        // The log fits the journal (`capacity`), whose length is a u32.
        let at = u32::try_from(log.len() / self.bs_nz())
            .ok()
            .and_then(|n| self.first.checked_add(n))
            .ok_or(FsError::IO)?;
        self.write_log(dev, at, &commit)?;
        dev.flush().map_err(eio)
    }

    /// Writes consecutive log blocks from logical block `at`, one device
    /// write per physically contiguous run.
    fn write_log<D: BlockDevice>(&self, dev: &Cached<D>, at: u32, data: &[u8]) -> WResult<()> {
        let n = data.len() / self.bs_nz();
        // `capacity` keeps the log inside the journal's map.
        let mut map = self
            .map
            .get(idx(at)..)
            .and_then(|m| m.get(..n))
            .ok_or(FsError::IO)?;
        let mut rest = data;
        while let Some(&p0) = map.first() {
            // The run: map entries each one past the one before.
            let len = super::run_len(map);
            let (run, tail) = rest
                .split_at_checked(len.saturating_mul(self.bs))
                .ok_or(FsError::IO)?;
            dev.write_blocks(p0, run).map_err(eio)?;
            rest = tail;
            map = map.get(len..).unwrap_or_default();
        }
        Ok(())
    }

    fn bs_nz(&self) -> NonZeroUsize {
        NonZeroUsize::new(self.bs).unwrap_or(NonZeroUsize::MIN)
    }

    /// Records that the transaction reached its home locations: the log is
    /// empty again and the next transaction gets the next sequence.
    pub fn checkpointed<D: BlockDevice>(&mut self, dev: &Cached<D>) -> WResult<()> {
        self.tid = self.tid.wrapping_add(1);
        self.write_sb(dev, 0)
    }
}
