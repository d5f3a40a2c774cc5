//! The disk-level helpers behind `uml_fs` that are library code: open a
//! device spec read-only, and tell which byte ranges a COW left as its
//! backing file has them (so [`diff_trees_with`] can skip unchanged files).
//! This is where `cow` and `ext3` meet; the command-line front end lives
//! in `crate::cli::uml_fs`.

use crate::block::BlockDevice;
use crate::cow::{open_disk, CowError, Disk, DiskOptions};
use crate::ext3::Ext3;
use std::ops::Range;

pub use super::compare::{diff_trees, diff_trees_with, Change, ChangeKind, Unchanged};

/// Opens the disk named by `spec` (`IMAGE`, `COW` or `COW,BACKING`)
/// read-only.
pub fn open_device(spec: &str) -> Result<Disk, CowError> {
    open_disk(spec, &DiskOptions::default())
}

/// True when device bytes `bytes` read the same through the COW as from
/// its backing file: no sector of them is in the COW file, and journal
/// replay replaced none of them in either view.
pub fn unchanged_in_cow<A: BlockDevice, B: BlockDevice>(
    disk: &Disk,
    old: &Ext3<A>,
    new: &Ext3<B>,
    bytes: Range<u64>,
) -> bool {
    let Some(cow) = disk.as_cow() else {
        return false;
    };
    if old.device().replaces_any(bytes.clone()) || new.device().replaces_any(bytes.clone()) {
        return false;
    }
    let ss = std::num::NonZeroU64::new(u64::from(cow.header().sector_size))
        .unwrap_or(std::num::NonZeroU64::MIN);
    cow.with_runs(bytes.start / ss..bytes.end.div_ceil(ss.get()), |runs| {
        for (_, in_cow) in runs {
            if in_cow {
                return false;
            }
        }
        true
    })
}
