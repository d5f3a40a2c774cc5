//! The filesystem handle: [`Ext3`] opened over a block device, with the
//! journal replayed into an in-memory overlay when the superblock asks for
//! recovery. Geometry (superblock, group descriptors) and inode records
//! live here; directory, file and attribute operations are in their own
//! files and all take inode numbers, the shape a FUSE server needs.

use super::block_map::span;
use super::bytes::{u64_from, usize_from};
use super::error::{At, Corrupt, Error, Result};
use super::features::{unsupported_incompat, RoCompat};
use super::group_desc::{desc_table_block, descs_are_64bit, GroupDesc};
use super::inode::{verify_checksum, Inode};
use super::journal::replay::{replay, JournalDevice, ReplayReport, Replayed};
use super::map::{collect_blocks, inode_csum_seed, Mapper};
use super::superblock::{Superblock, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};
use super::types::BlockIndex;
use crate::block::{BlockDevice, BlockMap, Overlay};

/// Bound on the number of block groups (2^24 groups of 32768 blocks is far
/// beyond any image umlkit will meet).
const MAX_GROUPS: u64 = 1 << 24;

/// How to open a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Replay a journal that needs recovery into the in-memory overlay
    /// (default). Without it the on-disk state is read as it is.
    pub replay_journal: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            replay_journal: true,
        }
    }
}

/// A read-only ext2/ext3/ext4 filesystem over a block device.
///
/// Every operation takes `&self`, so one handle serves several threads.
#[derive(Debug)]
pub struct Ext3<D: BlockDevice> {
    pub(crate) dev: Overlay<D>,
    pub(crate) sb: Superblock,
    disk_sb: Superblock,
    groups: Vec<GroupDesc>,
    replay: Option<ReplayReport>,
    csum_seed: u32,
}

fn read_at(dev: &dyn BlockDevice, offset: u64, buf: &mut [u8]) -> Result<()> {
    dev.read_exact_at(offset, buf).map_err(|source| Error::Io {
        offset,
        len: buf.len(),
        source,
    })
}

fn load_superblock(dev: &dyn BlockDevice) -> Result<Superblock> {
    let mut b = vec![0u8; SUPERBLOCK_SIZE];
    read_at(dev, SUPERBLOCK_OFFSET, &mut b)?;
    let sb = Superblock::parse(&b).at(|| "superblock".to_string())?;
    if let Some(f) = unsupported_incompat(sb.s_feature_incompat) {
        return Err(Error::Unsupported(f));
    }
    let size = sb.s_blocks_count.checked_mul(u64::from(sb.block_size()));
    if size.is_none_or(|s| s > dev.len()) {
        return Err(Error::corrupt(
            "superblock",
            Corrupt::Truncated {
                blocks: sb.s_blocks_count,
                block_size: sb.block_size(),
                device_len: dev.len(),
            },
        ));
    }
    if sb.group_count() > MAX_GROUPS {
        return Err(Error::corrupt(
            "superblock",
            Corrupt::TooMany {
                structure: "superblock (block groups)",
                count: sb.group_count(),
                max: MAX_GROUPS,
            },
        ));
    }
    Ok(sb)
}

fn load_groups(dev: &dyn BlockDevice, sb: &Superblock) -> Result<Vec<GroupDesc>> {
    let count = sb.group_count();
    let bs = u64::from(sb.block_size());
    let ds = sb.desc_size();
    // desc_size() is at least 32, so the division is defined.
    let per_block = u64_from(usize_from(bs).checked_div(ds).unwrap_or(0).max(1));
    let is64 = descs_are_64bit(sb);
    let mut groups = Vec::with_capacity(usize_from(count));
    let mut buf = vec![0u8; usize_from(bs)];
    let mut i = 0u64;
    while u64_from(groups.len()) < count {
        let blk = desc_table_block(sb, i)
            .filter(|&b| b < sb.s_blocks_count)
            .ok_or_else(|| {
                Error::corrupt(
                    "group descriptors",
                    Corrupt::BadField {
                        field: "group descriptor table number",
                        value: i,
                    },
                )
            })?;
        // blk < s_blocks_count, and the filesystem fits the device.
        let offset = BlockIndex(blk)
            .byte_offset(sb.block_size())
            .ok_or_else(|| {
                Error::corrupt(
                    "group descriptors",
                    Corrupt::OutsideFilesystem {
                        what: "group descriptor table",
                        block: blk,
                        blocks_count: sb.s_blocks_count,
                    },
                )
            })?;
        read_at(dev, offset, &mut buf)?;
        for chunk in buf.chunks_exact(ds).take(usize_from(per_block)) {
            if u64_from(groups.len()) == count {
                break;
            }
            let g = groups.len();
            let d = GroupDesc::parse(chunk, is64).at(|| format!("group descriptor {g}"))?;
            if d.bg_inode_table >= sb.s_blocks_count {
                return Err(Error::corrupt(
                    format!("group descriptor {g}"),
                    Corrupt::OutsideFilesystem {
                        what: "bg_inode_table",
                        block: d.bg_inode_table,
                        blocks_count: sb.s_blocks_count,
                    },
                ));
            }
            groups.push(d);
        }
        // Each pass reads the next table block or fails once past
        // s_blocks_count: i stays far below u64::MAX.
        i = i.saturating_add(1);
    }
    Ok(groups)
}

