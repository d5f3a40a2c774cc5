//! Maps a file's logical blocks to runs on the device, for both block-map
//! flavours (indirect maps and extent trees). A [`Mapper`] lives for one
//! read and caches the indirect blocks or the extent leaf it last used, so
//! a sequential read costs one device read per indirect block, not one per
//! data block. Every walk is bounded: indirect maps have three levels,
//! extent trees at most five, and a pointer back to an ancestor is reported
//! as a loop.

use super::block_map::{map_path, parse_indirect};
use super::error::{At, Corrupt, Error, Result};
use super::extent::{Extent, ExtentNode};
use super::inode::Inode;
use super::journal::crc::crc32c;
use super::types::BlockIndex;
use crate::block::BlockDevice;

/// What a range of logical blocks maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// `len` blocks that read as zeros (not allocated, or unwritten).
    Hole(u64),
    /// `len` blocks stored contiguously from physical block `pblk`.
    Data {
        /// First physical block.
        pblk: u64,
        /// Number of blocks.
        len: u64,
    },
}

impl Run {
    /// Number of blocks in the run.
    pub fn len(&self) -> u64 {
        match *self {
            Run::Hole(n) => n,
            Run::Data { len, .. } => len,
        }
    }

    /// True for an empty run.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A cached extent leaf and the logical range it is responsible for.
struct Leaf {
    extents: Vec<Extent>,
    lo: u64,
    hi: u64,
}

/// Maps logical blocks of one inode.
pub struct Mapper<'a> {
    dev: &'a dyn BlockDevice,
    block_size: u32,
    blocks_count: u64,
    ino: u32,
    inode: &'a Inode,
    ind: [Option<(u64, Vec<u32>)>; 3],
    leaf: Option<Leaf>,
    csum_seed: Option<u32>,
    map_blocks: Vec<u64>,
}

impl<'a> Mapper<'a> {
    /// A mapper for inode `ino` (`inode` is its parsed record).
    pub fn new(
        dev: &'a dyn BlockDevice,
        block_size: u32,
        blocks_count: u64,
        ino: u32,
        inode: &'a Inode,
    ) -> Self {
        Mapper {
            dev,
            block_size,
            blocks_count,
            ino,
            inode,
            ind: [None, None, None],
            leaf: None,
            csum_seed: None,
            map_blocks: Vec::new(),
        }
    }

