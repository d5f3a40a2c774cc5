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
        let offset = pblk * u64::from(self.block_size);
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
            let next = self.indirect_one(lblk + len)?;
            let continues = match (first, next) {
                (0, 0) => true,
                (f, n) => f != 0 && n == f + len,
            };
            if !continues {
                break;
            }
            len += 1;
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
        if idx > 0 {
            let e = leaf.extents[idx - 1];
            let start = u64::from(e.ee_block);
            let end = start + u64::from(e.len);
            if lblk < end {
                let len = (end - lblk).min(max);
                if e.unwritten {
                    return Ok(Run::Hole(len));
                }
                let pblk = e.start + (lblk - start);
                self.check_data(e.start, u64::from(e.len), lblk)?;
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
                    if i == 0 {
                        // Before the first index: a hole up to it.
                        let first = entries.first().map_or(u64::MAX, |e| u64::from(e.ei_block));
                        return Ok(Leaf {
                            extents: Vec::new(),
                            lo,
                            hi: first.min(hi),
                        });
                    }
                    lo = lo.max(u64::from(entries[i - 1].ei_block));
                    if let Some(n) = entries.get(i) {
                        hi = hi.min(u64::from(n.ei_block));
                    }
                    let b = self.read_block(entries[i - 1].leaf, "extent tree")?;
                    if let Some(seed) = self.csum_seed {
                        verify_extent_tail(&b, seed).at(|| {
                            format!("inode {} extent block {}", self.ino, entries[i - 1].leaf)
                        })?;
                    }
                    let child = ExtentNode::parse(&b).at(|| {
                        format!("inode {} extent block {}", self.ino, entries[i - 1].leaf)
                    })?;
                    if child.depth() + 1 != depth {
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
    let at = 12 + 12 * max;
    if at + 4 > b.len() {
        return Err(Corrupt::TooShort {
            structure: "extent block with checksum tail",
            len: b.len(),
            want: at + 4,
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
    while l < count {
        let run = m.run(l, count - l)?;
        match run {
            Run::Hole(n) => out.extend(std::iter::repeat_n(0u64, super::bytes::usize_from(n))),
            Run::Data { pblk, len } => out.extend(pblk..pblk + len),
        }
        l += run.len();
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
}
