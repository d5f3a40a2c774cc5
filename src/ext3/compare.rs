//! What a COW changed: the backing file's view of the filesystem compared
//! with the COW's view of the same image, path by path. `uml_fs diff`
//! prints the result; the comparison itself is library code.

use crate::block::BlockDevice;
use crate::ext3::map::Run;
use crate::ext3::walk::Node;
use crate::ext3::{Ext3, FileType, Metadata, Result};
use std::collections::BTreeMap;
use std::ops::Range;

/// The kind of change of one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Only in the COW view.
    Added,
    /// Only in the backing view.
    Removed,
    /// Contents (or type, symlink target, device number) differ.
    Modified,
    /// Only metadata differs: mode, owner, mtime, extended attributes.
    Metadata,
}

impl ChangeKind {
    /// The word printed for the change.
    pub fn word(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
            ChangeKind::Metadata => "metadata",
        }
    }
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// Absolute path inside the image (lossy UTF-8 for odd bytes).
    pub path: String,
    /// What changed.
    pub change: ChangeKind,
}

fn collect<D: BlockDevice>(fs: &Ext3<D>) -> Result<BTreeMap<Vec<u8>, Metadata>> {
    let mut m = BTreeMap::new();
    fs.walk(crate::ext3::ROOT_INO, b"/", |n: &Node| {
        m.insert(n.path.clone(), n.meta.clone());
        Ok(true)
    })?;
    Ok(m)
}

/// Says whether device bytes `range` read the same in both views (for a
/// COW: no sector of the range is in the COW file and no journal replay
/// touched it). Lets `diff` skip reading files whose blocks did not change.
pub type Unchanged<'a> = &'a dyn Fn(Range<u64>) -> bool;

/// True when both inodes map their data to the same blocks and none of
/// those blocks differs between the views.
fn same_blocks<A: BlockDevice, B: BlockDevice>(
    a: &Ext3<A>,
    ma: &Metadata,
    b: &Ext3<B>,
    mb: &Metadata,
    unchanged: Unchanged<'_>,
) -> Result<bool> {
    let ra = a.data_runs(ma.ino, &a.inode(ma.ino)?)?;
    if ra.is_empty() || ra != b.data_runs(mb.ino, &b.inode(mb.ino)?)? {
        return Ok(false);
    }
    let bs = u64::from(a.block_size());
    Ok(ra.iter().all(|(_, run)| match *run {
        Run::Hole(_) => true,
        Run::Data { pblk, len } => {
            match (
                pblk.checked_mul(bs),
                pblk.checked_add(len).and_then(|e| e.checked_mul(bs)),
            ) {
                (Some(start), Some(end)) => unchanged(start..end),
                // A run past any device is not provably unchanged.
                _ => false,
            }
        }
    }))
}

fn same_content<A: BlockDevice, B: BlockDevice>(
    a: &Ext3<A>,
    ma: &Metadata,
    b: &Ext3<B>,
    mb: &Metadata,
    unchanged: Unchanged<'_>,
) -> Result<bool> {
    if ma.file_type != mb.file_type || ma.size != mb.size || ma.rdev != mb.rdev {
        return Ok(false);
    }
    match ma.file_type {
        FileType::Regular => {}
        FileType::Symlink => return Ok(a.readlink(ma.ino)? == b.readlink(mb.ino)?),
        _ => return Ok(true),
    }
    if a.block_size() == b.block_size() && same_blocks(a, ma, b, mb, unchanged)? {
        return Ok(true);
    }
    let (ia, ib) = (a.inode(ma.ino)?, b.inode(mb.ino)?);
    let mut ba = vec![0u8; 1 << 20];
    let mut bb = vec![0u8; 1 << 20];
    let mut off = 0u64;
    while off < ma.size {
        let na = a.read_inode_data(ma.ino, &ia, off, &mut ba)?;
        let nb = b.read_inode_data(mb.ino, &ib, off, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            break;
        }
        off = off.saturating_add(super::bytes::u64_from(na));
    }
    Ok(true)
}

fn same_metadata<A: BlockDevice, B: BlockDevice>(
    a: &Ext3<A>,
    ma: &Metadata,
    b: &Ext3<B>,
    mb: &Metadata,
) -> Result<bool> {
    if (ma.perm, ma.uid, ma.gid, ma.mtime) != (mb.perm, mb.uid, mb.gid, mb.mtime) {
        return Ok(false);
    }
    let xa = a.xattrs_of(ma.ino, &a.inode(ma.ino)?)?;
    let xb = b.xattrs_of(mb.ino, &b.inode(mb.ino)?)?;
    let key = |v: Vec<crate::ext3::xattr::Xattr>| {
        let mut v: Vec<(Vec<u8>, Vec<u8>)> = v.into_iter().map(|x| (x.name, x.value)).collect();
        v.sort();
        v
    };
    Ok(key(xa) == key(xb))
}

/// The changes from `old` (the backing view) to `new` (the COW view),
/// sorted by path. Access and change times alone do not count.
pub fn diff_trees<A: BlockDevice, B: BlockDevice>(
    old: &Ext3<A>,
    new: &Ext3<B>,
) -> Result<Vec<Change>> {
    diff_trees_with(old, new, &|_| false)
}

/// [`diff_trees`] with an oracle for device ranges that read the same in
/// both views, so that files on unchanged blocks are not read.
pub fn diff_trees_with<A: BlockDevice, B: BlockDevice>(
    old: &Ext3<A>,
    new: &Ext3<B>,
    unchanged: Unchanged<'_>,
) -> Result<Vec<Change>> {
    let before = collect(old)?;
    let after = collect(new)?;
    let mut out = Vec::new();
    let mut push = |p: &[u8], change| {
        out.push(Change {
            path: String::from_utf8_lossy(p).into_owned(),
            change,
        })
    };
    for (p, mo) in &before {
        match after.get(p) {
            None => push(p, ChangeKind::Removed),
            Some(mn) => {
                if !same_content(old, mo, new, mn, unchanged)? {
                    push(p, ChangeKind::Modified);
                } else if !same_metadata(old, mo, new, mn)? {
                    push(p, ChangeKind::Metadata);
                }
            }
        }
    }
    for p in after.keys() {
        if !before.contains_key(p) {
            push(p, ChangeKind::Added);
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}
