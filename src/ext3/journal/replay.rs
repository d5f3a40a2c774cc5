//! In-memory journal replay, following jbd2's recovery (fs/jbd2/recovery.c):
//! scan the log from `s_start` while blocks carry the expected sequence,
//! keep each transaction whose commit block is valid, drop blocks revoked
//! by the same or a later transaction, and let later copies win. The
//! result is a map from filesystem block to its replayed contents, which
//! the reader installs as an overlay; the device is never written.
//!
//! Replay needs only a block device and where the journal lives on it
//! (the physical block of each log block, from the journal inode's block
//! map); it knows nothing of the filesystem handle.

use super::block::{
    parse_descriptor, Commit, Header, Tag, JBD2_COMMIT_BLOCK, JBD2_CRC32_CHKSUM,
    JBD2_DESCRIPTOR_BLOCK, JBD2_FLAG_ESCAPE, JBD2_REVOKE_BLOCK,
};
use super::crc::{crc32_be, crc32c};
use super::revoke::parse_revoke;
use super::superblock::{JournalSuperblock, COMPAT_CHECKSUM, INCOMPAT_CSUM_V3};
use super::JBD2_MAGIC_NUMBER;
use crate::block::BlockDevice;
use crate::ext3::error::{At, Corrupt, Error, Result};
use crate::ext3::types::BlockIndex;
use std::collections::{BTreeMap, HashMap};

/// What replay found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Committed transactions replayed.
    pub transactions: u32,
    /// Sequence number of the first one.
    pub first_sequence: u32,
    /// Blocks written into the overlay (distinct filesystem blocks).
    pub blocks: usize,
    /// Block copies skipped because a revoke record covers them.
    pub revoked: usize,
    /// Block copies skipped because their tag checksum did not match.
    pub bad_checksums: usize,
}

/// One committed transaction as found by the scan.
struct Transaction {
    sequence: u32,
    /// Tags and the log block holding each copy.
    tags: Vec<(Tag, u32)>,
    revokes: Vec<u64>,
}

/// `tid_gt`: sequence `a` is after `b` (wrapping).
fn tid_gt(a: u32, b: u32) -> bool {
    i32::from_be_bytes(a.wrapping_sub(b).to_be_bytes()) > 0
}

/// Where a journal lives: the device holding it and the filesystem's
/// geometry, with the physical block of each log block.
pub struct JournalDevice<'a> {
    /// The device (the filesystem's, without any overlay).
    pub dev: &'a dyn BlockDevice,
    /// Filesystem block size in bytes.
    pub block_size: u32,
    /// `s_blocks_count`: logged blocks beyond it are corrupt.
    pub blocks_count: u64,
    /// Physical block of each log block, in order (the journal inode's
    /// block map; 0 for a hole).
    pub map: &'a [BlockIndex],
}

impl JournalDevice<'_> {
    /// Reads log block `lblk`.
    fn read(&self, lblk: u32) -> Result<Vec<u8>> {
        let pblk = usize::try_from(lblk)
            .ok()
            .and_then(|i| self.map.get(i))
            .copied()
            .unwrap_or_default();
        if pblk.0 == 0 || pblk.0 >= self.blocks_count {
            return Err(Error::corrupt(
                "journal",
                Corrupt::Journal {
                    field: "log block",
                    value: u64::from(lblk),
                },
            ));
        }
        let bs = u64::from(self.block_size);
        let offset = pblk.byte_offset(self.block_size).ok_or_else(|| {
            Error::corrupt(
                "journal",
                Corrupt::Journal {
                    field: "log block",
                    value: u64::from(lblk),
                },
            )
        })?;
        let mut b = vec![0u8; usize::try_from(bs).unwrap_or(0)];
        self.dev
            .read_exact_at(offset, &mut b)
            .map_err(|source| Error::Io {
                offset,
                len: b.len(),
                source,
            })?;
        Ok(b)
    }
}

struct Log<'a> {
    jdev: &'a JournalDevice<'a>,
    jsb: JournalSuperblock,
    seed: u32,
}

