//! Reading file contents and symlink targets by inode number. Holes and
//! unwritten extents read as zeros; contiguous runs are read with one
//! device read straight into the caller's buffer.

use super::bytes::{u64_from, usize_from};
use super::error::{Corrupt, Error, Result};
use super::fs::Ext3;
use super::inode::{FileType, Inode};
use super::map::Run;
use crate::block::BlockDevice;

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
        let n = usize_from((size - offset).min(u64_from(buf.len())));
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
        let bs = u64::from(self.block_size());
        let mut mapper = self.mapper(ino, inode);
        let mut done = 0usize;
        while done < n {
            let pos = offset + u64_from(done);
            let lblk = pos / bs;
            let within = pos % bs;
            let left = u64_from(n - done);
            let want = (within + left).div_ceil(bs);
            let run = mapper.run(lblk, want)?;
            let bytes = usize_from((run.len().saturating_mul(bs) - within).min(left));
            let dst = &mut buf[done..done + bytes];
            match run {
                Run::Hole(_) => dst.fill(0),
                Run::Data { pblk, .. } => {
                    let at = pblk * bs + within;
                    self.dev
                        .read_exact_at(at, dst)
                        .map_err(|source| Error::Io {
                            offset: at,
                            len: bytes,
                            source,
                        })?;
                }
            }
            done += bytes;
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
        let bs = u64::from(self.block_size());
        let chunk_blocks = (u64_from(buf.len()) / bs).max(1);
        if u64_from(buf.len()) < bs {
            return Err(Error::Io {
                offset: 0,
                len: buf.len(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "for_each_data: buffer smaller than a block",
                ),
            });
        }
        let nblocks = size.div_ceil(bs);
        let mut mapper = self.mapper(ino, inode);
        let mut lblk = 0u64;
        while lblk < nblocks {
            let run = mapper.run(lblk, (nblocks - lblk).min(chunk_blocks))?;
            for pblk in mapper.take_map_blocks() {
                claim(BlockClaim::Map { pblk })?;
            }
            if let Run::Data { pblk, len } = run {
                claim(BlockClaim::Data { pblk, len, lblk })?;
                let start = lblk * bs;
                let bytes = usize_from((len * bs).min(size - start));
                let at = pblk * bs;
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
            lblk += run.len();
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
        while lblk < nblocks {
            let run = mapper.run(lblk, nblocks - lblk)?;
            out.push((lblk, run));
            lblk += run.len();
        }
        Ok(out)
    }
}