    /// The map blocks (indirect blocks, extent tree blocks) read from the
    /// device since the last call, in the order read; a block read again
    /// (an extent index walked down once per leaf) appears again.
    pub fn take_map_blocks(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.map_blocks)
    }

    /// Verifies the checksum tail of every extent block read, with the
    /// inode's metadata_csum seed (see [`inode_csum_seed`]).
    pub fn with_checksums(mut self, inode_seed: u32) -> Self {
        self.csum_seed = Some(inode_seed);
        self
    }

    fn read_block(&mut self, pblk: u64, what: &'static str) -> Result<Vec<u8>> {
        if pblk >= self.blocks_count {
            return Err(Error::corrupt(
                format!("inode {}", self.ino),
                Corrupt::OutsideFilesystem {
                    what,
                    block: pblk,
                    blocks_count: self.blocks_count,
                },
            ));
        }
        let mut b = vec![0u8; super::bytes::usize_from(u64::from(self.block_size))];
        let offset = BlockIndex(pblk)
            .byte_offset(self.block_size)
            .ok_or_else(|| {
                Error::corrupt(
                    format!("inode {}", self.ino),
                    Corrupt::OutsideFilesystem {
                        what,
                        block: pblk,
                        blocks_count: self.blocks_count,
                    },
                )
            })?;
        self.dev
            .read_exact_at(offset, &mut b)
            .map_err(|source| Error::Io {
                offset,
                len: b.len(),
                source,
            })?;
        self.map_blocks.push(pblk);
        Ok(b)
    }

    fn check_data(&self, pblk: u64, len: u64, lblk: u64) -> Result<()> {
        if pblk
            .checked_add(len)
            .is_none_or(|end| end > self.blocks_count)
        {
            return Err(Error::corrupt(
                format!("inode {}", self.ino),
                Corrupt::DataOutside { lblk, block: pblk },
            ));
        }
        Ok(())
    }

    /// The run starting at logical block `lblk`, at most `max` blocks long.
    pub fn run(&mut self, lblk: u64, max: u64) -> Result<Run> {
        let max = max.max(1);
        if self.inode.uses_extents() {
            self.extent_run(lblk, max)
        } else {
            self.indirect_run(lblk, max)
        }
    }

    fn indirect_run(&mut self, lblk: u64, max: u64) -> Result<Run> {
        let first = self.indirect_one(lblk)?;
        let mut len = 1u64;
        while len < max {
            // Past the last logical block (u64) the run simply ends.
            let Some(at) = lblk.checked_add(len) else {
                break;
            };
            let next = self.indirect_one(at)?;
            let continues = match (first, next) {
                (0, 0) => true,
                (f, n) => f != 0 && f.checked_add(len) == Some(n),
            };
            if !continues {
                break;
            }
            // `len < max`, so this cannot saturate.
            len = len.saturating_add(1);
        }
        if first == 0 {
            Ok(Run::Hole(len))
        } else {
            self.check_data(first, len, lblk)?;
            Ok(Run::Data { pblk: first, len })
        }
    }

    /// The physical block of `lblk` in an indirect map, 0 for a hole.
    fn indirect_one(&mut self, lblk: u64) -> Result<u64> {
        let per = u64::from(self.block_size / 4);
        let Some(path) = map_path(lblk, per) else {
            return Ok(0);
        };
        let mut ptr = u64::from(self.inode.block_pointers()[path.slot]);
        let mut ancestors = [0u64; 3];
        for level in 0..path.depth {
            if ptr == 0 {
                return Ok(0);
            }
            if ancestors[..level].contains(&ptr) {
                return Err(Error::corrupt(
                    format!("inode {}", self.ino),
                    Corrupt::BlockMapLoop(ptr),
                ));
            }
            ancestors[level] = ptr;
            let cached = matches!(&self.ind[level], Some((p, _)) if *p == ptr);
            if !cached {
                let b = self.read_block(ptr, "indirect")?;
                self.ind[level] = Some((ptr, parse_indirect(&b)));
            }
            let table = self.ind[level].as_ref().map(|(_, t)| t);
            ptr = table
                .and_then(|t| t.get(path.indices[level]))
                .map_or(0, |&p| u64::from(p));
        }
        Ok(ptr)
    }

    fn extent_run(&mut self, lblk: u64, max: u64) -> Result<Run> {
        if !self
            .leaf
            .as_ref()
            .is_some_and(|l| l.lo <= lblk && lblk < l.hi)
        {
            self.leaf = Some(self.find_leaf(lblk)?);
        }
        let Some(leaf) = self.leaf.as_ref() else {
            return Ok(Run::Hole(max));
        };
        let idx = leaf
            .extents
            .partition_point(|e| u64::from(e.ee_block) <= lblk);
        // The extent starting at or before `lblk`, if any.
        if let Some(&e) = idx.checked_sub(1).and_then(|i| leaf.extents.get(i)) {
            // `ee_block <= lblk` by the partition; blocks left in it:
            let into = lblk.saturating_sub(u64::from(e.ee_block));
            if let Some(left) = e.end_block().checked_sub(lblk).filter(|&n| n > 0) {
                let len = left.min(max);
                if e.unwritten {
                    return Ok(Run::Hole(len));
                }
                self.check_data(e.start, u64::from(e.len), lblk)?;
                // check_data: e.start + e.len fits below s_blocks_count.
                let pblk = e.start.checked_add(into).ok_or_else(|| {
                    Error::corrupt(
                        format!("inode {}", self.ino),
                        Corrupt::DataOutside {
                            lblk,
                            block: e.start,
                        },
                    )
                })?;
                return Ok(Run::Data { pblk, len });
            }
        }
        let next = leaf
            .extents
            .get(idx)
            .map_or(leaf.hi, |e| u64::from(e.ee_block));
        Ok(Run::Hole(
            next.min(leaf.hi).saturating_sub(lblk).clamp(1, max),
        ))
    }

    fn find_leaf(&mut self, lblk: u64) -> Result<Leaf> {
        let ino = self.ino;
        let place = || format!("inode {ino}");
        let mut node = ExtentNode::parse(&self.inode.i_block).at(place)?;
        let (mut lo, mut hi) = (0u64, u64::MAX);
        // Each step goes one level down; depth is at most 5.
        loop {
            match node {
                ExtentNode::Leaf(extents) => return Ok(Leaf { extents, lo, hi }),
                ExtentNode::Index { depth, entries } => {
                    let i = entries.partition_point(|e| u64::from(e.ei_block) <= lblk);
                    let Some(&parent) = i.checked_sub(1).and_then(|p| entries.get(p)) else {
                        // Before the first index: a hole up to it.
                        let first = entries.first().map_or(u64::MAX, |e| u64::from(e.ei_block));
                        return Ok(Leaf {
                            extents: Vec::new(),
                            lo,
                            hi: first.min(hi),
                        });
                    };
                    lo = lo.max(u64::from(parent.ei_block));
                    if let Some(n) = entries.get(i) {
                        hi = hi.min(u64::from(n.ei_block));
                    }
                    let b = self.read_block(parent.leaf, "extent tree")?;
                    if let Some(seed) = self.csum_seed {
                        verify_extent_tail(&b, seed)
                            .at(|| format!("inode {} extent block {}", self.ino, parent.leaf))?;
                    }
                    let child = ExtentNode::parse(&b)
                        .at(|| format!("inode {} extent block {}", self.ino, parent.leaf))?;
                    if child.depth().checked_add(1) != Some(depth) {
                        return Err(Error::corrupt(
                            place(),
                            Corrupt::ExtentDepth {
                                depth: child.depth(),
                                want: depth.saturating_sub(1),
                            },
                        ));
                    }
                    node = child;
                }
            }
        }
    }
}