impl Log<'_> {
    fn read(&self, lblk: u32) -> Result<Vec<u8>> {
        self.jdev.read(lblk)
    }

    fn next(&self, p: u32) -> u32 {
        let p = p.saturating_add(1);
        if p >= self.jsb.log_end() {
            self.jsb.s_first
        } else {
            p
        }
    }

    /// Checks the checksum tail of a descriptor or revoke block.
    fn tail_ok(&self, b: &[u8]) -> bool {
        if !self.jsb.csum_v2v3() {
            return true;
        }
        // The checksum is over the block with its 4-byte tail zeroed.
        let Some((body, tail)) = b.split_last_chunk::<4>() else {
            return false;
        };
        let want = u32::from_be_bytes(*tail);
        crc32c(crc32c(self.seed, body), &[0; 4]) == want
    }

    fn commit_ok(&self, b: &[u8], v1_sum: u32) -> bool {
        let Ok(c) = Commit::parse(b) else {
            return false;
        };
        if self.jsb.csum_v2v3() {
            let mut copy = b.to_vec();
            copy[16..20].fill(0);
            return crc32c(self.seed, &copy) == c.h_chksum0;
        }
        if self.jsb.s_feature_compat & COMPAT_CHECKSUM != 0
            && c.h_chksum_type == JBD2_CRC32_CHKSUM
            && c.h_chksum_size == 4
        {
            return c.h_chksum0 == v1_sum;
        }
        true
    }

    fn data_ok(&self, tag: &Tag, sequence: u32, data: &[u8]) -> bool {
        if !self.jsb.csum_v2v3() {
            return true;
        }
        let c = crc32c(crc32c(self.seed, &sequence.to_be_bytes()), data);
        if self.jsb.has_incompat(INCOMPAT_CSUM_V3) {
            tag.checksum == c
        } else {
            tag.checksum == c & 0xFFFF
        }
    }

    /// Walks the log and returns its committed transactions.
    fn scan(&self) -> Result<Vec<Transaction>> {
        let tail = if self.jsb.csum_v2v3() { 4 } else { 0 };
        let log_len = self.jsb.log_end().saturating_sub(self.jsb.s_first);
        let mut done = Vec::new();
        let mut cur = Transaction {
            sequence: self.jsb.s_sequence,
            tags: Vec::new(),
            revokes: Vec::new(),
        };
        let mut pos = self.jsb.s_start;
        let mut v1_sum = !0u32;
        let mut visited = 0u32;
        // Each step consumes at least one log block; a full lap ends the log.
        while visited < log_len {
            let b = self.read(pos)?;
            let Some(h) = Header::parse(&b) else { break };
            if h.h_sequence != cur.sequence {
                break;
            }
            match h.h_blocktype {
                JBD2_DESCRIPTOR_BLOCK => {
                    if !self.tail_ok(&b) {
                        break;
                    }
                    let Ok(tags) = parse_descriptor(&b, &self.jsb, tail) else {
                        break;
                    };
                    if self.jsb.s_feature_compat & COMPAT_CHECKSUM != 0 {
                        v1_sum = crc32_be(v1_sum, &b);
                    }
                    let mut p = pos;
                    let n = u32::try_from(tags.len()).unwrap_or(u32::MAX);
                    for t in tags {
                        p = self.next(p);
                        if self.jsb.s_feature_compat & COMPAT_CHECKSUM != 0 {
                            v1_sum = crc32_be(v1_sum, &self.read(p)?);
                        }
                        cur.tags.push((t, p));
                    }
                    visited = visited.saturating_add(n);
                    pos = self.next(p);
                }
                JBD2_COMMIT_BLOCK => {
                    if !self.commit_ok(&b, v1_sum) {
                        break;
                    }
                    let next = cur.sequence.wrapping_add(1);
                    done.push(std::mem::replace(
                        &mut cur,
                        Transaction {
                            sequence: next,
                            tags: Vec::new(),
                            revokes: Vec::new(),
                        },
                    ));
                    v1_sum = !0;
                    pos = self.next(pos);
                }
                JBD2_REVOKE_BLOCK => {
                    if !self.tail_ok(&b) {
                        break;
                    }
                    let Ok(r) = parse_revoke(&b, &self.jsb, tail) else {
                        break;
                    };
                    cur.revokes.extend(r);
                    pos = self.next(pos);
                }
                _ => break,
            }
            visited = visited.saturating_add(1);
        }
        Ok(done)
    }
}

/// Replayed blocks: filesystem block number to its contents.
pub type Replayed = BTreeMap<BlockIndex, Box<[u8]>>;