impl<D: BlockDevice> Ext3<D> {
    /// Opens the filesystem on `dev`, replaying a dirty journal in memory.
    pub fn open(dev: D) -> Result<Self> {
        Self::open_with(dev, OpenOptions::default())
    }

    /// Opens the filesystem on `dev` with `options`.
    pub fn open_with(dev: D, options: OpenOptions) -> Result<Self> {
        let disk_sb = load_superblock(&dev)?;
        let groups = load_groups(&dev, &disk_sb)?;
        let mut fs = Ext3 {
            dev: Overlay::new(dev, disk_sb.block_size()),
            sb: disk_sb.clone(),
            disk_sb,
            groups,
            replay: None,
            csum_seed: 0,
        };
        fs.csum_seed = fs.sb.csum_seed();
        if options.replay_journal && fs.disk_sb.needs_recovery() && fs.disk_sb.has_journal() {
            let (blocks, report) = fs.replay_journal()?;
            let bs = fs.sb.block_size();
            fs.dev.install(BlockMap::from_blocks(
                bs,
                blocks.into_iter().map(|(k, v)| (k.0, v)).collect(),
            ));
            fs.replay = Some(report);
            // The journal may hold newer copies of the superblock and the
            // descriptor table.
            fs.sb = load_superblock(&fs.dev)?;
            fs.groups = load_groups(&fs.dev, &fs.sb)?;
            fs.csum_seed = fs.sb.csum_seed();
        }
        Ok(fs)
    }

    /// The superblock as the reader uses it (after journal replay).
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// The superblock as it is on the device, before any replay.
    pub fn disk_superblock(&self) -> &Superblock {
        &self.disk_sb
    }

    /// True when the on-disk superblock says the journal needs recovery.
    pub fn needs_recovery(&self) -> bool {
        self.disk_sb.needs_recovery()
    }

    /// What journal replay did, if it ran.
    pub fn replay_report(&self) -> Option<&ReplayReport> {
        self.replay.as_ref()
    }

    /// The group descriptors.
    pub fn groups(&self) -> &[GroupDesc] {
        &self.groups
    }

    /// The device seen through the journal overlay (blocks replayed from
    /// the journal in memory, else the device).
    pub fn device(&self) -> &Overlay<D> {
        &self.dev
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.sb.block_size()
    }

    /// Reads whole block `blk` (through the overlay).
    pub fn read_block(&self, blk: BlockIndex, what: &str) -> Result<Vec<u8>> {
        if blk.0 >= self.sb.s_blocks_count {
            return Err(Error::corrupt(
                what.to_string(),
                Corrupt::OutsideFilesystem {
                    what: "requested",
                    block: blk.0,
                    blocks_count: self.sb.s_blocks_count,
                },
            ));
        }
        let bs = self.block_size();
        let mut b = vec![0u8; usize_from(u64::from(bs))];
        // Inside the filesystem, which fits the device: no overflow.
        let offset = blk.byte_offset(bs).unwrap_or(u64::MAX);
        read_at(&self.dev, offset, &mut b)?;
        Ok(b)
    }

