//! Writing a qcow2 v3 file in one pass: data clusters are streamed after
//! the header, L1 and L2 tables (whose number the allocation predicate
//! fixes up front), and the refcount table and blocks follow the data,
//! once the number of clusters is known.

use super::header::Qcow2Header;
use super::{OFLAG_COPIED, OFLAG_ZERO};
use crate::block::{is_zero, BlockDevice};
use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

/// log2 of the cluster size written (64 KiB, qemu's default).
pub const CLUSTER_BITS: u32 = 16;
const CLUSTER: u64 = 1 << CLUSTER_BITS;
/// Entries in one L2 table (8 bytes each).
const L2_ENTRIES: u64 = CLUSTER / 8;
/// 16-bit refcounts per refcount block.
const REFS_PER_BLOCK: u64 = CLUSTER / 2;

fn usize_of(v: u64) -> io::Result<usize> {
    usize::try_from(v).map_err(|_| io::Error::other("size does not fit in memory"))
}

/// Writes `view` (`size` bytes) as a qcow2 file into `out` (empty).
/// `allocate(range)` says which guest byte ranges (one cluster each) the
/// file must hold; the others read from `backing` (its name, format raw)
/// or as zeros without one. An allocated all-zero cluster becomes a zero
/// cluster (no data) over a backing file, and is left out without one.
/// `progress` is called with the bytes done.
pub fn write_qcow2(
    out: &File,
    view: &dyn BlockDevice,
    size: u64,
    backing: Option<&[u8]>,
    allocate: &dyn Fn(Range<u64>) -> bool,
    progress: &dyn Fn(u64),
) -> io::Result<()> {
    let vclusters = size.div_ceil(CLUSTER);
    let l1_size = vclusters.div_ceil(L2_ENTRIES);
    let l1_clusters = (l1_size * 8).div_ceil(CLUSTER).max(1);
    let wanted: Vec<bool> = (0..vclusters)
        .map(|i| allocate(i * CLUSTER..((i + 1) * CLUSTER).min(size)))
        .collect();
    // One L2 table per L1 entry that maps anything, in order after the L1.
    let mut l2_index = vec![None; usize_of(l1_size)?];
    let mut next = 1 + l1_clusters;
    for (t, slot) in l2_index.iter_mut().enumerate() {
        let first = t as u64 * L2_ENTRIES;
        let last = (first + L2_ENTRIES).min(vclusters);
        if wanted[usize_of(first)?..usize_of(last)?].iter().any(|&w| w) {
            *slot = Some(next);
            next += 1;
        }
    }
    let mut l2: Vec<Vec<u64>> = l2_index
        .iter()
        .map(|s| {
            if s.is_some() {
                vec![0u64; usize_of(L2_ENTRIES).unwrap_or(0)]
            } else {
                Vec::new()
            }
        })
        .collect();
    let mut buf = vec![0u8; usize_of(CLUSTER)?];
    for (i, &w) in wanted.iter().enumerate() {
        let i = i as u64;
        let start = i * CLUSTER;
        let len = usize_of(CLUSTER.min(size - start))?;
        progress(start);
        if !w {
            continue;
        }
        buf.fill(0);
        view.read_exact_at(start, &mut buf[..len])?;
        let entry = if is_zero(&buf) {
            if backing.is_some() {
                OFLAG_ZERO
            } else {
                0
            }
        } else {
            let host = next * CLUSTER;
            out.write_all_at(&buf, host)?;
            next += 1;
            host | OFLAG_COPIED
        };
        let (t, e) = (usize_of(i / L2_ENTRIES)?, usize_of(i % L2_ENTRIES)?);
        l2[t][e] = entry;
    }
    // Refcount table and blocks after the data: r blocks cover all
    // clusters, themselves and the table's t clusters included.
    let data_end = next;
    let (mut r, mut t) = (1u64, 1u64);
    loop {
        let total = data_end + t + r;
        let r2 = total.div_ceil(REFS_PER_BLOCK);
        let t2 = (r2 * 8).div_ceil(CLUSTER);
        if (r2, t2) == (r, t) {
            break;
        }
        (r, t) = (r2, t2);
    }
    let rt_first = data_end;
    let rb_first = rt_first + t;
    let total = rb_first + r;
    let mut table = vec![0u8; usize_of(t * CLUSTER)?];
    for b in 0..r {
        let o = usize_of(b * 8)?;
        table[o..o + 8].copy_from_slice(&((rb_first + b) * CLUSTER).to_be_bytes());
    }
    out.write_all_at(&table, rt_first * CLUSTER)?;
    let mut block = vec![0u8; usize_of(CLUSTER)?];
    for b in 0..r {
        block.fill(0);
        let first = b * REFS_PER_BLOCK;
        for c in first..total.min(first + REFS_PER_BLOCK) {
            let o = usize_of((c - first) * 2)?;
            block[o..o + 2].copy_from_slice(&1u16.to_be_bytes());
        }
        out.write_all_at(&block, (rb_first + b) * CLUSTER)?;
    }
    // L2 tables, L1, header.
    let mut l1 = vec![0u8; usize_of(l1_clusters * CLUSTER)?];
    for (ti, slot) in l2_index.iter().enumerate() {
        let Some(c) = slot else { continue };
        let bytes: Vec<u8> = l2[ti].iter().flat_map(|e| e.to_be_bytes()).collect();
        out.write_all_at(&bytes, c * CLUSTER)?;
        l1[ti * 8..ti * 8 + 8].copy_from_slice(&((c * CLUSTER) | OFLAG_COPIED).to_be_bytes());
    }
    out.write_all_at(&l1, CLUSTER)?;
    let header = Qcow2Header {
        version: 3,
        backing_file: backing.map(<[u8]>::to_vec).unwrap_or_default(),
        backing_format: backing.map(|_| b"raw".to_vec()),
        cluster_bits: CLUSTER_BITS,
        size,
        l1_size: u32::try_from(l1_size).map_err(|_| io::Error::other("image too large"))?,
        l1_table_offset: CLUSTER,
        refcount_table_offset: rt_first * CLUSTER,
        refcount_table_clusters: u32::try_from(t)
            .map_err(|_| io::Error::other("image too large"))?,
        header_length: super::header::V3_HEADER_LEN,
    };
    let bytes = header.to_bytes().map_err(io::Error::other)?;
    let mut first = vec![0u8; usize_of(CLUSTER)?];
    first[..bytes.len()].copy_from_slice(&bytes);
    out.write_all_at(&first, 0)?;
    out.set_len(total * CLUSTER)?;
    progress(size);
    Ok(())
}