/// Replays the journal on `jdev` in memory.
pub fn replay(jdev: &JournalDevice<'_>) -> Result<(Replayed, ReplayReport)> {
    let bs = jdev.block_size;
    let nblocks = u64::try_from(jdev.map.len()).unwrap_or(u64::MAX);
    let first = jdev.read(0)?;
    let jsb = JournalSuperblock::parse(&first).at(|| "journal superblock".into())?;
    if jsb.s_blocksize != bs {
        return Err(Error::Unsupported(format!(
            "journal block size {} differs from the filesystem's {bs}",
            jsb.s_blocksize
        )));
    }
    if u64::from(jsb.s_maxlen) > nblocks {
        return Err(Error::corrupt(
            "journal superblock",
            Corrupt::Journal {
                field: "s_maxlen",
                value: u64::from(jsb.s_maxlen),
            },
        ));
    }
    let unknown = jsb.unknown_incompat();
    if unknown != 0 {
        let name = if unknown & super::superblock::INCOMPAT_FAST_COMMIT != 0 {
            "journal fast_commit (replaying a dirty fast-commit journal)".to_string()
        } else {
            format!("journal incompatible features {unknown:#x}")
        };
        return Err(Error::Unsupported(name));
    }
    if jsb.csum_v2v3() {
        let mut c = first[..1024].to_vec();
        c[0xFC..0x100].fill(0);
        if crc32c(!0, &c) != jsb.s_checksum {
            return Err(Error::corrupt(
                "journal superblock",
                Corrupt::Checksum {
                    structure: "journal superblock",
                    stored: jsb.s_checksum,
                    computed: crc32c(!0, &c),
                },
            ));
        }
    }
    let mut report = ReplayReport {
        first_sequence: jsb.s_sequence,
        ..Default::default()
    };
    if jsb.s_start == 0 {
        return Ok((BTreeMap::new(), report));
    }
    let seed = crc32c(!0, &jsb.s_uuid);
    let log = Log { jdev, jsb, seed };
    let txns = log.scan()?;
    let mut revoked: HashMap<u64, u32> = HashMap::new();
    for t in &txns {
        for &blk in &t.revokes {
            let e = revoked.entry(blk).or_insert(t.sequence);
            if tid_gt(t.sequence, *e) {
                *e = t.sequence;
            }
        }
    }
    let mut blocks = BTreeMap::new();
    for t in &txns {
        report.transactions = report.transactions.saturating_add(1);
        for (tag, lpos) in &t.tags {
            if revoked
                .get(&tag.blocknr)
                .is_some_and(|&r| !tid_gt(t.sequence, r))
            {
                report.revoked = report.revoked.saturating_add(1);
                continue;
            }
            let mut data = log.read(*lpos)?;
            // The tag checksum covers the block as logged (still escaped).
            if !log.data_ok(tag, t.sequence, &data) {
                report.bad_checksums = report.bad_checksums.saturating_add(1);
                continue;
            }
            if tag.flags & JBD2_FLAG_ESCAPE != 0 {
                data[..4].copy_from_slice(&JBD2_MAGIC_NUMBER.to_be_bytes());
            }
            if tag.blocknr >= jdev.blocks_count {
                return Err(Error::corrupt(
                    "journal",
                    Corrupt::OutsideFilesystem {
                        what: "logged",
                        block: tag.blocknr,
                        blocks_count: jdev.blocks_count,
                    },
                ));
            }
            blocks.insert(BlockIndex(tag.blocknr), data.into_boxed_slice());
        }
    }
    report.blocks = blocks.len();
    Ok((blocks, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::block::MemDevice;

    const BS: usize = 1024;

    /// A 16-block device whose journal is log blocks 0..8 at device blocks
    /// 4..12: a v2 superblock, then a descriptor with one tag for
    /// filesystem block `target`, its data block and a commit.
    fn journal_logging(target: u32) -> (MemDevice, Vec<BlockIndex>) {
        let mut img = vec![0u8; 16 * BS];
        let map: Vec<BlockIndex> = (4..12).map(BlockIndex).collect();
        let block = |img: &mut Vec<u8>, lblk: usize, words: &[(usize, u32)]| {
            let at = (4 + lblk) * BS;
            for &(off, v) in words {
                img[at + off..at + off + 4].copy_from_slice(&v.to_be_bytes());
            }
        };
        // h_magic, h_blocktype (v2), s_blocksize, s_maxlen, s_first,
        // s_sequence, s_start.
        block(
            &mut img,
            0,
            &[
                (0, JBD2_MAGIC_NUMBER),
                (4, 4),
                (0x0C, 1024),
                (0x10, 8),
                (0x14, 1),
                (0x18, 7),
                (0x1C, 1),
            ],
        );
        // Descriptor: one 32-bit tag (t_blocknr, t_checksum:t_flags = LAST).
        block(
            &mut img,
            1,
            &[
                (0, JBD2_MAGIC_NUMBER),
                (4, JBD2_DESCRIPTOR_BLOCK),
                (8, 7),
                (12, target),
                (16, 8),
            ],
        );
        block(&mut img, 2, &[(0, 0x5555_5555)]);
        block(
            &mut img,
            3,
            &[(0, JBD2_MAGIC_NUMBER), (4, JBD2_COMMIT_BLOCK), (8, 7)],
        );
        (MemDevice::new(img), map)
    }

    fn replay_on(dev: &MemDevice, map: &[BlockIndex]) -> Result<(Replayed, ReplayReport)> {
        replay(&JournalDevice {
            dev,
            block_size: 1024,
            blocks_count: 16,
            map,
        })
    }

    #[test]
    fn a_logged_block_inside_the_filesystem_is_replayed() {
        let (dev, map) = journal_logging(13);
        let (blocks, report) = replay_on(&dev, &map).unwrap();
        assert_eq!(report.transactions, 1);
        assert_eq!(blocks[&BlockIndex(13)][..4], [0x55; 4]);
    }

    #[test]
    fn a_logged_block_past_the_device_is_a_clear_error() {
        let (dev, map) = journal_logging(0xFFFF_FFF0);
        let err = replay_on(&dev, &map).unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt filesystem: journal: logged block 4294967280 is outside the filesystem (16 blocks)"
        );
    }

    #[test]
    fn a_log_block_mapped_past_the_device_is_a_clear_error() {
        let (dev, mut map) = journal_logging(13);
        map[2] = BlockIndex(u64::MAX / 512);
        let err = replay_on(&dev, &map).unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt filesystem: journal: journal log block 2 does not fit the log"
        );
    }

    #[test]
    fn tid_gt_wraps() {
        assert!(tid_gt(2, 1));
        assert!(!tid_gt(1, 1));
        assert!(tid_gt(0, u32::MAX));
    }
}
