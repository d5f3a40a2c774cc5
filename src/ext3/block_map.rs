//! The classic ext2/ext3 block map: twelve direct pointers in `i_block`,
//! then single-, double- and triple-indirect blocks of 32-bit pointers
//! (Documentation/filesystems/ext4/blockmap.rst).

use super::bytes::le32;

/// Number of direct pointers in `i_block`.
pub const DIRECT: u64 = 12;
/// `i_block` index of the single-indirect block.
pub const IND: usize = 12;

/// Where a logical block sits in the map: the `i_block` slot to start at
/// and the index into each indirect level below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapPath {
    /// Index into `i_block` (0..15).
    pub slot: usize,
    /// Indices into the indirect blocks, outermost first (0 to 3 of them).
    pub indices: [usize; 3],
    /// How many of `indices` are used.
    pub depth: usize,
}

/// Computes the path of logical block `lblk` for a map whose indirect
/// blocks hold `per_block` pointers; `None` past the triple-indirect range.
pub fn map_path(lblk: u64, per_block: u64) -> Option<MapPath> {
    if lblk < DIRECT {
        return Some(MapPath {
            slot: usize::try_from(lblk).ok()?,
            indices: [0; 3],
            depth: 0,
        });
    }
    let p = per_block;
    // Each level's range is subtracted only after `rest` was found to be
    // at least that large, and divisors are only used once found nonzero
    // (`rest < p2` fails for p == 0); the checked ops say so to clippy
    // and give `None` rather than a panic if that reasoning breaks.
    let mut rest = lblk.checked_sub(DIRECT)?;
    let idx = |v: u64| usize::try_from(v).ok();
    if rest < p {
        return Some(MapPath {
            slot: IND,
            indices: [idx(rest)?, 0, 0],
            depth: 1,
        });
    }
    rest = rest.checked_sub(p)?;
    let p2 = p.checked_mul(p)?;
    if rest < p2 {
        return Some(MapPath {
            slot: IND + 1,
            indices: [idx(rest.checked_div(p)?)?, idx(rest.checked_rem(p)?)?, 0],
            depth: 2,
        });
    }
    rest = rest.checked_sub(p2)?;
    let p3 = p2.checked_mul(p)?;
    if rest < p3 {
        return Some(MapPath {
            slot: IND + 2,
            indices: [
                idx(rest.checked_div(p2)?)?,
                idx(rest.checked_div(p)?.checked_rem(p)?)?,
                idx(rest.checked_rem(p)?)?,
            ],
            depth: 3,
        });
    }
    None
}

/// Parses an indirect block into its pointers.
pub fn parse_indirect(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4).map(|c| le32(c, 0)).collect()
}

/// Number of logical blocks covered by one pointer at `depth` levels above
/// the data (1 for a data pointer, `per_block` for a single-indirect ...).
pub fn span(per_block: u64, levels_below: usize) -> u64 {
    (0..levels_below).fold(1u64, |acc, _| acc.saturating_mul(per_block))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cover_direct_single_double_and_triple_ranges() {
        let p = 256; // 1 KiB blocks
        assert_eq!(map_path(11, p).unwrap().slot, 11);
        assert_eq!(
            map_path(12, p).unwrap(),
            MapPath {
                slot: 12,
                indices: [0, 0, 0],
                depth: 1
            }
        );
        assert_eq!(
            map_path(12 + 256, p).unwrap(),
            MapPath {
                slot: 13,
                indices: [0, 0, 0],
                depth: 2
            }
        );
        assert_eq!(
            map_path(12 + 256 + 257, p).unwrap(),
            MapPath {
                slot: 13,
                indices: [1, 1, 0],
                depth: 2
            }
        );
        let t = 12 + 256 + 65536;
        assert_eq!(
            map_path(t, p).unwrap(),
            MapPath {
                slot: 14,
                indices: [0, 0, 0],
                depth: 3
            }
        );
        assert_eq!(
            map_path(t + 65536 + 256 + 3, p).unwrap(),
            MapPath {
                slot: 14,
                indices: [1, 1, 3],
                depth: 3
            }
        );
        assert_eq!(map_path(t + 256 * 65536, p), None);
    }

    #[test]
    fn degenerate_pointer_counts_and_huge_blocks_give_no_path() {
        assert_eq!(map_path(12, 0), None);
        assert_eq!(map_path(u64::MAX, 0), None);
        assert_eq!(map_path(u64::MAX, 256), None);
        // 2^32 pointers per block: p^3 overflows, no panic.
        assert_eq!(map_path(u64::MAX, 1 << 32), None);
    }

    #[test]
    fn indirect_blocks_parse_whole_pointers_only() {
        let b = [1, 0, 0, 0, 2, 0, 0, 0, 9];
        assert_eq!(parse_indirect(&b), vec![1, 2]);
    }

    #[test]
    fn spans_multiply_per_level() {
        assert_eq!(span(1024, 0), 1);
        assert_eq!(span(1024, 2), 1 << 20);
    }
}