/// The per-inode metadata_csum seed: the filesystem seed continued over
/// the inode number and generation (`ei->i_csum_seed`).
pub fn inode_csum_seed(fs_seed: u32, ino: u32, generation: u32) -> u32 {
    crc32c(
        crc32c(fs_seed, &ino.to_le_bytes()),
        &generation.to_le_bytes(),
    )
}

/// Checks the `ext4_extent_tail` after `eh_max` entries of an extent block.
fn verify_extent_tail(b: &[u8], inode_seed: u32) -> Result<(), Corrupt> {
    let max = usize::from(super::bytes::le16(b, 4));
    // eh_max <= 65535, so these cannot overflow; checked all the same.
    let at = max.checked_mul(12).and_then(|n| n.checked_add(12));
    let Some((at, end)) = at.and_then(|at| Some((at, at.checked_add(4)?))) else {
        return Err(Corrupt::BadField {
            field: "extent header eh_max",
            value: u64::from(super::bytes::le16(b, 4)),
        });
    };
    if end > b.len() {
        return Err(Corrupt::TooShort {
            structure: "extent block with checksum tail",
            len: b.len(),
            want: end,
        });
    }
    let want = crc32c(inode_seed, &b[..at]);
    let stored = super::bytes::le32(b, at);
    if want != stored {
        return Err(Corrupt::Checksum {
            structure: "extent block",
            stored,
            computed: want,
        });
    }
    Ok(())
}

/// Number of blocks of `block_size` needed for `size` bytes.
pub fn blocks_for(size: u64, block_size: u32) -> u64 {
    size.div_ceil(u64::from(block_size))
}

