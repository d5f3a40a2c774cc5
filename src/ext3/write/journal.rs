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
use crate::block::{u64_from, usize_from, BlockDevice};
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
        let bs = u64::from(fs.block_size());
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
        if u64::from(jsb.s_maxlen) > n || u64::from(jsb.s_blocksize) != bs {
            return Err(FsError::IO);
        }
        let is64 = jsb.s_feature_incompat & INCOMPAT_64BIT != 0;
        let v3 = jsb.s_feature_incompat & INCOMPAT_CSUM_V3 != 0;
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
            bs: usize_from(bs),
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
        let room = idx(self.end - self.first);
        let per = self.tags_per_descriptor();
        // n blocks need n/per descriptors and one commit block.
        room.saturating_sub(2) * per / (per + 1)
    }

    /// Tags that fit one descriptor block (header, one UUID, the tail).
    fn tags_per_descriptor(&self) -> usize {
        let tail = if self.csum.is_some() { 4 } else { 0 };
        (self.bs - HEADER_SIZE - 16 - tail) / self.tag_bytes
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
        let mut log: Vec<u8> =
            Vec::with_capacity((blocks.len() + blocks.len() / per + 2) * self.bs);
        for chunk in blocks.chunks(per) {
            let mut desc = vec![0u8; self.bs];
            header(&mut desc, JBD2_DESCRIPTOR_BLOCK, self.tid);
            let mut off = HEADER_SIZE;
            for (i, (blk, data)) in chunk.iter().enumerate() {
                let mut flags = 0u32;
                if data[0..4] == JBD2_MAGIC_NUMBER.to_be_bytes() {
                    flags |= JBD2_FLAG_ESCAPE;
                }
                if i > 0 {
                    flags |= JBD2_FLAG_SAME_UUID;
                }
                if i + 1 == chunk.len() {
                    flags |= JBD2_FLAG_LAST_TAG;
                }
                set_be32(&mut desc[off..], T_BLOCKNR, lo32(*blk));
                if let Some(seed) = self.csum {
                    // journal_block_tag3_t: 32-bit flags, the checksum of
                    // the copy as logged (escaped).
                    set_be32(&mut desc[off..], T3_FLAGS, flags);
                    let mut c = crc32c(seed, &self.tid.to_be_bytes());
                    if flags & JBD2_FLAG_ESCAPE != 0 {
                        c = crc32c(c, &[0; 4]);
                        c = crc32c(c, &data[4..]);
                    } else {
                        c = crc32c(c, data);
                    }
                    set_be32(&mut desc[off..], T3_CHECKSUM, c);
                } else {
                    // journal_block_tag_t: 16-bit flags (all of them fit).
                    desc[off + T_FLAGS..off + T_FLAGS + 2]
                        .copy_from_slice(&lo16(flags).to_be_bytes());
                }
                if self.is64 {
                    set_be32(&mut desc[off..], T_BLOCKNR_HIGH, hi32(*blk));
                }
                off += self.tag_bytes;
                if i == 0 {
                    let uuid: Vec<u8> = self.raw_sb[S_UUID..S_UUID + 16].to_vec();
                    desc[off..off + 16].copy_from_slice(&uuid);
                    off += 16;
                }
            }
            if let Some(seed) = self.csum {
                let n = self.bs;
                let c = crc32c(seed, &desc);
                set_be32(&mut desc, n - 4, c);
            }
            log.extend_from_slice(&desc);
            for (_, data) in chunk {
                let start = log.len();
                log.extend_from_slice(data);
                if data[0..4] == JBD2_MAGIC_NUMBER.to_be_bytes() {
                    log[start..start + 4].fill(0);
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
        commit[H_COMMIT_SEC..H_COMMIT_SEC + 8].copy_from_slice(&sec.to_be_bytes());
        set_be32(&mut commit, H_COMMIT_NSEC, t.nsec);
        if let Some(seed) = self.csum {
            let c = crc32c(seed, &commit);
            set_be32(&mut commit, H_CHKSUM, c);
        }
        // The log fits the journal (`capacity`), whose length is a u32.
        let at = u32::try_from(log.len() / self.bs)
            .ok()
            .and_then(|n| self.first.checked_add(n))
            .ok_or(FsError::IO)?;
        self.write_log(dev, at, &commit)?;
        dev.flush().map_err(eio)
    }

    /// Writes consecutive log blocks from logical block `at`, one device
    /// write per physically contiguous run.
    fn write_log<D: BlockDevice>(&self, dev: &Cached<D>, at: u32, data: &[u8]) -> WResult<()> {
        let n = data.len() / self.bs;
        let mut i = 0usize;
        while i < n {
            let p0 = self.map[idx(at) + i];
            let mut len = 1;
            while i + len < n && self.map[idx(at) + i + len] == p0 + u64_from(len) {
                len += 1;
            }
            dev.write_blocks(p0, &data[i * self.bs..(i + len) * self.bs])
                .map_err(eio)?;
            i += len;
        }
        Ok(())
    }

    /// Records that the transaction reached its home locations: the log is
    /// empty again and the next transaction gets the next sequence.
    pub fn checkpointed<D: BlockDevice>(&mut self, dev: &Cached<D>) -> WResult<()> {
        self.tid = self.tid.wrapping_add(1);
        self.write_sb(dev, 0)
    }
}
