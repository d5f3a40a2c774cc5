//! Revoke blocks (`jbd2_journal_revoke_header_t`): block numbers whose
//! earlier journal copies must not be replayed.

use super::superblock::{JournalSuperblock, INCOMPAT_64BIT};
use crate::ext3::bytes::u64_from;
use crate::ext3::bytes::{be32, be64};
use crate::ext3::error::Corrupt;

/// Parses the revoked block numbers of a revoke block; `tail` is the
/// checksum tail size (4 with checksum v2/v3).
pub fn parse_revoke(b: &[u8], jsb: &JournalSuperblock, tail: usize) -> Result<Vec<u64>, Corrupt> {
    let count = usize::try_from(be32(b, 12)).unwrap_or(usize::MAX);
    let limit = b.len().saturating_sub(tail);
    if count < 16 || count > limit {
        return Err(Corrupt::BadField {
            field: "revoke block r_count",
            value: u64_from(count),
        });
    }
    let size = if jsb.has_incompat(INCOMPAT_64BIT) {
        8
    } else {
        4
    };
    let mut out = Vec::with_capacity(count.saturating_sub(16) / 4);
    let mut off = 16usize;
    // `count <= b.len()`, so `off + size` cannot overflow.
    while off.checked_add(size).is_some_and(|end| end <= count) {
        out.push(if size == 8 {
            be64(b, off)
        } else {
            u64::from(be32(b, off))
        });
        off = off.saturating_add(size);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::superblock::tests::fixture;
    use super::*;

    #[test]
    fn parses_32_and_64_bit_records_and_checks_r_count() {
        let mut b = vec![0u8; 1024];
        b[12..16].copy_from_slice(&24u32.to_be_bytes());
        b[16..20].copy_from_slice(&5u32.to_be_bytes());
        b[20..24].copy_from_slice(&9u32.to_be_bytes());
        let jsb = JournalSuperblock::parse(&fixture(1024, 1, 1, 0)).unwrap();
        assert_eq!(parse_revoke(&b, &jsb, 0).unwrap(), vec![5, 9]);
        let jsb64 = JournalSuperblock::parse(&fixture(1024, 1, 1, INCOMPAT_64BIT)).unwrap();
        assert_eq!(parse_revoke(&b, &jsb64, 0).unwrap(), vec![(5 << 32) | 9]);
        b[12..16].copy_from_slice(&5000u32.to_be_bytes());
        assert!(parse_revoke(&b, &jsb, 0).is_err());
    }
}
