//! Depth-first walks over a directory tree, for `find`, `extract` and
//! `diff`. Paths are absolute byte strings inside the image. A corrupt
//! image cannot make a walk run forever: each directory inode is entered
//! once and the depth is bounded.

use super::attr::Metadata;
use super::error::{Corrupt, Error, Result};
use super::fs::Ext3;
use super::inode::FileType;
use crate::block::BlockDevice;
use std::collections::HashSet;

/// Deepest directory nesting a walk descends into (Linux's PATH_MAX of 4096
/// bytes allows at most 2048 levels).
pub const MAX_DEPTH: usize = 2048;

/// One node met by a walk.
#[derive(Debug, Clone)]
pub struct Node {
    /// Absolute path inside the image (`/` for the root).
    pub path: Vec<u8>,
    /// The node's metadata.
    pub meta: Metadata,
    /// Nesting depth below the walk's start (0 for the start).
    pub depth: usize,
}

/// Joins a directory path and a name.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if p.last() != Some(&b'/') {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

impl<D: BlockDevice> Ext3<D> {
    /// Walks the tree below `ino` (whose path is `path`), calling `f` for
    /// every node in pre-order with entries sorted by name. `f` returns
    /// false to skip a directory's contents. Errors inside a subtree stop
    /// the walk.
    pub fn walk(
        &self,
        ino: u32,
        path: &[u8],
        mut f: impl FnMut(&Node) -> Result<bool>,
    ) -> Result<()> {
        let mut seen = HashSet::new();
        let meta = self.getattr(ino)?;
        let mut stack = vec![Node {
            path: path.to_vec(),
            meta,
            depth: 0,
        }];
        while let Some(node) = stack.pop() {
            let descend = f(&node)?;
            if !descend || node.meta.file_type != FileType::Directory {
                continue;
            }
            if !seen.insert(node.meta.ino) {
                return Err(Error::corrupt(
                    format!("directory inode {}", node.meta.ino),
                    Corrupt::DirectoryLoop,
                ));
            }
            if node.depth >= MAX_DEPTH {
                return Err(Error::corrupt(
                    String::from_utf8_lossy(&node.path).into_owned(),
                    Corrupt::TooDeep,
                ));
            }
            let mut entries = self.read_dir(node.meta.ino)?;
            entries.retain(|e| e.name != b"." && e.name != b"..");
            entries.sort_by(|a, b| b.name.cmp(&a.name));
            for e in entries {
                let meta = self.getattr(e.ino)?;
                stack.push(Node {
                    path: join(&node.path, &e.name),
                    meta,
                    depth: node.depth.saturating_add(1),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn join_adds_exactly_one_slash() {
        assert_eq!(join(b"/", b"etc"), b"/etc");
        assert_eq!(join(b"/etc", b"hostname"), b"/etc/hostname");
    }
}
