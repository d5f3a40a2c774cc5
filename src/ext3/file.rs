//! Reading file contents and symlink targets by inode number. Holes and
//! unwritten extents read as zeros; contiguous runs are read with one
//! device read straight into the caller's buffer.

use super::bytes::{u64_from, usize_from};
use super::error::{Corrupt, Error, Result};
use super::fs::Ext3;
use super::inode::{FileType, Inode};
use super::map::Run;
use super::types::BlockIndex;
use crate::block::BlockDevice;
use std::num::NonZeroU64;

/// A file offset past what u64 holds: only an `i_size` beyond the map's
/// reach gets here, which the inode check rejects first.
fn file_too_large(ino: u32, inode: &Inode) -> Error {
    Error::corrupt(
        format!("inode {ino}"),
        Corrupt::FileTooLarge {
            size: inode.i_size,
            max: u64::MAX,
        },
    )
}

/// Logical block `lblk` maps to a block whose byte offset overflows.
fn data_outside(ino: u32, lblk: u64, pblk: u64) -> Error {
    Error::corrupt(
        format!("inode {ino}"),
        Corrupt::DataOutside { lblk, block: pblk },
    )
}

/// A device block a file's contents are read from or through, as
/// [`Ext3::for_each_data_claiming`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockClaim {
    /// A block of the file's map: an indirect block or extent tree block.
    Map {
        /// The block.
        pblk: u64,
    },
    /// `len` data blocks from `pblk`, holding logical blocks from `lblk`.
    Data {
        /// First physical block.
        pblk: u64,
        /// Number of blocks.
        len: u64,
        /// First logical block.
        lblk: u64,
    },
}

impl<D: BlockDevice> Ext3<D> {
    /// Reads up to `buf.len()` bytes of inode `ino` from byte `offset`;
    /// returns how many were read (0 at or past the end of the file).
    pub fn read(&self, ino: u32, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let inode = self.inode(ino)?;
        if inode.file_type() == Some(FileType::Directory) {
            return Err(Error::IsADirectory(format!("inode {ino}")));
        }
        self.read_inode_data(ino, &inode, offset, buf)
    }

    /// Reads the data of an already parsed inode (any type).
    pub fn read_inode_data(
        &self,
        ino: u32,
        inode: &Inode,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize> {
        let size = inode.i_size;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        // offset < size: the subtraction cannot saturate.
        let n = usize_from(size.saturating_sub(offset).min(u64_from(buf.len())));
        let buf = &mut buf[..n];
        if inode.has_inline_data() || inode.is_fast_symlink(self.block_size()) {
            let data = self.inline_bytes(ino, inode)?;
            let start = usize_from(offset);
            for (i, b) in buf.iter_mut().enumerate() {
                *b = start
                    .checked_add(i)
                    .and_then(|p| data.get(p))
                    .copied()
                    .unwrap_or(0);
            }
            return Ok(n);
        }
        let bs = self.block_size_nz();
        let mut mapper = self.mapper(ino, inode);
        let mut done = 0usize;
        // `rest` is the part of the buffer still to fill.
        while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
            // Below i_size, which the inode check bounds to the largest
            // file the map can address (< 2^64).
            let pos = offset
                .checked_add(u64_from(done))
                .ok_or_else(|| file_too_large(ino, inode))?;
            let (lblk, within) = (pos / bs, pos % bs);
            let left = u64_from(rest.len());
            let want = within
                .checked_add(left)
                .ok_or_else(|| file_too_large(ino, inode))?
                .div_ceil(bs.get());
            let run = mapper.run(lblk, want)?;
            // A run is at least one block and within < bs, so at least one
            // byte is taken; a huge hole saturates, then `left` bounds it.
            let bytes = usize_from(
                run.len()
                    .saturating_mul(bs.get())
                    .saturating_sub(within)
                    .min(left),
            );
            let dst = &mut rest[..bytes];
            match run {
                Run::Hole(_) => dst.fill(0),
                Run::Data { pblk, .. } => {
                    let at = BlockIndex(pblk)
                        .byte_offset(self.block_size())
                        .and_then(|o| o.checked_add(within))
                        .ok_or_else(|| data_outside(ino, lblk, pblk))?;
                    self.dev
                        .read_exact_at(at, dst)
                        .map_err(|source| Error::Io {
                            offset: at,
                            len: bytes,
                            source,
                        })?;
                }
            }
            // bytes <= rest.len(): done stays <= n.
            done = done.saturating_add(bytes);
        }
        Ok(n)
    }

    /// The bytes of an inode stored inside it: a fast symlink's target, or
    /// inline data (`i_block` followed by the `system.data` attribute).
    fn inline_bytes(&self, ino: u32, inode: &Inode) -> Result<Vec<u8>> {
        let mut data = inode.i_block.to_vec();
        if inode.has_inline_data() {
            if let Some(more) = self
                .xattrs_of(ino, inode)?
                .into_iter()
                .find(|x| x.name == b"system.data")
            {
                data.extend_from_slice(&more.value);
            }
        }
        data.truncate(usize_from(inode.i_size));
        Ok(data)
    }