    /// Reads and parses inode `ino`.
    pub fn inode(&self, ino: u32) -> Result<Inode> {
        if ino == 0 || ino > self.sb.s_inodes_count {
            return Err(Error::BadInode(u64::from(ino)));
        }
        // ino >= 1 and s_inodes_per_group > 0 (superblock parse): the
        // checked ops only restate that.
        let bad = || Error::BadInode(u64::from(ino));
        let ipg = self.sb.s_inodes_per_group;
        let zero_based = ino.checked_sub(1).ok_or_else(bad)?;
        let group = usize_from(u64::from(zero_based.checked_div(ipg).ok_or_else(bad)?));
        let index = u64::from(zero_based.checked_rem(ipg).ok_or_else(bad)?);
        let desc = self
            .groups
            .get(group)
            .ok_or(Error::BadInode(u64::from(ino)))?;
        let isz = u64::from(self.sb.s_inode_size);
        let offset = desc
            .bg_inode_table
            .checked_mul(u64::from(self.block_size()))
            .and_then(|o| o.checked_add(index.checked_mul(isz)?))
            .ok_or(Error::BadInode(u64::from(ino)))?;
        let mut b = vec![0u8; usize_from(isz)];
        read_at(&self.dev, offset, &mut b)?;
        if self.sb.has_metadata_csum() {
            verify_checksum(&b, ino, self.csum_seed).at(|| format!("inode {ino}"))?;
        }
        let huge = self.sb.s_feature_ro_compat.contains(RoCompat::HUGE_FILE);
        let inode = Inode::parse(&b, huge).at(|| format!("inode {ino}"))?;
        let max = self.max_file_size(&inode);
        if inode.i_size > max {
            return Err(Error::corrupt(
                format!("inode {ino}"),
                Corrupt::FileTooLarge {
                    size: inode.i_size,
                    max,
                },
            ));
        }
        Ok(inode)
    }

    /// The largest `i_size` the inode's block map can address: 2^32 blocks
    /// with extents, 12 + p + p^2 + p^3 blocks (p pointers per block) with
    /// an indirect map.
    pub fn max_file_size(&self, inode: &Inode) -> u64 {
        let bs = u64::from(self.block_size());
        let blocks = if inode.uses_extents() {
            1u64 << 32
        } else {
            // 12 direct, then single, double and triple indirect. With
            // blocks of at most 64 KiB, p^3 <= 2^42: nothing saturates.
            let p = bs / 4;
            (1..=3).fold(12u64, |acc, level| acc.saturating_add(span(p, level)))
        };
        blocks.saturating_mul(bs)
    }

    /// A block mapper for `inode` (number `ino`).
    pub(crate) fn mapper<'a>(&'a self, ino: u32, inode: &'a Inode) -> Mapper<'a> {
        let m = Mapper::new(
            &self.dev,
            self.block_size(),
            self.sb.s_blocks_count,
            ino,
            inode,
        );
        match self.inode_csum_seed(ino, inode) {
            Some(seed) => m.with_checksums(seed),
            None => m,
        }
    }

    /// The inode's metadata_csum seed, `None` without metadata_csum.
    pub(crate) fn inode_csum_seed(&self, ino: u32, inode: &Inode) -> Option<u32> {
        self.sb
            .has_metadata_csum()
            .then(|| inode_csum_seed(self.csum_seed, ino, inode.i_generation))
    }

    /// The physical block of each block of the internal journal (the
    /// journal inode's block map), checked against the filesystem.
    pub fn journal_blocks(&self) -> Result<Vec<BlockIndex>> {
        let jino = self.sb.s_journal_inum;
        if jino == 0 {
            return Err(Error::Unsupported("external journal".into()));
        }
        let inode = self.inode(jino)?;
        let nblocks = inode.i_size / self.block_size_nz();
        if nblocks < 2 || nblocks > self.sb.s_blocks_count {
            return Err(Error::corrupt(
                format!("journal inode {jino}"),
                Corrupt::BadField {
                    field: "journal inode i_size",
                    value: inode.i_size,
                },
            ));
        }
        let mut mapper = self.mapper(jino, &inode);
        Ok(collect_blocks(&mut mapper, nblocks)?
            .into_iter()
            .map(BlockIndex)
            .collect())
    }

    /// Replays the journal in memory, reading the device underneath the
    /// overlay: the blocks it would write and what it found.
    pub fn replay_journal(&self) -> Result<(Replayed, ReplayReport)> {
        let map = self.journal_blocks()?;
        replay(&JournalDevice {
            dev: self.dev.inner(),
            block_size: self.block_size(),
            blocks_count: self.sb.s_blocks_count,
            map: &map,
        })
    }
}