/// All physical blocks of logical blocks `0..count` (holes as 0), for small
/// metadata files such as the journal. `count` must already be bounded.
pub fn collect_blocks(m: &mut Mapper<'_>, count: u64) -> Result<Vec<u64>> {
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 22));
    let mut l = 0u64;
    while let Some(left) = count.checked_sub(l).filter(|&n| n > 0) {
        let run = m.run(l, left)?;
        match run {
            Run::Hole(n) => out.extend(std::iter::repeat_n(0u64, super::bytes::usize_from(n))),
            // The mapper checked `pblk + len <= s_blocks_count`, so the
            // sum does not saturate.
            Run::Data { pblk, len } => out.extend(pblk..pblk.saturating_add(len)),
        }
        // Every run is at least one block long, so the loop ends.
        l = l.saturating_add(run.len());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::MemDevice;
    use crate::ext3::extent::tests::leaf;

    fn inode_with(i_block: [u8; 60], flags: u32) -> Inode {
        Inode {
            i_mode: 0o100644,
            i_uid: 0,
            i_gid: 0,
            i_size: 0,
            i_atime: Default::default(),
            i_ctime: Default::default(),
            i_mtime: Default::default(),
            i_crtime: None,
            i_dtime: 0,
            i_links_count: 1,
            i_blocks: 0,
            i_flags: flags,
            i_block,
            i_generation: 0,
            i_file_acl: 0,
            i_extra_isize: 0,
            inline_xattrs: Vec::new(),
        }
    }

    #[test]
    fn indirect_runs_coalesce_contiguous_blocks_and_holes() {
        let dev = MemDevice::zeroed(64 * 1024);
        let mut ib = [0u8; 60];
        for (i, p) in [10u32, 11, 12, 0, 0, 20].iter().enumerate() {
            ib[i * 4..i * 4 + 4].copy_from_slice(&p.to_le_bytes());
        }
        let ino = inode_with(ib, 0);
        let mut m = Mapper::new(&dev, 1024, 64, 12, &ino);
        assert_eq!(m.run(0, 100).unwrap(), Run::Data { pblk: 10, len: 3 });
        assert_eq!(m.run(3, 100).unwrap(), Run::Hole(2));
        assert_eq!(m.run(5, 1).unwrap(), Run::Data { pblk: 20, len: 1 });
    }

    #[test]
    fn an_indirect_block_pointing_at_itself_is_a_loop() {
        let dev = MemDevice::zeroed(64 * 1024);
        // Double-indirect block 30 whose first entry is 30 again.
        dev.write_all_at(30 * 1024, &30u32.to_le_bytes()).unwrap();
        let mut ib = [0u8; 60];
        ib[13 * 4..14 * 4].copy_from_slice(&30u32.to_le_bytes());
        let ino = inode_with(ib, 0);
        let mut m = Mapper::new(&dev, 1024, 64, 12, &ino);
        let err = m.run(12 + 256, 1).unwrap_err();
        assert!(err.to_string().contains("loops"), "{err}");
    }

    #[test]
    fn extent_runs_report_holes_between_extents_and_out_of_range_blocks() {
        let dev = MemDevice::zeroed(64 * 1024);
        let root: [u8; 60] = leaf(&[(0, 2, 40), (5, 3, 50)], 60).try_into().unwrap();
        let ino = inode_with(root, crate::ext3::inode::EXT4_EXTENTS_FL);
        let mut m = Mapper::new(&dev, 1024, 64, 12, &ino);
        assert_eq!(m.run(0, 10).unwrap(), Run::Data { pblk: 40, len: 2 });
        assert_eq!(m.run(2, 10).unwrap(), Run::Hole(3));
        assert_eq!(m.run(6, 10).unwrap(), Run::Data { pblk: 51, len: 2 });
        assert_eq!(m.run(8, 10).unwrap(), Run::Hole(10));
        let root: [u8; 60] = leaf(&[(0, 2, 63)], 60).try_into().unwrap();
        let ino = inode_with(root, crate::ext3::inode::EXT4_EXTENTS_FL);
        let mut m = Mapper::new(&dev, 1024, 64, 12, &ino);
        assert!(m.run(0, 1).unwrap_err().is_corrupt());
    }

    #[test]
    fn an_extent_whose_physical_end_passes_the_filesystem_is_a_clear_error() {
        let dev = MemDevice::zeroed(64 * 1024);
        // 48-bit start at the top of the range, 32768 blocks long.
        let root: [u8; 60] = leaf(&[(0, 32768, (1 << 48) - 1)], 60).try_into().unwrap();
        let ino = inode_with(root, crate::ext3::inode::EXT4_EXTENTS_FL);
        let mut m = Mapper::new(&dev, 1024, 64, 12, &ino);
        let err = m.run(1, u64::MAX).unwrap_err();
        assert_eq!(
            err.to_string(),
            "corrupt filesystem: inode 12: logical block 1 maps to block 281474976710655, outside the filesystem"
        );
    }

    #[test]
    fn runs_at_the_last_logical_blocks_do_not_overflow() {
        let dev = MemDevice::zeroed(64 * 1024);
        let root: [u8; 60] = leaf(&[(0xFFFF_FFF0, 16, 40)], 60).try_into().unwrap();
        let ino = inode_with(root, crate::ext3::inode::EXT4_EXTENTS_FL);
        let mut m = Mapper::new(&dev, 1024, 64, 12, &ino);
        assert_eq!(
            m.run(0xFFFF_FFF8, u64::MAX).unwrap(),
            Run::Data { pblk: 48, len: 8 }
        );
        // The last block there is: a one-block hole, no wrap to block 0.
        assert_eq!(m.run(u64::MAX, u64::MAX).unwrap(), Run::Hole(1));
        // An indirect map past the triple-indirect range is a hole, and a
        // run there stops at the last u64 block instead of wrapping.
        let ino = inode_with([0u8; 60], 0);
        let mut m = Mapper::new(&dev, 1024, 64, 12, &ino);
        assert_eq!(m.run(u64::MAX, 10).unwrap(), Run::Hole(1));
        assert_eq!(m.run(u64::MAX - 2, 10).unwrap(), Run::Hole(3));
    }

    #[test]
    fn an_extent_block_whose_eh_max_leaves_no_room_for_the_tail_is_rejected() {
        let mut b = leaf(&[(0, 1, 1)], 1024);
        b[4..6].copy_from_slice(&84u16.to_le_bytes()); // 12 + 84 * 12 = 1020
        assert!(matches!(
            verify_extent_tail(&b, 0),
            Err(Corrupt::Checksum { .. })
        ));
        b[4..6].copy_from_slice(&85u16.to_le_bytes()); // 12 + 85 * 12 + 4 > 1024
        assert!(matches!(
            verify_extent_tail(&b, 0),
            Err(Corrupt::TooShort { want: 1036, .. })
        ));
    }
}