    /// The target of symbolic link `ino`.
    pub fn readlink(&self, ino: u32) -> Result<Vec<u8>> {
        let inode = self.inode(ino)?;
        if inode.file_type() != Some(FileType::Symlink) {
            return Err(Error::NotASymlink(format!("inode {ino}")));
        }
        // PATH_MAX bounds a target; a larger size is corrupt.
        if inode.i_size > 4096 {
            return Err(Error::corrupt(
                format!("inode {ino}"),
                Corrupt::BadField {
                    field: "symlink i_size",
                    value: inode.i_size,
                },
            ));
        }
        let mut buf = vec![0u8; usize_from(inode.i_size)];
        let n = self.read_inode_data(ino, &inode, 0, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Calls `f(offset, bytes)` for the data of a parsed inode in order,
    /// in pieces of at most `buf.len()` bytes (rounded down to whole
    /// blocks), skipping holes and unwritten extents; the caller makes the
    /// file `i_size` long. Inline data and fast symlinks come as one piece.
    pub fn for_each_data(
        &self,
        ino: u32,
        inode: &Inode,
        buf: &mut [u8],
        f: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.for_each_data_claiming(ino, inode, buf, |_| Ok(()), f)
    }

    /// [`Self::for_each_data`], telling `claim` first of every device block
    /// the data comes from and of every block of the file's map (indirect
    /// and extent tree blocks, each as often as it is read), before any
    /// data read from them is handed to `f`. A caller that records the
    /// claims notices blocks used twice (cross-linked, in a corrupt image)
    /// before it writes the same bytes out again and again.
    pub fn for_each_data_claiming(
        &self,
        ino: u32,
        inode: &Inode,
        buf: &mut [u8],
        mut claim: impl FnMut(BlockClaim) -> Result<()>,
        mut f: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let size = inode.i_size;
        if size == 0 {
            return Ok(());
        }
        if inode.has_inline_data() || inode.is_fast_symlink(self.block_size()) {
            let data = self.inline_bytes(ino, inode)?;
            return f(0, &data);
        }
        let bs = self.block_size_nz();
        let chunk_blocks = (u64_from(buf.len()) / bs).max(1);
        if u64_from(buf.len()) < bs.get() {
            return Err(Error::Io {
                offset: 0,
                len: buf.len(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "for_each_data: buffer smaller than a block",
                ),
            });
        }
        let nblocks = size.div_ceil(bs.get());
        let mut mapper = self.mapper(ino, inode);
        let mut lblk = 0u64;
        while let Some(blocks_left) = nblocks.checked_sub(lblk).filter(|&n| n > 0) {
            let run = mapper.run(lblk, blocks_left.min(chunk_blocks))?;
            for pblk in mapper.take_map_blocks() {
                claim(BlockClaim::Map { pblk })?;
            }
            if let Run::Data { pblk, len } = run {
                claim(BlockClaim::Data { pblk, len, lblk })?;
                // lblk < nblocks, so start < size; len <= chunk_blocks, so
                // len * bs <= buf.len() and does not saturate.
                let start = lblk
                    .checked_mul(bs.get())
                    .ok_or_else(|| file_too_large(ino, inode))?;
                let bytes =
                    usize_from(len.saturating_mul(bs.get()).min(size.saturating_sub(start)));
                let at = BlockIndex(pblk)
                    .byte_offset(self.block_size())
                    .ok_or_else(|| data_outside(ino, lblk, pblk))?;
                let dst = &mut buf[..bytes];
                self.dev
                    .read_exact_at(at, dst)
                    .map_err(|source| Error::Io {
                        offset: at,
                        len: bytes,
                        source,
                    })?;
                f(start, dst)?;
            }
            // Runs are at least one block: the loop ends.
            lblk = lblk.saturating_add(run.len());
        }
        Ok(())
    }

    /// The block runs of a parsed inode's data as `(first logical block,
    /// run)`, holes included; empty for inline data and fast symlinks.
    pub fn data_runs(&self, ino: u32, inode: &Inode) -> Result<Vec<(u64, Run)>> {
        if inode.has_inline_data() || inode.is_fast_symlink(self.block_size()) {
            return Ok(Vec::new());
        }
        let nblocks = inode.i_size.div_ceil(u64::from(self.block_size()));
        let mut mapper = self.mapper(ino, inode);
        let mut out = Vec::new();
        let mut lblk = 0u64;
        while let Some(blocks_left) = nblocks.checked_sub(lblk).filter(|&n| n > 0) {
            let run = mapper.run(lblk, blocks_left)?;
            out.push((lblk, run));
            // Runs are at least one block: the loop ends.
            lblk = lblk.saturating_add(run.len());
        }
        Ok(out)
    }

    /// The block size as a divisor: never zero, as the superblock parse
    /// bounds it to 1 KiB..64 KiB.
    pub(crate) fn block_size_nz(&self) -> NonZeroU64 {
        NonZeroU64::new(u64::from(self.block_size())).unwrap_or(NonZeroU64::MIN)
    }
}
