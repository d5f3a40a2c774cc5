//! Directory operations by inode number: `readdir` with resumable cookies
//! and `lookup`. A reader can stop anywhere and resume later from the
//! cookie of the last entry it took, as FUSE's `readdir(offset)` does (0
//! starts from the beginning).
//!
//! Directories Linux lists in hash order (on dir_index filesystems,
//! indexed directories, one-block ones and inline-data ones) are listed
//! in hash order with hash positions as cookies ([`super::dx_readdir`]):
//! an entry keeps its position when the writer splits a leaf, so a
//! listing that goes on while the directory changes returns no entry
//! twice. Other directories are read block by block in logical order, a
//! cookie being the byte position of the next entry (for an inline-data
//! directory, the number of entries before it).

use super::bytes::{le32, u64_from, usize_from};
use super::dir::{parse_block, verify_tail, DirEntry};
use super::dx_readdir::Order;
use super::error::{At, Corrupt, Error, Result};
use super::fs::Ext3;
use super::inode::{FileType, Inode};
use super::map::Run;
use super::types::BlockIndex;
use crate::block::BlockDevice;

/// A directory entry as callers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The inode the name refers to.
    pub ino: u32,
    /// The name.
    pub name: Vec<u8>,
    /// The type from the entry (filetype feature), if recorded.
    pub file_type: Option<FileType>,
}

impl From<DirEntry> for Entry {
    fn from(d: DirEntry) -> Entry {
        Entry {
            ino: d.inode,
            name: d.name,
            file_type: super::inode::file_type_from_dirent(d.file_type),
        }
    }
}

/// Cookie flag for entries of inline-data directories (the low bits count
/// entries instead of bytes).
const INLINE_COOKIE: u64 = 1 << 62;

impl<D: BlockDevice> Ext3<D> {
    fn dir_inode(&self, ino: u32) -> Result<Inode> {
        let inode = self.inode(ino)?;
        if inode.file_type() != Some(FileType::Directory) {
            return Err(Error::NotADirectory(format!("inode {ino}")));
        }
        Ok(inode)
    }

    /// Calls `f(entry, next_cookie)` for the entries of directory `ino` from
    /// `cookie` on (including `.` and `..`), until `f` returns false or the
    /// directory ends: in hash order where Linux lists in hash order, else
    /// in block order (see the module documentation). `f` returning false
    /// means it did not take the entry: resume from the cookie before it.
    pub fn readdir_with(
        &self,
        ino: u32,
        cookie: u64,
        f: impl FnMut(Entry, u64) -> bool,
    ) -> Result<()> {
        let inode = self.dir_inode(ino)?;
        self.check_dir_size(ino, &inode)?;
        match self.listing_order(ino, &inode)? {
            Order::Blocks => self.readdir_blocks(ino, &inode, cookie, f),
            Order::Hashed { hash_version } => {
                self.readdir_hashed(ino, &inode, hash_version, cookie, f)
            }
            Order::Indexed { root, info } => {
                self.readdir_indexed(ino, &inode, root, info, cookie, f)
            }
        }
    }

    /// [`Ext3::readdir_with`] in block order for every directory, with
    /// byte positions as cookies (the writer finds an entry's block from
    /// them).
    pub fn readdir_blocks_with(
        &self,
        ino: u32,
        cookie: u64,
        f: impl FnMut(Entry, u64) -> bool,
    ) -> Result<()> {
        let inode = self.dir_inode(ino)?;
        self.check_dir_size(ino, &inode)?;
        self.readdir_blocks(ino, &inode, cookie, f)
    }

    /// A directory larger than the filesystem is corrupt (this keeps byte
    /// cookies and block counts far from overflowing).
    fn check_dir_size(&self, ino: u32, inode: &Inode) -> Result<()> {
        let bs = u64::from(self.block_size());
        let size = inode.i_size;
        if size > self.sb.s_blocks_count.saturating_mul(bs) {
            return Err(Error::corrupt(
                format!("inode {ino}"),
                Corrupt::BadField {
                    field: "directory i_size",
                    value: size,
                },
            ));
        }
        Ok(())
    }

