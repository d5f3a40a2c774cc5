//! The COW bitmap: one bit per sector, least significant bit first, set
//! when the sector's data lives in the COW file.

use crate::block::usize_from;
use std::ops::Range;

/// An in-memory copy of a COW bitmap covering `sectors` sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    bytes: Vec<u8>,
    sectors: u64,
}

impl Bitmap {
    /// A bitmap over `bytes` for `sectors` sectors. Missing bytes read as
    /// clear; bits past `sectors` are ignored.
    pub fn from_bytes(mut bytes: Vec<u8>, sectors: u64) -> Bitmap {
        let needed = usize::try_from(sectors.div_ceil(8)).unwrap_or(usize::MAX);
        bytes.resize(needed, 0);
        Bitmap { bytes, sectors }
    }

    /// An all-clear bitmap.
    pub fn empty(sectors: u64) -> Bitmap {
        Self::from_bytes(Vec::new(), sectors)
    }

    /// The bitmap's bytes as stored on disk.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Number of sectors covered.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// Whether sector `i` is in the COW.
    pub fn get(&self, i: u64) -> bool {
        i < self.sectors && self.bytes[usize_from(i / 8)] & (1 << (i % 8)) != 0
    }

    /// Marks sectors `range` as present in the COW. Returns the range of
    /// bitmap bytes that changed value, for writing back.
    pub fn set_range(&mut self, range: Range<u64>) -> Option<Range<usize>> {
        let range = range.start..range.end.min(self.sectors);
        if range.is_empty() {
            return None;
        }
        for i in range.clone() {
            self.bytes[usize_from(i / 8)] |= 1 << (i % 8);
        }
        Some(usize_from(range.start / 8)..usize_from(range.end.div_ceil(8)))
    }

    /// Clears every bit.
    pub fn clear(&mut self) {
        self.bytes.fill(0);
    }

    /// Number of set bits among the covered sectors.
    pub fn count_set(&self) -> u64 {
        self.runs(0..self.sectors)
            .filter(|(_, set)| *set)
            .map(|(r, _)| r.end - r.start)
            .sum()
    }

    /// True when a bit past the last sector is set (only possible in a
    /// damaged file).
    pub fn has_bits_past_end(&self) -> bool {
        let tail = self.sectors % 8;
        tail != 0 && self.bytes.last().is_some_and(|&b| b >> tail != 0)
    }

    /// The next sector at or after `from` (and before `limit`) whose bit is
    /// `value`, skipping whole 64-bit words at a time.
    fn next_with(&self, from: u64, limit: u64, value: bool) -> u64 {
        let mut i = from;
        while i < limit {
            if i % 64 == 0 && i + 64 <= limit {
                let at = usize_from(i / 8);
                let word = u64::from_le_bytes(self.bytes[at..at + 8].try_into().expect("8 bytes"));
                let word = if value { word } else { !word };
                if word == 0 {
                    i += 64;
                    continue;
                }
                return i + u64::from(word.trailing_zeros());
            }
            if self.get(i) == value {
                return i;
            }
            i += 1;
        }
        limit
    }

    /// Maximal runs of equal bits within `range`: `(sectors, in_cow)`.
    pub fn runs(&self, range: Range<u64>) -> Runs<'_> {
        Runs {
            bitmap: self,
            at: range.start,
            end: range.end.min(self.sectors),
        }
    }
}

/// Iterator over runs of equal bits, see [`Bitmap::runs`].
pub struct Runs<'a> {
    bitmap: &'a Bitmap,
    at: u64,
    end: u64,
}

impl Iterator for Runs<'_> {
    type Item = (Range<u64>, bool);

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let start = self.at;
        let value = self.bitmap.get(start);
        let stop = self.bitmap.next_with(start + 1, self.end, !value);
        self.at = stop;
        Some((start..stop, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bits_are_least_significant_first() {
        let mut b = Bitmap::empty(16);
        b.set_range(1..2);
        b.set_range(9..11);
        assert_eq!(b.as_bytes(), &[0b10, 0b110]);
        assert!(b.get(1) && b.get(9) && b.get(10) && !b.get(0) && !b.get(11));
    }

    proptest! {
        #[test]
        fn runs_cover_the_range_and_agree_with_get(
            sectors in 1u64..700,
            sets in proptest::collection::vec((0u64..700, 0u64..90), 0..12),
            start in 0u64..700,
        ) {
            let mut b = Bitmap::empty(sectors);
            for (s, n) in sets {
                b.set_range(s..s + n);
            }
            let start = start.min(sectors);
            let mut at = start;
            let mut last: Option<bool> = None;
            for (r, v) in b.runs(start..sectors) {
                prop_assert_eq!(r.start, at);
                prop_assert!(r.end > r.start);
                prop_assert_ne!(Some(v), last);
                for i in r.clone() {
                    prop_assert_eq!(b.get(i), v);
                }
                at = r.end;
                last = Some(v);
            }
            prop_assert_eq!(at, sectors);
            prop_assert_eq!(b.count_set(), (0..sectors).filter(|&i| b.get(i)).count() as u64);
        }
    }
}
