//! Path resolution inside the image: absolute paths such as `/etc/hostname`,
//! following symbolic links (relative to their directory, absolute to the
//! image's root) up to a bounded count.

use super::error::{Error, Result};
use super::fs::Ext3;
use super::inode::{FileType, ROOT_INO};
use crate::block::BlockDevice;

/// Most symbolic links followed while resolving one path (Linux: 40).
pub const MAX_SYMLINKS: usize = 40;

impl<D: BlockDevice> Ext3<D> {
    /// The inode of `path` (absolute, or relative to the root). Symbolic
    /// links are followed in every component but the last; the last is
    /// followed too when `follow` is true.
    pub fn resolve(&self, path: &[u8], follow: bool) -> Result<u32> {
        let shown = || String::from_utf8_lossy(path).into_owned();
        // Components still to walk, reversed so that pop() gives the next.
        let mut todo: Vec<Vec<u8>> = split(path).rev().collect();
        let mut stack: Vec<u32> = vec![ROOT_INO];
        let mut links = 0usize;
        while let Some(name) = todo.pop() {
            let cur = *stack.last().unwrap_or(&ROOT_INO);
            if name == b"." {
                continue;
            }
            if name == b".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let md = self.getattr(cur)?;
            if md.file_type != FileType::Directory {
                return Err(Error::NotADirectory(shown()));
            }
            let ino = self.lookup(cur, &name).map_err(|e| match e {
                Error::NotFound(_) => Error::NotFound(shown()),
                e => e,
            })?;
            let is_last = todo.is_empty();
            let ty = self.getattr(ino)?.file_type;
            if ty == FileType::Symlink && (!is_last || follow) {
                links = links.saturating_add(1);
                if links > MAX_SYMLINKS {
                    return Err(Error::SymlinkLoop(shown()));
                }
                let target = self.readlink(ino)?;
                if target.first() == Some(&b'/') {
                    stack.truncate(1);
                }
                todo.extend(split(&target).rev());
                continue;
            }
            stack.push(ino);
        }
        Ok(*stack.last().unwrap_or(&ROOT_INO))
    }

    /// Like [`Ext3::resolve`] for a `&str` path, following the last link.
    pub fn resolve_path(&self, path: &str) -> Result<u32> {
        self.resolve(path.as_bytes(), true)
    }
}

fn split(path: &[u8]) -> impl DoubleEndedIterator<Item = Vec<u8>> + '_ {
    path.split(|&c| c == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
}