    fn readdir_blocks(
        &self,
        ino: u32,
        inode: &Inode,
        cookie: u64,
        mut f: impl FnMut(Entry, u64) -> bool,
    ) -> Result<()> {
        if inode.has_inline_data() {
            return self.readdir_inline(ino, inode, cookie, f);
        }
        let bs = u64::from(self.block_size());
        let size = inode.i_size;
        let bsz = self.block_size_nz();
        let nblocks = size / bsz;
        // Cookies are byte offsets in the directory; the size check above
        // keeps them (and `base` below) far from overflowing.
        let too_big = || {
            Error::corrupt(
                format!("inode {ino}"),
                Corrupt::BadField {
                    field: "directory i_size",
                    value: size,
                },
            )
        };
        let filetype = self.sb.has_filetype();
        let mut mapper = self.mapper(ino, inode);
        let csum_seed = self.inode_csum_seed(ino, inode);
        let mut block = vec![0u8; usize_from(bs)];
        let mut lblk = cookie / bsz;
        // One iteration per directory block: bounded by the size checked above.
        while lblk < nblocks {
            let run = mapper.run(lblk, 1)?;
            let Run::Data { pblk, .. } = run else {
                // Linux skips holes in directories (and complains).
                // lblk < nblocks: cannot saturate.
                lblk = lblk.saturating_add(1);
                continue;
            };
            let at = BlockIndex(pblk)
                .byte_offset(self.block_size())
                .ok_or_else(|| {
                    Error::corrupt(
                        format!("inode {ino}"),
                        Corrupt::DataOutside { lblk, block: pblk },
                    )
                })?;
            self.dev
                .read_exact_at(at, &mut block)
                .map_err(|source| Error::Io {
                    offset: at,
                    len: block.len(),
                    source,
                })?;
            if let Some(seed) = csum_seed {
                verify_tail(&block, seed)
                    .at(|| format!("directory inode {ino} block {lblk} (device block {pblk})"))?;
            }
            let entries = parse_block(&block, filetype)
                .at(|| format!("directory inode {ino} block {lblk} (device block {pblk})"))?;
            let base = lblk.checked_mul(bs).ok_or_else(too_big)?;
            let cookie_of = |off: usize| base.checked_add(u64_from(off)).ok_or_else(too_big);
            for d in entries {
                if cookie_of(d.offset)? < cookie {
                    continue;
                }
                let next = cookie_of(d.next)?;
                if !f(d.into(), next) {
                    return Ok(());
                }
            }
            lblk = lblk.saturating_add(1);
        }
        Ok(())
    }

    /// Lists an inline-data directory by position (no dir_index, or a
    /// hash this code cannot compute): cookies count entries.
    fn readdir_inline(
        &self,
        ino: u32,
        inode: &Inode,
        cookie: u64,
        mut f: impl FnMut(Entry, u64) -> bool,
    ) -> Result<()> {
        let skip = usize_from(cookie & !INLINE_COOKIE);
        for (i, e) in self
            .inline_entries(ino, inode)?
            .into_iter()
            .enumerate()
            .skip(skip)
        {
            // i indexes a vector in memory: i + 1 cannot saturate.
            if !f(e, INLINE_COOKIE | u64_from(i).saturating_add(1)) {
                break;
            }
        }
        Ok(())
    }

    /// The entries of an inline-data directory in the order Linux reads
    /// them: `.` and `..` (made up, as the inode stores only the parent),
    /// then those in `i_block`, then those in the `system.data` attribute.
    pub(crate) fn inline_entries(&self, ino: u32, inode: &Inode) -> Result<Vec<Entry>> {
        let place = || format!("inline directory inode {ino}");
        let parent = le32(&inode.i_block, 0);
        let mut all = vec![
            Entry {
                ino,
                name: b".".to_vec(),
                file_type: Some(FileType::Directory),
            },
            Entry {
                ino: parent,
                name: b"..".to_vec(),
                file_type: Some(FileType::Directory),
            },
        ];
        let filetype = self.sb.has_filetype();
        all.extend(
            parse_block(&inode.i_block[4..], filetype)
                .at(place)?
                .into_iter()
                .map(Entry::from),
        );
        if let Some(x) = self
            .xattrs_of(ino, inode)?
            .into_iter()
            .find(|x| x.name == b"system.data")
        {
            if !x.value.is_empty() {
                all.extend(
                    parse_block(&x.value, filetype)
                        .at(place)?
                        .into_iter()
                        .map(Entry::from),
                );
            }
        }
        Ok(all)
    }

    /// All entries of directory `ino`, `.` and `..` included, in the order
    /// of [`Ext3::readdir_with`] (hash order for most directories, what
    /// `ls -U` shows on Linux).
    pub fn read_dir(&self, ino: u32) -> Result<Vec<Entry>> {
        let mut v = Vec::new();
        self.readdir_with(ino, 0, |e, _| {
            v.push(e);
            true
        })?;
        Ok(v)
    }

    /// The inode named `name` in directory `parent` (through the hash
    /// index when the directory has one, else by reading it).
    pub fn lookup(&self, parent: u32, name: &[u8]) -> Result<u32> {
        let inode = self.dir_inode(parent)?;
        match self.htree_lookup(parent, &inode, name)? {
            Some(Some(ino)) => return Ok(ino),
            Some(None) => return Err(Error::NotFound(String::from_utf8_lossy(name).into_owned())),
            None => {}
        }
        self.lookup_linear(parent, name)
    }

    /// [`Ext3::lookup`] by reading every block of the directory.
    pub fn lookup_linear(&self, parent: u32, name: &[u8]) -> Result<u32> {
        let mut found = None;
        self.readdir_blocks_with(parent, 0, |e, _| {
            if e.name == name {
                found = Some(e.ino);
                false
            } else {
                true
            }
        })?;
        found.ok_or_else(|| Error::NotFound(String::from_utf8_lossy(name).into_owned()))
    }
}
